// Herald's replay extension in a real browser: headless Chromium opens a page
// that runs laravel-echo 2 (its browser build) on pusher-js, with Herald's JS
// companion loaded from the gateway (/app/_herald/replay.js) and attached to
// Echo.connector.pusher. The page records every event Echo hands it. The
// page reaches the gateways through a RouteProxy of the test, so a case can
// drop its connection as a network would and decide which gateway, and
// when, its reconnection reaches.

import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';

import { skipWithoutChromium } from '../lib/browser.js';
import { RouteProxy } from '../lib/proxy.js';
import { useChromium, usePageServer, useTopology } from '../lib/suite.js';
import { E2E_DIR, TOPOLOGIES } from '../lib/topology.js';
import { DEFAULT_TIMEOUT, randomId, waitFor } from '../lib/wait.js';

const PAGE = path.join(E2E_DIR, 'browser', 'replay.html');
const SCRIPTS = {
  '/pusher.min.js': path.join(E2E_DIR, 'node_modules', 'pusher-js', 'dist', 'web', 'pusher.min.js'),
  '/echo.iife.js': path.join(E2E_DIR, 'node_modules', 'laravel-echo', 'dist', 'echo.iife.js'),
};
const WAIT = DEFAULT_TIMEOUT; // for what a page should see

const skip = !TOPOLOGIES.includes('split')
  ? 'needs the split topology (HERALD_E2E_TOPOLOGIES)'
  : skipWithoutChromium('the browser test');


