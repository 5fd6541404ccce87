// Real pusher-js and laravel-echo clients pointed at a test server, closed after each test.
import Pusher from 'pusher-js';
import Echo from 'laravel-echo';
import { APP_KEY, until } from './server.js';

/**
 * Opens clients for one test and closes them all in after().
 * @param {import('node:test').TestContext} t
 * @param {{port: number}} server
 */
export function clients(t, server) {
  const opened = [];
  t.after(() => {
    for (const client of opened) {
      client.disconnect();
    }
  });
  const options = (extra) => ({
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: server.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    ...extra,
  });
  return {
    /** A pusher-js instance; it starts connecting at once. */
    pusher(extra = {}) {
      const pusher = new Pusher(APP_KEY, options(extra));
      opened.push(pusher);
      return pusher;
    },
    /** A laravel-echo instance on the pusher broadcaster. */
    echo(extra = {}) {
      const echo = new Echo(options({ broadcaster: 'pusher', key: APP_KEY, Pusher, ...extra }));
      opened.push(echo);
      return echo;
    },
  };
}

/** Resolves once the instance is connected, with its socket id. */
export function connected(pusher) {
  return until(() => pusher.connection.state === 'connected' && pusher.connection.socket_id, 'connected');
}

/** Waits for the socket id to change from `previous`, that is for a reconnect, and returns it. */
export function reconnected(pusher, previous) {
  return until(
    () => {
      const { state, socket_id: socketId } = pusher.connection;
      return state === 'connected' && socketId !== previous && socketId;
    },
    'reconnected',
  );
}

/** Subscribes and collects what the app sees of one event name. */
export function listen(pusher, channelName, eventName) {
  const channel = pusher.subscribe(channelName);
  const seen = [];
  channel.bind(eventName, (data) => seen.push(data));
  return { channel, seen, subscribed: () => until(() => channel.subscribed, `subscribed to ${channelName}`) };
}

/** The subscribes the server received for a channel, newest last. */
export function subscribesFor(server, channel) {
  return server.subscribes.filter((s) => s.data.channel === channel);
}
