// Package state is the presence service's model of global channel state:
// which connections of which gateways are subscribed to which channels, and
// the members of presence channels. It applies operations in stream order
// and says what follows from each (member events, occupancy changes, count
// changes); it does no I/O, so the rules are tested as tables.
//
// Two rules make replays harmless. Every channel and gateway records the
// stream sequence of the last operation applied to it, and an operation at or
// below it is skipped; and events carry a Nats-Msg-Id derived from that
// sequence (or, for a grace expiry, from the persisted deadline), so that an
// event emitted again after a crash is stored once. The operations of a batch
// share its sequence and are told apart by their index in it: a channel
// records both, and one loaded from the bucket has seen its whole batch (the
// service persists between messages, never inside one).
package state

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/herald-ws/herald/shared/presence"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/herald-ws/herald/shared/webhooks"
)

// Config holds what the rules depend on.
type Config struct {
	// Grace holds member_removed for users whose last connection was on a
	// draining gateway.
	Grace time.Duration
	// MaxMembers is an app's presence member limit; 0 or less means none.
	MaxMembers func(appID string) int
	// Alive reports whether a gateway that the state does not know has a
	// heartbeat; its operations are ignored otherwise. Nil means alive.
	Alive func(gatewayID string) bool
	// EventIDPrefix starts every event id derived from a sequence: the
	// operations stream's identity, since a recreated stream starts its
	// sequences over.
	EventIDPrefix string
}

// Key names one channel of one app.
type Key struct{ App, Channel string }

// Occupancy is a channel becoming occupied (its first subscription on any
// gateway) or vacated (its last one gone).
type Occupancy struct {
	Key
	Occupied bool
}

// Effects is what one step produced.
type Effects struct {
	// Events to publish, in order, each with its Nats-Msg-Id.
	Events []presence.MemberEvent
	// Occupancy changes, in order.
	Occupancy []Occupancy
	// Counts lists non-presence channels whose subscription count changed.
	Counts []Key
	// Refused is presence.StatusLimit or presence.StatusRefused when a join
	// was not applied.
	Refused string
	// Resync lists gateways whose state is unknown and must send a
	// snapshot.
	Resync []string
	// Users lists users who came online or went offline, in order.
	Users []UserChange
}

// State is the whole model. It is not safe for concurrent use: the service
// drives it from one goroutine.
type State struct {
	cfg      Config
	channels map[Key]*channel
	gateways map[string]*gateway
	// byGateway indexes the channels where a gateway has subscriptions.
	byGateway map[string]map[Key]struct{}
	// graces lists channels with members held in their drain grace.
	graces map[Key]struct{}

	dirtyChannels map[Key]struct{}
	dirtyGateways map[string]struct{}

	// Signed-in users (users.go).
	users          map[UserKey]*user
	userConns      map[presence.Conn]UserKey
	usersByGateway map[string]map[presence.Conn]struct{}
	dirtyUsers     map[UserKey]struct{}

	// idx is the index in its batch of the operation being applied (0 for
	// one on its own).
	idx int
}

type channel struct {
	Key
	presence bool
	seq      uint64
	idx      int // in seq's batch; wholeBatch once loaded
	members  map[string]*member
	plain    map[string]*plainSubs // by gateway
	count    int
}

type member struct {
	info       json.RawMessage
	conns      map[presence.Conn]struct{}
	graceUntil time.Time
}

// plainSubs are one gateway's subscriptions to a non-presence channel.
// Sockets loaded from persisted state are not known one by one (the bucket
// keeps counts, which stay small for channels with many subscribers): they
// are anon, and a leave of an unknown socket takes one of them.
type plainSubs struct {
	sockets map[string]struct{}
	anon    int
}

func (p *plainSubs) n() int { return len(p.sockets) + p.anon }

type gateway struct {
	presence.GatewayState
}

// New returns an empty state.
func New(cfg Config) *State {
	s := &State{
		cfg:           cfg,
		channels:      map[Key]*channel{},
		gateways:      map[string]*gateway{},
		byGateway:     map[string]map[Key]struct{}{},
		graces:        map[Key]struct{}{},
		dirtyChannels: map[Key]struct{}{},
		dirtyGateways: map[string]struct{}{},
	}
	s.initUsers()
	return s
}

