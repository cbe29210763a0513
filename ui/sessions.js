// The sessions list: refreshed on the settings' interval (and on demand), rendered in
// place so rows never move under the pointer, and each app's button: click opens it
// (browser, terminal or address, as the engine says), the copy button copies what it
// gives.

import * as api from './api.js';
import { $, $$, button, el, errorText, formatAge, icon, setText } from './dom.js';
import { connection, connectionKey, on, pendingKey, state } from './state.js';
import { copy, setStatus } from './status.js';
import { adoptTunnel, isServing, tunnelFor } from './tunnels.js';

const COPY_TITLES = { browser: 'Copy URL', terminal: 'Copy ssh command', address: 'Copy address' };

let timer = 0;
let refreshing = false;
/** A refresh was asked for while one ran (for another connection, maybe). */
let again = false;
/** The connection the list shows. */
let shownKey = '';

/** Lists the sessions now; the banner follows the engine's account events. */
export async function refresh(manual = false) {
  clearTimeout(timer);
  const c = connection();
  if (!c) return;
  if (!manual && document.hidden) { schedule(); return; }
  if (refreshing) { again = true; return; }
  refreshing = true;
  $('#refresh-box').classList.add('busy');
  try {
    const r = await api.listSessions();
    // A reply for a connection that is no longer the current one is old news.
    if (connectionKey(r.connection) === connectionKey(connection())) {
      state.sessions = r.sessions;
      state.refreshedAt = Date.now();
      state.stale = false;
      render();
      tickRefreshed();
    }
  } catch (e) {
    if (connection()) {
      state.stale = true;
      render();
    }
  } finally {
    refreshing = false;
    $('#refresh-box').classList.remove('busy');
    if (again) {
      again = false;
      refresh(true);
    } else {
      schedule();
    }
  }
}

function schedule() {
  clearTimeout(timer);
  if (!connection()) return;
  const [min, max] = state.refreshBounds;
  const secs = Math.min(max, Math.max(min, Number(state.settings.refresh_secs) || min));
  timer = setTimeout(() => refresh(false), secs * 1000);
}

/** When the account changes: a new connection starts a new list. */
function onAccount() {
  const key = connectionKey(connection());
  if (key !== shownKey) {
    shownKey = key;
    state.sessions = [];
    state.refreshedAt = 0;
    state.stale = false;
    state.pending.clear();
    if (key) refresh(true);
    else clearTimeout(timer);
  }
  $('#refresh-box').hidden = !connection();
  render();
  tickRefreshed();
}

/** The "updated … ago" line, in coarse steps: the text (and so a repaint) changes every
 *  10 s at most, which keeps an idle window from costing CPU. */
export function tickRefreshed() {
  if (connection() && state.refreshedAt) {
    const s = Math.round((Date.now() - state.refreshedAt) / 1000);
    const ago = s < 10 ? 'just now' : s < 120 ? `${Math.floor(s / 10) * 10} s ago` : `${Math.round(s / 60)} min ago`;
    setText($('#refreshed'), `${state.stale ? 'last updated' : 'updated'} ${ago}`);
  } else {
    setText($('#refreshed'), refreshing ? 'loading…' : '—');
  }
}

function matches(s, q) {
  if (!q) return true;
  const hay = [s.name, s.status, s.image || '', ...s.apps.map((a) => `${a.label} ${a.name}`)].join(' ').toLowerCase();
  return q.split(/\s+/).every((w) => hay.includes(w));
}

/** Re-renders the list from the state, keeping rows, focus and scroll. */
export function render() {
  const ul = $('#sessions');
  const q = $('#filter').value.trim().toLowerCase();
  const list = state.sessions.filter((s) => matches(s, q));
  const existing = new Map($$(':scope > li', ul).map((li) => [li.dataset.id, li]));
  let prev = null;
  for (const s of list) {
    let li = existing.get(s.id);
    if (!li) li = createRow(s);
    existing.delete(s.id);
    updateRow(li, s);
    const want = prev ? prev.nextElementSibling : ul.firstElementChild;
    if (li !== want) ul.insertBefore(li, want);
    prev = li;
  }
  for (const li of existing.values()) li.remove();

  const empty = $('#sessions-empty');
  const c = connection();
  let message = '';
  if (state.account.state === 'failed') {
    message = `Not signed in to ${state.account.profile}. Retry, or edit the profile.`;
  } else if (!c) {
    message = 'Not signed in.';
  } else if (state.sessions.length === 0 && state.refreshedAt) {
    message = `No sessions in ${c.profile}. Start one in the Backend.AI WebUI; it appears here.`;
  } else if (state.sessions.length === 0) {
    message = 'Loading sessions…';
  } else if (list.length === 0) {
    message = `No session matches “${q}”.`;
  }
  setText(empty, message);
  empty.hidden = !message;
  const n = state.sessions.length;
  setText($('#session-count'), q ? `${list.length} of ${n}` : n ? `${n} session${n === 1 ? '' : 's'}` : '');
}

function createRow(s) {
  const li = el('li', 'session');
  li.dataset.id = s.id;
  li.tabIndex = -1;
  li.append(el('span', 'dot'));
  const info = el('div', 's-info');
  info.append(el('div', 's-name'), el('div', 's-meta'));
  const apps = el('div', 'apps');
  const note = el('div', 's-note');
  note.hidden = true;
  li.append(info, apps, note);
  return li;
}

