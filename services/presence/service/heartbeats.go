package service

import (
	"errors"
	"fmt"
	"sync"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go/jetstream"
)

// heartbeats mirrors the gateways bucket during a term, and turns the end of
// a heartbeat (TTL expiry marker, or the gateway deleting its key) into a
// gone operation in the operations stream, so that the removal is applied in
// order with the gateway's own operations.
type heartbeats struct {
	t *term

	mu   sync.Mutex
	live map[string]bool
	// floor is the bucket's last revision before the watch began; maxRev
	// the highest revision seen since. A registration made later has a
	// higher revision than either.
	floor, maxRev uint64

	w    jetstream.KeyWatcher
	done chan struct{}
}

func newHeartbeats(t *term) *heartbeats {
	return &heartbeats{t: t, live: map[string]bool{}, done: make(chan struct{})}
}

// start reads every current heartbeat, then follows changes.
func (h *heartbeats) start() error {
	t := h.t
	s, err := t.svc.js.Stream(t.ctx, "KV_"+names.GatewaysBucket)
	if err != nil {
		return fmt.Errorf("opening gateway heartbeats: %w", err)
	}
	info, err := s.Info(t.ctx)
	if err != nil {
		return fmt.Errorf("reading gateway heartbeats: %w", err)
	}
	h.floor = info.State.LastSeq
	if h.w, err = t.in.gateways.WatchAll(t.ctx); err != nil {
		return fmt.Errorf("watching gateway heartbeats: %w", err)
	}
	for initial := true; initial; {
		select {
		case <-t.ctx.Done():
			h.w.Stop()
			return t.ctx.Err()
		case e := <-h.w.Updates():
			if e == nil {
				initial = false
				break
			}
			h.update(e, false)
		}
	}
	go h.follow()
	return nil
}

func (h *heartbeats) stop() {
	_ = h.w.Stop()
	<-h.done
}

func (h *heartbeats) follow() {
	defer close(h.done)
	for {
		select {
		case <-h.t.ctx.Done():
			return
		case e, ok := <-h.w.Updates():
			if !ok {
				if h.t.ctx.Err() == nil {
					// Without the watch, dead gateways would stay: start over.
					select {
					case h.t.fail <- errors.New("the gateway heartbeat watch ended"):
					default:
					}
				}
				return
			}
			if e != nil {
				h.update(e, true)
			}
		}
	}
}

func (h *heartbeats) update(e jetstream.KeyValueEntry, announce bool) {
	id, err := names.DecodeToken(e.Key())
	if err != nil {
		return // not a gateway key
	}
	h.mu.Lock()
	h.maxRev = max(h.maxRev, e.Revision())
	ended := e.Operation() != jetstream.KeyValuePut
	if ended {
		delete(h.live, id)
	} else {
		h.live[id] = true
	}
	h.mu.Unlock()
	if ended && announce {
		h.gone(id, e.Revision())
	}
}

// alive reports whether a gateway has a heartbeat, asking the bucket when
// the mirror does not know it (it may lag behind the gateway's first put).
func (h *heartbeats) alive(id string) bool {
	h.mu.Lock()
	ok := h.live[id]
	h.mu.Unlock()
	if ok {
		return true
	}
	e, err := h.t.in.gateways.Get(h.t.ctx, names.GatewayKey(id))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return false
	case err != nil:
		return true // cannot tell: keep the operation rather than lose it
	}
	return e.Operation() == jetstream.KeyValuePut
}

// reconcile ends every gateway that the state holds as registered and that
// has no heartbeat: markers missed while no instance watched, or lost in a
// reconnect.
func (h *heartbeats) reconcile() {
	h.mu.Lock()
	var missing []string
	for _, g := range h.t.st.Gateways() {
		if !g.Removed && !h.live[g.ID] {
			missing = append(missing, g.ID)
		}
	}
	rev := max(h.floor, h.maxRev)
	h.mu.Unlock()
	for _, id := range missing {
		h.gone(id, rev)
	}
}

// gone publishes the end of a gateway's registration. The id makes the
// instances and terms that notice the same end store it once.
func (h *heartbeats) gone(id string, rev uint64) {
	if rev == 0 {
		return
	}
	op := presence.Op{Op: presence.Gone, Gateway: id, Reg: rev}
	m, err := op.Msg(fmt.Sprintf("gone-%s-%d", names.EncodeToken(id), rev))
	if err == nil {
		_, err = h.t.svc.js.PublishMsg(h.t.ctx, m)
	}
	if err != nil && h.t.ctx.Err() == nil {
		h.t.svc.log.Warn("publishing the end of a gateway", "gateway", id, "err", err)
	}
}
