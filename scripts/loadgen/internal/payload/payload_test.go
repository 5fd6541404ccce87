package payload

import (
	"encoding/json"
	"testing"
)

// frame builds what a Pusher server sends: data as a JSON string.
func frame(t testing.TB, event, channel, data string) []byte {
	b, err := json.Marshal(map[string]string{"event": event, "channel": channel, "data": data})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestData(t *testing.T) {
	e := Event{Seq: 42, Channel: 3, SentAt: 1700000000123456789}
	tests := []struct {
		name    string
		size    int
		wantLen int
	}{
		{"no padding when too small", 10, len(`{"seq":42,"ch":3,"t":1700000000123456789}`)},
		{"exactly 100", 100, 100},
		{"10 KB", 10240, 10240},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := e.Data(tc.size)
			if len(d) != tc.wantLen {
				t.Fatalf("len(Data(%d)) = %d, want %d", tc.size, len(d), tc.wantLen)
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(d), &v); err != nil {
				t.Fatalf("data is not JSON: %v", err)
			}
		})
	}
}

func TestFromFrame(t *testing.T) {
	e := Event{Seq: 7, Channel: 1, SentAt: 1700000000000000001}
	tests := []struct {
		name   string
		frame  []byte
		want   Event
		wantOK bool
	}{
		{"pusher frame", frame(t, EventName, "bench-1", e.Data(100)), e, true},
		{"with position", []byte(`{"event":"loadgen","channel":"c","data":"{\"seq\":7,\"ch\":1,\"t\":1700000000000000001}","position":"x"}`), e, true},
		{"data as object", []byte(`{"event":"loadgen","data":{"seq":7,"ch":1,"t":1700000000000000001}}`), e, true},
		{"other event", frame(t, "pusher:ping", "", e.Data(0)), Event{}, false},
		{"missing field", []byte(`{"event":"loadgen","data":"{\"seq\":7,\"t\":1}"}`), Event{}, false},
		{"negative", []byte(`{"event":"loadgen","data":"{\"seq\":-7,\"ch\":1,\"t\":1}"}`), Event{}, false},
		{"overflow", []byte(`{"event":"loadgen","data":"{\"seq\":99999999999999999999,\"ch\":1,\"t\":1}"}`), Event{}, false},
		{"time beyond int64", []byte(`{"event":"loadgen","data":"{\"seq\":1,\"ch\":1,\"t\":18446744073709551615}"}`), Event{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := FromFrame(tc.frame)
			if ok != tc.wantOK || got != tc.want {
				t.Fatalf("FromFrame = %+v, %v; want %+v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func FuzzFromFrame(f *testing.F) {
	f.Add(frame(f, EventName, "bench-0", Event{Seq: 1, Channel: 0, SentAt: 5}.Data(64)))
	f.Add([]byte(`{"event":"loadgen","data":{"seq":1,"ch":2,"t":3}}`))
	f.Add([]byte(`{"event":"loadgen","data":"{\"seq\":`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, ok := FromFrame(b)
		if !ok {
			return
		}
		// A frame it accepts round-trips through Data.
		again, ok := FromFrame(frame(t, EventName, "c", e.Data(0)))
		if !ok || again != e {
			t.Fatalf("round trip of %+v gave %+v, %v", e, again, ok)
		}
	})
}

func TestFromObject(t *testing.T) {
	e := Event{Seq: 7, Channel: 3, SentAt: 1234567890}
	line := []byte(`{"push":{"channel":"bench-3","pub":{"data":` + e.Data(100) + `,"offset":8}}}`)
	got, ok := FromObject(line)
	if !ok || got != e {
		t.Fatalf("FromObject = %+v, %v; want %+v", got, ok, e)
	}
	if _, ok := FromObject([]byte(`{"id":2,"subscribe":{}}`)); ok {
		t.Fatal("a reply read as an event")
	}
}
