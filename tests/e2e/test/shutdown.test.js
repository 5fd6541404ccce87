// Graceful shutdown: SIGTERM sends every client pusher:error 4200 and closes
// with 4200, so that pusher-js reconnects at once (to another instance).

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';

import { connectPusher, connectRaw, record, subscribe } from '../lib/clients.js';
import { TOPOLOGIES, startTopology } from '../lib/topology.js';
import { randomId, waitFor, withTimeout } from '../lib/wait.js';

// A stop takes at most HERALD_SHUTDOWN_TIMEOUT (10 s); the rest is for a
// loaded machine.
const EXIT_TIMEOUT = 30_000;

async function assertClosedWith4200(raw) {
  const f = await raw.frames.waitMatch((x) => x.event === 'pusher:error', { timeout: EXIT_TIMEOUT });
  assert.equal(typeof f.data, 'object', JSON.stringify(f));
  assert.equal(f.data.code, 4200, `pusher:error before the close: ${JSON.stringify(f)}`);
  const { code } = await withTimeout(raw.closed, EXIT_TIMEOUT, 'the close after pusher:error 4200');
  assert.equal(code, 4200, 'close code');
}

function codesSeen(client) {
  return client.errors.items.map((e) => e?.data?.code ?? e?.error?.data?.code).filter((c) => c !== undefined);
}

describe('shutdown', () => {
  let topo;
  afterEach(() => topo?.stop());

  const only = (kind) => (TOPOLOGIES.includes(kind) ? {} : { skip: `topology ${kind} not selected` });

  it('herald: SIGTERM gives clients 4200, pusher-js tries to reconnect, the process exits 0', only('herald'), async () => {
    topo = await startTopology('herald', { label: 'shutdown' });
    const raws = [await connectRaw(topo, 0), await connectRaw(topo, 0)];
    const name = `bye-${randomId()}`;
    await raws[0].subscribe(name);
    const client = await connectPusher(topo, 0);
    await subscribe(client, name);
    const herald = topo.proc('herald');

    herald.signal('SIGTERM');
    await Promise.all(raws.map(assertClosedWith4200));
    await waitFor(() => codesSeen(client).includes(4200), {
      what: 'pusher-js to see 4200',
      seen: () => client.errors.items,
    });
    // 4200 means "reconnect now": pusher-js leaves 'connected' for
    // 'connecting', not for 'disconnected' or 'failed'.
    await waitFor(() => client.states.items.includes('connecting'), {
      what: 'pusher-js to reconnect',
      seen: () => client.states.items,
    });
    assert.ok(!client.states.items.includes('failed'), JSON.stringify(client.states.items));
    const exit = await withTimeout(herald.exited, EXIT_TIMEOUT, 'herald to exit after SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null }, `herald ${herald.describeExit()}\n${herald.tail()}`);
  });

  it('split: SIGTERM on gateway A gives its clients 4200; gateway B keeps delivering', only('split'), async () => {
    topo = await startTopology('split', { label: 'shutdown' });
    const sdk = topo.sdk();
    const name = `drain-${randomId()}`;
    const onA = await connectRaw(topo, 0);
    await onA.subscribe(name);
    const pusherA = await connectPusher(topo, 0);
    await subscribe(pusherA, name);
    const onB = await connectPusher(topo, 1);
    const got = record(await subscribe(onB, name), 'still');
    const gw = topo.proc('gateway-a');

    gw.signal('SIGTERM');
    await assertClosedWith4200(onA);
    await waitFor(() => codesSeen(pusherA).includes(4200), {
      what: 'pusher-js on gateway A to see 4200',
      seen: () => pusherA.errors.items,
    });
    const exit = await withTimeout(gw.exited, EXIT_TIMEOUT, 'gateway A to exit after SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null }, `gateway-a ${gw.describeExit()}\n${gw.tail()}`);

    await sdk.trigger(name, 'still', { alive: true });
    assert.deepEqual(await got.waitCount(1), [{ alive: true }]);
    assert.equal(onB.connection.state, 'connected');
  });
});
