package service

// Member list requests: answered once their operation is applied.

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/herald-ws/herald/services/presence/internal/state"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go"
)

// memberRequest is a member list request waiting for its operation.
type memberRequest struct {
	msg      *nats.Msg
	req      presence.MembersRequest
	deadline time.Time // dropped after it: the gateway has given up
}

// refusalKey names a join: the operation sequence of its message (shared by
// the operations of a batch) and the subscription.
type refusalKey struct {
	seq                           uint64
	gateway, app, channel, socket string
}

// refusal is a join the state refused, kept for the member request that
// waits on it.
type refusal struct {
	status string    // the status the member request gets
	at     time.Time // when; forgotten after requestTTL
}

// request takes one member list or online request.
func (t *term) request(m *nats.Msg) error {
	if m.Subject == names.PresenceOnlineSubject {
		t.online(m)
		return nil
	}
	var req presence.MembersRequest
	if err := json.Unmarshal(m.Data, &req); err != nil || req.App == "" || req.Channel == "" {
		t.reply(m, presence.MembersReply{Status: presence.StatusRefused, Error: "malformed request"})
		return nil
	}
	t.waiting = append(t.waiting, &memberRequest{msg: m, req: req, deadline: time.Now().Add(requestTTL)})
	return t.answerWaiting()
}

// answerWaiting answers the member requests whose operation has been
// applied.
func (t *term) answerWaiting() error {
	if len(t.waiting) == 0 || t.applied < t.target {
		return nil
	}
	ready := false
	for _, r := range t.waiting {
		if r.req.OpSeq <= t.applied {
			ready = true
			break
		}
	}
	if !ready {
		return nil
	}
	if err := t.settle(t.ctx); err != nil {
		return err
	}
	kept := t.waiting[:0]
	for _, r := range t.waiting {
		if r.req.OpSeq > t.applied {
			kept = append(kept, r)
			continue
		}
		rep := presence.MembersReply{Status: presence.StatusOK, Seq: t.membersSeq}
		if ref, ok := t.refusedJoins[refusalKey{r.req.OpSeq, r.req.Gateway, r.req.App, r.req.Channel, r.req.SocketID}]; ok {
			rep.Status = ref.status
		} else {
			rep.Members = t.st.Members(state.Key{App: r.req.App, Channel: r.req.Channel})
		}
		t.reply(r.msg, rep)
	}
	clear(t.waiting[len(kept):])
	t.waiting = kept
	return nil
}

// expireRequests drops the member requests past their deadline.
func (t *term) expireRequests(now time.Time) {
	kept := t.waiting[:0]
	for _, r := range t.waiting {
		if now.Before(r.deadline) {
			kept = append(kept, r)
		}
	}
	clear(t.waiting[len(kept):])
	t.waiting = kept
}

// reply answers a member request.
func (t *term) reply(m *nats.Msg, rep presence.MembersReply) {
	t.svc.metrics.requests.WithLabelValues(rep.Status).Inc()
	b, err := json.Marshal(rep)
	if err == nil {
		err = m.Respond(b)
	}
	if err != nil && !errors.Is(err, nats.ErrMsgNoReply) {
		t.svc.log.Warn("answering a member request", "subject", m.Subject, "err", err)
	}
}
