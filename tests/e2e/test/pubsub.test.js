// Public channels: events triggered with the official pusher SDK reach
// pusher-js subscribers, as from a Laravel app to a browser.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { connectPusher, connectRaw, record, subscribe } from '../lib/clients.js';
import { useTopology } from '../lib/suite.js';
import { TOPOLOGIES } from '../lib/topology.js';
import { randomId } from '../lib/wait.js';

for (const kind of TOPOLOGIES) {
  describe(`public channels [${kind}]`, () => {
    const ctx = useTopology(kind, { label: 'pubsub' });

    it('delivers an event triggered on one channel', async () => {
      const client = await connectPusher(ctx.topo, 0);
      const name = `orders-${randomId()}`;
      const ch = await subscribe(client, name);
      const got = record(ch, 'order.shipped');
      const res = await ctx.sdk.trigger(name, 'order.shipped', { id: 42, total: '9.99', tags: ['a', 'b'] });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), {});
      const [data] = await got.waitCount(1);
      assert.deepEqual(data, { id: 42, total: '9.99', tags: ['a', 'b'] });
    });

    it('delivers string data as the string it is', async () => {
      const client = await connectPusher(ctx.topo, 1);
      const name = `text-${randomId()}`;
      const ch = await subscribe(client, name);
      const got = record(ch, 'note');
      const text = 'plain text with "quotes", <tags> & ünïcödé';
      await ctx.sdk.trigger(name, 'note', text);
      const [data] = await got.waitCount(1);
      assert.equal(data, text);
    });

    it('delivers one trigger to several channels, once on each', async () => {
      const client = await connectPusher(ctx.topo, 0);
      const names = [1, 2, 3].map((i) => `multi-${i}-${randomId()}`);
      const recs = [];
      for (const n of names) recs.push(record(await subscribe(client, n), 'fanout'));
      // A channel nobody listens to must not disturb the others.
      await ctx.sdk.trigger([...names, `nobody-${randomId()}`], 'fanout', { n: 1 });
      await ctx.sdk.trigger(names, 'fanout', { n: 2 });
      for (const r of recs) {
        const items = await r.waitCount(2);
        assert.deepEqual(items, [{ n: 1 }, { n: 2 }], `events on ${r.label}`);
      }
      // The second event arrived after the first on every channel, so no
      // duplicate of the first is still on its way.
      for (const r of recs) assert.equal(r.count, 2, `${r.label}: ${JSON.stringify(r.items)}`);
    });

    it('delivers a triggerBatch, in order per channel', async () => {
      const client = await connectPusher(ctx.topo, 1);
      const a = `batch-a-${randomId()}`;
      const b = `batch-b-${randomId()}`;
      const ra = record(await subscribe(client, a), 'step');
      const rb = record(await subscribe(client, b), 'step');
      const res = await ctx.sdk.triggerBatch([
        { channel: a, name: 'step', data: { i: 1 } },
        { channel: b, name: 'step', data: { i: 1 } },
        { channel: a, name: 'step', data: { i: 2 } },
        { channel: a, name: 'step', data: { i: 3 } },
      ]);
      assert.equal(res.status, 200);
      assert.deepEqual(await ra.waitCount(3), [{ i: 1 }, { i: 2 }, { i: 3 }]);
      assert.deepEqual(await rb.waitCount(1), [{ i: 1 }]);
    });

    it('keeps the order of events triggered one after another', async () => {
      const client = await connectPusher(ctx.topo, 0);
      const name = `progress-${randomId()}`;
      const got = record(await subscribe(client, name), 'progress');
      const steps = [0, 10, 20, 30, 40, 50, 50, 60, 70, 80, 90, 100];
      for (const pct of steps) await ctx.sdk.trigger(name, 'progress', { pct });
      const items = await got.waitCount(steps.length);
      // Two identical events in a row (50 twice) are both delivered.
      assert.deepEqual(
        items.map((d) => d.pct),
        steps,
      );
    });

    it('stops delivering after unsubscribe', async () => {
      // A raw client: pusher-js drops frames of channels it left, which
      // would hide a server that keeps sending them.
      const raw = await connectRaw(ctx.topo, 1);
      const name = `leave-${randomId()}`;
      const sentinel = `sentinel-${randomId()}`;
      await raw.subscribe(name);
      await ctx.sdk.trigger(name, 'tick', { n: 1 });
      await raw.frames.waitMatch((f) => f.channel === name && f.event === 'tick');
      raw.send({ event: 'pusher:unsubscribe', data: { channel: name } });
      // The unsubscribe travels on the same socket before the sentinel's
      // subscribe, so once the sentinel is live the first is gone.
      await raw.subscribe(sentinel);
      await ctx.sdk.trigger(name, 'tick', { n: 2 });
      await ctx.sdk.trigger(sentinel, 'tick', { n: 3 });
      await raw.frames.waitMatch((f) => f.channel === sentinel && f.event === 'tick');
      const ticks = raw.frames.items.filter((f) => f.channel === name && f.event === 'tick');
      assert.deepEqual(
        ticks.map((f) => JSON.parse(f.data)),
        [{ n: 1 }],
      );
    });
  });
}
