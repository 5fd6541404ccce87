package main

import (
	"os"
	"testing"
)

// unsetenv removes a variable for the rest of the test (t.Setenv can only
// set one); t.Setenv first records the value to restore.
func unsetenv(t *testing.T, key string) {
	t.Helper()
	t.Setenv(key, "")
	if err := os.Unsetenv(key); err != nil {
		t.Fatal(err)
	}
}
