package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/signing"
)

// The presence service runs inside the all-in-one process: presence
// channels list their members, announce joins and leaves, and the HTTP API
// answers channel queries from the state it persists.
func TestPresenceInOneProcess(t *testing.T) {
	const key, secret = replayAppKey, replayAppSecret
	base := startHerald(t)
	wsBase := "ws" + strings.TrimPrefix(base, "http")

	const ch = "presence-room"
	join := func(user string) (*websocket.Conn, []string) {
		t.Helper()
		ws, socketID := dial(t, wsBase+"/app/"+key)
		channelData := `{"user_id":"` + user + `"}`
		f := subscribeWith(t, ws, map[string]any{"channel": ch,
			"channel_data": channelData, "auth": signing.ChannelAuth(key, secret, socketID, ch, channelData)})
		var d struct {
			Presence struct {
				IDs []string `json:"ids"`
			} `json:"presence"`
		}
		if json.Unmarshal([]byte(dataString(t, f)), &d) != nil {
			t.Fatalf("subscribe answer %+v", f)
		}
		slices.Sort(d.Presence.IDs)
		return ws, d.Presence.IDs
	}

	ann, ids := join("ann")
	if !slices.Equal(ids, []string{"ann"}) {
		t.Fatalf("ann sees %v", ids)
	}
	bob, ids := join("bob")
	if !slices.Equal(ids, []string{"ann", "bob"}) {
		t.Fatalf("bob sees %v", ids)
	}
	if f := readFrame(t, ann); f.Event != "pusher_internal:member_added" || dataString(t, f) != `{"user_id":"bob"}` {
		t.Fatalf("ann got %+v, want member_added of bob", f)
	}

	users := func() []string {
		path := "/apps/shop/channels/" + ch + "/users"
		q := signing.SignRequest(http.MethodGet, path, nil, nil, key, secret, time.Now())
		resp, err := http.Get(base + path + "?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Users []struct {
				ID string `json:"id"`
			} `json:"users"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		var ids []string
		for _, u := range body.Users {
			ids = append(ids, u.ID)
		}
		return ids
	}
	var got []string
	if !poll.Within(poll.Patience, func() bool { got = users(); return slices.Equal(got, []string{"ann", "bob"}) }) {
		t.Fatalf("users %v, want ann and bob", got)
	}

	bob.Close()
	if f := readFrame(t, ann); f.Event != "pusher_internal:member_removed" || dataString(t, f) != `{"user_id":"bob"}` {
		t.Fatalf("ann got %+v, want member_removed of bob", f)
	}
}
