// Presence channels with pusher-js and Laravel Echo's join(): members seen on
// subscribe, joins and leaves announced across gateways, user_id on client
// events.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Echo from 'laravel-echo';

import { connectPusher, connectRaw, connected, pusherClient, record, subscribe } from '../lib/clients.js';
import { useTopology } from '../lib/suite.js';
import { TOPOLOGIES } from '../lib/topology.js';
import { Recorder, randomId } from '../lib/wait.js';

// userAuthorizer signs presence subscriptions for one user, as Laravel's
// channel callback returning the user's info does.
function userAuthorizer(sdk, userId, userInfo) {
  return (params, callback) => {
    try {
      callback(null, sdk.authorizeChannel(params.socketId, params.channelName, { user_id: userId, user_info: userInfo }));
    } catch (err) {
      callback(err, null);
    }
  };
}

function asUser(topo, i, sdk, userId, info) {
  return connectPusher(topo, i, {
    sdk,
    options: { channelAuthorization: { customHandler: userAuthorizer(sdk, userId, info) } },
  });
}

function memberIds(channel) {
  const ids = [];
  channel.members.each((m) => ids.push(m.id));
  return ids.sort();
}

for (const kind of TOPOLOGIES) {
  describe(`presence channels [${kind}]`, () => {
    const ctx = useTopology(kind, { label: 'presence' });

    it('lists members on subscribe and announces joins and leaves across gateways', async () => {
      const name = `presence-room.${randomId()}`;
      const alice = await asUser(ctx.topo, 0, ctx.sdk, 'alice', { name: 'Alice' });
      const ca = await subscribe(alice, name);
      assert.deepEqual(memberIds(ca), ['alice']);
      assert.equal(ca.members.me.id, 'alice');
      const added = record(ca, 'pusher:member_added');
      const removed = record(ca, 'pusher:member_removed');

      const bob = await asUser(ctx.topo, 1, ctx.sdk, 'bob', { name: 'Bob' });
      const cb = await subscribe(bob, name);
      assert.deepEqual(memberIds(cb), ['alice', 'bob']);
      assert.deepEqual(cb.members.get('alice').info, { name: 'Alice' });
      const [joined] = await added.waitCount(1);
      assert.equal(joined.id, 'bob');
      assert.deepEqual(joined.info, { name: 'Bob' });
      assert.equal(ca.members.count, 2);

      bob.disconnect();
      const [left] = await removed.waitCount(1);
      assert.equal(left.id, 'bob');
      assert.deepEqual(memberIds(ca), ['alice']);
    });

    it('announces a user once however many connections it has', async () => {
      const name = `presence-tabs.${randomId()}`;
      // A raw watcher sees every member frame, duplicates included.
      const watcher = await connectRaw(ctx.topo, 0);
      const channelData = JSON.stringify({ user_id: 'watcher', user_info: {} });
      const { auth } = ctx.sdk.authorizeChannel(watcher.socketId, name, { user_id: 'watcher', user_info: {} });
      await watcher.subscribe(name, { auth, channel_data: channelData });
      const memberFrames = () =>
        watcher.frames.items
          .filter((f) => f.event === 'pusher_internal:member_added' || f.event === 'pusher_internal:member_removed')
          .map((f) => `${f.event.slice('pusher_internal:member_'.length)} ${JSON.parse(f.data).user_id}`);

      // Two tabs of the same user, one on each gateway.
      const tab1 = await asUser(ctx.topo, 0, ctx.sdk, 'carol', { tab: 1 });
      await subscribe(tab1, name);
      const tab2 = await asUser(ctx.topo, 1, ctx.sdk, 'carol', { tab: 2 });
      const c2 = await subscribe(tab2, name);
      assert.deepEqual(memberIds(c2), ['carol', 'watcher']);
      tab1.disconnect();
      tab2.disconnect();
      await watcher.frames.waitMatch((f) => f.event === 'pusher_internal:member_removed');
      // Another user comes and goes: anything about carol is in by then.
      const henry = await asUser(ctx.topo, 1, ctx.sdk, 'henry', {});
      await subscribe(henry, name);
      henry.disconnect();
      await watcher.frames.waitMatch(
        (f) => f.event === 'pusher_internal:member_removed' && JSON.parse(f.data).user_id === 'henry',
      );
      assert.deepEqual(memberFrames(), ['added carol', 'removed carol', 'added henry', 'removed henry']);
    });

    it('adds user_id to client events on presence channels', async () => {
      const name = `presence-chat.${randomId()}`;
      const dave = await asUser(ctx.topo, 0, ctx.sdk, 'dave', {});
      const erin = await asUser(ctx.topo, 1, ctx.sdk, 'erin', {});
      const cd = await subscribe(dave, name);
      const ce = await subscribe(erin, name);
      const heard = new Recorder('client-typing heard by erin');
      ce.bind('client-typing', (data, metadata) => heard.push({ data, metadata }));
      cd.trigger('client-typing', { typing: true });
      const [got] = await heard.waitCount(1);
      assert.deepEqual(got.data, { typing: true });
      assert.equal(got.metadata?.user_id, 'dave');
    });

    it("Echo's join() calls here, joining and leaving", async () => {
      const room = `lobby.${randomId()}`;
      const echoFor = async (i, userId) => {
        const client = pusherClient(ctx.topo, i, {
          sdk: ctx.sdk,
          options: { channelAuthorization: { customHandler: userAuthorizer(ctx.sdk, userId, { id: userId }) } },
        });
        const echo = new Echo({ broadcaster: 'reverb', key: ctx.topo.app.key, client });
        await connected(client);
        return { echo, client };
      };
      const first = await echoFor(0, 'frank');
      const here = new Recorder('here');
      const joining = new Recorder('joining');
      const leaving = new Recorder('leaving');
      first.echo.join(room).here(here.push).joining(joining.push).leaving(leaving.push);
      const [members] = await here.waitCount(1);
      assert.deepEqual(members, [{ id: 'frank' }]);
      const second = await echoFor(1, 'grace');
      const here2 = new Recorder('here of grace');
      second.echo.join(room).here(here2.push);
      const [members2] = await here2.waitCount(1);
      assert.deepEqual(members2.map((m) => m.id).sort(), ['frank', 'grace']);
      assert.deepEqual(await joining.waitCount(1), [{ id: 'grace' }]);
      second.echo.leave(room);
      assert.deepEqual(await leaving.waitCount(1), [{ id: 'grace' }]);
    });
  });
}