// emit triggers tick events n = from..to on channel, one after the other.
async function emit(sdk, channel, from, to) {
  for (let n = from; n <= to; n++) await sdk.trigger(channel, 'tick', { n });
}

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('replay in Chromium with laravel-echo and the companion [split]', { skip }, () => {
  const chromium = useChromium();
  // The page, the scripts and the app's /broadcasting/auth, signed by
  // whichever SDK the test sets (a wrong secret refuses).
  const pages = usePageServer(PAGE, SCRIPTS);

  // tab opens a browser context with one page and the helpers of a case.
  async function tab(topo, t) {
    const context = await chromium.browser.newContext();
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    const proxy = await new RouteProxy(topo.ws[0]).listen();
    t.after(async () => {
      await context.close();
      await proxy.close();
    });
    const state = () =>
      page.evaluate(() => {
        const h = window.herald || {};
        return JSON.stringify({ states: h.states, errors: h.errors, subscribed: h.subscribed, failed: h.failed, received: h.received });
      });
    const until = (fn, arg, what) =>
      page.waitForFunction(fn, arg, { timeout: WAIT, polling: 50 }).catch(async (err) => {
        throw new Error(`${what}: ${err.message}\npage: ${await state().catch(() => '?')}\n${problems.join('\n')}`);
      });
    return {
      page,
      proxy,
      problems,
      // open loads the page on the proxy and waits for its subscriptions.
      async open(channels, { rewind } = {}) {
        const q = new URLSearchParams({
          key: topo.app.key,
          host: proxy.host,
          port: String(proxy.port),
          replay: `http://${topo.ws[0].host}:${topo.ws[0].port}/app/_herald/replay.js`,
          channels: channels.join(','),
        });
        if (rewind) q.set('rewind', rewind);
        await page.goto(`${pages.origin}/?${q}`);
        await this.subscribed(channels.length);
      },
      // drop cuts the page's connection as a network would; its reconnection
      // reaches ep, held at the proxy until proxy.release() when hold is set.
      drop(ep, { hold = false } = {}) {
        if (hold) proxy.hold();
        proxy.route(ep);
        proxy.cut();
      },
      subscribed: (n) =>
        until((n) => window.herald && window.herald.subscribed.length >= n, n, `${n} subscription(s) of the page`),
      until,
      // seq lists what the page received on channel: tick numbers and the
      // other events' names.
      seq: async (channel) =>
        (await page.evaluate(() => window.herald.received)).filter((r) => r.channel === channel).map((r) => (r.event === 'tick' ? r.data.n : r.event)),
      received: (channel, event) => page.evaluate(([c, e]) => window.herald.received.filter((r) => r.channel === c && r.event === e).map((r) => r.data), [channel, event]),
      ticks: (channel, n) =>
        until(
          ([c, n]) => window.herald.received.filter((r) => r.channel === c && r.event === 'tick').length >= n,
          [channel, n],
          `${n} tick(s) on ${channel}`,
        ),
      event: (channel, event) =>
        until(([c, e]) => window.herald.received.some((r) => r.channel === c && r.event === e), [channel, event], `${event} on ${channel}`),
    };
  }

  // streaming opens a tab on channels and waits until it has received
  // ticks 1..n on the first.
  async function streaming(ctx, t, channels, n) {
    const b = await tab(ctx.topo, t);
    await b.open(channels);
    await emit(ctx.sdk, channels[0], 1, n);
    await b.ticks(channels[0], n);
    return b;
  }

  describe('on a split topology', () => {
    const ctx = useTopology('split', { label: 'replay-browser' });
    before(() => pages.setSDK(ctx.sdk));

    it('resumes on the other gateway after the connection drops mid-stream: nothing lost, nothing twice', async (t) => {
      const name = `stream-${randomId()}`;
      const b = await streaming(ctx, t, [name], 5);
      const firstSocket = await b.page.evaluate(() => window.herald.socketIds[0]);

      // The network drops; the page's next connection reaches gateway B.
      b.drop(ctx.topo.ws[1]);
      await emit(ctx.sdk, name, 6, 15);
      await b.event(name, 'herald:resumed');
      await emit(ctx.sdk, name, 16, 20);
      await b.ticks(name, 20);

      const seq = await b.seq(name);
      assert.deepEqual(seq.filter((x) => x !== 'herald:resumed'), range(1, 20), `received: ${JSON.stringify(seq)}`);
      assert.equal(seq.filter((x) => x === 'herald:resumed').length, 1, `received: ${JSON.stringify(seq)}`);
      const sockets = await b.page.evaluate(() => window.herald.socketIds);
      assert.equal(sockets.length, 2, `socket ids: ${sockets}`);
      assert.notEqual(sockets[1], firstSocket);
      assert.equal(b.proxy.connections, 2, 'one reconnection, through the proxy, to gateway B');
      assert.deepEqual(b.problems, []);
    });

    it('resumes after a page reload from the positions in sessionStorage', async (t) => {
      const name = `reload-${randomId()}`;
      const b = await streaming(ctx, t, [name], 3);
      assert.deepEqual(await b.seq(name), [1, 2, 3]);

      // The reloaded page waits before it connects, so that events surely
      // happen while no page is listening.
      await b.page.evaluate(() => sessionStorage.setItem('herald-e2e:hold', '1'));
      b.proxy.route(ctx.topo.ws[1]);
      await b.page.reload();
      assert.equal(await b.page.evaluate(() => window.herald.holding), true);
      await emit(ctx.sdk, name, 4, 8);
      await b.page.evaluate(() => window.herald.start());
      await b.subscribed(1);
      await b.event(name, 'herald:resumed');
      await emit(ctx.sdk, name, 9, 10);
      await b.ticks(name, 7);
      assert.deepEqual(await b.seq(name), [4, 5, 6, 7, 8, 'herald:resumed', 9, 10]);
      const [resumed] = await b.received(name, 'herald:resumed');
      assert.equal(resumed.replayed, 5, JSON.stringify(resumed));
      assert.deepEqual(b.problems, []);
    });

    it('rewinds the last N events on the first subscribe, then goes live', async (t) => {
      const b = await tab(ctx.topo, t);
      const name = `rewind-${randomId()}`;
      await emit(ctx.sdk, name, 1, 6);
      await b.open([name], { rewind: `${name}:3` });
      await b.event(name, 'herald:resumed');
      await emit(ctx.sdk, name, 7, 7);
      await b.ticks(name, 4);
      assert.deepEqual(await b.seq(name), [4, 5, 6, 'herald:resumed', 7]);
      const [resumed] = await b.received(name, 'herald:resumed');
      assert.equal(resumed.replayed, 3, JSON.stringify(resumed));
    });

    it('delivers 20 live events racing a replay of 30, all once and in order', async (t) => {
      const name = `race-${randomId()}`;
      const b = await streaming(ctx, t, [name], 5);

      // The page loses its connection and its reconnection is held at the
      // proxy while 30 events pass; it is let through as 20 more are sent.
      b.drop(ctx.topo.ws[1], { hold: true });
      await emit(ctx.sdk, name, 6, 35);
      await waitFor(() => b.proxy.held > 0, { timeout: WAIT, what: 'the page to reconnect' });
      const live = emit(ctx.sdk, name, 36, 55);
      b.proxy.release();
      await live;
      await b.ticks(name, 55);

      const seq = await b.seq(name);
      assert.deepEqual(seq.filter((x) => x !== 'herald:resumed'), range(1, 55), `received: ${JSON.stringify(seq)}`);
      const at = seq.indexOf('herald:resumed');
      assert.ok(at >= 35, `herald:resumed after the replayed events: ${JSON.stringify(seq)}`);
      const [resumed] = await b.received(name, 'herald:resumed');
      assert.ok(resumed.replayed >= 30, JSON.stringify(resumed));
      assert.deepEqual(b.problems, []);
    });

    it('resumes a private channel with valid auth, and refuses it with invalid auth', async (t) => {
      const name = `private-orders.${randomId()}`;
      const marker = `marker-${randomId()}`;
      const b = await streaming(ctx, t, [name, marker], 2);

      b.drop(ctx.topo.ws[1]);
      await emit(ctx.sdk, name, 3, 5);
      await b.event(name, 'herald:resumed');
      await emit(ctx.sdk, name, 6, 6);
      await b.ticks(name, 6);
      assert.deepEqual(await b.seq(name), [1, 2, 3, 4, 5, 'herald:resumed', 6]);

      // The app's auth endpoint now signs with a wrong secret: the resume is
      // refused, and nothing of the channel reaches the page.
      pages.setSDK(ctx.topo.sdk({ secret: 'not-the-secret-of-this-app-00000' }));
      t.after(() => pages.setSDK(ctx.sdk));
      b.drop(ctx.topo.ws[0]);
      await emit(ctx.sdk, name, 7, 9);
      await b.until((c) => window.herald.failed.some((f) => f.name === c), name, 'subscription_error on the private channel');
      const [failure] = await b.page.evaluate(() => window.herald.failed);
      assert.equal(failure.error.status, 401, JSON.stringify(failure));
      // The marker channel resumes on the same connection; once its event
      // arrived, one sent before it on the private channel would have too.
      await emit(ctx.sdk, name, 10, 10);
      await ctx.sdk.trigger(marker, 'tick', { n: 1 });
      await b.ticks(marker, 1);
      assert.deepEqual(await b.seq(name), [1, 2, 3, 4, 5, 'herald:resumed', 6]);
    });
  });

  describe('on a split topology whose app keeps 3 events per channel', () => {
    const ctx = useTopology('split', { label: 'replay-browser-small', appExtra: { replay_max_events: 3 } });

    it('sends herald:resume_failed when the gap exceeds the window, then live', async (t) => {
      pages.setSDK(ctx.sdk);
      const name = `window-${randomId()}`;
      const b = await streaming(ctx, t, [name], 2);

      b.drop(ctx.topo.ws[1], { hold: true });
      await emit(ctx.sdk, name, 3, 12);
      b.proxy.release();
      await b.event(name, 'herald:resume_failed');
      await emit(ctx.sdk, name, 13, 13);
      await b.ticks(name, 3);
      assert.deepEqual(await b.seq(name), [1, 2, 'herald:resume_failed', 13]);
      assert.deepEqual(await b.received(name, 'herald:resume_failed'), [{ reason: 'window_exceeded' }]);

      // Live started at the channel's current position: the next drop resumes from there.
      b.drop(ctx.topo.ws[0], { hold: true });
      await emit(ctx.sdk, name, 14, 15);
      b.proxy.release();
      await b.event(name, 'herald:resumed');
      assert.deepEqual(await b.seq(name), [1, 2, 'herald:resume_failed', 13, 14, 15, 'herald:resumed']);
      assert.deepEqual(b.problems, []);
    });
  });
});
