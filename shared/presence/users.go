package presence

// Signed-in users across gateways, for watchlists: the presence service
// counts each user's signed-in sockets on every gateway (Signin, Signout,
// snapshots' Users, Gone) and tells of a user's first and last one on
// names.UserStatusSubject(app) as a WatchlistEvent, on core NATS. A gateway
// with watchers asks for the users already online with an OnlineRequest on
// names.PresenceOnlineSubject.

// Watchlist event names.
const (
	Online  = "online"
	Offline = "offline"
)

// MaxWatchlist bounds the user ids of one sign-in's watchlist.
const MaxWatchlist = 100

// WatchlistEvent is one entry of pusher_internal:watchlist_events, and the
// body of a message on names.UserStatusSubject.
type WatchlistEvent struct {
	Name    string   `json:"name"`
	UserIDs []string `json:"user_ids"`
}

// OnlineRequest asks which of UserIDs have a signed-in socket anywhere.
type OnlineRequest struct {
	App     string   `json:"app"`
	UserIDs []string `json:"user_ids"`
}

// OnlineReply answers an OnlineRequest.
type OnlineReply struct {
	Status string   `json:"status"`
	Online []string `json:"online,omitempty"`
}

// UserState is a signed-in user's record in names.PresenceStateBucket, at
// names.UserStateKey.
type UserState struct {
	App    string `json:"app"`
	UserID string `json:"user_id"`
	Seq    uint64 `json:"seq"`
	Conns  []Conn `json:"conns"`
}
