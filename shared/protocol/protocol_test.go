package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeFrame(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		event   string
		channel string
		data    string // raw JSON of data, "" when absent
		ok      bool
	}{
		{"subscribe", `{"event":"pusher:subscribe","data":{"channel":"news","auth":""}}`, "pusher:subscribe", "", `{"channel":"news","auth":""}`, true},
		{"client event", `{"event":"client-typing","channel":"private-chat","data":"{\"x\":1}"}`, "client-typing", "private-chat", `"{\"x\":1}"`, true},
		{"surrounding space", " \n{\"event\":\"pusher:ping\",\"data\":{}}\t", "pusher:ping", "", `{}`, true},
		{"no data", `{"event":"pusher:ping"}`, "pusher:ping", "", "", true},
		{"null channel", `{"event":"e","channel":null}`, "e", "", "", true},
		{"extra members", `{"event":"e","x":[1,2],"data":7}`, "e", "", "7", true},
		{"empty", ``, "", "", "", false},
		{"spaces only", `   `, "", "", "", false},
		{"array", `[{"event":"e"}]`, "", "", "", false},
		{"string", `"pusher:ping"`, "", "", "", false},
		{"truncated", `{"event":"e"`, "", "", "", false},
		{"trailing garbage", `{"event":"e"}x`, "", "", "", false},
		{"no event", `{"channel":"c","data":{}}`, "", "", "", false},
		{"null event", `{"event":null}`, "", "", "", false},
		{"empty event", `{"event":""}`, "", "", "", false},
		{"number event", `{"event":7}`, "", "", "", false},
		{"object event", `{"event":{"a":1}}`, "", "", "", false},
		{"number channel", `{"event":"e","channel":3}`, "", "", "", false},
		{"array channel", `{"event":"e","channel":["c"]}`, "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := DecodeFrame([]byte(tt.in))
			if !tt.ok {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("DecodeFrame(%q) = %+v, %v; want ErrMalformed", tt.in, f, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeFrame(%q): %v", tt.in, err)
			}
			if f.Event != tt.event || f.Channel != tt.channel || string(f.Data) != tt.data {
				t.Errorf("got event %q channel %q data %s; want %q %q %s", f.Event, f.Channel, f.Data, tt.event, tt.channel, tt.data)
			}
		})
	}
}

func TestDecodeData(t *testing.T) {
	three := 3
	tests := []struct {
		name string
		in   string
		want SubscribeData
		ok   bool
	}{
		{"object", `{"channel":"private-a","auth":"k:s"}`, SubscribeData{Channel: "private-a", Auth: "k:s"}, true},
		{"object in a string", `"{\"channel\":\"presence-a\",\"channel_data\":\"{\\\"user_id\\\":1}\"}"`,
			SubscribeData{Channel: "presence-a", ChannelData: `{"user_id":1}`}, true},
		{"replay extension", `{"channel":"a","positions":true,"resume":"p1","rewind":3,"socket_ids":["1.2","3.4"]}`,
			SubscribeData{Channel: "a", Positions: true, Resume: "p1", Rewind: &three, SocketIDs: []string{"1.2", "3.4"}}, true},
		{"padded", "  {\"channel\":\"a\"}  ", SubscribeData{Channel: "a"}, true},
		{"missing", ``, SubscribeData{}, false},
		{"spaces", `   `, SubscribeData{}, false},
		{"bad JSON", `{"channel":`, SubscribeData{}, false},
		{"string of bad JSON", `"{\"channel\":"`, SubscribeData{}, false},
		{"broken string", `"abc`, SubscribeData{}, false},
		{"wrong type", `{"channel":5}`, SubscribeData{}, false},
		{"array", `["a"]`, SubscribeData{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got SubscribeData
			err := DecodeData(json.RawMessage(tt.in), &got)
			if !tt.ok {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("DecodeData(%q) = %+v, %v; want ErrMalformed", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeData(%q): %v", tt.in, err)
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(tt.want)
			if string(gb) != string(wb) {
				t.Errorf("got %s, want %s", gb, wb)
			}
		})
	}

	var s SigninData
	if err := DecodeData(json.RawMessage(`{"auth":"k:s","user_data":"{\"id\":\"1\"}"}`), &s); err != nil || s.Auth != "k:s" || s.UserData != `{"id":"1"}` {
		t.Errorf("signin data = %+v, %v", s, err)
	}
}

func TestValidateChannel(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"public", "news", true},
		{"every allowed character", "Az09_-=@,.;", true},
		{"private", "private-orders.42", true},
		{"presence", "presence-room@1", true},
		{"encrypted", "private-encrypted-x", true},
		{"server to user", "#server-to-user-42", true},
		{"server to user with odd id", "#server-to-user-a=b@c", true},
		{"200 characters", strings.Repeat("c", 200), true},
		{"empty", "", false},
		{"201 characters", strings.Repeat("c", 201), false},
		{"space", "a b", false},
		{"slash", "a/b", false},
		{"star", "a*", false},
		{"hash outside the user form", "#news", false},
		{"server to user without id", "#server-to-user-", false},
		{"server to user with hash", "#server-to-user-1#2", false},
		{"non-ASCII", "canal-é", false},
		{"NUL", "a\x00", false},
		{"newline", "a\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateChannel(tt.in)
			if (err == nil) != tt.ok {
				t.Errorf("ValidateChannel(%q) = %v, want ok=%v", tt.in, err, tt.ok)
			}
		})
	}
}

