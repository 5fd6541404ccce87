// Webhooks of the presence service, delivered to a receiver of the test on
// the "presence" topology (the presence service as its own process): every
// batch signed with the app's secret, retried until the receiver accepts it
// under a stable X-Herald-Webhook-Id, and still delivered when the service is
// killed with SIGKILL while batches are pending and then started again. Also
// a sign-in signed with the wrong secret, refused with 4009.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Pusher from 'pusher-js';

import { connectPusher, endpointOptions, subscribe } from '../lib/clients.js';
import { startTopology } from '../lib/topology.js';
import { randomId, waitFor } from '../lib/wait.js';
import { WebhookEndpoint } from '../lib/webhooks.js';

// Batches of an app go out one at a time, each refused twice (1 s, then 2 s
// of backoff): six of them take about 18 s.
const PATIENCE = 30_000;

// Receiver is a webhook endpoint on loopback. It checks the key and the
// signature of every POST, and answers per mode: "flaky" refuses the first
// two attempts of each batch id with 500, "down" refuses all, "up" accepts.
class Receiver extends WebhookEndpoint {
  constructor(app) {
    super();
    this.app = app;
    this.mode = 'flaky';
    this.attempts = new Map(); // batch id -> attempts
    this.accepted = new Map(); // batch id -> events, from the first accepted attempt
    this.acceptedBodies = new Map(); // batch id -> raw bodies accepted
    this.bad = [];
  }

  handle(req, res, body) {
    const want = crypto.createHmac('sha256', this.app.secret).update(body).digest('hex');
    const key = req.headers['x-pusher-key'];
    const sig = req.headers['x-pusher-signature'];
    const id = req.headers['x-herald-webhook-id'];
    if (req.method !== 'POST' || key !== this.app.key || sig !== want || !id) {
      this.bad.push({ method: req.method, key, sig, id, body: body.toString() });
      res.writeHead(401).end();
      return;
    }
    const n = (this.attempts.get(id) ?? 0) + 1;
    this.attempts.set(id, n);
    const refuse = this.mode === 'down' || (this.mode === 'flaky' && n <= 2);
    if (refuse) {
      res.writeHead(500).end();
      return;
    }
    const batch = JSON.parse(body);
    assert.equal(typeof batch.time_ms, 'number');
    if (!this.accepted.has(id)) this.accepted.set(id, batch.events);
    this.acceptedBodies.set(id, [...(this.acceptedBodies.get(id) ?? []), body.toString()]);
    res.writeHead(200).end();
  }

  // events returns the accepted events of channels (deduplicated by batch id)
  // as "name channel [user_id]" strings, with the batch id of each.
  events(channels) {
    const out = [];
    for (const [id, events] of this.accepted) {
      for (const e of events) {
        if (!channels.includes(e.channel)) continue;
        out.push({ id, key: [e.name, e.channel, e.user_id].filter(Boolean).join(' ') });
      }
    }
    return out;
  }

  // expect waits until exactly want (as a multiset) has been accepted for
  // channels, each event once across distinct batch ids.
  async expect(channels, want) {
    const sorted = [...want].sort();
    let seen;
    await waitFor(
      () => {
        seen = this.events(channels).map((e) => e.key).sort();
        return seen.length >= sorted.length;
      },
      { timeout: PATIENCE, what: `webhooks ${JSON.stringify(sorted)}`, seen: () => ({ seen, bad: this.bad }) },
    );
    assert.deepEqual(seen, sorted, 'each event exactly once across batch ids');
    return this.events(channels);
  }
}

function presenceClient(topo, i, sdk, userId) {
  return connectPusher(topo, i, {
    sdk,
    options: {
      channelAuthorization: {
        customHandler: (params, callback) => {
          try {
            callback(null, sdk.authorizeChannel(params.socketId, params.channelName, { user_id: userId, user_info: {} }));
          } catch (err) {
            callback(err, null);
          }
        },
      },
    },
  });
}

