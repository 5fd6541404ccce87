package globalstate

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go"
)

// localSub is one local socket's subscription.
type localSub struct {
	key     subKey
	userID  string
	info    json.RawMessage
	counts  bool
	ready   func(Snapshot)
	deliver func(*Event)
	active  bool
}

// channel is a channel with local subscribers: its NATS subscriptions and,
// for a presence channel, this gateway's view of the members.
//
// The view is complete up to pos, a MembersStream sequence: it reflects
// every member event of the channel up to pos and none after. A live event
// at or below pos is old; one whose predecessor on the channel
// (Nats-Last-Sequence) is at or below pos follows on; any other means events
// were missed, and the member list is fetched again. A member list adopted
// while sockets are active is told to them as the difference with the view.
// Every active socket has been told exactly the view, so one view serves all.
type channel struct {
	c        *Client
	key      chanKey
	presence bool

	mu        sync.Mutex
	socks     map[string]*localSub
	members   *nats.Subscription
	counts    *nats.Subscription
	view      map[string]json.RawMessage
	pos       uint64
	synced    bool
	resyncing bool
	buffer    []presence.LiveMemberEvent
}

// maxBuffered bounds events held while a member list is fetched; past it
// they are dropped and the list fetched again.
const maxBuffered = 4096

// attach adds ls to its channel (inactive), subscribing the channel first
// when it is new, so that no member event after the join can be missed.
func (c *Client) attach(ls *localSub, isPresence bool) (*channel, error) {
	k := chanKey{ls.key.app, ls.key.channel}
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.channels[k]
	if ch == nil {
		ch = &channel{c: c, key: k, presence: isPresence, socks: map[string]*localSub{}, view: map[string]json.RawMessage{}}
		if isPresence {
			s, err := c.nc.Subscribe(names.MemberLiveSubject(k.app, k.channel), ch.onMember)
			if err != nil {
				return nil, err
			}
			ch.members = s
		}
		c.channels[k] = ch
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if _, dup := ch.socks[ls.key.socket]; dup {
		return nil, ErrJoined
	}
	if ls.counts && ch.counts == nil && !isPresence {
		s, err := c.nc.Subscribe(names.SubscriptionCountSubject(k.app, k.channel), ch.onCount)
		if err != nil {
			return nil, err
		}
		ch.counts = s
	}
	ch.socks[ls.key.socket] = ls
	return ch, nil
}

// detach removes ls; the last one out unsubscribes the channel.
func (c *Client) detach(ch *channel, ls *localSub) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch.mu.Lock()
	if ch.socks[ls.key.socket] == ls {
		delete(ch.socks, ls.key.socket)
	}
	empty := len(ch.socks) == 0
	ch.mu.Unlock()
	if empty && c.channels[ch.key] == ch {
		delete(c.channels, ch.key)
		ch.unsubscribe()
	}
}

func (ch *channel) unsubscribe() {
	for _, s := range []*nats.Subscription{ch.members, ch.counts} {
		if s != nil {
			_ = s.Unsubscribe()
		}
	}
}

// activate makes ls live: it adopts the member list rep (when newer than the
// view), gives the view to Ready, and from then on delivers events to ls.
func (ch *channel) activate(ls *localSub, rep *presence.MembersReply) (Snapshot, error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.socks[ls.key.socket] != ls {
		return Snapshot{}, ErrLeft
	}
	var snap Snapshot
	if ch.presence {
		ch.adopt(rep.Members, rep.Seq)
		ch.drain()
		snap.Members = maps.Clone(ch.view)
	}
	ls.active = true
	if ls.ready != nil {
		ls.ready(snap)
	}
	return snap, nil
}

