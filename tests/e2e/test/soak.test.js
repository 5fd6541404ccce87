// The soak (lib/soak.js) against the split topology with the presence
// service: SOAK_DURATION (45 s here unless set; scripts/soak runs it for
// 30 minutes) of connection churn, then no member left behind, every
// channel_occupied vacated, RSS, goroutines and descriptors back near
// their level after the warm-up, and no more consumers or subscriptions in
// nats-server than then.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { leaks, natsLeaks, parseDuration, runSoak, WebhookCounter } from '../lib/soak.js';
import { hasPresenceService, startTopology } from '../lib/topology.js';

const durationMs = parseDuration(process.env.SOAK_DURATION, 45_000);
const clients = Number(process.env.SOAK_CLIENTS || 100);

describe('soak [split]', { skip: !hasPresenceService() && 'needs bin/presence' }, () => {
  let topo;
  const webhooks = new WebhookCounter();

  before(async () => {
    await webhooks.start();
    topo = await startTopology('split', { label: 'soak', appExtra: { webhooks: [{ url: webhooks.url }] } });
  });

  after(async () => {
    await topo?.stop();
    await webhooks.stop();
  });

  it(`churns ${clients} clients for ${durationMs / 1000} s without leaving members, webhooks or resources behind`, {
    timeout: durationMs + 180_000,
  }, async () => {
    const log = process.env.SOAK_VERBOSE ? (line) => console.log(line) : () => {};
    const { stats, baseline, final, samples, natsSamples, natsBaseline } = await runSoak(topo, webhooks, { durationMs, clients, log });
    const peak = {};
    for (const s of samples) {
      for (const [name, v] of Object.entries(s)) {
        if (name === 't') continue;
        peak[name] = {
          rss: Math.max(peak[name]?.rss ?? 0, v.rss),
          fds: Math.max(peak[name]?.fds ?? 0, v.fds),
          goroutines: Math.max(peak[name]?.goroutines ?? 0, v.goroutines ?? 0),
        };
      }
    }
    console.log(`# soak: ${JSON.stringify({ durationMs, clients, ...stats, errors: stats.errors.length })}`);
    console.log(`# soak: webhooks occupied=${webhooks.total('channel_occupied')} vacated=${webhooks.total('channel_vacated')} ` +
      `member_added=${webhooks.total('member_added')} member_removed=${webhooks.total('member_removed')}`);
    console.log(`# soak: after warm-up ${JSON.stringify(baseline)}`);
    console.log(`# soak: peak ${JSON.stringify(peak)}`);
    console.log(`# soak: end ${JSON.stringify(final)}`);
    const natsFinal = natsSamples.at(-1);
    const natsPeak = Math.max(...natsSamples.map((n) => n.mem));
    console.log(`# soak: nats after warm-up ${JSON.stringify(natsBaseline)}`);
    console.log(`# soak: nats peak mem ${natsPeak} MB; end ${JSON.stringify(natsFinal)}`);
    assert.deepEqual(stats.errors.slice(0, 10), [], 'no client or trigger error');
    assert.ok(stats.sessions > clients, `clients came and went (${stats.sessions} sessions)`);
    assert.ok(stats.resumes > 0 && stats.resumed + stats.resumeFailed > 0, 'clients resumed');
    assert.ok(webhooks.total('channel_occupied') > 0, 'webhooks were delivered');
    assert.equal(webhooks.total('member_added'), webhooks.total('member_removed'), 'every member_added has its member_removed');
    assert.deepEqual(leaks(baseline, final), [], 'resources back near their level after the warm-up');
    assert.deepEqual(natsLeaks(natsBaseline, natsFinal), [], 'no consumer or subscription left in nats-server');
  });
});
