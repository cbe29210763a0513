// End-to-end against the REAL Backend.AI web server 23.09 of the real-manager rig
// (../shared/rigs/real-manager): the real app in a real window (Xvfb) driven through
// WebDriver signs in with web login (session mode), lists the rig's sessions, opens
// JupyterLab through a tunnel and runs ssh through another, with the SSH key the app
// downloads itself (download_single).
//
// Needs the rig running, so it only runs with PORTHOLE_RIG_GUI=1 (scripts/test-conformance.sh
// sets it while the rig is up); without it every test is skipped. With it set, an
// unreachable web server fails the run loudly.
//   PORTHOLE_RIG_WEB_ENDPOINT  default http://127.0.0.1:18080
//   PORTHOLE_RIG_USERNAME / PORTHOLE_RIG_PASSWORD  default the rig user of keys.env

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import {
  Procs, appEnv, browserScript, checkEnvironment, filesContaining, getTunnel, portOpen, saveShot,
  secretToolLookup, startApp, startKeyring, tempRoot, terminalScript, useTerminal, waitForFile,
} from '../harness.mjs';

const ENABLED = process.env.PORTHOLE_RIG_GUI === '1';
const skip = ENABLED ? false : 'needs the real-manager rig: set PORTHOLE_RIG_GUI=1 (scripts/test-conformance.sh does)';
const ENDPOINT = process.env.PORTHOLE_RIG_WEB_ENDPOINT || 'http://127.0.0.1:18080';
const USERNAME = process.env.PORTHOLE_RIG_USERNAME || 'rig-user@example.test';
const PASSWORD = process.env.PORTHOLE_RIG_PASSWORD || 'rig-password-1234';
const PROFILE = 'rig-web';

const procs = new Procs();
let root;
let env;
let dirs;
let browser;
let terminal;
let wd;

const running = '#sessions li.session[data-name="rig-running"]';
const pending = '#sessions li.session[data-name="rig-pending"]';
const app = (name) => `${running} .app-group[data-app="${name}"]`;
const tunnelRow = (name) => `#tunnels li.tunnel[data-app="${name}"]`;

before(async () => {
  if (!ENABLED) return;
  // Fail loudly, and early, when the rig is not there.
  let res;
  try {
    res = await fetch(`${ENDPOINT}/`, { signal: AbortSignal.timeout(10000) });
  } catch (e) {
    throw new Error(`PORTHOLE_RIG_GUI=1 but the rig's web server at ${ENDPOINT} is unreachable (${e.cause?.code || e.message}); start it with ../shared/rigs/real-manager/start.sh`);
  }
  await res.arrayBuffer();
  checkEnvironment();
  root = tempRoot('rig');
  fs.chmodSync(root, 0o755);
  ({ env, dirs } = appEnv(root));
  browser = browserScript(root);
  terminal = terminalScript(root);
  env.BROWSER = browser.file;
  delete env.PORTHOLE_SSH_USER; // the app's default, `work`, is the rig container's user
  await startKeyring(procs, env);
  wd = await startApp(procs, env);
});

after(async () => {
  if (wd) {
    // Leave no tunnel behind, whatever happened.
    try { await wd.invoke('stop_all'); } catch { /* the command may be named otherwise */ }
    await wd.delete();
  }
  await procs.stopAll();
  if (root && !process.env.PORTHOLE_GUI_KEEP) fs.rmSync(root, { recursive: true, force: true });
});

test('web login to the real web server stores the password only in the Secret Service', { skip }, async () => {
  await wd.waitVisible('#view-signin');
  await wd.type('#pf-name', PROFILE);
  await wd.type('#pf-endpoint', ENDPOINT);
  await wd.clickCss('#profile-form input[name="mode"][value="session"]');
  await wd.type('#pf-user', USERNAME);
  await wd.type('#pf-secret', PASSWORD);
  await wd.clickCss('#pf-test');
  const tested = await wd.waitText('#pf-result', (t) => t.length > 0 && !/Testing|Connecting/i.test(t), 60000);
  assert.match(tested, /^Connected/, `test connection: ${tested}`);
  await wd.clickCss('#pf-save');
  await wd.waitText('#profile-name', (t) => t === PROFILE, 60000);
  await wd.waitVisible(running, 60000);
  assert.equal(secretToolLookup(env, ['service', 'porthole', 'username', `profile:${PROFILE}`]), PASSWORD);
  const profiles = fs.readFileSync(path.join(dirs.config, 'porthole', 'profiles.toml'), 'utf8');
  assert.match(profiles, new RegExp(USERNAME.replace(/\./g, '\\.')));
  assert.deepEqual(filesContaining(Object.values(dirs), PASSWORD), [], 'the password is in no file');
});

