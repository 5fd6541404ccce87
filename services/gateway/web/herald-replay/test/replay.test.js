// herald-replay with real pusher-js 8 and laravel-echo 2 clients against the test server, run once
// with the ES module and once with the browser build.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import * as moduleBuild from '../src/index.js';
import { startServer, until, APP_KEY } from './server.js';
import { clients, connected, reconnected, listen, subscribesFor } from './clients.js';

const distSource = readFileSync(new URL('../dist/herald-replay.js', import.meta.url), 'utf8');
const browserBuild = vm.runInThisContext('(function () {\n' + distSource + '\nreturn HeraldReplay;\n})()');

const builds = [
  ['ES module', moduleBuild],
  ['browser build', browserBuild],
];

async function setup(t, serverOptions) {
  const server = await startServer(serverOptions);
  t.after(() => server.close());
  return { server, open: clients(t, server) };
}

/** Binds herald:resumed and herald:resume_failed on a channel and collects their data. */
function markers(channel) {
  const resumed = [];
  const failed = [];
  channel.bind('herald:resumed', (data) => resumed.push(data));
  channel.bind('herald:resume_failed', (data) => failed.push(data));
  return { resumed, failed };
}

const authorizeLater = (params, callback) => {
  const presence = params.channelName.startsWith('presence-');
  setTimeout(() => {
    callback(null, {
      auth: `${APP_KEY}:signature`,
      channel_data: presence ? JSON.stringify({ user_id: 'u1', user_info: { name: 'Ann' } }) : undefined,
    });
  }, 1);
};

