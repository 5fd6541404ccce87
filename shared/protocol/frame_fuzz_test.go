package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"event":"pusher:subscribe","data":{"channel":"private-a","auth":"k:s","channel_data":"{\"user_id\":1}"}}`,
		`{"event":"client-x","channel":"presence-a","data":"{\"a\":\"\\u00e9\"}"}`,
		`{"event":"pusher:ping","data":{}}`,
		`{"event":"e","channel":null,"data":null}`,
		`{"event":7}`, `{"event":""}`, `{"channel":"c"}`, `[]`, `""`, ``, `{`,
		"{\"event\":\"\xff\",\"data\":\"\xfe\"}",
		`{"event":"e","event":"f"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if fr.Event == "" {
			t.Fatal("accepted a frame without an event")
		}
		// Whatever was accepted can be sent back out as a valid frame.
		checkEventFrame(t, fr.Event, fr.Channel, string(fr.Data), nil)

		// DecodeData never panics on what a frame carries.
		var sd SubscribeData
		_ = DecodeData(fr.Data, &sd)
	})
}

func FuzzEventFrame(f *testing.F) {
	f.Add("e", "c", `{"a":1}`, `"user_id":"1"`)
	f.Add("pusher:pong", "", "{}", "")
	f.Add("<\u2028>", "a\"b", "\x00\xff\\", "")
	f.Fuzz(func(t *testing.T, event, channel, data, userID string) {
		var extra []byte
		if userID != "" {
			id, _ := json.Marshal(userID)
			extra = append([]byte(`"user_id":`), id...)
		}
		checkEventFrame(t, event, channel, data, extra)
	})
}

// checkEventFrame asserts that EventFrame writes one JSON object whose event,
// channel and data (always a JSON string) read back as given.
func checkEventFrame(t *testing.T, event, channel, data string, extra []byte) {
	t.Helper()
	b := EventFrame(event, channel, data, extra)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("EventFrame(%q, %q, %q) = %s: not a JSON object: %v", event, channel, data, b, err)
	}
	var got struct {
		Event   *string `json:"event"`
		Channel *string `json:"channel"`
		Data    *string `json:"data"`
	}
	if err := json.Unmarshal(b, &got); err != nil || got.Event == nil || got.Data == nil {
		t.Fatalf("EventFrame = %s: event or data missing or not a string (%v)", b, err)
	}
	if (got.Channel != nil) != (channel != "") {
		t.Fatalf("EventFrame = %s: channel presence wrong for %q", b, channel)
	}
	// Invalid UTF-8 is replaced on encoding, as encoding/json does; valid
	// text reads back exactly.
	same := func(field, want string, got *string) {
		if utf8.ValidString(want) && *got != want {
			t.Fatalf("EventFrame = %s: %s = %q, want %q", b, field, *got, want)
		}
	}
	same("event", event, got.Event)
	same("data", data, got.Data)
	if got.Channel != nil {
		same("channel", channel, got.Channel)
	}
}

// scanFrame gives what encoding/json gives, or leaves the frame to it.
func FuzzScanFrame(f *testing.F) {
	for _, s := range scanFrameCases {
		f.Add([]byte(s.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkScanFrame(t, b)
	})
}

func checkScanFrame(t *testing.T, b []byte) {
	t.Helper()
	got, ok := scanFrame(bytes.TrimSpace(b))
	if !ok {
		return
	}
	want, err := decodeFrame(b)
	if err != nil {
		t.Fatalf("scanFrame(%q) took a frame encoding/json refuses: %v", b, err)
	}
	if got.Event != want.Event || got.Channel != want.Channel || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("scanFrame(%q) = %q %q %q, encoding/json %q %q %q", b, got.Event, got.Channel, got.Data, want.Event, want.Channel, want.Data)
	}
}

// scanSubscribeData gives what encoding/json gives, or leaves the data to
// it.
func FuzzScanSubscribeData(f *testing.F) {
	for _, s := range []string{
		`{"channel":"private-a","auth":"k:s"}`,
		`{"auth":"k:s","channel_data":"{\"user_id\":\"1\"}","channel":"presence-a"}`,
		`{"Channel":"a","CHANNEL":"b"}`, `{"channel":null}`, `{"channel":"a","positions":true}`,
		`{"channel":"\u0061"}`, `{}`, `{"channel":1}`, `{"channel":"a"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		prior := SubscribeData{Channel: "prior", Resume: "r"}
		got := prior
		if len(b) == 0 || b[0] != '{' || !scanSubscribeData(b, &got) {
			if got.Channel != prior.Channel || got.Auth != prior.Auth || got.Resume != prior.Resume {
				t.Fatalf("scanSubscribeData(%q) changed the data it left to encoding/json: %+v", b, got)
			}
			return
		}
		want := prior
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("scanSubscribeData(%q) took data encoding/json refuses: %v", b, err)
		}
		if got.Channel != want.Channel || got.Auth != want.Auth || got.ChannelData != want.ChannelData || got.Resume != want.Resume {
			t.Fatalf("scanSubscribeData(%q) = %+v, encoding/json %+v", b, got, want)
		}
	})
}
