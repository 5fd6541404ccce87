package appconf

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{`30`, 30 * time.Second, true},
		{`1.5`, 1500 * time.Millisecond, true},
		{`0`, 0, true},
		{`"5m"`, 5 * time.Minute, true},
		{`"1h30m"`, 90 * time.Minute, true},
		{`"250ms"`, 250 * time.Millisecond, true},
		{`"5"`, 5 * time.Second, true}, // plain seconds, as in the environment
		{`"soon"`, 0, false},
		{`true`, 0, false},
		{`"5m`, 0, false},
		{`[1]`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d Duration
			err := json.Unmarshal([]byte(tt.in), &d)
			if (err == nil) != tt.ok {
				t.Fatalf("Unmarshal(%s) = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if tt.ok && d.D() != tt.want {
				t.Errorf("Unmarshal(%s) = %v, want %v", tt.in, d.D(), tt.want)
			}
		})
	}
	// Marshal writes the string form, which reads back the same.
	b, err := json.Marshal(Duration(90 * time.Second))
	if err != nil || string(b) != `"1m30s"` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var back Duration
	if err := json.Unmarshal(b, &back); err != nil || back.D() != 90*time.Second {
		t.Errorf("round trip = %v, %v", back.D(), err)
	}
}

func TestOriginAllowed(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		origin  string
		want    bool
	}{
		{"no list allows all", nil, "https://any.example", true},
		{"no origin header", []string{"https://shop.example"}, "", true},
		{"exact", []string{"https://shop.example"}, "https://shop.example", true},
		{"case-insensitive", []string{"https://Shop.Example"}, "https://shop.example", true},
		{"other origin", []string{"https://shop.example"}, "https://evil.example", false},
		{"scheme matters", []string{"https://shop.example"}, "http://shop.example", false},
		{"port matters", []string{"https://shop.example"}, "https://shop.example:8443", false},
		{"star", []string{"*"}, "https://any.example", true},
		{"star among others", []string{"https://a.example", "*"}, "https://b.example", true},
		{"wildcard subdomain", []string{"*.example.com"}, "https://shop.example.com", true},
		{"wildcard deep subdomain", []string{"*.example.com"}, "https://a.b.example.com", true},
		{"wildcard without scheme", []string{"*.example.com"}, "shop.example.com", true},
		{"wildcard case", []string{"*.Example.com"}, "https://SHOP.example.COM", true},
		{"wildcard not the apex", []string{"*.example.com"}, "https://example.com", false},
		{"wildcard not a suffix lookalike", []string{"*.example.com"}, "https://evilexample.com", false},
		{"wildcard not another domain", []string{"*.example.com"}, "https://example.com.evil.net", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := App{AllowedOrigins: tt.allowed}
			if got := a.OriginAllowed(tt.origin); got != tt.want {
				t.Errorf("OriginAllowed(%q) with %q = %v, want %v", tt.origin, tt.allowed, got, tt.want)
			}
		})
	}
}