// wholeBatch is the index of a channel that has seen every operation of
// its sequence.
const wholeBatch = math.MaxInt

// ApplyAt applies operation idx of the batch stored at seq (0 for an
// operation stored alone); the operations of a batch are applied in their
// order. A snapshot must be whole: the caller joins its parts and applies
// them at the sequence of the last one.
func (s *State) ApplyAt(seq uint64, idx int, op *presence.Op, now time.Time) Effects {
	s.idx = idx
	defer func() { s.idx = 0 }()
	var fx Effects
	if op.Op == presence.Gone {
		s.gone(seq, op, now, &fx)
		return fx
	}
	gw := s.gateways[op.Gateway]
	switch {
	case gw == nil:
		if s.cfg.Alive != nil && !s.cfg.Alive(op.Gateway) {
			fx.Refused = presence.StatusRefused
			return fx
		}
		gw = s.addGateway(op.Gateway)
		if op.Op != presence.Snapshot {
			// Operations of a gateway whose registration was never seen:
			// its full state is unknown.
			fx.Resync = append(fx.Resync, op.Gateway)
		}
	case gw.Removed && !(op.Op == presence.Snapshot && op.Reg > gw.Reg):
		// A late operation of a removed registration.
		fx.Refused = presence.StatusRefused
		return fx
	}
	switch op.Op {
	case presence.Join:
		s.join(seq, gw, op, now, &fx)
	case presence.Leave:
		s.leave(seq, gw, op, now, &fx)
	case presence.Drain:
		if seq > gw.Seq {
			gw.Seq, gw.Draining = seq, true
			s.dirtyGateways[gw.ID] = struct{}{}
		}
	case presence.Snapshot:
		s.snapshot(seq, gw, op, now, &fx)
	case presence.Signin:
		s.signin(seq, gw.ID, op.App, op.SocketID, op.UserID, &fx)
	case presence.Signout:
		s.signout(seq, gw.ID, op.App, op.SocketID, &fx)
	}
	return fx
}

func (s *State) addGateway(id string) *gateway {
	gw := &gateway{presence.GatewayState{ID: id}}
	s.gateways[id] = gw
	s.dirtyGateways[id] = struct{}{}
	return gw
}

// touch returns the channel for an operation at seq (and s.idx), creating
// it, or nil when the channel has already seen that operation.
func (s *State) touch(k Key, seq uint64) *channel {
	ch := s.channels[k]
	if ch == nil {
		ch = &channel{Key: k, presence: presence.IsPresence(k.Channel)}
		if ch.presence {
			ch.members = map[string]*member{}
		} else {
			ch.plain = map[string]*plainSubs{}
		}
		s.channels[k] = ch
	}
	if seq < ch.seq || (seq == ch.seq && s.idx <= ch.idx) {
		return nil
	}
	ch.seq, ch.idx = seq, s.idx
	s.dirtyChannels[k] = struct{}{}
	return ch
}

func (s *State) join(seq uint64, gw *gateway, op *presence.Op, now time.Time, fx *Effects) {
	k := Key{op.App, op.Channel}
	ch := s.touch(k, seq)
	if ch == nil {
		return
	}
	before := ch.occupied()
	if ch.presence {
		m := ch.members[op.UserID]
		if m == nil {
			if max := s.maxMembers(op.App); max > 0 && len(ch.members) >= max {
				fx.Refused = presence.StatusLimit
				s.settle(ch, before, fx)
				return
			}
			m = &member{info: cloneRaw(op.UserInfo), conns: map[presence.Conn]struct{}{}}
			ch.members[op.UserID] = m
			fx.Events = append(fx.Events, s.event(seq, k, protocol.EventMemberAdded, op.UserID, m.info))
		}
		// A returning user within the grace keeps its place: no event.
		m.graceUntil = time.Time{}
		m.conns[presence.Conn{Gateway: gw.ID, SocketID: op.SocketID}] = struct{}{}
	} else {
		p := ch.plain[gw.ID]
		if p == nil {
			p = &plainSubs{sockets: map[string]struct{}{}}
			ch.plain[gw.ID] = p
		}
		p.sockets[op.SocketID] = struct{}{}
	}
	s.index(gw.ID, k)
	s.settle(ch, before, fx)
}

