package replay

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/names"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkReadMissed measures reading the 1,000 events a client missed on
// one channel (another channel's events interleaved in the stream): the
// whole Resume (stream info, batch Direct Get, completeness proof), the
// batch read alone, and, for comparison, one Direct Get per event through
// jetstream.Stream.GetMsg.
func BenchmarkReadMissed(b *testing.B) {
	for _, size := range []int{200, 10_000} {
		b.Run("data="+strconv.Itoa(size), func(b *testing.B) {
			e := newEnv(b, appconf.App{})
			data := `{"v":"` + strings.Repeat("x", size-8) + `"}`
			first := e.publish("other", "x", "", "")
			for range 1000 {
				e.publish("a", "progress", data, "")
				e.publish("other", "x", "", "")
			}
			from := e.at(first)
			stream, subject := names.EventsStream(e.app.ID), names.EventSubject(e.app.ID, "a")
			last := e.streamInfo().State.LastSeq

			b.Run("resume", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					h, err := e.eng.Resume(e.ctx, e.app.ID, "a", from)
					if err != nil || len(h.Events) != 1000 {
						b.Fatalf("%d events, %v", len(h.Events), err)
					}
				}
			})
			b.Run("batch", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					evs, err := e.eng.readAfter(e.ctx, stream, subject, first, last)
					if err != nil || len(evs) != 1000 {
						b.Fatalf("%d events, %v", len(evs), err)
					}
				}
			})
			b.Run("getmsg", func(b *testing.B) {
				s, err := e.js.Stream(e.ctx, stream)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					n, seq := 0, first+1
					for {
						m, err := s.GetMsg(e.ctx, seq, jetstream.WithGetMsgSubject(subject))
						if err != nil {
							break
						}
						n++
						seq = m.Sequence + 1
					}
					if n != 1000 {
						b.Fatalf("%d events", n)
					}
				}
			})
		})
	}
}

// BenchmarkTailCheck measures a new channel's tail check when nothing
// follows its last event: one batch Direct Get that finds nothing, what
// every newly followed channel paid right after its subscription.
func BenchmarkTailCheck(b *testing.B) {
	e := newEnv(b, appconf.App{})
	e.publish("a", "x", "", "")
	stream, subject := names.EventsStream(e.app.ID), names.EventSubject(e.app.ID, "a")
	last := e.streamInfo().State.LastSeq
	b.ReportAllocs()
	for b.Loop() {
		evs, err := e.eng.readAfter(e.ctx, stream, subject, last, last)
		if err != nil || len(evs) != 0 {
			b.Fatalf("%d events, %v", len(evs), err)
		}
	}
}

// BenchmarkConcurrentResumes measures 100 resumes of one channel from one
// position at once, 100 events each, as after a gateway's loss: each op is
// the whole crowd (the embedded server's work included); events/op counts
// the events the resumes got in all.
func BenchmarkConcurrentResumes(b *testing.B) {
	const resumes, missed = 100, 100
	e := newEnv(b, appconf.App{})
	data := `{"v":"` + strings.Repeat("x", 92) + `"}`
	first := e.publish("a", "x", data, "")
	for range missed {
		e.publish("a", "progress", data, "")
	}
	from := e.at(first)
	b.ReportAllocs()
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, resumes)
		for range resumes {
			wg.Go(func() {
				h, err := e.eng.Resume(e.ctx, e.app.ID, "a", from)
				if err == nil && len(h.Events) != missed {
					err = fmt.Errorf("%d events", len(h.Events))
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*resumes*missed), "ns/event")
}
