// Package status is the figures each gateway publishes for the status page:
// one small JSON message every Interval on core NATS (never stored), read
// by whichever process serves the page (herald, the trigger API).
package status

import (
	"time"

	"github.com/herald-ws/herald/shared/names"
)

// Subject carries every gateway's figures.
const Subject = names.GatewayStatusSubject

// Interval is how often a gateway publishes. A gateway not heard from for
// three intervals is shown as gone.
const Interval = 2 * time.Second

// Gateway is one gateway's figures at Time. Counters count from the
// gateway's start; readers turn them into rates.
type Gateway struct {
	ID      string    `json:"id"`
	Started time.Time `json:"started"`
	Time    time.Time `json:"time"`

	Connections   int64            `json:"connections"`
	Channels      int              `json:"channels"`
	Subscriptions int64            `json:"subscriptions"`
	Apps          map[string]int64 `json:"apps"` // open connections by app id

	MessagesSent       uint64 `json:"messages_sent"`
	BytesSent          uint64 `json:"bytes_sent"`
	BytesReceived      uint64 `json:"bytes_received"`
	ClientEvents       uint64 `json:"client_events"`
	SlowConsumerCloses uint64 `json:"slow_consumer_closes"`
	Resumes            uint64 `json:"resumes"`         // resumes and rewinds that succeeded
	ResumeFailures     uint64 `json:"resume_failures"` // herald:resume_failed sent
	ReplayedEvents     uint64 `json:"replayed_events"`

	NATS     string `json:"nats"` // the NATS connection's state: CONNECTED, RECONNECTING, …
	Draining bool   `json:"draining"`
}
