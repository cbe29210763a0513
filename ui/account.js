// The account: the profile button and menu, the banner for endpoint errors (with the
// action the engine suggests), the sign-in form, the demo, and removing a profile. The
// engine owns the account state; this renders each `account` event and sends commands.

import * as api from './api.js';
import { $, $$, button, el, setText, showResult } from './dom.js';
import { connection, editableProfile, emit, hasAccount, state } from './state.js';
import { setStatus, statusError, toast } from './status.js';
import { show } from './views.js';
import { refresh } from './sessions.js';

/** The profile being edited in the form (its original name), or null when adding. */
let editing = null;

/** A new account state from the engine (an event, or a command's outcome). */
export function applyAccount(view) {
  state.account = view;
  const c = connection();
  setText($('#profile-name'), c ? c.profile : view.state === 'failed' ? view.profile : 'none');
  renderBanner();
  emit('account');
}

function renderBanner() {
  const error = state.account.state === 'signed-out' ? null : state.account.error;
  $('#banner').hidden = !error;
  if (!error) return;
  $('#banner-text').textContent = error.message;
  $('#banner-retry').hidden = !(error.retryable || error.action === 'retry');
  $('#banner-edit').hidden = !(error.action === 'edit-profile' && editableProfile());
}

/** The banner's Retry: list again, or sign in again to the failing profile. */
function retry() {
  if (connection()) refresh(true);
  else if (state.account.state === 'failed') signIn(state.account.profile);
}

async function reloadProfiles() {
  state.profiles = await api.listProfiles();
}

// ----- sign-in form -----

/** Shows the form: for `profile` (editing), or empty (adding). */
export function openSignIn(profile) {
  editing = profile ? profile.name : null;
  const f = $('#profile-form');
  f.reset();
  $('#pf-network').open = false;
  $('#pf-result').textContent = '';
  $('#pf-result').className = 'result';
  $('#pf-force').hidden = true;
  $('#signin-title').textContent = profile
    ? `Edit profile ${profile.name}`
    : state.profiles.length || connection() ? 'Add a profile' : 'Sign in to Backend.AI';
  $('#pf-secret-hint').hidden = !profile;
  $('#pf-cancel').hidden = !(hasAccount() || state.profiles.length);
  $('#demo-box').hidden = Boolean(profile);
  if (profile) {
    $('#pf-name').value = profile.name;
    $('#pf-endpoint').value = profile.endpoint;
    f.querySelector(`input[name="mode"][value="${profile.mode}"]`).checked = true;
    $('#pf-access').value = profile.access_key || '';
    $('#pf-user').value = profile.username || '';
    $('#pf-skip-tls').checked = profile.skip_tls_verify;
    $('#pf-proxy').value = profile.proxy || '';
    // Show what the profile sets apart from the defaults.
    $('#pf-network').open = Boolean(profile.proxy) || profile.skip_tls_verify;
  }
  syncMode();
  show('signin');
  $('#pf-name').focus();
}

/** Leaves the form for the sessions, if there is an account to show. */
export function cancelSignIn() {
  if (!$('#pf-cancel').hidden) show('main');
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
    proxy: $('#pf-proxy').value,
  };
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
    const t = await api.testProfile(formInput());
    const manager = t.manager_version ? `, manager ${t.manager_version}` : '';
    showResult($('#pf-result'), `Connected to ${t.endpoint}: API ${t.api_version}${manager}; ${t.sessions} session${t.sessions === 1 ? '' : 's'} visible.`, false);
  } catch (e) {
    showResult($('#pf-result'), e, true);
  } finally {
    setFormBusy(false);
  }
}

/** Saves the form's profile and signs in; `force` saves it even if the test failed. */
async function saveProfile(force) {
  setFormBusy(true, 'Signing in…');
  const input = formInput();
  try {
    const c = editing ? await api.updateProfile(editing, input, force) : await api.addProfile(input, force);
    $('#pf-secret').value = '';
    await signedIn(c);
  } catch (e) {
    showResult($('#pf-result'), e, true);
    // The engine says whether the endpoint could not be checked at all.
    $('#pf-force').hidden = force || !e.unchecked;
    if (force) {
      // Saved, but the server is not answering: the sessions view with the banner.
      await reloadProfiles();
      applyAccount(await accountNow());
      show('main');
    }
  } finally {
    setFormBusy(false);
  }
}

