// Herald's replay extension, read at the frame level as the companion and
// native clients read it: positions, rewind, resume on another gateway, and
// the refusals. Cache channels too, which also send stored events on
// subscribe.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { connectPusher, connectRaw, record, subscribe } from '../lib/clients.js';
import { useTopology } from '../lib/suite.js';
import { TOPOLOGIES } from '../lib/topology.js';
import { randomId } from '../lib/wait.js';

const data = (f) => (typeof f.data === 'string' ? JSON.parse(f.data) : f.data);
const on = (channel, event) => (f) => f.channel === channel && f.event === event;

// channelFrames returns the frames a raw client got on channel, in order.
function channelFrames(raw, channel) {
  return raw.frames.items.filter((f) => f.channel === channel);
}

for (const kind of TOPOLOGIES) {
  // Cases use channels of their own, so they run side by side.
  describe(`replay [${kind}]`, { concurrency: true }, () => {
    const ctx = useTopology(kind, { label: 'replay' });

    it('sends plain Pusher frames to clients that did not opt in', async () => {
      const raw = await connectRaw(ctx.topo, 0);
      const name = `plain-${randomId()}`;
      const ok = await raw.subscribe(name);
      assert.deepEqual(ok, { event: 'pusher_internal:subscription_succeeded', channel: name, data: '{}' });
      await ctx.sdk.trigger(name, 'e', { a: 1 });
      const f = await raw.frames.waitMatch(on(name, 'e'));
      assert.deepEqual(Object.keys(f).sort(), ['channel', 'data', 'event'], raw.texts.at(-1));
    });

    it('adds a position to every event of a subscription that asks for positions', async () => {
      const raw = await connectRaw(ctx.topo, 1);
      const name = `pos-${randomId()}`;
      const ok = await raw.subscribe(name, { positions: true });
      assert.equal(typeof data(ok).position, 'string', `subscription_succeeded: ${JSON.stringify(ok)}`);
      await ctx.sdk.trigger(name, 'e', { n: 1 });
      await ctx.sdk.trigger(name, 'e', { n: 2 });
      await raw.frames.waitMatch((f) => on(name, 'e')(f) && data(f).n === 2);
      const events = channelFrames(raw, name).filter((f) => f.event === 'e');
      assert.equal(events.length, 2);
      for (const f of events) assert.equal(typeof f.position, 'string', JSON.stringify(f));
      assert.notEqual(events[0].position, events[1].position);
      assert.notEqual(events[0].position, data(ok).position);
    });

    it('rewinds the last N events, oldest first, then herald:resumed, then live', async () => {
      const name = `rewind-${randomId()}`;
      for (let n = 1; n <= 4; n++) await ctx.sdk.trigger(name, 'e', { n });
      const raw = await connectRaw(ctx.topo, 0);
      await raw.subscribe(name, { rewind: 2 });
      const resumed = await raw.frames.waitMatch(on(name, 'herald:resumed'));
      assert.equal(data(resumed).replayed, 2, JSON.stringify(resumed));
      await ctx.sdk.trigger(name, 'e', { n: 5 });
      await raw.frames.waitMatch((f) => on(name, 'e')(f) && data(f).n === 5);
      const seq = channelFrames(raw, name).map((f) => (f.event === 'e' ? data(f).n : f.event));
      assert.deepEqual(seq, ['pusher_internal:subscription_succeeded', 3, 4, 'herald:resumed', 5]);
      const replayed = channelFrames(raw, name).filter((f) => f.event === 'e');
      assert.equal(data(resumed).position, replayed[1].position, 'herald:resumed carries the last replayed position');
    });

    it('resumes on the other gateway after a lost connection: nothing lost, nothing twice', async () => {
      const name = `resume-${randomId()}`;
      const first = await connectRaw(ctx.topo, 0);
      await first.subscribe(name, { positions: true });
      await ctx.sdk.trigger(name, 'progress', { pct: 10 });
      await ctx.sdk.trigger(name, 'progress', { pct: 20 });
      await first.frames.waitMatch((f) => on(name, 'progress')(f) && data(f).pct === 20);
      const last = channelFrames(first, name).filter((f) => f.event === 'progress').at(-1).position;
      await first.close(); // the network drops

      // Missed while away, including one the old socket itself caused.
      await ctx.sdk.trigger(name, 'progress', { pct: 30 });
      await ctx.sdk.trigger(name, 'progress', { pct: 40 }, { socket_id: first.socketId });
      await ctx.sdk.trigger(name, 'progress', { pct: 50 });

      const second = await connectRaw(ctx.topo, 1);
      await second.subscribe(name, { resume: last, socket_ids: [first.socketId] });
      const resumed = await second.frames.waitMatch(on(name, 'herald:resumed'));
      assert.equal(data(resumed).replayed, 2, JSON.stringify(resumed));
      await ctx.sdk.trigger(name, 'progress', { pct: 60 });
      await second.frames.waitMatch((f) => on(name, 'progress')(f) && data(f).pct === 60);
      const seq = channelFrames(second, name).map((f) => (f.event === 'progress' ? data(f).pct : f.event));
      assert.deepEqual(seq, ['pusher_internal:subscription_succeeded', 30, 50, 'herald:resumed', 60]);
    });

    it('answers an unreadable position with herald:resume_failed and carries on live', async () => {
      const name = `badpos-${randomId()}`;
      const raw = await connectRaw(ctx.topo, 1);
      await raw.subscribe(name, { resume: 'not-a-position' });
      const failed = await raw.frames.waitMatch(on(name, 'herald:resume_failed'));
      assert.deepEqual(data(failed), { reason: 'invalid_position' });
      await ctx.sdk.trigger(name, 'e', { live: true });
      await raw.frames.waitMatch(on(name, 'e'));
    });

    it('refuses a rewind out of range with invalid_rewind', async () => {
      const name = `badrewind-${randomId()}`;
      const raw = await connectRaw(ctx.topo, 0);
      await raw.subscribe(name, { rewind: 101 });
      const failed = await raw.frames.waitMatch(on(name, 'herald:resume_failed'));
      assert.deepEqual(data(failed), { reason: 'invalid_rewind' });
    });

    it('gives pusher-js the same events with or without positions', async () => {
      // pusher-js keeps event, channel and data only: a position must not
      // change what the app sees.
      const name = `mixed-${randomId()}`;
      const client = await connectPusher(ctx.topo, 0);
      const got = record(await subscribe(client, name), 'e');
      const raw = await connectRaw(ctx.topo, 1);
      await raw.subscribe(name, { positions: true });
      await ctx.sdk.trigger(name, 'e', { n: 1 });
      assert.deepEqual(await got.waitCount(1), [{ n: 1 }]);
    });
  });

  describe(`cache channels [${kind}]`, { concurrency: true }, () => {
    const ctx = useTopology(kind, { label: 'cache' });

    it('sends pusher:cache_miss on an empty cache channel', async () => {
      const client = await connectPusher(ctx.topo, 0);
      const name = `cache-empty-${randomId()}`;
      const ch = client.subscribe(name);
      const miss = record(ch, 'pusher:cache_miss');
      await subscribe(client, name);
      await miss.waitCount(1);
    });

    it('sends the last event of a cache channel right after subscribing, on any gateway', async () => {
      const name = `cache-price-${randomId()}`;
      await ctx.sdk.trigger(name, 'price', { v: 1 });
      await ctx.sdk.trigger(name, 'price', { v: 2 });
      for (const i of [0, 1]) {
        const raw = await connectRaw(ctx.topo, i);
        await raw.subscribe(name);
        const f = await raw.frames.waitMatch(on(name, 'price'));
        assert.deepEqual(data(f), { v: 2 });
        const seq = channelFrames(raw, name).map((x) => x.event);
        assert.deepEqual(seq, ['pusher_internal:subscription_succeeded', 'price']);
      }
    });
  });
}
