package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/names"
)

func TestTerminateConnections(t *testing.T) {
	f := newFixture(t, "")
	sub, err := f.nc.SubscribeSync(names.UserTerminateSubjects())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		req     req
		status  int
		subject string // "" = nothing published
		user    string
	}{
		{"plain id", req{path: "/apps/app1/users/42/terminate_connections"}, 200, names.UserTerminateSubject("app1"), "42"},
		{"escaped slash stays in the id", req{path: "/apps/app1/users/a%2Fb/terminate_connections"}, 200, names.UserTerminateSubject("app1"), "a/b"},
		{"other app", req{path: "/apps/app2/users/7/terminate_connections", key: testApps[1].Key, secret: testApps[1].Secret},
			200, names.UserTerminateSubject("app2"), "7"},
		{"GET is refused", req{method: http.MethodGet, path: "/apps/app1/users/42/terminate_connections"}, 405, "", ""},
		{"unsigned", req{path: "/apps/app1/users/42/terminate_connections", unsigned: true}, 401, "", ""},
		{"unknown app", req{path: "/apps/nope/users/42/terminate_connections"}, 404, "", ""},
		{"disabled app", req{path: "/apps/off/users/42/terminate_connections", key: testApps[2].Key, secret: testApps[2].Secret}, 403, "", ""},
		{"no user id", req{path: "/apps/app1/users//terminate_connections"}, 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := f.do(t, tt.req)
			if got.status != tt.status {
				t.Fatalf("status = %d, want %d (%s)", got.status, tt.status, got.raw)
			}
			if tt.status == 200 && got.raw != "{}\n" {
				t.Errorf("body = %q, want {}", got.raw)
			}
			if tt.subject == "" {
				return
			}
			// The request is on the server before the answer: it is
			// already here or on its way.
			m, err := sub.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatalf("no terminate message: %v", err)
			}
			if m.Subject != tt.subject || string(m.Data) != tt.user {
				t.Fatalf("published %s %q, want %s %q", m.Subject, m.Data, tt.subject, tt.user)
			}
		})
	}
	if m, err := sub.NextMsg(50 * time.Millisecond); err == nil {
		t.Fatalf("unexpected terminate message %s %q", m.Subject, m.Data)
	}
}
