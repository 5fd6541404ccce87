// What clients see when something is wrong: refused requests on the HTTP
// API, refused connections, malformed frames.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { connectPusher, connectRaw, pusherClient, rawClient, record, subscribe } from '../lib/clients.js';
import { RouteProxy } from '../lib/proxy.js';
import { useTopology } from '../lib/suite.js';
import { TOPOLOGIES } from '../lib/topology.js';
import { DEFAULT_TIMEOUT, randomId, waitFor, withTimeout } from '../lib/wait.js';

// jsonError checks a refused SDK request: the status and a JSON body
// {"error": "..."}.
function assertJSONError(err, status) {
  assert.equal(err?.name, 'PusherRequestError', `expected a refused request, got ${err}`);
  assert.equal(err.status, status, `status; body: ${err.body}`);
  let body;
  try {
    body = JSON.parse(err.body);
  } catch {
    assert.fail(`body is not JSON: ${JSON.stringify(err.body)}`);
  }
  assert.equal(typeof body.error, 'string', `body has no "error" string: ${err.body}`);
  assert.ok(body.error.length > 0);
}

async function refused(promise) {
  try {
    const res = await promise;
    return assert.fail(`request succeeded with ${res.status}`);
  } catch (err) {
    if (err.name === 'AssertionError') throw err;
    return err;
  }
}

function pusherError(frame) {
  return frame.event === 'pusher:error';
}