for (const [name, HeraldReplay] of builds) {
  describe(`herald-replay (${name})`, () => {
    // ordersClient starts a server and a pusher-js client with HeraldReplay attached (memory
    // storage), subscribed to orders: orders.seen collects its e events, resumed and failed the
    // markers.
    async function ordersClient(t, serverOptions) {
      const { server, open } = await setup(t, serverOptions);
      const pusher = open.pusher();
      const handle = HeraldReplay.attach(pusher, { storage: HeraldReplay.memoryStorage() });
      const orders = listen(pusher, 'orders', 'e');
      const { resumed, failed } = markers(orders.channel);
      await orders.subscribed();
      return { server, open, pusher, handle, orders, resumed, failed };
    }

    it('records the position of each event from the raw frames before the app sees the event', async (t) => {
      const { server, open } = await setup(t);
      const pusher = open.pusher();
      const handle = HeraldReplay.attach(pusher, { storage: HeraldReplay.memoryStorage() });
      const orders = listen(pusher, 'orders', 'shipped');
      const atDispatch = [];
      orders.channel.bind('shipped', () => atDispatch.push(handle.position('orders')));
      await orders.subscribed();

      assert.deepEqual(subscribesFor(server, 'orders')[0].data, { auth: '', channel: 'orders', positions: true });
      assert.equal(handle.position('orders'), 'e1-0', 'position of subscription_succeeded');

      server.trigger('orders', 'shipped', { id: 1 });
      server.trigger('orders', 'shipped', { id: 2 });
      server.trigger('orders', 'shipped', { id: 3 });
      await until(() => orders.seen.length === 3, 'three events');

      assert.deepEqual(orders.seen, [{ id: 1 }, { id: 2 }, { id: 3 }]);
      assert.deepEqual(atDispatch, ['e1-1', 'e1-2', 'e1-3']);
      assert.equal(handle.position('orders'), 'e1-3');
    });

    it('resumes every channel after a reconnect, naming the sockets held since the position', async (t) => {
      const { server, open } = await setup(t);
      const pusher = open.pusher({ channelAuthorization: { customHandler: authorizeLater } });
      const handle = HeraldReplay.attach(pusher, { storage: HeraldReplay.memoryStorage() });
      const orders = listen(pusher, 'orders', 'e');
      const privateOrders = listen(pusher, 'private-orders', 'e');
      const room = listen(pusher, 'presence-room', 'e');
      const ordersMarkers = markers(orders.channel);
      await Promise.all([orders.subscribed(), privateOrders.subscribed(), room.subscribed()]);
      const firstId = await connected(pusher);

      server.trigger('orders', 'e', { n: 1 });
      // toOthers(): this socket does not get it.
      server.trigger('orders', 'e', { n: 2 }, { except: firstId });
      server.trigger('private-orders', 'e', { n: 1 });
      server.trigger('presence-room', 'e', { n: 1 });
      await until(() => privateOrders.seen.length === 1 && room.seen.length === 1, 'first events');
      assert.deepEqual(orders.seen, [{ n: 1 }]);
      assert.equal(handle.position('orders'), 'e1-1');

      server.dropAll();
      // While the client is away; the last one was triggered by this tab with toOthers().
      server.trigger('orders', 'e', { n: 3 });
      server.trigger('orders', 'e', { n: 4 }, { except: firstId });
      server.trigger('private-orders', 'e', { n: 2 });

      const secondId = await reconnected(pusher, firstId);
      await until(() => ordersMarkers.resumed.length === 1 && privateOrders.seen.length === 2, 'replay');
      await room.subscribed();

      const resubscribes = server.subscribes.filter((s) => s.socketId === secondId);
      assert.deepEqual(
        resubscribes.map((s) => s.data).sort((a, b) => a.channel.localeCompare(b.channel)),
        [
          { auth: '', channel: 'orders', positions: true, resume: 'e1-1', socket_ids: [firstId] },
          {
            auth: `${APP_KEY}:signature`,
            channel_data: JSON.stringify({ user_id: 'u1', user_info: { name: 'Ann' } }),
            channel: 'presence-room',
            positions: true,
            resume: 'e1-1',
            socket_ids: [firstId],
          },
          {
            auth: `${APP_KEY}:signature`,
            channel: 'private-orders',
            positions: true,
            resume: 'e1-1',
            socket_ids: [firstId],
          },
        ],
      );
      assert.deepEqual(orders.seen, [{ n: 1 }, { n: 3 }], 'nothing lost, nothing of its own back');
      assert.deepEqual(ordersMarkers.resumed, [{ replayed: 1, position: 'e1-3' }]);
      assert.deepEqual(privateOrders.seen, [{ n: 1 }, { n: 2 }]);
      assert.equal(pusher.channel('presence-room').members.count, 1);
      assert.equal(handle.position('orders'), 'e1-3');
      assert.equal(handle.position('private-orders'), 'e1-2');

      // The event this tab triggered with toOthers() lies after the position still: the first
      // socket stays named.
      server.dropAll();
      const thirdId = await reconnected(pusher, secondId);
      await until(() => ordersMarkers.resumed.length === 2, 'second replay');
      const third = subscribesFor(server, 'orders').at(-1);
      assert.equal(third.socketId, thirdId);
      assert.deepEqual(third.data, {
        auth: '', channel: 'orders', positions: true, resume: 'e1-3', socket_ids: [firstId, secondId],
      });
      assert.deepEqual(orders.seen, [{ n: 1 }, { n: 3 }], 'still not its own event');
      assert.deepEqual(ordersMarkers.resumed[1], { replayed: 0, position: 'e1-3' });

      server.trigger('orders', 'e', { n: 5 });
      await until(() => orders.seen.length === 3, 'live event');
      assert.deepEqual(orders.seen, [{ n: 1 }, { n: 3 }, { n: 5 }]);
      assert.equal(handle.position('orders'), 'e1-5');
    });

    it('names every socket the tab held since it first saw the channel, up to a bound', async (t) => {
      const { server, pusher, orders, resumed } = await ordersClient(t);
      server.trigger('orders', 'e', { n: 1 });
      await until(() => orders.seen.length === 1, 'event');
      const ids = [await connected(pusher)];

      const reconnect = async () => {
        const count = resumed.length;
        server.dropAll();
        ids.push(await reconnected(pusher, ids[ids.length - 1]));
        await until(() => resumed.length === count + 1, 'herald:resumed');
        return subscribesFor(server, 'orders').at(-1).data;
      };

      assert.deepEqual(await reconnect(), {
        auth: '', channel: 'orders', positions: true, resume: 'e1-1', socket_ids: [ids[0]],
      });
      assert.deepEqual(await reconnect(), {
        auth: '', channel: 'orders', positions: true, resume: 'e1-1', socket_ids: [ids[0], ids[1]],
      });
      server.trigger('orders', 'e', { n: 2 });
      await until(() => orders.seen.length === 2, 'live event');
      assert.deepEqual(await reconnect(), {
        auth: '', channel: 'orders', positions: true, resume: 'e1-2', socket_ids: [ids[0], ids[1], ids[2]],
      });
      for (let i = 0; i < 16; i++) {
        await reconnect();
      }
      // The newest 16 sockets are kept; the current one is left out: Herald excludes it anyway.
      assert.deepEqual(subscribesFor(server, 'orders').at(-1).data.socket_ids, ids.slice(-16, -1));
    });

    it('resumes after a page reload from the positions in storage', async (t) => {
      const { server, open } = await setup(t);
      // A sessionStorage stand-in with only the two methods every storage has.
      const items = {};
      const storage = {
        getItem: (key) => (key in items ? items[key] : null),
        setItem: (key, value) => {
          items[key] = String(value);
        },
      };

      const first = open.pusher();
      HeraldReplay.attach(first, { storage, storageKey: 'shop:' });
      const before = listen(first, 'orders', 'e');
      await before.subscribed();
      server.trigger('orders', 'e', { n: 1 });
      server.trigger('orders', 'e', { n: 2 });
      await until(() => before.seen.length === 2, 'events before the reload');
      const firstId = first.connection.socket_id;
      assert.deepEqual(JSON.parse(items[`shop:${APP_KEY}:channel:orders`]), { position: 'e1-2', since: 1 });
      assert.deepEqual(JSON.parse(items[`shop:${APP_KEY}:sockets`]), [[1, firstId]]);
      first.disconnect();

      server.trigger('orders', 'e', { n: 3 });
      server.trigger('orders', 'e', { n: 4 }, { except: firstId });

      const second = open.pusher();
      const handle = HeraldReplay.attach(second, { storage, storageKey: 'shop:' });
      assert.equal(handle.position('orders'), 'e1-2');
      const after = listen(second, 'orders', 'e');
      const { resumed } = markers(after.channel);
      await until(() => resumed.length === 1, 'herald:resumed');

      assert.deepEqual(subscribesFor(server, 'orders').at(-1).data, {
        auth: '', channel: 'orders', positions: true, resume: 'e1-2', socket_ids: [firstId],
      });
      assert.deepEqual(after.seen, [{ n: 3 }]);
      assert.equal(handle.position('orders'), 'e1-3');
      assert.deepEqual(JSON.parse(items[`shop:${APP_KEY}:channel:orders`]), { position: 'e1-3', since: 1 });
    });

    it('attaches to Echo.connector.pusher', async (t) => {
      const { server, open } = await setup(t);
      const echo = open.echo();
      const handle = HeraldReplay.attach(echo.connector.pusher, { storage: HeraldReplay.memoryStorage() });
      const seen = [];
      const resumed = [];
      echo
        .channel('orders')
        .listen('.OrderShipped', (data) => seen.push(data))
        .listen('.herald:resumed', (data) => resumed.push(data));
      await until(() => echo.connector.pusher.channel('orders').subscribed, 'subscribed');
      server.trigger('orders', 'OrderShipped', { id: 1 });
      await until(() => seen.length === 1, 'event');
      assert.equal(handle.position('orders'), 'e1-1');
      const firstId = echo.socketId();

      server.dropAll();
      server.trigger('orders', 'OrderShipped', { id: 2 });
      await reconnected(echo.connector.pusher, firstId);
      await until(() => resumed.length === 1, 'herald:resumed');

      assert.deepEqual(seen, [{ id: 1 }, { id: 2 }]);
      assert.deepEqual(subscribesFor(server, 'orders').at(-1).data, {
        auth: '', channel: 'orders', positions: true, resume: 'e1-1', socket_ids: [firstId],
      });
      assert.equal(handle.position('orders'), 'e1-2');
    });

    it('accepts an Echo instance and refuses a second attach', async (t) => {
      const { open } = await setup(t);
      const echo = open.echo();
      const handle = HeraldReplay.attach(echo, { storage: HeraldReplay.memoryStorage() });
      assert.throws(() => HeraldReplay.attach(echo.connector.pusher), /already attached/);
      handle.detach();
      HeraldReplay.attach(echo.connector, { storage: HeraldReplay.memoryStorage() }).detach();
      assert.throws(() => HeraldReplay.attach({}), TypeError);
      assert.throws(() => HeraldReplay.attach(null), TypeError);
    });

    for (const [order, resumeFailedFirst] of [
      ['after subscription_succeeded, as Herald sends it', false],
      ['before subscription_succeeded', true],
    ]) {
      it(`on herald:resume_failed ${order}, drops the position for the live one and lets the app see it`, async (t) => {
        const { server, pusher, handle, orders, resumed, failed } = await ordersClient(t);
        server.trigger('orders', 'e', { n: 1 });
        await until(() => orders.seen.length === 1, 'event');
        const firstId = await connected(pusher);

        server.resumeFailedFirst = resumeFailedFirst;
        server.failNextResume = 'window_exceeded';
        server.dropAll();
        server.trigger('orders', 'e', { n: 2 });
        server.trigger('orders', 'e', { n: 3 });
        await reconnected(pusher, firstId);
        await until(() => failed.length === 1 && orders.channel.subscribed, 'herald:resume_failed');

        assert.deepEqual(failed, [{ reason: 'window_exceeded' }]);
        assert.deepEqual(resumed, []);
        assert.deepEqual(orders.seen, [{ n: 1 }], 'no partial replay');
        assert.equal(handle.position('orders'), 'e1-3', 'where live starts');

        server.trigger('orders', 'e', { n: 4 });
        await until(() => orders.seen.length === 2, 'live event');
        const secondId = pusher.connection.socket_id;
        server.dropAll();
        await reconnected(pusher, secondId);
        await until(() => resumed.length === 1, 'herald:resumed');
        // Started afresh on the second socket.
        assert.deepEqual(subscribesFor(server, 'orders').at(-1).data, {
          auth: '', channel: 'orders', positions: true, resume: 'e1-4', socket_ids: [secondId],
        });
      });
    }

    it('starts from a server-rendered position, which replaces a stored one', async (t) => {
      const { server, open } = await setup(t);
      for (let n = 1; n <= 4; n++) {
        server.trigger('orders', 'e', { n });
      }
      const storage = HeraldReplay.memoryStorage();
      // An earlier page of this tab stored an older position.
      const earlier = open.pusher();
      await connected(earlier);
      const earlierHandle = HeraldReplay.attach(earlier, { storage });
      earlierHandle.setPosition('orders', 'e1-1');
      earlierHandle.detach();
      earlier.disconnect();

      const pusher = open.pusher();
      const handle = HeraldReplay.attach(pusher, { storage, positions: { orders: 'e1-2' } });
      assert.equal(handle.position('orders'), 'e1-2');
      const orders = listen(pusher, 'orders', 'e');
      const { resumed } = markers(orders.channel);
      await until(() => resumed.length === 1, 'herald:resumed');

      // No socket of this tab held that position before this page.
      assert.deepEqual(subscribesFor(server, 'orders').at(-1).data, {
        auth: '', channel: 'orders', positions: true, resume: 'e1-2',
      });
      assert.deepEqual(orders.seen, [{ n: 3 }, { n: 4 }]);
      assert.equal(handle.position('orders'), 'e1-4');
    });

    it('leaves untouched the channels it does not track and the clients without it', async (t) => {
      const { server, open } = await setup(t);
      const plain = open.pusher();
      const plainOrders = listen(plain, 'orders', 'e');
      const plainNews = listen(plain, 'news', 'e');
      const pusher = open.pusher();
      const handle = HeraldReplay.attach(pusher, {
        storage: HeraldReplay.memoryStorage(),
        channels: ['orders', /^private-/],
      });
      const orders = listen(pusher, 'orders', 'e');
      const news = listen(pusher, 'news', 'e');
      await Promise.all([plainOrders.subscribed(), plainNews.subscribed(), orders.subscribed(), news.subscribed()]);

      const rawSubscribe = (socketId, channel) =>
        server.subscribes.find((s) => s.socketId === socketId && s.data.channel === channel).raw;
      const pusherId = pusher.connection.socket_id;
      const plainId = plain.connection.socket_id;
      assert.equal(rawSubscribe(plainId, 'orders'), '{"event":"pusher:subscribe","data":{"auth":"","channel":"orders"}}');
      assert.equal(rawSubscribe(plainId, 'news'), '{"event":"pusher:subscribe","data":{"auth":"","channel":"news"}}');
      assert.equal(rawSubscribe(pusherId, 'news'), '{"event":"pusher:subscribe","data":{"auth":"","channel":"news"}}');
      assert.equal(
        rawSubscribe(pusherId, 'orders'),
        '{"event":"pusher:subscribe","data":{"auth":"","channel":"orders","positions":true}}',
      );

      server.trigger('orders', 'e', { n: 1, position: 'app data' });
      server.trigger('news', 'e', { n: 1 });
      await until(() => [plainOrders, plainNews, orders, news].every((l) => l.seen.length === 1), 'events');
      assert.deepEqual(orders.seen, plainOrders.seen);
      assert.deepEqual(orders.seen, [{ n: 1, position: 'app data' }]);
      assert.deepEqual(news.seen, plainNews.seen);
      assert.equal(handle.position('orders'), 'e1-1');
      assert.equal(handle.position('news'), undefined);
    });

    it('changes nothing visible with a server that ignores the extension', async (t) => {
      const { server, pusher, handle, orders } = await ordersClient(t, { extension: false });
      server.trigger('orders', 'e', { n: 1 });
      await until(() => orders.seen.length === 1, 'event');
      assert.equal(handle.position('orders'), undefined);

      const firstId = pusher.connection.socket_id;
      server.dropAll();
      await reconnected(pusher, firstId);
      await until(() => subscribesFor(server, 'orders').length === 2 && orders.channel.subscribed, 'resubscribed');
      assert.deepEqual(subscribesFor(server, 'orders')[1].data, { auth: '', channel: 'orders', positions: true });
      server.trigger('orders', 'e', { n: 2 });
      await until(() => orders.seen.length === 2, 'live event');
      assert.deepEqual(orders.seen, [{ n: 1 }, { n: 2 }]);
    });

    it('forgets a channel when the app unsubscribes, so a new subscription starts live', async (t) => {
      const { server, pusher, handle, orders } = await ordersClient(t);
      server.trigger('orders', 'e', { n: 1 });
      await until(() => orders.seen.length === 1, 'event');

      pusher.unsubscribe('orders');
      assert.equal(handle.position('orders'), undefined);
      const again = listen(pusher, 'orders', 'e');
      await again.subscribed();
      assert.deepEqual(subscribesFor(server, 'orders').at(-1).data, { auth: '', channel: 'orders', positions: true });
    });

    it('gives pusher-js back its own functions on detach', async (t) => {
      const { server, pusher, handle, orders } = await ordersClient(t);
      const socket = pusher.connection.connection.transport.socket;
      const reader = socket.onmessage;

      handle.detach();
      assert.equal(Object.hasOwn(pusher, 'send_event'), false);
      assert.notEqual(socket.onmessage, reader);
      server.trigger('orders', 'e', { n: 1 });
      await until(() => orders.seen.length === 1, 'event');
      assert.equal(handle.position('orders'), 'e1-0', 'no longer recorded');

      const firstId = pusher.connection.socket_id;
      server.dropAll();
      await reconnected(pusher, firstId);
      await until(() => subscribesFor(server, 'orders').length === 2, 'resubscribed');
      assert.deepEqual(subscribesFor(server, 'orders')[1].data, { auth: '', channel: 'orders' });
    });

    it('keeps positions in memory when the storage throws', async (t) => {
      const { server, open } = await setup(t);
      const broken = {
        getItem() {
          throw new Error('SecurityError');
        },
        setItem() {
          throw new Error('QuotaExceededError');
        },
      };
      const pusher = open.pusher();
      const handle = HeraldReplay.attach(pusher, { storage: broken });
      const orders = listen(pusher, 'orders', 'e');
      const { resumed } = markers(orders.channel);
      await orders.subscribed();
      server.trigger('orders', 'e', { n: 1 });
      await until(() => orders.seen.length === 1, 'event');
      assert.equal(handle.position('orders'), 'e1-1');

      const firstId = pusher.connection.socket_id;
      server.dropAll();
      server.trigger('orders', 'e', { n: 2 });
      await reconnected(pusher, firstId);
      await until(() => resumed.length === 1, 'herald:resumed');
      assert.deepEqual(orders.seen, [{ n: 1 }, { n: 2 }]);
    });

    it('stays inert when it cannot find the socket of a pusher-js instance', (t) => {
      const warn = t.mock.method(console, 'warn', () => {});
      const sent = [];
      // Shaped like a pusher-js whose connection internals were renamed.
      const pusher = {
        key: APP_KEY,
        send_event: (name, data, channel) => sent.push({ name, data, channel }) > 0,
        connection: { state: 'connected', socket_id: '1.1', bind() {}, unbind() {} },
      };
      const handle = HeraldReplay.attach(pusher, {
        storage: HeraldReplay.memoryStorage(),
        positions: { orders: 'e1-1' },
      });
      pusher.send_event('pusher:subscribe', { auth: '', channel: 'orders' });
      pusher.send_event('pusher:subscribe', { auth: '', channel: 'news' });
      assert.deepEqual(
        sent.map((s) => s.data),
        [{ auth: '', channel: 'orders' }, { auth: '', channel: 'news' }],
      );
      assert.equal(warn.mock.callCount(), 1);
      assert.match(warn.mock.calls[0].arguments[0], /cannot find the socket/);
      handle.detach();
    });

    it('validates its arguments', () => {
      const storage = HeraldReplay.memoryStorage();
      storage.setItem('a', 1);
      assert.equal(storage.getItem('a'), '1');
      storage.removeItem('a');
      assert.equal(storage.getItem('a'), null);
      assert.throws(() => HeraldReplay.attach({ send_event() {} }), TypeError);
    });
  });
}
