package payload

import (
	"strings"
	"testing"
)

// BenchmarkParseEvent parses the body Laravel's broadcaster sends for one
// event: data is a JSON-encoded object, so a string full of \" escapes.
func BenchmarkParseEvent(b *testing.B) {
	body := []byte(`{"name":"App\\Events\\OrderShipped","data":"{\"order\":{\"id\":12345,\"status\":\"shipped\",\"url\":\"https:\\/\\/shop.example\\/orders\\/12345\",\"note\":\"` +
		strings.Repeat("x", 200) + `\"}}","channels":["private-orders.1"],"socket_id":"123.456"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEvent(body, 10_000); err != nil {
			b.Fatal(err)
		}
	}
}
