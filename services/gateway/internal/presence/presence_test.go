package presence

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestParseChannelData(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		wantID   string
		wantInfo string
		err      error
	}{
		{"string id with info", `{"user_id":"ann","user_info":{"name":"Ann"}}`, "ann", `{"name":"Ann"}`, nil},
		{"numeric id", `{"user_id":42}`, "42", "", nil},
		{"negative and fractional id kept as written", `{"user_id":-1.5e3}`, "-1.5e3", "", nil},
		{"null info", `{"user_id":"a","user_info":null}`, "a", "", nil},
		{"string info", `{"user_id":"a","user_info":"hi"}`, "a", `"hi"`, nil},
		{"id at the length limit", `{"user_id":"` + strings.Repeat("u", 8) + `"}`, strings.Repeat("u", 8), "", nil},
		{"not JSON", `nope`, "", "", ErrInvalid},
		{"array", `[1]`, "", "", ErrInvalid},
		{"no user_id", `{"user_info":{}}`, "", "", ErrInvalid},
		{"null user_id", `{"user_id":null}`, "", "", ErrInvalid},
		{"empty user_id", `{"user_id":""}`, "", "", ErrInvalid},
		{"object user_id", `{"user_id":{"a":1}}`, "", "", ErrInvalid},
		{"boolean user_id", `{"user_id":true}`, "", "", ErrInvalid},
		{"id too long", `{"user_id":"` + strings.Repeat("u", 9) + `"}`, "", "", ErrTooLarge},
		{"info too large", `{"user_id":"a","user_info":"` + strings.Repeat("i", 20) + `"}`, "", "", ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseChannelData(tt.data, 8, 16)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if m.UserID != tt.wantID || string(m.Info) != tt.wantInfo {
				t.Errorf("got %q %s, want %q %s", m.UserID, m.Info, tt.wantID, tt.wantInfo)
			}
		})
	}
}

func FuzzParseChannelData(f *testing.F) {
	for _, s := range []string{
		`{"user_id":"ann","user_info":{"name":"Ann"}}`, `{"user_id":42}`, `{"user_id":"é\u0000"}`,
		`{"user_id":1e999}`, `{"user_id":"a","user_info":[1,2,{"x":null}]}`, `"{}"`, ``, `{`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		m, err := ParseChannelData(data, 16, 64)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if m.UserID == "" || len(m.UserID) > 16 || len(m.Info) > 64 {
			t.Fatalf("limits not applied: %+v", m)
		}
		if m.Info != nil && !json.Valid(m.Info) {
			t.Fatalf("info is not JSON: %q", m.Info)
		}
		// Whatever was accepted must encode into the frames sent to others.
		for _, b := range [][]byte{AddedData(m), RemovedData(m.UserID)} {
			if !json.Valid(b) {
				t.Fatalf("invalid member data %s", b)
			}
		}
		s := NewStore()
		if err := s.Join("a", "presence-x", "1.1", m, 10, func(snap []byte, added bool) error {
			if !json.Valid(snap) || !added {
				t.Fatalf("snapshot %s added %v", snap, added)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}

type joined struct {
	snap  string
	added bool
}

func join(t *testing.T, s *Store, socket, user string, limit int) (joined, error) {
	t.Helper()
	var j joined
	err := s.Join("app", "presence-room", socket, Member{UserID: user, Info: json.RawMessage(`{"n":"` + user + `"}`)}, limit,
		func(snap []byte, added bool) error {
			j = joined{string(snap), added}
			return nil
		})
	return j, err
}

func leave(s *Store, socket string) *Member {
	var removed *Member
	s.Leave("app", "presence-room", socket, func(m *Member) { removed = m })
	return removed
}

func TestJoinLeave(t *testing.T) {
	s := NewStore()
	j, err := join(t, s, "1.1", "ann", 2)
	if err != nil || !j.added || j.snap != `{"presence":{"ids":["ann"],"hash":{"ann":{"n":"ann"}},"count":1}}` {
		t.Fatalf("first join: %+v %v", j, err)
	}
	j, _ = join(t, s, "1.2", "bob", 2)
	if !j.added || j.snap != `{"presence":{"ids":["ann","bob"],"hash":{"ann":{"n":"ann"},"bob":{"n":"bob"}},"count":2}}` {
		t.Fatalf("second join: %+v", j)
	}
	// Bob's second connection: not a new member, and not over the limit.
	if j, err = join(t, s, "1.3", "bob", 2); err != nil || j.added {
		t.Fatalf("second connection: %+v %v", j, err)
	}
	// Joining again with the same socket changes nothing.
	if j, err = join(t, s, "1.3", "bob", 2); err != nil || j.added {
		t.Fatalf("same socket again: %+v %v", j, err)
	}
	if _, err := join(t, s, "1.4", "cat", 2); !errors.Is(err, ErrFull) {
		t.Fatalf("third user: %v, want ErrFull", err)
	}
	if m := leave(s, "1.3"); m != nil {
		t.Fatalf("bob left with a connection still open: %+v", m)
	}
	if m := leave(s, "1.2"); m == nil || m.UserID != "bob" {
		t.Fatalf("bob's last connection: %+v", m)
	}
	if m := leave(s, "1.2"); m != nil {
		t.Fatalf("leaving twice: %+v", m)
	}
	if got := string(s.Snapshot("app", "presence-room")); got != `{"presence":{"ids":["ann"],"hash":{"ann":{"n":"ann"}},"count":1}}` {
		t.Fatalf("snapshot %s", got)
	}
	leave(s, "1.1")
	if len(s.channels) != 0 {
		t.Errorf("%d channels left in the store", len(s.channels))
	}
}

func TestJoinUndoneWhenCallbackFails(t *testing.T) {
	s := NewStore()
	boom := errors.New("boom")
	err := s.Join("app", "presence-room", "1.1", Member{UserID: "ann"}, 10, func([]byte, bool) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if got := string(s.Snapshot("app", "presence-room")); got != `{"presence":{"ids":[],"hash":{},"count":0}}` {
		t.Errorf("snapshot after a failed join: %s", got)
	}
}

// Every join and leave is seen in one order: replaying the callbacks gives
// the same member list as the store.
func TestConcurrentJoins(t *testing.T) {
	s := NewStore()
	var mu sync.Mutex
	members := map[string]int{}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := string(rune('a' + i%4))
			for j := range 100 {
				socket := user + "." + string(rune('0'+i)) + string(rune('0'+j%10))
				_ = s.Join("app", "presence-room", socket, Member{UserID: user}, 100, func(_ []byte, added bool) error {
					if added {
						mu.Lock()
						members[user]++
						mu.Unlock()
					}
					return nil
				})
				s.Leave("app", "presence-room", socket, func(m *Member) {
					if m != nil {
						mu.Lock()
						members[m.UserID]--
						mu.Unlock()
					}
				})
			}
		}()
	}
	wg.Wait()
	for u, n := range members {
		if n != 0 {
			t.Errorf("user %s: %d more adds than removes", u, n)
		}
	}
	if len(s.channels) != 0 {
		t.Errorf("%d channels left", len(s.channels))
	}
}