/** The account as the engine has it now (after a command that changed it). */
const accountNow = () => api.account();

async function signedIn(c) {
  await reloadProfiles();
  applyAccount({ state: 'signed-in', connection: c, error: null });
  show('main');
  refresh(true);
}

/** Signs in with a saved profile. */
export async function signIn(name) {
  closeProfileMenu();
  setStatus(`Signing in to ${name}…`);
  try {
    const c = await api.signIn(name);
    setStatus(`Signed in to ${name}`);
    await signedIn(c);
  } catch (e) {
    setStatus('');
    applyAccount({ state: 'failed', profile: name, error: e });
    show('main');
  }
}

async function startDemo() {
  closeProfileMenu();
  const b = $('#demo-button');
  b.disabled = true;
  setStatus('Starting the demo…');
  try {
    const c = await api.startDemo();
    setStatus('Demo running: these sessions live on this computer.');
    await signedIn(c);
  } catch (e) {
    statusError(e);
    if (state.view === 'signin') showResult($('#pf-result'), e, true);
  } finally {
    b.disabled = false;
  }
}

// ----- profile menu -----

function confirmRemove(name) {
  // Asked inside the menu: keyboard-friendly, and no native dialog is needed.
  const popup = $('#profile-popup');
  popup.replaceChildren();
  popup.append(el('div', 'label', `Remove profile ${name}? Its secret is deleted from the keychain; running tunnels keep running.`));
  const yes = button('danger', `Remove ${name}`);
  yes.onclick = () => removeProfile(name);
  const no = button('', 'Cancel');
  no.onclick = closeProfileMenu;
  popup.append(no, yes);
  no.focus();
}

async function removeProfile(name) {
  closeProfileMenu();
  try {
    await api.removeProfile(name);
    await reloadProfiles();
    // The engine signs out when the profile was the one in use or failing.
    applyAccount(await accountNow());
    toast(`Removed ${name}`);
    if (!hasAccount()) openSignIn(null);
  } catch (e) {
    statusError(e);
  }
}

function menuItems() {
  const c = connection();
  const demo = Boolean(c && c.demo);
  const current = demo ? null : c ? c.profile : state.account.profile;
  const items = [{ label: 'Profiles', kind: 'label' }];
  if (state.profiles.length === 0) items.push({ label: 'No saved profiles', kind: 'label' });
  for (const p of state.profiles) {
    items.push({ label: p.name, sub: p.endpoint, current: current === p.name, run: () => signIn(p.name) });
  }
  items.push({ kind: 'sep' });
  const editable = editableProfile();
  if (editable) items.push({ label: `Edit ${editable.name}…`, run: () => { closeProfileMenu(); openSignIn(editable); } });
  items.push({ label: 'Add profile…', run: () => { closeProfileMenu(); openSignIn(null); } });
  if (demo) items.push({ label: 'Demo (running)', current: true, run: closeProfileMenu });
  else items.push({ label: 'Try the demo', run: startDemo });
  if (editable) {
    items.push({ kind: 'sep' });
    items.push({ label: `Remove ${editable.name}…`, danger: true, run: () => confirmRemove(editable.name) });
  }
  return items;
}

function openProfileMenu() {
  const popup = $('#profile-popup');
  popup.replaceChildren();
  for (const item of menuItems()) {
    if (item.kind === 'sep') { popup.append(el('div', 'sep')); continue; }
    if (item.kind === 'label') { popup.append(el('div', 'label', item.label)); continue; }
    const b = button(item.current ? 'current' : '');
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

/** Closes the profile menu; returns whether it was open. */
export function closeProfileMenu() {
  const wasOpen = !$('#profile-popup').hidden;
  $('#profile-popup').hidden = true;
  $('#profile-button').setAttribute('aria-expanded', 'false');
  return wasOpen;
}

/** Wires the account's controls. */
export function bindAccount() {
  $('#banner-retry').onclick = retry;
  $('#banner-edit').onclick = () => {
    const p = editableProfile();
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
}
