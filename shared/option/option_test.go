package option

import (
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   time.Duration
		want time.Duration
	}{
		{"unset", 0, time.Second},
		{"negative", -time.Millisecond, time.Second},
		{"set", time.Minute, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.in
			Default(&v, time.Second)
			if v != tc.want {
				t.Fatalf("Default(%v) = %v, want %v", tc.in, v, tc.want)
			}
		})
	}
	n := 0
	Default(&n, 16)
	if n != 16 {
		t.Fatalf("Default(int 0) = %d, want 16", n)
	}
}
