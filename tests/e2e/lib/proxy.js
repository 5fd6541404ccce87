// RouteProxy forwards TCP connections to a target that a test can change,
// cuts the connections it holds, and can hold new ones back: a client keeps
// one address while the test decides which gateway its next connection
// reaches and when it gets through, or drops its connection as a network
// would.

import net from 'node:net';

export class RouteProxy {
  constructor(target) {
    this.target = target;
    this.connections = 0;
    this.sockets = new Set();
    this.waiting = null; // connections held back, while holding
    this.server = net.createServer((client) => {
      this.connections++;
      client.on('error', () => {});
      // A socket reads nothing until piped, so a held client's first bytes wait.
      if (this.waiting) this.waiting.push(client);
      else this.forward(client);
    });
  }

  forward(client) {
    if (client.destroyed) return;
    const { host, port } = this.target;
    const upstream = net.connect(port, host);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => this.sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  // hold keeps new connections waiting, accepted but not forwarded.
  hold() {
    this.waiting ??= [];
  }

  // release forwards the waiting connections to the current target.
  release() {
    const waiting = this.waiting ?? [];
    this.waiting = null;
    for (const c of waiting) this.forward(c);
  }

  get held() {
    return (this.waiting ?? []).filter((c) => !c.destroyed).length;
  }

  listen() {
    return new Promise((resolve) => {
      this.server.listen(0, '127.0.0.1', () => {
        this.host = '127.0.0.1';
        this.port = this.server.address().port;
        resolve(this);
      });
    });
  }

  // route sends the next connections to target; open ones stay where they are.
  route(target) {
    this.target = target;
  }

  // cut drops every open connection at once, without a close frame.
  cut() {
    for (const s of this.sockets) s.destroy();
  }

  async close() {
    for (const c of this.waiting ?? []) c.destroy();
    this.waiting = null;
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