func (s *State) leave(seq uint64, gw *gateway, op *presence.Op, now time.Time, fx *Effects) {
	k := Key{op.App, op.Channel}
	if s.channels[k] == nil {
		return // nothing to leave; do not create the channel
	}
	ch := s.touch(k, seq)
	if ch == nil {
		return
	}
	before := ch.occupied()
	c := presence.Conn{Gateway: gw.ID, SocketID: op.SocketID}
	if ch.presence {
		uid, m := op.UserID, ch.members[op.UserID]
		if m == nil || !m.has(c) {
			uid, m = ch.memberOf(c)
		}
		if m != nil {
			delete(m.conns, c)
			s.lastConnGone(seq, ch, uid, m, gw.Draining, now, fx)
		}
	} else if p := ch.plain[gw.ID]; p != nil {
		if _, ok := p.sockets[op.SocketID]; ok {
			delete(p.sockets, op.SocketID)
		} else if p.anon > 0 {
			p.anon--
		}
		if p.n() == 0 {
			delete(ch.plain, gw.ID)
		}
	}
	s.unindexIfGone(gw.ID, ch)
	s.settle(ch, before, fx)
}

// lastConnGone handles a member that may have lost its last connection:
// held through the grace when that connection was on a draining gateway,
// removed otherwise.
func (s *State) lastConnGone(seq uint64, ch *channel, uid string, m *member, draining bool, now time.Time, fx *Effects) {
	if len(m.conns) > 0 || !m.graceUntil.IsZero() {
		return
	}
	if draining && s.cfg.Grace > 0 {
		// Millisecond precision: the deadline is persisted as such, and
		// the event id of its expiry is derived from it.
		m.graceUntil = now.Add(s.cfg.Grace).Truncate(time.Millisecond)
		s.graces[ch.Key] = struct{}{}
		return
	}
	delete(ch.members, uid)
	fx.Events = append(fx.Events, s.event(seq, ch.Key, protocol.EventMemberRemoved, uid, nil))
}

func (s *State) snapshot(seq uint64, gw *gateway, op *presence.Op, now time.Time, fx *Effects) {
	// Channels are checked one by one against seq below: a replay after a
	// crash that persisted some of them finishes the others.
	if seq > gw.Seq {
		if gw.Removed {
			gw.Draining = false // a new registration
		}
		gw.Seq, gw.Reg, gw.Removed, gw.RemovedAt = seq, max(gw.Reg, op.Reg), false, time.Time{}
		s.dirtyGateways[gw.ID] = struct{}{}
	}

	// What the gateway holds now, by channel.
	want := map[Key][]presence.Sub{}
	for _, sub := range op.Subs {
		k := Key{sub.App, sub.Channel}
		want[k] = append(want[k], sub)
	}
	keys := slices.Collect(maps.Keys(want))
	for k := range s.byGateway[gw.ID] {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, compareKeys)
	for _, k := range keys {
		s.replaceGateway(seq, gw, k, want[k], now, fx)
	}
	s.replaceUsers(seq, gw.ID, op.Users, fx)
}

