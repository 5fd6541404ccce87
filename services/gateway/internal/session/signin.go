package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/herald-ws/herald/shared/presence"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/herald-ws/herald/shared/signing"
)

// Users is told of every connection that signs in, so that the gateway can
// find a user's connections (terminate_connections) and tell it when the
// users of its watchlist come online or go offline.
type Users interface {
	SignedIn(s *Session, appID, userID string, watchlist []string)
}

// UserID is the id the connection signed in as, "" before sign-in.
func (s *Session) UserID() string { return s.user }

// AppID is the id of the connection's app.
func (s *Session) AppID() string { return s.app.ID }

// signin checks pusher:signin. A good one makes the connection that user's
// and is answered with pusher:signin_success; a bad signature or user_data
// closes the connection with 4009, as Pusher does.
func (s *Session) signin(f protocol.Frame) {
	var d protocol.SigninData
	if err := protocol.DecodeData(f.Data, &d); err != nil {
		s.bad(CodeMalformed, "Invalid pusher:signin: "+strings.TrimPrefix(err.Error(), "protocol: "))
		return
	}
	if !signing.VerifySigninAuth(s.app.Key, s.app.Secret, s.id, d.UserData, d.Auth) {
		s.conn.Close(protocol.CodeUnauthorized, "Invalid signature for pusher:signin")
		return
	}
	id, err := userDataID(d.UserData, s.app.MaxUserIDLength)
	var watchlist []string
	if err == nil {
		watchlist, err = userDataWatchlist(d.UserData, s.app.MaxUserIDLength)
	}
	if err != nil {
		s.conn.Close(protocol.CodeUnauthorized, "Invalid user_data: "+err.Error())
		return
	}
	if s.user != "" && s.user != id {
		// The former user's messages must not reach the new one.
		if _, ok := s.channels[protocol.ServerToUserPrefix+s.user]; ok {
			s.leave(protocol.ServerToUserPrefix + s.user)
		}
	}
	s.user = id
	if s.users != nil {
		s.users.SignedIn(s, s.app.ID, id, watchlist)
	}
	data, _ := json.Marshal(struct {
		UserData string `json:"user_data"`
	}{d.UserData})
	s.Send(protocol.EventFrame(protocol.EventSigninSuccess, "", string(data), nil))
}

// mayJoinUserChannel reports whether the connection may subscribe to the
// #server-to-user- channel ch: only when signed in as that user.
func (s *Session) mayJoinUserChannel(ch string) bool {
	return s.user != "" && ch == protocol.ServerToUserPrefix+s.user
}

// userDataWatchlist returns the "watchlist" of a sign-in's user_data: up to
// presence.MaxWatchlist user ids (strings), duplicates dropped. user_data
// is already known to be a JSON object.
func userDataWatchlist(userData string, maxLen int) ([]string, error) {
	var u struct {
		Watchlist json.RawMessage `json:"watchlist"`
	}
	_ = json.Unmarshal([]byte(userData), &u)
	if len(u.Watchlist) == 0 || string(u.Watchlist) == "null" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(u.Watchlist, &list); err != nil {
		return nil, errors.New("watchlist is not a list of strings")
	}
	if len(list) > presence.MaxWatchlist {
		return nil, fmt.Errorf("watchlist has more than %d ids", presence.MaxWatchlist)
	}
	out := make([]string, 0, len(list))
	for _, w := range list {
		switch {
		case w == "":
			return nil, errors.New("watchlist has an empty id")
		case maxLen > 0 && len(w) > maxLen:
			return nil, fmt.Errorf("watchlist id longer than %d bytes", maxLen)
		case !slices.Contains(out, w):
			out = append(out, w)
		}
	}
	return out, nil
}

// userDataID returns the "id" of a sign-in's user_data: a non-empty string
// or a number (as written), at most maxLen bytes when maxLen > 0.
func userDataID(userData string, maxLen int) (string, error) {
	var u struct {
		ID json.RawMessage `json:"id"`
	}
	b := bytes.TrimSpace([]byte(userData))
	if len(b) == 0 || b[0] != '{' {
		return "", errors.New("not a JSON object")
	}
	if err := json.Unmarshal(b, &u); err != nil {
		return "", errors.New("not a JSON object")
	}
	var id string
	switch {
	case len(u.ID) == 0 || string(u.ID) == "null":
		return "", errors.New("no id")
	case u.ID[0] == '"':
		if err := json.Unmarshal(u.ID, &id); err != nil {
			return "", errors.New("id is not a string")
		}
	default:
		var n json.Number
		if err := json.Unmarshal(u.ID, &n); err != nil {
			return "", errors.New("id is not a string or a number")
		}
		id = n.String()
	}
	switch {
	case id == "":
		return "", errors.New("id is empty")
	case maxLen > 0 && len(id) > maxLen:
		return "", fmt.Errorf("id is longer than %d bytes", maxLen)
	}
	return id, nil
}
