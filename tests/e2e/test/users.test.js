// The HTTP API's channel queries, and users: pusher-js sign-in, events sent
// to a user with the SDK's sendToUser, and terminateUserConnections.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';

import { connectPusher, subscribe } from '../lib/clients.js';
import { useTopology } from '../lib/suite.js';
import { TOPOLOGIES } from '../lib/topology.js';
import { Recorder, randomId, waitFor } from '../lib/wait.js';

// eventually polls a query until check accepts its answer: channel state
// reaches the HTTP API a moment after the subscribe, as on Pusher.
async function eventually(sdk, path, params, check) {
  let last;
  await waitFor(
    async () => {
      last = await getJSON(sdk, path, params);
      return check(last);
    },
    { what: `GET ${path} ${JSON.stringify(params)} to answer as expected`, seen: () => last },
  );
  return last;
}

async function getJSON(sdk, path, params) {
  let res;
  try {
    res = await sdk.get({ path, params });
  } catch (err) {
    throw new Error(`GET ${path} ${JSON.stringify(params)}: ${err.status ?? err.message} ${err.body ?? ''}`.trim());
  }
  assert.equal(res.status, 200);
  return res.json();
}

function presenceAuthorizer(sdk, userId) {
  return (params, callback) => {
    try {
      callback(null, sdk.authorizeChannel(params.socketId, params.channelName, { user_id: userId, user_info: {} }));
    } catch (err) {
      callback(err, null);
    }
  };
}

// signedIn returns a pusher-js client signed in as userId, its
// #server-to-user channel subscribed.
async function signedIn(topo, i, sdk, userId, watchlist) {
  const client = await connectPusher(topo, i, {
    sdk,
    options: {
      userAuthentication: {
        customHandler: (params, callback) => {
          try {
            const user = { id: userId, name: `user ${userId}` };
            if (watchlist) user.watchlist = watchlist;
            callback(null, sdk.authenticateUser(params.socketId, user));
          } catch (err) {
            callback(err, null);
          }
        },
      },
    },
  });
  const signinErrors = new Recorder('signin errors');
  client.user.bind('pusher:signin_error', signinErrors.push);
  client.signin();
  await waitFor(() => client.user.serverToUserChannel?.subscribed, {
    what: `sign-in of ${userId} and its #server-to-user channel`,
    seen: () => ({ errors: client.errors.items, signinErrors: signinErrors.items, states: client.states.items }),
  });
  return client;
}

