// A soak of connection churn against the split topology: clients connect
// to either gateway, subscribe to a private channel (resuming from their
// last position when they had one), a presence channel and a channel of
// their own that nobody uses again (as per-user or per-document channels
// are), stay a moment and leave, while events are triggered and a webhook
// receiver counts the occupancy and member webhooks. Every few seconds it
// samples the RSS and open file descriptors (/proc) and goroutines
// (/metrics) of every process, and what nats-server holds (/varz, /jsz).
// At the end it checks that no member is left behind, that every
// channel_occupied has its channel_vacated, that RSS, goroutines and
// descriptors came back near their level after the warm-up, and that
// nats-server holds no more consumers or subscriptions than then.

import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { RawClient } from './clients.js';
import { DEFAULT_TIMEOUT, waitFor } from './wait.js';
import { WebhookEndpoint } from './webhooks.js';

// parseDuration reads "45s", "10m", "1h" or milliseconds.
export function parseDuration(s, fallback) {
  if (!s) return fallback;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(s).trim());
  if (!m) throw new Error(`SOAK_DURATION=${s}: want e.g. 45s, 10m, 1h`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 'ms'];
}

// WebhookCounter is an endpoint that accepts every batch and counts its
// events per channel.
export class WebhookCounter extends WebhookEndpoint {
  constructor() {
    super();
    this.counts = new Map(); // channel -> {channel_occupied, channel_vacated, member_added, member_removed}
    this.batches = 0;
  }

  handle(req, res, body) {
    try {
      const ids = (this.ids ??= new Set());
      const id = req.headers['x-herald-webhook-id'];
      if (!ids.has(id)) {
        ids.add(id);
        this.batches++;
        for (const e of JSON.parse(body).events) {
          const c = this.counts.get(e.channel) ?? {};
          c[e.name] = (c[e.name] ?? 0) + 1;
          this.counts.set(e.channel, c);
        }
      }
    } catch {
      // counted as nothing; the checks at the end see it
    }
    res.writeHead(200).end();
  }

  // unbalanced lists the channels whose occupied/vacated or
  // added/removed counts differ.
  unbalanced() {
    const out = [];
    for (const [ch, c] of this.counts) {
      if ((c.channel_occupied ?? 0) !== (c.channel_vacated ?? 0)) out.push(`${ch}: ${JSON.stringify(c)}`);
    }
    return out;
  }

  total(name) {
    let n = 0;
    for (const c of this.counts.values()) n += c[name] ?? 0;
    return n;
  }
}

// sampleProcs reads RSS (MB), open descriptors and goroutines of every
// process of the topology.
export async function sampleProcs(topo) {
  const metricsOf = new Map([
    ['gateway-a', topo.ws[0]],
    ['gateway-b', topo.ws[1]],
    ['trigger', topo.http],
    ['presence', topo.presence],
  ]);
  const out = {};
  for (const [name, p] of topo.procs) {
    if (!p.running) continue;
    const status = fs.readFileSync(`/proc/${p.pid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
    const fds = fs.readdirSync(`/proc/${p.pid}/fd`).length;
    let goroutines = null;
    const ep = metricsOf.get(name);
    if (ep) {
      const res = await fetch(`http://${ep.host}:${ep.port}/metrics`);
      const m = /^go_goroutines (\d+)/m.exec(await res.text());
      goroutines = m ? Number(m[1]) : null;
    }
    out[name] = { rss: Math.round(rss * 10) / 10, fds, goroutines };
  }
  return out;
}

