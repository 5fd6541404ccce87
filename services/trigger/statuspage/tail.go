package statuspage

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/process"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go"
)

// Limits of the live tail: a tail is for an admin watching one channel, not
// a way to copy an app's traffic out.
const (
	maxTails       = 4
	tailPerSecond  = 50
	tailBuffer     = 256
	tailMaxSeconds = 30 * 60
)

// TailLine is one event of a tailed channel, as the page shows it.
type TailLine struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"` // event, client (a client event) or member
	Event   string    `json:"event"`
	Bytes   int       `json:"bytes"`
	Data    string    `json:"data,omitempty"` // only with HERALD_LOG_PAYLOADS
	Dropped int       `json:"dropped,omitempty"`
}

// serveTail streams the events of one channel as server-sent events: names
// and sizes, and the data only when Options.Payloads is set. It listens on
// the core NATS subjects gateways deliver from, so it costs nothing while
// no tail is open.
func (p *Page) serveTail(w http.ResponseWriter, r *http.Request) {
	appID, channel := r.URL.Query().Get("app"), r.URL.Query().Get("channel")
	if _, ok := p.opt.Apps.ByID(appID); !ok {
		process.WriteError(w, http.StatusNotFound, "unknown app")
		return
	}
	if err := protocol.ValidateChannel(channel); err != nil {
		process.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	// The server's write timeout is for requests, not a stream: lift it
	// for this response only.
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		process.WriteError(w, http.StatusInternalServerError, "streaming unsupported: "+err.Error())
		return
	}
	if p.tails.Add(1) > maxTails {
		p.tails.Add(-1)
		process.WriteError(w, http.StatusTooManyRequests, fmt.Sprintf("at most %d tails at once", maxTails))
		return
	}
	defer p.tails.Add(-1)

	lines := make(chan TailLine, tailBuffer)
	var dropped atomic.Int64
	handle := func(kind string) nats.MsgHandler {
		return func(m *nats.Msg) {
			l := TailLine{Time: time.Now(), Kind: kind, Event: m.Header.Get(names.HeaderEvent), Bytes: len(m.Data)}
			if kind == "member" {
				l.Event = "member change"
			}
			if p.opt.Payloads {
				l.Data = string(m.Data)
			}
			select {
			case lines <- l:
			default:
				dropped.Add(1)
			}
		}
	}
	var subs []*nats.Subscription
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	for _, s := range []struct{ subject, kind string }{
		{names.LiveSubject(appID, channel), "event"},
		{names.ClientEventSubject(appID, channel), "client"},
		{names.MemberLiveSubject(appID, channel), "member"},
	} {
		sub, err := p.opt.NC.Subscribe(s.subject, handle(s.kind))
		if err != nil {
			process.WriteError(w, http.StatusServiceUnavailable, "subscribing: "+err.Error())
			return
		}
		subs = append(subs, sub)
	}

	// Subscribed on the server before the stream starts: what is published
	// after the first line is shown.
	if err := p.opt.NC.Flush(); err != nil {
		process.WriteError(w, http.StatusServiceUnavailable, "subscribing: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, ": tailing\n\n")
	_ = rc.Flush()
	end := time.After(tailMaxSeconds * time.Second)
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	second, sent := time.Now(), 0
	for {
		select {
		case <-r.Context().Done():
			return
		case <-end:
			return
		case <-keepalive.C:
			_, _ = fmt.Fprint(w, ": keepalive\n\n")
			_ = rc.Flush()
		case l := <-lines:
			if now := time.Now(); now.Sub(second) >= time.Second {
				second, sent = now, 0
			}
			if sent >= tailPerSecond {
				dropped.Add(1)
				continue
			}
			sent++
			l.Dropped = int(dropped.Swap(0))
			b, _ := json.Marshal(l)
			if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
				return
			}
			_ = rc.Flush()
		}
	}
}