for (const kind of TOPOLOGIES) {
  describe(`channel queries and users [${kind}]`, { concurrency: true }, () => {
    const ctx = useTopology(kind, { label: 'users' });

    it('lists occupied channels, filtered by prefix', async () => {
      const prefix = `q${randomId(6)}-`;
      const a = await connectPusher(ctx.topo, 0);
      const b = await connectPusher(ctx.topo, 1);
      await subscribe(a, `${prefix}one`);
      await subscribe(b, `${prefix}two`);
      const want = [`${prefix}one`, `${prefix}two`];
      await eventually(ctx.sdk, '/channels', { filter_by_prefix: prefix }, (body) =>
        isDeepStrictEqual(Object.keys(body.channels ?? {}).sort(), want),
      );
    });

    it('counts the subscribers of a channel on both gateways', async () => {
      const name = `counted-${randomId()}`;
      for (const i of [0, 1, 1]) await subscribe(await connectPusher(ctx.topo, i), name);
      await eventually(
        ctx.sdk,
        `/channels/${name}`,
        { info: 'subscription_count' },
        (body) => body.occupied === true && body.subscription_count === 3,
      );
      const empty = await getJSON(ctx.sdk, `/channels/nobody-${randomId()}`, {});
      assert.equal(empty.occupied, false, JSON.stringify(empty));
    });

    it('lists the users of a presence channel', async () => {
      const name = `presence-q.${randomId()}`;
      for (const [i, user] of [
        [0, 'u1'],
        [1, 'u2'],
      ]) {
        const c = await connectPusher(ctx.topo, i, {
          sdk: ctx.sdk,
          options: { channelAuthorization: { customHandler: presenceAuthorizer(ctx.sdk, user) } },
        });
        await subscribe(c, name);
      }
      await eventually(ctx.sdk, `/channels/${name}/users`, {}, (body) =>
        isDeepStrictEqual((body.users ?? []).map((u) => u.id).sort(), ['u1', 'u2']),
      );
    });

    it('signs a user in and delivers sendToUser to every connection of that user', async () => {
      const userId = `user-${randomId(6)}`;
      const tabs = [await signedIn(ctx.topo, 0, ctx.sdk, userId), await signedIn(ctx.topo, 1, ctx.sdk, userId)];
      const got = tabs.map((t) => {
        const r = new Recorder(`notice for ${userId}`);
        t.user.bind('notice', r.push);
        return r;
      });
      const other = await signedIn(ctx.topo, 1, ctx.sdk, `other-${randomId(6)}`);
      const otherGot = new Recorder('notice for another user');
      other.user.bind('notice', otherGot.push);
      await ctx.sdk.sendToUser(userId, 'notice', { text: 'hi' });
      for (const r of got) assert.deepEqual(await r.waitCount(1), [{ text: 'hi' }]);
      // The other user's own notice arrives alone.
      await ctx.sdk.sendToUser(other.user.user_data.id, 'notice', { text: 'yours' });
      assert.deepEqual(await otherGot.waitCount(1), [{ text: 'yours' }]);
    });

    it("refuses another user's #server-to-user channel", async () => {
      const client = await signedIn(ctx.topo, 0, ctx.sdk, `me-${randomId(6)}`);
      const foreign = `#server-to-user-someone-else-${randomId(6)}`;
      // pusher-js keeps #server-to-user- names for its own user's channel
      // (subscribe throws), so the signed-in connection sends the frame raw.
      const answers = new Recorder(`answers on ${foreign}`);
      client.connection.bind('message', (ev) => {
        if (ev.channel === foreign) answers.push(ev);
      });
      client.send_event('pusher:subscribe', { auth: '', channel: foreign });
      const [answer] = await answers.waitCount(1);
      assert.equal(answer.event, 'pusher:subscription_error', JSON.stringify(answer));
      assert.equal(answer.data.status, 401, JSON.stringify(answer));
    });

    it('tells a watchlist when watched users come online and go offline, across gateways', async () => {
      const [early, late] = [`early-${randomId(6)}`, `late-${randomId(6)}`];
      const earlyTab = await signedIn(ctx.topo, 1, ctx.sdk, early);
      const events = new Recorder('watchlist events');
      // Bound before the sign-in, as the initial online set may come at once.
      const watcher = await connectPusher(ctx.topo, 0, {
        sdk: ctx.sdk,
        options: {
          userAuthentication: {
            customHandler: (params, callback) =>
              callback(null, ctx.sdk.authenticateUser(params.socketId, { id: `watcher-${randomId(6)}`, watchlist: [early, late] })),
          },
        },
      });
      for (const name of ['online', 'offline']) {
        watcher.user.watchlist.bind(name, (ev) => events.push(`${name} ${[...ev.user_ids].sort().join(',')}`));
      }
      watcher.signin();
      assert.deepEqual(await events.waitCount(1), [`online ${early}`]);
      const lateTab = await signedIn(ctx.topo, 1, ctx.sdk, late);
      assert.deepEqual((await events.waitCount(2))[1], `online ${late}`);
      lateTab.disconnect();
      earlyTab.disconnect();
      const rest = (await events.waitCount(4)).slice(2).sort();
      assert.deepEqual(rest, [`offline ${early}`, `offline ${late}`]);
    });

    it('terminateUserConnections closes every connection of that user only', async () => {
      const userId = `leaving-${randomId(6)}`;
      const tabs = [await signedIn(ctx.topo, 0, ctx.sdk, userId), await signedIn(ctx.topo, 1, ctx.sdk, userId)];
      const bystander = await signedIn(ctx.topo, 0, ctx.sdk, `stays-${randomId(6)}`);
      const before = bystander.states.count;
      const res = await ctx.sdk.terminateUserConnections(userId);
      assert.equal(res.status, 200);
      for (const t of tabs) {
        await waitFor(() => t.states.items.some((s) => s !== 'connected'), {
          what: `${userId}'s connection on ${t.endpoint.name} to be closed`,
          seen: () => ({ states: t.states.items, errors: t.errors.items }),
        });
      }
      assert.equal(bystander.states.count, before, JSON.stringify(bystander.states.items));
      assert.equal(bystander.connection.state, 'connected');
    });
  });
}
