// The hooks that give the tests of a describe one running topology.

import { after, before } from 'node:test';

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