// Members calls f with the current members of a presence channel that has
// local subscribers, under the channel's lock (so that f is ordered with the
// channel's Deliver calls: it must not block either). It reports whether the
// channel has a member list.
func (c *Client) Members(app, channel string, f func(Snapshot)) bool {
	c.mu.Lock()
	ch := c.channels[chanKey{app, channel}]
	c.mu.Unlock()
	if ch == nil || !ch.presence {
		return false
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if !ch.synced {
		return false
	}
	f(Snapshot{Members: maps.Clone(ch.view)})
	return true
}

// adopt takes a member list as of seq, if it is newer than the view, and
// tells active sockets what changed.
func (ch *channel) adopt(members map[string]json.RawMessage, seq uint64) {
	if ch.synced && seq <= ch.pos {
		return
	}
	old := ch.view
	ch.view, ch.pos, ch.synced = make(map[string]json.RawMessage, len(members)), seq, true
	for id, info := range members {
		// A list says null for a member without user_info, where its live
		// member_added has none: the view keeps it absent, so that the
		// member_added sent from a list is the frame the live event would
		// have been.
		if string(bytes.TrimSpace(info)) == "null" {
			info = nil
		}
		ch.view[id] = info
	}
	for _, id := range slices.Sorted(maps.Keys(old)) {
		if _, ok := ch.view[id]; !ok {
			if ch.hasLocal(id) {
				ch.view[id] = old[id]
				continue
			}
			ch.send(protocol.EventMemberRemoved, id, removedData(id))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(ch.view)) {
		if _, ok := old[id]; !ok {
			ch.send(protocol.EventMemberAdded, id, addedData(id, ch.view[id]))
		}
	}
}

// drain applies the events buffered while no view was current.
func (ch *channel) drain() {
	buf := ch.buffer
	ch.buffer = nil
	for _, ev := range buf {
		ch.apply(ev)
	}
}

func (ch *channel) onMember(m *nats.Msg) {
	ev, err := presence.ParseLiveMemberEvent(m)
	if err != nil {
		ch.c.log.Warn("dropping a malformed member event", "subject", m.Subject, "err", err)
		return
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if !ch.synced || ch.resyncing {
		if len(ch.buffer) >= maxBuffered {
			ch.buffer = nil
			ch.synced = false // the list fetched next is newer than all of it
		}
		ch.buffer = append(ch.buffer, ev)
		return
	}
	ch.apply(ev)
}

// apply moves the view by one live event, or starts a refetch on a gap.
func (ch *channel) apply(ev presence.LiveMemberEvent) {
	switch {
	case ch.resyncing:
		ch.buffer = append(ch.buffer, ev)
		return
	case ev.Seq <= ch.pos:
		return
	case ev.LastSeq > ch.pos:
		ch.c.log.Debug("member events missed; fetching the member list", "app_id", ch.key.app, "channel", ch.key.channel)
		ch.resyncing = true
		ch.buffer = append(ch.buffer, ev)
		go ch.refetch()
		return
	}
	ch.pos = ev.Seq
	if ev.Event == protocol.EventMemberAdded {
		if _, known := ch.view[ev.UserID]; known {
			return
		}
		ch.view[ev.UserID] = ev.UserInfo
	} else {
		if _, known := ch.view[ev.UserID]; !known || ch.hasLocal(ev.UserID) {
			return
		}
		delete(ch.view, ev.UserID)
	}
	ch.send(ev.Event, ev.UserID, ev.Data)
}

// hasLocal reports whether userID has a socket on the channel here. Such a
// user is a member whatever the presence service last said: it removes the
// members of a gateway it lost touch with (a partition longer than the
// gateway TTL) and adds them back when the gateway registers again, and
// neither the user's own sockets nor its neighbours here must see it leave.
// ch.mu is held.
func (ch *channel) hasLocal(userID string) bool {
	for _, ls := range ch.socks {
		if ls.userID == userID {
			return true
		}
	}
	return false
}

// send delivers a member event to the active sockets, except member_added
// to the user's own sockets.
func (ch *channel) send(name, userID string, data []byte) {
	var e *Event
	for _, ls := range ch.socks {
		if !ls.active || ls.deliver == nil || (name == protocol.EventMemberAdded && ls.userID == userID) {
			continue
		}
		if e == nil {
			e = &Event{App: ch.key.app, Channel: ch.key.channel, Name: name, UserID: userID, Data: data}
		}
		ls.deliver(e)
	}
}

// refetch fetches the member list after missed events, until it succeeds or
// the channel has no local subscriber left.
func (ch *channel) refetch() {
	c := ch.c
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), c.opt.Timeout)
		rep, err := c.members(ctx, presence.MembersRequest{App: ch.key.app, Channel: ch.key.channel, Gateway: c.id})
		cancel()
		ch.mu.Lock()
		if len(ch.socks) == 0 {
			ch.resyncing = false
			ch.mu.Unlock()
			return
		}
		if err == nil && rep.Status == presence.StatusOK {
			ch.resyncing = false
			ch.adopt(rep.Members, rep.Seq)
			ch.drain()
			ch.mu.Unlock()
			return
		}
		ch.mu.Unlock()
		if attempt == 0 {
			c.log.Warn("fetching a member list", "app_id", ch.key.app, "channel", ch.key.channel, "err", err)
		}
		select {
		case <-c.stop:
			return
		case <-time.After(time.Second):
		}
	}
}

func (ch *channel) onCount(m *nats.Msg) {
	if _, err := presence.ParseCountData(m.Data); err != nil {
		return
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var e *Event
	for _, ls := range ch.socks {
		if !ls.active || !ls.counts || ls.deliver == nil {
			continue
		}
		if e == nil {
			e = &Event{App: ch.key.app, Channel: ch.key.channel, Name: protocol.EventSubscriptionCount, Data: m.Data}
		}
		ls.deliver(e)
	}
}

func addedData(id string, info json.RawMessage) []byte {
	e := presence.MemberEvent{Event: protocol.EventMemberAdded, UserID: id, UserInfo: info}
	return e.Data()
}

func removedData(id string) []byte {
	e := presence.MemberEvent{Event: protocol.EventMemberRemoved, UserID: id}
	return e.Data()
}
