// The docker-compose topology as processes, every one started at the same
// moment: a 3-node NATS cluster (deploy/nats/cluster.conf, streams at R3),
// three gateways, two trigger APIs, two presence services, and Debian's
// nginx running deploy/nginx/split.conf.template, rendered with the
// addresses here. dnsmasq stands for Docker's DNS: it names `gateway` and
// `trigger` with one loopback address per instance (127.0.0.2, .3, …, all on
// one port), and reads its hosts folder again when a file changes, as
// Docker's DNS follows the containers.
//
// pusher-js clients with the JS companion, and Laravel Echo, connect through
// nginx; events go through nginx to the trigger APIs with the pusher SDK, a
// steady stream while: each NATS node in turn (the stream leader first) is
// SIGKILLed and started again; a fourth gateway is added and nginx sends it
// clients without a restart; a gateway is drained with SIGTERM and its
// clients resume on the others. No HTTP request may fail, and every client
// must end with every event once, in order.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Echo from 'laravel-echo';
import PusherServer from 'pusher';

import { attach } from '../../../services/gateway/web/herald-replay/src/index.js';
import { pusherClient, subscribeTicks } from '../lib/clients.js';
import { pending } from '../lib/pending.js';
import { BIN_DIR, E2E_DIR, Proc, REPO_ROOT, SDK_TIMEOUT, freePort } from '../lib/topology.js';
import { randomId, waitFor } from '../lib/wait.js';

const NGINX = ['/usr/sbin/nginx', '/usr/local/sbin/nginx'].find((p) => fs.existsSync(p));
const DNSMASQ = ['/usr/sbin/dnsmasq', '/usr/local/sbin/dnsmasq'].find((p) => fs.existsSync(p));

const CLIENTS = 30;
const RATE = 100; // events per second
const BATCH = 5; // events per request

// The services wait for NATS and answer /ready (and `version`) once the
// common start path is in; before it they exit when started with NATS, and
// this file is skipped.
function contractMissing() {
  const bin = path.join(BIN_DIR, 'gateway');
  if (!fs.existsSync(bin)) return 'bin/gateway is not built';
  const r = spawnSync(bin, ['version'], { env: { PATH: process.env.PATH }, timeout: 5000 });
  return r.status === 0 ? null : 'the services do not have `version`, /ready and the wait for NATS yet';
}

function skipReason() {
  const missing = contractMissing();
  if (missing) return missing;
  if (!NGINX || !DNSMASQ) {
    const what = `needs Debian's nginx and dnsmasq (.ci/run installs them)`;
    if (process.env.CI) throw new Error(what);
    return what;
  }
  return false;
}

const opts = { skip: skipReason() };

// env gives a child only what it needs.
function env(extra) {
  const e = {};
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'GOCOVERDIR']) {
    if (process.env[k] !== undefined) e[k] = process.env[k];
  }
  return { ...e, ...extra };
}

// renderTemplate fills ${NAME} as envsubst does in the nginx image, and
// fails if the template uses a name not given.
function renderTemplate(text, values) {
  return text.replace(/\$\{([A-Z_]+)\}/g, (_, name) => {
    if (!(name in values)) throw new Error(`the nginx template uses \${${name}}, which the test does not set`);
    return values[name];
  });
}

async function httpOK(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
  await res.arrayBuffer();
  return res.status === 200;
}

