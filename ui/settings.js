// The Settings view: each control saves on change (the engine validates), the terminal's
// Test button, and Settings → SSH config.

import * as api from './api.js';
import { $, showResult } from './dom.js';
import { emit, state } from './state.js';

const CONTROLS = ['#st-refresh', '#st-terminal', '#st-remember', '#st-login', '#st-theme'];

export function applyTheme(theme) {
  document.documentElement.dataset.theme = theme || 'system';
}

/** Takes a SettingsReply: the settings and what the form shows beside them. */
export function adoptSettings(reply) {
  state.settings = reply.settings;
  if (reply.refresh_bounds) state.refreshBounds = reply.refresh_bounds;
  applyTheme(reply.settings.theme);
  emit('settings');
}

export async function loadSettings() {
  try {
    const r = await api.getSettings();
    adoptSettings(r);
    const s = r.settings;
    const refresh = $('#st-refresh');
    [refresh.min, refresh.max] = r.refresh_bounds.map(String);
    refresh.value = s.refresh_secs;
    $('#st-terminal').value = s.terminal_command || '';
    $('#st-terminal').placeholder = r.default_terminal;
    $('#st-terminal-default').textContent = r.default_terminal;
    $('#st-remember').checked = s.remember_ports;
    $('#st-login').checked = s.start_at_login;
    $('#st-theme').value = s.theme;
  } catch (e) {
    showResult($('#st-result'), e, true);
  }
}

async function save() {
  const settings = {
    refresh_secs: Number($('#st-refresh').value) || 0,
    terminal_command: $('#st-terminal').value.trim() || null,
    remember_ports: $('#st-remember').checked,
    start_at_login: $('#st-login').checked,
    theme: $('#st-theme').value,
  };
  try {
    adoptSettings(await api.saveSettings(settings));
    showResult($('#st-result'), 'Saved.', false);
  } catch (e) {
    showResult($('#st-result'), e, true);
  }
}

async function testTerminal() {
  try {
    await api.testTerminal($('#st-terminal').value.trim() || null);
    showResult($('#st-result'), 'A terminal should have opened.', false);
  } catch (e) {
    showResult($('#st-result'), e, true);
  }
}

async function writeSshConfig() {
  try {
    const r = await api.writeSshConfig();
    const hosts = r.hosts.length ? `ssh ${r.hosts.join(', ssh ')}` : 'no running session has SSH';
    const backup = r.backup ? ` (previous version saved as ${r.backup})` : '';
    showResult($('#ssh-config-result'), `Wrote ${r.config}: ${hosts}. ${r.user_config} includes it${backup}.`, false);
  } catch (e) {
    showResult($('#ssh-config-result'), e, true);
  }
}

async function removeSshConfig() {
  try {
    const removed = await api.removeSshConfig();
    showResult($('#ssh-config-result'), removed ? 'Removed the Porthole hosts and the Include line.' : 'Nothing to remove.', false);
  } catch (e) {
    showResult($('#ssh-config-result'), e, true);
  }
}

export function bindSettings() {
  for (const id of CONTROLS) $(id).addEventListener('change', save);
  $('#settings-form').addEventListener('submit', (e) => { e.preventDefault(); save(); });
  $('#st-terminal-test').onclick = testTerminal;
  $('#ssh-config-write').onclick = writeSshConfig;
  $('#ssh-config-remove').onclick = removeSshConfig;
}
