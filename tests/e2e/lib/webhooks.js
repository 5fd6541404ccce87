// The endpoint on loopback that the tests give Herald for an app's webhooks.

import http from 'node:http';

// WebhookEndpoint is an HTTP server on loopback that reads each request's
// body whole and hands it to handle(req, res, body), which a subclass
// defines and which answers. url is known once start has resolved.
export class WebhookEndpoint {
  constructor() {
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => this.handle(req, res, Buffer.concat(chunks)));
    });
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}/webhook`;
  }

  stop() {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(resolve));
  }
}
