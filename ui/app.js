// Porthole's window: renders what the engine reports and calls its commands. Tunnel
// status arrives as `tunnel` events pushed by the engine; only the sessions list (a
// server request) refreshes on a timer.

const tauri = window.__TAURI__;
const call = (cmd, args) => tauri.core.invoke(cmd, args);
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

const LABELS = {
  jupyter: 'Jupyter', jupyterlab: 'JupyterLab', tensorboard: 'TensorBoard', vscode: 'VS Code',
  'vscode-desktop': 'VS Code Desktop', ttyd: 'Terminal', sshd: 'SSH', sftpd: 'SFTP',
};
const COPY_TITLES = { browser: 'Copy URL', terminal: 'Copy ssh command', address: 'Copy address' };

const S = {
  profiles: [],
  connected: null,
  failedProfile: null,
  settings: { refresh_secs: 10, theme: 'system', remember_ports: true, start_at_login: false },
  sessions: [],
  refreshedAt: 0,
  refreshing: false,
  refreshTimer: 0,
  tunnels: new Map(),
  removed: new Set(),
  rates: new Map(),
  pending: new Map(),
  view: 'main',
  editing: null,
  logsTimer: 0,
};

// ----- small helpers -----

function errorText(e) {
  if (e && typeof e === 'object' && 'message' in e) return String(e.message);
  return String(e);
}

function appLabel(name) {
  if (LABELS[name]) return LABELS[name];
  return name ? name[0].toUpperCase() + name.slice(1) : name;
}

