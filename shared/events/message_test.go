package events_test

import (
	"testing"

	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/names"
)

// An event's message carries its subject, data and one header value for
// each of its name, excluded socket and message id, the last two only when
// set.
func TestEventMsg(t *testing.T) {
	for _, tt := range []struct {
		name string
		ev   events.Event
		want map[string]string
	}{
		{"name only", events.Event{AppID: "a.1", Channel: "private-x.1", Name: "e", Data: "d"},
			map[string]string{names.HeaderEvent: "e"}},
		{"all", events.Event{AppID: "a", Channel: "c", Name: "e", Data: "d", ExcludeSocketID: "1.2", MsgID: "k:c"},
			map[string]string{names.HeaderEvent: "e", names.HeaderExclude: "1.2", names.HeaderNatsMsgID: "k:c"}},
		{"message id", events.Event{AppID: "a", Channel: "c", Name: "e", Data: "d", MsgID: "k:c"},
			map[string]string{names.HeaderEvent: "e", names.HeaderNatsMsgID: "k:c"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.ev.Msg()
			if want := names.EventSubject(tt.ev.AppID, tt.ev.Channel); m.Subject != want {
				t.Errorf("subject %q, want %q", m.Subject, want)
			}
			if string(m.Data) != tt.ev.Data {
				t.Errorf("data %q, want %q", m.Data, tt.ev.Data)
			}
			if len(m.Header) != len(tt.want) {
				t.Errorf("headers %v, want %v", m.Header, tt.want)
			}
			for k, v := range tt.want {
				if got := m.Header.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("header %s: %q, want %q", k, got, v)
				}
			}
			// A value added later to one header leaves the others alone.
			m.Header.Add(names.HeaderEvent, "more")
			for k, v := range tt.want {
				if k != names.HeaderEvent && m.Header.Get(k) != v {
					t.Errorf("header %s became %q after another header grew", k, m.Header.Get(k))
				}
			}
		})
	}
}

func BenchmarkEventMsg(b *testing.B) {
	ev := events.Event{AppID: "app1", Channel: "private-App.Models.User.1", Name: `App\Events\OrderShipped`,
		Data: `{"order":{"id":12345}}`, MsgID: "Xk2jd8.1a"}
	b.ReportAllocs()
	for b.Loop() {
		_ = ev.Msg()
	}
}