// replaceGateway makes a gateway's subscriptions to one channel those of
// subs, with member events for users who come or go as a result.
func (s *State) replaceGateway(seq uint64, gw *gateway, k Key, subs []presence.Sub, now time.Time, fx *Effects) {
	if len(subs) == 0 && s.channels[k] == nil {
		return
	}
	ch := s.touch(k, seq)
	if ch == nil {
		return
	}
	before := ch.occupied()
	if !ch.presence {
		p := &plainSubs{sockets: map[string]struct{}{}}
		for _, sub := range subs {
			p.sockets[sub.SocketID] = struct{}{}
		}
		if p.n() > 0 {
			ch.plain[gw.ID] = p
		} else {
			delete(ch.plain, gw.ID)
		}
	} else {
		wantConns := map[string]map[presence.Conn]struct{}{}
		infos := map[string]json.RawMessage{}
		for _, sub := range subs {
			if wantConns[sub.UserID] == nil {
				wantConns[sub.UserID] = map[presence.Conn]struct{}{}
				infos[sub.UserID] = sub.UserInfo
			}
			wantConns[sub.UserID][presence.Conn{Gateway: gw.ID, SocketID: sub.SocketID}] = struct{}{}
		}
		uids := slices.Collect(maps.Keys(ch.members))
		for uid := range wantConns {
			if ch.members[uid] == nil {
				uids = append(uids, uid)
			}
		}
		slices.Sort(uids)
		for _, uid := range uids {
			m := ch.members[uid]
			if m == nil {
				// Admitted when it joined: the limit is not checked again.
				m = &member{info: cloneRaw(infos[uid]), conns: map[presence.Conn]struct{}{}}
				ch.members[uid] = m
				fx.Events = append(fx.Events, s.event(seq, k, protocol.EventMemberAdded, uid, m.info))
			}
			for c := range m.conns {
				if c.Gateway == gw.ID {
					if _, keep := wantConns[uid][c]; !keep {
						delete(m.conns, c)
					}
				}
			}
			for c := range wantConns[uid] {
				m.conns[c] = struct{}{}
				m.graceUntil = time.Time{}
			}
			s.lastConnGone(seq, ch, uid, m, gw.Draining, now, fx)
		}
	}
	if ch.has(gw.ID) {
		s.index(gw.ID, k)
	} else {
		s.unindexIfGone(gw.ID, ch)
	}
	s.settle(ch, before, fx)
}

func (s *State) gone(seq uint64, op *presence.Op, now time.Time, fx *Effects) {
	gw := s.gateways[op.Gateway]
	if gw == nil {
		// Never seen: a tombstone keeps its late operations out.
		gw = s.addGateway(op.Gateway)
		gw.Removed, gw.RemovedAt, gw.Reg, gw.Seq = true, now, op.Reg, seq
		return
	}
	if op.Reg < gw.Reg || (op.Reg == gw.Reg && !gw.Removed) {
		// The gateway registered again since this heartbeat ended.
		return
	}
	if seq > gw.Seq {
		gw.Seq, gw.Reg, gw.Removed, gw.RemovedAt = seq, op.Reg, true, now
		s.dirtyGateways[gw.ID] = struct{}{}
	}
	// Channels are checked one by one against seq: a replay finishes what
	// a crash left half persisted.
	keys := slices.Collect(maps.Keys(s.byGateway[gw.ID]))
	slices.SortFunc(keys, compareKeys)
	for _, k := range keys {
		s.replaceGateway(seq, gw, k, nil, now, fx)
	}
	delete(s.byGateway, gw.ID)
	s.replaceUsers(seq, gw.ID, nil, fx)
}

// Expire ends the drain grace of members whose deadline is past.
func (s *State) Expire(now time.Time) Effects {
	var fx Effects
	keys := slices.Collect(maps.Keys(s.graces))
	slices.SortFunc(keys, compareKeys)
	for _, k := range keys {
		ch := s.channels[k]
		if ch == nil {
			delete(s.graces, k)
			continue
		}
		before := ch.occupied()
		pending := false
		for _, uid := range slices.Sorted(maps.Keys(ch.members)) {
			m := ch.members[uid]
			switch {
			case m.graceUntil.IsZero():
			case len(m.conns) > 0:
				m.graceUntil = time.Time{}
			case !now.Before(m.graceUntil):
				delete(ch.members, uid)
				ev := presence.MemberEvent{App: k.App, Channel: k.Channel, Event: protocol.EventMemberRemoved, UserID: uid,
					MsgID: "grace-" + webhooks.Digest(k.App, k.Channel, uid, strconv.FormatInt(m.graceUntil.UnixMilli(), 10))}
				fx.Events = append(fx.Events, ev)
				s.dirtyChannels[k] = struct{}{}
			default:
				pending = true
			}
		}
		if !pending {
			delete(s.graces, k)
		}
		s.settle(ch, before, &fx)
	}
	return fx
}

