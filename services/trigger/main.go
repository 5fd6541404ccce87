// Command trigger serves Herald's HTTP API (Pusher's REST API): it checks
// signed publish requests and stores their events in NATS JetStream.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/logging"
)

// config is read once from the environment.
type config struct {
	Host       string `env:"HERALD_TRIGGER_HOST" envDefault:"0.0.0.0"`
	Port       int    `env:"HERALD_TRIGGER_PORT" envDefault:"8081"`
	PathPrefix string `env:"REVERB_SERVER_PATH"`
	NATSURL    string `env:"NATS_URL,required,notEmpty"`
	// StreamReplicas is 1 on a single NATS server, 3 on a cluster.
	StreamReplicas int `env:"HERALD_STREAM_REPLICAS" envDefault:"1"`
	// StreamMaxBytes caps each app's events stream; 0 means 1 GiB.
	StreamMaxBytes int64 `env:"HERALD_STREAM_MAX_BYTES" envDefault:"0"`
	// PublishRetryFor bounds how long a publish keeps trying through a
	// NATS reconnect or a stream leader election; 0 answers 503 at once.
	PublishRetryFor time.Duration `env:"HERALD_PUBLISH_RETRY_FOR" envDefault:"5s"`
	LogLevel        string        `env:"HERALD_LOG_LEVEL" envDefault:"info"`
	LogFormat       string        `env:"HERALD_LOG_FORMAT" envDefault:"text"`
}

func main() {
	cfg, err := appconf.Parse[config]()
	if err != nil {
		fmt.Fprintf(os.Stderr, "trigger: reading settings: %v\n", err)
		os.Exit(2)
	}
	if cfg.PublishRetryFor < 0 || cfg.PublishRetryFor > time.Minute {
		fmt.Fprintf(os.Stderr, "trigger: HERALD_PUBLISH_RETRY_FOR=%s must be 0 to 1m\n", cfg.PublishRetryFor)
		os.Exit(2)
	}
	log, err := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		fmt.Fprintf(os.Stderr, "trigger: %v\n", err)
		os.Exit(2)
	}
	appconf.WarnForeign(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("trigger stopped", "err", err)
		os.Exit(1)
	}
}
