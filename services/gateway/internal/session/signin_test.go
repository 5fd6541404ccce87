package session

import "testing"

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