// Holding reports members held through a drain grace: Expire has work to
// do when their deadlines pass.
func (s *State) Holding() bool { return len(s.graces) > 0 }

// PruneGateways forgets gateways removed before cutoff. Their keys were
// gone long before; an operation of theirs arriving later still finds no
// heartbeat.
func (s *State) PruneGateways(cutoff time.Time) {
	for id, gw := range s.gateways {
		if gw.Removed && gw.RemovedAt.Before(cutoff) {
			delete(s.gateways, id)
			s.dirtyGateways[id] = struct{}{}
		}
	}
}

// settle updates a channel's count after a change, reports what changed,
// and drops the channel once nothing is left of it.
func (s *State) settle(ch *channel, wasOccupied bool, fx *Effects) {
	n := ch.subscriptions()
	if n != ch.count {
		ch.count = n
		if !ch.presence {
			fx.Counts = append(fx.Counts, ch.Key)
		}
	}
	if now := ch.occupied(); now != wasOccupied {
		fx.Occupancy = append(fx.Occupancy, Occupancy{Key: ch.Key, Occupied: now})
	}
	if !ch.occupied() {
		delete(s.channels, ch.Key)
		delete(s.graces, ch.Key)
		s.dirtyChannels[ch.Key] = struct{}{}
	}
}

func (s *State) index(gw string, k Key) {
	m := s.byGateway[gw]
	if m == nil {
		m = map[Key]struct{}{}
		s.byGateway[gw] = m
	}
	m[k] = struct{}{}
}

func (s *State) unindexIfGone(gw string, ch *channel) {
	if !ch.has(gw) {
		delete(s.byGateway[gw], ch.Key)
	}
}

func (s *State) maxMembers(app string) int {
	if s.cfg.MaxMembers == nil {
		return 0
	}
	return s.cfg.MaxMembers(app)
}

// event builds a member event of the operation at seq. The id depends on the
// operation and on what the event says, never on timing, so re-applying the
// operation after a restart yields the same id.
func (s *State) event(seq uint64, k Key, name, uid string, info json.RawMessage) presence.MemberEvent {
	return presence.MemberEvent{App: k.App, Channel: k.Channel, Event: name, UserID: uid, UserInfo: info,
		MsgID: s.cfg.EventIDPrefix + "-" + OpID(seq, s.idx) + "-" + webhooks.Digest(name, k.App, k.Channel, uid)}
}

// OpID names operation idx of the message at seq in event and webhook ids:
// the sequence alone for the first (and for an operation on its own).
func OpID(seq uint64, idx int) string {
	id := strconv.FormatUint(seq, 10)
	if idx > 0 {
		id += "." + strconv.Itoa(idx)
	}
	return id
}

func (ch *channel) subscriptions() int {
	n := 0
	for _, m := range ch.members {
		n += len(m.conns)
	}
	for _, p := range ch.plain {
		n += p.n()
	}
	return n
}

// occupied: a subscription somewhere, or a member held through its grace (a
// rolling restart should not vacate the channel either).
func (ch *channel) occupied() bool { return ch.count > 0 || len(ch.members) > 0 }

func (ch *channel) has(gw string) bool {
	if ch.plain[gw] != nil {
		return true
	}
	for _, m := range ch.members {
		for c := range m.conns {
			if c.Gateway == gw {
				return true
			}
		}
	}
	return false
}

func (ch *channel) memberOf(c presence.Conn) (string, *member) {
	for uid, m := range ch.members {
		if m.has(c) {
			return uid, m
		}
	}
	return "", nil
}

func (m *member) has(c presence.Conn) bool { _, ok := m.conns[c]; return ok }

func compareKeys(a, b Key) int {
	if a.App != b.App {
		if a.App < b.App {
			return -1
		}
		return 1
	}
	switch {
	case a.Channel < b.Channel:
		return -1
	case a.Channel > b.Channel:
		return 1
	}
	return 0
}

func cloneRaw(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return slices.Clone(b)
}
