// Command presence runs Herald's presence service on its own: the single
// writer of global channel state (subscriptions, presence members, counts)
// for a split deployment. Run two for failover: one is active, the other
// takes over within the lock TTL.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "presence:", err)
		os.Exit(1)
	}
}