func TestValidateEventName(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"e", true},
		{`App\Events\OrderShipped`, true},
		{"with spaces and ü", true},
		{strings.Repeat("n", 200), true},
		{"", false},
		{strings.Repeat("n", 201), false},
	}
	for _, tt := range tests {
		if err := ValidateEventName(tt.in); (err == nil) != tt.ok {
			t.Errorf("ValidateEventName(%.20q…) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func TestChannelKind(t *testing.T) {
	tests := []struct {
		in        string
		kind      Kind
		needsAuth bool
		cache     bool
	}{
		{"news", Public, false, false},
		{"private-a", Private, true, false},
		{"private-encrypted-a", PrivateEncrypted, true, false},
		{"presence-a", Presence, true, false},
		{"#server-to-user-1", ServerToUser, false, false},
		{"cache-a", Public, false, true},
		{"private-cache-a", Private, true, true},
		{"private-encrypted-cache-a", PrivateEncrypted, true, true},
		{"presence-cache-a", Presence, true, true},
		{"privatex", Public, false, false},
		{"presence", Public, false, false},
		{"public-cache-a", Public, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			k := ChannelKind(tt.in)
			if k != tt.kind || k.NeedsAuth() != tt.needsAuth || IsCache(tt.in) != tt.cache {
				t.Errorf("kind %v auth %v cache %v; want %v %v %v", k, k.NeedsAuth(), IsCache(tt.in), tt.kind, tt.needsAuth, tt.cache)
			}
		})
	}
}

// parseFrame decodes a server frame, keeping data raw.
func parseFrame(t *testing.T, b []byte) map[string]json.RawMessage {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("not valid JSON: %s", b)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %s", b)
	}
	return m
}

func str(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s is not a JSON string", raw)
	}
	return s
}