// sampleNats reads what nats-server holds from its monitoring endpoint:
// RSS (MB), connections and subscriptions (/varz), and per stream its
// messages, bytes, consumers and deleted messages kept track of (/jsz).
export async function sampleNats(topo) {
  const ep = topo.natsMonitor;
  if (!ep) return null;
  const get = async (p) => (await fetch(`http://${ep.host}:${ep.port}${p}`)).json();
  const varz = await get('/varz');
  const jsz = await get('/jsz?streams=true&consumers=true');
  const streams = {};
  let consumers = 0;
  for (const acc of jsz.account_details ?? []) {
    for (const st of acc.stream_detail ?? []) {
      const s = st.state;
      streams[st.name] = { msgs: s.messages, bytes: s.bytes, deleted: s.num_deleted ?? 0, subjects: s.num_subjects ?? 0, consumers: s.consumer_count };
      consumers += s.consumer_count;
    }
  }
  return {
    mem: Math.round((varz.mem / 1048576) * 10) / 10,
    connections: varz.connections,
    subscriptions: varz.subscriptions,
    consumers,
    streams,
  };
}

// runSoak churns clients against topo for durationMs and returns the
// figures; it throws when a check fails.
export async function runSoak(topo, webhooks, { durationMs, clients = 100, log = () => {} }) {
  const sdk = topo.sdk();
  const privateChannels = Array.from({ length: 10 }, (_, i) => `private-soak.${i}`);
  const presenceChannels = Array.from({ length: 10 }, (_, i) => `presence-soak.${i}`);
  const stats = { sessions: 0, resumes: 0, resumed: 0, resumeFailed: 0, events: 0, triggered: 0, ownChannels: 0, errors: [] };
  const samples = [];
  const natsSamples = [];
  const warmupMs = Math.max(10_000, durationMs * 0.2);
  const start = Date.now();
  const end = start + durationMs;
  let baseline = null;
  let natsBaseline = null;

  let opened = 0;
  const session = async (slot, lastPosition) => {
    const i = slot % 2;
    const own = `soak-own.${slot}.${opened++}`;
    const c = new RawClient(topo.wsURL(i), `soak client ${slot}`);
    let position = lastPosition;
    try {
      const socketId = await c.established();
      const priv = privateChannels[slot % privateChannels.length];
      const pres = presenceChannels[(slot * 7) % presenceChannels.length];
      const extra = { auth: sdk.authorizeChannel(socketId, priv).auth };
      if (position) {
        extra.resume = position;
        stats.resumes++;
      } else {
        extra.positions = true;
      }
      await c.subscribe(priv, extra);
      await c.subscribe(pres, sdk.authorizeChannel(socketId, pres, { user_id: `u${slot}`, user_info: { slot } }));
      await c.subscribe(own);
      stats.ownChannels++;
      await sleep(500 + Math.random() * 2500);
      for (const f of c.frames.items) {
        if (f.position && f.channel === priv && f.event === 'soak') position = f.position;
        if (f.event === 'soak') stats.events++;
        if (f.event === 'herald:resumed') stats.resumed++;
        if (f.event === 'herald:resume_failed') stats.resumeFailed++;
        if (f.event === 'pusher:error' || f.event === 'pusher:subscription_error') stats.errors.push(JSON.stringify(f));
      }
      stats.sessions++;
    } catch (err) {
      stats.errors.push(`${c.label}: ${err.message}`);
    } finally {
      if (Math.random() < 0.5) c.ws.close();
      else c.ws.terminate();
      await c.closed;
    }
    return position;
  };

  const churn = async (slot) => {
    let position;
    while (Date.now() < end) position = await session(slot, position);
  };

  const trigger = async () => {
    let n = 0;
    while (Date.now() < end) {
      const ch = privateChannels[n % privateChannels.length];
      try {
        await sdk.trigger(ch, 'soak', { n });
        stats.triggered++;
      } catch (err) {
        stats.errors.push(`trigger ${n}: ${err.message ?? err}`);
      }
      n++;
      await sleep(50);
    }
  };

  const sampler = async () => {
    while (Date.now() < end) {
      await sleep(5000);
      const s = { t: Math.round((Date.now() - start) / 1000), ...(await sampleProcs(topo)) };
      samples.push(s);
      if (!baseline && Date.now() - start >= warmupMs) baseline = s;
      log(`# soak t=${s.t}s sessions=${stats.sessions} ${JSON.stringify(s)}`);
      const n = await sampleNats(topo);
      if (n) {
        natsSamples.push({ t: s.t, ...n });
        if (baseline === s) natsBaseline = natsSamples.at(-1);
        log(`# soak nats t=${s.t}s ${JSON.stringify(n)}`);
      }
    }
  };

  await Promise.all([trigger(), sampler(), ...Array.from({ length: clients }, (_, slot) => churn(slot))]);

  // Every client is gone: presence empties and every occupied channel is
  // vacated (the webhooks go out in batches).
  const empty = await waitFor(
    async () => {
      const res = await sdk.get({ path: '/channels', params: { filter_by_prefix: 'presence-' } });
      const body = await res.json();
      if (Object.keys(body.channels ?? {}).length > 0) return false;
      for (const ch of presenceChannels) {
        const users = await (await sdk.get({ path: `/channels/${ch}/users` })).json();
        if ((users.users ?? []).length > 0) return false;
      }
      return webhooks.unbalanced().length === 0 ? body : false;
    },
    {
      timeout: 60_000,
      interval: 500,
      what: 'empty presence channels and every channel_occupied vacated',
      seen: () => webhooks.unbalanced(),
    },
  );
  // What a closing socket leaves (timers, buffers, a channel's lingering
  // subscription) goes soon after it, later on a loaded machine: the last
  // samples are the first back near the levels after the warm-up, or those
  // taken when DEFAULT_TIMEOUT has passed (a leak stays).
  const base = baseline ?? samples[0];
  const natsBase = natsBaseline ?? natsSamples[0];
  const settled = Date.now() + DEFAULT_TIMEOUT;
  let final;
  let natsFinal;
  do {
    await sleep(1000);
    final = { t: Math.round((Date.now() - start) / 1000), ...(await sampleProcs(topo)) };
    natsFinal = await sampleNats(topo);
  } while (
    ((base && leaks(base, final).length > 0) || natsLeaks(natsBase, natsFinal).length > 0) &&
    Date.now() < settled
  );
  samples.push(final);
  if (natsFinal) natsSamples.push({ t: final.t, ...natsFinal });
  return { stats, samples, natsSamples, natsBaseline: natsBase ?? natsSamples[0], baseline: base ?? final, final, empty };
}

