// Private and private-encrypted channels, authorized with the pusher SDK's
// authorizeChannel inside pusher-js's channelAuthorization customHandler,
// and socket_id exclusion.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { connectPusher, connectRaw, record, subscribe } from '../lib/clients.js';
import { useTopology } from '../lib/suite.js';
import { TOPOLOGIES } from '../lib/topology.js';
import { randomId } from '../lib/wait.js';

// A 32-byte master key, base64: the SDK derives each channel's key from it.
const MASTER_KEY = Buffer.from('herald-e2e-master-key-32-bytes!!').toString('base64');

for (const kind of TOPOLOGIES) {
  describe(`private channels [${kind}]`, () => {
    const ctx = useTopology(kind, { label: 'private', sdk: { encryptionMasterKeyBase64: MASTER_KEY } });

    it('subscribes with a signed auth and receives events', async () => {
      const client = await connectPusher(ctx.topo, 0, { sdk: ctx.sdk });
      const name = `private-orders.${randomId()}`;
      const ch = await subscribe(client, name);
      const got = record(ch, 'status');
      await ctx.sdk.trigger(name, 'status', { state: 'paid' });
      assert.deepEqual(await got.waitCount(1), [{ state: 'paid' }]);
    });

    it('refuses a subscription signed with the wrong secret: pusher:subscription_error', async () => {
      const wrong = ctx.topo.sdk({ secret: 'not-the-secret-of-this-app-000000' });
      const client = await connectPusher(ctx.topo, 1, { sdk: wrong });
      const name = `private-denied-${randomId()}`;
      const err = await subscribe(client, name).then(
        () => assert.fail('subscription succeeded with a bad signature'),
        (e) => e,
      );
      assert.ok(err.data, `no subscription_error data: ${err.message}`);
      assert.equal(err.data.type, 'AuthError', JSON.stringify(err.data));
      assert.equal(err.data.status, 401, JSON.stringify(err.data));
      assert.equal(typeof err.data.error, 'string');
      // The socket stays open and usable: a public channel still works.
      assert.equal(client.connection.state, 'connected');
      const pub = `after-denied-${randomId()}`;
      const got = record(await subscribe(client, pub), 'ok');
      await ctx.sdk.trigger(pub, 'ok', { fine: true });
      await got.waitCount(1);
      // And the refused channel gets nothing.
      const leaked = record(client.channel(name), 'status');
      await ctx.sdk.trigger(name, 'status', { leaked: true });
      await ctx.sdk.trigger(pub, 'ok', { fine: 2 });
      await got.waitCount(2);
      assert.deepEqual(leaked.items, []);
    });

    it('refuses a private subscription without auth, on a raw socket', async () => {
      const raw = await connectRaw(ctx.topo, 0);
      const name = `private-noauth-${randomId()}`;
      const f = await raw.request(
        { event: 'pusher:subscribe', data: { channel: name } },
        (x) => x.channel === name && x.event.startsWith('pusher'),
      );
      assert.equal(f.event, 'pusher:subscription_error', JSON.stringify(f));
      const data = typeof f.data === 'string' ? JSON.parse(f.data) : f.data;
      assert.equal(data.type, 'AuthError');
      assert.equal(data.status, 401);
    });

    it('relays private-encrypted events that pusher-js decrypts', async () => {
      const client = await connectPusher(ctx.topo, 0, { sdk: ctx.sdk });
      const name = `private-encrypted-chat.${randomId()}`;
      const ch = await subscribe(client, name);
      const got = record(ch, 'message');
      await ctx.sdk.trigger(name, 'message', { text: 'secret hello', n: 1 });
      await ctx.sdk.triggerBatch([{ channel: name, name: 'message', data: { text: 'batched', n: 2 } }]);
      assert.deepEqual(await got.waitCount(2), [
        { text: 'secret hello', n: 1 },
        { text: 'batched', n: 2 },
      ]);
    });

    it('relays private-encrypted data opaquely: the wire holds only nonce and ciphertext', async () => {
      const raw = await connectRaw(ctx.topo, 1);
      const name = `private-encrypted-raw.${randomId()}`;
      const { auth } = ctx.sdk.authorizeChannel(raw.socketId, name);
      await raw.subscribe(name, { auth });
      await ctx.sdk.trigger(name, 'message', { text: 'never in clear' });
      const f = await raw.frames.waitMatch((x) => x.channel === name && x.event === 'message');
      assert.equal(typeof f.data, 'string', 'data is a JSON string');
      const payload = JSON.parse(f.data);
      assert.deepEqual(Object.keys(payload).sort(), ['ciphertext', 'nonce']);
      assert.ok(!f.data.includes('never in clear'));
    });

    it('refuses client events on private-encrypted channels', async () => {
      const a = await connectRaw(ctx.topo, 0);
      const b = await connectRaw(ctx.topo, 1);
      const name = `private-encrypted-whisper.${randomId()}`;
      await a.subscribe(name, { auth: ctx.sdk.authorizeChannel(a.socketId, name).auth });
      await b.subscribe(name, { auth: ctx.sdk.authorizeChannel(b.socketId, name).auth });
      const err = await a.request(
        { event: 'client-typing', channel: name, data: { who: 'a' } },
        (x) => x.event === 'pusher:error',
      );
      assert.equal(typeof err.data, 'object', `pusher:error data is an object: ${JSON.stringify(err)}`);
      assert.equal(typeof err.data.message, 'string');
      // b got nothing: a server event sent after it arrives alone.
      await ctx.sdk.trigger(name, 'message', { n: 1 });
      await b.frames.waitMatch((x) => x.channel === name && x.event === 'message');
      assert.equal(b.frames.items.filter((x) => x.event === 'client-typing').length, 0);
    });

    it('leaves out the socket named in socket_id (toOthers), across gateways', async () => {
      // In split mode the sender is on gateway A and the receiver on B.
      const sender = await connectPusher(ctx.topo, 0, { sdk: ctx.sdk });
      const receiver = await connectPusher(ctx.topo, 1, { sdk: ctx.sdk });
      const name = `private-room.${randomId()}`;
      const mine = record(await subscribe(sender, name), 'said');
      const theirs = record(await subscribe(receiver, name), 'said');
      await ctx.sdk.trigger(name, 'said', { n: 1 }, { socket_id: sender.connection.socket_id });
      await ctx.sdk.trigger(name, 'said', { n: 2 });
      assert.deepEqual(await theirs.waitCount(2), [{ n: 1 }, { n: 2 }]);
      // n=2 came after n=1 on the same channel: the sender saw it alone.
      assert.deepEqual(await mine.waitCount(1), [{ n: 2 }]);
      await ctx.sdk.trigger(name, 'said', { n: 3 });
      await mine.waitCount(2);
      assert.deepEqual(mine.items, [{ n: 2 }, { n: 3 }]);
    });

    it('leaves out the socket_id in a triggerBatch too', async () => {
      const sender = await connectPusher(ctx.topo, 1, { sdk: ctx.sdk });
      const receiver = await connectPusher(ctx.topo, 0, { sdk: ctx.sdk });
      const name = `batch-excl-${randomId()}`;
      const mine = record(await subscribe(sender, name), 'e');
      const theirs = record(await subscribe(receiver, name), 'e');
      await ctx.sdk.triggerBatch([
        { channel: name, name: 'e', data: { n: 1 }, socket_id: sender.connection.socket_id },
        { channel: name, name: 'e', data: { n: 2 } },
      ]);
      assert.deepEqual(await theirs.waitCount(2), [{ n: 1 }, { n: 2 }]);
      assert.deepEqual(await mine.waitCount(1), [{ n: 2 }]);
    });
  });
}
