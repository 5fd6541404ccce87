// Types of herald-replay (src/index.js).

/** Where positions are kept: sessionStorage, or anything with the same methods. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  /** Used when present; otherwise a forgotten entry is written as an empty string. */
  removeItem?(key: string): void;
}

/**
 * The parts of a pusher-js 8 instance that attach() uses. A `Pusher` from pusher-js is one; so is
 * `Echo.connector.pusher` with laravel-echo 2.
 */
export interface PusherLike {
  key: string;
  send_event(name: string, data: any, channel?: string): boolean;
  connection: {
    state: string;
    socket_id: string;
    bind(event: string, callback: (...args: any[]) => void): unknown;
    unbind(event: string, callback?: (...args: any[]) => void): unknown;
  };
}

/** What attach() accepts: a pusher-js instance, an Echo connector, or an Echo instance. */
export type AttachTarget = PusherLike | { pusher: PusherLike } | { connector: { pusher: PusherLike } };

export interface AttachOptions {
  /** Where positions are kept. Default: sessionStorage when usable, else memory. */
  storage?: StorageLike;
  /** Prefix of every storage key. Default: "herald-replay:". */
  storageKey?: string;
  /**
   * Starting positions by channel, as read by the server that rendered the page
   * (`GET /apps/{id}/channels/{name}?info=position`). They replace stored positions.
   */
  positions?: Record<string, string>;
  /** Which channels to resume: a predicate, or names and patterns. Default: all. */
  channels?: ((channel: string) => boolean) | ReadonlyArray<string | RegExp>;
}

export interface ReplayHandle {
  /** The last position seen or set for the channel, or undefined. */
  position(channel: string): string | undefined;
  /**
   * Sets the position the next subscribe to the channel resumes from (after a reconnect, a
   * reload, or a new subscription). null or undefined forgets it: the next subscribe starts live.
   */
  setPosition(channel: string, position: string | null | undefined): void;
  /** Stops recording positions and changing subscribes. Stored positions stay. */
  detach(): void;
}

/** Payload of the `herald:resumed` event on a channel. */
export interface ResumedData {
  replayed: number;
  position: string;
}

/** Payload of the `herald:resume_failed` event on a channel: the app should refetch its state. */
export interface ResumeFailedData {
  reason: 'window_exceeded' | 'history_lost' | 'invalid_position' | 'invalid_rewind' | (string & {});
}

/** Version of this package. */
export const VERSION: string;

/**
 * Wires herald-replay to a pusher-js 8 instance, right after creating it and before subscribing.
 * Throws a TypeError when the target is not a pusher-js instance, and an Error when it is
 * already attached.
 */
export function attach(target: AttachTarget, options?: AttachOptions): ReplayHandle;

/** A storage kept in memory, the default where sessionStorage does not exist. */
export function memoryStorage(): Required<StorageLike>;
