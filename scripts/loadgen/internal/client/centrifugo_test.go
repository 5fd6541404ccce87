package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestCentrifugoToken(t *testing.T) {
	tests := []struct {
		name, user, channel string
	}{
		{"connection", "u1", ""},
		{"subscription", "u2", "private-bench-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := CentrifugoToken("secret", tt.user, tt.channel)
			parts := strings.Split(tok, ".")
			if len(parts) != 3 {
				t.Fatalf("token %q has %d parts", tok, len(parts))
			}
			mac := hmac.New(sha256.New, []byte("secret"))
			mac.Write([]byte(parts[0] + "." + parts[1]))
			if want := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); parts[2] != want {
				t.Fatalf("signature %s, want %s", parts[2], want)
			}
			body, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			var claims struct {
				Sub     string `json:"sub"`
				Channel string `json:"channel"`
				Exp     int64  `json:"exp"`
			}
			if err := json.Unmarshal(body, &claims); err != nil {
				t.Fatal(err)
			}
			if claims.Sub != tt.user || claims.Channel != tt.channel || claims.Exp == 0 {
				t.Fatalf("claims %+v", claims)
			}
		})
	}
}
