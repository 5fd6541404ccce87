package signing

import (
	"testing"
	"time"
)

// BenchmarkVerifyRequest checks the signature of a publish request as the
// Pusher SDKs sign it: the trigger API does it for every request.
func BenchmarkVerifyRequest(b *testing.B) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"name":"App\\Events\\OrderShipped","data":"{\"order\":{\"id\":12345}}","channels":["private-orders.1"]}`)
	q := SignRequest("POST", "/apps/1/events", nil, body, "key", "a-secret-of-the-app-0001", now)
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyRequest("POST", "/apps/1/events", q, body, "key", "a-secret-of-the-app-0001", now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignRequest is what the load generator pays for each publish.
func BenchmarkSignRequest(b *testing.B) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"name":"App\\Events\\OrderShipped","data":"{\"order\":{\"id\":12345}}","channels":["private-orders.1"]}`)
	b.ReportAllocs()
	for b.Loop() {
		SignRequest("POST", "/apps/1/events", nil, body, "key", "a-secret-of-the-app-0001", now)
	}
}
