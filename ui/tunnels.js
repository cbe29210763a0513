// The tunnels list: rows kept in step with the engine's `tunnel` events, live rates, and
// stop / open / copy. The engine sends each tunnel's label, address and click action.

import * as api from './api.js';
import { $, $$, button, el, errorText, formatBytes, icon, setText } from './dom.js';
import { connection, emit, state } from './state.js';
import { copy, setStatus, statusError } from './status.js';

/** Tunnel states in which the tunnel serves connections. */
const SERVING = ['listening', 'active', 'degraded', 'starting'];

/** The running tunnel of an app of a session on the current connection, if any. */
export function tunnelFor(sessionId, app) {
  const c = connection();
  if (!c) return null;
  for (const t of state.tunnels.values()) {
    if (t.key.session_id === sessionId && t.key.app === app && t.key.endpoint === c.endpoint) return t;
  }
  return null;
}

/** Whether a tunnel serves connections now. */
export function isServing(t) {
  return Boolean(t) && SERVING.includes(t.status.state);
}

/** An engine event about one tunnel. */
export function onTunnelEvent(ev) {
  if (ev.type === 'removed') {
    state.tunnels.delete(ev.id);
    state.rates.delete(ev.id);
    state.removed.add(ev.id);
  } else {
    const { type, ...info } = ev;
    // A stopped tunnel is gone; its last status update may arrive after its removal.
    if (state.removed.has(info.id) || info.status.state === 'stopped') return;
    upsert(info);
  }
  changed();
}

/** The whole list (at start, or after events were missed). */
export function replaceTunnels(list) {
  state.tunnels.clear();
  for (const t of list) upsert(t);
  for (const id of [...state.rates.keys()]) if (!state.tunnels.has(id)) state.rates.delete(id);
  changed();
}

/** A tunnel from a reply (open_app), unless events already brought newer news of it. */
export function adoptTunnel(info) {
  if (!state.tunnels.has(info.id) && !state.removed.has(info.id)) {
    upsert(info);
    changed();
  }
}

function changed() {
  render();
  emit('tunnels');
}

function upsert(info) {
  const now = performance.now();
  const r = state.rates.get(info.id);
  const up = info.status.bytes_up;
  const down = info.status.bytes_down;
  if (!r) {
    state.rates.set(info.id, { up: 0, down: 0, bu: up, bd: down, t: now, last: now });
  } else if (up !== r.bu || down !== r.bd) {
    const dt = Math.max(0.25, (now - r.t) / 1000);
    r.up = Math.max(0, (up - r.bu) / dt);
    r.down = Math.max(0, (down - r.bd) / dt);
    r.bu = up;
    r.bd = down;
    r.t = now;
    r.last = now;
  }
  state.tunnels.set(info.id, info);
}

function render() {
  const ul = $('#tunnels');
  const list = [...state.tunnels.values()].sort((a, b) => a.id - b.id);
  const existing = new Map($$(':scope > li', ul).map((li) => [Number(li.dataset.id), li]));
  for (const t of list) {
    let li = existing.get(t.id);
    if (!li) {
      li = createRow(t);
      ul.append(li);
    }
    existing.delete(t.id);
    updateRow(li, t);
  }
  for (const li of existing.values()) li.remove();
  setText($('#tunnel-count'), String(list.length));
  $('#tunnels-empty').hidden = list.length > 0;
  $('#stop-all').disabled = list.length === 0;
}

function createRow(t) {
  const li = el('li', 'tunnel');
  li.dataset.id = String(t.id);
  li.dataset.app = t.key.app;
  li.dataset.session = t.session_name;
  const addr = button('t-addr');
  const actions = el('span', 't-actions');
  if (t.action === 'browser') {
    const open = button('icon-button t-open');
    open.append(icon('open'));
    open.title = 'Open in the browser';
    open.setAttribute('aria-label', `Open ${t.label} in the browser`);
    open.onclick = () => api.openTunnel(t.id).catch(statusError);
    actions.append(open);
  }
  if (t.action === 'terminal') {
    const ssh = button('button small t-copy-ssh', 'Copy ssh');
    ssh.title = 'Copy the ssh command';
    ssh.onclick = async () => {
      try {
        const r = await api.openApp(t.key.session_id, t.key.app, false);
        if (r.ssh_command) await copy(r.ssh_command, 'ssh command');
      } catch (e) {
        statusError(e);
      }
    };
    actions.append(ssh);
  }
  const stop = button('icon-button t-stop');
  stop.append(icon('stop', 'icon small'));
  stop.title = 'Stop this tunnel';
  stop.setAttribute('aria-label', `Stop ${t.label}`);
  stop.onclick = async () => {
    stop.disabled = true;
    try {
      await api.stopTunnel(t.id);
      setStatus(`Stopped ${t.label}`);
    } catch (e) {
      statusError(e);
      stop.disabled = false;
    }
  };
  actions.append(stop);
  li.append(
    el('span', 'dot'),
    el('span', 't-name', t.label),
    addr,
    el('span', 't-state'),
    el('span', 't-conns'),
    el('span', 't-bytes'),
    el('span', 't-rate'),
    actions,
    el('div', 't-error'),
    el('div', 't-notice'),
  );
  addr.onclick = () => {
    const current = state.tunnels.get(t.id) || t;
    copy(current.url || current.local_addr, `address ${current.address}`);
  };
  return li;
}

function updateRow(li, t) {
  const st = t.status;
  li.dataset.state = st.state;
  $('.dot', li).className = `dot ${st.state}`;
  setText($('.t-addr', li), t.address);
  $('.t-addr', li).title = `Copy ${t.address}`;
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
  // Who else tried to use it, or that anyone can (the engine's words).
  const notice = $('.t-notice', li);
  setText(notice, t.notice || '');
  notice.hidden = !t.notice;
}

function updateRate(li, id) {
  const r = state.rates.get(id);
  if (!r) return;
  setText($('.t-rate', li), `↑ ${formatBytes(Math.round(r.up))}/s  ↓ ${formatBytes(Math.round(r.down))}/s`);
}

/** Once a second: rates decay to zero once the engine stops publishing (it only
 *  publishes while bytes move). */
export function tickRates() {
  const now = performance.now();
  for (const [id, r] of state.rates) {
    if (now - r.last > 1500 && (r.up || r.down)) {
      r.up = 0;
      r.down = 0;
    }
    const li = $(`#tunnels li[data-id="${id}"]`);
    if (li) updateRate(li, id);
  }
}

export async function stopAll() {
  try {
    await api.stopAll();
    setStatus('Stopped every tunnel');
  } catch (e) {
    setStatus(errorText(e), 'error');
  }
}
