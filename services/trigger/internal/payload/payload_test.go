package payload

import (
	"errors"
	"net/http"
	"slices"
	"testing"
)

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		want   Event
		status int // 0 = accepted
	}{
		{"channels", `{"name":"e","data":"{\"a\":1}","channels":["a","b"],"socket_id":"1.2","info":"user_count"}`,
			Event{Name: "e", Data: `{"a":1}`, Channels: []string{"a", "b"}, SocketID: "1.2", Info: "user_count"}, 0},
		{"channel", `{"name":"e","data":"","channel":"a"}`, Event{Name: "e", Channels: []string{"a"}}, 0},
		{"channels win over channel", `{"name":"e","data":"x","channel":"a","channels":["b"]}`, Event{Name: "e", Data: "x", Channels: []string{"b"}}, 0},
		{"duplicate channels", `{"name":"e","data":"x","channels":["a","b","a"]}`, Event{Name: "e", Data: "x", Channels: []string{"a", "b"}}, 0},
		{"null socket_id", `{"name":"e","data":"x","channel":"a","socket_id":null}`, Event{Name: "e", Data: "x", Channels: []string{"a"}}, 0},
		{"unknown fields ignored", `{"name":"e","data":"x","channel":"a","extra":[1]}`, Event{Name: "e", Data: "x", Channels: []string{"a"}}, 0},
		{"data at the limit", `{"name":"e","data":"0123456789","channel":"a"}`, Event{Name: "e", Data: "0123456789", Channels: []string{"a"}}, 0},
		{"data over the limit", `{"name":"e","data":"0123456789x","channel":"a"}`, Event{}, http.StatusRequestEntityTooLarge},
		{"escaped data counts decoded", `{"name":"e","data":"\u00e9\u00e9\u00e9\u00e9\u00e9","channel":"a"}`, Event{Name: "e", Data: "ééééé", Channels: []string{"a"}}, 0},
		{"trailing garbage", `{"name":"e","data":"x","channel":"a"} {}`, Event{}, http.StatusBadRequest},
		{"number data", `{"name":"e","data":1,"channel":"a"}`, Event{}, http.StatusBadRequest},
		{"socket_id number", `{"name":"e","data":"x","channel":"a","socket_id":1.2}`, Event{}, http.StatusBadRequest},
		{"null", `null`, Event{}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEvent([]byte(tt.body), 10)
			if tt.status != 0 {
				var pe *Error
				if !errors.As(err, &pe) || pe.Status != tt.status {
					t.Fatalf("err = %v, want status %d", err, tt.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tt.want.Name || got.Data != tt.want.Data || got.SocketID != tt.want.SocketID ||
				got.Info != tt.want.Info || !slices.Equal(got.Channels, tt.want.Channels) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestValidSocketID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"123.456", true},
		{"0.0", true},
		{"", false},
		{"123", false},
		{".456", false},
		{"123.", false},
		{"1.2.3", false},
		{"1a.2", false},
		{"-1.2", false},
		{"１.2", false}, // full-width digit
	}
	for _, tt := range tests {
		if got := ValidSocketID(tt.id); got != tt.want {
			t.Errorf("ValidSocketID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}
