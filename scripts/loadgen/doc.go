// Command loadgen measures a Herald installation: connections, fan-out
// throughput, trigger-to-client latency, losses, server CPU and memory.
//
// It speaks to Herald only as an app would: WebSocket clients on the Pusher
// protocol and the signed HTTP API. Every address must be a loopback one;
// runs are bounded in connections, rate and time and end by themselves.
//
// # Load
//
//	go run ./scripts/loadgen -ws ws://127.0.0.1:8080 -api http://127.0.0.1:8080 \
//	    -app-id ID -key KEY -secret SECRET \
//	    -conns 1000 -channels 1 -rate 100 -duration 30s -size 100 -server-pid PID
//
// Connections are started at -ramp a second with at most -inflight
// handshakes at once, spread round-robin over every -ws URL; connection i
// subscribes to channel i mod -channels (private channels with -private,
// signed as an app's auth endpoint would). Once all are subscribed, events
// are published at -rate a second for -duration, round-robin over the
// channels, -batch events a request (batch_events above 1), with up to
// -senders requests in flight. Each event's data holds its sequence number
// on its channel, the channel's index and the time it was sent, padded to
// -size bytes. Subscribers account every receipt: latency is receive time
// minus send time on the same clock; an accepted event still missing at a
// subscriber when the drain ends is missing (the drain's outcome says
// whether messages were still arriving), a second receipt is a duplicate,
// and an event is out of order when it arrives after one whose request
// started after this one's request had been answered (requests in flight
// together may be stored in either order).
//
// With -server-pid the report also gives the CPU the whole machine spent
// outside loadgen and the server during the run: on a shared machine, that
// is the interference the figures suffered.
//
// # Idle
//
// With -idle no event is sent: the connections are held for -duration,
// answering the server's pings and pinging when quiet as pusher-js does, and
// the report gives the server's memory per connection.
//
// # A channel per connection
//
//	loadgen -idle -conns 5000 -channels 5000 -private -shared bench-all -ramp 100000 …
//
// gives every connection its own private channel (channel i is
// connection i's when -channels equals -conns) and, with -shared, a public
// channel they all join after it. The report splits the server's CPU
// into the part until the last subscription was answered and the part in
// the -settle pause after it (work a wave of subscriptions leaves behind),
// gives the CPU per connection and the connections opened a second; the
// CPU during the hold is what the server still spends once they are all
// in.
//
// # Centrifugo
//
// -target centrifugo runs the same load and idle scenarios against
// Centrifugo (its JSON protocol on -ws/connection/websocket): each
// connection connects with its own user's HS256 token signed with
// -centrifugo-secret and subscribes with commands matched by id; a
// -private channel is subscribed with a subscription token (the
// counterpart of a Pusher private channel's signed auth), other channels
// need the namespace's allow_subscribe_for_client. Events go to
// POST -api/api/publish with -centrifugo-api-key, one a request, the data
// as a JSON object; the server's empty-object pings are answered.
//
// # Cold start
//
//	loadgen -coldstart -runs 10 -api http://127.0.0.1:8081 -app-id … -key … -secret … -- bin/trigger
//
// starts the command (with loadgen's environment) -runs times and posts an
// event in a loop from the moment of the start until one is accepted, then
// stops the command with SIGTERM. The report gives each run, the median and
// the max.
//
// # HTTP publish
//
//	loadgen -publish -publishers 16 -duration 20s -api http://127.0.0.1:8080 \
//	    -app-id ID -key KEY -secret SECRET -server-pid PID
//	loadgen -publish -target centrifugo -centrifugo-api-key KEY -channel-prefix ns:bench \
//	    -publishers 16 -duration 20s -api http://127.0.0.1:8000 -server-pid PID
//
// is a closed loop with no WebSocket client: each of -publishers sends its
// next request as soon as the previous one is answered, for -duration,
// publisher i on channel i mod -channels. Against Herald (-target herald)
// a request is a signed POST /apps/{id}/events; against Centrifugo it is
// POST /api/publish with X-API-Key, the same data as a JSON object. One
// warm-up request per publisher opens the keep-alive connections (and
// stops the run if the server refuses it) before the measured window. The
// report gives requests answered 200 a second, their latency, failures, and
// the server's CPU per request.
//
// # Server figures
//
// -server-pid names the processes to charge (repeat it or give a comma
// list for a split deployment): CPU is utime+stime from /proc/PID/stat
// before and after each phase, memory VmRSS from /proc/PID/status, its peak
// sampled every 100 ms, and memory per connection is (RSS after connecting
// - RSS before) / connections opened. loadgen's own CPU is reported too:
// on one machine, it competes with the server.
//
// The text report goes to stdout; with -json, one JSON object goes to
// stdout and the text to stderr.
package main
