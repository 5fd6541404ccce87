package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/herald-ws/herald/shared/names"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Direct Get reads stored messages from any replica of a stream without a
// consumer. The batch form (nats-server 2.11+) streams up to Batch messages
// of one subject to an inbox, each with the number still pending, then an
// end-of-batch marker; nats.go's jetstream package does not offer it, so it
// is spoken here on $JS.API.DIRECT.GET.<stream>.
const (
	directGetPrefix = "$JS.API.DIRECT.GET."

	headerStatus      = "Status"
	headerDescription = "Description"
	headerNumPending  = "Nats-Num-Pending"

	statusEndOfBatch   = "204"
	statusNotFound     = "404"
	statusNoResponders = "503"
)

// maxBatch bounds one batch request. A channel holds at most
// ReplayMaxEvents (1,000 by default) events, so one request usually reads a
// whole replay; 1,000 events of 10 KB stay well inside a subscription's
// default pending limit (64 MB).
const maxBatch = 1000

type directRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
	Batch   int    `json:"batch,omitempty"`
	// MaxBytes ends the batch once this much has been sent (at least one
	// message goes); 0 leaves the server's bound (its max_pending, 64 MB).
	MaxBytes int `json:"max_bytes,omitempty"`
}

// errBrokenBatch reports a batch whose answers do not join: one was lost on
// the way (a slow subscription), so what was read cannot be trusted.
var errBrokenBatch = errors.New("replay: direct get batch lost a message")

