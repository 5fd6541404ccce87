// Laravel Echo 2 with a pusher-js client, as a Laravel front end uses it:
// listen on public and private channels, whisper between two users on
// different gateways.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Echo from 'laravel-echo';

import { connected, pusherClient } from '../lib/clients.js';
import { useTopology } from '../lib/suite.js';
import { TOPOLOGIES } from '../lib/topology.js';
import { Recorder, randomId, waitFor } from '../lib/wait.js';

for (const kind of TOPOLOGIES) {
  describe(`laravel-echo [${kind}]`, () => {
    const ctx = useTopology(kind, { label: 'echo' });

    for (const broadcaster of ['reverb', 'pusher']) {
      describe(`broadcaster ${broadcaster}`, () => {
        async function echoOn(i) {
          const client = pusherClient(ctx.topo, i, { sdk: ctx.sdk });
          const echo = new Echo({
            broadcaster,
            key: ctx.topo.app.key,
            wsHost: ctx.topo.ws[i].host,
            wsPort: ctx.topo.ws[i].port,
            forceTLS: false,
            enabledTransports: ['ws'],
            client,
          });
          await connected(client);
          assert.equal(echo.connectionStatus(), 'connected');
          assert.match(echo.socketId(), /^\d+\.\d+$/);
          return echo;
        }

        // subscribed resolves when Echo's channel is subscribed.
        function subscribed(channel) {
          return new Promise((resolve, reject) => {
            channel.subscribed(resolve);
            channel.error(reject);
          });
        }

        it('.channel().listen() receives a namespaced Laravel event', async () => {
          const echo = await echoOn(0);
          const name = `orders-${randomId()}`;
          const got = new Recorder(`OrderShipped on ${name}`);
          const ch = echo.channel(name).listen('OrderShipped', got.push);
          await subscribed(ch);
          // Laravel broadcasts the class name as the event name.
          await ctx.sdk.trigger(name, 'App\\Events\\OrderShipped', { order: { id: 7 } });
          assert.deepEqual(await got.waitCount(1), [{ order: { id: 7 } }]);
        });

        it('.channel().listen() with a leading dot takes the raw name', async () => {
          const echo = await echoOn(1);
          const name = `raw-${randomId()}`;
          const got = new Recorder(`.status.updated on ${name}`);
          const ch = echo.channel(name).listen('.status.updated', got.push);
          await subscribed(ch);
          await ctx.sdk.trigger(name, 'status.updated', { ok: true });
          assert.deepEqual(await got.waitCount(1), [{ ok: true }]);
        });

        it('.private().listen() authorizes and receives', async () => {
          const echo = await echoOn(0);
          const name = `orders.${randomId()}`;
          const got = new Recorder(`private ${name}`);
          const ch = echo.private(name).listen('.paid', got.push);
          await subscribed(ch);
          await ctx.sdk.trigger(`private-${name}`, 'paid', { amount: 12 });
          assert.deepEqual(await got.waitCount(1), [{ amount: 12 }]);
        });

        it('.whisper() reaches listenForWhisper on the other gateway, not the sender', async () => {
          const alice = await echoOn(0);
          const bob = await echoOn(1);
          const name = `chat.${randomId()}`;
          const aliceHeard = new Recorder('whispers heard by alice');
          const bobHeard = new Recorder('whispers heard by bob');
          const a = alice.private(name).listenForWhisper('typing', aliceHeard.push);
          const b = bob.private(name).listenForWhisper('typing', bobHeard.push);
          await Promise.all([subscribed(a), subscribed(b)]);

          a.whisper('typing', { user: 'alice', n: 1 });
          await bobHeard.waitCount(1);
          assert.deepEqual(bobHeard.items, [{ user: 'alice', n: 1 }]);

          // Bob answers only after hearing alice, so alice hears bob after any
          // echo of her own whisper would have reached her.
          b.whisper('typing', { user: 'bob', n: 2 });
          await aliceHeard.waitCount(1);
          assert.deepEqual(aliceHeard.items, [{ user: 'bob', n: 2 }], 'alice must not hear her own whisper');
          // A server event after both whispers: bob heard nothing of his own.
          const synced = new Recorder('sync');
          b.listen('.sync', synced.push);
          await ctx.sdk.trigger(`private-${name}`, 'sync', { n: 3 });
          await synced.waitCount(1);
          assert.deepEqual(bobHeard.items, [{ user: 'alice', n: 1 }], 'bob must not hear his own whisper');
        });

        it('socketId() with toOthers leaves the sender out', async () => {
          const me = await echoOn(0);
          const other = await echoOn(1);
          const name = `feed-${randomId()}`;
          const mine = new Recorder('mine');
          const theirs = new Recorder('theirs');
          const m = me.channel(name).listen('.posted', mine.push);
          const t = other.channel(name).listen('.posted', theirs.push);
          await Promise.all([subscribed(m), subscribed(t)]);
          // What Laravel does with the X-Socket-Id header of a toOthers() broadcast.
          await ctx.sdk.trigger(name, 'posted', { n: 1 }, { socket_id: me.socketId() });
          await ctx.sdk.trigger(name, 'posted', { n: 2 });
          await theirs.waitCount(2);
          await waitFor(() => mine.count >= 1, { what: 'the second post on the sender' });
          assert.deepEqual(mine.items, [{ n: 2 }]);
        });
      });
    }
  });
}
