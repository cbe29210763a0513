// The desktop app against a REAL Backend.AI manager and web server: a rig of tests/rigs/
// (scripts/test-conformance.sh runs this once per rig, with the rig up). In each mode, web
// login through the web server and keypair signing straight to the manager, the real app in
// a real window (Xvfb, WebDriver) signs in through its form, lists the rig's sessions, opens
// JupyterLab, which headless Chromium must find working (tests/browser/browser-check.sh as
// $BROWSER), and runs ssh through the sshd tunnel with the key the app downloads itself.
// Each mode starts its own app, keychain and home, so either can run alone
// (--test-name-pattern).
//
// Needs the rig running, so it only runs with PORTHOLE_RIG_GUI=1; then
//   PORTHOLE_RIG_KEYS     the rig's keys.env (BACKEND_* variables)
//   PORTHOLE_RIG_API      the API version the rig's manager reports, e.g. v9.20250722
//   PORTHOLE_RIG_RELEASE  the rig's name for screenshots, e.g. 26.9
// and an unreachable server fails the run loudly; without it every test is skipped.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  Procs, ROOT, appEnv, checkEnvironment, filesContaining, portOpen, saveShot, secretToolLookup,
  startApp, startKeyring, tempRoot, terminalScript, useTerminal, waitForFile,
} from '../harness.mjs';

const ENABLED = process.env.PORTHOLE_RIG_GUI === '1';
const skip = ENABLED ? false : 'needs a rig of tests/rigs: set PORTHOLE_RIG_GUI=1 (scripts/test-conformance.sh does)';
const RELEASE = process.env.PORTHOLE_RIG_RELEASE || 'rig';

// keys.env: KEY=VALUE lines.
function readKeys() {
  const file = process.env.PORTHOLE_RIG_KEYS;
  assert.ok(file, 'PORTHOLE_RIG_KEYS names the rig\'s keys.env');
  const keys = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) keys[m[1]] = m[2];
  }
  return keys;
}

const running = '#sessions li.session[data-name="rig-running"]';
const pending = '#sessions li.session[data-name="rig-pending"]';
const app = (name) => `${running} .app-group[data-app="${name}"]`;
const tunnelRow = (name) => `#tunnels li.tunnel[data-app="${name}"]`;