// getBatch reads up to n messages of subject from sequence from on, in
// order, stopping once about maxBytes were read (0: no bound of its own),
// and appends them to evs (LastSeq left 0: the caller knows what
// precedes them). It also returns how many messages of subject follow the
// last one read. Nothing stored there is not an error: evs comes back as it
// was, with pending 0.
func (e *Engine) getBatch(ctx context.Context, stream, subject string, from uint64, n, maxBytes int, evs []Event) ([]Event, uint64, error) {
	ctx, cancel := e.withTimeout(ctx)
	defer cancel()
	req, err := json.Marshal(directRequest{Seq: from, NextFor: subject, Batch: n, MaxBytes: maxBytes})
	if err != nil {
		return evs, 0, fmt.Errorf("encoding direct get: %w", err)
	}
	// A channel sized to the answers (n messages and the end marker): the
	// SubscribeSync default of 64K slots cost 512 KB per read, allocated
	// and cleared each time; a new channel's checks made two such reads.
	inbox := e.nc.NewInbox()
	answers := make(chan *nats.Msg, n+2)
	sub, err := e.nc.ChanSubscribe(inbox, answers)
	if err != nil {
		return evs, 0, fmt.Errorf("subscribing to direct get answers: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := e.nc.PublishRequest(directGetPrefix+stream, inbox, req); err != nil {
		return evs, 0, fmt.Errorf("direct get on %s: %w", stream, err)
	}
	var prev uint64
	for {
		var m *nats.Msg
		select {
		case m = <-answers:
		case <-ctx.Done():
			return evs, 0, fmt.Errorf("direct get on %s: %w", stream, ctx.Err())
		}
		switch status := m.Header.Get(headerStatus); status {
		case "":
		case statusEndOfBatch:
			pending, err := headerUint(m.Header, headerNumPending)
			if err != nil {
				return evs, 0, fmt.Errorf("direct get on %s: end of batch: %w", stream, err)
			}
			if last, err := headerUint(m.Header, names.HeaderNatsLastSequence); err != nil || last != prev {
				return evs, 0, fmt.Errorf("direct get on %s: %w: batch ended at %d, last read %d", stream, errBrokenBatch, last, prev)
			}
			return evs, pending, nil
		case statusNotFound:
			return evs, 0, nil
		case statusNoResponders:
			return evs, 0, fmt.Errorf("direct get on %s: %w", stream, jetstream.ErrStreamNotFound)
		default:
			return evs, 0, fmt.Errorf("direct get on %s: status %s %s", stream, status, m.Header.Get(headerDescription))
		}
		ev, err := batchEvent(m, subject, prev)
		if err != nil {
			return evs, 0, fmt.Errorf("direct get on %s: %w", stream, err)
		}
		evs = append(evs, ev)
		prev = ev.Seq
	}
}

// batchEvent reads one answer of a batch. In a batch, Nats-Last-Sequence is
// the sequence of the previous answer (0 for the first), which shows a lost
// answer; it says nothing about the channel's previous event.
func batchEvent(m *nats.Msg, subject string, prev uint64) (Event, error) {
	if _, ok := m.Header[headerNumPending]; !ok {
		return Event{}, errors.New("answer is not part of a batch: nats-server 2.11 or later is needed")
	}
	if got := m.Header.Get(names.HeaderNatsSubject); got != subject {
		return Event{}, fmt.Errorf("answer for subject %q, asked for %q", got, subject)
	}
	seq, err := headerUint(m.Header, names.HeaderNatsSequence)
	if err != nil {
		return Event{}, err
	}
	before, err := headerUint(m.Header, names.HeaderNatsLastSequence)
	if err != nil {
		return Event{}, err
	}
	if before != prev {
		return Event{}, fmt.Errorf("%w: answer %d follows %d, expected %d", errBrokenBatch, seq, before, prev)
	}
	ev, err := storedEvent(m)
	if err != nil {
		return Event{}, err
	}
	ev.Seq = seq
	return ev, nil
}

// readAfter reads the events of subject after sequence after, in order,
// until the stream has no more or the read passed upTo (events after upTo
// arrive live; those read anyway are kept). It sets LastSeq as a chain from
// after: the caller vouches that nothing between them was missed.
func (e *Engine) readAfter(ctx context.Context, stream, subject string, after, upTo uint64) ([]Event, error) {
	var evs []Event
	from := after + 1
	for {
		n := len(evs)
		var pending uint64
		var err error
		evs, pending, err = e.getBatch(ctx, stream, subject, from, maxBatch, 0, evs)
		if err != nil {
			return nil, err
		}
		if len(evs) == n || pending == 0 {
			break
		}
		last := evs[len(evs)-1].Seq
		if last >= upTo {
			break
		}
		from = last + 1
	}
	prev := after
	for i := range evs {
		evs[i].LastSeq = prev
		prev = evs[i].Seq
	}
	return evs, nil
}

// probe returns the first event of subject at or after from, and how many
// events of subject are stored from it on (0 and ok false when none).
func (e *Engine) probe(ctx context.Context, stream, subject string, from uint64) (ev Event, count uint64, ok bool, err error) {
	var buf [1]Event
	evs, pending, err := e.getBatch(ctx, stream, subject, from, 1, 0, buf[:0])
	if err != nil || len(evs) == 0 {
		return Event{}, 0, false, err
	}
	return evs[0], pending + 1, true, nil
}

// last returns the channel's last stored event (Direct Get last_by_subj).
func (e *Engine) last(ctx context.Context, stream, subject string) (ev Event, ok bool, err error) {
	return e.lastOf(ctx, stream, subject, names.HeaderNatsSequence, "last event", subject)
}

// lastOf is a Direct Get of subject's last message in stream, its Seq read
// from the header seqHeader; ok is false when there is none. Errors begin
// with "<what> of <name>".
func (e *Engine) lastOf(ctx context.Context, stream, subject, seqHeader, what, name string) (ev Event, ok bool, err error) {
	ctx, cancel := e.withTimeout(ctx)
	defer cancel()
	m, err := e.nc.RequestWithContext(ctx, directGetPrefix+stream+"."+subject, nil)
	if errors.Is(err, nats.ErrNoResponders) {
		return Event{}, false, fmt.Errorf("%s of %s: %w", what, name, jetstream.ErrStreamNotFound)
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("%s of %s: %w", what, name, err)
	}
	switch status := m.Header.Get(headerStatus); status {
	case "":
	case statusNotFound:
		return Event{}, false, nil
	default:
		return Event{}, false, fmt.Errorf("%s of %s: status %s %s", what, name, status, m.Header.Get(headerDescription))
	}
	seq, err := headerUint(m.Header, seqHeader)
	if err != nil {
		return Event{}, false, fmt.Errorf("%s of %s: %w", what, name, err)
	}
	ev, err = storedEvent(m)
	if err != nil {
		return Event{}, false, fmt.Errorf("%s of %s: %w", what, name, err)
	}
	ev.Seq = seq
	return ev, true, nil
}
