// Headless Chromium for the browser tests: where it is, how it starts, and
// the page server that stands for a Laravel app's front end.

import fs from 'node:fs';
import http from 'node:http';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.HERALD_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const haveChromium = fs.existsSync(CHROMIUM);

// skipWithoutChromium is a describe's skip reason where Chromium is missing
// outside CI; in CI its absence fails the test (launchChromium).
export function skipWithoutChromium(what) {
  return !haveChromium && !process.env.CI
    ? `${CHROMIUM} is not installed (apt-get install chromium); ${what} runs in CI`
    : false;
}

// launchChromium starts a headless Chromium; in CI a missing one is an error,
// since .ci/run installs it.
export async function launchChromium() {
  if (!haveChromium) throw new Error(`CI is set but ${CHROMIUM} is missing: .ci/run installs it`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

// pageServer serves the page file at /, the scripts (URL path → file) and the
// app's /broadcasting/auth, signed by whichever SDK the test sets (setSDK),
// as a Laravel app serves its front end; a signing error answers 403.
export function pageServer(page, scripts) {
  let sdk = null;
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(fs.readFileSync(page));
    }
    if (req.method === 'GET' && Object.hasOwn(scripts, url.pathname)) {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      return res.end(fs.readFileSync(scripts[url.pathname]));
    }
    if (req.method === 'GET' && url.pathname === '/favicon.ico') {
      res.writeHead(204);
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === '/broadcasting/auth') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const form = new URLSearchParams(body);
      try {
        const auth = sdk.authorizeChannel(form.get('socket_id'), form.get('channel_name'));
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(auth));
      } catch (err) {
        res.writeHead(403, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ error: err.message }));
      }
    }
    res.writeHead(404);
    res.end();
  });
  return {
    server,
    setSDK: (s) => (sdk = s),
    listen: () =>
      new Promise((resolve) =>
        server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`)),
      ),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
