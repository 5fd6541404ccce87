package ws

import "encoding/binary"

// Opcodes of the frames the writer sends (RFC 6455, section 5.2).
const (
	opCont  byte = 0x0 // only for the header of a frame sent in part (restOf)
	opText  byte = 0x1
	opClose byte = 0x8
	opPong  byte = 0xA
)

// maxHeader is the longest header of an unmasked frame.
const maxHeader = 10

// appendHeader appends the header of a final, unmasked frame, as a server
// sends it, for a payload of n bytes.
func appendHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return append(b, 126, byte(n>>8), byte(n))
	}
	b = append(b, 127)
	return binary.BigEndian.AppendUint64(b, uint64(n))
}

// headerLen is the length of appendHeader's header for n bytes.
func headerLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xFFFF:
		return 4
	}
	return 10
}

// closePayload is the payload of a close frame: the code, then as much of the
// reason as fits in a control frame (125 bytes), cut at a rune boundary.
func closePayload(code int, reason string) []byte {
	if code == 0 {
		return nil
	}
	const maxReason = 125 - 2
	if len(reason) > maxReason {
		reason = reason[:maxReason]
		for len(reason) > 0 && reason[len(reason)-1]&0xC0 == 0x80 {
			reason = reason[:len(reason)-1]
		}
		if len(reason) > 0 && reason[len(reason)-1] >= 0xC0 {
			reason = reason[:len(reason)-1]
		}
	}
	b := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(b, uint16(code))
	return append(b, reason...)
}
