// Herald status page: polls data.json every few seconds and redraws the
// tables in place. Values are written as text, never as HTML.
'use strict';
(function () {
  const PERIOD = 3000;
  let updates = 0;

  const num = (n, digits = 0) => (n === undefined || n === null ? '–' : Number(n).toLocaleString('en', { maximumFractionDigits: digits }));
  const bytes = (n) => {
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
  };
  const since = (iso) => {
    const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (s < 120) return `${Math.round(s)} s`;
    if (s < 7200) return `${Math.round(s / 60)} min`;
    if (s < 172800) return `${Math.round(s / 3600)} h`;
    return `${Math.round(s / 86400)} d`;
  };
  const text = (id, v) => { document.getElementById(id).textContent = v; };

  function cell(tr, value, cls, key) {
    const td = document.createElement('td');
    td.textContent = value;
    if (cls) td.className = cls;
    if (key) td.dataset.k = key;
    tr.appendChild(td);
  }

  function fill(id, rows, draw) {
    const body = document.querySelector(`#${id} tbody`);
    const out = document.createDocumentFragment();
    for (const r of rows) {
      const tr = document.createElement('tr');
      draw(tr, r);
      out.appendChild(tr);
    }
    body.replaceChildren(out);
  }

  function render(d) {
    const live = d.gateways.filter((g) => !g.gone);
    const sum = (rows, k) => rows.reduce((a, r) => a + (r[k] || 0), 0);
    text('total-connections', num(sum(live, 'connections')));
    text('total-messages-rate', num(sum(live, 'messages_per_second'), 1));
    text('total-events-rate', num(sum(d.apps, 'events_per_second'), 1));
    text('total-resumes', num(sum(live, 'resumes')));
    text('total-resume-failures', num(sum(live, 'resume_failures')));
    text('total-slow', num(sum(live, 'slow_consumer_closes')));

    fill('gateways', d.gateways, (tr, g) => {
      const state = g.gone ? 'gone' : g.draining ? 'draining' : 'serving';
      cell(tr, g.id, '', 'id');
      cell(tr, state, g.gone ? 'bad' : g.draining ? 'warn' : 'ok', 'state');
      cell(tr, g.nats, g.nats === 'CONNECTED' ? 'ok' : 'bad', 'nats');
      cell(tr, num(g.connections), '', 'connections');
      cell(tr, num(g.channels), '', 'channels');
      cell(tr, num(g.messages_per_second, 1), '', 'messages_per_second');
      cell(tr, `${bytes(g.bytes_out_per_second)}/s`, '', 'bytes_out');
      cell(tr, `${bytes(g.bytes_in_per_second)}/s`, '', 'bytes_in');
      cell(tr, num(g.client_events_per_second, 1), '', 'client_events_per_second');
      cell(tr, num(g.slow_consumer_closes), g.slow_consumer_closes ? 'warn' : '', 'slow_consumer_closes');
      cell(tr, num(g.resumes), '', 'resumes');
      cell(tr, num(g.resume_failures), g.resume_failures ? 'warn' : '', 'resume_failures');
      cell(tr, num(g.replayed_events), '', 'replayed_events');
      cell(tr, since(g.started), '', 'up');
    });
    fill('apps', d.apps, (tr, a) => {
      cell(tr, a.disabled ? `${a.id} (disabled)` : a.id, '', 'id');
      cell(tr, num(a.connections), '', 'connections');
      cell(tr, num(a.channels), '', 'channels');
      cell(tr, num(a.presence_members), '', 'presence_members');
      cell(tr, num(a.events_per_second, 1), '', 'events_per_second');
      cell(tr, num(a.webhook_backlog), a.webhook_backlog > 100 ? 'warn' : '', 'webhook_backlog');
      cell(tr, num(a.webhook_retries), a.webhook_retries ? 'warn' : '', 'webhook_retries');
    });
    fill('streams', d.streams, (tr, s) => {
      cell(tr, s.name, '', 'name');
      cell(tr, num(s.messages), '', 'messages');
      cell(tr, bytes(s.bytes), '', 'bytes');
      cell(tr, num(s.replicas), '', 'replicas');
      cell(tr, s.leader, '', 'leader');
      cell(tr, num(s.lagging_replicas), s.lagging_replicas ? 'bad' : '', 'lagging');
    });
    const errs = document.getElementById('errors');
    errs.replaceChildren(...(d.errors || []).map((e) => { const li = document.createElement('li'); li.textContent = e; return li; }));
  }

  async function tick() {
    try {
      const res = await fetch('status/data.json', { credentials: 'same-origin', cache: 'no-store' });
      if (res.status === 401) {
        text('state', 'not signed in: open this page with ?token=… (HERALD_ADMIN_TOKEN)');
        return;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const data = await res.json();
      render(data);
      fillApps(data.apps);
      updates++;
      text('updates', String(updates));
      text('updated', `updated ${new Date().toLocaleTimeString()}`);
      text('state', 'live');
      document.getElementById('state').className = 'ok';
    } catch (err) {
      text('state', `cannot reach Herald: ${err.message}`);
      document.getElementById('state').className = 'bad';
    } finally {
      setTimeout(tick, document.hidden ? PERIOD * 5 : PERIOD);
    }
  }
  // Live tail of one channel: names and sizes (data only when the server
  // shows payloads), the last 50 lines, newest first.
  let tail = null;
  const tailButton = document.getElementById('tail-button');
  function fillApps(apps) {
    const select = document.getElementById('tail-app');
    if (select.options.length === apps.length) return;
    select.replaceChildren(...apps.map((a) => { const o = document.createElement('option'); o.value = a.id; o.textContent = a.id; return o; }));
  }
  document.getElementById('tail-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (tail) { tail.close(); tail = null; tailButton.textContent = 'Tail'; return; }
    const q = new URLSearchParams({ app: document.getElementById('tail-app').value, channel: document.getElementById('tail-channel').value });
    const body = document.querySelector('#tail tbody');
    body.replaceChildren();
    tail = new EventSource(`status/tail?${q}`);
    tailButton.textContent = 'Stop';
    tail.onmessage = (m) => {
      const l = JSON.parse(m.data);
      const tr = document.createElement('tr');
      cell(tr, new Date(l.time).toLocaleTimeString());
      cell(tr, l.kind);
      cell(tr, l.event);
      cell(tr, num(l.bytes));
      cell(tr, l.data || (l.dropped ? `(${l.dropped} not shown)` : ''));
      body.prepend(tr);
      while (body.children.length > 50) body.lastChild.remove();
    };
    tail.onerror = () => { if (tail && tail.readyState === EventSource.CLOSED) { tail = null; tailButton.textContent = 'Tail'; } };
  });

  document.addEventListener('visibilitychange', () => { if (!document.hidden) text('state', 'live'); });
  tick();
})();
