// Package presence is the contract of Herald's global channel state between
// the gateways, the presence service and the trigger API: names (in
// shared/names, presence.go), message shapes, stream and bucket
// configurations, and the Reader that answers channel queries.
//
// # Parties
//
// Gateways hold WebSocket connections and know only their own subscriptions.
// The presence service is the single writer of the global state: which
// connections of which gateways are subscribed to which channels, and the
// members of presence channels. The trigger API reads the persisted state.
//
// # Names
//
//	names.GatewaysBucket         KV   key GatewayKey(gw) = Heartbeat, per-key TTL, limit markers
//	names.PresenceOpsStream      work queue on PresenceOpsSubject(gw) = herald.presence.ops.<gw>: Op
//	names.PresenceOpsConsumer    the one durable consumer of it (the active presence instance)
//	names.MembersStream          herald.presence.member.<app>.<channel>: member events,
//	                             RePublished to herald.presence.mlive.<app>.<channel>
//	names.PresenceMembersSubject request/reply (queue group names.PresenceQueueGroup): MembersRequest → MembersReply
//	SubscriptionCountSubject     herald.presence.count.<app>.<channel>: CountData, core NATS
//	names.PresenceResyncSubject  herald.presence.resync[.<gw>]: ResyncRequest, core NATS
//	names.PresenceStateBucket    KV: ChannelStateKey(app, channel) = ChannelState (occupied channels only),
//	                             GatewayStateKey(gw) = GatewayState, names.PresenceMetaKey = Meta
//	names.PresenceLockBucket     KV: names.PresenceLeaderKey = Lock, per-key TTL
//	UserStatusSubject            herald.presence.users.<app>: WatchlistEvent, core NATS
//	names.PresenceOnlineSubject  request/reply (queue group names.PresenceQueueGroup): OnlineRequest → OnlineReply
//	                             (state bucket: UserStateKey(app, user) = UserState, signed-in users only)
//
// App ids, channel names and gateway ids enter subjects and keys through
// names.EncodeToken.
//
// # Gateways
//
// A gateway boot has an id of its own (never reused: the service forgets
// gateways whose heartbeat ended and ignores their late operations). It
// creates its heartbeat key with a TTL (HERALD_GATEWAY_TTL, default 15 s) and
// rewrites it every TTL/3 with the TTL and the revision it wrote last as
// expected revision. The key expires when the gateway dies or is cut off;
// the bucket's limit marker makes the expiry a watch event. A rewrite that
// finds another revision means the key was lost: the gateway creates it
// again and sends a snapshot (below) under the new registration.
//
// Every subscription change is an Op on the gateway's ops subject, for every
// kind of channel (counts and occupancy need them all):
//
//	{"op":"join","gw":…,"app":…,"channel":…,"socket_id":…,"user_id":…,"user_info":…}
//	{"op":"leave","gw":…,"app":…,"channel":…,"socket_id":…}
//	{"op":"snapshot","gw":…,"reg":R,"snap":id,"part":i,"last":bool,"subs":[Sub…]}
//	{"op":"drain","gw":…}
//
//	{"op":"signin","gw":…,"app":…,"socket_id":…,"user_id":…}
//	{"op":"signout","gw":…,"app":…,"socket_id":…}
//
//	{"op":"batch","gw":…,"ops":[{"op":"join","app":…},{"op":"leave",…},…]}
//
// Snapshots also carry the signed-in sockets ("users":[SignedIn…], after
// the subscriptions, in the same parts). user_id and user_info only on
// presence channels. Operations of one gateway
// are published on one connection under one lock with the gateway's local set
// of subscriptions, so they are stored in the order the set changed, and a
// snapshot matches exactly the operations stored before it. A snapshot is the
// gateway's full set, in parts of at most 256 KiB published back to back, R
// being the heartbeat revision of the registration it belongs to. A gateway
// sends one when it registers (empty on a fresh boot), when it registers
// again after losing its key, when a publish of an operation failed (the
// service may lack it), and when asked on the resync subjects.
//
// A gateway has one operation message in flight at a time: operations that
// come while it is are queued and go as one Batch (at most MaxBatchOps, about
// 256 KiB) when it is acknowledged, so that a wave of subscribes costs a
// publish per round trip rather than one per subscription. A batch's
// operations (joins, leaves, sign-ins, sign-outs, drain; no snapshot) are
// applied in order, each as if stored on its own at the batch's sequence:
// each has its effects, webhooks and member events, whose ids add the
// operation's index in the batch; a channel records the index of the last
// operation applied with the sequence, so that a batch redelivered after a
// crash changes nothing. A presence join's member request names the batch's
// sequence and its socket. Batches are version 2 of the format (OpsVersion):
// a version 1 service drops them as malformed, so presence services are
// upgraded before gateways.
//
// Limits (max members, user info size, user id length) are checked by the
// gateway before it joins, except the member count, which only the service
// knows: it refuses the join of a new user into a full channel.
//
// # Presence subscribe
//
// To answer pusher:subscribe on a presence channel the gateway:
//
//  1. subscribes to the channel's live member subject (and buffers);
//  2. publishes its join and takes the stream sequence S from the PubAck;
//  3. requests MembersRequest{…, op_seq: S}; the service answers once it has
//     applied every operation up to S: status "limit" (subscription_error
//     LimitReached/403), "refused" (the service does not count this gateway
//     as registered; 503), or "ok" with the members and Seq, the MembersStream
//     sequence they correspond to: every member event up to Seq is reflected,
//     none after. No answer within HERALD_PRESENCE_TIMEOUT (default 5 s; no
//     responders is retried meanwhile): subscription_error 503, and the gateway
//     publishes the leave;
//  4. sends subscription_succeeded with the members, then the buffered and
//     live events with a sequence above Seq.
//
// The gateway keeps one view of each presence channel with local subscribers,
// complete up to a MembersStream position P. A live event at or below P is
// old; one whose Nats-Last-Sequence (the previous event of the same channel;
// 0 once that aged out) is at or below P follows on, and moves P to its
// sequence; any other means events were lost on the way (RePublish is at most
// once), and the gateway fetches the list again (op_seq 0), adopts it if it
// is newer than P and tells its sockets the difference as member events.
// member_added goes to every local subscriber except the sockets of that
// user; member_removed to every local subscriber.
//
// # The presence service
//
// One instance is active: the one that created names.PresenceLeaderKey (TTL
// HERALD_PRESENCE_LOCK_TTL, renewed every TTL/3 with the revision as
// expected); the others retry the create and take over within about the TTL
// after the active one stops renewing, at once when it releases the lock on
// shutdown.
//
// The active instance writes the state bucket as its only writer: every
// write carries Nats-Expected-Last-Sequence, the stream sequence of its own
// previous write, so that writes are pipelined yet all fail once anyone else
// has written. A term begins by writing Meta after whatever the bucket holds:
// from then on every write of a deposed instance fails, whatever its clock
// believes. That is the fence. It then loads the bucket, deletes and creates
// the durable consumer again (DeliverAll: the work queue holds exactly the
// operations not yet acknowledged, in order), and applies them one by one:
//
//   - Each operation is applied in memory. A channel or gateway records the
//     sequence of the last operation applied to it; an operation at or below
//     it is a replay and changes nothing. Joins of a present socket and leaves
//     of an absent one change nothing either.
//   - member_added goes out on a user's first connection anywhere,
//     member_removed on its last; a user on two gateways is one member. Each
//     event is published at once into MembersStream with a Nats-Msg-Id made of
//     the operations stream's identity, the operation's sequence and what the
//     event says, so that an instance that applies the operation again after
//     a crash emits the same id, which the stream drops (DuplicateWindow).
//   - Writes are coalesced per channel (HERALD_PRESENCE_FLUSH_INTERVAL,
//     default 50 ms); after a flush wrote them, the operations that produced
//     them are acknowledged in stream order. Crash-safe order: publish the
//     member event, write the state, acknowledge.
//   - Meta.Applied records the highest sequence up to which everything is
//     persisted. A term that finds operations missing after it (the stream
//     dropped them at its limit while no instance ran, or was recreated) asks
//     every gateway for a snapshot.
//   - Member lists are answered only once the term has applied every
//     operation stored when it began: then the state reflects every stored
//     member event again.
//
// A snapshot (applied whole, at the sequence of its last part; its parts are
// acknowledged only then) replaces the gateway's subscriptions channel by
// channel, with member events for the users who come or go.
//
// Gateway death: the service watches the heartbeat bucket; an expiry marker
// or a deletion becomes {"op":"gone","gw":…,"reg":R} in the gateway's ops
// subject (published by the service, Nats-Msg-Id from gateway and revision),
// R being the marker's revision. Applied in order with the gateway's own
// operations, it removes all the gateway's connections (member_removed for
// users who lost their last connection, counts fixed) and keeps a tombstone
// whose late operations are ignored, unless R is not above the registration
// the gateway's latest snapshot named (it registered again meanwhile). A
// snapshot with a newer registration revives a removed gateway. At the start
// of a term, and every few seconds, gateways the state holds as registered
// without a heartbeat are removed the same way (markers missed while no
// instance watched). Operations of a gateway the state does not know are
// applied only if it has a heartbeat, and it is asked for a snapshot.
//
// Drain: a gateway shutting down for a restart publishes drain, marks its
// heartbeat draining, then leaves (or closes its sockets) and deletes its
// key. A user whose last connection was on a draining gateway stays a member
// for HERALD_PRESENCE_DRAIN_GRACE (default 10 s; the deadline is persisted):
// if it joins again anywhere meanwhile, nothing is sent; otherwise
// member_removed goes out when the grace ends (its Nats-Msg-Id derived from
// the deadline).
//
// Watchlists: the service counts each user's signed-in sockets on every
// gateway, like a presence member's connections, and publishes a
// WatchlistEvent on the app's UserStatusSubject on a user's first signed-in
// socket ("online") and its last one gone ("offline"), a removed gateway's
// included; sign-outs of a draining gateway are not held by the grace.
// Gateways with watchers of an app listen to its subject and forward to the
// watchers of those users; a watcher's initial online set comes from an
// OnlineRequest (up to MaxWatchlist ids) right after its sign-in.
//
// Counts: on a change of a non-presence channel's subscription count the
// service publishes CountData on its count subject, at most once per second
// per channel with the latest value, for apps with subscription_count on.
// Gateways relay it as pusher_internal:subscription_count.
//
// Occupancy: a channel is occupied while it has a subscription on some
// gateway, or a member held through a drain grace; the service tells its
// occupancy hook when that changes (for webhooks), after persisting it.
//
// # Reading
//
// ChannelState keys exist only for occupied channels; Reader reads them for
// the HTTP API's channel queries. A removed key (a vacated channel, a
// signed-out user, a forgotten gateway) is a purge marker that expires
// after MarkerTTL, so that keys that come and go leave nothing for good. They are at most a flush interval behind
// what the service applied.
//
// # Why it is built this way
//
//   - Gateway ids are unique per boot, so that "this gateway is gone" is a
//     fact about one boot: a restarted gateway never inherits, nor is blamed
//     for, the subscriptions of its previous life.
//   - Heartbeat keys carry their own TTL (Nats-TTL) rather than the bucket's:
//     every gateway decides its TTL and no two services fight over the
//     bucket's configuration. The limit marker is what turns an expiry into a
//     watch event; without it a key silently disappears.
//   - All subscription changes, of every channel kind, go through one ordered
//     stream with one consumer: the order of operations is the order of
//     truth, and the service needs every change for counts and occupancy.
//     Gateway removal and drain are operations in the same stream, so they are
//     ordered against the gateway's own joins and leaves; a removal decided
//     from outside that order could overtake a join stored before it.
//   - One writer keeps the state in memory and persists it: answering member
//     lists needs no round trip to the bucket, and a restart or a standby
//     loads it instead of asking every gateway. Coalesced writes keep the
//     bucket's write rate to one per channel per flush whatever the churn.
//   - Non-presence channels are persisted as counts per gateway, not socket
//     lists: a channel with a hundred thousand subscribers stays one small
//     value. Replays are still exact, through the per-channel sequence.
//   - The operations stream is a work queue, and the consumer is recreated at
//     each term: the queue then holds exactly the unacknowledged operations,
//     in order, and the new term reads them at once instead of waiting for
//     their ack wait to expire (which would also deliver them out of order).
//   - Acknowledging only after persisting, and publishing events before
//     persisting, means a crash loses nothing and repeats only what the
//     members stream deduplicates.
//   - The fence is a sequence check on the whole state stream, not per key: a
//     per-key revision check lets a deposed writer still write keys that the
//     new one has not touched yet.
//   - MembersStream keeps one event per channel: enough for
//     Nats-Last-Sequence to name the previous event, which is all gateways
//     need to detect a lost live message.
//   - Member lists answer "as of" a stream position rather than "now", the
//     same snapshot-versus-live merge as a replay resume: the gateway buffers
//     live events from before its join and keeps exactly those after the
//     list's position.
//   - The drain grace holds member_removed, not the removal of connections:
//     counts stay true, while presence does not flap during a rolling restart.
package presence
