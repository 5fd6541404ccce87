// Topologies of real Herald processes on loopback: "herald" (one all-in-one
// process with embedded NATS), "split" (nats-server, two gateways, one
// trigger API and, when built, the presence service, all on that NATS) and
// "presence" (nats-server, the presence service, three gateways and the
// trigger API, for global presence; it can kill and restart any of them).
// Every process started here is killed when the topology stops, and on any
// exit of the test process.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import PusherServer from 'pusher';

import { randomId, waitFor } from './wait.js';

// The SDK's request timeout: beyond the trigger API's own bound on a
// publish (HERALD_PUBLISH_RETRY_FOR, 25 s), so that a slow answer on a loaded
// machine is not taken for a failed request.
export const SDK_TIMEOUT = 60_000;

const here = path.dirname(fileURLToPath(import.meta.url));
export const E2E_DIR = path.resolve(here, '..');
export const REPO_ROOT = path.resolve(E2E_DIR, '..', '..');
export const BIN_DIR = process.env.HERALD_BIN_DIR || path.join(REPO_ROOT, 'bin');
const LOG_ROOT = path.join(E2E_DIR, '.tmp', 'logs');

// HERALD_E2E_TOPOLOGIES=split (or herald) runs one topology only.
export const TOPOLOGIES = (process.env.HERALD_E2E_TOPOLOGIES || 'herald,split').split(',').filter(Boolean);

const LOOPBACK = '127.0.0.1';
const START_TIMEOUT = 60_000;
const STOP_TIMEOUT = 8_000;

// Every live child, so that nothing outlives the test process.
const live = new Set();
process.on('exit', () => {
  for (const p of live) p.killNow();
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    for (const p of live) p.killNow();
    process.exit(128 + (os.constants.signals[sig] ?? 1));
  });
}

// freePort asks the kernel for an unused loopback port.
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, LOOPBACK, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// hasPresenceService reports whether the split topology runs the presence
// service (bin/presence), which keeps presence members across gateways.
export function hasPresenceService() {
  return fs.existsSync(path.join(BIN_DIR, 'presence'));
}

function binary(name) {
  const p = path.join(BIN_DIR, name);
  if (!fs.existsSync(p)) {
    throw new Error(`${p} does not exist: build the binaries first (scripts/build)`);
  }
  return p;
}

// The environment of a child: only what a process needs from ours, so that a
// developer's own REVERB_* or NATS_URL never leaks into a test.
function childEnv(extra) {
  const env = {};
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'GOCOVERDIR']) {
    if (process.env[k] !== undefined) env[k] = process.env[k];
  }
  return { ...env, ...extra };
}

// Proc is one child process with its output in a log file.
export class Proc {
  constructor(name, cmd, args, env, logFile) {
    this.name = name;
    this.cmd = cmd;
    this.args = args;
    this.env = env;
    this.logFile = logFile;
    this.exit = null; // {code, signal} once exited
  }

