package gateway_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/protocol"
)

// FuzzClientFrame sends arbitrary frames to a live gateway. Whatever a
// client sends, the gateway answers with well-formed frames and either stays
// usable (a pusher:ping still gets its pong) or closes with a code of the
// bad-frame policy, 4009 after a bad pusher:signin, or 1007 after text that
// is not UTF-8.
func FuzzClientFrame(f *testing.F) {
	for _, s := range []string{
		`{"event":"pusher:ping","data":{}}`,
		`{"event":"pusher:subscribe","data":{"channel":"news"}}`,
		`{"event":"pusher:subscribe","data":"{\"channel\":\"private-x\",\"auth\":\"key-1:00\"}"}`,
		`{"event":"pusher:subscribe","data":{"channel":"presence-x","auth":"k:s","channel_data":"{\"user_id\":1}"}}`,
		`{"event":"pusher:subscribe","data":{"channel":"#server-to-user-1"}}`,
		`{"event":"pusher:subscribe","data":{"channel":"news","positions":true}}`,
		`{"event":"pusher:subscribe","data":{"channel":"feed","resume":"1.0.0.0","socket_ids":["1.2",""]}}`,
		`{"event":"pusher:subscribe","data":{"channel":"feed","rewind":100,"resume":"x"}}`,
		`{"event":"pusher:subscribe","data":{"channel":"cache-x","rewind":-1}}`,
		`{"event":"pusher:unsubscribe","data":{"channel":"news"}}`,
		`{"event":"pusher:signin","data":{"auth":"x","user_data":"{}"}}`,
		`{"event":"client-x","channel":"news","data":{"a":1}}`,
		`{"event":"client-x","channel":"private-x","data":"s"}`,
		`{"event":"pusher:unknown"}`,
		`{"event":"x"}`,
		`{"event":null}`,
		`[]`,
		`{"event":"pusher:subscribe","data":{"channel":"` + strings.Repeat("a", 300) + `"}}`,
		"\x00\xff",
		``,
	} {
		f.Add(s)
	}
	e := newEnv(f)
	// One connection serves many inputs, until the gateway closes it.
	var c *client
	f.Cleanup(func() {
		if c != nil {
			c.c.Close()
		}
	})
	f.Fuzz(func(t *testing.T, frame string) {
		if c == nil {
			ws, _, err := websocket.DefaultDialer.Dial(wsURL(e.hs, "/app/key-1"+query), nil)
			if err != nil {
				t.Fatal(err)
			}
			c = &client{t: t, c: ws}
			c.expect("pusher:connection_established")
		}
		c.t = t
		_ = c.c.WriteMessage(websocket.TextMessage, []byte(frame))
		_ = c.c.WriteMessage(websocket.TextMessage, []byte(`{"event":"pusher:ping","data":{}}`))
		_ = c.c.SetReadDeadline(time.Now().Add(poll.Patience))
		for {
			_, b, err := c.c.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if !errors.As(err, &ce) ||
					(ce.Code != protocol.CodeGenericReconnect && ce.Code != protocol.CodeMessageTooLarge &&
						ce.Code != protocol.CodeUnauthorized && ce.Code != websocket.CloseInvalidFramePayloadData) {
					t.Fatalf("connection ended with %v", err)
				}
				c.c.Close()
				c = nil
				return
			}
			var fr struct {
				Event *string `json:"event"`
			}
			if err := json.Unmarshal(b, &fr); err != nil || fr.Event == nil {
				t.Fatalf("malformed frame from the gateway: %q", b)
			}
			if *fr.Event == "pusher:pong" {
				return
			}
		}
	})
}
