// Keyboard: Ctrl+F filter, Ctrl+R / F5 refresh, Ctrl+W hide, Esc back, and arrow keys
// between sessions and their apps.

import * as api from './api.js';
import { cancelSignIn, closeProfileMenu } from './account.js';
import { $, $$ } from './dom.js';
import { refresh, render } from './sessions.js';
import { hasAccount, state } from './state.js';
import { show } from './views.js';

/** Arrow keys inside the sessions list: left/right between a row's buttons, up/down
 *  between rows, keeping the column. */
function moveFocus(e) {
  const row = e.target.closest('li.session');
  if (!row) return;
  const buttons = $$('button', row);
  const i = buttons.indexOf(e.target);
  if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
    if (i < 0) { if (buttons[0]) buttons[0].focus(); e.preventDefault(); return; }
    const next = buttons[i + (e.key === 'ArrowRight' ? 1 : -1)];
    if (next) next.focus();
    e.preventDefault();
  } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    const step = (r) => (e.key === 'ArrowDown' ? r.nextElementSibling : r.previousElementSibling);
    let other = step(row);
    while (other && other.hidden) other = step(other);
    if (other) {
      const ob = $$('button', other);
      (ob[Math.min(Math.max(i, 0), ob.length - 1)] || other).focus();
    } else if (e.key === 'ArrowUp') {
      $('#filter').focus();
    }
    e.preventDefault();
  }
}

function onKey(e) {
  const mod = e.ctrlKey || e.metaKey;
  const key = e.key.toLowerCase();
  if (mod && key === 'f') {
    e.preventDefault();
    if (hasAccount()) {
      if (state.view !== 'main') show('main');
      $('#filter').focus();
      $('#filter').select();
    }
  } else if (mod && key === 'w') {
    // Close = hide: tunnels keep running in the tray.
    e.preventDefault();
    api.closeWindow();
  } else if ((mod && key === 'r') || e.key === 'F5') {
    e.preventDefault();
    refresh(true);
  } else if (e.key === 'Escape') {
    if (closeProfileMenu()) $('#profile-button').focus();
    else if (state.view === 'signin') cancelSignIn();
    else if (state.view === 'logs' || state.view === 'settings') show(hasAccount() ? 'main' : 'signin');
  }
}

export function bindKeyboard() {
  $('#filter').addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && e.target.value) { e.target.value = ''; render(); e.stopPropagation(); }
    if (e.key === 'ArrowDown') {
      const first = $('#sessions > li:not([hidden]) button') || $('#sessions > li');
      if (first) { first.focus(); e.preventDefault(); }
    }
  });
  $('#sessions').addEventListener('keydown', moveFocus);
  document.addEventListener('keydown', onKey);
}
