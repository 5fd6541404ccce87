package replay

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/position"
)

// gathering is the number of resumes of channel waiting for its next read.
func (e *env) gathering(eng *Engine, channel string) int {
	eng.lanesMu.Lock()
	defer eng.lanesMu.Unlock()
	for k, l := range eng.lanes {
		if strings.HasSuffix(k.subject, "."+channel) && l.next != nil {
			return l.next.waiting
		}
	}
	return 0
}

type resumeResult struct {
	h   History
	err error
}

func TestConcurrentResumesShareOneRead(t *testing.T) {
	e := newEnv(t, appconf.App{})
	var want []uint64
	for i := range 20 {
		s := e.publish("a", "x", `{"i":`+string(rune('0'+i%10))+`}`, "")
		e.publish("b", "x", `{}`, "")
		if i >= 5 {
			want = append(want, s)
		}
	}
	eng, err := New(e.nc, Options{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	from := want[0] - 1
	results := e.resumeFrom(t, eng, "a", from, from, from)
	if got := eng.reads.Load(); got != 1 {
		t.Fatalf("3 concurrent resumes from one position read the history %d times, want once", got)
	}
	epoch := e.epoch()
	encoded := 0
	encode := func(ev *Event) []byte {
		encoded++
		return []byte(ev.Name + string(ev.Data))
	}
	var frames [][]byte
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("resume %d: %v", i, r.err)
		}
		if r.h.Start.Seq != from || r.h.More() || !slices.Equal(seqs(r.h.Events), want) {
			t.Fatalf("resume %d: start %d, events %v (more %v), want %d then %v", i, r.h.Start.Seq, seqs(r.h.Events), r.h.More(), from, want)
		}
		// Each resume's merger delivers every event once, in order.
		out := NewMerger(r.h.Start).Add(nil, r.h.Events...)
		if !slices.Equal(seqs(out), want) {
			t.Fatalf("resume %d delivers %v, want %v", i, seqs(out), want)
		}
		frames = append(frames, out[0].SharedFrame(epoch, encode))
	}
	if encoded != 1 {
		t.Fatalf("the first event's frame was encoded %d times for 3 resumes, want once", encoded)
	}
	for _, f := range frames[1:] {
		if &f[0] != &frames[0][0] || !bytes.Equal(f, frames[0]) {
			t.Fatal("the resumes got different copies of the first event's frame")
		}
	}

	// A lone resume later reads on its own.
	h, err := eng.Resume(e.ctx, e.app.ID, "a", e.at(from))
	if err != nil || !slices.Equal(seqs(h.Events), want) {
		t.Fatalf("a later resume: %v, %v", seqs(h.Events), err)
	}
	if got := eng.reads.Load(); got != 2 {
		t.Fatalf("%d reads after a later resume, want 2", got)
	}
	if h.Events[0].shared != nil {
		t.Error("the events of a read that served one resume carry a shared frame")
	}
}

// A resume must not take the result of a read that began before it: an
// event stored in between would reach neither that read nor its live
// subscription, made later.
func TestResumeDoesNotJoinAReadUnderWay(t *testing.T) {
	e := newEnv(t, appconf.App{})
	first := []uint64{e.publish("a", "x", `1`, ""), e.publish("a", "x", `2`, "")}
	eng, err := New(e.nc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	read, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	eng.afterRead = func() {
		once.Do(func() {
			close(read)
			<-resume
		})
	}
	from := e.at(first[0] - 1)
	a := make(chan resumeResult, 1)
	go func() {
		h, err := eng.Resume(e.ctx, e.app.ID, "a", from)
		a <- resumeResult{h, err}
	}()
	<-read // the first read is over, its result not yet handed out
	late := e.publish("a", "x", `3`, "")
	b := make(chan resumeResult, 1)
	go func() {
		h, err := eng.Resume(e.ctx, e.app.ID, "a", from)
		b <- resumeResult{h, err}
	}()
	poll.Until(t, poll.Patience, "the second resume waiting", func() bool { return e.gathering(eng, "a") == 1 })
	close(resume)
	ra, rb := <-a, <-b
	if ra.err != nil || rb.err != nil {
		t.Fatal(ra.err, rb.err)
	}
	if !slices.Equal(seqs(ra.h.Events), first) {
		t.Fatalf("first resume: %v, want %v", seqs(ra.h.Events), first)
	}
	if want := append(slices.Clone(first), late); !slices.Equal(seqs(rb.h.Events), want) {
		t.Fatalf("second resume: %v, want %v (its own read, after the event stored meanwhile)", seqs(rb.h.Events), want)
	}
	if got := eng.reads.Load(); got != 2 {
		t.Fatalf("%d reads, want 2", got)
	}
}

// Resumes that share a first page each read the rest of a long history on
// their own.
func TestSharedReadWithPages(t *testing.T) {
	e := newEnv(t, appconf.App{})
	data := strings.Repeat("d", 1000)
	var all []uint64
	for range 20 {
		all = append(all, e.publish("a", "x", data, ""))
	}
	eng := e.pagedEngine(4000)
	eng.slots = make(chan struct{}, 1)
	froms := []uint64{all[1], all[3], all[1]}
	results := e.resumeFrom(t, eng, "a", froms...)
	if got := eng.reads.Load(); got != 1 {
		t.Fatalf("%d first-page reads for 3 resumes, want 1", got)
	}
	for i, r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if !r.h.More() {
			t.Fatalf("resume %d: its events of 1,000 bytes fit in a page of 4,000", i)
		}
		var got []Event
		for _, page := range readPages(t, e, r.h) {
			got = append(got, page...)
		}
		want := all[slices.Index(all, froms[i])+1:]
		if out := NewMerger(r.h.Start).Add(nil, got...); !slices.Equal(seqs(out), want) {
			t.Fatalf("resume from %d delivers %v, want %v", froms[i], seqs(out), want)
		}
	}
}

