// Package globalstate is the gateway's side of global channel state (see
// shared/presence for the protocol): it registers the gateway with a
// heartbeat, publishes every subscription change to the presence service,
// fetches presence member lists for subscription_succeeded, and delivers the
// member events and subscription counts of channels with local subscribers.
//
// # Use from the gateway
//
//   - pusher:subscribe (after auth and limits): Join. For a presence
//     channel it waits for the presence service (Options.Timeout); ErrLimit
//     maps to subscription_error LimitReached/403, ErrUnavailable to 503.
//     Ready is called once, under the channel's lock, before any Deliver:
//     queue subscription_succeeded there.
//   - pusher:unsubscribe, and every channel of a closing connection: Leave.
//   - NATS reconnect handler: Reconnected.
//   - Shutdown: Drain first (member_removed is then held for the drain
//     grace, so users who reconnect elsewhere do not flap), close the
//     sockets (Leave each), then Close.
//
// Ready and Deliver run under a lock of the channel and on NATS callback
// goroutines: they must only queue frames, never block, and never call the
// Client.
package globalstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/ensure"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/option"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options configure the client.
type Options struct {
	// NC is the gateway's NATS connection; the caller owns it.
	NC *nats.Conn
	// ID names this gateway boot; empty means a random one. It must be
	// unique per boot: the presence service forgets a gateway whose
	// heartbeat ended, and ignores what it sends until it registers again.
	ID string
	// TTL is the heartbeat key's time to live (HERALD_GATEWAY_TTL, default
	// 15 s; at least 1 s). The key is written every TTL/3; the presence
	// service removes this gateway's subscriptions about TTL after the last
	// write.
	TTL time.Duration
	// Timeout bounds a presence Join's wait for the presence service
	// (HERALD_PRESENCE_TIMEOUT, default 5 s).
	Timeout time.Duration
	Infra   presence.Options
	Logger  *slog.Logger
}

// Defaults.
const (
	DefaultTTL     = 15 * time.Second
	DefaultTimeout = 5 * time.Second
)

// Errors of Join.
var (
	// ErrLimit: the presence channel has its maximum number of members.
	ErrLimit = errors.New("globalstate: presence channel is full")
	// ErrUnavailable: the presence service did not answer in time, or
	// refused the join.
	ErrUnavailable = errors.New("globalstate: presence service unavailable")
	// ErrJoined: the socket is already subscribed to the channel.
	ErrJoined = errors.New("globalstate: already subscribed")
	// ErrLeft: Leave was called while the Join was in progress.
	ErrLeft = errors.New("globalstate: left while joining")
	// ErrClosed: the client is closed.
	ErrClosed = errors.New("globalstate: closed")
)

// JoinRequest is one socket subscribing to one channel.
type JoinRequest struct {
	App, Channel, SocketID string
	// UserID and UserInfo (raw JSON, nil when absent) of a presence
	// subscription, as channel_data gave them.
	UserID   string
	UserInfo json.RawMessage
	// Counts asks for pusher_internal:subscription_count on a
	// non-presence channel (the app's subscription_count setting).
	Counts bool
	// Ready, when set, is called once when the subscription takes effect,
	// before any Deliver: the caller queues subscription_succeeded there.
	Ready func(Snapshot)
	// Deliver receives the subscription's member events (never member_added
	// of its own user) and counts, in order.
	Deliver func(*Event)
}

// Snapshot is what subscription_succeeded tells: the members of a presence
// channel (user id to user info), empty for other channels.
type Snapshot struct {
	Members map[string]json.RawMessage
}

// IDs returns the member ids, sorted.
func (s Snapshot) IDs() []string { return slices.Sorted(maps.Keys(s.Members)) }

// Data is the data of pusher_internal:subscription_succeeded: {} or, on a
// presence channel, {"presence":{"ids":[…],"hash":{…},"count":n}}.
func (s Snapshot) Data(presenceChannel bool) []byte {
	if !presenceChannel {
		return []byte("{}")
	}
	var v struct {
		Presence struct {
			IDs   []string                   `json:"ids"`
			Hash  map[string]json.RawMessage `json:"hash"`
			Count int                        `json:"count"`
		} `json:"presence"`
	}
	v.Presence.IDs = s.IDs()
	v.Presence.Hash = make(map[string]json.RawMessage, len(s.Members))
	for id, info := range s.Members {
		if len(info) == 0 {
			info = json.RawMessage("null")
		}
		v.Presence.Hash[id] = info
	}
	v.Presence.Count = len(v.Presence.IDs)
	b, _ := json.Marshal(v) // infos are valid JSON
	return b
}