for (const kind of TOPOLOGIES) {
  describe(`errors [${kind}]`, () => {
    const ctx = useTopology(kind, { label: 'errors' });

    describe('HTTP API', () => {
      it('answers a bad signature with 401 and a JSON error', async () => {
        const bad = ctx.topo.sdk({ secret: 'a-different-secret-0123456789abcd' });
        const err = await refused(bad.trigger('orders', 'e', { a: 1 }));
        assertJSONError(err, 401);
        // The same refusal for a GET, with a JSON content type.
        const err2 = await refused(bad.get({ path: '/channels' }));
        assertJSONError(err2, 401);
        const res = await fetch(err2.url);
        assert.equal(res.status, 401);
        assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      });

      it('answers a tampered body with 401 (body_md5)', async () => {
        // Sign one body and send another.
        const signed = JSON.stringify({ name: 'e', channels: ['orders'], data: '{"a":1}' });
        const { createHash, createHmac } = await import('node:crypto');
        const path = `/apps/${ctx.topo.app.id}/events`;
        const q = new URLSearchParams({
          auth_key: ctx.topo.app.key,
          auth_timestamp: String(Math.floor(Date.now() / 1000)),
          auth_version: '1.0',
          body_md5: createHash('md5').update(signed).digest('hex'),
        });
        const toSign = ['POST', path, [...q.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join('&')].join('\n');
        q.set('auth_signature', createHmac('sha256', ctx.topo.app.secret).update(toSign).digest('hex'));
        const good = await fetch(ctx.topo.httpURL(`${path}?${q}`), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: signed,
        });
        assert.equal(good.status, 200, `the correctly signed request: ${await good.text()}`);
        const tampered = await fetch(ctx.topo.httpURL(`${path}?${q}`), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: signed.replace('{\\"a\\":1}', '{\\"a\\":2}'),
        });
        assert.equal(tampered.status, 401);
        const body = await tampered.json();
        assert.equal(typeof body.error, 'string');
      });

      it('answers data over the limit with 413 and a JSON error', async () => {
        const err = await refused(ctx.sdk.trigger('big', 'e', 'x'.repeat(11 * 1024)));
        assertJSONError(err, 413);
        // Just under the default 10 KB is fine.
        const res = await ctx.sdk.trigger('big', 'e', 'x'.repeat(10 * 1024 - 64));
        assert.equal(res.status, 200);
      });

      it('answers an oversized event in a batch with 413', async () => {
        const err = await refused(
          ctx.sdk.triggerBatch([
            { channel: 'a', name: 'e', data: 'small' },
            { channel: 'b', name: 'e', data: 'y'.repeat(11 * 1024) },
          ]),
        );
        assertJSONError(err, 413);
      });

      it('answers an unknown app id with 404 and a JSON error', async () => {
        const other = ctx.topo.sdk({ appId: `nope-${randomId()}` });
        const err = await refused(other.trigger('orders', 'e', {}));
        assertJSONError(err, 404);
      });

      it('answers a disabled app with 403 and a JSON error', async () => {
        const off = ctx.topo.sdk({ appId: ctx.topo.disabledApp.id, key: ctx.topo.disabledApp.key, secret: ctx.topo.disabledApp.secret });
        const err = await refused(off.trigger('orders', 'e', {}));
        assertJSONError(err, 403);
      });

      it('answers a bad body with 400 and a JSON error', async () => {
        const err = await refused(ctx.sdk.post({ path: '/events', body: { name: 'e', data: '{}' } }));
        assertJSONError(err, 400);
      });

      it('answers /up with 200', async () => {
        const res = await fetch(ctx.topo.httpURL('/up'));
        assert.equal(res.status, 200);
      });
    });

    describe('WebSocket', () => {
      it('refuses an unknown app key with 4001, and pusher-js does not reconnect', async () => {
        const proxy = await new RouteProxy(ctx.topo.ws[0]).listen();
        ctx.topo.onStop(() => proxy.close());
        const client = pusherClient(ctx.topo, 0, {
          key: `unknown${randomId(12)}`,
          options: { wsHost: proxy.host, wsPort: proxy.port },
        });
        await waitFor(() => client.connection.state === 'disconnected', {
          what: 'pusher-js to give up on the unknown key',
          seen: () => ({ states: client.states.items, errors: client.errors.items }),
        });
        const codes = client.errors.items.map((e) => e?.error?.data?.code ?? e?.data?.code);
        assert.ok(codes.includes(4001), `error codes seen by pusher-js: ${JSON.stringify(client.errors.items)}`);
        // pusher-js would retry after at most 1 s (backoff) or at once
        // (retry); give it well over that to show it does not.
        await new Promise((r) => setTimeout(r, 2000));
        assert.equal(proxy.connections, 1, 'pusher-js connected again after 4001');
        assert.equal(client.connection.state, 'disconnected');
      });

      it('sends pusher:error 4001 then closes with 4001 for an unknown key (raw)', async () => {
        const raw = rawClient(ctx.topo, 1, { key: `unknown${randomId(12)}` });
        const f = await raw.frames.waitMatch(pusherError);
        assert.equal(typeof f.data, 'object', `pusher:error data is an object: ${raw.texts[0]}`);
        assert.equal(f.data.code, 4001);
        assert.equal(typeof f.data.message, 'string');
        const { code } = await withTimeout(raw.closed, DEFAULT_TIMEOUT, 'the close after 4001');
        assert.equal(code, 4001);
      });

      it('refuses a disabled app with 4003', async () => {
        const raw = rawClient(ctx.topo, 0, { key: ctx.topo.disabledApp.key });
        const f = await raw.frames.waitMatch(pusherError);
        assert.equal(f.data.code, 4003, JSON.stringify(f));
        assert.equal((await withTimeout(raw.closed, DEFAULT_TIMEOUT, 'the close after 4003')).code, 4003);
      });

      for (const [name, query, want] of [
        ['missing protocol', 'client=js&version=8.6.0', 4008],
        ['protocol 6', 'protocol=6&client=js&version=8.6.0', 4007],
      ]) {
        it(`refuses a connection with ${name} (${want})`, async () => {
          const raw = rawClient(ctx.topo, 1, { query });
          const f = await raw.frames.waitMatch(pusherError);
          assert.equal(f.data.code, want, JSON.stringify(f));
          assert.equal((await withTimeout(raw.closed, DEFAULT_TIMEOUT, `the close after ${want}`)).code, want);
        });
      }

      it('sends connection_established first, with a socket_id and activity_timeout', async () => {
        const raw = await connectRaw(ctx.topo, 0);
        assert.equal(raw.frames.items[0].event, 'pusher:connection_established');
        assert.equal(typeof raw.frames.items[0].data, 'string', 'data is a JSON string');
        assert.match(raw.socketId, /^\d+\.\d+$/);
        assert.ok(Number.isInteger(raw.establishedData.activity_timeout) && raw.establishedData.activity_timeout > 0);
        const pong = await raw.request({ event: 'pusher:ping', data: {} }, (x) => x.event === 'pusher:pong');
        assert.deepEqual(pong, { event: 'pusher:pong', data: '{}' });
      });

      it('gives distinct socket_ids on every gateway', async () => {
        const ids = new Set();
        for (const i of [0, 1, 0, 1]) ids.add((await connectRaw(ctx.topo, i)).socketId);
        assert.equal(ids.size, 4, [...ids].join(' '));
      });

      it('answers malformed frames with pusher:error and keeps serving (raw and pusher-js)', async () => {
        const raw = await connectRaw(ctx.topo, 0);
        const listener = await connectPusher(ctx.topo, 0);
        const other = await connectPusher(ctx.topo, 1);
        const name = `steady-${randomId()}`;
        const got = record(await subscribe(listener, name), 'tick');
        const gotOther = record(await subscribe(other, name), 'tick');
        await raw.subscribe(name);

        const garbage = [
          ['not JSON', 'this is not json'],
          ['a JSON array', '[1,2,3]'],
          ['no event', '{"data":{}}'],
          ['event not a string', '{"event":42,"data":{}}'],
          ['channel not a string', '{"event":"pusher:subscribe","channel":7,"data":{"channel":"x"}}'],
          ['unknown pusher event', '{"event":"pusher:does_not_exist","data":{}}'],
          ['subscribe without data', '{"event":"pusher:subscribe"}'],
          ['truncated', '{"event":"pusher:subscribe","data":{"chan'],
        ];
        for (const [what, text] of garbage) {
          const f = await raw.request(text, pusherError, { what: `pusher:error for ${what}` });
          assert.equal(typeof f.data, 'object', `${what}: data is an object: ${JSON.stringify(f)}`);
          assert.ok(
            Number.isInteger(f.data.code) && f.data.code >= 4000 && f.data.code < 5000,
            `${what}: a 4xxx code: ${JSON.stringify(f)}`,
          );
          assert.equal(typeof f.data.message, 'string', `${what}: a message`);
        }
        // The raw socket is still usable.
        const pong = await raw.request({ event: 'pusher:ping', data: {} }, (x) => x.event === 'pusher:pong');
        assert.equal(pong.event, 'pusher:pong');
        assert.equal(raw.closeInfo, null, 'the raw socket was closed');

        await ctx.sdk.trigger(name, 'tick', { n: 1 });
        assert.deepEqual(await got.waitCount(1), [{ n: 1 }]);
        assert.deepEqual(await gotOther.waitCount(1), [{ n: 1 }]);
        await raw.frames.waitMatch((x) => x.event === 'tick' && x.channel === name);
        assert.equal(listener.connection.state, 'connected');
      });

      it('refuses an invalid channel name with subscription_error, socket stays open', async () => {
        const raw = await connectRaw(ctx.topo, 1);
        const bad = 'bad channel!';
        const f = await raw.request(
          { event: 'pusher:subscribe', data: { channel: bad } },
          (x) => x.event === 'pusher:subscription_error' || pusherError(x),
        );
        assert.equal(f.event, 'pusher:subscription_error', JSON.stringify(f));
        assert.equal(f.channel, bad);
        const data = typeof f.data === 'string' ? JSON.parse(f.data) : f.data;
        assert.equal(data.type, 'InvalidChannel', JSON.stringify(f));
        assert.equal(data.status, 400, JSON.stringify(f));
        const pong = await raw.request({ event: 'pusher:ping', data: {} }, (x) => x.event === 'pusher:pong');
        assert.equal(pong.event, 'pusher:pong');
      });

      it('refuses client events on public channels and does not deliver them', async () => {
        const a = await connectRaw(ctx.topo, 0);
        const b = await connectRaw(ctx.topo, 1);
        const name = `public-chat-${randomId()}`;
        await a.subscribe(name);
        await b.subscribe(name);
        const err = await a.request({ event: 'client-hi', channel: name, data: { x: 1 } }, pusherError);
        assert.equal(typeof err.data.message, 'string');
        await ctx.sdk.trigger(name, 'after', {});
        await b.frames.waitMatch((x) => x.event === 'after');
        assert.equal(b.frames.items.filter((x) => x.event === 'client-hi').length, 0);
      });
    });
  });
}
