package globalstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go"
)

// signKey names one socket of one app.
type signKey struct{ app, socket string }

// SignIn tells the presence service that a socket signed in as userID, in
// place of any former user. Watchers anywhere learn of the user's first
// signed-in socket.
func (c *Client) SignIn(app, socketID, userID string) {
	k := signKey{app, socketID}
	_, _ = c.publish(&presence.Op{Op: presence.Signin, Gateway: c.id, App: app, SocketID: socketID, UserID: userID},
		func() error {
			if c.signed == nil {
				c.signed = map[signKey]string{}
			}
			if c.signed[k] == userID {
				return errSkip
			}
			c.signed[k] = userID
			if c.closed {
				return errSkip
			}
			return nil
		})
}

// SignOut tells the presence service that a signed-in socket ended. Signing
// out a socket that is not signed in does nothing.
func (c *Client) SignOut(app, socketID string) {
	k := signKey{app, socketID}
	_, _ = c.publish(&presence.Op{Op: presence.Signout, Gateway: c.id, App: app, SocketID: socketID},
		func() error {
			if _, ok := c.signed[k]; !ok {
				return errSkip
			}
			delete(c.signed, k)
			if c.closed {
				return errSkip
			}
			return nil
		})
}

// signedInLocked lists the signed-in sockets for a snapshot; pubMu is held.
func (c *Client) signedInLocked() []presence.SignedIn {
	out := make([]presence.SignedIn, 0, len(c.signed))
	for k, uid := range c.signed {
		out = append(out, presence.SignedIn{App: k.app, SocketID: k.socket, UserID: uid})
	}
	return out
}

// Online asks the presence service which of ids have a signed-in socket
// anywhere, retrying while no instance answers or one is still loading,
// within Options.Timeout.
func (c *Client) Online(ctx context.Context, app string, ids []string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	b, err := json.Marshal(presence.OnlineRequest{App: app, UserIDs: ids})
	if err != nil {
		return nil, err
	}
	for {
		m, err := c.nc.RequestWithContext(ctx, names.PresenceOnlineSubject, b)
		if err == nil {
			var rep presence.OnlineReply
			if err := json.Unmarshal(m.Data, &rep); err != nil {
				return nil, fmt.Errorf("%w: reading the online users: %v", ErrUnavailable, err)
			}
			if rep.Status == presence.StatusOK {
				return rep.Online, nil
			}
		} else if !errors.Is(err, nats.ErrNoResponders) {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
