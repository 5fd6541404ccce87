package payload

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/herald-ws/herald/shared/protocol"
)

func addSeeds(f *testing.F) {
	for _, s := range []string{
		`{"name":"e","data":"{}","channels":["a","b"],"socket_id":"1.2","info":"user_count"}`,
		`{"name":"e","data":"x","channel":"private-a"}`,
		`{"batch":[{"name":"e","data":"x","channel":"a"},{"name":"f","data":"","channel":"#server-to-user-1","socket_id":"3.4"}]}`,
		`{"name":"e","data":{"a":1},"channel":"a"}`,
		`{"name":"\u0000","data":"\ud800","channel":"a b"}`,
		`{"batch":null}`,
		`{"name":null,"data":"x"}`,
		`{"name":"e","data":"x","channels":[null,"a"]}`,
		`{`, `[]`, ``, `null`, ` {"name":"e"} `,
	} {
		f.Add([]byte(s))
	}
}

// checkEvent asserts what every accepted event guarantees.
func checkEvent(t *testing.T, ev Event, maxData int) {
	t.Helper()
	if err := protocol.ValidateEventName(ev.Name); err != nil {
		t.Fatalf("accepted bad name %q: %v", ev.Name, err)
	}
	if len(ev.Data) > maxData {
		t.Fatalf("accepted %d bytes of data over %d", len(ev.Data), maxData)
	}
	if len(ev.Channels) == 0 || len(ev.Channels) > MaxChannels {
		t.Fatalf("accepted %d channels", len(ev.Channels))
	}
	seen := map[string]bool{}
	for _, ch := range ev.Channels {
		if err := protocol.ValidateChannel(ch); err != nil {
			t.Fatalf("accepted bad channel %q: %v", ch, err)
		}
		if seen[ch] {
			t.Fatalf("channel %q twice", ch)
		}
		seen[ch] = true
	}
	if ev.SocketID != "" && !ValidSocketID(ev.SocketID) {
		t.Fatalf("accepted socket_id %q", ev.SocketID)
	}
}

func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) || (pe.Status != http.StatusBadRequest && pe.Status != http.StatusRequestEntityTooLarge) || pe.Message == "" {
		t.Fatalf("refusal %v is not a 400 or 413 payload.Error", err)
	}
}

func FuzzParseEvent(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		const maxData = 64
		ev, err := ParseEvent(body, maxData)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		checkEvent(t, ev, maxData)
	})
}

func FuzzParseBatch(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		const maxData = 64
		evs, err := ParseBatch(body, maxData)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if len(evs) == 0 || len(evs) > MaxBatch {
			t.Fatalf("accepted a batch of %d", len(evs))
		}
		for _, ev := range evs {
			checkEvent(t, ev, maxData)
			if len(ev.Channels) != 1 {
				t.Fatalf("batch event with %d channels", len(ev.Channels))
			}
		}
	})
}

// FuzzUnquote: whenever the one-pass decoder of event data answers, it
// agrees with encoding/json.
func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`""`, `"x"`, `"{\"a\":\"b\\/c\"}"`, `"\n\t\r\b\f"`, `"\u00e9"`, `"\"`, `"a\"`, "\"\xff\"", `"é"`, `"\q"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, lit []byte) {
		got, ok := unquote(lit)
		if !ok {
			return
		}
		var want string
		if err := json.Unmarshal(lit, &want); err != nil {
			t.Fatalf("unquote(%q) = %q, but it is not a JSON string: %v", lit, got, err)
		}
		if got != want {
			t.Fatalf("unquote(%q) = %q, encoding/json says %q", lit, got, want)
		}
	})
}

// Every body scanEvent takes decodes to the same event with json.Unmarshal.
func FuzzScanEvent(f *testing.F) {
	addSeeds(f)
	f.Add([]byte(`{"name":"App\\Events\\X","data":"{\"a\":\"b\\/c\"}","channels":["private-a.1", "b"],"socket_id":"1.2"}`))
	f.Add([]byte(`{"name":"e","name":"f","data":"x","channels":[],"channel":"c","info":"user_count"}`))
	f.Add([]byte(` { } `))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := scanEvent(body)
		if !ok {
			return
		}
		var want rawEvent
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("scanned %q, which json.Unmarshal refuses: %v", body, err)
		}
		if (got.Name == nil) != (want.Name == nil) || (got.Name != nil && *got.Name != *want.Name) ||
			got.Channel != want.Channel || got.SocketID != want.SocketID || got.Info != want.Info ||
			len(got.Channels) != len(want.Channels) || (got.Channels == nil) != (want.Channels == nil) {
			t.Fatalf("%q: scanned %+v, json.Unmarshal gives %+v", body, got, want)
		}
		for i := range got.Channels {
			if got.Channels[i] != want.Channels[i] {
				t.Fatalf("%q: channel %d %q, json.Unmarshal gives %q", body, i, got.Channels[i], want.Channels[i])
			}
		}
		if len(want.Data) > 0 {
			var data string
			if err := json.Unmarshal(want.Data, &data); err != nil || !got.dataScanned || data != got.data {
				t.Fatalf("%q: data %q (scanned %v), json.Unmarshal gives %q (%v)", body, got.data, got.dataScanned, data, err)
			}
		} else if got.dataScanned {
			t.Fatalf("%q: data scanned, json.Unmarshal found none", body)
		}
	})
}
