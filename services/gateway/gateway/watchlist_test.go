package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/protocol"
)

// expectWatchlist reads up to the next pusher_internal:watchlist_events and
// checks that it tells of ids coming online or going offline (name).
func (c *client) expectWatchlist(name string, ids ...string) {
	c.t.Helper()
	for {
		f := c.read()
		if f.Event == protocol.EventSigninSuccess {
			continue
		}
		if f.Event != protocol.EventWatchlistEvents {
			c.t.Fatalf("got %s, want %s", f.raw, protocol.EventWatchlistEvents)
		}
		var d struct {
			Events []struct {
				Name    string   `json:"name"`
				UserIDs []string `json:"user_ids"`
			} `json:"events"`
		}
		if err := json.Unmarshal([]byte(f.str(c.t)), &d); err != nil {
			c.t.Fatalf("watchlist data %s: %v", f.raw, err)
		}
		if len(d.Events) != 1 || d.Events[0].Name != name || !slices.Equal(slices.Sorted(slices.Values(d.Events[0].UserIDs)), ids) {
			c.t.Fatalf("got %s, want %s %v", f.raw, name, ids)
		}
		return
	}
}

func TestWatchlistAcrossGateways(t *testing.T) {
	e := newEnv(t)
	hs2, nc := e.mortalGateway()
	app := e.app("app-1")

	bob := connect(t, hs2, app.Key)
	bob.signin(app, `{"id":"bob"}`)
	bob.expect(protocol.EventSigninSuccess)
	signedIn(t, app, hs2, "dan") // not watched

	ann := connect(t, e.hs, app.Key)
	ud := `{"id":"ann","watchlist":["bob","carol"]}`
	ann.signin(app, ud)
	// Already online: from the initial set, or as it comes online if the
	// presence service had not applied bob's sign-in yet.
	ann.expectWatchlist("online", "bob")

	carol := connect(t, hs2, app.Key)
	carol.signin(app, `{"id":"carol"}`)
	carol.expect(protocol.EventSigninSuccess)
	ann.expectWatchlist("online", "carol")

	// A second connection of carol's changes nothing; closing the last does,
	// also after the presence service restarted (sign-ins are persisted).
	carol2 := signedIn(t, app, e.hs, "carol")
	e.presence.Stop()
	e.startPresence()
	carol.c.Close()
	carol2.c.Close()
	ann.expectWatchlist("offline", "carol")

	// The second gateway dies: its heartbeat stops, bob goes offline.
	nc.Close()
	ann.expectWatchlist("offline", "bob")
	ann.expectQuiet()
}

func TestWatchlistUserData(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	long := `["` + strings.Repeat(`x","`, 100) + `y"]`
	for _, tt := range []struct{ name, watchlist string }{
		{"not a list", `"bob"`},
		{"not strings", `[1,2]`},
		{"empty id", `[""]`},
		{"too long", long},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := connect(t, e.hs, app.Key)
			c.signin(app, `{"id":"ann","watchlist":`+tt.watchlist+`}`)
			c.expectClose(4009)
		})
	}
}

// A user who signs in while a watcher's sign-in asks who is online is in the
// answer and in the live change: the watcher is told once.
func TestWatchlistToldOnceWhenAnswerAndChangeOverlap(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	// ann's request for who is online waits for the presence service.
	_, hs, _ := e.startGateway(func(o *gateway.Options) { o.PresenceTimeout = poll.Patience })
	e.presence.Stop()
	bob := connect(t, e.hs, app.Key)
	bob.signin(app, `{"id":"bob"}`)
	bob.expect(protocol.EventSigninSuccess)
	ann := connect(t, hs, app.Key)
	ann.signin(app, `{"id":"ann","watchlist":["bob","carol"]}`)
	ann.expect(protocol.EventSigninSuccess)
	// Once bob's sign-in is stored, the next service applies it (telling of
	// it live) before it answers ann's request, bob included.
	ops, err := e.js.Stream(context.Background(), names.PresenceOpsStream)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, poll.Patience, "bob's sign-in stored", func() bool {
		info, err := ops.Info(context.Background())
		if err != nil {
			return false
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
			if m, err := ops.GetMsg(context.Background(), seq); err == nil && bytes.Contains(m.Data, []byte(`"bob"`)) {
				return true
			}
		}
		return false
	})
	e.startPresence()
	ann.expectWatchlist("online", "bob")
	// The other telling of bob comes within moments when it comes at all:
	// a quiet while for it to show (it can only make the test pass wrongly,
	// never fail).
	time.Sleep(time.Second)
	ann.expectQuiet()

	carol := connect(t, e.hs, app.Key)
	carol.signin(app, `{"id":"carol"}`)
	carol.expect(protocol.EventSigninSuccess)
	ann.expectWatchlist("online", "carol")
	bob.c.Close()
	ann.expectWatchlist("offline", "bob")
	ann.expectQuiet()
}
