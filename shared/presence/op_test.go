package presence

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/protocol"
)

func TestDecodeOp(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"presence join", `{"op":"join","gw":"g","app":"a","channel":"presence-r","socket_id":"1.2","user_id":"7","user_info":{"n":1}}`, true},
		{"public join", `{"op":"join","gw":"g","app":"a","channel":"news","socket_id":"1.2"}`, true},
		{"leave without user", `{"op":"leave","gw":"g","app":"a","channel":"presence-r","socket_id":"1.2"}`, true},
		{"snapshot", `{"op":"snapshot","gw":"g","reg":4,"snap":"x","part":0,"last":true,"subs":[{"app":"a","channel":"news","socket_id":"1.2"}]}`, true},
		{"empty snapshot", `{"op":"snapshot","gw":"g","reg":4,"snap":"x","last":true}`, true},
		{"drain", `{"op":"drain","gw":"g"}`, true},
		{"gone", `{"op":"gone","gw":"g","reg":9}`, true},
		{"not json", `join`, false},
		{"unknown op", `{"op":"jump","gw":"g"}`, false},
		{"no gateway", `{"op":"drain"}`, false},
		{"presence join without user", `{"op":"join","gw":"g","app":"a","channel":"presence-r","socket_id":"1.2"}`, false},
		{"bad channel", `{"op":"join","gw":"g","app":"a","channel":"a b","socket_id":"1.2"}`, false},
		{"no socket", `{"op":"leave","gw":"g","app":"a","channel":"news"}`, false},
		{"user info as a string", `{"op":"join","gw":"g","app":"a","channel":"presence-r","socket_id":"1","user_id":"7","user_info":"x"}`, true},
		{"gone without revision", `{"op":"gone","gw":"g"}`, false},
		{"snapshot without id", `{"op":"snapshot","gw":"g","last":true}`, false},
		{"snapshot entry without user", `{"op":"snapshot","gw":"g","snap":"x","subs":[{"app":"a","channel":"presence-r","socket_id":"1"}]}`, false},
		{"negative part", `{"op":"snapshot","gw":"g","snap":"x","part":-1}`, false},
		{"signin", `{"op":"signin","gw":"g","app":"a","socket_id":"1.2","user_id":"7"}`, true},
		{"signin without user", `{"op":"signin","gw":"g","app":"a","socket_id":"1.2"}`, false},
		{"signin without socket", `{"op":"signin","gw":"g","app":"a","user_id":"7"}`, false},
		{"signout", `{"op":"signout","gw":"g","app":"a","socket_id":"1.2"}`, true},
		{"signout without app", `{"op":"signout","gw":"g","socket_id":"1.2"}`, false},
		{"snapshot with users", `{"op":"snapshot","gw":"g","snap":"x","last":true,"users":[{"app":"a","socket_id":"1","user_id":"7"}]}`, true},
		{"snapshot user without id", `{"op":"snapshot","gw":"g","snap":"x","users":[{"app":"a","socket_id":"1"}]}`, false},
		{"batch", `{"op":"batch","gw":"g","ops":[{"op":"join","app":"a","channel":"news","socket_id":"1.2"},{"op":"leave","app":"a","channel":"news","socket_id":"1.2"},{"op":"signin","app":"a","socket_id":"1.2","user_id":"7"},{"op":"drain"}]}`, true},
		{"batch naming its gateway", `{"op":"batch","gw":"g","ops":[{"op":"join","gw":"g","app":"a","channel":"news","socket_id":"1.2"}]}`, true},
		{"empty batch", `{"op":"batch","gw":"g"}`, false},
		{"batch of another gateway", `{"op":"batch","gw":"g","ops":[{"op":"drain","gw":"h"}]}`, false},
		{"batch with a snapshot", `{"op":"batch","gw":"g","ops":[{"op":"snapshot","snap":"x","last":true}]}`, false},
		{"batch in a batch", `{"op":"batch","gw":"g","ops":[{"op":"batch","ops":[{"op":"drain"}]}]}`, false},
		{"batch with a gone", `{"op":"batch","gw":"g","ops":[{"op":"gone","reg":3}]}`, false},
		{"batch with a bad join", `{"op":"batch","gw":"g","ops":[{"op":"join","app":"a","channel":"presence-r","socket_id":"1"}]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeOp([]byte(tt.in))
			if tt.ok && err != nil {
				t.Fatalf("DecodeOp: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrBadOp) {
				t.Fatalf("DecodeOp err = %v, want ErrBadOp", err)
			}
		})
	}
}

func TestOpMsgRoundTrip(t *testing.T) {
	op := Op{Op: Join, Gateway: "gw.1", App: "a", Channel: "presence-r.1", SocketID: "1.2", UserID: "7",
		UserInfo: json.RawMessage(`{"name":"Ann"}`)}
	m, err := op.Msg("id-1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != names.PresenceOpSubject("gw.1") || m.Header.Get(names.HeaderNatsMsgID) != "id-1" {
		t.Fatalf("subject %q, msg id %q", m.Subject, m.Header.Get(names.HeaderNatsMsgID))
	}
	back, err := DecodeOp(m.Data)
	if err != nil || back.UserID != "7" || string(back.UserInfo) != `{"name":"Ann"}` || back.Channel != op.Channel {
		t.Fatalf("DecodeOp = %+v, %v", back, err)
	}
}

func TestBatchOf(t *testing.T) {
	join := Op{Op: Join, Gateway: "gw.1", App: "a", Channel: "presence-r", SocketID: "1.2", UserID: "7",
		UserInfo: json.RawMessage(`{"name":"Ann"}`)}
	leave := Op{Op: Leave, Gateway: "gw.1", App: "a", Channel: "news", SocketID: "1.3"}
	one := BatchOf([]Op{join})
	if one.Op != Join || one.Gateway != "gw.1" {
		t.Fatalf("BatchOf one op = %+v, want the op itself", one)
	}
	b := BatchOf([]Op{join, leave})
	m, err := b.Msg("")
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != names.PresenceOpSubject("gw.1") || bytes.Count(m.Data, []byte(`"gw"`)) != 1 {
		t.Fatalf("subject %q, body %s: want the gateway once, on the batch", m.Subject, m.Data)
	}
	back, err := DecodeOp(m.Data)
	if err != nil {
		t.Fatalf("DecodeOp: %v", err)
	}
	if back.Op != Batch || len(back.Ops) != 2 || back.Ops[0].Gateway != "gw.1" || back.Ops[1].Gateway != "gw.1" ||
		back.Ops[0].UserID != "7" || string(back.Ops[0].UserInfo) != `{"name":"Ann"}` || back.Ops[1].Op != Leave {
		t.Fatalf("DecodeOp = %+v", back)
	}
	if join.Gateway != "gw.1" {
		t.Fatal("BatchOf changed its input")
	}
}

func TestMemberEventRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		ev       MemberEvent
		wantData string
	}{
		{"added", MemberEvent{App: "a", Channel: "presence-r", Event: protocol.EventMemberAdded, UserID: "7",
			UserInfo: json.RawMessage(`{"name":"Ann & <Bob>"}`)}, `{"user_id":"7","user_info":{"name":"Ann & <Bob>"}}`},
		{"added without info", MemberEvent{App: "a", Channel: "presence-r", Event: protocol.EventMemberAdded, UserID: "7"},
			`{"user_id":"7"}`},
		{"removed", MemberEvent{App: "a", Channel: "presence-r", Event: protocol.EventMemberRemoved, UserID: "7",
			UserInfo: json.RawMessage(`{"name":"Ann"}`)}, `{"user_id":"7"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.ev.Msg()
			if m.Subject != names.MemberEventSubject("a", "presence-r") || string(m.Data) != tt.wantData {
				t.Fatalf("msg %s %s", m.Subject, m.Data)
			}
			// As the stream republishes it.
			m.Header.Set(names.HeaderNatsSequence, "12")
			m.Header.Set(names.HeaderNatsLastSequence, "9")
			live, err := ParseLiveMemberEvent(m)
			if err != nil {
				t.Fatal(err)
			}
			if live.Seq != 12 || live.LastSeq != 9 || live.UserID != "7" || live.Event != tt.ev.Event {
				t.Fatalf("live %+v", live)
			}
		})
	}
}