// Event is one member event or count for a channel, shared by every local
// subscriber that gets it.
type Event struct {
	App, Channel string
	// Name is protocol.EventMemberAdded, EventMemberRemoved or
	// EventSubscriptionCount.
	Name string
	// UserID of a member event.
	UserID string
	// Data is the Pusher data (JSON).
	Data []byte

	once  sync.Once
	frame []byte
}

// Frame is the event's frame, encoded once for all its subscribers.
func (e *Event) Frame() []byte {
	e.once.Do(func() { e.frame = protocol.EventFrame(e.Name, e.Channel, string(e.Data), nil) })
	return e.frame
}

// Client is one gateway's link to global channel state.
type Client struct {
	opt Options
	nc  *nats.Conn
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	log *slog.Logger
	id  string

	// pubMu orders operations with the local set they describe: a
	// snapshot taken under it matches the operations published before it.
	// It is taken before mu and a channel's mu, never while holding them.
	pubMu sync.Mutex
	// queued are operations waiting for the publish in flight (ops.go),
	// queuedAck their message's acknowledgement; inflight counts the
	// messages not yet acknowledged.
	queued      []presence.Op
	queuedAck   *opAck
	queuedBytes int
	inflight    int
	// batches counts the messages of operations published; oneByOne sends
	// every operation at once on its own (both for tests).
	batches  atomic.Int64
	oneByOne bool
	subs     map[subKey]*localSub
	signed   map[signKey]string // signed-in sockets (users.go)
	reg      uint64             // heartbeat revision of the current registration
	draining bool
	closed   bool

	mu       sync.Mutex // guards channels
	channels map[chanKey]*channel

	// lastRev is the heartbeat key's revision as last written; started the
	// time of the current registration. Both belong to the heartbeat.
	lastRev atomic.Uint64
	started time.Time

	needSnapshot atomic.Bool
	kick         chan struct{}
	resyncSubs   []*nats.Subscription
	stop         chan struct{}
	done         chan struct{}
}

type subKey struct{ app, channel, socket string }

type chanKey struct{ app, channel string }

// New registers the gateway (heartbeat key and an empty snapshot) and starts
// its heartbeat.
func New(ctx context.Context, opt Options) (*Client, error) {
	if opt.NC == nil {
		return nil, errors.New("globalstate: no NATS connection")
	}
	if opt.TTL == 0 {
		opt.TTL = DefaultTTL
	}
	if opt.TTL < time.Second {
		return nil, fmt.Errorf("globalstate: heartbeat TTL %s is below 1 s", opt.TTL)
	}
	option.Default(&opt.Timeout, DefaultTimeout)
	if opt.ID == "" {
		opt.ID = "gw-" + appconf.RandomHex(8)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{opt: opt, nc: opt.NC, log: opt.Logger, id: opt.ID, subs: map[subKey]*localSub{},
		channels: map[chanKey]*channel{}, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	c.js, err = jetstream.New(opt.NC, jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
		// A lost operation leaves the presence service behind: a snapshot
		// puts it right.
		c.needSnapshot.Store(true)
		c.nudge()
	}), jetstream.WithPublishAsyncTimeout(opt.Timeout)) // an ack that never comes must not hold the queue
	if err != nil {
		return nil, fmt.Errorf("globalstate: %w", err)
	}
	if err := c.ensure(ctx); err != nil {
		return nil, err
	}
	for _, subj := range []string{names.PresenceResyncSubject, names.GatewayResyncSubject(c.id)} {
		s, err := c.nc.Subscribe(subj, func(*nats.Msg) {
			c.needSnapshot.Store(true)
			c.nudge()
		})
		if err != nil {
			c.unsubscribeResync()
			return nil, fmt.Errorf("globalstate: subscribing to %s: %w", subj, err)
		}
		c.resyncSubs = append(c.resyncSubs, s)
	}
	// The first writes wait, as the ensures do: on a fresh cluster the
	// bucket may still be electing its leader.
	started := time.Now()
	err = ensure.Wait(ctx, "registering gateway "+c.id, func(ctx context.Context) error {
		return c.createKey(ctx, started)
	})
	if err == nil {
		c.needSnapshot.Store(true)
		err = ensure.Wait(ctx, "sending gateway "+c.id+"'s first snapshot", c.sendSnapshot)
	}
	if err != nil {
		c.unsubscribeResync()
		return nil, fmt.Errorf("globalstate: %w", err)
	}
	go c.heartbeat()
	return c, nil
}

