package state

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
)

func signin(gw, sock, user string) presence.Op {
	return presence.Op{Op: presence.Signin, Gateway: gw, App: app, SocketID: sock, UserID: user}
}

func signout(gw, sock string) presence.Op {
	return presence.Op{Op: presence.Signout, Gateway: gw, App: app, SocketID: sock}
}

func signedIn(sock, user string) presence.SignedIn {
	return presence.SignedIn{App: app, SocketID: sock, UserID: user}
}

func describeUsers(cs []UserChange) []string {
	var out []string
	for _, c := range cs {
		sign := "-"
		if c.Online {
			sign = "+"
		}
		out = append(out, sign+c.UserID)
	}
	return out
}

func TestUserRules(t *testing.T) {
	type ustep struct {
		op    presence.Op
		users []string // "+user" online, "-user" offline
	}
	snap := func(gw string, reg uint64, users ...presence.SignedIn) presence.Op {
		op := snapshot(gw, reg)
		op.Users = users
		return op
	}
	tests := []struct {
		name   string
		steps  []ustep
		online []string // of alice, bob, carol at the end
	}{
		{"first sign-in is online", []ustep{{signin("g1", "s1", "alice"), []string{"+alice"}}}, []string{"alice"}},
		{"second socket changes nothing", []ustep{
			{signin("g1", "s1", "alice"), []string{"+alice"}},
			{signin("g2", "s2", "alice"), nil},
			{signout("g1", "s1"), nil},
			{signout("g2", "s2"), []string{"-alice"}},
		}, nil},
		{"repeated sign-in and unknown sign-out change nothing", []ustep{
			{signin("g1", "s1", "alice"), []string{"+alice"}},
			{signin("g1", "s1", "alice"), nil},
			{signout("g1", "s9"), nil},
		}, []string{"alice"}},
		{"signing in as another user", []ustep{
			{signin("g1", "s1", "alice"), []string{"+alice"}},
			{signin("g1", "s1", "bob"), []string{"-alice", "+bob"}},
		}, []string{"bob"}},
		{"gateway gone takes its users offline", []ustep{
			{signin("g1", "s1", "alice"), []string{"+alice"}},
			{signin("g1", "s2", "alice"), nil},
			{signin("g1", "s3", "bob"), []string{"+bob"}},
			{signin("g2", "s4", "bob"), nil},
			{gone("g1", 10), []string{"-alice"}},
		}, []string{"bob"}},
		{"snapshot replaces a gateway's sign-ins", []ustep{
			{signin("g1", "s1", "alice"), []string{"+alice"}},
			{signin("g1", "s2", "bob"), []string{"+bob"}},
			{snap("g1", 10, signedIn("s2", "bob"), signedIn("s3", "carol"), signedIn("s4", "carol")), []string{"-alice", "+carol"}},
		}, []string{"bob", "carol"}},
		{"removed gateway's late sign-in is ignored", []ustep{
			{gone("g1", 10), nil},
			{signin("g1", "s1", "alice"), nil},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newState()
			register(t, s, "g1", "g2")
			for i, st := range tt.steps {
				fx := s.Apply(uint64(10+i), &st.op, t0)
				if got := describeUsers(fx.Users); !slices.Equal(got, st.users) {
					t.Fatalf("step %d (%s): users %v, want %v", i, st.op.Op, got, st.users)
				}
			}
			if got := s.Online(app, []string{"alice", "bob", "carol"}); !slices.Equal(got, tt.online) {
				t.Fatalf("online %v, want %v", got, tt.online)
			}
		})
	}
}

func TestUsersPersistAndReplay(t *testing.T) {
	s := newState()
	register(t, s, "g1", "g2")
	for i, op := range []presence.Op{signin("g1", "s1", "alice"), signin("g2", "s2", "alice"), signin("g1", "s3", "bob")} {
		s.Apply(uint64(10+i), &op, t0)
	}
	writes, err := s.TakeDirty()
	if err != nil {
		t.Fatal(err)
	}
	loaded := newState()
	register(t, loaded, "g1", "g2")
	for _, w := range writes {
		if !strings.HasPrefix(w.Key, names.UserStateKeyPrefix) {
			continue
		}
		var u presence.UserState
		if err := json.Unmarshal(w.Value, &u); err != nil {
			t.Fatal(err)
		}
		loaded.LoadUser(u)
	}
	if got := loaded.Online(app, []string{"alice", "bob"}); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("loaded online %v", got)
	}
	// A replay of an applied sign-in changes nothing.
	op := signin("g1", "s3", "bob")
	if fx := loaded.Apply(12, &op, t0); len(fx.Users) != 0 {
		t.Fatalf("replay: %v", describeUsers(fx.Users))
	}
	g := gone("g1", 10)
	if fx := loaded.Apply(13, &g, t0); !slices.Equal(describeUsers(fx.Users), []string{"-bob"}) {
		t.Fatalf("gone: %v", describeUsers(fx.Users))
	}
	if _, err := loaded.TakeDirty(); err != nil {
		t.Fatal(err)
	}
}
