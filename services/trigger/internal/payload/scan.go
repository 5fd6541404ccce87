package payload

import "bytes"

// scanEvent reads the body nearly every event request has, without
// reflection: one object whose keys are name, data, channels, channel,
// socket_id or info, exactly so spelled, each holding a string (channels:
// an array of strings) with only the escapes unquote decodes. Anything else
// (another key, a null, a number, a \u escape, invalid UTF-8, a syntax
// error) returns ok false, and json.Unmarshal decides: both paths give the
// same event for every body the scanner takes (FuzzScanEvent).
func scanEvent(body []byte) (raw rawEvent, ok bool) {
	// JSON's white space only: bytes.TrimSpace would also drop \v, \f and
	// Unicode spaces, which json.Unmarshal refuses.
	s := scanner{b: bytes.Trim(body, " \t\r\n")}
	if !s.byte('{') {
		return raw, false
	}
	if s.skipWS(); s.peek() == '}' {
		s.i++
		return raw, s.i == len(s.b)
	}
	for {
		key, ok := s.str()
		if !ok || !s.byte(':') {
			return raw, false
		}
		switch key {
		case "name":
			name, ok := s.str()
			if !ok {
				return raw, false
			}
			raw.Name = &name
		case "data":
			start := s.skipWS()
			if raw.data, ok = s.str(); !ok {
				return raw, false
			}
			raw.Data, raw.dataScanned = s.b[start:s.i], true
		case "channel":
			if raw.Channel, ok = s.str(); !ok {
				return raw, false
			}
		case "socket_id":
			if raw.SocketID, ok = s.str(); !ok {
				return raw, false
			}
		case "info":
			if raw.Info, ok = s.str(); !ok {
				return raw, false
			}
		case "channels":
			if raw.Channels, ok = s.strs(); !ok {
				return raw, false
			}
		default:
			return raw, false
		}
		s.skipWS()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return raw, s.i == len(s.b)
		default:
			return raw, false
		}
	}
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) skipWS() int {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
	return s.i
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// byte skips white space and c.
func (s *scanner) byte(c byte) bool {
	if s.skipWS(); s.peek() != c {
		return false
	}
	s.i++
	return true
}

// str reads a string literal, decoded by unquote.
func (s *scanner) str() (string, bool) {
	start := s.skipWS()
	if s.peek() != '"' {
		return "", false
	}
	for s.i++; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '\\':
			s.i++
		case '"':
			s.i++
			return unquote(s.b[start:s.i])
		}
	}
	return "", false
}

// strs reads an array of string literals.
func (s *scanner) strs() ([]string, bool) {
	if !s.byte('[') {
		return nil, false
	}
	out := []string{}
	if s.skipWS(); s.peek() == ']' {
		s.i++
		return out, true
	}
	for {
		v, ok := s.str()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		s.skipWS()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return out, true
		default:
			return nil, false
		}
	}
}