// ID returns the gateway id.
func (c *Client) ID() string { return c.id }

func (c *Client) ensure(ctx context.Context) error {
	o := c.opt.Infra
	if _, err := ensure.OpenStream(ctx, c.js, presence.OpsStreamConfig(o)); err != nil {
		return fmt.Errorf("globalstate: %w", err)
	}
	if _, err := ensure.OpenStream(ctx, c.js, presence.MembersStreamConfig(o)); err != nil {
		return fmt.Errorf("globalstate: %w", err)
	}
	kv, err := ensure.OpenBucket(ctx, c.js, presence.GatewaysBucketConfig(o))
	if err != nil {
		return fmt.Errorf("globalstate: %w", err)
	}
	c.kv = kv
	return nil
}

func (c *Client) unsubscribeResync() {
	for _, s := range c.resyncSubs {
		_ = s.Unsubscribe()
	}
}

func (c *Client) nudge() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Join subscribes a socket to a channel globally. On a presence channel it
// publishes the join, then asks the presence service for the members as of
// that join; the returned Snapshot is the one given to Ready. After an error
// the subscription does not exist.
func (c *Client) Join(ctx context.Context, req JoinRequest) (Snapshot, error) {
	isPresence := presence.IsPresence(req.Channel)
	if isPresence && req.UserID == "" {
		return Snapshot{}, errors.New("globalstate: presence join without a user id")
	}
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()

	ls := &localSub{key: subKey{req.App, req.Channel, req.SocketID}, userID: req.UserID, counts: req.Counts,
		ready: req.Ready, deliver: req.Deliver}
	ch, err := c.attach(ls, isPresence)
	if err != nil {
		return Snapshot{}, err
	}
	op := presence.Op{Op: presence.Join, Gateway: c.id, App: req.App, Channel: req.Channel, SocketID: req.SocketID,
		UserID: req.UserID, UserInfo: req.UserInfo}
	f, err := c.publish(&op, func() error {
		if c.closed {
			return ErrClosed
		}
		if _, dup := c.subs[ls.key]; dup {
			return ErrJoined
		}
		c.subs[ls.key] = ls
		ls.info = req.UserInfo
		return nil
	})
	switch {
	case err == nil:
	case !isPresence && errors.Is(err, ErrUnavailable):
		// The subscription is in the local set, and the snapshot that the
		// failed publish asked for carries it to the presence service.
		return ch.activate(ls, nil)
	case errors.Is(err, ErrUnavailable):
		c.abandon(ls, ch)
		return Snapshot{}, err
	default:
		c.detach(ch, ls)
		return Snapshot{}, err
	}
	if !isPresence {
		return ch.activate(ls, nil)
	}

	seq, err := f.wait(ctx)
	if err != nil {
		c.abandon(ls, ch)
		return Snapshot{}, fmt.Errorf("%w: publishing the join: %v", ErrUnavailable, err)
	}
	rep, err := c.members(ctx, presence.MembersRequest{App: req.App, Channel: req.Channel, Gateway: c.id,
		SocketID: req.SocketID, OpSeq: seq})
	switch {
	case err != nil:
	case rep.Status == presence.StatusLimit:
		err = ErrLimit
	case rep.Status != presence.StatusOK:
		err = fmt.Errorf("%w: join %s", ErrUnavailable, rep.Status)
	case !hasMember(rep.Members, req.UserID):
		// The join was not applied (this gateway was being removed, or a
		// refusal was forgotten in a failover): the list is not ours.
		err = fmt.Errorf("%w: join not applied", ErrUnavailable)
	}
	if err != nil {
		c.abandon(ls, ch)
		return Snapshot{}, err
	}
	return ch.activate(ls, &rep)
}

// Leave unsubscribes a socket from a channel. Leaving what is not joined
// does nothing; a Join in progress for it fails with ErrLeft.
//
// The socket leaves its channel before the leave can go out: the
// member_removed it causes may come back at once, and a socket of the user
// still in the channel would keep it from the others for good (hasLocal).
func (c *Client) Leave(app, channel, socketID string) {
	k := subKey{app, channel, socketID}
	_, _ = c.publish(&presence.Op{Op: presence.Leave, Gateway: c.id, App: app, Channel: channel, SocketID: socketID},
		func() error {
			ls := c.subs[k]
			if ls == nil {
				return errSkip
			}
			delete(c.subs, k)
			c.mu.Lock()
			ch := c.channels[chanKey{app, channel}]
			c.mu.Unlock()
			if ch != nil {
				c.detach(ch, ls)
			}
			if c.closed {
				return errSkip // the presence service has removed this gateway
			}
			return nil
		})
}

