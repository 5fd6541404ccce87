package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/herald-ws/herald/scripts/loadgen/internal/client"
)

// config is every flag of the load generator.
type config struct {
	WS      []string // gateway base URLs, connections go round-robin
	API     string
	AppID   string
	Key     string
	Secret  string
	Conns   int
	Chans   int
	Private bool
	Prefix  string
	Rate    float64
	Dur     time.Duration
	Size    int
	Batch   int
	Senders int
	PIDs    []int

	Ramp     float64       // connections started per second
	Inflight int           // handshakes in progress at once
	Timeout  time.Duration // per handshake step
	Settle   time.Duration // pause before the after-connect memory reading
	Drain    time.Duration // longest wait for stragglers after the last event
	Late     time.Duration

	Idle      bool
	ColdStart bool
	Runs      int
	Command   []string // the process a cold start run launches

	Shared           string // a channel every connection also subscribes to
	CentrifugoSecret string // HMAC key of Centrifugo's connection and subscription tokens

	Publish       bool   // closed-loop HTTP publish (httppublish.go)
	Publishers    int    // requests in flight, each sent when the last is answered
	Target        string // herald or centrifugo
	CentrifugoKey string // Centrifugo's http_api key

	JSON       bool
	CPUProfile string
	Compare    bool // print the comparison table of reports (compare.go)
}

// Bounds that keep a run finite whatever the flags say.
const (
	maxConns    = 200_000
	maxRate     = 1_000_000
	maxDuration = time.Hour
)

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ws, pids listFlag
	fs.Var(&ws, "ws", "gateway base URL, ws://host:port[/prefix]; repeat (or comma-separate) for several gateways (default ws://127.0.0.1:8080)")
	fs.StringVar(&c.API, "api", "http://127.0.0.1:8080", "trigger API base URL")
	fs.StringVar(&c.AppID, "app-id", "", "app id")
	fs.StringVar(&c.Key, "key", "", "app key")
	fs.StringVar(&c.Secret, "secret", "", "app secret (signs API requests and private channel auth)")
	fs.IntVar(&c.Conns, "conns", 1000, "WebSocket connections")
	fs.IntVar(&c.Chans, "channels", 1, "channels; connection i subscribes to channel i mod channels (0 with -idle: no subscription)")
	fs.BoolVar(&c.Private, "private", false, "subscribe to private channels, with signed auth")
	fs.StringVar(&c.Prefix, "channel-prefix", "bench", "channel name prefix (private- is added with -private)")
	fs.Float64Var(&c.Rate, "rate", 100, "events per second, over all channels")
	fs.DurationVar(&c.Dur, "duration", 30*time.Second, "how long to trigger events (or, with -idle, to hold the connections)")
	fs.IntVar(&c.Size, "size", 100, "bytes of each event's data")
	fs.IntVar(&c.Batch, "batch", 1, "events per request; above 1 uses batch_events (at most 10)")
	fs.IntVar(&c.Senders, "senders", 8, "API requests in flight at once (1: each waits for the previous answer)")
	fs.Var(&pids, "server-pid", "server process id to measure (CPU, RSS); repeat or comma-separate to add several")
	fs.Float64Var(&c.Ramp, "ramp", 500, "connections started per second")
	fs.IntVar(&c.Inflight, "inflight", 100, "connection handshakes in progress at once")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "limit for each handshake step and each API request")
	fs.DurationVar(&c.Settle, "settle", 2*time.Second, "pause after connecting, before reading the server's memory")
	fs.DurationVar(&c.Drain, "drain", 10*time.Second, "longest wait for outstanding messages after the last event")
	fs.DurationVar(&c.Late, "late", 10*time.Second, "a channel that falls this far behind schedule stops sending")
	fs.BoolVar(&c.Idle, "idle", false, "open the connections, send no events, hold them for -duration, report memory per connection")
	fs.BoolVar(&c.ColdStart, "coldstart", false, "start the command after -- repeatedly and time its first accepted event (-runs times)")
	fs.IntVar(&c.Runs, "runs", 10, "cold start runs")
	fs.BoolVar(&c.Publish, "publish", false, "closed-loop HTTP publish: -publishers requests in flight for -duration, no WebSocket clients; reports requests/s, latency and server CPU per request")
	fs.IntVar(&c.Publishers, "publishers", 1, "with -publish: publishers, each sending its next request when the previous one is answered")
	fs.StringVar(&c.Target, "target", targetHerald, "with -publish: the server's API, herald (signed Pusher API at -api) or centrifugo (POST -api/api/publish)")
	fs.StringVar(&c.CentrifugoKey, "centrifugo-api-key", "", "with -target centrifugo: the X-API-Key of Centrifugo's HTTP API")
	fs.BoolVar(&c.Compare, "compare", false, "print the Herald/Centrifugo table of the JSON reports given as NAME=HERALD.json[,CENTRIFUGO.json] arguments")
	fs.StringVar(&c.Shared, "shared", "", "a public channel every connection subscribes to after its own (-channels = -conns gives each its own channel)")
	fs.StringVar(&c.CentrifugoSecret, "centrifugo-secret", "", "with -target centrifugo: the HMAC key of connection and subscription tokens (client.token.hmac_secret_key)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write loadgen's own CPU profile to this file")
	fs.BoolVar(&c.JSON, "json", false, "print one JSON object on stdout (the text report goes to stderr)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.WS = ws
	if len(c.WS) == 0 {
		c.WS = []string{"ws://127.0.0.1:8080"}
	}
	for _, p := range pids {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return c, fmt.Errorf("-server-pid %q is not a process id", p)
		}
		c.PIDs = append(c.PIDs, n)
	}
	c.Command = fs.Args()
	if c.Compare {
		return c, nil
	}
	return c, c.validate()
}

