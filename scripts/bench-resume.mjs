#!/usr/bin/env node
// Resume benchmark: what a resume costs the server. It starts its own split
// deployment from bin/ (nats-server with JetStream, two gateways, the trigger
// API) on loopback and measures two cases with raw WebSocket clients that
// resume exactly as the JS companion does (positions from the frames, resume
// and socket_ids in the subscribe):
//
//   single  one client misses MISSED events (default 1,000), then resumes on
//           the other gateway: time from the subscribe to herald:resumed and
//           to the last replayed event, server CPU. RUNS times (default 5)
//           "cold" (no one on that gateway follows the channel yet) and as
//           many "warm" (another client there already follows it).
//   herd    CLIENTS clients (default 1,000) on gateway A, one channel; A is
//           killed with SIGKILL; HERD_MISSED events (default 100) are sent;
//           every client reconnects to gateway B at once and resumes: time
//           until all are connected, until all have herald:resumed and every
//           missed event, and server CPU. Then, on the same gateway B and
//           the same clients, LIVE events (default 300) are sent one
//           a request at LIVE_RATE a second (default 100), as the fan-out
//           benchmark does: gateway B's CPU per delivered live frame, and
//           the ratio of its CPU per replayed frame to it. Last, the same
//           clients drop and reconnect to gateway B at once, subscribing with
//           positions but no resume: the resume phase's CPU less this one's
//           is what the replay itself cost. RUNS_HERD times (default 3), a
//           fresh deployment each.
//
// Every client must receive each missed and live event exactly once, in
// order, or the run fails. Output: one line of text per run and a JSON
// summary on stdout.
//
//   node scripts/bench-resume.mjs [single|herd ...]
//
// Environment: BENCH_PORT (first loopback port, default 18180), BENCH_OUT
// (directory for the process logs, default a new one under /tmp), MISSED,
// CLIENTS, HERD_MISSED, LIVE, LIVE_RATE, RUNS, RUNS_HERD, BENCH_BIN (the
// binaries' directory, default bin/: to compare two builds). BENCH_PPROF (a
// loopback port): gateway B serves pprof there (HERALD_PPROF_ADDR), and
// each herd run keeps a CPU profile of its resume phase and of its live
// phase in BENCH_OUT (herdN.resume.pprof, herdN.live.pprof; PPROF_SECONDS
// each, default 8).

import { spawn } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The ws package of the end-to-end suite (npm ci in tests/e2e).
const WebSocket = createRequire(path.join(root, 'tests', 'e2e', 'package.json'))('ws');

const env = process.env;
const basePort = Number(env.BENCH_PORT || 18180);
const binDir = path.resolve(env.BENCH_BIN || path.join(root, 'bin'));
const out = env.BENCH_OUT || fs.mkdtempSync(path.join(os.tmpdir(), 'herald-bench-resume.'));
fs.mkdirSync(out, { recursive: true });
const MISSED = Number(env.MISSED || 1000);
const CLIENTS = Number(env.CLIENTS || 1000);
const HERD_MISSED = Number(env.HERD_MISSED || 100);
const RUNS = Number(env.RUNS || 5);
const RUNS_HERD = Number(env.RUNS_HERD || 3);
const LIVE = Number(env.LIVE || 300);
const LIVE_RATE = Number(env.LIVE_RATE || 100);
const PPROF_PORT = Number(env.BENCH_PPROF || 0);
const PPROF_SECONDS = Number(env.PPROF_SECONDS || 8);
const scenarios = process.argv.slice(2).length ? process.argv.slice(2) : ['single', 'herd'];

const app = { id: 'bench', key: 'bench-key', secret: randomBytes(16).toString('hex') };
const TICK = 1000 / 100; // ms per clock tick of /proc/PID/stat (USER_HZ is 100 on Linux)

// ---- processes ----

