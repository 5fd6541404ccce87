package session

import (
	"slices"
	"strings"
	"testing"

	"github.com/herald-ws/herald/shared/presence"
)

func TestUserDataID(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"string id", `{"id":"42","name":"x"}`, "42", true},
		{"number id", `{"id":7}`, "7", true},
		{"float id as written", `{"id":1.5}`, "1.5", true},
		{"escaped string", `{"id":"a\u0062"}`, "ab", true},
		{"no id", `{"name":"x"}`, "", false},
		{"null id", `{"id":null}`, "", false},
		{"empty id", `{"id":""}`, "", false},
		{"bool id", `{"id":true}`, "", false},
		{"object id", `{"id":{}}`, "", false},
		{"too long", `{"id":"abcdefghijk"}`, "", false},
		{"not an object", `"42"`, "", false},
		{"not JSON", `{`, "", false},
		{"empty", ``, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := userDataID(tt.in, 10)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("userDataID(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func FuzzUserDataID(f *testing.F) {
	for _, s := range []string{`{"id":"42"}`, `{"id":7}`, `{}`, `[]`, `{"id":"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := userDataID(s, 128)
		if err == nil && (id == "" || len(id) > 128) {
			t.Fatalf("userDataID(%q) = %q", s, id)
		}
	})
}

func TestUserDataWatchlist(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
		ok   bool
	}{
		{"none", `{"id":"1"}`, nil, true},
		{"null", `{"id":"1","watchlist":null}`, nil, true},
		{"ids", `{"id":"1","watchlist":["2","3"]}`, []string{"2", "3"}, true},
		{"duplicates dropped", `{"id":"1","watchlist":["2","2"]}`, []string{"2"}, true},
		{"numbers", `{"id":"1","watchlist":[2]}`, nil, false},
		{"not a list", `{"id":"1","watchlist":"2"}`, nil, false},
		{"empty id", `{"id":"1","watchlist":[""]}`, nil, false},
		{"id too long", `{"id":"1","watchlist":["12345678901"]}`, nil, false},
		{"too many", `{"id":"1","watchlist":[` + strings.Repeat(`"x",`, presence.MaxWatchlist) + `"y"]}`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := userDataWatchlist(tt.in, 10)
			if (err == nil) != tt.ok || !slices.Equal(got, tt.want) {
				t.Fatalf("userDataWatchlist(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func FuzzUserDataWatchlist(f *testing.F) {
	for _, s := range []string{`{"watchlist":["a"]}`, `{"watchlist":[1]}`, `{"watchlist":null}`, `{}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list, err := userDataWatchlist(s, 128)
		if err != nil {
			return
		}
		if len(list) > presence.MaxWatchlist {
			t.Fatalf("%d ids", len(list))
		}
		for _, id := range list {
			if id == "" || len(id) > 128 {
				t.Fatalf("id %q", id)
			}
		}
	})
}
