// The Logs view: the recent lines when it opens, then each new line as the engine pushes
// it (no polling).

import * as api from './api.js';
import { $, errorText, setText } from './dom.js';
import { copy } from './status.js';

/** Most lines the view keeps. */
const MAX_LINES = 500;
let lines = [];
let visible = false;

async function load() {
  try {
    const r = await api.recentLogs(MAX_LINES);
    setText($('#log-dir'), r.dir ? `Files in ${r.dir}` : 'No log file (only this view)');
    lines = r.lines;
    render(true);
  } catch (e) {
    setText($('#log-lines'), errorText(e));
  }
}

function render(toBottom) {
  const pre = $('#log-lines');
  const atBottom = toBottom || pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
  setText(pre, lines.join('\n') || 'Nothing logged yet.');
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

/** One line the engine logged. */
export function onLogLine(line) {
  lines.push(line);
  if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES);
  if (visible) render(false);
}

/** Lines were missed: read them again when shown. */
export function onLogLagged() {
  if (visible) load();
}

/** The view was shown or left. */
export function onView(view) {
  const was = visible;
  visible = view === 'logs';
  if (visible && !was) load();
}

export function bindLogs() {
  $('#logs-refresh').onclick = load;
  $('#logs-copy').onclick = () => copy($('#log-lines').textContent, 'log lines');
}