describe('compose topology as processes: NATS cluster, nginx, scaled services', opts, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-deploy-'));
  const logDir = path.join(E2E_DIR, '.tmp', 'logs', `deploy-${randomId(4)}`);
  const procs = new Map();
  const app = { id: `deploy-${randomId(6)}`, key: `key${randomId(17)}`, secret: randomId(32) };
  const gatewayIPs = { 'gateway-a': '127.0.0.2', 'gateway-b': '127.0.0.3', 'gateway-c': '127.0.0.4', 'gateway-d': '127.0.0.7' };
  const triggerIPs = { 'trigger-a': '127.0.0.5', 'trigger-b': '127.0.0.6' };
  const nats = {}; // name -> {client, monitor, cluster}
  let gwPort;
  let trPort;
  let nginxPort;
  let natsURL;
  let appsFile;
  let accessLog;
  const stops = [];
  let passed = false;
  let received = null; // every client's events, once the run passed
  let summarize = null;

  const start = (name, cmd, args, extra) => {
    const p = new Proc(name, cmd, args, env(extra), path.join(logDir, `${name}.log`)).start();
    procs.set(name, p);
    return p;
  };
  const hostsFile = (names) => {
    const lines = names.map((n) => `${gatewayIPs[n] ?? triggerIPs[n]} ${n.replace(/-[a-z]$/, '')}`);
    // Written beside the folder, then moved in: dnsmasq reads whole files.
    const tmp = path.join(dir, `hosts-${randomId(4)}`);
    fs.writeFileSync(tmp, lines.join('\n') + '\n');
    fs.renameSync(tmp, path.join(dir, 'hosts.d', 'herald'));
  };
  const startNATS = (name) => {
    const n = nats[name];
    return start(name, path.join(BIN_DIR, 'nats-server'), ['-c', path.join(REPO_ROOT, 'deploy', 'nats', 'cluster.conf')], {
      NATS_SERVER_NAME: name,
      NATS_LISTEN: `127.0.0.1:${n.client}`,
      NATS_HTTP: `127.0.0.1:${n.monitor}`,
      NATS_CLUSTER_LISTEN: `127.0.0.1:${n.cluster}`,
      NATS_ROUTES: `[${Object.values(nats).map((o) => `nats://127.0.0.1:${o.cluster}`).join(', ')}]`,
      NATS_STORE_DIR: path.join(dir, name),
    });
  };
  const common = () => ({
    NATS_URL: natsURL,
    HERALD_STREAM_REPLICAS: '3',
    HERALD_APPS_FILE: appsFile,
    HERALD_GATEWAY_TTL: '3s',
    HERALD_LOG_LEVEL: process.env.HERALD_E2E_LOG_LEVEL || 'info',
  });
  const startGateway = (name) =>
    start(name, path.join(BIN_DIR, 'gateway'), [], { ...common(), REVERB_SERVER_HOST: gatewayIPs[name], REVERB_SERVER_PORT: String(gwPort) });
  const gatewayReady = (name) => httpOK(`http://${gatewayIPs[name]}:${gwPort}/ready`);
  // gatewayConnections sums the gateway's open connections gauge.
  const gatewayConnections = async (name) => {
    const res = await fetch(`http://${gatewayIPs[name]}:${gwPort}/metrics`);
    const text = await res.text();
    let n = 0;
    for (const m of text.matchAll(/^herald_gateway_connections(?:\{[^}]*\})? (\S+)$/gm)) n += Number(m[1]);
    return n;
  };

  // The upstream addresses nginx used for /app/ requests, from its log.
  const upstreams = () => {
    try {
      return fs
        .readFileSync(accessLog, 'utf8')
        .split('\n')
        .filter((l) => l.includes(' /app/'))
        .map((l) => l.split(' ').slice(2).join(' '));
    } catch {
      return [];
    }
  };

  before(async () => {
    fs.mkdirSync(path.join(dir, 'hosts.d'), { recursive: true });
    appsFile = path.join(dir, 'apps.json');
    fs.writeFileSync(appsFile, JSON.stringify({ apps: [{ ...app, replay_max_events: 10_000 }] }));
    [gwPort, trPort, nginxPort] = [await freePort(), await freePort(), await freePort()];
    const dnsPort = await freePort();
    for (const name of ['nats-1', 'nats-2', 'nats-3']) {
      nats[name] = { client: await freePort(), monitor: await freePort(), cluster: await freePort() };
    }
    natsURL = Object.values(nats)
      .map((n) => `nats://127.0.0.1:${n.client}`)
      .join(',');
    hostsFile(['gateway-a', 'gateway-b', 'gateway-c', 'trigger-a', 'trigger-b']);

    // nginx's configuration: the container's template, rendered.
    const template = fs.readFileSync(path.join(REPO_ROOT, 'deploy', 'nginx', 'split.conf.template'), 'utf8');
    fs.writeFileSync(
      path.join(dir, 'site.conf'),
      renderTemplate(template, {
        NGINX_HERALD_LISTEN: `127.0.0.1:${nginxPort}`,
        NGINX_HERALD_RESOLVER: `127.0.0.1:${dnsPort}`,
        NGINX_HERALD_GATEWAYS: `gateway:${gwPort}`,
        NGINX_HERALD_TRIGGERS: `trigger:${trPort}`,
      }),
    );
    accessLog = path.join(dir, 'access.log');
    fs.writeFileSync(
      path.join(dir, 'nginx.conf'),
      `daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 4096; }
http {
    log_format upstream '$status $request_uri $upstream_addr';
    access_log ${accessLog} upstream;
    client_body_temp_path ${dir}/body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    include ${dir}/site.conf;
}
`,
    );

    // Everything at once, as compose, Kubernetes and systemd start it.
    const dnsArgs = [
      '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--pid-file=',
      '--listen-address=127.0.0.1', '--bind-interfaces', `--port=${dnsPort}`, `--hostsdir=${path.join(dir, 'hosts.d')}`,
      '--log-facility=-',
    ];
    if (process.getuid?.() === 0) dnsArgs.push('--user=root');
    start('dnsmasq', DNSMASQ, dnsArgs, {});
    start('nginx', NGINX, ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', path.join(dir, 'nginx.conf')], {});
    for (const name of Object.keys(nats)) startNATS(name);
    for (const name of ['gateway-a', 'gateway-b', 'gateway-c']) startGateway(name);
    for (const [name, ip] of Object.entries(triggerIPs)) {
      start(name, path.join(BIN_DIR, 'trigger'), [], { ...common(), HERALD_TRIGGER_HOST: ip, HERALD_TRIGGER_PORT: String(trPort) });
    }
    const presencePorts = [await freePort(), await freePort()];
    presencePorts.forEach((port, i) =>
      start(`presence-${i + 1}`, path.join(BIN_DIR, 'presence'), [], {
        ...common(),
        HERALD_PRESENCE_HOST: '127.0.0.1',
        HERALD_PRESENCE_PORT: String(port),
      }),
    );

    const ready = [
      ...Object.entries(nats).map(([name, n]) => [name, `http://127.0.0.1:${n.monitor}/healthz`]),
      ...['gateway-a', 'gateway-b', 'gateway-c'].map((n) => [n, `http://${gatewayIPs[n]}:${gwPort}/ready`]),
      ...Object.entries(triggerIPs).map(([n, ip]) => [n, `http://${ip}:${trPort}/ready`]),
      ...presencePorts.map((port, i) => [`presence-${i + 1}`, `http://127.0.0.1:${port}/ready`]),
      ['nginx', `http://127.0.0.1:${nginxPort}/nginx-up`],
    ];
    await Promise.all(
      ready.map(([name, url]) =>
        waitFor(
          async () => {
            const p = procs.get(name);
            if (p.exit) throw new Error(`${name} ${p.describeExit()}:\n${p.tail(20)}`);
            return httpOK(url);
          },
          { timeout: 60_000, interval: 100, what: `${name} to answer 200 on ${url}` },
        ),
      ),
    );
  });

  after(async () => {
    for (const fn of stops.reverse()) {
      try {
        await fn();
      } catch {
        // already gone
      }
    }
    const services = [...procs.values()].filter((p) => !p.name.startsWith('nats-'));
    await Promise.all(services.map((p) => p.stop()));
    await Promise.all([...procs.values()].map((p) => p.stop()));
    const crashed = [...procs.values()].filter((p) => p.crashed);
    // nginx's logs and the rest stay for a look when the test failed.
    if (passed) fs.rmSync(dir, { recursive: true, force: true });
    else console.log(`# deploy: nginx's configuration and logs are in ${dir}`);
    if (crashed.length > 0) {
      throw new Error(crashed.map((p) => `${p.name} ${p.describeExit()} during the test\n${p.tail()}`).join('\n'));
    }
  });

  it('serves through nginx while NATS nodes die, a gateway joins and one drains', async () => {
    const ep = { host: '127.0.0.1', port: nginxPort, name: 'nginx' };
    const sdk = new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', port: String(nginxPort), useTLS: false, timeout: SDK_TIMEOUT });
    const topo = { app, ws: [ep], sdk: () => sdk, onStop: (fn) => stops.push(fn) };
    const channel = `deploy-${randomId()}`;

    // pusher-js clients with the companion, and one Echo page, as a Laravel
    // front end sets them up.
    const clients = [];
    for (let i = 0; i < CLIENTS; i++) {
      const c = pusherClient(topo, 0, { sdk });
      attach(c);
      clients.push(c);
    }
    const echoClient = pusherClient(topo, 0, { sdk });
    const echo = new Echo({ broadcaster: 'reverb', key: app.key, wsHost: ep.host, wsPort: ep.port, forceTLS: false, enabledTransports: ['ws'], client: echoClient });
    attach(echo.connector.pusher);
    await subscribeTicks(clients, channel, 30_000);
    const echoGot = [];
    echo.channel(channel).listen('.tick', (d) => echoGot.push(d.n));
    await waitFor(() => echoClient.channel(channel)?.subscribed, { timeout: 30_000, what: 'Echo to subscribe' });

    // probe connects one more client through nginx and disconnects it; it
    // resolves with the gateway nginx chose (from nginx's log, written when
    // the connection closes).
    const probe = async () => {
      const before = upstreams().length;
      const p = pusherClient(topo, 0, { sdk });
      await waitFor(() => p.connection.state === 'connected', { timeout: 30_000, what: 'a probe to connect through nginx' });
      p.disconnect();
      return waitFor(() => upstreams().slice(before).at(-1), { timeout: 30_000, what: "nginx's log line of the probe" });
    };
    // nginx spreads new connections over the gateways it resolved.
    const spread = new Set();
    await waitFor(
      async () => {
        spread.add((await probe()).split(':')[0]);
        return spread.size >= 3;
      },
      { timeout: 60_000, interval: 0, what: 'nginx to send probes to each of the three gateways', seen: () => [...spread] },
    );

    // The stream: batches paced to RATE until stopped; every request must
    // succeed.
    let sent = 0;
    let stop = false;
    const failures = [];
    const streaming = (async () => {
      const t0 = Date.now();
      while (!stop) {
        const due = Math.floor(((Date.now() - t0) / 1000) * RATE);
        if (sent >= due) {
          await sleep(5);
          continue;
        }
        const batch = [];
        for (let k = 0; k < BATCH; k++) batch.push({ channel, name: 'tick', data: JSON.stringify({ n: sent + k }) });
        try {
          await sdk.triggerBatch(batch);
        } catch (err) {
          // The SDK's "Request failed with an error" carries the cause in
          // err.error (a refused or reset connection, or its own timeout).
          const why = err.body ?? `${err.message}${err.error ? `: ${err.error.name} ${err.error.message}` : ''}`;
          failures.push(`events ${sent}..${sent + BATCH - 1}: ${err.status ?? ''} ${why}`);
        }
        sent += BATCH;
      }
    })();
    const afterMore = (n) => {
      const target = sent + n;
      // A request that meets an election may take the trigger's whole
      // retry budget (HERALD_PUBLISH_RETRY_FOR) on a loaded machine.
      return waitFor(() => sent >= target, { timeout: SDK_TIMEOUT + 30_000, what: `${n} more events sent` });
    };

    try {
      // Each NATS node in turn, the leader of the app's stream first.
      const jsz = await (await fetch(`http://127.0.0.1:${nats['nats-1'].monitor}/jsz?streams=true&accounts=true`)).json();
      const streams = (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []);
      const leader = streams.find((s) => s.name.includes(app.id))?.cluster?.leader;
      assert.ok(leader in nats, `the app's stream has a leader among the nodes (${leader}); streams: ${streams.map((s) => s.name)}`);
      const order = [leader, ...Object.keys(nats).filter((n) => n !== leader)];
      for (const name of order) {
        await afterMore(50);
        procs.get(name).signal('SIGKILL');
        await procs.get(name).exited;
        await afterMore(100);
        startNATS(name);
        await waitFor(() => httpOK(`http://127.0.0.1:${nats[name].monitor}/healthz`), {
          timeout: 30_000,
          what: `${name} back and current`,
        });
      }

      // A gateway added while running gets clients, nginx untouched.
      hostsFile(['gateway-a', 'gateway-b', 'gateway-c', 'gateway-d', 'trigger-a', 'trigger-b']);
      startGateway('gateway-d');
      await waitFor(() => gatewayReady('gateway-d'), { timeout: 30_000, what: 'gateway-d ready' });
      await waitFor(async () => (await probe()).includes(`${gatewayIPs['gateway-d']}:`), {
        timeout: 60_000,
        interval: 0,
        what: 'nginx to send a client to the added gateway',
        seen: () => upstreams().slice(-10),
      });

      // A gateway drained under load: its clients go to the others.
      // nginx may have put most clients on one gateway (a burst waiting on
      // one DNS answer goes to its first address): drain the busiest one, so
      // that clients certainly move.
      await afterMore(50);
      const counts = {};
      for (const name of ['gateway-a', 'gateway-b', 'gateway-c', 'gateway-d']) {
        counts[name] = await gatewayConnections(name);
      }
      const busiest = Object.keys(counts).reduce((a, b) => (counts[b] > counts[a] ? b : a));
      assert.ok(counts[busiest] > 0, `a gateway holds clients: ${JSON.stringify(counts)}`);
      const drained = procs.get(busiest);
      const resumedBefore = clients.reduce((s, c) => s + c.resumed.length, 0);
      drained.signal('SIGTERM');
      const exit = await drained.exited;
      assert.equal(exit.code, 0, `${busiest} stopped gracefully:\n${drained.tail()}`);
      await afterMore(100);
      await waitFor(() => clients.every((c) => c.connection.state === 'connected'), {
        timeout: 30_000,
        what: 'every client connected again',
        seen: () => clients.map((c) => c.connection.state),
      });
      const resumed = clients.reduce((s, c) => s + c.resumed.length, 0) - resumedBefore;
      assert.ok(resumed > 0, 'the clients of the drained gateway resumed elsewhere');
    } finally {
      stop = true;
      await streaming;
    }

    assert.deepEqual(failures, [], 'no HTTP request failed');
    const expected = Array.from({ length: sent }, (_, n) => n);
    await waitFor(() => clients.every((c) => c.got.length >= sent) && echoGot.length >= sent, {
      timeout: 30_000,
      what: `every client to receive ${sent} events`,
      seen: () => ({ min: Math.min(...clients.map((c) => c.got.length)), echo: echoGot.length }),
    });
    // What went wrong, in a line, when a client's events are not 0..sent-1.
    const summary = (got) => {
      const seen = new Set(got);
      const lost = expected.filter((n) => !seen.has(n));
      const doubled = got.length - seen.size;
      const firstBad = got.findIndex((n, i) => n !== i);
      return `${got.length} events, ${lost.length} lost (${lost.slice(0, 10)}), ${doubled} doubled, first out of place at ${firstBad}: ${got.slice(Math.max(0, firstBad - 3), firstBad + 5)}`;
    };
    const onceEach = (got) => got.length === sent && new Set(got).size === sent && got.every((n) => n >= 0 && n < sent);
    for (const [i, c] of clients.entries()) {
      assert.deepEqual(c.failed, [], `client ${i} got herald:resume_failed`);
      assert.ok(onceEach(c.got), `client ${i}: ${summary(c.got)}`);
    }
    assert.ok(onceEach(echoGot), `Echo: ${summary(echoGot)}`);
    received = [...clients.map((c) => c.got), echoGot];
    summarize = summary;
    const byGateway = {};
    for (const u of upstreams()) byGateway[u.split(':')[0]] = (byGateway[u.split(':')[0]] ?? 0) + 1;
    passed = true;
    console.log(`# deploy: ${sent} events to ${CLIENTS + 1} clients through nginx; /app/ requests per gateway ${JSON.stringify(byGateway)}`);
  });

  // Order within one request: the events of a batch must arrive in the order
  // of the batch, also when the request met a stream leader election.
  it('every client got the events in the order they were sent', () => {
    assert.ok(received, 'the run above finished');
    for (const [i, got] of received.entries()) {
      assert.ok(got.every((n, k) => n === k), `client ${i}: ${summarize(got)}`);
    }
  });
});