function formatBytes(n) {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  do { v /= 1000; i += 1; } while (v >= 1000 && i < units.length - 1);
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

function formatAge(iso) {
  const t = Date.parse(iso || '');
  if (Number.isNaN(t)) return '';
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 60) return '< 1 min';
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function icon(id, cls = 'icon') {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS('http://www.w3.org/2000/svg', 'use');
  use.setAttribute('href', `#i-${id}`);
  svg.append(use);
  return svg;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

let toastTimer = 0;
function toast(text) {
  const t = $('#toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 2200);
}

function setStatus(text, kind = '') {
  const s = $('#status-line');
  s.textContent = text;
  s.className = kind;
}

async function copy(text, what) {
  try {
    await call('copy_text', { text });
    toast(`Copied ${what}`);
  } catch (e) {
    setStatus(errorText(e), 'error');
  }
}

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme || 'system';
}

// ----- views -----

function show(view) {
  S.view = view;
  for (const v of ['signin', 'main', 'logs', 'settings']) $(`#view-${v}`).hidden = v !== view;
  for (const tab of $$('.tab')) {
    if (tab.dataset.view === view) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
  }
  $('.tabs').hidden = view === 'signin' && !S.connected && !S.failedProfile;
  clearInterval(S.logsTimer);
  if (view === 'logs') {
    loadLogs();
    S.logsTimer = setInterval(loadLogs, 2000);
  }
  if (view === 'settings') loadSettings();
}

function showBanner(e) {
  $('#banner-text').textContent = errorText(e);
  $('#banner-edit').hidden = !(S.connected ? !S.connected.demo : S.failedProfile);
  $('#banner').hidden = false;
}

function clearBanner() {
  $('#banner').hidden = true;
}

function setConnected(c) {
  S.connected = c;
  S.failedProfile = null;
  setText($('#profile-name'), c ? c.profile : 'none');
  $('#refresh-box').hidden = !c;
  clearBanner();
}

// ----- start -----

async function init() {
  bindEvents();
  await tauri.event.listen('tunnel', (e) => onTunnelEvent(e.payload));
  await tauri.event.listen('tunnels', (e) => replaceTunnels(e.payload));
  call('app_version').then((v) => setText($('#version'), `Porthole ${v}`)).catch(() => {});
  setInterval(tick, 1000);
  try {
    const st = await call('startup');
    S.profiles = st.profiles;
    S.settings = st.settings;
    applyTheme(st.settings.theme);
    replaceTunnels(st.tunnels);
    if (st.connected) {
      setConnected(st.connected);
      S.sessions = [];
      show('main');
      refresh();
    } else if (st.error) {
      const active = st.profiles.find((p) => p.active);
      S.failedProfile = active ? active.name : null;
      setText($('#profile-name'), S.failedProfile || 'none');
      show('main');
      renderSessions();
      showBanner(st.error);
    } else {
      openSignIn(null);
    }
  } catch (e) {
    openSignIn(null);
    showFormResult(e, true);
  }
}

// ----- sessions -----

async function refresh(manual = false) {
  clearTimeout(S.refreshTimer);
  if (!S.connected) return;
  if (!manual && document.hidden) { schedule(); return; }
  if (S.refreshing) return;
  S.refreshing = true;
  $('#refresh-box').classList.add('busy');
  const generation = S.connected;
  try {
    const r = await call('list_sessions');
    if (S.connected !== generation) return;
    S.sessions = r.sessions;
    S.refreshedAt = Date.now();
    S.stale = false;
    clearBanner();
    renderSessions();
    tick();
  } catch (e) {
    if (S.connected === generation) {
      S.stale = true;
      showBanner(e);
      renderSessions();
    }
  } finally {
    S.refreshing = false;
    $('#refresh-box').classList.remove('busy');
    schedule();
  }
}

function schedule() {
  clearTimeout(S.refreshTimer);
  if (!S.connected) return;
  const secs = Math.max(2, Number(S.settings.refresh_secs) || 10);
  S.refreshTimer = setTimeout(() => refresh(false), secs * 1000);
}

function pendingKey(sessionId, app) {
  return `${sessionId}\u0000${app}`;
}

function tunnelFor(sessionId, app) {
  if (!S.connected) return null;
  for (const t of S.tunnels.values()) {
    if (t.key.session_id === sessionId && t.key.app === app && t.key.endpoint === S.connected.endpoint) return t;
  }
  return null;
}

function matches(s, q) {
  if (!q) return true;
  const hay = [s.name, s.status, s.image || '', ...s.apps.map((a) => `${a.label} ${a.name}`)].join(' ').toLowerCase();
  return q.split(/\s+/).every((w) => hay.includes(w));
}

function renderSessions() {
  const ul = $('#sessions');
  const q = $('#filter').value.trim().toLowerCase();
  const list = S.sessions.filter((s) => matches(s, q));
  const existing = new Map($$(':scope > li', ul).map((li) => [li.dataset.id, li]));
  let prev = null;
  for (const s of list) {
    let li = existing.get(s.id);
    if (!li) li = createSessionRow(s);
    existing.delete(s.id);
    updateSessionRow(li, s);
    const want = prev ? prev.nextElementSibling : ul.firstElementChild;
    if (li !== want) ul.insertBefore(li, want);
    prev = li;
  }
  for (const li of existing.values()) li.remove();

  const empty = $('#sessions-empty');
  let message = '';
  if (!S.connected) {
    message = S.failedProfile ? `Not signed in to ${S.failedProfile}. Retry, or edit the profile.` : 'Not signed in.';
  } else if (S.sessions.length === 0 && S.refreshedAt) {
    message = `No sessions in ${S.connected.profile}. Start one in the Backend.AI WebUI; it appears here.`;
  } else if (S.sessions.length === 0) {
    message = 'Loading sessions…';
  } else if (list.length === 0) {
    message = `No session matches “${q}”.`;
  }
  setText(empty, message);
  empty.hidden = !message;
  const n = S.sessions.length;
  setText($('#session-count'), q ? `${list.length} of ${n}` : n ? `${n} session${n === 1 ? '' : 's'}` : '');
}

function createSessionRow(s) {
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

function updateSessionRow(li, s) {
  li.dataset.name = s.name;
  li.dataset.status = s.status;
  $('.dot', li).className = `dot ${s.status_class}`;
  setText($('.s-name', li), s.name);
  $('.s-name', li).title = s.name;
  const age = formatAge(s.created_at);
  const when = age && (s.status_class === 'running' ? `up ${age}` : `created ${age} ago`);
  const meta = [s.status, when, s.image].filter(Boolean).join(' · ');
  setText($('.s-meta', li), meta);
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
    const p = S.pending.get(pendingKey(s.id, app.name));
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
  const open = el('button', 'app-button');
  open.type = 'button';
  open.append(icon(app.icon), el('span', 'app-label', app.label), el('span', 'app-state'), el('span', 'app-port'));
  const cp = el('button', 'app-copy');
  cp.type = 'button';
  cp.append(icon('copy', 'icon small'));
  g.append(open, cp);
  return g;
}

function updateAppGroup(g, s, app) {
  const open = $('.app-button', g);
  const cp = $('.app-copy', g);
  const t = tunnelFor(s.id, app.name);
  const p = S.pending.get(pendingKey(s.id, app.name));
  let state = '';
  if (p && p.state === 'starting') state = 'starting';
  else if (t && ['listening', 'active', 'degraded', 'starting'].includes(t.status.state)) state = 'open';
  else if (p && p.state === 'failed') state = 'failed';
  g.className = `app-group ${state}`.trim();
  g.dataset.state = state || 'idle';
  setText($('.app-port', g), state === 'open' ? `:${t.local_addr.split(':').pop()}` : '');
  const verb = app.action === 'terminal' ? 'Open a terminal with SSH to' : app.action === 'browser' ? 'Open' : 'Open a tunnel to';
  let title = `${verb} ${app.action === 'terminal' ? s.name : `${app.label} in ${s.name}`}`;
  if (state === 'failed') title = `${p.message} (click to retry)`;
  else if (state === 'open') title = `${title} (${tunnelAddress(t)})`;
  open.title = title;
  open.setAttribute('aria-label', title);
  const copyTitle = `${COPY_TITLES[app.action]} of ${app.label} in ${s.name}`;
  cp.title = COPY_TITLES[app.action];
  cp.setAttribute('aria-label', copyTitle);
  open.onclick = () => clickApp(s, app);
  cp.onclick = () => copyApp(s, app);
}

async function ensureTunnel(s, app, launch) {
  const k = pendingKey(s.id, app.name);
  if (S.pending.get(k)?.state === 'starting') return null;
  const reuse = tunnelFor(s.id, app.name);
  if (!reuse) {
    S.pending.set(k, { state: 'starting' });
    setStatus(`Starting ${app.label}… the server can take up to 30 s`);
    renderSessions();
  }
  try {
    const r = await call('open_app', { sessionId: s.id, app: app.name, launch });
    S.pending.delete(k);
    // Events may already have brought newer status than this reply's snapshot.
    if (!S.tunnels.has(r.tunnel.id) && !S.removed.has(r.tunnel.id)) upsertTunnel(r.tunnel);
    return r;
  } catch (e) {
    S.pending.set(k, { state: 'failed', message: errorText(e) });
    setStatus(`${app.label} in ${s.name}: ${errorText(e)}`, 'error');
    return null;
  } finally {
    renderSessions();
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

// ----- tunnels (pushed by the engine) -----

function onTunnelEvent(ev) {
  if (ev.type === 'removed') {
    S.tunnels.delete(ev.id);
    S.rates.delete(ev.id);
    S.removed.add(ev.id);
  } else {
    const { type, ...info } = ev;
    // A stopped tunnel is gone; its last status update may arrive after its removal.
    if (S.removed.has(info.id) || info.status.state === 'stopped') return;
    upsertTunnel(info, false);
  }
  renderTunnels();
  renderSessions();
}

function replaceTunnels(list) {
  S.tunnels.clear();
  for (const t of list) upsertTunnel(t, false);
  for (const id of [...S.rates.keys()]) if (!S.tunnels.has(id)) S.rates.delete(id);
  renderTunnels();
  renderSessions();
}

function upsertTunnel(info, render = true) {
  const now = performance.now();
  const r = S.rates.get(info.id);
  const up = info.status.bytes_up;
  const down = info.status.bytes_down;
  if (!r) {
    S.rates.set(info.id, { up: 0, down: 0, bu: up, bd: down, t: now, last: now });
  } else if (up !== r.bu || down !== r.bd) {
    const dt = Math.max(0.25, (now - r.t) / 1000);
    r.up = Math.max(0, (up - r.bu) / dt);
    r.down = Math.max(0, (down - r.bd) / dt);
    r.bu = up;
    r.bd = down;
    r.t = now;
    r.last = now;
  }
  S.tunnels.set(info.id, info);
  if (render) renderTunnels();
}

function renderTunnels() {
  const ul = $('#tunnels');
  const list = [...S.tunnels.values()].sort((a, b) => a.id - b.id);
  const existing = new Map($$(':scope > li', ul).map((li) => [Number(li.dataset.id), li]));
  for (const t of list) {
    let li = existing.get(t.id);
    if (!li) {
      li = createTunnelRow(t);
      ul.append(li);
    }
    existing.delete(t.id);
    updateTunnelRow(li, t);
  }
  for (const li of existing.values()) li.remove();
  setText($('#tunnel-count'), String(list.length));
  $('#tunnels-empty').hidden = list.length > 0;
  $('#stop-all').disabled = list.length === 0;
}

function createTunnelRow(t) {
  const li = el('li', 'tunnel');
  li.dataset.id = String(t.id);
  li.dataset.app = t.key.app;
  li.dataset.session = t.session_name;
  const addr = el('button', 't-addr');
  addr.type = 'button';
  addr.title = 'Copy address';
  const actions = el('span', 't-actions');
  const web = t.protocol === 'http' || t.protocol === 'preopen';
  if (web) {
    const open = el('button', 'icon-button t-open');
    open.type = 'button';
    open.append(icon('open'));
    open.title = 'Open in the browser';
    open.setAttribute('aria-label', `Open ${t.session_name} · ${appLabel(t.key.app)} in the browser`);
    open.onclick = () => call('open_tunnel', { id: t.id }).catch((e) => setStatus(errorText(e), 'error'));
    actions.append(open);
  }
  if (t.key.app === 'sshd') {
    const ssh = el('button', 'button small t-copy-ssh', 'Copy ssh');
    ssh.type = 'button';
    ssh.title = 'Copy the ssh command';
    ssh.onclick = async () => {
      try {
        const r = await call('open_app', { sessionId: t.key.session_id, app: 'sshd', launch: false });
        if (r.ssh_command) await copy(r.ssh_command, 'ssh command');
      } catch (e) {
        setStatus(errorText(e), 'error');
      }
    };
    actions.append(ssh);
  }
  const stop = el('button', 'icon-button t-stop');
  stop.type = 'button';
  stop.append(icon('stop', 'icon small'));
  stop.title = 'Stop this tunnel';
  stop.setAttribute('aria-label', `Stop ${t.session_name} · ${appLabel(t.key.app)}`);
  stop.onclick = async () => {
    stop.disabled = true;
    try {
      await call('stop_tunnel', { id: t.id });
      setStatus(`Stopped ${t.session_name} · ${appLabel(t.key.app)}`);
    } catch (e) {
      setStatus(errorText(e), 'error');
      stop.disabled = false;
    }
  };
  actions.append(stop);
  li.append(
    el('span', 'dot'),
    el('span', 't-name', `${t.session_name} · ${appLabel(t.key.app)}`),
    addr,
    el('span', 't-state'),
    el('span', 't-conns'),
    el('span', 't-bytes'),
    el('span', 't-rate'),
    actions,
    el('div', 't-error'),
  );
  addr.onclick = () => copy(web && t.url ? t.url : t.local_addr, `address ${tunnelAddress(t)}`);
  return li;
}

/** Where the user reaches a tunnel: `name.localhost:port` for web apps (each has its own
 *  host name so apps keep their cookies apart), else the loopback address. */
function tunnelAddress(t) {
  return t.url ? new URL(t.url).host : t.local_addr;
}

function updateTunnelRow(li, t) {
  const st = t.status;
  li.dataset.state = st.state;
  $('.dot', li).className = `dot ${st.state}`;
  setText($('.t-addr', li), tunnelAddress(t));
  $('.t-addr', li).title = `Copy ${tunnelAddress(t)}`;
  setText($('.t-state', li), st.state);
  const conns = `${st.active_connections} conn${st.active_connections === 1 ? '' : 's'} · ${st.total_connections} total`;
  setText($('.t-conns', li), conns);
  setText($('.t-bytes', li), `↑ ${formatBytes(st.bytes_up)}  ↓ ${formatBytes(st.bytes_down)}`);
  li.dataset.bytesUp = String(st.bytes_up);
  li.dataset.bytesDown = String(st.bytes_down);
  updateRate(li, t.id);
  const err = $('.t-error', li);
  const showErr = st.last_error && ['degraded', 'failed'].includes(st.state);
  setText(err, showErr ? `Last error: ${st.last_error}` : '');
  err.hidden = !showErr;
  if (st.last_error) li.title = `Last error: ${st.last_error}`;
}

function updateRate(li, id) {
  const r = S.rates.get(id);
  if (!r) return;
  setText($('.t-rate', li), `↑ ${formatBytes(Math.round(r.up))}/s  ↓ ${formatBytes(Math.round(r.down))}/s`);
}

// A one-second clock for things that age: the refresh indicator and live rates decaying
// to zero once the engine stops publishing (it only publishes while bytes move).
function tick() {
  if (S.connected && S.refreshedAt) {
    const s = Math.round((Date.now() - S.refreshedAt) / 1000);
    // Coarse steps: the text (and so a repaint) changes every 10 s at most, which keeps an
    // idle window from costing CPU; the list itself refreshes on its own interval.
    const ago = s < 10 ? 'just now' : s < 120 ? `${Math.floor(s / 10) * 10} s ago` : `${Math.round(s / 60)} min ago`;
    setText($('#refreshed'), `${S.stale ? 'last updated' : 'updated'} ${ago}`);
  } else {
    setText($('#refreshed'), S.refreshing ? 'loading…' : '—');
  }
  const now = performance.now();
  for (const [id, r] of S.rates) {
    if (now - r.last > 1500 && (r.up || r.down)) {
      r.up = 0;
      r.down = 0;
    }
    const li = $(`#tunnels li[data-id="${id}"]`);
    if (li) updateRate(li, id);
  }
}

// ----- profiles and sign-in -----

function openSignIn(profile) {
  S.editing = profile ? profile.name : null;
  const f = $('#profile-form');
  f.reset();
  $('#pf-result').textContent = '';
  $('#pf-result').className = 'result';
  $('#pf-force').hidden = true;
  $('#signin-title').textContent = profile ? `Edit profile ${profile.name}` : S.profiles.length || S.connected ? 'Add a profile' : 'Sign in to Backend.AI';
  $('#pf-secret-hint').hidden = !profile;
  $('#pf-cancel').hidden = !(S.connected || S.failedProfile || S.profiles.length);
  $('#demo-box').hidden = Boolean(profile);
  if (profile) {
    $('#pf-name').value = profile.name;
    $('#pf-endpoint').value = profile.endpoint;
    f.querySelector(`input[name="mode"][value="${profile.mode}"]`).checked = true;
    $('#pf-access').value = profile.access_key || '';
    $('#pf-user').value = profile.username || '';
    $('#pf-skip-tls').checked = profile.skip_tls_verify;
  }
  syncMode();
  show('signin');
  $('#pf-name').focus();
}

function syncMode() {
  const mode = $('#profile-form').querySelector('input[name="mode"]:checked').value;
  $('.mode-api').hidden = mode !== 'api';
  $('.mode-session').hidden = mode !== 'session';
  setText($('#pf-secret-label'), mode === 'api' ? 'Secret key' : 'Password');
}

function formInput() {
  const mode = $('#profile-form').querySelector('input[name="mode"]:checked').value;
  return {
    name: $('#pf-name').value,
    endpoint: $('#pf-endpoint').value,
    mode,
    access_key: mode === 'api' ? $('#pf-access').value : null,
    username: mode === 'session' ? $('#pf-user').value : null,
    skip_tls_verify: $('#pf-skip-tls').checked,
    secret: $('#pf-secret').value,
  };
}

function showFormResult(e, isError) {
  const r = $('#pf-result');
  r.textContent = isError ? errorText(e) : e;
  r.className = `result ${isError ? 'error' : 'ok'}`;
}

function setFormBusy(busy, text) {
  for (const b of ['#pf-test', '#pf-save', '#pf-force']) $(b).disabled = busy;
  if (busy) {
    const r = $('#pf-result');
    r.textContent = text;
    r.className = 'result';
  }
}

async function testProfile() {
  setFormBusy(true, 'Testing the connection…');
  try {
    const t = await call('test_profile', { input: formInput() });
    const manager = t.manager_version ? `, manager ${t.manager_version}` : '';
    showFormResult(`Connected to ${t.endpoint}: API ${t.api_version}${manager}; ${t.sessions} session${t.sessions === 1 ? '' : 's'} visible.`, false);
  } catch (e) {
    showFormResult(e, true);
  } finally {
    setFormBusy(false);
  }
}

const FORCEABLE = new Set(['unreachable', 'timeout', 'tls', 'bad-gateway', 'http', 'unexpected-reply']);

async function saveProfile(force) {
  setFormBusy(true, 'Signing in…');
  const input = formInput();
  try {
    const c = S.editing
      ? await call('update_profile', { original: S.editing, input, force })
      : await call('add_profile', { input, force });
    $('#pf-secret').value = '';
    await signedIn(c);
  } catch (e) {
    showFormResult(e, true);
    $('#pf-force').hidden = force || !FORCEABLE.has(e.kind);
    if (force) {
      // Saved, but the server is not answering: show it with the error on top.
      S.profiles = await call('list_profiles');
      S.failedProfile = input.name.trim();
      S.connected = null;
      setText($('#profile-name'), S.failedProfile);
      show('main');
      renderSessions();
      showBanner(e);
    }
  } finally {
    setFormBusy(false);
  }
}

async function signedIn(c) {
  S.profiles = await call('list_profiles');
  S.sessions = [];
  S.refreshedAt = 0;
  S.pending.clear();
  setConnected(c);
  show('main');
  renderSessions();
  renderTunnels();
  refresh(true);
}

async function signIn(name) {
  closeProfileMenu();
  setStatus(`Signing in to ${name}…`);
  try {
    const c = await call('sign_in', { name });
    setStatus(`Signed in to ${name}`);
    await signedIn(c);
  } catch (e) {
    S.connected = null;
    S.failedProfile = name;
    S.sessions = [];
    setText($('#profile-name'), name);
    $('#refresh-box').hidden = true;
    show('main');
    renderSessions();
    showBanner(e);
    setStatus('');
  }
}

async function startDemo() {
  closeProfileMenu();
  const b = $('#demo-button');
  b.disabled = true;
  setStatus('Starting the demo…');
  try {
    const c = await call('start_demo');
    setStatus('Demo running: these sessions live on this computer.');
    await signedIn(c);
  } catch (e) {
    setStatus(errorText(e), 'error');
    if (S.view === 'signin') showFormResult(e, true);
  } finally {
    b.disabled = false;
  }
}

function confirmRemove(name) {
  // Asked inside the menu: keyboard-friendly, and no native dialog is needed.
  const popup = $('#profile-popup');
  popup.replaceChildren();
  popup.append(el('div', 'label', `Remove profile ${name}? Its secret is deleted from the keychain; running tunnels keep running.`));
  const yes = el('button', 'danger', `Remove ${name}`);
  yes.type = 'button';
  yes.onclick = () => removeProfile(name);
  const no = el('button', '', 'Cancel');
  no.type = 'button';
  no.onclick = closeProfileMenu;
  popup.append(no, yes);
  no.focus();
}

async function removeProfile(name) {
  closeProfileMenu();
  try {
    await call('remove_profile', { name });
    S.profiles = await call('list_profiles');
    if (S.connected && S.connected.profile === name) setConnected(null);
    if (S.failedProfile === name) S.failedProfile = null;
    toast(`Removed ${name}`);
    if (!S.connected) openSignIn(null);
  } catch (e) {
    setStatus(errorText(e), 'error');
  }
}

// ----- profile menu -----

function profileMenuItems() {
  const items = [];
  const current = S.connected ? S.connected.profile : S.failedProfile;
  items.push({ label: 'Profiles', kind: 'label' });
  if (S.profiles.length === 0) items.push({ label: 'No saved profiles', kind: 'label' });
  for (const p of S.profiles) {
    items.push({
      label: p.name,
      sub: p.endpoint,
      current: current === p.name && !(S.connected && S.connected.demo),
      run: () => signIn(p.name),
    });
  }
  items.push({ kind: 'sep' });
  const editable = S.profiles.find((p) => p.name === current && !(S.connected && S.connected.demo));
  if (editable) {
    items.push({ label: `Edit ${editable.name}…`, run: () => { closeProfileMenu(); openSignIn(editable); } });
  }
  items.push({ label: 'Add profile…', run: () => { closeProfileMenu(); openSignIn(null); } });
  if (!(S.connected && S.connected.demo)) items.push({ label: 'Try the demo', run: startDemo });
  else items.push({ label: 'Demo (running)', current: true, run: closeProfileMenu });
  if (editable) {
    items.push({ kind: 'sep' });
    items.push({ label: `Remove ${editable.name}…`, danger: true, run: () => confirmRemove(editable.name) });
  }
  return items;
}

function openProfileMenu() {
  const popup = $('#profile-popup');
  popup.replaceChildren();
  for (const item of profileMenuItems()) {
    if (item.kind === 'sep') { popup.append(el('div', 'sep')); continue; }
    if (item.kind === 'label') { popup.append(el('div', 'label', item.label)); continue; }
    const b = el('button', item.current ? 'current' : '');
    b.type = 'button';
    b.setAttribute('role', 'menuitem');
    const text = el('span', '', item.label);
    if (item.sub) {
      const wrap = el('span');
      wrap.append(text, el('div', 'sub', item.sub));
      b.append(wrap);
    } else {
      b.append(text);
    }
    if (item.danger) b.classList.add('danger');
    b.onclick = item.run;
    popup.append(b);
  }
  popup.hidden = false;
  $('#profile-button').setAttribute('aria-expanded', 'true');
  const first = $('button', popup);
  if (first) first.focus();
}

function closeProfileMenu() {
  $('#profile-popup').hidden = true;
  $('#profile-button').setAttribute('aria-expanded', 'false');
}

// ----- settings -----

async function loadSettings() {
  try {
    const r = await call('get_settings');
    S.settings = r.settings;
    $('#st-refresh').value = r.settings.refresh_secs;
    $('#st-terminal').value = r.settings.terminal_command || '';
    $('#st-terminal').placeholder = r.default_terminal;
    setText($('#st-terminal-default'), r.default_terminal);
    $('#st-remember').checked = r.settings.remember_ports;
    $('#st-login').checked = r.settings.start_at_login;
    $('#st-theme').value = r.settings.theme;
  } catch (e) {
    settingsResult(e, true);
  }
}

function settingsResult(text, isError) {
  const r = $('#st-result');
  r.textContent = isError ? errorText(text) : text;
  r.className = `result ${isError ? 'error' : 'ok'}`;
}

async function saveSettings() {
  const settings = {
    refresh_secs: Number($('#st-refresh').value) || 0,
    terminal_command: $('#st-terminal').value.trim() || null,
    remember_ports: $('#st-remember').checked,
    start_at_login: $('#st-login').checked,
    theme: $('#st-theme').value,
  };
  try {
    const r = await call('save_settings', { settings });
    S.settings = r.settings;
    applyTheme(r.settings.theme);
    schedule();
    settingsResult('Saved.', false);
  } catch (e) {
    settingsResult(e, true);
  }
}

// ----- ssh config -----

function sshConfigResult(text, isError) {
  const r = $('#ssh-config-result');
  r.textContent = isError ? errorText(text) : text;
  r.className = `result ${isError ? 'error' : 'ok'}`;
}

async function writeSshConfig() {
  try {
    const r = await call('write_ssh_config');
    const hosts = r.hosts.length ? `ssh ${r.hosts.join(', ssh ')}` : 'no running session has SSH';
    const backup = r.backup ? ` (previous version saved as ${r.backup})` : '';
    sshConfigResult(`Wrote ${r.config}: ${hosts}. ${r.user_config} includes it${backup}.`, false);
  } catch (e) {
    sshConfigResult(e, true);
  }
}

async function removeSshConfig() {
  try {
    const removed = await call('remove_ssh_config');
    sshConfigResult(removed ? 'Removed the Porthole hosts and the Include line.' : 'Nothing to remove.', false);
  } catch (e) {
    sshConfigResult(e, true);
  }
}

// ----- logs -----

async function loadLogs() {
  try {
    const r = await call('recent_logs', { max: 500 });
    setText($('#log-dir'), r.dir ? `Files in ${r.dir}` : 'No log file (only this view)');
    const pre = $('#log-lines');
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    setText(pre, r.lines.join('\n') || 'Nothing logged yet.');
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  } catch (e) {
    setText($('#log-lines'), errorText(e));
  }
}

// ----- keyboard and wiring -----

function moveFocus(e) {
  const target = e.target;
  const row = target.closest('li.session');
  if (!row) return;
  const buttons = $$('button', row);
  const i = buttons.indexOf(target);
  if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
    if (i < 0) { if (buttons[0]) buttons[0].focus(); e.preventDefault(); return; }
    const next = buttons[i + (e.key === 'ArrowRight' ? 1 : -1)];
    if (next) next.focus();
    e.preventDefault();
  } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    let other = e.key === 'ArrowDown' ? row.nextElementSibling : row.previousElementSibling;
    while (other && other.hidden) other = e.key === 'ArrowDown' ? other.nextElementSibling : other.previousElementSibling;
    if (other) {
      const ob = $$('button', other);
      const pick = ob[Math.min(Math.max(i, 0), ob.length - 1)] || other;
      pick.focus();
    } else if (e.key === 'ArrowUp') {
      $('#filter').focus();
    }
    e.preventDefault();
  }
}

function bindEvents() {
  for (const tab of $$('.tab')) {
    tab.onclick = () => {
      const v = tab.dataset.view;
      if (v === 'main' && !S.connected && !S.failedProfile) openSignIn(null);
      else show(v);
    };
  }
  $('#refresh-button').onclick = () => refresh(true);
  $('#filter').addEventListener('input', renderSessions);
  $('#filter').addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && e.target.value) { e.target.value = ''; renderSessions(); e.stopPropagation(); }
    if (e.key === 'ArrowDown') {
      const first = $('#sessions > li:not([hidden]) button') || $('#sessions > li');
      if (first) { first.focus(); e.preventDefault(); }
    }
  });
  $('#sessions').addEventListener('keydown', moveFocus);
  $('#stop-all').onclick = async () => {
    try {
      await call('stop_all');
      setStatus('Stopped every tunnel');
    } catch (e) {
      setStatus(errorText(e), 'error');
    }
  };
  $('#banner-retry').onclick = () => {
    if (S.connected) refresh(true);
    else if (S.failedProfile) signIn(S.failedProfile);
  };
  $('#banner-edit').onclick = () => {
    const name = S.connected ? S.connected.profile : S.failedProfile;
    const p = S.profiles.find((x) => x.name === name);
    if (p) openSignIn(p);
  };
  $('#profile-button').onclick = () => ($('#profile-popup').hidden ? openProfileMenu() : closeProfileMenu());
  $('#profile-popup').addEventListener('keydown', (e) => {
    const items = $$('#profile-popup button');
    const i = items.indexOf(document.activeElement);
    if (e.key === 'ArrowDown') { (items[i + 1] || items[0]).focus(); e.preventDefault(); }
    if (e.key === 'ArrowUp') { (items[i - 1] || items[items.length - 1]).focus(); e.preventDefault(); }
  });
  document.addEventListener('click', (e) => {
    if (!e.target.closest('.profile-menu')) closeProfileMenu();
  });
  for (const r of $$('#profile-form input[name="mode"]')) r.addEventListener('change', syncMode);
  $('#profile-form').addEventListener('submit', (e) => { e.preventDefault(); saveProfile(false); });
  $('#pf-test').onclick = testProfile;
  $('#pf-force').onclick = () => saveProfile(true);
  $('#pf-cancel').onclick = () => show('main');
  $('#demo-button').onclick = startDemo;
  for (const id of ['#st-refresh', '#st-terminal', '#st-remember', '#st-login', '#st-theme']) {
    $(id).addEventListener('change', saveSettings);
  }
  $('#settings-form').addEventListener('submit', (e) => { e.preventDefault(); saveSettings(); });
  $('#st-terminal-test').onclick = async () => {
    try {
      await call('test_terminal', { template: $('#st-terminal').value.trim() || null });
      settingsResult('A terminal should have opened.', false);
    } catch (e) {
      settingsResult(e, true);
    }
  };
  $('#ssh-config-write').onclick = writeSshConfig;
  $('#ssh-config-remove').onclick = removeSshConfig;
  $('#logs-refresh').onclick = loadLogs;
  $('#logs-copy').onclick = () => copy($('#log-lines').textContent, 'log lines');
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && S.connected && Date.now() - S.refreshedAt > S.settings.refresh_secs * 1000) refresh(true);
  });
  document.addEventListener('keydown', (e) => {
    const mod = e.ctrlKey || e.metaKey;
    if (mod && e.key.toLowerCase() === 'f') {
      e.preventDefault();
      if (S.connected || S.failedProfile) {
        if (S.view !== 'main') show('main');
        $('#filter').focus();
        $('#filter').select();
      }
    } else if (mod && e.key.toLowerCase() === 'w') {
      // Close = hide: tunnels keep running in the tray.
      e.preventDefault();
      tauri.window.getCurrentWindow().close();
    } else if ((mod && e.key.toLowerCase() === 'r') || e.key === 'F5') {
      e.preventDefault();
      refresh(true);
    } else if (e.key === 'Escape') {
      if (!$('#profile-popup').hidden) { closeProfileMenu(); $('#profile-button').focus(); }
      else if (S.view === 'signin' && !$('#pf-cancel').hidden) show('main');
      else if (S.view === 'logs' || S.view === 'settings') show(S.connected || S.failedProfile ? 'main' : 'signin');
    }
  });
}

init();
