package names

// Names of global channel state: what gateways, the presence service and the
// trigger API exchange about who is subscribed where. shared/presence
// describes the protocol that runs on them.

// Streams, buckets and the consumer of global channel state.
const (
	// PresenceOpsStream holds the join, leave, snapshot, drain and gone
	// operations that the presence service applies in order (work queue).
	PresenceOpsStream = "HERALD_PRESENCE_OPS"
	// PresenceOpsConsumer is the one durable consumer of PresenceOpsStream.
	PresenceOpsConsumer = "presence"
	// MembersStream stores member_added and member_removed events, one
	// subject per channel, and republishes them to MemberLiveSubject.
	MembersStream = "HERALD_PRESENCE_MEMBERS"
	// GatewaysBucket holds one heartbeat key per running gateway.
	GatewaysBucket = "HERALD_GATEWAYS"
	// PresenceStateBucket holds the state of every occupied channel, the
	// gateways the presence service knows and its own meta record.
	PresenceStateBucket = "HERALD_PRESENCE"
	// PresenceLockBucket holds the lock that makes one presence instance
	// the active one.
	PresenceLockBucket = "HERALD_PRESENCE_LOCK"
)

// Keys of PresenceStateBucket and PresenceLockBucket that are not per
// channel or per gateway.
const (
	// PresenceMetaKey records the writer's term and the last operation it
	// applied; writing it is what fences a deposed instance out.
	PresenceMetaKey = "meta"
	// PresenceLeaderKey is the lock key in PresenceLockBucket.
	PresenceLeaderKey = "leader"
)

// Core NATS subjects of global channel state.
const (
	// PresenceMembersSubject takes a gateway's request for a presence
	// channel's members.
	PresenceMembersSubject = Prefix + ".presence.members"
	// PresenceQueueGroup is the queue group of the presence service's
	// request subscriptions.
	PresenceQueueGroup = "herald-presence"
	// PresenceResyncSubject asks every gateway for a full snapshot.
	PresenceResyncSubject = Prefix + ".presence.resync"
)

// PresenceOpsSubjects is the subject filter of PresenceOpsStream.
func PresenceOpsSubjects() string { return Prefix + ".presence.ops.*" }

// PresenceOpSubject is where one gateway publishes its operations (and where
// the presence service publishes the gone operation of that gateway).
func PresenceOpSubject(gatewayID string) string {
	return Prefix + ".presence.ops." + EncodeToken(gatewayID)
}

// GatewayResyncSubject asks one gateway for a full snapshot.
func GatewayResyncSubject(gatewayID string) string {
	return PresenceResyncSubject + "." + EncodeToken(gatewayID)
}

// MemberEventsSubjects is the subject filter of MembersStream.
func MemberEventsSubjects() string { return Prefix + ".presence.member.*.*" }

// MemberEventSubject is where the presence service publishes a channel's
// member events into MembersStream.
func MemberEventSubject(appID, channel string) string {
	return Prefix + ".presence.member." + EncodeToken(appID) + "." + EncodeToken(channel)
}

// MemberLiveSubject is where MembersStream republishes a stored member
// event, and where gateways with subscribers on the channel listen.
func MemberLiveSubject(appID, channel string) string {
	return Prefix + ".presence.mlive." + EncodeToken(appID) + "." + EncodeToken(channel)
}

// MemberLiveRepublishDestination maps MemberEventsSubjects onto
// MemberLiveSubject.
func MemberLiveRepublishDestination() string {
	return Prefix + ".presence.mlive.{{wildcard(1)}}.{{wildcard(2)}}"
}

// SubscriptionCountSubject carries a channel's throttled subscription count
// to the gateways (core NATS).
func SubscriptionCountSubject(appID, channel string) string {
	return Prefix + ".presence.count." + EncodeToken(appID) + "." + EncodeToken(channel)
}

// GatewayKey is a gateway's heartbeat key in GatewaysBucket.
func GatewayKey(gatewayID string) string { return EncodeToken(gatewayID) }

// The kinds of keys in PresenceStateBucket, by prefix.
const (
	ChannelStateKeyPrefix = "ch."
	UserStateKeyPrefix    = "us."
	GatewayStateKeyPrefix = "gw."
)

// ChannelStateKey is a channel's key in PresenceStateBucket.
func ChannelStateKey(appID, channel string) string {
	return ChannelStateKeyPrefix + EncodeToken(appID) + "." + EncodeToken(channel)
}

// ChannelStateKeys is the key filter of every channel of an app.
func ChannelStateKeys(appID string) string {
	return ChannelStateKeyPrefix + EncodeToken(appID) + ".*"
}

// ChannelStatePrefix is the key prefix of an app's channels whose names
// start with prefix (EncodeToken preserves prefixes).
func ChannelStatePrefix(appID, prefix string) string {
	return ChannelStateKeyPrefix + EncodeToken(appID) + "." + EncodeToken(prefix)
}

// GatewayStateKey is the presence service's record of a gateway in
// PresenceStateBucket.
func GatewayStateKey(gatewayID string) string { return GatewayStateKeyPrefix + EncodeToken(gatewayID) }
