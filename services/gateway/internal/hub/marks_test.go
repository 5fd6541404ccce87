package hub

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/names"
	"github.com/nats-io/nats.go"
)

// batchReads counts the batch Direct Gets (tail reads) on the app's events
// stream.
func batchReads(t *testing.T, e *streamEnv) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	sub, err := e.nc.Subscribe("$JS.API.DIRECT.GET."+names.EventsStream(e.app.ID), func(*nats.Msg) { n.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &n
}

// A wave of new channels while the stream stores nothing reads no channel's
// tail: the stream's mark shows there is nothing to find, and the periodic
// tail checks are for channels with traffic.
func TestNewChannelsOnAQuietStreamReadNoTail(t *testing.T) {
	// Tail checks every other tick: none of them may read a channel that
	// never had traffic, even in the hub's first TailWindow.
	e := newStreamEnv(t, RepairOptions{Tick: 20 * time.Millisecond, TailCheck: 40 * time.Millisecond, TailWindow: time.Minute})
	e.publish("before", "x", "") // the stream is not empty
	reads := batchReads(t, e)
	for i := range 50 {
		if err := e.h.Subscribe(e.app.ID, "orders-"+strconv.Itoa(i), &recorder{id: "1." + strconv.Itoa(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(150 * time.Millisecond) // past the checks of the next ticks
	if n := reads.Load(); n != 0 {
		t.Fatalf("%d tail reads for 50 new channels on a stream that stored nothing", n)
	}
	// Traffic afterwards still flows.
	r := &recorder{id: "2.1"}
	if err := e.h.Subscribe(e.app.ID, "orders-0", r, nil); err != nil {
		t.Fatal(err)
	}
	e.publish("orders-0", "new", "")
	eventually(t, "the live event", func() bool { return len(r.got()) == 1 })
}

// An event stored between a new channel's start and its live subscription
// moves the stream's mark, so the channel's tail is read and the event is
// not lost to the channel's sequence.
func TestNewChannelReadsWhatWasStoredBeforeItsSubscription(t *testing.T) {
	e := newStreamEnv(t, RepairOptions{Tick: 20 * time.Millisecond})
	var seq atomic.Uint64
	afterSync = func(c *channel) {
		if c.name == "orders" {
			seq.Store(e.publish("orders", "between", ""))
		}
	}
	t.Cleanup(func() { afterSync = nil })
	if err := e.h.Subscribe(e.app.ID, "orders", &recorder{id: "1.1"}, nil); err != nil {
		t.Fatal(err)
	}
	live := names.LiveSubject(e.app.ID, "orders")
	sh := e.h.shardFor(live)
	sh.mu.RLock()
	c := sh.channels[live]
	sh.mu.RUnlock()
	eventually(t, "the event stored before the subscription", func() bool {
		c.seq.mu.Lock()
		defer c.seq.mu.Unlock()
		// A running repair owns the merger: read it only when none is.
		return !c.seq.busy && c.seq.m != nil && c.seq.m.Last().Seq == seq.Load()
	})
}

// Checks that come while the next read of the mark waits for markGap share
// that read: one stream info request for them all, where each read would
// otherwise leave those arriving during it to start the next.
func TestChecksShareAReadOfTheMark(t *testing.T) {
	e := newStreamEnv(t, RepairOptions{})
	var infos atomic.Int64
	sub, err := e.nc.Subscribe("$JS.API.STREAM.INFO."+names.EventsStream(e.app.ID), func(*nats.Msg) { infos.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ms := newMarks(e.h.rp.eng)
	ms.gap = time.Second // the callers below all come within it
	if _, err := ms.after(e.ctx, e.app.ID); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := ms.after(e.ctx, e.app.ID); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the requests seen", func() bool { return infos.Load() >= 2 })
	time.Sleep(20 * time.Millisecond) // no more must come
	if n := infos.Load(); n != 2 {
		t.Fatalf("%d stream info requests for a read and 20 checks after it, want 2", n)
	}
}
