// Polling and recording, so that tests wait for what they expect instead of
// sleeping for a guessed time.

import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

// DEFAULT_TIMEOUT bounds the wait for what should happen soon (a connect, a
// subscribe, an event, a member event): only a test that fails waits that
// long. Generous, because the machines that run the suite are often loaded
// (CI, or several test runs at once), and a member event or a reconnect can
// then take seconds; never a figure a passing test depends on.
export const DEFAULT_TIMEOUT = 30_000;

// waitFor calls check until it returns a truthy value (which it returns) or
// the timeout passes, then throws with what was awaited and, when given,
// what was seen instead.
export async function waitFor(check, { timeout = DEFAULT_TIMEOUT, interval = 20, what = 'condition', seen } = {}) {
  const deadline = Date.now() + timeout;
  let lastErr;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      let msg = `timed out after ${timeout} ms waiting for ${what}`;
      if (seen) msg += `; seen: ${describe(seen())}`;
      if (lastErr) msg += `; last error: ${lastErr.message ?? lastErr}`;
      throw new Error(msg);
    }
    await sleep(interval);
  }
}

// withTimeout rejects when promise has not settled in time.
export function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// Recorder keeps what a binding received, in order.
export class Recorder {
  constructor(label) {
    this.label = label;
    this.items = [];
  }

  push = (item) => {
    this.items.push(item);
  };

  get count() {
    return this.items.length;
  }

  // waitCount resolves with the items once at least n arrived.
  async waitCount(n, opts = {}) {
    await waitFor(() => this.items.length >= n, {
      what: `${n} item(s) on ${this.label}`,
      seen: () => this.items,
      ...opts,
    });
    return this.items.slice();
  }

  // waitMatch resolves with the first item that matches pred.
  async waitMatch(pred, opts = {}) {
    return waitFor(() => this.items.find(pred), {
      what: `a matching item on ${this.label}`,
      seen: () => this.items,
      ...opts,
    });
  }
}

export function describe(v) {
  let s;
  try {
    s = JSON.stringify(v);
  } catch {
    s = String(v);
  }
  if (s === undefined) s = String(v);
  return s.length > 2000 ? s.slice(0, 2000) + '…' : s;
}

export function randomId(n = 10) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (const b of randomBytes(n)) s += alphabet[b % alphabet.length];
  return s;
}