  start() {
    fs.mkdirSync(path.dirname(this.logFile), { recursive: true });
    const fd = fs.openSync(this.logFile, 'a');
    fs.writeSync(fd, `# ${new Date().toISOString()} ${this.cmd} ${this.args.join(' ')}\n`);
    this.child = spawn(this.cmd, this.args, { env: this.env, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        live.delete(this);
        resolve(this.exit);
      });
      this.child.once('error', (err) => {
        this.exit = { code: null, signal: null, error: err };
        live.delete(this);
        resolve(this.exit);
      });
    });
    return this;
  }

  get pid() {
    return this.child?.pid;
  }

  get running() {
    return this.child && !this.exit;
  }

  // signal sends sig on a test's behalf: the exit that follows is expected.
  signal(sig) {
    this.expectExit = true;
    if (this.running) this.child.kill(sig);
  }

  // crashed reports an exit that nobody asked for.
  get crashed() {
    return this.exit !== null && !this.expectExit;
  }

  killNow() {
    try {
      if (this.running) this.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }

  // stop sends SIGTERM and, past the timeout, SIGKILL. It reports whether the
  // process left by itself.
  async stop(timeout = STOP_TIMEOUT) {
    if (!this.child) return { graceful: true };
    this.expectExit = true;
    if (this.running) this.child.kill('SIGTERM');
    const res = await Promise.race([this.exited, sleep(timeout, null, { ref: false })]);
    if (res) return { graceful: true, ...res };
    this.killNow();
    await this.exited;
    return { graceful: false, ...this.exit };
  }

  tail(lines = 40) {
    try {
      const all = fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n');
      return all.slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  describeExit() {
    if (!this.exit) return 'running';
    if (this.exit.error) return `failed to start: ${this.exit.error.message}`;
    return this.exit.signal ? `killed by ${this.exit.signal}` : `exited with code ${this.exit.code}`;
  }
}

// waitReady polls url until it answers 200; it fails at once when the
// process has exited, with the end of its log.
async function waitReady(proc, url, timeout = START_TIMEOUT) {
  try {
    await waitFor(
      async () => {
        if (proc.exit) throw new Error('exited');
        const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        return res.status === 200;
      },
      { timeout, interval: 50, what: `${proc.name} to answer 200 on ${url}` },
    );
  } catch (err) {
    const why = proc.exit ? `${proc.name} ${proc.describeExit()} before it was ready` : err.message;
    throw new Error(`${why}\n--- ${proc.logFile} (last lines) ---\n${proc.tail()}`);
  }
}

// startReady starts a process on fresh ports and waits for readiness,
// retrying when the port was taken between choosing it and binding it.
// Each started process is handed to register at once, so that a failure
// elsewhere still stops it.
async function startReady(make, register, attempts = 3) {
  for (let i = 1; ; i++) {
    const { proc, url } = await make();
    register(proc.start());
    try {
      await waitReady(proc, url);
      return proc;
    } catch (err) {
      await proc.stop(1000);
      const taken = /address already in use/i.test(proc.tail(200));
      if (!taken || i >= attempts) throw err;
    }
  }
}

function register(topo) {
  return (proc) => topo.procs.set(proc.name, proc);
}

function makeApp(prefix) {
  return {
    id: `${prefix}-${randomId(6)}`,
    key: `key${randomId(17)}`,
    secret: randomId(32),
  };
}

// Topology is a running set of processes and the app credentials they serve.
export class Topology {
  constructor(kind, label) {
    this.kind = kind;
    this.label = label;
    this.name = `${label}-${kind}-${randomId(4)}`;
    this.logDir = path.join(LOG_ROOT, this.name);
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `herald-e2e-${kind}-`));
    this.app = makeApp('e2e');
    this.disabledApp = makeApp('off');
    this.procs = new Map();
    this.ws = []; // WebSocket endpoints; split: two gateways, herald: the same process twice
    this.http = null; // HTTP API endpoint
    this.cleanups = [];
    this.stopped = false;
  }

  proc(name) {
    return this.procs.get(name);
  }

  // onStop registers a function run before the processes are stopped
  // (clients disconnect there).
  onStop(fn) {
    this.cleanups.push(fn);
  }

  writeAppsFile(appExtra) {
    const file = path.join(this.dataDir, 'apps.json');
    const apps = [
      { ...this.app, ...appExtra },
      { ...this.disabledApp, disabled: true },
    ];
    fs.writeFileSync(file, JSON.stringify({ apps }, null, 2));
    return file;
  }

  logFile(name) {
    return path.join(this.logDir, `${name}.log`);
  }

  // sdk is the official pusher Node SDK pointed at this topology's HTTP API.
  sdk(overrides = {}) {
    return new PusherServer({
      appId: this.app.id,
      key: this.app.key,
      secret: this.app.secret,
      host: this.http.host,
      port: String(this.http.port),
      useTLS: false,
      timeout: SDK_TIMEOUT,
      ...overrides,
    });
  }

  wsURL(i = 0, key = this.app.key, query = 'protocol=7&client=js&version=8.6.0&flash=false') {
    const ep = this.ws[i];
    return `ws://${ep.host}:${ep.port}/app/${key}${query === null ? '' : `?${query}`}`;
  }

  httpURL(p) {
    return `http://${this.http.host}:${this.http.port}${p}`;
  }

  // stop disconnects the clients and stops every process. It throws when a
  // process had died on its own during the tests, with the end of its log.
  async stop() {
    if (this.stopped) return;
    this.stopped = true;
    const crashed = [...this.procs.values()].filter((p) => p.crashed);
    for (const fn of this.cleanups.reverse()) {
      try {
        await fn();
      } catch {
        // a client that is already gone
      }
    }
    // Services first, NATS last, so that they leave it cleanly.
    const procs = [...this.procs.values()];
    const services = procs.filter((p) => p.name !== 'nats');
    const results = await Promise.all(services.map(async (p) => [p, await p.stop()]));
    const nats = this.procs.get('nats');
    if (nats) results.push([nats, await nats.stop()]);
    for (const [p, r] of results) {
      if (!r.graceful) console.error(`# ${this.kind}: ${p.name} did not exit within ${STOP_TIMEOUT} ms of SIGTERM and was killed`);
    }
    fs.rmSync(this.dataDir, { recursive: true, force: true });
    if (crashed.length > 0) {
      const what = crashed.map((p) => `${p.name} ${p.describeExit()} during the tests\n--- ${p.logFile} ---\n${p.tail()}`);
      throw new Error(`${this.kind} topology: ${what.join('\n')}`);
    }
  }
}

// startTopology starts kind ("herald", "split" or "presence"). label names
// the logs. appExtra adds fields to the test app in the apps file (limits,
// origins); env adds settings to every service.
export async function startTopology(kind, { label = 'e2e', appExtra = {}, env = {} } = {}) {
  const topo = new Topology(kind, label);
  try {
    if (kind === 'herald') await startHerald(topo, appExtra, env);
    else if (kind === 'split') await startSplit(topo, appExtra, env);
    else if (kind === 'presence') await startPresenceTopology(topo, appExtra, env);
    else throw new Error(`unknown topology ${kind}`);
  } catch (err) {
    await topo.stop();
    throw err;
  }
  return topo;
}