const procs = new Set();
process.on('exit', () => {
  for (const p of procs) p.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(130));

function start(name, bin, args, extraEnv) {
  const log = fs.openSync(path.join(out, `${name}.log`), 'a');
  const child = spawn(path.join(binDir, bin), args, {
    stdio: ['ignore', log, log],
    env: {
      PATH: env.PATH,
      HOME: env.HOME,
      REVERB_APP_ID: app.id,
      REVERB_APP_KEY: app.key,
      REVERB_APP_SECRET: app.secret,
      HERALD_LOG_LEVEL: 'warn',
      ...extraEnv,
    },
  });
  fs.closeSync(log);
  procs.add(child);
  child.once('exit', () => procs.delete(child));
  return child;
}

async function until(check, what, timeout = 60_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// ready waits for a service's /ready: /up answers as soon as it listens,
// while its other requests get 503 until it has started.
const ready = (port) => until(async () => (await fetch(`http://127.0.0.1:${port}/ready`)).status === 200, `:${port}/ready`);

// cpu returns the CPU time (ms, user + system) that process pid has used.
function cpu(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK;
}

// writes returns the write system calls (write, writev, sendmsg…) that
// process pid has made: how well its frames were batched.
function writes(pid) {
  return Number(/^syscw: (\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))[1]);
}

// counter returns the value of a counter on a gateway's /metrics, null when
// it has none.
async function counter(port, name) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

// machineBusy returns the CPU time (ms) all CPUs spent not idle since boot,
// so that a run can say how much went to other work.
function machineBusy() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  // user nice system idle iowait irq softirq steal
  return (f.reduce((a, b) => a + b, 0) - f[3] - f[4]) * TICK;
}

// others is the machine's busy CPU time since m0 less what the measured
// processes (and this one, since self0) used.
function others(m0, measured, self0) {
  const self = process.cpuUsage(self0);
  return r1(machineBusy() - m0 - measured - (self.user + self.system) / 1000);
}

async function deployment(tag) {
  const [natsPort, monitor, gwA, gwB, trig] = [0, 1, 2, 3, 4].map((i) => basePort + i);
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-bench-nats.'));
  const nats = start(`${tag}.nats`, 'nats-server', ['-js', '-a', '127.0.0.1', '-p', String(natsPort), '-m', String(monitor), '-sd', store]);
  await until(async () => (await fetch(`http://127.0.0.1:${monitor}/healthz`)).status === 200, 'nats-server');
  const natsEnv = { NATS_URL: `nats://127.0.0.1:${natsPort}` };
  const gateway = (name, port, extra = {}) => {
    const p = start(`${tag}.${name}`, 'gateway', [], { ...natsEnv, REVERB_SERVER_HOST: '127.0.0.1', REVERB_SERVER_PORT: String(port), ...extra });
    return { proc: p, port, url: `ws://127.0.0.1:${port}/app/${app.key}?protocol=7&client=js&version=8.6.0&flash=false` };
  };
  const d = {
    nats,
    a: gateway('gateway-a', gwA),
    b: gateway('gateway-b', gwB, PPROF_PORT ? { HERALD_PPROF_ADDR: `127.0.0.1:${PPROF_PORT}` } : {}),
    trigger: start(`${tag}.trigger`, 'trigger', [], { ...natsEnv, HERALD_TRIGGER_HOST: '127.0.0.1', HERALD_TRIGGER_PORT: String(trig) }),
    api: `http://127.0.0.1:${trig}`,
  };
  await Promise.all([ready(gwA), ready(gwB), ready(trig)]);
  d.stop = async () => {
    const all = [d.a.proc, d.b.proc, d.trigger, d.nats];
    for (const p of all) p.kill('SIGTERM');
    await Promise.all(all.map((p) => (p.exitCode !== null || p.signalCode ? null : new Promise((r) => p.once('exit', r)))));
    fs.rmSync(store, { recursive: true, force: true });
  };
  return d;
}

// ---- HTTP API ----