// resumeFrom starts resumes of channel from each of froms at once and
// returns their results, in that order, once all are gathered on one read.
func (e *env) resumeFrom(t *testing.T, eng *Engine, channel string, froms ...uint64) []resumeResult {
	t.Helper()
	release, err := eng.acquire(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]resumeResult, len(froms))
	var wg sync.WaitGroup
	for i, from := range froms {
		pos := position.Position{Epoch: e.epoch(), Seq: from}.String()
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].h, out[i].err = eng.Resume(e.ctx, e.app.ID, channel, pos)
		}()
	}
	poll.Until(t, poll.Patience, "the resumes gathered", func() bool { return e.gathering(eng, channel) == len(froms) })
	release()
	wg.Wait()
	return out
}

// Resumes of one channel from different positions share a read from the
// oldest; each gets the events after its own.
func TestSharedReadFromTheOldestPosition(t *testing.T) {
	e := newEnv(t, appconf.App{})
	var all []uint64
	for range 10 {
		all = append(all, e.publish("a", "x", `{}`, ""))
		e.publish("b", "x", `{}`, "")
	}
	eng, err := New(e.nc, Options{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	froms := []uint64{all[6], all[2], all[9], all[9] + 1, all[9] + 50}
	results := e.resumeFrom(t, eng, "a", froms...)
	if got := eng.reads.Load(); got != 1 {
		t.Fatalf("%d reads for 5 concurrent resumes of one channel, want 1", got)
	}
	for i, r := range results {
		from := froms[i]
		if from > all[9]+1 {
			// Past the stream's last sequence.
			wantReason(t, r.err, InvalidPosition)
			continue
		}
		if r.err != nil {
			t.Fatalf("resume from %d: %v", from, r.err)
		}
		var want []uint64
		for _, s := range all {
			if s > from {
				want = append(want, s)
			}
		}
		out := NewMerger(r.h.Start).Add(nil, r.h.Events...)
		if r.h.Start.Seq != from || !slices.Equal(seqs(out), want) {
			t.Fatalf("resume from %d: start %d, delivers %v, want %v", from, r.h.Start.Seq, seqs(out), want)
		}
	}
}

// When the shared read fails for the oldest position (its events left the
// window), resumes from later positions read again on their own.
func TestSharedReadOutOfTheWindow(t *testing.T) {
	e := newEnv(t, appconf.App{ReplayMaxEvents: 5})
	var all []uint64
	for range 10 {
		all = append(all, e.publish("a", "x", `{}`, ""))
	}
	eng, err := New(e.nc, Options{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The channel keeps all[5:]: after all[1] events are gone, after all[5]
	// none is.
	results := e.resumeFrom(t, eng, "a", all[1], all[5], all[5])
	wantReason(t, results[0].err, WindowExceeded)
	for _, r := range results[1:] {
		if r.err != nil || !slices.Equal(seqs(r.h.Events), all[6:]) {
			t.Fatalf("resume from %d: %v, %v, want %v", all[5], seqs(r.h.Events), r.err, all[6:])
		}
	}
	// The later positions read again together, or one after the other when
	// the second came back after the first had begun.
	if got := eng.reads.Load(); got < 2 || got > 3 {
		t.Fatalf("%d reads, want the shared one and one or two of the later positions", got)
	}
}
