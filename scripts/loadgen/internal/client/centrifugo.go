package client

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/herald-ws/herald/scripts/loadgen/internal/payload"
)

// Centrifugo's JSON protocol (client protocol v2 over /connection/websocket)
// for the same scenarios against Centrifugo: a connect command with an HS256
// JWT, then one subscribe command per channel (with a subscription JWT for
// a private channel), answers matched by id. The server sends an empty
// object as its ping, which the client answers in kind; several replies and
// pushes may share one WebSocket message, one JSON object a line.

// CentrifugoToken is an HS256 JWT for user with the claims given, expiring
// in a day: a connection token (no channel) or a subscription token.
func CentrifugoToken(secret, user, channel string) string {
	claims := map[string]any{"sub": user, "exp": time.Now().Add(24 * time.Hour).Unix()}
	if channel != "" {
		claims["channel"] = channel
	}
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body, _ := json.Marshal(claims) // plain types always marshal
	unsigned := head + "." + enc.EncodeToString(body)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(mac.Sum(nil))
}

type centrifugoReply struct {
	ID    uint32 `json:"id"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Connect *struct {
		Client string `json:"client"`
		Ping   int    `json:"ping"`
	} `json:"connect"`
	Subscribe json.RawMessage `json:"subscribe"`
}

// centrifugoHandshake connects with the connection token and subscribes to
// every channel of the connection, one after the other.
func (c *Conn) centrifugoHandshake(start time.Time) error {
	c.ws.SetReadDeadline(time.Now().Add(c.opts.Timeout))
	cmd, _ := json.Marshal(map[string]any{"id": 1, "connect": map[string]string{"token": c.opts.Token}})
	if err := c.write(cmd); err != nil {
		return fmt.Errorf("%w: sending connect: %v", ErrNoEstablished, err)
	}
	rep, err := c.centrifugoReply(1)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %v", ErrNoEstablished, err)
	case rep.Error != nil:
		return fmt.Errorf("%w: connect refused: %d %s", ErrNoEstablished, rep.Error.Code, rep.Error.Message)
	case rep.Connect == nil || rep.Connect.Client == "":
		return fmt.Errorf("%w: connect answered without a client id", ErrNoEstablished)
	}
	c.SocketID = rep.Connect.Client
	// The server pings every Ping seconds and expects the answer; the
	// client itself never needs to ping.
	c.ActivityTimeout = 0
	c.ConnectTime = time.Since(start)
	subStart := time.Now()
	for i, ch := range c.channels() {
		id := uint32(2 + i)
		sub := map[string]string{"channel": ch}
		if c.opts.SubToken != nil {
			if tok := c.opts.SubToken(ch); tok != "" {
				sub["token"] = tok
			}
		}
		cmd, _ := json.Marshal(map[string]any{"id": id, "subscribe": sub})
		c.ws.SetReadDeadline(time.Now().Add(c.opts.Timeout))
		if err := c.write(cmd); err != nil {
			return fmt.Errorf("%w: sending subscribe: %v", ErrNoSubscription, err)
		}
		rep, err := c.centrifugoReply(id)
		switch {
		case err != nil:
			return fmt.Errorf("%w: %v", ErrNoSubscription, err)
		case rep.Error != nil:
			return fmt.Errorf("%w: %s: %d %s", ErrSubscriptionError, ch, rep.Error.Code, rep.Error.Message)
		}
	}
	c.SubscribeTime = time.Since(subStart)
	c.ws.SetReadDeadline(time.Time{})
	return nil
}

// centrifugoReply reads until the reply with id, handling pings and
// publications on the way.
func (c *Conn) centrifugoReply(id uint32) (centrifugoReply, error) {
	for {
		b, recv, err := c.next()
		if err != nil {
			return centrifugoReply{}, err
		}
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			if len(line) == 0 || c.centrifugoHandle(line, recv) {
				continue
			}
			var rep centrifugoReply
			if err := json.Unmarshal(line, &rep); err != nil {
				c.opts.Shared.OtherIn.Add(1)
				continue
			}
			if rep.ID == id {
				return rep, nil
			}
			c.opts.Shared.OtherIn.Add(1)
		}
	}
}

var (
	centrifugoPing = []byte("{}")
	centrifugoPub  = []byte(`"pub":`)
)

// centrifugoHandle deals with one line that needs no decoding: a ping or a
// load generator publication. It reports whether the line was one.
func (c *Conn) centrifugoHandle(line []byte, recv time.Time) bool {
	if bytes.Equal(line, centrifugoPing) {
		c.opts.Shared.PingsIn.Add(1)
		c.write(centrifugoPing)
		return true
	}
	if !bytes.Contains(line, centrifugoPub) {
		return false
	}
	if e, ok := payload.FromObject(line); ok {
		c.record(e, recv)
		return true
	}
	return false
}

// centrifugoMessage handles one WebSocket message read by Run.
func (c *Conn) centrifugoMessage(b []byte, recv time.Time) {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if len(line) > 0 && !c.centrifugoHandle(line, recv) {
			c.opts.Shared.OtherIn.Add(1)
		}
	}
}

// CentrifugoUser is the user id of connection i's token.
func CentrifugoUser(i int) string { return "u" + strconv.Itoa(i) }