// abandon undoes a join that will not complete; the socket leaves the
// channel before its leave goes out, as in Leave.
func (c *Client) abandon(ls *localSub, ch *channel) {
	_, _ = c.publish(&presence.Op{Op: presence.Leave, Gateway: c.id, App: ls.key.app, Channel: ls.key.channel,
		SocketID: ls.key.socket}, func() error {
		c.detach(ch, ls)
		if c.subs[ls.key] != ls {
			return errSkip // already left
		}
		delete(c.subs, ls.key)
		return nil
	})
}

var errSkip = errors.New("skip")

func hasMember(members map[string]json.RawMessage, id string) bool {
	_, ok := members[id]
	return ok
}

func waitAck(ctx context.Context, f jetstream.PubAckFuture) (uint64, error) {
	select {
	case ack := <-f.Ok():
		return ack.Sequence, nil
	case err := <-f.Err():
		return 0, err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// members asks the presence service for a channel's members, retrying while
// no instance answers (one is taking over) until ctx ends.
func (c *Client) members(ctx context.Context, req presence.MembersRequest) (presence.MembersReply, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return presence.MembersReply{}, err
	}
	for {
		m, err := c.nc.RequestWithContext(ctx, names.PresenceMembersSubject, b)
		if err == nil {
			var rep presence.MembersReply
			if err := json.Unmarshal(m.Data, &rep); err != nil {
				return rep, fmt.Errorf("%w: reading the member list: %v", ErrUnavailable, err)
			}
			if rep.Members == nil {
				rep.Members = map[string]json.RawMessage{}
			}
			return rep, nil
		}
		if !errors.Is(err, nats.ErrNoResponders) {
			return presence.MembersReply{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		select {
		case <-ctx.Done():
			return presence.MembersReply{}, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Reconnected refetches the member list of every presence channel with
// local subscribers, and sends a snapshot: member events relayed while the
// connection was down are lost, and the next one may be long in coming. Call
// it from the NATS connection's reconnect handler.
func (c *Client) Reconnected() {
	c.needSnapshot.Store(true)
	c.nudge()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.channels {
		if !ch.presence {
			continue
		}
		ch.mu.Lock()
		if !ch.resyncing && ch.synced {
			ch.resyncing = true
			go ch.refetch()
		}
		ch.mu.Unlock()
	}
}

// Drain marks the gateway as shutting down, before its sockets leave: the
// presence service then holds member_removed for their users through its
// drain grace.
func (c *Client) Drain(ctx context.Context) error {
	f, err := c.publish(&presence.Op{Op: presence.Drain, Gateway: c.id}, func() error {
		if c.closed {
			return ErrClosed
		}
		c.draining = true
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := f.wait(ctx); err != nil {
		return fmt.Errorf("globalstate: publishing drain: %w", err)
	}
	c.nudge() // the heartbeat says draining too
	return nil
}

// Close stops the heartbeat and deletes the gateway's key, so that the
// presence service removes what is left of its subscriptions at once
// (after a Drain, through the grace).
func (c *Client) Close(ctx context.Context) error {
	c.pubMu.Lock()
	if c.closed {
		c.pubMu.Unlock()
		return nil
	}
	c.closed = true
	// What is queued goes now, so that the wait below covers it.
	_ = c.sendQueuedLocked()
	c.pubMu.Unlock()
	close(c.stop)
	<-c.done
	c.unsubscribeResync()
	c.mu.Lock()
	for k, ch := range c.channels {
		ch.unsubscribe()
		delete(c.channels, k)
	}
	c.mu.Unlock()

	var errs []error
	select {
	case <-c.js.PublishAsyncComplete():
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("globalstate: operations still unacknowledged: %w", ctx.Err()))
	}
	// The purge marker tells the presence service's watch at once, then
	// expires: every gateway boot would otherwise leave one for good.
	if err := c.kv.Purge(ctx, names.GatewayKey(c.id), jetstream.PurgeTTL(presence.MarkerTTL)); err != nil {
		errs = append(errs, fmt.Errorf("globalstate: deleting the heartbeat: %w", err))
	}
	return errors.Join(errs...)
}
