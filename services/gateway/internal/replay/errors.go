package replay

import "errors"

// Reason is why a resume or rewind was refused: the reason member of
// herald:resume_failed. A Reason is an error, so that errors.Is and
// errors.As find it under the wrapping that says what went wrong.
type Reason string

// The reasons of herald:resume_failed (docs/protocol.md).
const (
	// WindowExceeded: events after the position may have left the stream
	// (aged out of the replay window, dropped by the per-channel cap), so a
	// complete replay cannot be proven.
	WindowExceeded Reason = "window_exceeded"
	// HistoryLost: the position belongs to another installation or to an
	// events stream that has since been recreated.
	HistoryLost Reason = "history_lost"
	// InvalidPosition: the position cannot be parsed or lies in the future.
	InvalidPosition Reason = "invalid_position"
	// InvalidRewind: rewind outside 1 to MaxRewind.
	InvalidRewind Reason = "invalid_rewind"
)

func (r Reason) Error() string { return "replay: " + string(r) }

// ReasonOf returns the Reason in err's chain. Any other error (NATS
// unreachable, a timeout) also means that no complete replay can be given;
// it maps to WindowExceeded so that the client refetches its state, and ok is
// false so that the caller can log it.
func ReasonOf(err error) (r Reason, ok bool) {
	if errors.As(err, &r) {
		return r, true
	}
	return WindowExceeded, false
}
