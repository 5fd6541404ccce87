// pusher-js in a real browser: headless Chromium opens a page served on
// 127.0.0.1 that loads pusher-js from a script tag; events triggered with
// the pusher SDK show up in the page, private channels are authorized by the
// page's own server, and the page's client events reach a Node client.

import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';

import { skipWithoutChromium } from '../lib/browser.js';
import { connectPusher, record, subscribe } from '../lib/clients.js';
import { useChromium, usePageServer, useTopology } from '../lib/suite.js';
import { E2E_DIR, TOPOLOGIES } from '../lib/topology.js';
import { DEFAULT_TIMEOUT, randomId } from '../lib/wait.js';

const PAGE = path.join(E2E_DIR, 'browser', 'index.html');
const PUSHER_JS = path.join(E2E_DIR, 'node_modules', 'pusher-js', 'dist', 'web', 'pusher.min.js');

const skip = skipWithoutChromium('the browser test');

// The page, pusher-js and the app's auth endpoint, as a Laravel app serves
// its front end and /broadcasting/auth.
const SCRIPTS = { '/pusher.min.js': PUSHER_JS };

describe('browser', { skip }, () => {
  const chromium = useChromium();
  const pages = usePageServer(PAGE, SCRIPTS);
  // The same page on another origin, which the app does not allow.
  const strangers = usePageServer(PAGE, SCRIPTS);

  for (const kind of TOPOLOGIES) {
    describe(`pusher-js in Chromium [${kind}]`, () => {
      // Only the page's origin may connect, as a production app sets it.
      const ctx = useTopology(kind, () => ({ label: 'browser', appExtra: { allowed_origins: [pages.origin] } }));

      it('subscribes from a page and receives events, public and private', async () => {
        pages.setSDK(ctx.sdk);
        const pub = `browser-${randomId()}`;
        const priv = `private-browser.${randomId()}`;
        const context = await chromium.browser.newContext();
        const page = await context.newPage();
        const problems = [];
        page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
        page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
        try {
          const ep = ctx.topo.ws[1];
          const q = new URLSearchParams({ key: ctx.topo.app.key, host: ep.host, port: String(ep.port), channels: `${pub},${priv}` });
          await page.goto(`${pages.origin}/?${q}`);
          await page
            .waitForFunction(() => window.herald && window.herald.subscribed.length === 2, null, { timeout: DEFAULT_TIMEOUT })
            .catch(async (err) => {
              const state = await page.evaluate(() => JSON.stringify({ ...window.herald, pusher: undefined }));
              throw new Error(`the page did not subscribe: ${err.message}\npage state: ${state}\n${problems.join('\n')}`);
            });

          await ctx.sdk.trigger(pub, 'greeting', { text: 'hello browser' });
          await ctx.sdk.trigger(priv, 'secret', { text: 'hello private' });
          await page.waitForFunction(() => window.herald.received.length >= 2, null, { timeout: DEFAULT_TIMEOUT });
          // Order holds within a channel only, as on Pusher.
          const received = await page.evaluate(() => window.herald.received);
          const byChannel = (c) => received.filter((r) => r.channel === c);
          assert.deepEqual(byChannel(pub), [{ channel: pub, event: 'greeting', data: { text: 'hello browser' } }]);
          assert.deepEqual(byChannel(priv), [{ channel: priv, event: 'secret', data: { text: 'hello private' } }]);

          // A client event from the page reaches a Node client on the other
          // gateway.
          const node = await connectPusher(ctx.topo, 0, { sdk: ctx.sdk });
          const heard = record(await subscribe(node, priv), 'client-wave');
          const sent = await page.evaluate((name) => window.herald.whisper(name, 'client-wave', { from: 'page' }), priv);
          assert.equal(sent, true);
          assert.deepEqual(await heard.waitCount(1), [{ from: 'page' }]);

          // Connected once and stayed so: no reconnect, no failure.
          const states = await page.evaluate(() => [...window.herald.states, window.herald.pusher.connection.state]);
          assert.ok(
            states.every((s) => s === 'connecting' || s === 'connected') && states.at(-1) === 'connected',
            `connection states of the page: ${JSON.stringify(states)}`,
          );
          assert.ok(states.filter((s) => s === 'connecting').length <= 1, `the page reconnected: ${JSON.stringify(states)}`);
          assert.deepEqual(problems, []);
          await page.screenshot({ path: path.join(E2E_DIR, '.tmp', `browser-${kind}.png`) });
        } finally {
          await context.close();
        }
      });

      it(
        'resumes after the page is left and opened again, on the other gateway, with the JS companion',
        async () => {
          pages.setSDK(ctx.sdk);
          const name = `private-progress.${randomId()}`;
          const context = await chromium.browser.newContext();
          const page = await context.newPage();
          const problems = [];
          page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
          const open = async (i) => {
            const ep = ctx.topo.ws[i];
            const q = new URLSearchParams({
              key: ctx.topo.app.key,
              host: ep.host,
              port: String(ep.port),
              channels: name,
              replay: `http://${ep.host}:${ep.port}/app/_herald/replay.js`,
            });
            await page.goto(`${pages.origin}/?${q}`);
            await page.waitForFunction(() => window.herald && window.herald.subscribed.length === 1, null, { timeout: DEFAULT_TIMEOUT });
          };
          const received = () => page.evaluate(() => window.herald.received.map((r) => [r.event, r.data]));
          try {
            await open(0);
            assert.ok(await page.evaluate(() => Boolean(window.herald.replay)), `companion not attached: ${problems}`);
            await ctx.sdk.trigger(name, 'progress', { pct: 10 });
            await page.waitForFunction(() => window.herald.received.length === 1, null, { timeout: DEFAULT_TIMEOUT });

            // The tab leaves the page; events go on; the tab comes back.
            await page.goto('about:blank');
            await ctx.sdk.trigger(name, 'progress', { pct: 20 });
            await ctx.sdk.trigger(name, 'progress', { pct: 30 });
            await open(1);
            await page.waitForFunction(() => window.herald.received.some((r) => r.event === 'herald:resumed'), null, {
              timeout: DEFAULT_TIMEOUT,
            });
            await ctx.sdk.trigger(name, 'progress', { pct: 40 });
            await page.waitForFunction(() => window.herald.received.length >= 4, null, { timeout: DEFAULT_TIMEOUT });
            const got = await received();
            assert.deepEqual(
              got.map(([event, data]) => (event === 'progress' ? data.pct : event)),
              [20, 30, 'herald:resumed', 40],
            );
            assert.deepEqual(problems, []);
          } finally {
            await context.close();
          }
        },
      );

      it('refuses a page from an origin the app does not allow, and pusher-js gives up', async () => {
        strangers.setSDK(ctx.sdk);
        const context = await chromium.browser.newContext();
        const page = await context.newPage();
        try {
          const ep = ctx.topo.ws[0];
          const q = new URLSearchParams({ key: ctx.topo.app.key, host: ep.host, port: String(ep.port), channels: `x-${randomId()}` });
          await page.goto(`${strangers.origin}/?${q}`);
          const codes = () =>
            page.evaluate(() => window.herald.errors.map((e) => (e.error && e.error.data && e.error.data.code) || (e.data && e.data.code)));
          await page.waitForFunction(() => window.herald.pusher.connection.state === 'disconnected', null, { timeout: DEFAULT_TIMEOUT }).catch(async (err) => {
            throw new Error(`${err.message}; states ${JSON.stringify(await page.evaluate(() => window.herald.states))}, codes ${JSON.stringify(await codes())}`);
          });
          const seen = (await codes()).filter(Boolean);
          assert.ok(seen.length > 0 && seen.every((c) => c > 4000 && c < 4100), `close codes (4001-4099 refuse without reconnecting): ${JSON.stringify(seen)}`);
          const states = await page.evaluate(() => window.herald.states);
          assert.ok(!states.includes('connected'), `states: ${JSON.stringify(states)}`);
          assert.deepEqual(await page.evaluate(() => window.herald.subscribed), []);
        } finally {
          await context.close();
        }
      });
    });
  }
});
