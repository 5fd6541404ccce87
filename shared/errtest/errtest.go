// Package errtest checks the error of a table test's case.
package errtest

import (
	"strings"
	"testing"
)

// Expect checks err against want, the part of the error text a case
// expects ("" for none), failing tb on a mismatch. It reports whether the
// call succeeded, that is whether the case goes on to check the result.
func Expect(tb testing.TB, err error, want string) (succeeded bool) {
	tb.Helper()
	if want == "" {
		if err != nil {
			tb.Fatalf("unexpected error: %v", err)
		}
		return true
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		tb.Fatalf("error %v, want one containing %q", err, want)
	}
	return false
}
