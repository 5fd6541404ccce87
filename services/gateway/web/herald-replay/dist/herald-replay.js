/*! herald-replay 0.1.0. Browser build of src/index.js, written by `npm run build`. */
var HeraldReplay = (function () {
'use strict';

// herald-replay: makes a stock pusher-js 8 (or laravel-echo 2) client resume its channels on a Herald
// server after a reconnect or a page reload, without missing or repeating events. Protocol: the
// "The replay extension" part of Herald's docs/protocol.md.
//
// pusher-js keeps only event, channel, data and user_id of a frame, so the position Herald adds to
// each frame is read from the raw socket before pusher-js decodes it. The pusher-js internals this
// relies on are all reached in currentSocket() and attach(); if they are missing, the handle stays
// inert and the client behaves exactly as without it.

/** Version of this package. */
const VERSION = '0.1.0';

const DEFAULT_STORAGE_KEY = 'herald-replay:';
// Socket ids kept per app key, one per connection this tab made: the newest ones, since a
// toOthers() event triggered for a socket arrives soon after that socket was in use.
const MAX_SOCKETS = 16;
// Positions are opaque, but a very long one is not one Herald wrote.
const MAX_POSITION_LENGTH = 1024;
// Symbol.for, so that the ES module and the browser build see each other's mark.
const ATTACHED = Symbol.for('herald-replay.attached');

/**
 * @typedef {object} StorageLike
 * @property {(key: string) => (string | null)} getItem
 * @property {(key: string, value: string) => void} setItem
 * @property {(key: string) => void} [removeItem]
 */

/**
 * @typedef {object} AttachOptions
 * @property {StorageLike} [storage] where positions are kept; default sessionStorage when usable,
 *   else memory.
 * @property {string} [storageKey] prefix of every storage key; default "herald-replay:".
 * @property {Record<string, string>} [positions] starting positions by channel, as read from
 *   Herald by the server that rendered the page; they replace stored ones.
 * @property {((channel: string) => boolean) | Array<string | RegExp>} [channels] which channels
 *   to resume; default all.
 */

/**
 * @typedef {object} ReplayHandle
 * @property {(channel: string) => (string | undefined)} position the last position seen or set
 *   for a channel.
 * @property {(channel: string, position: string | null | undefined) => void} setPosition sets the
 *   position the next subscribe to the channel resumes from; null or undefined forgets it.
 * @property {() => void} detach stops recording and stops changing subscribes; stored positions
 *   stay.
 */

/**
 * A storage kept in memory: what attach() uses where sessionStorage does not exist. Share one
 * between pusher-js instances to let a new instance resume where an old one stopped.
 * @returns {StorageLike & { removeItem(key: string): void }}
 */
function memoryStorage() {
  const items = new Map();
  return {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => {
      items.set(key, String(value));
    },
    removeItem: (key) => {
      items.delete(key);
    },
  };
}

/**
 * Wires herald-replay to a pusher-js 8 instance. Call it right after creating the instance (or
 * Echo), before subscribing: subscriptions sent earlier are not resumed until the next reconnect.
 *
 * @param {object} target a pusher-js instance, `Echo.connector.pusher`, an Echo connector, or an
 *   Echo instance.
 * @param {AttachOptions} [options]
 * @returns {ReplayHandle}
 */
function attach(target, options) {
  const pusher = resolvePusher(target);
  options = options || {};
  if (pusher[ATTACHED]) {
    throw new Error('herald-replay: this pusher-js instance is already attached');
  }
  const tracked = channelFilter(options.channels);
  const storageKey = options.storageKey == null ? DEFAULT_STORAGE_KEY : String(options.storageKey);
  const store = new PositionStore(options.storage || defaultStorage(), () => storageKey + pusher.key);

  let detached = false;
  let warned = false;
  /** @type {Tap | null} the socket being read */
  let tap = null;
  /** @type {Map<string, Subscription>} subscriptions this handle opted in, by channel */
  const subscriptions = new Map();

  const warn = (/** @type {string} */ message) => {
    if (!warned && typeof console !== 'undefined') {
      warned = true;
      console.warn('herald-replay: ' + message + '; channels will not resume');
    }
  };

  // Finds the socket of the current connection and reads its frames. Returns null when there is
  // no connection, or when pusher-js no longer looks as expected: then nothing is changed.
  const ensureTap = () => {
    if (detached || pusher.connection.state !== 'connected') {
      return null;
    }
    const socket = currentSocket(pusher);
    const socketId = pusher.connection.socket_id;
    if (!socket || typeof socket.onmessage !== 'function' || typeof socketId !== 'string') {
      warn('cannot find the socket of this pusher-js instance');
      return null;
    }
    if (tap && tap.socket === socket) {
      if (socket.onmessage !== tap.reader) {
        tap.handler = socket.onmessage;
        socket.onmessage = tap.reader;
      }
      return tap;
    }
    release(tap);
    /** @type {Tap} */
    const next = { socket, socketId, ordinal: store.addSocket(socketId), handler: socket.onmessage, reader: null };
    next.reader = function (/** @type {{data?: unknown}} */ message) {
      try {
        read(next, message);
      } catch (e) {
        // A frame this cannot read is still pusher-js's to handle.
      }
      return next.handler.apply(this, arguments);
    };
    socket.onmessage = next.reader;
    tap = next;
    return tap;
  };

  // Moving a channel's position keeps the sockets it names: an event excluded for an earlier
  // socket of this tab can lie after the new position (Herald skips it in a replay, and the
  // request that triggered it can land after that socket closed). A channel seen for the first
  // time names the sockets from the one it came on.
  /** @param {string} channel @param {string} position @param {number} ordinal */
  const record = (channel, position, ordinal) => {
    const stored = store.get(channel);
    if (!stored) {
      store.set(channel, position, ordinal);
    } else if (stored.position !== position) {
      store.set(channel, position, stored.since);
    }
  };

  /**
   * Records what a raw frame says of its channel's position.
   * @param {Tap} from
   * @param {{data?: unknown}} message
   */
  const read = (from, message) => {
    const raw = message && message.data;
    // Most frames carry neither; skip the second JSON parse for them.
    if (detached || typeof raw !== 'string' || (raw.indexOf('position') < 0 && raw.indexOf('herald:') < 0)) {
      return;
    }
    const frame = JSON.parse(raw);
    if (!frame || typeof frame.channel !== 'string') {
      return;
    }
    const sub = subscriptions.get(frame.channel);
    if (!sub || sub.ordinal !== from.ordinal) {
      return;
    }
    switch (frame.event) {
      case 'pusher_internal:subscription_succeeded': {
        // The point from which this subscription delivers: adopt it, then advance with each event.
        const position = dataPosition(frame.data);
        if (position) {
          sub.succeeded = position;
          record(frame.channel, position, from.ordinal);
        }
        return;
      }
      case 'herald:resumed': {
        const position = dataPosition(frame.data);
        if (position) {
          record(frame.channel, position, from.ordinal);
        }
        return;
      }
      case 'herald:resume_failed':
        // Herald sends subscription_succeeded with the channel's current position before this;
        // that one is where live starts, so it stays, and the channel starts afresh from this
        // socket, as the app refetches its state. Anything else is the position that failed:
        // the next subscription_succeeded brings the new one.
        if (sub.succeeded && sub.succeeded !== sub.resume) {
          store.set(frame.channel, sub.succeeded, from.ordinal);
        } else {
          store.remove(frame.channel);
        }
        return;
    }
    if (isPosition(frame.position)) {
      record(frame.channel, frame.position, from.ordinal);
    }
  };

  /**
   * The data of a subscribe that opts in, resuming from the stored position if there is one.
   * @param {Tap} current
   * @param {{channel: string}} data
   * @returns {Record<string, unknown>}
   */
  const optIn = (current, data) => {
    const channel = data.channel;
    /** @type {Record<string, unknown>} */
    const out = Object.assign({}, data, { positions: true });
    /** @type {Subscription} */
    const sub = { ordinal: current.ordinal, resume: undefined, succeeded: undefined };
    const stored = store.get(channel);
    if (stored) {
      out.resume = stored.position;
      sub.resume = stored.position;
      // Herald already leaves out what was excluded for the socket that subscribes.
      const socketIds = store.socketIdsSince(stored.since).filter((id) => id !== current.socketId);
      if (socketIds.length > 0) {
        out.socket_ids = socketIds;
      }
    }
    subscriptions.set(channel, sub);
    return out;
  };

  const hadOwnSendEvent = Object.prototype.hasOwnProperty.call(pusher, 'send_event');
  const sendEvent = pusher.send_event;
  // pusher-js sends every subscribe through here, the ones after a reconnect included.
  /** @type {(name: string, data: any, channel?: string) => boolean} */
  const wrappedSendEvent = function (name, data, channel) {
    if (!detached && data && typeof data === 'object' && typeof data.channel === 'string' && tracked(data.channel)) {
      if (name === 'pusher:subscribe') {
        const current = ensureTap();
        if (current) {
          data = optIn(current, data);
        }
      } else if (name === 'pusher:unsubscribe') {
        // A later subscribe to this channel starts live, as it would on Pusher.
        subscriptions.delete(data.channel);
        store.remove(data.channel);
      }
    }
    return sendEvent.call(pusher, name, data, channel);
  };

  const onConnected = () => {
    // Records the new socket id even on a connection that subscribes to nothing: this tab may
    // trigger toOthers() events through it.
    ensureTap();
  };

  pusher[ATTACHED] = true;
  pusher.send_event = wrappedSendEvent;
  pusher.connection.bind('connected', onConnected);

  /** @type {ReplayHandle['setPosition']} */
  const setPosition = (channel, position) => {
    if (typeof channel !== 'string' || channel === '') {
      throw new TypeError('herald-replay: channel must be a non-empty string');
    }
    if (position == null) {
      store.remove(channel);
      return;
    }
    if (!isPosition(position)) {
      throw new TypeError('herald-replay: position must be a non-empty string');
    }
    // The socket ids this tab holds from that position on: the current socket if connected,
    // else only the ones still to come.
    const current = ensureTap();
    store.set(channel, position, current ? current.ordinal : store.nextOrdinal());
  };

  if (options.positions != null) {
    if (typeof options.positions !== 'object') {
      throw new TypeError('herald-replay: positions must be an object of channel to position');
    }
    for (const channel of Object.keys(options.positions)) {
      setPosition(channel, options.positions[channel]);
    }
  }
  ensureTap();

  return {
    position(channel) {
      const stored = store.get(channel);
      return stored ? stored.position : undefined;
    },
    setPosition,
    detach() {
      if (detached) {
        return;
      }
      detached = true;
      if (pusher.send_event === wrappedSendEvent) {
        if (hadOwnSendEvent) {
          pusher.send_event = sendEvent;
        } else {
          delete pusher.send_event;
        }
      }
      pusher.connection.unbind('connected', onConnected);
      release(tap);
      tap = null;
      subscriptions.clear();
      delete pusher[ATTACHED];
    },
  };
}

/**
 * @typedef {object} Tap
 * @property {{onmessage: Function}} socket
 * @property {string} socketId
 * @property {number} ordinal this socket's place in the tab's socket history
 * @property {Function} handler pusher-js's own onmessage
 * @property {Function | null} reader what the socket calls instead
 */

/**
 * @typedef {object} Subscription
 * @property {number} ordinal the socket it was sent on
 * @property {string | undefined} resume the position it asked to resume from
 * @property {string | undefined} succeeded the position its subscription_succeeded carried
 */

/**
 * Gives pusher-js its own handler back, unless something else replaced ours since.
 * @param {Tap | null} tap
 */
function release(tap) {
  if (tap && tap.socket.onmessage === tap.reader) {
    tap.socket.onmessage = tap.handler;
  }
}

// The raw socket of a pusher-js 8 instance: ConnectionManager.connection (a Connection, set once
// the handshake succeeded) .transport (a TransportConnection) .socket (the WebSocket, or an HTTP
// fallback socket with the same onmessage). Named the same in pusher-js's minified builds.
/** @param {any} pusher @returns {any} */
function currentSocket(pusher) {
  const connection = pusher.connection && pusher.connection.connection;
  const transport = connection && connection.transport;
  return (transport && transport.socket) || null;
}

/** @param {any} target @returns {any} the pusher-js instance */
function resolvePusher(target) {
  const candidates = [target, target && target.pusher, target && target.connector && target.connector.pusher];
  for (const candidate of candidates) {
    if (
      candidate &&
      typeof candidate.send_event === 'function' &&
      candidate.connection &&
      typeof candidate.connection.bind === 'function'
    ) {
      return candidate;
    }
  }
  throw new TypeError('herald-replay: attach() needs a pusher-js instance or Echo.connector.pusher');
}

/**
 * @param {AttachOptions['channels']} option
 * @returns {(channel: string) => boolean}
 */
function channelFilter(option) {
  if (option == null) {
    return () => true;
  }
  if (typeof option === 'function') {
    return (channel) => Boolean(option(channel));
  }
  if (Array.isArray(option)) {
    return (channel) =>
      option.some((pattern) => {
        if (typeof pattern === 'string') {
          return pattern === channel;
        }
        // Duck-typed so that a RegExp from another realm (an iframe) works too.
        if (pattern && typeof pattern.test === 'function') {
          pattern.lastIndex = 0;
          return pattern.test(channel);
        }
        return false;
      });
  }
  throw new TypeError('herald-replay: channels must be a function or an array of names and RegExps');
}

/** @param {unknown} value @returns {value is string} */
function isPosition(value) {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_POSITION_LENGTH;
}

// The position in the data of subscription_succeeded or herald:resumed, a JSON string on the wire.
/** @param {unknown} data @returns {string | undefined} */
function dataPosition(data) {
  /** @type {any} */
  let value = data;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch (e) {
      return undefined;
    }
  }
  return value && isPosition(value.position) ? value.position : undefined;
}

function defaultStorage() {
  try {
    const storage = globalThis.sessionStorage;
    if (storage) {
      // Safari's private mode and sandboxed frames expose a sessionStorage that throws.
      const probe = DEFAULT_STORAGE_KEY + 'probe';
      storage.setItem(probe, '1');
      storage.removeItem(probe);
      return storage;
    }
  } catch (e) {
    // Fall through to memory.
  }
  return memoryStorage();
}

// Positions per channel and the tab's socket history, per app key. Reads go through a cache
// filled from storage; writes go to both, and a storage that throws (quota, privacy settings)
// leaves the cache working for this page.
class PositionStore {
  /**
   * @param {StorageLike} storage
   * @param {() => string} prefix the storage key prefix followed by the app key
   */
  constructor(storage, prefix) {
    this.storage = storage;
    this.prefix = prefix;
    /** @type {Map<string, any>} */
    this.cache = new Map();
  }

  /**
   * @param {string} channel
   * @returns {{position: string, since: number} | undefined} since: ordinal of the first socket
   *   this tab held from that position on
   */
  get(channel) {
    const value = this.load(this.prefix() + ':channel:' + channel);
    return value && isPosition(value.position) && Number.isInteger(value.since) ? value : undefined;
  }

  /** @param {string} channel @param {string} position @param {number} since */
  set(channel, position, since) {
    this.save(this.prefix() + ':channel:' + channel, { position, since });
  }

  /** @param {string} channel */
  remove(channel) {
    this.save(this.prefix() + ':channel:' + channel, undefined);
  }

  /** @returns {Array<[number, string]>} */
  sockets() {
    const value = this.load(this.prefix() + ':sockets');
    return Array.isArray(value)
      ? value.filter((entry) => Array.isArray(entry) && Number.isInteger(entry[0]) && typeof entry[1] === 'string')
      : [];
  }

  nextOrdinal() {
    const sockets = this.sockets();
    return sockets.length > 0 ? sockets[sockets.length - 1][0] + 1 : 1;
  }

  /**
   * Appends a socket id to the history and returns its ordinal.
   * @param {string} socketId
   */
  addSocket(socketId) {
    const sockets = this.sockets();
    const known = sockets.find((entry) => entry[1] === socketId);
    if (known) {
      // Attached again to the same connection.
      return known[0];
    }
    const ordinal = sockets.length > 0 ? sockets[sockets.length - 1][0] + 1 : 1;
    this.save(this.prefix() + ':sockets', sockets.concat([[ordinal, socketId]]).slice(-MAX_SOCKETS));
    return ordinal;
  }

  /** @param {number} ordinal @returns {string[]} */
  socketIdsSince(ordinal) {
    return this.sockets()
      .filter((entry) => entry[0] >= ordinal)
      .map((entry) => entry[1]);
  }

  /** @param {string} key */
  load(key) {
    if (!this.cache.has(key)) {
      let value;
      try {
        const text = this.storage.getItem(key);
        value = text ? JSON.parse(text) : undefined;
      } catch (e) {
        value = undefined;
      }
      this.cache.set(key, value);
    }
    return this.cache.get(key);
  }

  /** @param {string} key @param {unknown} value undefined removes */
  save(key, value) {
    this.cache.set(key, value);
    try {
      if (value !== undefined) {
        this.storage.setItem(key, JSON.stringify(value));
      } else if (typeof this.storage.removeItem === 'function') {
        this.storage.removeItem(key);
      } else {
        this.storage.setItem(key, '');
      }
    } catch (e) {
      // Kept in the cache for this page.
    }
  }
}

return Object.freeze({ VERSION: VERSION, memoryStorage: memoryStorage, attach: attach });
})();