describe('webhooks [presence]', () => {
  let topo;
  let sdk;
  let receiver;
  before(async () => {
    // The port is known before the topology starts: the apps file names it.
    receiver = new Receiver({});
    await receiver.start();
    topo = await startTopology('presence', {
      label: 'webhooks',
      appExtra: { webhooks: [{ url: receiver.url }] },
      env: {
        HERALD_WEBHOOK_RETRY_FOR: '60s',
        HERALD_WEBHOOK_TIMEOUT: '2s',
        HERALD_PRESENCE_LOCK_TTL: '2s',
        HERALD_PRESENCE_TIMEOUT: '10s',
      },
    });
    receiver.app = topo.app;
    sdk = topo.sdk();
  });
  after(async () => {
    await topo?.stop();
    await receiver?.stop();
  });

  it('delivers occupancy and member events signed, retried under one batch id, once each', async () => {
    receiver.mode = 'flaky';
    const pub = `wh-${randomId()}`;
    const pres = `presence-wh.${randomId()}`;
    const a = await presenceClient(topo, 0, sdk, 'u1');
    const b = await presenceClient(topo, 1, sdk, 'u2');
    await subscribe(a, pub);
    await subscribe(a, pres);
    await subscribe(b, pres);
    await receiver.expect([pub, pres], [
      `channel_occupied ${pub}`,
      `channel_occupied ${pres}`,
      `member_added ${pres} u1`,
      `member_added ${pres} u2`,
    ]);
    b.unsubscribe(pres);
    a.unsubscribe(pres);
    a.unsubscribe(pub);
    const got = await receiver.expect([pub, pres], [
      `channel_occupied ${pub}`,
      `channel_occupied ${pres}`,
      `member_added ${pres} u1`,
      `member_added ${pres} u2`,
      `member_removed ${pres} u2`,
      `member_removed ${pres} u1`,
      `channel_vacated ${pres}`,
      `channel_vacated ${pub}`,
    ]);
    for (const id of new Set(got.map((e) => e.id))) {
      assert.ok(receiver.attempts.get(id) >= 3, `batch ${id} attempted ${receiver.attempts.get(id)} times`);
    }
    assert.deepEqual(receiver.bad, [], 'requests with a bad key or signature');
  });

  it('delivers pending batches after the presence service is killed and restarted', async () => {
    receiver.mode = 'down';
    const pres = `presence-whkill.${randomId()}`;
    const c = await presenceClient(topo, 0, sdk, 'u3');
    const before = new Set(receiver.attempts.keys());
    await subscribe(c, pres);
    // Refused at least once: the batch is pending when the service dies.
    await waitFor(() => [...receiver.attempts.keys()].some((id) => !before.has(id)), {
      timeout: PATIENCE,
      what: 'a first refused attempt of the new batch',
    });
    topo.proc('presence').signal('SIGKILL');
    await topo.proc('presence').exited;
    await topo.restart('presence');
    receiver.mode = 'up';
    await receiver.expect([pres], [`channel_occupied ${pres}`, `member_added ${pres} u3`]);
    c.unsubscribe(pres);
    await receiver.expect([pres], [
      `channel_occupied ${pres}`,
      `member_added ${pres} u3`,
      `member_removed ${pres} u3`,
      `channel_vacated ${pres}`,
    ]);
    assert.deepEqual(receiver.bad, [], 'requests with a bad key or signature');
  });

  it('closes a connection whose sign-in is signed with the wrong secret with 4009', async () => {
    const wrong = topo.sdk({ secret: randomId(32) });
    const ep = topo.ws[1];
    const client = new Pusher(topo.app.key, {
      ...endpointOptions(ep),
      userAuthentication: {
        customHandler: (params, callback) => {
          try {
            callback(null, wrong.authenticateUser(params.socketId, { id: 'mallory' }));
          } catch (err) {
            callback(err, null);
          }
        },
      },
    });
    // Disconnected only while still open (the server closes it here).
    topo.onStop(() => {
      if (client.connection.state === 'connected') client.disconnect();
    });
    await waitFor(() => client.connection.state === 'connected', { what: 'pusher-js on gateway B to connect' });
    const closes = [];
    const socket = client.connection.connection.transport.socket;
    socket.addEventListener('close', (ev) => closes.push(ev.code));
    client.signin();
    await waitFor(() => closes.length > 0, {
      what: 'the connection to close',
      seen: () => client.connection.state,
    });
    assert.equal(closes[0], 4009);
    // pusher-js answers the refusal by closing its already closed socket,
    // which arms a 30 s timer that would hold the test process open.
    await waitFor(() => client.connection.state === 'disconnected', { what: 'pusher-js to stay disconnected' });
    clearTimeout(socket._closeTimer);
    assert.equal(client.user.serverToUserChannel?.subscribed ?? false, false);
  });
});
