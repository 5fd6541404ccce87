// Clients of a topology: pusher-js (as a browser app or Laravel Echo uses it),
// a raw WebSocket client that reads and writes frames by hand, and a TCP
// proxy that counts connections.

import Pusher from 'pusher-js';
import WebSocket from 'ws';

import { Recorder, describe, waitFor, withTimeout, DEFAULT_TIMEOUT } from './wait.js';

// authorizer is a pusher-js channelAuthorization customHandler that signs with
// the official server SDK, as a Laravel app's /broadcasting/auth does.
export function authorizer(sdk) {
  return (params, callback) => {
    try {
      callback(null, sdk.authorizeChannel(params.socketId, params.channelName));
    } catch (err) {
      callback(err, null);
    }
  };
}

// endpointOptions are the pusher-js options that reach endpoint ep of a
// topology over plain WebSocket only, as every client of the tests does.
export function endpointOptions(ep) {
  return {
    cluster: '',
    wsHost: ep.host,
    wsPort: ep.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    enableStats: false,
  };
}

// pusherClient returns a pusher-js client of endpoint ws[i] (not yet
// necessarily connected). It is disconnected when the topology stops.
export function pusherClient(topo, i = 0, { key = topo.app.key, sdk, options = {} } = {}) {
  const ep = topo.ws[i];
  const client = new Pusher(key, {
    ...endpointOptions(ep),
    channelAuthorization: { customHandler: authorizer(sdk ?? topo.sdk()) },
    ...options,
  });
  client.endpoint = ep;
  client.errors = new Recorder(`connection errors of client on ${ep.name}`);
  client.states = new Recorder(`states of client on ${ep.name}`);
  client.connection.bind('error', client.errors.push);
  client.connection.bind('state_change', (s) => client.states.push(s.current));
  topo.onStop(() => client.disconnect());
  return client;
}

export async function connected(client, timeout = DEFAULT_TIMEOUT) {
  await waitFor(() => client.connection.state === 'connected', {
    timeout,
    what: `pusher-js on ${client.endpoint?.name} to connect`,
    seen: () => ({ states: client.states.items, errors: client.errors.items }),
  });
  return client;
}

// connectPusher returns a connected pusher-js client.
export async function connectPusher(topo, i = 0, opts = {}) {
  return connected(pusherClient(topo, i, opts));
}

// subscribe resolves with the channel once subscription_succeeded arrives,
// and rejects with the data of pusher:subscription_error.
export function subscribe(client, name, timeout = DEFAULT_TIMEOUT) {
  const channel = client.subscribe(name);
  const p = new Promise((resolve, reject) => {
    if (channel.subscribed) return resolve(channel);
    channel.bind('pusher:subscription_succeeded', () => resolve(channel));
    channel.bind('pusher:subscription_error', (data) => {
      const err = new Error(`subscription to ${name} failed: ${describe(data)}`);
      err.data = data;
      reject(err);
    });
  });
  return withTimeout(p, timeout, `subscription_succeeded on ${name}`);
}

// subscribeTicks subscribes every client to channel, where a test streams
// tick events numbered n = 0, 1, …, and records on each client what it
// receives there: the n of every tick in got, the data of herald:resumed in
// resumed and of herald:resume_failed in failed.
export function subscribeTicks(clients, channel, timeout = DEFAULT_TIMEOUT) {
  return Promise.all(
    clients.map(async (c) => {
      c.got = [];
      c.resumed = [];
      c.failed = [];
      const ch = await subscribe(c, channel, timeout);
      ch.bind('tick', (d) => c.got.push(d.n));
      ch.bind('herald:resumed', (d) => c.resumed.push(d));
      ch.bind('herald:resume_failed', (d) => c.failed.push(d));
    }),
  );
}

// record binds event on channel and records its data in order.
export function record(channel, event) {
  const r = new Recorder(`${event} on ${channel.name}`);
  channel.bind(event, (data) => r.push(data));
  return r;
}

// RawClient is a WebSocket client that speaks frames by hand.
export class RawClient {
  constructor(url, label = url) {
    this.url = url;
    this.label = label;
    this.frames = new Recorder(`frames on ${label}`);
    this.texts = [];
    this.ws = new WebSocket(url);
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.closeInfo = null;
    this.closed.then((c) => (this.closeInfo = c));
    this.ws.on('error', () => {});
    this.ws.on('message', (buf) => {
      const text = buf.toString();
      this.texts.push(text);
      let frame;
      try {
        frame = JSON.parse(text);
      } catch {
        frame = { unparsable: text };
      }
      this.frames.push(frame);
    });
  }

  // established waits for connection_established and returns the socket_id.
  async established() {
    const f = await waitFor(() => this.frames.items.find((x) => x.event === 'pusher:connection_established'), {
      what: `connection_established on ${this.label}`,
      seen: () => ({ frames: this.frames.items, closed: this.closeInfo }),
    });
    const data = typeof f.data === 'string' ? JSON.parse(f.data) : f.data;
    this.socketId = data.socket_id;
    this.establishedData = data;
    return data.socket_id;
  }

  send(frame) {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  // nextAfter waits for a frame matching pred among those that arrive after
  // index from (a position in this.frames.items).
  async nextAfter(from, pred, opts = {}) {
    return waitFor(() => this.frames.items.slice(from).find(pred), {
      what: `a matching frame on ${this.label}`,
      seen: () => this.frames.items.slice(from),
      ...opts,
    });
  }

  // request sends frame and waits for the first later frame matching pred.
  async request(frame, pred, opts) {
    const from = this.frames.count;
    this.send(frame);
    return this.nextAfter(from, pred, opts);
  }

  async subscribe(channel, extra = {}) {
    const f = await this.request(
      { event: 'pusher:subscribe', data: { channel, ...extra } },
      (x) =>
        x.channel === channel &&
        (x.event === 'pusher_internal:subscription_succeeded' || x.event === 'pusher:subscription_error'),
    );
    if (f.event !== 'pusher_internal:subscription_succeeded') {
      throw new Error(`raw subscribe to ${channel} failed: ${describe(f)}`);
    }
    return f;
  }

  async close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.terminate();
    }
    await this.closed;
  }
}

// rawClient opens a RawClient to ws[i] and closes it when the topology stops.
export function rawClient(topo, i = 0, { key, query } = {}) {
  const c = new RawClient(topo.wsURL(i, key ?? topo.app.key, query), `raw client on ${topo.ws[i].name}`);
  topo.onStop(() => c.close());
  return c;
}

export async function connectRaw(topo, i = 0, opts = {}) {
  const c = rawClient(topo, i, opts);
  await c.established();
  return c;
}
