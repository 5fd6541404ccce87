package protocol

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzSubscribeData reads the data of pusher:subscribe as the gateway does:
// decoded (object or JSON string), then the channel name checked. Bad data
// is ErrMalformed, a bad name an error; an accepted name has a kind and
// encodes back into a frame.
func FuzzSubscribeData(f *testing.F) {
	for _, s := range []string{
		`{"channel":"private-a","auth":"k:s","channel_data":"{\"user_id\":1}"}`,
		`"{\"channel\":\"presence-a\",\"auth\":\"k:s\"}"`,
		`{"channel":"cache-x","positions":true,"resume":"1.2.3.4","rewind":100,"socket_ids":["1.2",""]}`,
		`{"channel":"#server-to-user-1"}`,
		`{"channel":"private-encrypted-cache-x","rewind":-1}`,
		`{"channel":"a\u0000b"}`, `{"channel":""}`, `{"channel":7}`, `[]`, `null`, `""`, `"\"x\""`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var d SubscribeData
		if err := DecodeData(raw, &d); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if err := ValidateChannel(d.Channel); err != nil {
			return
		}
		kind := ChannelKind(d.Channel)
		_ = kind.NeedsAuth()
		_ = IsCache(d.Channel)
		var back struct {
			Channel string `json:"channel"`
		}
		if err := json.Unmarshal(SubscriptionError(d.Channel, "T", "m", 400), &back); err != nil || back.Channel != d.Channel {
			t.Fatalf("channel %q does not survive a frame: %v", d.Channel, err)
		}
	})
}