// One desktop app signed in to the rig in one mode ('session' or 'api').
function modeSuite(mode) {
  const procs = new Procs();
  const profile = `rig-${mode}`;
  let keys;
  let root;
  let env;
  let dirs;
  let results;
  let terminal;
  let wd;

  before(async () => {
    if (!ENABLED) return;
    keys = readKeys();
    const endpoint = mode === 'session' ? keys.BACKEND_WEB_ENDPOINT : keys.BACKEND_ENDPOINT;
    try {
      const res = await fetch(`${endpoint}/${mode === 'session' ? 'func/' : ''}`, { signal: AbortSignal.timeout(10000) });
      await res.arrayBuffer();
    } catch (e) {
      throw new Error(`PORTHOLE_RIG_GUI=1 but the rig at ${endpoint} is unreachable (${e.cause?.code || e.message}); start it with tests/rigs/rig VERSION start`);
    }
    checkEnvironment();
    root = tempRoot(`rig-${mode}`);
    fs.chmodSync(root, 0o755);
    ({ env, dirs } = appEnv(root));
    results = path.join(root, 'browser-results.jsonl');
    env.BROWSER = path.join(ROOT, 'tests', 'browser', 'browser-check.sh');
    env.PORTHOLE_BROWSER_RESULT = results;
    env.PORTHOLE_SHOT_DIR = path.join(ROOT, 'target', 'screenshots', 'browser');
    terminal = terminalScript(root);
    delete env.PORTHOLE_SSH_USER; // the app's default, `work`, is the rig container's user
    await startKeyring(procs, env);
    wd = await startApp(procs, env);
  });

  after(async () => {
    if (wd) {
      // Leave no tunnel behind, whatever happened.
      try { await wd.invoke('stop_all'); } catch { /* the app may be gone already */ }
      await wd.delete();
    }
    await procs.stopAll();
    if (root && !process.env.PORTHOLE_GUI_KEEP) fs.rmSync(root, { recursive: true, force: true });
  });

  // Fixtures: each test can run alone; these bring a fresh app to what it needs, and do
  // nothing when an earlier test left it there.
  async function signedIn() {
    const current = await wd.execute("return document.querySelector('#profile-name').textContent;");
    if (current !== profile) await signInThroughTheForm();
    await wd.waitVisible(running, 60000);
  }

  async function jupyterOpened() {
    await signedIn();
    if (!fs.existsSync(results)) await wd.clickCss(`${app('jupyter')} .app-button`);
    const line = (await waitForFile(results, 120000)).trim().split('\n').pop();
    await wd.waitVisible(tunnelRow('jupyter'), 30000);
    return line;
  }

  async function sshRan() {
    await signedIn();
    if (!fs.existsSync(path.join(terminal.out, 'rc'))) {
      await useTerminal(wd, terminal.file);
      await wd.clickCss(`${app('sshd')} .app-button`);
    }
    await waitForFile(path.join(terminal.out, 'rc'), 90000);
    await wd.waitVisible(tunnelRow('sshd'), 30000);
  }

  async function signInThroughTheForm() {
    const secret = mode === 'session' ? keys.BACKEND_PASSWORD : keys.BACKEND_SECRET_KEY;
    await wd.waitVisible('#view-signin');
    await wd.type('#pf-name', profile);
    await wd.type('#pf-endpoint', mode === 'session' ? keys.BACKEND_WEB_ENDPOINT : keys.BACKEND_ENDPOINT);
    await wd.clickCss(`#profile-form input[name="mode"][value="${mode}"]`);
    if (mode === 'session') await wd.type('#pf-user', keys.BACKEND_USERNAME);
    else await wd.type('#pf-access', keys.BACKEND_ACCESS_KEY);
    await wd.type('#pf-secret', secret);
    await wd.clickCss('#pf-test');
    const tested = await wd.waitText('#pf-result', (t) => t.length > 0 && !/Testing|Connecting/i.test(t), 60000);
    assert.match(tested, /^Connected/, `test connection: ${tested}`);
    const api = process.env.PORTHOLE_RIG_API;
    if (api) assert.ok(tested.includes(api), `the test names the server's API version ${api}: ${tested}`);
    await wd.clickCss('#pf-save');
    await wd.waitText('#profile-name', (t) => t === profile, 60000);
    await wd.waitVisible(running, 60000);
    return secret;
  }

  test('signs in through the form; the secret is only in the Secret Service', { skip }, async () => {
    const secret = await signInThroughTheForm();
    assert.equal(secretToolLookup(env, ['service', 'porthole', 'username', `profile:${profile}`]), secret);
    assert.deepEqual(filesContaining(Object.values(dirs), secret), [], 'the secret is in no file');
  });

  test('lists rig-running with its apps and says why rig-pending has none', { skip }, async () => {
    await signedIn();
    await wd.waitVisible(app('jupyter'), 30000);
    await wd.waitVisible(app('sshd'), 30000);
    const names = await wd.execute(
      'return [...document.querySelectorAll(arguments[0])].map((g) => g.dataset.app);',
      [`${running} .app-group`],
    );
    assert.ok(names.includes('jupyter') && names.includes('sshd') && names.includes('ttyd'), `apps: ${names}`);
    assert.ok(!names.includes('supervisor'), `an internal port is no app: ${names}`);
    const why = await wd.waitText(`${pending} .s-unavailable`, (t) => t.length > 0, 30000);
    assert.match(why, /Waiting/);
    await wd.waitText('#refreshed', (t) => t.startsWith('updated'));
    await saveShot(wd, `11-rig-${RELEASE}-${mode}.png`);
  });

  test('clicking Jupyter opens the real JupyterLab in headless Chromium', { skip }, async () => {
    const line = await jupyterOpened();
    const result = JSON.parse(line);
    assert.match(result.url, /^http:\/\/jupyter-rig-running\.localhost:\d+\//);
    assert.equal(result.ok, true, `browser check: ${line}`);
  });

  test('clicking SSH runs ssh with the downloaded key and gets output back', { skip }, async () => {
    await sshRan();
    const rc = fs.readFileSync(path.join(terminal.out, 'rc'), 'utf8');
    const stdout = fs.readFileSync(path.join(terminal.out, 'stdout'), 'utf8');
    const stderr = fs.readFileSync(path.join(terminal.out, 'stderr'), 'utf8');
    const argv = fs.readFileSync(path.join(terminal.out, 'argv'), 'utf8');
    assert.equal(rc.trim(), '0', `ssh failed (${argv.trim()}): ${stderr}`);
    assert.equal(stdout.trim(), 'porthole-ssh-ok');
    assert.match(argv, /work@/, `argv: ${argv}`);
    assert.equal(fs.readFileSync(path.join(terminal.out, 'key.mode'), 'utf8').trim(), '600');
    await saveShot(wd, `12-rig-${RELEASE}-${mode}-tunnels.png`);
  });

  test('stopping the tunnels closes their ports and removes the key', { skip }, async () => {
    await jupyterOpened();
    await sshRan();
    const port = Number((await wd.waitText(`${tunnelRow('jupyter')} .t-addr`, (t) => t.includes(':'))).split(':').pop());
    assert.equal(await portOpen(port), true);
    const keyPath = fs.readFileSync(path.join(terminal.out, 'key.path'), 'utf8').trim();
    await wd.clickCss('#stop-all');
    await wd.waitText('#tunnel-count', (t) => t === '0', 30000);
    assert.equal(await portOpen(port), false, 'the jupyter port is closed');
    assert.equal(fs.existsSync(keyPath), false, 'the key is removed with its tunnel');
    assert.equal((await wd.invoke('tray_menu')).tunnels.length, 0);
  });
}

describe('web login through the real web server (session mode)', () => modeSuite('session'));
describe('keypair signing to the real manager (API mode)', () => modeSuite('api'));