function updateRow(li, s) {
  li.dataset.name = s.name;
  li.dataset.status = s.status;
  $('.dot', li).className = `dot ${s.status_class}`;
  setText($('.s-name', li), s.name);
  $('.s-name', li).title = s.name;
  const age = formatAge(s.created_at);
  const when = age && (s.status_class === 'running' ? `up ${age}` : `created ${age} ago`);
  setText($('.s-meta', li), [s.status, when, s.image].filter(Boolean).join(' · '));
  const apps = $('.apps', li);
  if (s.unavailable && s.apps.length === 0) {
    let why = $('.s-unavailable', apps);
    if (!why) {
      apps.replaceChildren();
      why = el('span', 's-unavailable muted');
      apps.append(why);
    }
    setText(why, s.unavailable);
  } else {
    const old = $('.s-unavailable', apps);
    if (old) old.remove();
    const groups = new Map($$(':scope > .app-group', apps).map((g) => [g.dataset.app, g]));
    let prev = null;
    for (const app of s.apps) {
      let g = groups.get(app.name);
      if (!g) g = createAppGroup(app);
      groups.delete(app.name);
      updateAppGroup(g, s, app);
      const want = prev ? prev.nextElementSibling : apps.firstElementChild;
      if (g !== want) apps.insertBefore(g, want);
      prev = g;
    }
    for (const g of groups.values()) g.remove();
  }
  // One line for what is happening to this session's apps: starting, or why one failed.
  const note = $('.s-note', li);
  let text = '';
  let cls = 's-note';
  for (const app of s.apps) {
    const p = state.pending.get(pendingKey(s.id, app.name));
    if (p && p.state === 'starting') {
      text = `Starting ${app.label}… the server can take up to 30 s`;
      cls = 's-note busy';
      break;
    }
    if (p && p.state === 'failed') {
      text = `${app.label}: ${p.message}`;
      cls = 's-note error';
    }
  }
  setText(note, text);
  note.className = cls;
  note.hidden = !text;
}

function createAppGroup(app) {
  const g = el('span', 'app-group');
  g.dataset.app = app.name;
  const open = button('app-button');
  open.append(icon(app.icon), el('span', 'app-label', app.label), el('span', 'app-state'), el('span', 'app-port'));
  const cp = button('app-copy');
  cp.append(icon('copy', 'icon small'));
  g.append(open, cp);
  return g;
}

function updateAppGroup(g, s, app) {
  const open = $('.app-button', g);
  const cp = $('.app-copy', g);
  const t = tunnelFor(s.id, app.name);
  const p = state.pending.get(pendingKey(s.id, app.name));
  let st = '';
  if (p && p.state === 'starting') st = 'starting';
  else if (isServing(t)) st = 'open';
  else if (p && p.state === 'failed') st = 'failed';
  g.className = `app-group ${st}`.trim();
  g.dataset.state = st || 'idle';
  setText($('.app-port', g), st === 'open' ? `:${t.local_addr.split(':').pop()}` : '');
  const verb = app.action === 'terminal' ? 'Open a terminal with SSH to' : app.action === 'browser' ? 'Open' : 'Open a tunnel to';
  let title = `${verb} ${app.action === 'terminal' ? s.name : `${app.label} in ${s.name}`}`;
  if (st === 'failed') title = `${p.message} (click to retry)`;
  else if (st === 'open') title = `${title} (${t.address})`;
  open.title = title;
  open.setAttribute('aria-label', title);
  cp.title = COPY_TITLES[app.action];
  cp.setAttribute('aria-label', `${COPY_TITLES[app.action]} of ${app.label} in ${s.name}`);
  open.onclick = () => clickApp(s, app);
  cp.onclick = () => copyApp(s, app);
}

/** The app's tunnel, started (or reused); null when it failed (the row says why). */
async function ensureTunnel(s, app, launch) {
  const k = pendingKey(s.id, app.name);
  if (state.pending.get(k)?.state === 'starting') return null;
  if (!tunnelFor(s.id, app.name)) {
    state.pending.set(k, { state: 'starting' });
    setStatus(`Starting ${app.label}… the server can take up to 30 s`);
    render();
  }
  try {
    const r = await api.openApp(s.id, app.name, launch);
    state.pending.delete(k);
    adoptTunnel(r.tunnel);
    return r;
  } catch (e) {
    state.pending.set(k, { state: 'failed', message: errorText(e) });
    setStatus(`${app.label} in ${s.name}: ${errorText(e)}`, 'error');
    return null;
  } finally {
    render();
  }
}

async function clickApp(s, app) {
  const r = await ensureTunnel(s, app, true);
  if (!r) return;
  if (r.action === 'browser') setStatus(`Opened ${app.label} of ${s.name} in the browser: ${r.url}`);
  else if (r.action === 'terminal') setStatus(`Opened a terminal with ssh into ${s.name} (through ${r.address})`);
  else {
    setStatus(`${app.label} of ${s.name} listens on ${r.address}`);
    await copy(r.address, `address ${r.address}`);
  }
}

async function copyApp(s, app) {
  const r = await ensureTunnel(s, app, false);
  if (!r) return;
  if (r.action === 'browser' && r.url) await copy(r.url, 'URL');
  else if (r.action === 'terminal' && r.ssh_command) await copy(r.ssh_command, 'ssh command');
  else await copy(r.address, 'address');
}

/** Wires the list to the state's topics and the filter box. */
export function bindSessions() {
  on('account', onAccount);
  on('tunnels', render);
  on('settings', schedule);
  $('#refresh-button').onclick = () => refresh(true);
  $('#filter').addEventListener('input', render);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && connection() && Date.now() - state.refreshedAt > state.settings.refresh_secs * 1000) refresh(true);
  });
}
