package names

import "testing"

func TestUserTerminateSubject(t *testing.T) {
	tests := []struct {
		name, app, want string
	}{
		{"plain", "app1", "herald.users.terminate.app1"},
		{"escaped", "a.b", "herald.users.terminate.a=2Eb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := UserTerminateSubject(tt.app)
			if got != tt.want {
				t.Fatalf("UserTerminateSubject(%q) = %q, want %q", tt.app, got, tt.want)
			}
			app, err := ChannelFromSubject(got)
			if err != nil || app != tt.app {
				t.Fatalf("app token of %q = %q, %v; want %q", got, app, err, tt.app)
			}
		})
	}
}
