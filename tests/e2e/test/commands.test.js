// The commands in the binaries, as an operator runs them: `herald send`
// publishes through the HTTP API to a pusher-js client, and `health` answers
// from the process's /ready.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

import { connectPusher, record, subscribe } from '../lib/clients.js';
import { useTopology } from '../lib/suite.js';
import { BIN_DIR, TOPOLOGIES } from '../lib/topology.js';
import { randomId } from '../lib/wait.js';

const run = promisify(execFile);

// command runs a binary with only the given environment and returns its exit
// code and output.
async function command(bin, args, env) {
  try {
    const { stdout, stderr } = await run(path.join(BIN_DIR, bin), args, { env: { PATH: process.env.PATH, ...env }, timeout: 15_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    if (typeof err.code !== 'number') throw err;
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

for (const kind of TOPOLOGIES) {
  describe(`commands [${kind}]`, () => {
    const ctx = useTopology(kind, { label: 'commands' });

    it('herald send reaches a pusher-js subscriber', async () => {
      const client = await connectPusher(ctx.topo, 0);
      const name = `orders-${randomId()}`;
      const got = record(await subscribe(client, name), 'order.shipped');
      const res = await command('herald', ['send', name, 'order.shipped', '{"id":42}'], {
        HERALD_URL: ctx.topo.httpURL(''),
        REVERB_APP_ID: ctx.topo.app.id,
        REVERB_APP_KEY: ctx.topo.app.key,
        REVERB_APP_SECRET: ctx.topo.app.secret,
      });
      assert.equal(res.code, 0, `send: ${res.stdout} ${res.stderr}`);
      assert.match(res.stdout, /^200 /);
      const [data] = await got.waitCount(1);
      assert.deepEqual(data, { id: 42 });
    });

    it('herald send exits 1 with the API error for a wrong secret', async () => {
      const res = await command('herald', ['send', 'orders', 'x', '{}'], {
        HERALD_URL: ctx.topo.httpURL(''),
        REVERB_APP_ID: ctx.topo.app.id,
        REVERB_APP_KEY: ctx.topo.app.key,
        REVERB_APP_SECRET: 'not-the-secret-0123456789',
      });
      assert.equal(res.code, 1);
      assert.match(res.stdout, /^401 /);
    });

    it('health exits 0 against a ready process, 1 where nothing listens', async () => {
      const [bin, portVar] = kind === 'herald' ? ['herald', 'REVERB_SERVER_PORT'] : ['trigger', 'HERALD_TRIGGER_PORT'];
      const env = { NATS_URL: 'nats://127.0.0.1:1', [portVar]: String(ctx.topo.http.port), HERALD_DATA_DIR: ctx.topo.dataDir };
      const ok = await command(bin, ['health'], env);
      assert.equal(ok.code, 0, `health: ${ok.stdout} ${ok.stderr}`);
      const down = await command(bin, ['health'], { ...env, [portVar]: '1' });
      assert.equal(down.code, 1);
    });
  });
}
