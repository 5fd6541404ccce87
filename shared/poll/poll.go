// Package poll waits in tests for a condition that another goroutine or
// process makes true: the one polling loop every module's tests share.
package poll

import (
	"testing"
	"time"
)

// Interval is how often a condition is checked.
const Interval = 5 * time.Millisecond

// Patience bounds a test's wait for what should happen soon (a frame, a
// member event, a state persisted, a takeover): only a failing test waits it
// out. It is generous because tests run on loaded machines (CI, several
// suites at once), where what takes milliseconds alone can take seconds;
// a passing test never depends on it.
const Patience = 30 * time.Second

// Within checks cond until it holds (true) or within has passed (false).
func Within(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(Interval)
	}
	return true
}

// Until fails tb unless cond holds within the given time; what names the
// condition in the failure.
func Until(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Within(within, cond) {
		tb.Fatalf("not within %s: %s", within, what)
	}
}
