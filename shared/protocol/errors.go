package protocol

import "fmt"

// Pusher close and error codes, in one place. The ranges drive pusher-js:
// 4000-4099 refused (never reconnect), 4100-4199 reconnect after a pause,
// 4200-4299 reconnect at once, 4300+ refused.
const (
	CodeUseTLS              = 4000
	CodeAppNotFound         = 4001
	CodeAppDisabled         = 4003
	CodeOverConnectionQuota = 4004
	CodePathNotFound        = 4005
	CodeInvalidVersion      = 4006
	CodeUnsupportedProtocol = 4007
	CodeNoProtocolVersion   = 4008
	CodeUnauthorized        = 4009

	CodeOverCapacity = 4100 // also the slow-consumer close

	CodeGenericReconnect = 4200 // shutdown, drain, malformed frames (as Reverb)
	CodePongNotReceived  = 4201
	CodeClosedAfterIdle  = 4202

	CodeClientEventRateLimit = 4301
	CodeMessageTooLarge      = 4302 // oversized frame, as the close of a client that keeps sending them
)

// Error is a protocol error that carries the Pusher code it maps to on the
// wire. Close reports whether the connection must be closed after the
// pusher:error frame is sent.
type Error struct {
	Code    int
	Message string
	Close   bool
}

func (e *Error) Error() string { return fmt.Sprintf("pusher error %d: %s", e.Code, e.Message) }

// Errorf builds an Error that leaves the connection open.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Fatalf builds an Error after which the connection is closed with Code.
func Fatalf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Close: true}
}