// leaks compares the final sample with the one after the warm-up, with
// generous bounds: a leak grows with the churn, noise does not.
export function leaks(baseline, final) {
  const out = [];
  for (const [name, b] of Object.entries(baseline)) {
    if (name === 't') continue;
    const f = final[name];
    if (!f) continue;
    if (f.rss > b.rss * 1.5 + 30) out.push(`${name}: RSS ${b.rss} MB after the warm-up, ${f.rss} MB at the end`);
    if (f.fds > b.fds + 50) out.push(`${name}: ${b.fds} descriptors after the warm-up, ${f.fds} at the end`);
    if (b.goroutines !== null && f.goroutines > b.goroutines * 1.2 + 50) {
      out.push(`${name}: ${b.goroutines} goroutines after the warm-up, ${f.goroutines} at the end`);
    }
  }
  return out;
}

// natsLeaks compares what nats-server holds at the end with what it held
// after the warm-up, when every client was connected: the consumers and
// subscriptions of the clients' sessions must be gone with them.
export function natsLeaks(baseline, final) {
  if (!baseline || !final) return [];
  const out = [];
  if (final.consumers > baseline.consumers) {
    out.push(`nats: ${baseline.consumers} consumers after the warm-up, ${final.consumers} at the end`);
  }
  if (final.subscriptions > baseline.subscriptions) {
    out.push(`nats: ${baseline.subscriptions} subscriptions after the warm-up, ${final.subscriptions} at the end`);
  }
  return out;
}
