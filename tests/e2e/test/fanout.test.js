// One event, many subscribers: each gets it exactly once, whichever gateway
// it is on; client events cross gateways too.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { connectPusher, connectRaw, record, subscribe } from '../lib/clients.js';
import { useTopology } from '../lib/suite.js';
import { TOPOLOGIES } from '../lib/topology.js';
import { randomId } from '../lib/wait.js';

for (const kind of TOPOLOGIES) {
  describe(`fan-out [${kind}]`, () => {
    const ctx = useTopology(kind, { label: 'fanout' });

    it('delivers one trigger exactly once to a client on gateway A and one on gateway B', async () => {
      const a = await connectPusher(ctx.topo, 0);
      const b = await connectPusher(ctx.topo, 1);
      const name = `news-${randomId()}`;
      const ra = record(await subscribe(a, name), 'headline');
      const rb = record(await subscribe(b, name), 'headline');
      await ctx.sdk.trigger(name, 'headline', { n: 1 });
      // A later event on the same channel: once it is in, any duplicate of
      // the first would have arrived before it.
      await ctx.sdk.trigger(name, 'headline', { n: 'end' });
      assert.deepEqual(await ra.waitCount(2), [{ n: 1 }, { n: 'end' }]);
      assert.deepEqual(await rb.waitCount(2), [{ n: 1 }, { n: 'end' }]);
    });

    it('delivers a burst in order, exactly once, to many sockets on both gateways', async () => {
      const name = `burst-${randomId()}`;
      const sockets = [];
      for (let i = 0; i < 6; i++) {
        const c = await connectRaw(ctx.topo, i % 2);
        await c.subscribe(name);
        sockets.push(c);
      }
      const n = 50;
      await Promise.all(
        Array.from({ length: 5 }, async (_, w) => {
          // Five writers in parallel, each in order; the API answers after
          // each event is stored, so each writer's events stay ordered.
          for (let i = w; i < n; i += 5) await ctx.sdk.trigger(name, 'seq', { i, w });
        }),
      );
      await ctx.sdk.trigger(name, 'seq', { end: true });
      for (const c of sockets) {
        await c.frames.waitMatch((f) => f.channel === name && f.event === 'seq' && JSON.parse(f.data).end);
        const got = c.frames.items.filter((f) => f.channel === name && f.event === 'seq').map((f) => JSON.parse(f.data));
        const seen = got.filter((d) => !d.end).map((d) => d.i);
        assert.equal(seen.length, n, `${c.label}: ${seen.length} events, want ${n}: ${JSON.stringify(seen)}`);
        assert.equal(new Set(seen).size, n, `${c.label}: duplicates: ${JSON.stringify(seen)}`);
        for (let w = 0; w < 5; w++) {
          const mine = got.filter((d) => d.w === w).map((d) => d.i);
          assert.deepEqual(mine, [...mine].sort((x, y) => x - y), `${c.label}: writer ${w} out of order`);
        }
        // Every socket saw the same order: one history per channel.
        assert.deepEqual(seen, sockets[0].frames.items.filter((f) => f.channel === name && f.event === 'seq').map((f) => JSON.parse(f.data)).filter((d) => !d.end).map((d) => d.i));
      }
    });

    it('relays a client event to the other gateway, once, not to the sender', async () => {
      const a = await connectPusher(ctx.topo, 0);
      const b = await connectPusher(ctx.topo, 1);
      const c = await connectPusher(ctx.topo, 1);
      const name = `private-doc.${randomId()}`;
      const ca = await subscribe(a, name);
      const cb = await subscribe(b, name);
      const cc = await subscribe(c, name);
      const ha = record(ca, 'client-cursor');
      const hb = record(cb, 'client-cursor');
      const hc = record(cc, 'client-cursor');
      assert.equal(ca.trigger('client-cursor', { x: 1, from: 'a' }), true);
      assert.deepEqual(await hb.waitCount(1), [{ x: 1, from: 'a' }]);
      assert.deepEqual(await hc.waitCount(1), [{ x: 1, from: 'a' }]);
      // b answers after hearing a; a hears b, and never itself.
      cb.trigger('client-cursor', { x: 2, from: 'b' });
      assert.deepEqual(await ha.waitCount(1), [{ x: 2, from: 'b' }]);
      assert.deepEqual(await hc.waitCount(2), [
        { x: 1, from: 'a' },
        { x: 2, from: 'b' },
      ]);
      const fa = record(ca, 'flush2');
      const fb = record(cb, 'flush2');
      await ctx.sdk.trigger(name, 'flush2', {});
      await fa.waitCount(1);
      await fb.waitCount(1);
      assert.deepEqual(ha.items, [{ x: 2, from: 'b' }], 'a heard itself');
      assert.deepEqual(hb.items, [{ x: 1, from: 'a' }], 'b heard itself');
    });

    it('rate-limits client events per connection with pusher:error 4301', async () => {
      const a = await connectRaw(ctx.topo, 0);
      const b = await connectRaw(ctx.topo, 1);
      const name = `private-flood.${randomId()}`;
      await a.subscribe(name, { auth: ctx.sdk.authorizeChannel(a.socketId, name).auth });
      await b.subscribe(name, { auth: ctx.sdk.authorizeChannel(b.socketId, name).auth });
      // Three times the default 10 per second, at once.
      for (let i = 0; i < 30; i++) a.send({ event: 'client-flood', channel: name, data: { i } });
      const err = await a.frames.waitMatch((f) => f.event === 'pusher:error' && f.data?.code === 4301);
      assert.equal(typeof err.data.message, 'string');
      await b.frames.waitMatch((f) => f.event === 'client-flood');
      await ctx.sdk.trigger(name, 'after-flood', {});
      await b.frames.waitMatch((f) => f.event === 'after-flood');
      const delivered = b.frames.items.filter((f) => f.event === 'client-flood').length;
      assert.ok(delivered >= 1 && delivered < 30, `${delivered} of 30 client events delivered`);
    });

    it('a client event is never stored: a later subscriber does not get it', async () => {
      const a = await connectPusher(ctx.topo, 0);
      const b = await connectPusher(ctx.topo, 1);
      const name = `private-ephemeral.${randomId()}`;
      const ca = await subscribe(a, name);
      const hb = record(await subscribe(b, name), 'client-note');
      ca.trigger('client-note', { n: 1 });
      // Once b (on the late subscriber's gateway) has it, it is past.
      await hb.waitCount(1);
      const late = await connectRaw(ctx.topo, 1);
      const { auth } = ctx.sdk.authorizeChannel(late.socketId, name);
      await late.subscribe(name, { auth });
      await ctx.sdk.trigger(name, 'marker', {});
      await late.frames.waitMatch((f) => f.event === 'marker');
      assert.equal(late.frames.items.filter((f) => f.event === 'client-note').length, 0);
    });
  });
}
