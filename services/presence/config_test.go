package main

import (
	"testing"

	"github.com/herald-ws/herald/shared/process"
	"github.com/herald-ws/herald/shared/process/processtest"
)

func TestSharedSettings(t *testing.T) {
	processtest.Check(t, "presence", map[string]string{"NATS_URL": "nats://127.0.0.1:4222"}, process.Parse[config])
}
