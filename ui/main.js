// Porthole's window. It renders what the engine reports and sends it commands; the
// engine pushes the account, tunnel and log changes as events, and only the sessions
// list (a server request) refreshes on a timer.
//
//   api.js       every command and event of the engine
//   state.js     the one state (the account is the engine's) and its topics
//   dom.js       DOM and formatting helpers;  status.js  status line, toast, copy
//   views.js     which view shows
//   account.js   profile menu, banner, sign-in form, demo
//   sessions.js  the sessions list and one click on an app
//   tunnels.js   the tunnels list
//   settings.js  Settings and SSH config;  logs.js  the Logs view
//   keyboard.js  shortcuts and arrow keys

import * as api from './api.js';
import { applyAccount, bindAccount, openSignIn } from './account.js';
import { $, $$, setText, showResult } from './dom.js';
import { bindKeyboard } from './keyboard.js';
import { bindLogs, onLogLagged, onLogLine, onView } from './logs.js';
import { bindSessions, tickRefreshed } from './sessions.js';
import { adoptSettings, bindSettings, loadSettings } from './settings.js';
import { hasAccount, on, state } from './state.js';
import { onTunnelEvent, replaceTunnels, stopAll, tickRates } from './tunnels.js';
import { show } from './views.js';

function bindViews() {
  for (const tab of $$('.tab')) {
    tab.onclick = () => {
      const v = tab.dataset.view;
      if (v === 'main' && !hasAccount()) openSignIn(null);
      else show(v);
    };
  }
  on('view', (view) => {
    onView(view);
    if (view === 'settings') loadSettings();
  });
  $('#stop-all').onclick = stopAll;
}

async function init() {
  bindViews();
  bindAccount();
  bindSessions();
  bindSettings();
  bindLogs();
  bindKeyboard();
  await api.onEngineEvents({
    account: applyAccount,
    tunnel: onTunnelEvent,
    tunnels: replaceTunnels,
    log: onLogLine,
    'log-lagged': onLogLagged,
  });
  api.appVersion().then((v) => setText($('#version'), `Porthole ${v}`)).catch(() => {});
  // One clock for what ages: the "updated … ago" line and rates decaying to zero.
  setInterval(() => { tickRefreshed(); tickRates(); }, 1000);
  try {
    const st = await api.startup();
    state.profiles = st.profiles;
    adoptSettings(st.settings);
    replaceTunnels(st.tunnels);
    applyAccount(st.account);
    if (hasAccount()) show('main');
    else openSignIn(null);
  } catch (e) {
    openSignIn(null);
    showResult($('#pf-result'), e, true);
  }
}

init();
