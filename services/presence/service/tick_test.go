package service

import (
	"testing"
	"time"

	"github.com/herald-ws/herald/services/presence/internal/state"
	"github.com/herald-ws/herald/shared/presence"
)

func TestTickOnlyWhileSomethingWaits(t *testing.T) {
	const reconcile = 5 * time.Second
	held := func() *state.State {
		// A member whose last connection was on a draining gateway.
		st := state.New(state.Config{Grace: time.Minute})
		for i, op := range []presence.Op{
			{Op: presence.Snapshot, Gateway: "g", Reg: 1, SnapshotID: "s", Last: true},
			{Op: presence.Join, Gateway: "g", App: "a", Channel: "presence-r", SocketID: "1", UserID: "u"},
			{Op: presence.Drain, Gateway: "g"},
			{Op: presence.Leave, Gateway: "g", App: "a", Channel: "presence-r", SocketID: "1"},
		} {
			st.ApplyAt(uint64(i+1), 0, &op, time.Now())
		}
		return st
	}
	tests := []struct {
		name string
		term func(*term)
		want time.Duration
	}{
		{"idle", func(*term) {}, reconcile},
		{"a member held through its grace", func(t *term) { t.st = held() }, tick},
		{"a throttled count", func(t *term) { t.counts[state.Key{App: "a", Channel: "c"}] = &countState{} }, tick},
		{"a member request waiting", func(t *term) { t.waiting = append(t.waiting, &memberRequest{}) }, tick},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm := &term{svc: &Service{opt: Options{ReconcileInterval: reconcile}}, st: state.New(state.Config{}),
				counts: map[state.Key]*countState{}}
			tt.term(tm)
			if got := tm.tickEvery(); got != tt.want {
				t.Fatalf("tick every %s, want %s", got, tt.want)
			}
		})
	}
}
