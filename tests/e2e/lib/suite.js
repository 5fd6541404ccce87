// The hooks that give the tests of a describe what they share: a running
// topology, a browser, a page server.

import { after, before } from 'node:test';

import { launchChromium, pageServer } from './browser.js';
import { startTopology } from './topology.js';

// useTopology starts a topology of kind before the tests of the describe it
// is called in, and stops it after them (which fails the describe when a
// process died on its own). It returns the handle the tests read once it has
// started: topo, and sdk, the pusher SDK on its HTTP API made with
// options.sdk. options are startTopology's, or a function that returns them
// when they are only known once the describe's earlier hooks have run.
export function useTopology(kind, options = {}) {
  const ctx = { topo: undefined, sdk: undefined };
  before(async () => {
    const { sdk, ...start } = typeof options === 'function' ? options() : options;
    ctx.topo = await startTopology(kind, start);
    ctx.sdk = ctx.topo.sdk(sdk);
  });
  after(() => ctx.topo?.stop());
  return ctx;
}

// useChromium launches headless Chromium before the tests of the describe it
// is called in and closes it after them; ctx.browser is the browser.
export function useChromium() {
  const ctx = { browser: undefined };
  before(async () => {
    ctx.browser = await launchChromium();
  });
  after(() => ctx.browser?.close());
  return ctx;
}

// usePageServer serves page and scripts (lib/browser.js pageServer) on a
// loopback origin of its own for the tests of the describe it is called in:
// ctx.origin is that origin, ctx.setSDK sets the SDK that signs the page's
// /broadcasting/auth.
export function usePageServer(page, scripts) {
  const server = pageServer(page, scripts);
  const ctx = { origin: undefined, setSDK: server.setSDK };
  before(async () => {
    ctx.origin = await server.listen();
  });
  after(() => server.close());
  return ctx;
}
