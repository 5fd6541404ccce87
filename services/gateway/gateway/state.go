package gateway

// Global channel state: the gateway's link to the presence service
// (internal/globalstate), which makes presence members, subscription counts
// and the HTTP API's channel queries span every gateway.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/herald-ws/herald/services/gateway/internal/globalstate"
	"github.com/herald-ws/herald/shared/presence"
)

// startState registers this gateway boot with the presence service: its
// heartbeat key, then an empty snapshot. It does not wait for the service,
// which may start later: presence subscribes wait for it, the others are
// counted once it runs.
func (g *Gateway) startState(ctx context.Context) error {
	st, err := globalstate.New(ctx, globalstate.Options{
		NC:      g.opt.NC,
		ID:      g.id,
		TTL:     g.opt.GatewayTTL,
		Timeout: g.opt.PresenceTimeout,
		Infra:   presence.Options{Replicas: g.opt.Stream.Replicas},
		Logger:  g.log,
	})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.state = st
	return nil
}

// Reconnected tells the gateway that its NATS connection came back: member
// events relayed meanwhile are lost, so presence member lists are fetched
// again and the presence service gets a fresh snapshot. Call it from the
// connection's reconnect handler.
func (g *Gateway) Reconnected() {
	if g.state != nil {
		g.state.Reconnected()
	}
}

// drainStateTimeout bounds the wait for the drain to be stored.
const drainStateTimeout = 2 * time.Second

// drainState marks the gateway as going away before its sockets leave, so
// that the presence service holds member_removed through its drain grace
// and users who reconnect to another gateway do not flap.
func (g *Gateway) drainState(ctx context.Context) error {
	// Bounded: with NATS unreachable the clients must still get their 4200
	// in time.
	ctx, cancel := context.WithTimeout(ctx, drainStateTimeout)
	defer cancel()
	if err := g.state.Drain(ctx); err != nil && !errors.Is(err, globalstate.ErrClosed) {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}

// closeState ends the registration once every socket has left: the
// presence service then removes what remains of this gateway at once.
func (g *Gateway) closeState(ctx context.Context) error {
	if err := g.state.Close(ctx); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}
