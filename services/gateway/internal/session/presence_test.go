package session

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/herald-ws/herald/shared/presence"
	"github.com/herald-ws/herald/shared/protocol"
)

func TestParseChannelData(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		wantID   string
		wantInfo string
		err      error
	}{
		{"string id with info", `{"user_id":"ann","user_info":{"name":"Ann"}}`, "ann", `{"name":"Ann"}`, nil},
		{"numeric id", `{"user_id":42}`, "42", "", nil},
		{"negative and fractional id kept as written", `{"user_id":-1.5e3}`, "-1.5e3", "", nil},
		{"null info", `{"user_id":"a","user_info":null}`, "a", "", nil},
		{"string info", `{"user_id":"a","user_info":"hi"}`, "a", `"hi"`, nil},
		{"id at the length limit", `{"user_id":"` + strings.Repeat("u", 8) + `"}`, strings.Repeat("u", 8), "", nil},
		{"not JSON", `nope`, "", "", errInvalidMember},
		{"array", `[1]`, "", "", errInvalidMember},
		{"no user_id", `{"user_info":{}}`, "", "", errInvalidMember},
		{"null user_id", `{"user_id":null}`, "", "", errInvalidMember},
		{"empty user_id", `{"user_id":""}`, "", "", errInvalidMember},
		{"object user_id", `{"user_id":{"a":1}}`, "", "", errInvalidMember},
		{"boolean user_id", `{"user_id":true}`, "", "", errInvalidMember},
		{"id too long", `{"user_id":"` + strings.Repeat("u", 9) + `"}`, "", "", errMemberTooLarge},
		{"info too large", `{"user_id":"a","user_info":"` + strings.Repeat("i", 20) + `"}`, "", "", errMemberTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseChannelData(tt.data, 8, 16)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if m.UserID != tt.wantID || string(m.Info) != tt.wantInfo {
				t.Errorf("got %q %s, want %q %s", m.UserID, m.Info, tt.wantID, tt.wantInfo)
			}
		})
	}
}

// FuzzParseChannelData checks that whatever channel_data is accepted makes a
// join operation the presence service takes, and member events that encode.
func FuzzParseChannelData(f *testing.F) {
	for _, s := range []string{
		`{"user_id":"ann","user_info":{"name":"Ann"}}`, `{"user_id":42}`, `{"user_id":"é\u0000"}`,
		`{"user_id":1e999}`, `{"user_id":"a","user_info":[1,2,{"x":null}]}`, `"{}"`, ``, `{`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		m, err := parseChannelData(data, 16, 64)
		if err != nil {
			if !errors.Is(err, errInvalidMember) && !errors.Is(err, errMemberTooLarge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if m.UserID == "" || len(m.UserID) > 16 || len(m.Info) > 64 {
			t.Fatalf("limits not applied: %+v", m)
		}
		if m.Info != nil && !json.Valid(m.Info) {
			t.Fatalf("info is not JSON: %q", m.Info)
		}
		op := presence.Op{Op: presence.Join, Gateway: "gw", App: "a", Channel: "presence-x", SocketID: "1.1",
			UserID: m.UserID, UserInfo: m.Info}
		msg, err := op.Msg("")
		if err != nil {
			t.Fatalf("encoding the join: %v", err)
		}
		if _, err := presence.DecodeOp(msg.Data); err != nil {
			t.Fatalf("the presence service would refuse the join: %v", err)
		}
		for _, name := range []string{protocol.EventMemberAdded, protocol.EventMemberRemoved} {
			ev := presence.MemberEvent{Event: name, UserID: m.UserID, UserInfo: m.Info}
			if !json.Valid(ev.Data()) {
				t.Fatalf("invalid member data %s", ev.Data())
			}
		}
	})
}