func TestCountData(t *testing.T) {
	for _, n := range []int{0, 1, 12345} {
		got, err := ParseCountData(CountData(n))
		if err != nil || got != n {
			t.Fatalf("ParseCountData(CountData(%d)) = %d, %v", n, got, err)
		}
	}
	if _, err := ParseCountData([]byte(`{}`)); !errors.Is(err, ErrBadOp) {
		t.Fatalf("missing count: err %v", err)
	}
}

func FuzzDecodeOp(f *testing.F) {
	for _, s := range []string{
		`{"op":"join","gw":"g","app":"a","channel":"presence-r","socket_id":"1.2","user_id":"7","user_info":{"n":1}}`,
		`{"op":"snapshot","gw":"g","reg":4,"snap":"x","part":0,"last":true,"subs":[{"app":"a","channel":"news","socket_id":"1.2"}]}`,
		`{"op":"gone","gw":"g","reg":9}`, `{"op":"drain","gw":"g"}`, `{}`, `[]`, `null`, `{"op":"join","gw":""}`,
		`{"op":"signin","gw":"g","app":"a","socket_id":"1.2","user_id":"7"}`, `{"op":"signout","gw":"g","app":"a","socket_id":"1.2"}`,
		`{"op":"batch","gw":"g","ops":[{"op":"join","app":"a","channel":"news","socket_id":"1.2"},{"op":"drain"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := DecodeOp(b)
		if err != nil {
			if !errors.Is(err, ErrBadOp) {
				t.Fatalf("error %v is not ErrBadOp", err)
			}
			return
		}
		// What is accepted survives a round trip unchanged.
		m, err := op.Msg("")
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeOp(m.Data)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", m.Data, err)
		}
		var info bytes.Buffer
		if len(op.UserInfo) > 0 {
			_ = json.Compact(&info, op.UserInfo)
		}
		if again.Op != op.Op || again.Gateway != op.Gateway || again.Channel != op.Channel ||
			len(again.Subs) != len(op.Subs) || !bytes.Equal(again.UserInfo, info.Bytes()) {
			t.Fatalf("round trip changed %+v into %+v", op, again)
		}
	})
}
