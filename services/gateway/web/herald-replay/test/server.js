// A small server speaking the Pusher protocol 7 and Herald's replay extension (docs/protocol.md), enough
// for real pusher-js and laravel-echo clients: connection_established, ping/pong, subscribe and
// unsubscribe, channel events with exclusion, positions, resume with socket_ids, herald:resumed
// and herald:resume_failed. Positions look like "e1-7": epoch e1, the 7th event of the channel.
import { WebSocketServer } from 'ws';

export const APP_KEY = 'app-key';
const EPOCH = 'e1';

/**
 * @param {object} [options]
 * @param {boolean} [options.extension] whether the server honours the replay extension; when false
 *   it ignores the extra subscribe fields, as Pusher or Reverb would.
 */
export async function startServer({ extension = true } = {}) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => wss.once('listening', resolve));

  let nextSocket = 1;
  /** @type {Map<string, Conn>} */
  const conns = new Map();
  /** @type {Map<string, Array<{seq: number, name: string, data: string, except?: string}>>} */
  const history = new Map();

  const server = {
    port: wss.address().port,
    extension,
    /** every pusher:subscribe received, in order: {socketId, raw, data} */
    subscribes: [],
    /** every frame received, raw, in order: {socketId, raw} */
    received: [],
    /** the reason of the next resume to fail, if set; cleared when used */
    failNextResume: undefined,
    /** send herald:resume_failed before subscription_succeeded on a failed resume */
    resumeFailedFirst: false,
    conns,

    /** The channel's current position. */
    position(channel) {
      const events = history.get(channel) || [];
      return `${EPOCH}-${events.length}`;
    },

    /**
     * Triggers an event as the HTTP API would: stored, then sent to every subscriber but the
     * excluded socket. Returns its position.
     */
    trigger(channel, name, payload, { except } = {}) {
      const events = history.get(channel) || [];
      history.set(channel, events);
      const event = { seq: events.length + 1, name, data: JSON.stringify(payload), except };
      events.push(event);
      for (const conn of conns.values()) {
        const sub = conn.subs.get(channel);
        if (sub && conn.id !== except) {
          conn.send(eventFrame(channel, event, sub.positions));
        }
      }
      return `${EPOCH}-${event.seq}`;
    },

    /** Closes every connection as a draining server does: pusher:error 4200, then close 4200. */
    dropAll() {
      for (const conn of conns.values()) {
        conn.send({ event: 'pusher:error', data: { code: 4200, message: 'reconnect' } });
        conn.ws.close(4200, 'reconnect');
      }
      // From here on the old sockets get nothing, so events triggered now are missed live.
      conns.clear();
    },

    async close() {
      for (const client of wss.clients) {
        client.terminate();
      }
      await new Promise((resolve) => wss.close(resolve));
    },
  };

  wss.on('connection', (ws, req) => {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname !== `/app/${APP_KEY}`) {
      ws.send(JSON.stringify({ event: 'pusher:error', data: { code: 4001, message: 'unknown key' } }));
      ws.close(4001);
      return;
    }
    /**
     * @typedef {object} Conn
     * @property {string} id the socket id
     * @property {import('ws').WebSocket} ws
     * @property {Map<string, {positions: boolean}>} subs subscribed channels, and whether they opted in
     * @property {(frame: object) => void} send
     */
    /** @type {Conn} */
    const conn = {
      id: `${nextSocket++}.${Math.floor(Math.random() * 1e6)}`,
      ws,
      subs: new Map(),
      send: (frame) => {
        if (ws.readyState === ws.OPEN) {
          ws.send(JSON.stringify(frame));
        }
      },
    };
    conns.set(conn.id, conn);
    ws.on('close', () => {
      if (conns.get(conn.id) === conn) {
        conns.delete(conn.id);
      }
    });
    conn.send({
      event: 'pusher:connection_established',
      data: JSON.stringify({ socket_id: conn.id, activity_timeout: 120 }),
    });
    ws.on('message', (buf) => {
      const raw = buf.toString();
      server.received.push({ socketId: conn.id, raw });
      const frame = JSON.parse(raw);
      switch (frame.event) {
        case 'pusher:ping':
          conn.send({ event: 'pusher:pong', data: '{}' });
          return;
        case 'pusher:subscribe':
          server.subscribes.push({ socketId: conn.id, raw, data: frame.data });
          subscribe(conn, frame.data);
          return;
        case 'pusher:unsubscribe':
          conn.subs.delete(frame.data.channel);
          return;
      }
    });
  });

  function subscribe(conn, data) {
    const channel = data.channel;
    const optIn =
      server.extension && (data.positions === true || typeof data.resume === 'string' || data.rewind !== undefined);
    conn.subs.set(channel, { positions: optIn });
    const succeeded = (extra) => {
      let body = {};
      if (channel.startsWith('presence-')) {
        const member = JSON.parse(data.channel_data);
        body = { presence: { ids: [member.user_id], hash: { [member.user_id]: member.user_info }, count: 1 } };
      }
      conn.send({
        event: 'pusher_internal:subscription_succeeded',
        channel,
        data: JSON.stringify(Object.assign(body, extra)),
      });
    };
    if (!optIn) {
      succeeded({});
      return;
    }
    const current = server.position(channel);
    if (typeof data.resume !== 'string') {
      succeeded({ position: current });
      return;
    }
    const events = history.get(channel) || [];
    const from = parsePosition(data.resume);
    let reason = server.failNextResume;
    server.failNextResume = undefined;
    if (!reason && from === undefined) {
      reason = 'invalid_position';
    } else if (!reason && from > events.length) {
      reason = 'invalid_position';
    }
    if (reason) {
      const failed = { event: 'herald:resume_failed', channel, data: JSON.stringify({ reason }) };
      if (server.resumeFailedFirst) {
        conn.send(failed);
        succeeded({ position: current });
      } else {
        succeeded({ position: current });
        conn.send(failed);
      }
      return;
    }
    succeeded({ position: data.resume });
    const excluded = new Set([conn.id, ...(Array.isArray(data.socket_ids) ? data.socket_ids : [])]);
    let last = data.resume;
    let replayed = 0;
    for (const event of events.slice(from)) {
      if (event.except && excluded.has(event.except)) {
        continue;
      }
      conn.send(eventFrame(channel, event, true));
      last = `${EPOCH}-${event.seq}`;
      replayed++;
    }
    conn.send({ event: 'herald:resumed', channel, data: JSON.stringify({ replayed, position: last }) });
  }

  return server;
}

function eventFrame(channel, event, withPosition) {
  const frame = { event: event.name, channel, data: event.data };
  if (withPosition) {
    frame.position = `${EPOCH}-${event.seq}`;
  }
  return frame;
}

function parsePosition(position) {
  const match = /^e1-(\d+)$/.exec(position);
  return match ? Number(match[1]) : undefined;
}

/** Polls until check() returns a truthy value, and returns it; fails after a while. */
export async function until(check, what = 'condition') {
  const deadline = Date.now() + 5000;
  for (;;) {
    const value = check();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
