// A gateway lost mid-stream: 100 pusher-js clients with the JS companion,
// half on each gateway of the split topology, receive a steady stream of
// events from the HTTP API; gateway A is killed with SIGKILL and started
// again; its clients reconnect (to gateway B while A is down, to the new A
// after) and resume. Every client must end with every event exactly once,
// in order.
//
// Each client reaches its gateway through a RouteProxy, which stands for the
// load balancer: it keeps the client's address while the test points it at
// whichever gateway is alive.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { attach } from '../../../services/gateway/web/herald-replay/src/index.js';
import { pusherClient, subscribeTicks } from '../lib/clients.js';
import { RouteProxy } from '../lib/proxy.js';
import { useTopology } from '../lib/suite.js';
import { TOPOLOGIES } from '../lib/topology.js';
import { randomId, waitFor } from '../lib/wait.js';

const CLIENTS = 100;
const RATE = 200; // events per second
const TOTAL = 800; // four seconds of stream
const KILL_AT = 250; // events sent before gateway A dies
const BATCH = 10; // events per batch_events request (the API's maximum)

const skip = TOPOLOGIES.includes('split') ? false : 'needs the split topology (HERALD_E2E_TOPOLOGIES)';

describe('gateway killed mid-stream [split]', { skip }, () => {
  // Room for the whole stream in the history, so that only the kill is tested.
  const ctx = useTopology('split', { label: 'fault', appExtra: { replay_max_events: 10_000 } });
  const proxies = [];
  before(async () => {
    for (const ep of ctx.topo.ws) proxies.push(await new RouteProxy(ep).listen());
  });
  after(async () => {
    for (const p of proxies) await p.close();
  });

  it(`${CLIENTS} clients resume after SIGKILL and restart: every event once, in order`, async () => {
    const name = `fault-${randomId()}`;
    const clients = [];
    for (let i = 0; i < CLIENTS; i++) {
      const proxy = proxies[i % 2];
      const client = pusherClient(ctx.topo, i % 2, {
        sdk: ctx.sdk,
        options: { wsHost: proxy.host, wsPort: proxy.port },
      });
      attach(client);
      client.gateway = i % 2 === 0 ? 'a' : 'b';
      clients.push(client);
    }
    await subscribeTicks(clients, name, 30_000);

    // The stream: batches sent one after the other, paced to RATE.
    const progress = () => {
      const counts = clients.map((c) => c.got.length);
      return { min: Math.min(...counts), max: Math.max(...counts), states: [...new Set(clients.map((c) => c.connection.state))] };
    };
    let sent = 0;
    let killed = false;
    let restarted = null;
    const start = Date.now();
    while (sent < TOTAL) {
      const due = Math.min(TOTAL, Math.floor(((Date.now() - start) / 1000) * RATE) + BATCH);
      if (sent >= due) {
        await sleep(5);
        continue;
      }
      const batch = [];
      for (let k = 0; k < BATCH && sent + batch.length < TOTAL; k++) {
        batch.push({ channel: name, name: 'tick', data: JSON.stringify({ n: sent + batch.length }) });
      }
      await ctx.sdk.triggerBatch(batch);
      sent += batch.length;
      if (!killed && sent >= KILL_AT) {
        killed = true;
        ctx.topo.proc('gateway-a').signal('SIGKILL');
        // While A is down its clients land on B; once A is back, on A.
        proxies[0].route(ctx.topo.ws[1]);
        restarted = ctx.topo.restart('gateway-a').then((ep) => proxies[0].route(ep));
      }
    }
    const streamMs = Date.now() - start;
    await restarted;

    await waitFor(() => clients.every((c) => c.got.length >= TOTAL), {
      timeout: 60_000,
      what: `every client to receive ${TOTAL} events`,
      seen: progress,
    });
    const expected = Array.from({ length: TOTAL }, (_, n) => n);
    for (const [i, c] of clients.entries()) {
      assert.deepEqual(c.failed, [], `client ${i} (gateway ${c.gateway}) got herald:resume_failed`);
      assert.equal(c.got.length, TOTAL, `client ${i} (gateway ${c.gateway}) got ${c.got.length} events`);
      assert.deepEqual(c.got, expected, `client ${i} (gateway ${c.gateway}): events lost, doubled or out of order`);
    }
    // The clients of A really went through a resume; those of B never lost their socket.
    const ofA = clients.filter((c) => c.gateway === 'a');
    const ofB = clients.filter((c) => c.gateway === 'b');
    assert.ok(ofA.every((c) => c.resumed.length >= 1), 'every client of gateway A resumed');
    assert.ok(ofB.every((c) => c.resumed.length === 0), 'no client of gateway B needed to resume');
    const replayed = ofA.map((c) => c.resumed.reduce((s, r) => s + r.replayed, 0));
    console.log(
      `# fault: ${CLIENTS} clients, ${TOTAL} events streamed in ${streamMs} ms; ` +
        `gateway A's clients replayed ${Math.min(...replayed)}..${Math.max(...replayed)} events; ` +
        `proxy A took ${proxies[0].connections} connections`,
    );
  });
});