func TestEventFrame(t *testing.T) {
	tests := []struct {
		name    string
		event   string
		channel string
		data    string
		extra   string
	}{
		{"plain", "App\\Events\\Shipped", "private-orders.1", `{"id":1}`, ""},
		{"no channel", "pusher:pong", "", "{}", ""},
		{"empty data", "e", "c", "", ""},
		{"escapes", "e\"\\", "c", "line\nbreak\ttab \"quoted\" \\ \x00\x1f", ""},
		{"html characters", "<e>", "c", "<script>&</script>", ""},
		{"unicode", "événement", "c", "日本語 \u2028\u2029 😀", ""},
		{"extra user_id", "client-typing", "presence-room", `{"typing":true}`, `"user_id":"7"`},
		{"extra position", "e", "c", "x", `"position":"1.42.1700000000","x":null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := EventFrame(tt.event, tt.channel, tt.data, []byte(tt.extra))
			m := parseFrame(t, b)
			if got := str(t, m["event"]); got != tt.event {
				t.Errorf("event = %q, want %q", got, tt.event)
			}
			if tt.channel == "" {
				if _, ok := m["channel"]; ok {
					t.Errorf("channel present without a channel: %s", b)
				}
			} else if got := str(t, m["channel"]); got != tt.channel {
				t.Errorf("channel = %q, want %q", got, tt.channel)
			}
			// data is always a JSON string, as Pusher sends it.
			if got := str(t, m["data"]); got != tt.data {
				t.Errorf("data = %q, want %q", got, tt.data)
			}
			// Same escaping as encoding/json.
			want, _ := json.Marshal(tt.data)
			if string(m["data"]) != string(want) {
				t.Errorf("data encoded as %s, encoding/json writes %s", m["data"], want)
			}
			if tt.extra != "" {
				var extra map[string]json.RawMessage
				if err := json.Unmarshal([]byte("{"+tt.extra+"}"), &extra); err != nil {
					t.Fatal(err)
				}
				for k, v := range extra {
					if string(m[k]) != string(v) {
						t.Errorf("extra %s = %s, want %s", k, m[k], v)
					}
				}
			}
		})
	}
}

func TestErrorFrame(t *testing.T) {
	tests := []struct {
		name     string
		code     int
		message  string
		wantCode string
	}{
		{"coded", CodeAppNotFound, "App key nope not in this cluster", "4001"},
		{"null code", 0, "Client event rejected - only supported on private and presence channels", "null"},
		{"escaped message", CodeGenericReconnect, "bad \"frame\"\n<here>", "4200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ErrorFrame(tt.code, tt.message)
			m := parseFrame(t, b)
			if got := str(t, m["event"]); got != EventError {
				t.Errorf("event = %q", got)
			}
			// data is an object here, not a string.
			var data map[string]json.RawMessage
			if err := json.Unmarshal(m["data"], &data); err != nil {
				t.Fatalf("data is not an object: %s", m["data"])
			}
			if string(data["code"]) != tt.wantCode {
				t.Errorf("code = %s, want %s", data["code"], tt.wantCode)
			}
			if got := str(t, data["message"]); got != tt.message {
				t.Errorf("message = %q, want %q", got, tt.message)
			}
		})
	}
}

func TestSubscriptionError(t *testing.T) {
	b := SubscriptionError("private-\"x\"", "AuthError", "Invalid signature", 401)
	m := parseFrame(t, b)
	if got := str(t, m["event"]); got != EventSubscriptionError {
		t.Errorf("event = %q", got)
	}
	if got := str(t, m["channel"]); got != `private-"x"` {
		t.Errorf("channel = %q", got)
	}
	var data struct {
		Type   string `json:"type"`
		Error  string `json:"error"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(m["data"], &data); err != nil {
		t.Fatalf("data is not an object: %s", m["data"])
	}
	if data.Type != "AuthError" || data.Error != "Invalid signature" || data.Status != 401 {
		t.Errorf("data = %+v", data)
	}
}

func TestFixedFrames(t *testing.T) {
	m := parseFrame(t, ConnectionEstablished("123.456", 30))
	if got := str(t, m["event"]); got != EventConnectionEstablished {
		t.Errorf("event = %q", got)
	}
	var data struct {
		SocketID        string `json:"socket_id"`
		ActivityTimeout int    `json:"activity_timeout"`
	}
	if err := json.Unmarshal([]byte(str(t, m["data"])), &data); err != nil || data.SocketID != "123.456" || data.ActivityTimeout != 30 {
		t.Errorf("data = %+v, %v", data, err)
	}
	for name, b := range map[string][]byte{EventPing: Ping, EventPong: Pong} {
		m := parseFrame(t, b)
		if got := str(t, m["event"]); got != name || str(t, m["data"]) != "{}" {
			t.Errorf("%s frame = %s", name, b)
		}
	}
}

func TestProtocolError(t *testing.T) {
	e := Errorf(CodeClientEventRateLimit, "over %d per second", 10)
	if e.Close || e.Code != 4301 || e.Message != "over 10 per second" {
		t.Errorf("Errorf = %+v", e)
	}
	f := Fatalf(CodeUnauthorized, "bad sign-in")
	if !f.Close || f.Code != 4009 {
		t.Errorf("Fatalf = %+v", f)
	}
	var err error = f
	var pe *Error
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "4009") {
		t.Errorf("Error() = %q", err.Error())
	}
}

// scanFrameCases: frames scanFrame reads (scanned) and those it leaves to
// encoding/json.
var scanFrameCases = []struct {
	in      string
	scanned bool
}{
	{`{"event":"pusher:subscribe","data":{"channel":"private-a","auth":"k:s"}}`, true},
	{` {"event" : "pusher:subscribe" , "data" : {"channel":"a\"}","x":[1,{"y":"]"}]} } `, true},
	{`{"event":"client-x","channel":"presence-a","data":"{\"a\":\"\\u00e9\"}"}`, true},
	{`{"EVENT":"e","Channel":"c","Data":5}`, true},
	{`{"event":"e","channel":null,"data":null}`, true},
	{`{"event":"e","event":"f","data":true,"data":[]}`, true},
	{`{"other":{"event":"x"},"event":"é"}`, true},
	{`{"event":"e","data":"x"}`, true},
	{`{"event":"\u0065"}`, false},
	{`{"ev\u0065nt":"e"}`, false},
	{"{\"event\":\"\xff\"}", false},
	{`{"event":"e","event":null}`, false},
	{`{"event":""}`, false},
	{`{"event":7}`, false},
	{`{"event":"e","channel":1}`, false},
	{`{"event":"e"`, false},
	{`{}`, false},
	{`[]`, false},
	{``, false},
}

func TestScanFrame(t *testing.T) {
	for _, c := range scanFrameCases {
		t.Run(c.in, func(t *testing.T) {
			if _, ok := scanFrame(bytes.TrimSpace([]byte(c.in))); ok != c.scanned {
				t.Fatalf("scanned %v, want %v", ok, c.scanned)
			}
			checkScanFrame(t, []byte(c.in))
		})
	}
}

// BenchmarkDecodeSubscribe decodes a pusher:subscribe and its data.
func BenchmarkDecodeSubscribe(b *testing.B) {
	frame := []byte(`{"event":"pusher:subscribe","data":{"auth":"app-key:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","channel":"private-App.Models.User.12345"}}`)
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			f, err := DecodeFrame(frame)
			var d SubscribeData
			if err != nil || DecodeData(f.Data, &d) != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			f, err := decodeFrame(frame)
			var d SubscribeData
			if err != nil || json.Unmarshal(f.Data, &d) != nil {
				b.Fatal(err)
			}
		}
	})
}