async function batch(api, events) {
  const body = JSON.stringify({ batch: events });
  const p = `/apps/${app.id}/batch_events`;
  const q = {
    auth_key: app.key,
    auth_timestamp: String(Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
    body_md5: createHash('md5').update(body).digest('hex'),
  };
  const qs = Object.keys(q)
    .sort()
    .map((k) => `${k}=${q[k]}`)
    .join('&');
  const sig = createHmac('sha256', app.secret).update(`POST\n${p}\n${qs}`).digest('hex');
  const res = await fetch(`${api}${p}?${qs}&auth_signature=${sig}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  if (res.status !== 200) throw new Error(`batch_events: ${res.status} ${await res.text()}`);
}

// publish sends ticks from..to on channel, ten per request, one request
// after the other so that they are stored in that order.
async function publish(api, channel, from, to) {
  for (let n = from; n <= to; n += 10) {
    const events = [];
    for (let k = n; k <= Math.min(to, n + 9); k++) events.push({ channel, name: 'tick', data: JSON.stringify({ n: k }) });
    await batch(api, events);
  }
}

// publishPaced sends ticks from..to on channel, one a request at rate a
// second (as loadgen's fan-out does), each request after the previous one
// answered so that they are stored in that order.
async function publishPaced(api, channel, from, to, rate) {
  const t0 = performance.now();
  for (let n = from; n <= to; n++) {
    const due = t0 + ((n - from) * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    await batch(api, [{ channel, name: 'tick', data: JSON.stringify({ n }) }]);
  }
}

// profile starts a CPU profile of gateway B (BENCH_PPROF) into file and
// returns a promise of its end; without BENCH_PPROF it does nothing.
function profile(file) {
  if (!PPROF_PORT) return Promise.resolve();
  return fetch(`http://127.0.0.1:${PPROF_PORT}/debug/pprof/profile?seconds=${PPROF_SECONDS}`)
    .then(async (res) => fs.writeFileSync(file, Buffer.from(await res.arrayBuffer())))
    .catch((err) => console.error(`profile ${file}: ${err.message}`));
}

// ---- clients ----

// Client is a raw WebSocket client that follows one channel as the companion
// does: it subscribes with positions, keeps the last position, and resumes
// from it with the socket ids it held.
class Client {
  constructor(channel) {
    this.channel = channel;
    this.position = null;
    this.socketIds = [];
    this.ticks = [];
  }

  connect(url) {
    this.resumed = null;
    this.failed = null;
    this.subscribed = false;
    this.ws = new WebSocket(url);
    this.ws.on('error', () => {});
    this.established = new Promise((resolve, reject) => {
      this.ws.once('close', () => reject(new Error('closed before connection_established')));
      this.ws.on('message', (buf) => {
        const f = JSON.parse(buf.toString());
        if (f.event === 'pusher:connection_established') {
          this.socketIds.push(JSON.parse(f.data).socket_id);
          this.establishedAt = performance.now();
          resolve();
          return;
        }
        if (f.channel !== this.channel) return;
        switch (f.event) {
          case 'pusher_internal:subscription_succeeded':
            this.subscribed = true;
            this.position = JSON.parse(f.data).position ?? this.position;
            return;
          case 'herald:resumed':
            this.resumed = JSON.parse(f.data);
            this.resumedAt = performance.now();
            this.position = this.resumed.position;
            return;
          case 'herald:resume_failed':
            this.failed = JSON.parse(f.data);
            return;
          case 'tick':
            this.ticks.push(JSON.parse(f.data).n);
            this.lastAt = performance.now();
            if (f.position) this.position = f.position;
        }
      });
    });
    return this.established;
  }

  subscribe() {
    const data = { channel: this.channel, positions: true };
    if (this.position) {
      data.resume = this.position;
      const others = this.socketIds.slice(0, -1).slice(-16);
      if (others.length) data.socket_ids = others;
    }
    this.subscribeAt = performance.now();
    this.ws.send(JSON.stringify({ event: 'pusher:subscribe', data }));
  }

  drop() {
    this.ws.terminate();
  }
}

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function check(clients, from, to) {
  const want = range(from, to).join(',');
  const bad = clients.filter((c) => c.failed || c.ticks.join(',') !== want);
  if (bad.length) {
    const c = bad[0];
    throw new Error(`${bad.length} client(s) did not get ${from}..${to} exactly once in order; first: failed=${JSON.stringify(c.failed)} got ${c.ticks.length}: ${c.ticks.slice(0, 20)}…`);
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const r1 = (x) => Math.round(x * 10) / 10;
const r2 = (x) => Math.round(x * 100) / 100;

// resumeOnce makes one client miss MISSED events on a new channel and resume
// on gateway B. warm: another client already follows the channel on B, so B
// follows it before the resume and only the replay is measured.
async function resumeOnce(d, channel, warm) {
  let watcher = null;
  if (warm) {
    watcher = new Client(channel);
    await watcher.connect(d.b.url);
    watcher.subscribe();
    await until(() => watcher.subscribed, 'the watcher');
  }
  const c = new Client(channel);
  await c.connect(d.a.url);
  c.subscribe();
  await until(() => c.subscribed, 'subscription');
  await publish(d.api, channel, 0, 0);
  await until(() => c.ticks.length === 1, 'first event');
  c.drop();
  await publish(d.api, channel, 1, MISSED);
  if (watcher) await until(() => watcher.ticks.length === MISSED + 1, 'the watcher to get every event');
  c.ticks = [];
  await sleep(500); // let the machine settle after publishing
  const cpu0 = { gw: cpu(d.b.proc.pid), nats: cpu(d.nats.pid), machine: machineBusy(), self: process.cpuUsage() };
  const t0 = performance.now();
  await c.connect(d.b.url);
  c.subscribe();
  await until(() => c.resumed && c.ticks.length >= MISSED, 'the resume', 30_000);
  const t1 = performance.now();
  await sleep(200); // CPU time is counted in ticks; let the last ones land
  const cpu1 = { gw: cpu(d.b.proc.pid), nats: cpu(d.nats.pid) };
  const othersMs = others(cpu0.machine, cpu1.gw - cpu0.gw + cpu1.nats - cpu0.nats, cpu0.self);
  check([c], 1, MISSED);
  if (c.resumed.replayed !== MISSED) throw new Error(`replayed ${c.resumed.replayed}, want ${MISSED}`);
  c.drop();
  watcher?.drop();
  return {
    connectMs: r1(c.establishedAt - t0),
    subscribeToResumedMs: r1(c.resumedAt - c.subscribeAt),
    subscribeToLastEventMs: r1(c.lastAt - c.subscribeAt),
    totalMs: r1(t1 - t0),
    gatewayCpuMs: r1(cpu1.gw - cpu0.gw),
    natsCpuMs: r1(cpu1.nats - cpu0.nats),
    othersCpuMs: othersMs,
  };
}

async function single() {
  const d = await deployment('single');
  const cold = [];
  const warm = [];
  try {
    for (let run = 1; run <= RUNS; run++) {
      for (const [list, isWarm] of [[cold, false], [warm, true]]) {
        const r = await resumeOnce(d, `resume-single-${isWarm ? 'warm' : 'cold'}-${run}`, isWarm);
        list.push(r);
        console.error(`single ${isWarm ? 'warm' : 'cold'} run ${run}: ${MISSED} events, ${JSON.stringify(r)}`);
      }
    }
  } finally {
    await d.stop();
  }
  return [summarize('single-cold', { missed: MISSED }, cold), summarize('single-warm', { missed: MISSED }, warm)];
}

async function herd() {
  const runs = [];
  for (let run = 1; run <= RUNS_HERD; run++) {
    const d = await deployment(`herd${run}`);
    try {
      const channel = `resume-herd-${run}`;
      const clients = Array.from({ length: CLIENTS }, () => new Client(channel));
      // Connect 100 at a time, as a load balancer spreads a crowd.
      for (let i = 0; i < CLIENTS; i += 100) {
        await Promise.all(clients.slice(i, i + 100).map((c) => c.connect(d.a.url).then(() => c.subscribe())));
      }
      await until(() => clients.every((c) => c.subscribed), 'all subscriptions');
      await publish(d.api, channel, 0, 9);
      await until(() => clients.every((c) => c.ticks.length === 10), 'the first 10 events on every client');
      d.a.proc.kill('SIGKILL');
      await new Promise((r) => (d.a.proc.exitCode !== null || d.a.proc.signalCode ? r() : d.a.proc.once('exit', r)));
      await publish(d.api, channel, 10, 9 + HERD_MISSED);
      for (const c of clients) c.ticks = [];
      await sleep(1000); // let the machine settle after publishing
      const resumeProfile = profile(path.join(out, `herd${run}.resume.pprof`));
      const cpu0 = { gw: cpu(d.b.proc.pid), nats: cpu(d.nats.pid), machine: machineBusy(), self: process.cpuUsage(), writes: writes(d.b.proc.pid) };
      const t0 = performance.now();
      // Every client at once, each subscribing as soon as it is connected.
      await Promise.all(clients.map((c) => c.connect(d.b.url).then(() => c.subscribe())));
      const tConnected = performance.now();
      await until(() => clients.every((c) => c.resumed && c.ticks.length >= HERD_MISSED), 'every resume', 120_000);
      const t1 = performance.now();
      await sleep(200);
      const self = process.cpuUsage(cpu0.self);
      const cpu1 = { gw: cpu(d.b.proc.pid), nats: cpu(d.nats.pid), writes: writes(d.b.proc.pid) };
      const othersMs = others(cpu0.machine, cpu1.gw - cpu0.gw + cpu1.nats - cpu0.nats, cpu0.self);
      check(clients, 10, 9 + HERD_MISSED);
      await resumeProfile;
      const resumeReads = await counter(d.b.port, 'herald_gateway_resume_reads_total');

      // Live: the same clients on the same gateway, LIVE events at LIVE_RATE.
      const first = 10 + HERD_MISSED;
      const last = first + LIVE - 1;
      await sleep(1000);
      const liveProfile = profile(path.join(out, `herd${run}.live.pprof`));
      const live0 = { gw: cpu(d.b.proc.pid), nats: cpu(d.nats.pid), machine: machineBusy(), self: process.cpuUsage(), writes: writes(d.b.proc.pid) };
      const tl0 = performance.now();
      await publishPaced(d.api, channel, first, last, LIVE_RATE);
      await until(() => clients.every((c) => c.ticks.length >= HERD_MISSED + LIVE), 'every live event', 120_000);
      const tl1 = performance.now();
      await sleep(200);
      const live1 = { gw: cpu(d.b.proc.pid), nats: cpu(d.nats.pid), writes: writes(d.b.proc.pid) };
      const liveOthersMs = others(live0.machine, live1.gw - live0.gw + live1.nats - live0.nats, live0.self);
      check(clients, 10, last);
      await liveProfile;

      const allResumedMs = r1(Math.max(...clients.map((c) => c.resumedAt)) - t0);
      const medianSubscribeToResumedMs = r1(median(clients.map((c) => c.resumedAt - c.subscribeAt)));

      // Reconnect: the same clients drop and dial gateway B again at once,
      // subscribing with positions but no resume: what connecting and
      // subscribing cost in the resume phase, without the replay.
      for (const c of clients) c.drop();
      await sleep(1000);
      for (const c of clients) c.position = null;
      const rc0 = { gw: cpu(d.b.proc.pid) };
      await Promise.all(clients.map((c) => c.connect(d.b.url).then(() => c.subscribe())));
      await until(() => clients.every((c) => c.subscribed), 'every subscription', 120_000);
      await sleep(200);
      const rc1 = { gw: cpu(d.b.proc.pid) };

      const gwReplayUs = ((cpu1.gw - cpu0.gw) * 1000) / (CLIENTS * HERD_MISSED);
      const gwLiveUs = ((live1.gw - live0.gw) * 1000) / (CLIENTS * LIVE);
      const r = {
        allConnectedMs: r1(tConnected - t0),
        allResumedMs,
        allEventsMs: r1(t1 - t0),
        medianSubscribeToResumedMs,
        gatewayCpuMs: r1(cpu1.gw - cpu0.gw),
        natsCpuMs: r1(cpu1.nats - cpu0.nats),
        clientCpuMs: r1((self.user + self.system) / 1000),
        othersCpuMs: othersMs,
        gatewayWrites: cpu1.writes - cpu0.writes,
        resumeReads, // history reads for the CLIENTS resumes
        liveMs: r1(tl1 - tl0),
        liveGatewayCpuMs: r1(live1.gw - live0.gw),
        liveNatsCpuMs: r1(live1.nats - live0.nats),
        liveOthersCpuMs: liveOthersMs,
        liveGatewayWrites: live1.writes - live0.writes,
        gatewayUsPerReplayedFrame: r2(gwReplayUs),
        gatewayUsPerLiveFrame: r2(gwLiveUs),
        // null when the live phase was too short to show in 10 ms ticks
        replayToLive: gwLiveUs > 0 ? r2(gwReplayUs / gwLiveUs) : null,
        reconnectGatewayCpuMs: r1(rc1.gw - rc0.gw),
        // the resume phase's CPU less the reconnect's, per replayed frame
        gatewayUsPerReplayedFrameLessConnect: r2(((cpu1.gw - cpu0.gw - (rc1.gw - rc0.gw)) * 1000) / (CLIENTS * HERD_MISSED)),
      };
      runs.push(r);
      console.error(`herd run ${run}: ${CLIENTS} clients × ${HERD_MISSED} events, ${JSON.stringify(r)}`);
      console.error(
        `herd run ${run}: gateway CPU per replayed frame ${r.gatewayUsPerReplayedFrame} µs (${r.gatewayUsPerReplayedFrameLessConnect} µs less the reconnect's), per live frame ${r.gatewayUsPerLiveFrame} µs: ${r.replayToLive ?? 'n/a'}× live`,
      );
      for (const c of clients) c.drop();
    } finally {
      await d.stop();
    }
  }
  const ratios = runs.map((r) => r.replayToLive).filter((x) => x !== null);
  if (ratios.length) {
    console.error(
      `herd: gateway CPU per replayed frame / per live frame, median ${median(ratios)}× (${Math.min(...ratios)}–${Math.max(...ratios)} over ${ratios.length} runs)`,
    );
  }
  return summarize('herd', { clients: CLIENTS, missed: HERD_MISSED, live: LIVE, liveRate: LIVE_RATE }, runs);
}

function summarize(name, params, runs) {
  const keys = Object.keys(runs[0] ?? {});
  const med = Object.fromEntries(keys.map((k) => [k, median(runs.map((r) => r[k]))]));
  return { name, ...params, runs, median: med };
}

const results = [];
for (const s of scenarios) {
  if (s === 'single') results.push(...(await single()));
  else if (s === 'herd') results.push(await herd());
  else throw new Error(`unknown scenario ${s} (single, herd)`);
}
console.log(JSON.stringify({ logs: out, results }, null, 2));
