// Global presence on the "presence" topology: three gateways, the presence
// service and the trigger API as separate processes. Members and member
// events across gateways (Laravel Echo's join()), one user on two gateways
// counted once, a gateway killed with SIGKILL, the presence service killed
// and restarted; after each, the channel queries of the HTTP API (the
// `pusher` SDK's get()) are checked against what is really connected.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Echo from 'laravel-echo';

import { connectRaw, connected, pusherClient } from '../lib/clients.js';
import { useTopology } from '../lib/suite.js';
import { DEFAULT_TIMEOUT, Recorder, randomId, waitFor } from '../lib/wait.js';

// Short, so that a killed gateway is noticed within a test's patience.
const GATEWAY_TTL_MS = 3000;

const SUCCEEDED = 'pusher_internal:subscription_succeeded';

const PRESENCE_TIMEOUT_MS = 30_000;

describe('global presence [presence]', () => {
  const ctx = useTopology('presence', {
    label: 'global-presence',
    env: {
      HERALD_GATEWAY_TTL: `${GATEWAY_TTL_MS / 1000}s`,
      // A restarted presence service takes over from the killed one's
      // lock within this.
      HERALD_PRESENCE_LOCK_TTL: '2s',
      // A subscribe waits this long for a presence service: long enough
      // for one to be restarted on a loaded machine.
      HERALD_PRESENCE_TIMEOUT: `${PRESENCE_TIMEOUT_MS / 1000}s`,
    },
  });

  // get calls the HTTP API through the SDK and returns the JSON answer.
  async function get(path, params = {}) {
    const res = await ctx.sdk.get({ path, params });
    assert.equal(res.status, 200, `GET ${path}`);
    return res.json();
  }

  // state waits until the HTTP API reports want for channel: its user ids
  // (presence) and its counts. Channel state is persisted a flush interval
  // after the change, so it is polled.
  async function expectState(channel, want) {
    const presence = channel.startsWith('presence-');
    let seen;
    await waitFor(
      async () => {
        const info = await get(`/channels/${channel}`, {
          info: presence ? 'user_count,subscription_count' : 'subscription_count',
        });
        const users = presence ? (await get(`/channels/${channel}/users`)).users.map((u) => u.id).sort() : undefined;
        seen = { info, users };
        return (
          info.occupied === want.subscriptions > 0 &&
          info.subscription_count === want.subscriptions &&
          (!presence || (info.user_count === want.users.length && JSON.stringify(users) === JSON.stringify(want.users)))
        );
      },
      { what: `the HTTP API to report ${JSON.stringify(want)} for ${channel}`, seen: () => seen },
    );
  }

  // rawMember connects a raw client to gateway i and joins a presence
  // channel as userId; it sees every member frame, duplicates included.
  async function rawMember(i, channel, userId, timeout = DEFAULT_TIMEOUT) {
    const c = await connectRaw(ctx.topo, i);
    const { auth, channel_data } = ctx.sdk.authorizeChannel(c.socketId, channel, { user_id: userId, user_info: { name: userId } });
    const f = await c.request(
      { event: 'pusher:subscribe', data: { channel, auth, channel_data } },
      (x) => x.channel === channel && (x.event === SUCCEEDED || x.event === 'pusher:subscription_error'),
      { timeout },
    );
    assert.equal(f.event, SUCCEEDED, `${userId} joining ${channel}: ${JSON.stringify(f)}`);
    c.members = JSON.parse(f.data).presence.ids.sort();
    return c;
  }

  // memberFrames lists the member events a raw client got on channel.
  function memberFrames(c, channel) {
    return c.frames.items
      .filter((f) => f.channel === channel && f.event.startsWith('pusher_internal:member_'))
      .map((f) => `${f.event.slice('pusher_internal:member_'.length)} ${JSON.parse(f.data).user_id}`);
  }

  async function expectMemberFrames(c, channel, want) {
    await waitFor(() => memberFrames(c, channel).length >= want.length, {
      what: `${want.length} member events on ${channel}`,
      seen: () => memberFrames(c, channel),
      timeout: GATEWAY_TTL_MS + DEFAULT_TIMEOUT,
    });
    assert.deepEqual(memberFrames(c, channel), want);
  }

  // echoUser is Laravel Echo on gateway i, authorized as userId.
  async function echoUser(i, userId) {
    const client = pusherClient(ctx.topo, i, {
      sdk: ctx.sdk,
      options: {
        channelAuthorization: {
          customHandler: (params, callback) => {
            try {
              callback(null, ctx.sdk.authorizeChannel(params.socketId, params.channelName, { user_id: userId, user_info: { id: userId } }));
            } catch (err) {
              callback(err, null);
            }
          },
        },
      },
    });
    const echo = new Echo({ broadcaster: 'reverb', key: ctx.topo.app.key, client });
    await connected(client);
    return { echo, client };
  }

  it("Echo's join() sees every gateway's members, joining and leaving", async () => {
    const room = `lobby.${randomId()}`;
    const channel = `presence-${room}`;
    const ids = (members) => members.map((m) => m.id).sort();

    const alice = await echoUser(0, 'alice');
    const here = new Recorder('here of alice');
    const joining = new Recorder('joining seen by alice');
    const leaving = new Recorder('leaving seen by alice');
    const whispers = new Recorder('whispers heard by alice');
    alice.echo.join(room).here(here.push).joining(joining.push).leaving(leaving.push).listenForWhisper('typing', whispers.push);
    assert.deepEqual(ids((await here.waitCount(1))[0]), ['alice']);

    const bob = await echoUser(1, 'bob');
    const hereBob = new Recorder('here of bob');
    const bobRoom = bob.echo.join(room).here(hereBob.push);
    assert.deepEqual(ids((await hereBob.waitCount(1))[0]), ['alice', 'bob']);

    const carol = await echoUser(2, 'carol');
    const hereCarol = new Recorder('here of carol');
    carol.echo.join(room).here(hereCarol.push);
    assert.deepEqual(ids((await hereCarol.waitCount(1))[0]), ['alice', 'bob', 'carol']);
    assert.deepEqual(ids(await joining.waitCount(2)), ['bob', 'carol']);

    // Client events cross gateways on presence channels.
    bobRoom.whisper('typing', { who: 'bob' });
    assert.deepEqual(await whispers.waitCount(1), [{ who: 'bob' }]);

    await expectState(channel, { subscriptions: 3, users: ['alice', 'bob', 'carol'] });
    const list = await get('/channels', { filter_by_prefix: channel, info: 'user_count' });
    assert.deepEqual(list, { channels: { [channel]: { user_count: 3 } } });

    carol.echo.leave(room);
    assert.deepEqual(ids(await leaving.waitCount(1)), ['carol']);
    carol.client.disconnect();
    await expectState(channel, { subscriptions: 2, users: ['alice', 'bob'] });
    assert.equal(joining.count, 2);
  });

  it('counts one user on two gateways once', async () => {
    const channel = `presence-tabs.${randomId()}`;
    const watcher = await rawMember(0, channel, 'watcher');
    const tab1 = await rawMember(1, channel, 'dave');
    const tab2 = await rawMember(2, channel, 'dave');
    assert.deepEqual(tab2.members, ['dave', 'watcher']);
    await expectState(channel, { subscriptions: 3, users: ['dave', 'watcher'] });

    await tab1.close();
    await expectState(channel, { subscriptions: 2, users: ['dave', 'watcher'] });
    await tab2.close();
    await expectState(channel, { subscriptions: 1, users: ['watcher'] });

    // Another user comes and goes: anything about dave is in by then.
    const henry = await rawMember(1, channel, 'henry');
    await henry.close();
    await expectMemberFrames(watcher, channel, ['added dave', 'removed dave', 'added henry', 'removed henry']);
  });

  it('removes the members of a gateway killed with SIGKILL within its TTL', async () => {
    const channel = `presence-crash.${randomId()}`;
    const ticker = `ticker-${randomId()}`;
    const watcher = await rawMember(0, channel, 'watcher');
    await rawMember(2, channel, 'erin');
    for (const i of [0, 2]) {
      const c = await connectRaw(ctx.topo, i);
      await c.subscribe(ticker);
    }
    await expectState(channel, { subscriptions: 2, users: ['erin', 'watcher'] });
    await expectState(ticker, { subscriptions: 2 });

    // No leave, no drain: the gateway's heartbeat just stops. The wait
    // below allows the TTL and a margin, no more.
    ctx.topo.proc('gateway-c').signal('SIGKILL');
    await expectMemberFrames(watcher, channel, ['added erin', 'removed erin']);
    await expectState(channel, { subscriptions: 1, users: ['watcher'] });
    await expectState(ticker, { subscriptions: 1 });

    // A new boot of the gateway starts clean.
    await ctx.topo.restart('gateway-c');
    await rawMember(2, channel, 'erin');
    await expectMemberFrames(watcher, channel, ['added erin', 'removed erin', 'added erin']);
    await expectState(channel, { subscriptions: 2, users: ['erin', 'watcher'] });
  });

  it('neither loses nor repeats member events across a restart of the presence service', async () => {
    const channel = `presence-restart.${randomId()}`;
    const watcher = await rawMember(0, channel, 'watcher');
    await rawMember(1, channel, 'frank');
    const gina = await rawMember(2, channel, 'gina');
    await expectMemberFrames(watcher, channel, ['added frank', 'added gina']);

    ctx.topo.proc('presence').signal('SIGKILL');
    // While no presence service runs: gina leaves, and harry's subscribe
    // waits for the next instance.
    gina.send({ event: 'pusher:unsubscribe', data: { channel } });
    const harry = rawMember(1, channel, 'harry', PRESENCE_TIMEOUT_MS + DEFAULT_TIMEOUT);
    await ctx.topo.restart('presence');
    assert.deepEqual((await harry).members, ['frank', 'harry', 'watcher']);

    // A last member after the restart: everything before it is in.
    await rawMember(2, channel, 'ivan');
    await expectMemberFrames(watcher, channel, ['added frank', 'added gina', 'removed gina', 'added harry', 'added ivan']);
    await expectState(channel, { subscriptions: 4, users: ['frank', 'harry', 'ivan', 'watcher'] });
  });
});
