package protocol

import (
	"fmt"
	"strings"
)

// Kind is what a channel name's prefix makes of it.
type Kind int

const (
	Public Kind = iota
	Private
	PrivateEncrypted
	Presence
	ServerToUser
)

// ServerToUserPrefix starts the channel a signed-in user gets its messages on.
const ServerToUserPrefix = "#server-to-user-"

// MaxNameLength bounds channel and event names.
const MaxNameLength = 200

// ChannelKind classifies a channel name.
func ChannelKind(name string) Kind {
	switch {
	case strings.HasPrefix(name, "private-encrypted-"):
		return PrivateEncrypted
	case strings.HasPrefix(name, "private-"):
		return Private
	case strings.HasPrefix(name, "presence-"):
		return Presence
	case strings.HasPrefix(name, ServerToUserPrefix):
		return ServerToUser
	}
	return Public
}

// IsCache reports a cache channel (cache-, private-cache-,
// private-encrypted-cache-, presence-cache-).
func IsCache(name string) bool {
	for _, p := range []string{"cache-", "private-cache-", "private-encrypted-cache-", "presence-cache-"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// NeedsAuth reports whether subscribing takes a signature.
func (k Kind) NeedsAuth() bool { return k == Private || k == PrivateEncrypted || k == Presence }

// ValidateChannel checks a channel name against Pusher's rules: 1 to 200
// characters of [A-Za-z0-9_\-=@,.;], or the #server-to-user- form.
func ValidateChannel(name string) error {
	if name == "" {
		return fmt.Errorf("channel name is empty")
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("channel name is longer than %d characters", MaxNameLength)
	}
	rest := name
	if strings.HasPrefix(name, ServerToUserPrefix) {
		rest = name[len(ServerToUserPrefix):]
		if rest == "" {
			return fmt.Errorf("channel name %q has no user id", name)
		}
	}
	for i := 0; i < len(rest); i++ {
		if !channelByte(rest[i]) {
			return fmt.Errorf("channel name has a character outside [A-Za-z0-9_-=@,.;]: %q", rest[i])
		}
	}
	return nil
}

// ValidateEventName checks an event name: 1 to 200 characters.
func ValidateEventName(name string) error {
	if name == "" {
		return fmt.Errorf("event name is empty")
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("event name is longer than %d characters", MaxNameLength)
	}
	return nil
}

func channelByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '_', '-', '=', '@', ',', '.', ';':
		return true
	}
	return false
}
