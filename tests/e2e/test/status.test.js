// The status page in headless Chromium: opened with the admin token while
// the test connects clients, triggers events and causes a replay, it shows
// those figures and updates without a reload, and tails the channel. Without the token the page
// and its data answer 401. A screenshot of each topology is kept in .tmp.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { skipWithoutChromium } from '../lib/browser.js';
import { connectPusher, connectRaw, subscribe } from '../lib/clients.js';
import { useChromium, useTopology } from '../lib/suite.js';
import { E2E_DIR, TOPOLOGIES } from '../lib/topology.js';
import { DEFAULT_TIMEOUT, randomId } from '../lib/wait.js';

const PAGE = '/apps/_herald/status';
const TOKEN = `admin-${randomId(24)}`;

const skip = skipWithoutChromium('the status page test');

const figure = (page, id) => page.$eval(`#${id}`, (el) => Number(el.textContent.replace(/,/g, '')) || 0);

describe('status page', { skip }, () => {
  const chromium = useChromium();

  for (const kind of TOPOLOGIES) {
    describe(`[${kind}]`, () => {
      const ctx = useTopology(kind, { label: 'status', env: { HERALD_ADMIN_TOKEN: TOKEN } });

      it('answers 401 without the token', async () => {
        for (const p of [PAGE, `${PAGE}/data.json`, `${PAGE}?token=not-the-token-at-all`]) {
          const res = await fetch(ctx.topo.httpURL(p), { redirect: 'manual' });
          assert.equal(res.status, 401, `GET ${p}`);
          assert.ok((await res.json()).error);
        }
        const res = await fetch(ctx.topo.httpURL(`${PAGE}/data.json`), { headers: { authorization: `Bearer ${TOKEN}` } });
        assert.equal(res.status, 200);
      });

      it('shows connections, the event rate and a replay, updating without a reload', async () => {
        const context = await chromium.browser.newContext({ viewport: { width: 1100, height: 900 } });
        const page = await context.newPage();
        const problems = [];
        page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
        let navigations = 0;
        page.on('framenavigated', (f) => f === page.mainFrame() && navigations++);
        const sdk = ctx.topo.sdk();
        let triggering = true;
        try {
          await page.goto(ctx.topo.httpURL(`${PAGE}?token=${TOKEN}`));
          assert.ok(!page.url().includes('token='), `the token stayed in the address: ${page.url()}`);
          await page.waitForFunction(() => Number(document.getElementById('updates').textContent) >= 1, null, { timeout: DEFAULT_TIMEOUT });
          const navigated = navigations;

          // Traffic: three clients on both gateways, events every 100 ms.
          const channel = `status-${randomId()}`;
          const clients = [];
          for (const i of [0, 1, 1]) {
            const c = await connectPusher(ctx.topo, i, { sdk });
            await subscribe(c, channel);
            clients.push(c);
          }
          const loop = (async () => {
            while (triggering) {
              await sdk.trigger(channel, 'tick', { at: Date.now() });
              await new Promise((r) => setTimeout(r, 100));
            }
          })();
          // A replay: a raw client rewinds the channel's last events.
          const raw = await connectRaw(ctx.topo, 0);
          await raw.request(
            { event: 'pusher:subscribe', data: { channel, rewind: 2 } },
            (f) => f.event === 'herald:resumed' && f.channel === channel,
            { timeout: DEFAULT_TIMEOUT },
          );

          await page
            .waitForFunction(
              () => {
                const n = (id) => Number(document.getElementById(id).textContent.replace(/,/g, '')) || 0;
                return n('total-connections') >= 4 && n('total-events-rate') > 0 && n('total-messages-rate') > 0 && n('total-resumes') >= 1;
              },
              null,
              { timeout: DEFAULT_TIMEOUT },
            )
            .catch(async (err) => {
              const shown = await page.evaluate(() => document.body.innerText);
              throw new Error(`the page did not show the traffic: ${err.message}\n${shown}\n${problems.join('\n')}`);
            });
          const updates = await figure(page, 'updates');
          await page.waitForFunction((u) => Number(document.getElementById('updates').textContent) > u, updates, { timeout: DEFAULT_TIMEOUT });
          assert.equal(navigations, navigated, 'the page reloaded');

          const gateways = await page.$$eval('#gateways tbody tr', (rows) => rows.length);
          assert.equal(gateways, kind === 'split' ? 2 : 1);
          const apps = await page.$$eval('#apps tbody tr td[data-k="id"]', (tds) => tds.map((td) => td.textContent));
          assert.ok(apps.includes(ctx.topo.app.id), `apps shown: ${apps}`);
          assert.ok((await figure(page, 'total-connections')) >= 4);
          // The live tail of the channel shows the events as they go.
          await page.selectOption('#tail-app', ctx.topo.app.id);
          await page.fill('#tail-channel', channel);
          await page.click('#tail-button');
          await page.waitForFunction(
            () => [...document.querySelectorAll('#tail tbody tr')].some((tr) => tr.children[2].textContent === 'tick'),
            null,
            { timeout: DEFAULT_TIMEOUT },
          );
          assert.deepEqual(problems, []);
          fs.mkdirSync(path.join(E2E_DIR, '.tmp'), { recursive: true });
          await page.screenshot({ path: path.join(E2E_DIR, '.tmp', `status-${kind}.png`), fullPage: true });
          triggering = false;
          await loop;
          for (const c of clients) c.disconnect();
        } finally {
          triggering = false;
          await context.close();
        }
      });
    });
  }
});
