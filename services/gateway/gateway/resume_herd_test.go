package gateway_test

import (
	"slices"
	"strconv"
	"sync"
	"testing"
)

// Clients of a lost gateway resume on another at once, from two positions,
// while events keep coming: the resumes of the channel share history reads
// and replayed frames, and each client still gets every event after its own
// position once, in order, then herald:resumed, then live.
func TestConcurrentResumesOfOneChannel(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	_, other, reg := e.startGateway()
	const ch = "private-herd"

	first := connect(t, e.hs, "key-1")
	first.subscribeWith(app, ch, map[string]any{"positions": true})
	first.expect("pusher_internal:subscription_succeeded")
	var positions []string
	for i := 0; i <= 2; i++ {
		e.store(ch, "e", strconv.Itoa(i), "")
		positions = append(positions, first.expect("e").pos(t))
	}
	first.c.Close()
	for i := 3; i <= 10; i++ {
		e.store(ch, "e", strconv.Itoa(i), "")
	}

	const n = 16
	clients := make([]*client, n)
	after := make([]int, n) // the last event each client had
	for i := range clients {
		after[i] = 2 * (i % 2)
		clients[i] = connect(t, other, "key-1")
	}
	for i, c := range clients {
		c.subscribeWith(app, ch, map[string]any{"resume": positions[after[i]]})
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 11; i <= 20; i++ {
			e.store(ch, "e", strconv.Itoa(i), "")
		}
	})
	for i, c := range clients {
		c.expect("pusher_internal:subscription_succeeded")
		want := numbers(after[i]+1, 20)
		var got []string
		var last uint64
		replayed := -1
		for len(got) < len(want) || replayed < 0 {
			f := c.read()
			switch f.Event {
			case "e":
				got = append(got, f.str(t))
				seq := seqOf(t, f.pos(t))
				if seq <= last {
					t.Fatalf("client %d: position %d after %d", i, seq, last)
				}
				last = seq
			case "herald:resumed":
				if replayed >= 0 {
					t.Fatalf("client %d: herald:resumed twice", i)
				}
				replayed, _ = resumedData(t, f)
				if replayed != len(got) || replayed < 10-after[i] {
					t.Fatalf("client %d: %s after %d events, want at least the %d missed", i, f.raw, len(got), 10-after[i])
				}
			default:
				t.Fatalf("client %d: unexpected %s", i, f.raw)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("client %d resuming after %d: events %v, want %v", i, after[i], got, want)
		}
	}
	wg.Wait()
	// How many reads the resumes shared depends on how they met on the way;
	// each read is counted.
	if reads := metric(t, reg, "herald_gateway_resume_reads_total"); reads < 1 || reads > n {
		t.Fatalf("%v history reads for %d resumes", reads, n)
	}
	for i, c := range clients {
		if extra := c.ping(); len(extra) != 0 {
			t.Fatalf("client %d: more frames: %v", i, extra)
		}
	}
}