function logLevel() {
  return process.env.HERALD_E2E_LOG_LEVEL || 'info';
}

// The address settings of each binary.
const LISTEN = {
  herald: ['REVERB_SERVER_HOST', 'REVERB_SERVER_PORT'],
  gateway: ['REVERB_SERVER_HOST', 'REVERB_SERVER_PORT'],
  trigger: ['HERALD_TRIGGER_HOST', 'HERALD_TRIGGER_PORT'],
  presence: ['HERALD_PRESENCE_HOST', 'HERALD_PRESENCE_PORT'],
};

// startService starts binary bin as process name on a fresh loopback port,
// with env added to what every service gets, and returns its endpoint once
// it answers /ready.
async function startService(topo, name, bin, env) {
  const [hostVar, portVar] = LISTEN[bin];
  let port;
  await startReady(async () => {
    port = await freePort();
    const childenv = childEnv({
      ...env,
      [hostVar]: LOOPBACK,
      [portVar]: String(port),
      HERALD_LOG_LEVEL: logLevel(),
    });
    return {
      proc: new Proc(name, binary(bin), [], childenv, topo.logFile(name)),
      url: `http://${LOOPBACK}:${port}/ready`,
    };
  }, register(topo));
  return { host: LOOPBACK, port, name };
}

// startNats starts nats-server with JetStream on fresh ports and returns its
// URL; topo.natsMonitor is its monitoring endpoint (/varz, /jsz, …).
async function startNats(topo) {
  const natsBin = binary('nats-server');
  let natsPort;
  let monitor;
  await startReady(async () => {
    natsPort = await freePort();
    monitor = await freePort();
    const args = ['-js', '-a', LOOPBACK, '-p', String(natsPort), '-m', String(monitor), '-sd', path.join(topo.dataDir, 'nats')];
    // HERALD_E2E_NATS_PROFILE=1 opens nats-server's pprof port (topo.natsProfile).
    if (process.env.HERALD_E2E_NATS_PROFILE) {
      topo.natsProfile = { host: LOOPBACK, port: await freePort() };
      args.push('--profile', String(topo.natsProfile.port));
    }
    return {
      proc: new Proc('nats', natsBin, args, childEnv({}), topo.logFile('nats')),
      url: `http://${LOOPBACK}:${monitor}/healthz`,
    };
  }, register(topo));
  topo.natsMonitor = { host: LOOPBACK, port: monitor };
  return `nats://${LOOPBACK}:${natsPort}`;
}

async function startHerald(topo, appExtra, extraEnv = {}) {
  const ep = await startService(topo, 'herald', 'herald', {
    ...extraEnv,
    HERALD_APPS_FILE: topo.writeAppsFile(appExtra),
    HERALD_DATA_DIR: path.join(topo.dataDir, 'herald'),
  });
  topo.ws = [ep, ep];
  topo.http = ep;
}

async function startSplit(topo, appExtra, extraEnv = {}) {
  const appsFile = topo.writeAppsFile(appExtra);
  const natsURL = await startNats(topo);
  const env = { ...extraEnv, NATS_URL: natsURL, HERALD_APPS_FILE: appsFile };

  const started = [
    startService(topo, 'gateway-a', 'gateway', env),
    startService(topo, 'gateway-b', 'gateway', env),
    startService(topo, 'trigger', 'trigger', env),
  ];
  if (hasPresenceService()) started.push(startService(topo, 'presence', 'presence', env));
  const [gwA, gwB, trigger, presence] = await Promise.all(started);
  topo.ws = [gwA, gwB];
  topo.http = trigger;
  topo.presence = presence; // undefined without bin/presence
  // restart starts a killed or stopped gateway again, on a fresh port.
  topo.restart = async (name) => {
    const i = ['gateway-a', 'gateway-b'].indexOf(name);
    if (i < 0) throw new Error(`split topology: cannot restart ${name}`);
    topo.ws[i] = await startService(topo, name, 'gateway', env);
    return topo.ws[i];
  };
}

// startPresenceTopology starts nats-server, the presence service, three
// gateways (a, b, c: topo.ws[0..2]) and the trigger API as separate
// processes. topo.restart(name) starts a stopped or killed service again on
// fresh ports (its WebSocket endpoint changes, for a gateway).
async function startPresenceTopology(topo, appExtra, extraEnv) {
  const appsFile = topo.writeAppsFile(appExtra);
  const natsURL = await startNats(topo);
  const env = { ...extraEnv, NATS_URL: natsURL, HERALD_APPS_FILE: appsFile };

  const start = async (name) => {
    const ep = await startService(topo, name, name.startsWith('gateway-') ? 'gateway' : name, env);
    const i = ['gateway-a', 'gateway-b', 'gateway-c'].indexOf(name);
    if (i >= 0) topo.ws[i] = ep;
    if (name === 'trigger') topo.http = ep;
    return ep;
  };
  topo.restart = start;

  // The presence service first, so that the first presence subscribes find
  // it; the gateways would also wait for it.
  await start('presence');
  await Promise.all(['gateway-a', 'gateway-b', 'gateway-c', 'trigger'].map(start));
}