func (c *config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Publish {
		return c.validatePublish()
	}
	switch {
	case c.Target == targetCentrifugo && !c.ColdStart:
		if c.CentrifugoSecret == "" || (c.CentrifugoKey == "" && !c.Idle) {
			bad("-target centrifugo needs -centrifugo-secret, and -centrifugo-api-key to publish")
		}
		if c.Batch != 1 {
			bad("-target centrifugo publishes one event a request: -batch must be 1")
		}
	case c.Target != targetHerald && c.Target != targetCentrifugo:
		bad("-target must be %s or %s", targetHerald, targetCentrifugo)
	case c.AppID == "" || c.Key == "" || c.Secret == "":
		bad("-app-id, -key and -secret are required")
	}
	if _, err := client.CheckURL(c.API, "http", "https"); err != nil {
		bad("-api: %v", err)
	}
	c.API = strings.TrimSuffix(c.API, "/")
	for i, u := range c.WS {
		if _, err := client.CheckURL(u, "ws", "wss"); err != nil {
			bad("-ws: %v", err)
		}
		c.WS[i] = strings.TrimSuffix(u, "/")
	}
	if c.ColdStart {
		if len(c.Command) == 0 {
			bad("-coldstart needs the command to start after --")
		}
		if c.Runs < 1 || c.Runs > 100 {
			bad("-runs must be 1 to 100")
		}
		return errors.Join(errs...)
	}
	switch {
	case c.Conns < 1 || c.Conns > maxConns:
		bad("-conns must be 1 to %d", maxConns)
	case c.Chans < 0 || c.Chans > c.Conns:
		bad("-channels must be 0 to -conns")
	case c.Chans == 0 && !c.Idle:
		bad("-channels 0 only goes with -idle")
	}
	if c.Dur <= 0 || c.Dur > maxDuration {
		bad("-duration must be positive and at most %s", maxDuration)
	}
	if !c.Idle {
		switch {
		case c.Rate <= 0 || c.Rate > maxRate:
			bad("-rate must be above 0 and at most %d", maxRate)
		case c.Rate*c.Dur.Seconds() < 1:
			bad("-rate x -duration is under one event")
		}
	}
	if c.Batch < 1 || c.Batch > 10 {
		bad("-batch must be 1 to 10")
	}
	if c.Senders < 1 || c.Senders > 1000 {
		bad("-senders must be 1 to 1000")
	}
	if c.Size < 0 || c.Size > 1<<20 {
		bad("-size must be 0 to 1 MiB")
	}
	if c.Ramp <= 0 || c.Inflight < 1 {
		bad("-ramp and -inflight must be positive")
	}
	if c.Timeout <= 0 || c.Drain < 0 || c.Settle < 0 || c.Late <= 0 {
		bad("-timeout and -late must be positive, -drain and -settle not negative")
	}
	if len(c.Command) > 0 {
		bad("unexpected arguments %q (a command only goes with -coldstart)", c.Command)
	}
	return errors.Join(errs...)
}

// channel is the name of channel i.
func (c *config) channel(i int) string {
	name := c.Prefix + "-" + strconv.Itoa(i)
	if c.Private {
		name = "private-" + name
	}
	return name
}

// wsURL is the URL of connection i: gateways are taken round-robin.
func (c *config) wsURL(i int) string {
	if c.Target == targetCentrifugo {
		return c.WS[i%len(c.WS)] + "/connection/websocket"
	}
	return c.WS[i%len(c.WS)] + "/app/" + c.Key + "?protocol=7&client=js&version=8.4.0&flash=false"
}