test('rig-running offers Jupyter and SSH; rig-pending says why it is unavailable', { skip }, async () => {
  await wd.waitVisible(app('jupyter'), 30000);
  await wd.waitVisible(app('sshd'), 30000);
  const apps = await wd.execute(
    'return [...document.querySelectorAll(arguments[0])].map((g) => [g.dataset.app, g.querySelector(".app-label").textContent]);',
    [`${running} .app-group`],
  );
  const names = apps.map((a) => a[0]);
  assert.ok(names.includes('jupyter') && names.includes('sshd'), `apps: ${JSON.stringify(apps)}`);
  assert.match(apps.find((a) => a[0] === 'jupyter')[1], /Jupyter/);
  assert.match(apps.find((a) => a[0] === 'sshd')[1], /SSH/);
  const why = await wd.waitText(`${pending} .s-unavailable`, (t) => t.length > 0, 30000);
  assert.match(why, /Waiting/);
  await wd.waitText('#refreshed', (t) => t.startsWith('updated'));
  await saveShot(wd, '11-rig-session-mode.png');
});

test('clicking Jupyter hands the browser a URL that serves the real JupyterLab', { skip }, async () => {
  await wd.clickCss(`${app('jupyter')} .app-button`);
  const urls = await waitForFile(browser.log, 90000);
  const url = urls.trim().split('\n').pop();
  assert.match(url, /^http:\/\/jupyter-rig-running\.localhost:\d+\//);
  // The rig runs JupyterLab on 127.0.0.1 without allow_remote_access, so it refuses any
  // Host but local ones (containers run it on 0.0.0.0, where the name works:
  // tests/real_apps.rs); the tunnel's loopback address reaches the same app.
  const res = await getTunnel(url.replace(/\/\/[^/]+:/, '//127.0.0.1:'), 30000);
  const body = res.text;
  assert.equal(res.status, 200, `GET ${url} (→ ${res.url}): ${body.slice(0, 300)}`);
  assert.match(body, /JupyterLab/, `GET ${res.url} is not JupyterLab: ${body.slice(0, 300)}`);
  await wd.waitVisible(tunnelRow('jupyter'), 30000);
});

test('clicking SSH runs ssh with the downloaded key in the terminal and gets output back', { skip }, async () => {
  await useTerminal(wd, terminal.file);
  await wd.clickCss(`${app('sshd')} .app-button`);
  const rc = await waitForFile(path.join(terminal.out, 'rc'), 90000);
  const stdout = fs.readFileSync(path.join(terminal.out, 'stdout'), 'utf8');
  const stderr = fs.readFileSync(path.join(terminal.out, 'stderr'), 'utf8');
  const argv = fs.readFileSync(path.join(terminal.out, 'argv'), 'utf8');
  assert.equal(rc.trim(), '0', `ssh failed (${argv.trim()}): ${stderr}`);
  assert.equal(stdout.trim(), 'porthole-ssh-ok');
  assert.match(argv, /ssh -i \S+ .*work@127\.0\.0\.1|ssh -i .* -l work|work@/, `argv: ${argv}`);
  assert.equal(fs.readFileSync(path.join(terminal.out, 'key.mode'), 'utf8').trim(), '600');
  await wd.waitVisible(tunnelRow('sshd'), 30000);
  await saveShot(wd, '12-rig-tunnels.png');
});

test('stopping the tunnels closes their ports and removes the key', { skip }, async () => {
  const port = Number((await wd.waitText(`${tunnelRow('jupyter')} .t-addr`, (t) => t.includes(':'))).split(':').pop());
  assert.equal(await portOpen(port), true);
  const keyPath = fs.readFileSync(path.join(terminal.out, 'key.path'), 'utf8').trim();
  await wd.clickCss('#stop-all');
  await wd.waitText('#tunnel-count', (t) => t === '0', 30000);
  assert.equal(await portOpen(port), false, 'the jupyter port is closed');
  assert.equal(fs.existsSync(keyPath), false, 'the key is removed with its tunnel');
  assert.equal((await wd.invoke('tray_menu')).tunnels.length, 0);
});
