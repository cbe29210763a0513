// End-to-end: the real Porthole app in a real window (Xvfb) driven through WebDriver
// (tauri-driver + WebKitWebDriver), against porthole-emulator with a real HTTP server and
// a real OpenSSH sshd behind it, and a real Secret Service (gnome-keyring) on the session
// bus. Run by scripts/test-gui.sh.
//
// The tests share one app (starting one costs seconds) and run in order, but each can run
// alone (`node --test --test-name-pattern=...`): it first brings the app to the state it
// needs with the fixtures below (signed in, a tunnel up, a terminal configured), which
// cost nothing when an earlier test left the app there.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';

import {
  ACCESS_KEY, SECRET_KEY, Procs, appEnv, browserScript, checkEnvironment, filesContaining, filesMatching,
  APP, getTunnel, portOpen, saveShot, secretToolLookup, startApp, startEmulator, startHttp, startKeyring,
  startSshd, tempRoot, terminalScript, waitForFile,
} from './harness.mjs';

const USERNAME = 'gui-user@example.test';
const PASSWORD = 'gui-web-password-7d1e';
const MARKER = `porthole-gui-page-${process.pid}-${Date.now()}`;
const procs = new Procs();
let root;
let env;
let dirs;
let endpoint;
let browser;
let terminal;
let wd;

const lab = '#sessions li.session[data-name="gui-lab"]';
const app = (name) => `${lab} .app-group[data-app="${name}"]`;
const tunnelRow = (name) => `#tunnels li.tunnel[data-app="${name}"]`;

before(async () => {
  checkEnvironment();
  root = tempRoot('app');
  // sshd reads authorized_keys as the login user, who must be able to reach it.
  fs.chmodSync(root, 0o755);
  ({ env, dirs } = appEnv(root));
  const http = await startHttp(procs, path.join(root, 'www'), `<!doctype html><title>GUI test</title><p>${MARKER}</p>\n`);
  const sshd = await startSshd(procs, path.join(root, 'sshd'));
  const config = `api_version = "v8.20240915"

[[keypairs]]
access_key = "${ACCESS_KEY}"
secret_key = "${SECRET_KEY}"

[[users]]
username = "${USERNAME}"
password = "${PASSWORD}"
access_key = "${ACCESS_KEY}"

[[sessions]]
name = "gui-lab"
id = "00000000-0000-4000-8000-0000000000a1"
status = "RUNNING"
image = "cr.backend.ai/stable/python:3.11-ubuntu22.04"
files = { id_container = "${sshd.key}" }
[[sessions.services]]
name = "jupyter"
protocol = "http"
container_ports = [8081]
target = "127.0.0.1:${http.port}"
[[sessions.services]]
name = "sshd"
protocol = "tcp"
container_ports = [2200]
target = "127.0.0.1:${sshd.port}"
[[sessions.services]]
name = "ipykernel"
protocol = "pty"
container_ports = [2000]
target = "127.0.0.1:${http.port}"

[[sessions]]
name = "gui-queued"
id = "00000000-0000-4000-8000-0000000000a2"
status = "PENDING"
status_info = "no-available-instances"
`;
  endpoint = (await startEmulator(procs, path.join(root, 'emulator'), config)).url;
  browser = browserScript(root);
  terminal = terminalScript(root);
  env.BROWSER = browser.file;
  env.PORTHOLE_SSH_USER = sshd.user;
  await startKeyring(procs, env);
  wd = await startApp(procs, env);
});

after(async () => {
  if (wd) await wd.delete();
  await procs.stopAll();
  if (root && !process.env.PORTHOLE_GUI_KEEP) fs.rmSync(root, { recursive: true, force: true });
});

async function windowVisible() {
  return wd.executeAsync(
    `const done = arguments[0];
     window.__TAURI__.window.getCurrentWindow().isVisible().then(done, () => done(null));`,
  );
}

async function clickMenuItem(text) {
  const ids = await wd.findAll('#profile-popup button');
  for (const id of ids) {
    if ((await wd.text(id)).split('\n')[0].trim() === text) {
      await wd.click(id);
      return;
    }
  }
  throw new Error(`no menu item ${text}`);
}

async function fillProfile(secret) {
  await wd.type('#pf-name', 'gui-lab');
  await wd.type('#pf-endpoint', endpoint);
  await wd.type('#pf-access', ACCESS_KEY);
  await wd.type('#pf-secret', secret);
}

// ----- fixtures: each brings the app to a state, doing nothing when it is there -----

async function showView(view) {
  await wd.clickCss(`.tab[data-view="${view}"]`);
  await wd.waitVisible(`#view-${view}`);
}

/** Signed in with the gui-lab profile (added through the form on a fresh app), on the
 *  sessions view with its apps listed. */
async function signedIn() {
  const current = await wd.execute("return document.querySelector('#profile-name').textContent;");
  if (current !== 'gui-lab') {
    const profiles = await wd.invoke('list_profiles');
    if (profiles.some((p) => p.name === 'gui-lab')) {
      await wd.clickCss('#profile-button');
      await clickMenuItem('gui-lab');
      await wd.waitText('#profile-name', (t) => t === 'gui-lab', 30000);
    } else {
      await wd.waitVisible('#view-signin');
      await fillProfile(SECRET_KEY);
      await wd.clickCss('#pf-save');
    }
  }
  if (!(await wd.execute("return !document.querySelector('#view-main').hidden;"))) await showView('main');
  await wd.waitVisible(app('jupyter'), 30000);
}

/** The app's tunnel is up (clicked open if it is not). */
async function tunnelUp(name) {
  await signedIn();
  const up = await wd.execute('return !!document.querySelector(arguments[0]);', [tunnelRow(name)]);
  if (!up) await wd.clickCss(`${app(name)} .app-button`);
  await wd.waitVisible(tunnelRow(name), 60000);
}

/** Settings name the test's terminal script as the terminal for SSH. */
async function terminalConfigured() {
  const want = `${terminal.file} --title Porthole`;
  await showView('settings');
  await wd.waitVisible('#st-terminal');
  if ((await wd.execute("return document.querySelector('#st-terminal').value;")) !== want) {
    await wd.type('#st-terminal', want);
    await wd.sendKeys(await wd.find('#st-terminal'), '\uE004');
    await wd.waitText('#st-result', (t) => t === 'Saved.');
  }
  await showView('main');
}

/** The sshd tunnel is up, opened by a click that ran ssh in the terminal script. */
async function sshRan() {
  await signedIn();
  await terminalConfigured();
  if (!fs.existsSync(path.join(terminal.out, 'rc'))) await wd.clickCss(`${app('sshd')} .app-button`);
  await waitForFile(path.join(terminal.out, 'rc'), 60000);
  await wd.waitVisible(tunnelRow('sshd'));
}

test('first run shows the sign-in screen with "Try the demo"', async () => {
  await wd.waitVisible('#view-signin');
  await wd.waitVisible('#demo-button');
  await wd.waitText('#signin-title', (t) => t.includes('Sign in'));
  await saveShot(wd, '01-sign-in.png');
});

test('a wrong secret shows a clear error and saves nothing', async () => {
  await fillProfile('definitely-not-the-secret');
  await wd.clickCss('#pf-save');
  const text = await wd.waitText('#pf-result.error', (t) => t.length > 0, 30000);
  assert.match(text, /refused the credentials \(401/);
  assert.match(text, /Check the access and secret key/);
  await saveShot(wd, '02-error-wrong-secret.png');
  assert.equal(fs.existsSync(path.join(dirs.config, 'porthole', 'profiles.toml')), false);
  assert.equal(secretToolLookup(env, ['service', 'porthole', 'username', 'profile:gui-lab']), '');
});

test('adding a profile stores the secret in the Secret Service and in no file', async () => {
  await wd.waitVisible('#view-signin');
  await fillProfile(SECRET_KEY);
  await wd.clickCss('#pf-save');
  await wd.waitVisible(lab, 30000);
  assert.equal(secretToolLookup(env, ['service', 'porthole', 'username', 'profile:gui-lab']), SECRET_KEY);
  const profiles = fs.readFileSync(path.join(dirs.config, 'porthole', 'profiles.toml'), 'utf8');
  assert.match(profiles, /gui-lab/);
  assert.match(profiles, new RegExp(ACCESS_KEY));
  const leaks = filesContaining(Object.values(dirs), SECRET_KEY);
  assert.deepEqual(leaks, [], `the secret is in ${leaks.join(', ')}`);
});

test('the sessions view lists sessions, their apps and why others are unavailable', async () => {
  await signedIn();
  await wd.waitVisible(app('sshd'));
  const apps = await wd.execute(
    'return [...document.querySelectorAll(arguments[0])].map((g) => g.dataset.app);',
    [`${lab} .app-group`],
  );
  assert.deepEqual(apps, ['jupyter', 'sshd'], 'web apps first, the pty port is not offered');
  const why = await wd.waitText('#sessions li.session[data-name="gui-queued"] .s-unavailable', (t) => t.length > 0);
  assert.match(why, /Waiting for resources/);
  await wd.waitText('#refreshed', (t) => t.startsWith('updated'));
  await saveShot(wd, '03-sessions.png');
});

test('clicking an http app hands the browser a URL that serves the page through the tunnel', async () => {
  await signedIn();
  await wd.clickCss(`${app('jupyter')} .app-button`);
  const urls = await waitForFile(browser.log, 60000);
  const url = urls.trim().split('\n').pop();
  // Each web tunnel has its own *.localhost name, so apps keep their cookies apart.
  assert.match(url, /^http:\/\/jupyter-gui-lab\.localhost:\d+\/$/);
  const res = await getTunnel(url);
  assert.equal(res.status, 200);
  assert.match(res.text, new RegExp(MARKER));
  await wd.waitFor('the app button to show the open port', async () =>
    (await wd.execute('return document.querySelector(arguments[0]).dataset.state;', [app('jupyter')])) === 'open');
});

test('the tunnels view shows the connection and non-zero bytes, pushed by events', async () => {
  await tunnelUp('jupyter');
  const port = Number((await wd.waitText(`${tunnelRow('jupyter')} .t-addr`, (t) => t.includes(':'))).split(':').pop());
  // Hold one connection open through the tunnel and watch it, and the bytes of the page
  // fetched above, come in through the engine's events (the UI never polls tunnels).
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  // A fresh tunnel has moved no bytes yet: one request through it.
  await getTunnel(`http://127.0.0.1:${port}/`);
  try {
    await wd.waitFor('the held connection and the bytes in the tunnel row', async () => {
      const row = await wd.execute(
        'const e = document.querySelector(arguments[0]); return [e.querySelector(".t-conns").textContent, Number(e.dataset.bytesDown)];',
        [tunnelRow('jupyter')],
      );
      return /^[1-9]\d* conns? ·/.test(row[0]) && row[1] > 0;
    }, 30000, 300);
    const bytes = await wd.waitText(`${tunnelRow('jupyter')} .t-bytes`, (t) => /↑ [1-9]/.test(t) && /↓ [1-9]/.test(t));
    assert.match(bytes, /↑ \d.* ↓ \d/);
    const down = await wd.execute('return Number(document.querySelector(arguments[0]).dataset.bytesDown);', [tunnelRow('jupyter')]);
    assert.ok(down >= MARKER.length, `bytes down ${down}`);
    assert.equal(await wd.waitText(`${tunnelRow('jupyter')} .t-state`, (t) => t === 'active'), 'active');
    await saveShot(wd, '04-tunnels.png');
  } finally {
    socket.destroy();
  }
});

test('the tray menu model lists the running tunnel', async () => {
  await tunnelUp('jupyter');
  const menu = await wd.invoke('tray_menu');
  assert.equal(menu.state, 'active');
  assert.equal(menu.title, 'Porthole — 1 tunnel');
  assert.equal(menu.tunnels.length, 1);
  assert.equal(menu.tunnels[0].label, 'gui-lab · Jupyter');
  assert.deepEqual(menu.tunnels[0].items, ['Open', 'Copy address', 'Stop']);
  assert.deepEqual(menu.actions, ['Stop all', 'Show Porthole', 'Quit']);
});

test('another local user is refused by the app’s tunnels, and the row says who', async (t) => {
  if (process.getuid() !== 0) {
    t.skip('creating a second OS user needs root');
    return;
  }
  await tunnelUp('jupyter');
  const port = Number((await wd.waitText(`${tunnelRow('jupyter')} .t-addr`, (x) => x.includes(':'))).split(':').pop());
  const name = `ph-gui-${process.pid}`;
  spawnSync('userdel', ['-r', name]);
  const made = spawnSync('useradd', ['--create-home', '--shell', '/bin/sh', name]);
  assert.equal(made.status, 0, `useradd: ${made.stderr}`);
  try {
    // The other user's request is closed before anything reaches the session.
    const client = `
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(b"GET / HTTP/1.1\\r\\nHost: 127.0.0.1:" + sys.argv[1].encode() + b"\\r\\n\\r\\n")
try:
    print("GOT" if s.recv(65536) else "CLOSED")
except ConnectionResetError:
    print("CLOSED")
`;
    const other = spawnSync('runuser', ['-u', name, '--', 'python3', '-c', client, String(port)], { timeout: 30000 });
    assert.equal(other.stdout.toString().trim(), 'CLOSED', `the other user: ${other.stderr}`);
    // The owner's still work.
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(20000) });
    assert.match(await res.text(), new RegExp(MARKER));
    const notice = await wd.waitText(`${tunnelRow('jupyter')} .t-notice`, (x) => x.includes(name));
    assert.equal(notice, `Refused 1 connection from ${name}: only you can use this tunnel`);
    await saveShot(wd, '13-refused-other-user.png');
  } finally {
    spawnSync('userdel', ['-r', name]);
  }
});

test('clicking sshd runs ssh in the configured terminal, with a 0600 key', async () => {
  await signedIn();
  await terminalConfigured();
  await wd.clickCss(`${app('sshd')} .app-button`);
  const rc = await waitForFile(path.join(terminal.out, 'rc'), 60000);
  const stdout = fs.readFileSync(path.join(terminal.out, 'stdout'), 'utf8');
  const stderr = fs.readFileSync(path.join(terminal.out, 'stderr'), 'utf8');
  assert.equal(rc.trim(), '0', `ssh failed: ${stderr}`);
  assert.equal(stdout.trim(), 'porthole-ssh-ok');
  const argv = fs.readFileSync(path.join(terminal.out, 'argv'), 'utf8');
  assert.match(argv, /^--title Porthole ssh -i /, 'the terminal template is honoured');
  assert.equal(fs.readFileSync(path.join(terminal.out, 'key.mode'), 'utf8').trim(), '600');
  const keyPath = fs.readFileSync(path.join(terminal.out, 'key.path'), 'utf8').trim();
  assert.ok(fs.existsSync(keyPath), 'the key lives while the tunnel does');
  await wd.waitVisible(tunnelRow('sshd'));
  const menu = await wd.invoke('tray_menu');
  assert.ok(menu.tunnels.some((t) => t.label === 'gui-lab · SSH'), JSON.stringify(menu));
});

test('stopping tunnels closes their ports and removes the ssh key', async () => {
  await sshRan();
  await tunnelUp('jupyter');
  const port = Number((await wd.waitText(`${tunnelRow('jupyter')} .t-addr`, (t) => t.includes(':'))).split(':').pop());
  assert.equal(await portOpen(port), true);
  await wd.clickCss(`${tunnelRow('jupyter')} .t-stop`);
  await wd.waitFor('the jupyter tunnel row to go', async () =>
    !(await wd.execute('return !!document.querySelector(arguments[0]);', [tunnelRow('jupyter')])));
  assert.equal(await portOpen(port), false, 'the port is closed');
  const keyPath = fs.readFileSync(path.join(terminal.out, 'key.path'), 'utf8').trim();
  await wd.clickCss('#stop-all');
  await wd.waitText('#tunnel-count', (t) => t === '0');
  assert.equal(fs.existsSync(keyPath), false, 'the key is removed with its tunnel');
  const menu = await wd.invoke('tray_menu');
  assert.equal(menu.state, 'idle');
  assert.equal(menu.tunnels.length, 0);
});

test('Settings → SSH config lets plain ssh reach the session, and Remove undoes it', async () => {
  await signedIn();
  const sshDir = path.join(dirs.home, '.ssh');
  fs.mkdirSync(sshDir, { recursive: true, mode: 0o700 });
  const own = 'Host example.org\n    User me\n';
  fs.writeFileSync(path.join(sshDir, 'config'), own);
  await wd.clickCss('.tab[data-view="settings"]');
  await wd.clickCss('#ssh-config-write');
  const said = await wd.waitText('#ssh-config-result', (t) => t.length > 0, 30000);
  assert.match(said, /ssh gui-lab\.porthole/, said);
  await saveShot(wd, '10-ssh-config.png');
  const config = fs.readFileSync(path.join(sshDir, 'config'), 'utf8');
  assert.ok(config.endsWith(own), config);
  assert.equal(fs.readFileSync(path.join(sshDir, 'config.porthole-backup'), 'utf8'), own);
  // Plain ssh, as a user's shell runs it: the ProxyCommand is the porthole command with
  // the app's profile, whose secret comes from the same keychain.
  const sshEnv = { ...env };
  for (const k of Object.keys(sshEnv)) if (k.startsWith('BACKEND_')) delete sshEnv[k];
  const out = await new Promise((resolve) => {
    const child = spawn('ssh', ['-F', path.join(sshDir, 'config'), '-o', 'BatchMode=yes', 'gui-lab.porthole', 'echo', 'via-ssh-config'],
      { env: sshEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout.trim(), 'via-ssh-config');
  await wd.clickCss('#ssh-config-remove');
  await wd.waitText('#ssh-config-result', (t) => t.startsWith('Removed'));
  assert.equal(fs.readFileSync(path.join(sshDir, 'config'), 'utf8'), own);
  assert.equal(fs.existsSync(path.join(sshDir, 'porthole')), false);
  await wd.clickCss('.tab[data-view="main"]');
});

test('dark mode', async () => {
  await signedIn();
  await wd.clickCss('.tab[data-view="settings"]');
  await wd.waitVisible('#st-theme');
  await wd.execute("const s = document.querySelector('#st-theme'); s.value = 'dark'; s.dispatchEvent(new Event('change'));");
  await wd.waitFor('the dark theme', async () =>
    (await wd.execute('return document.documentElement.dataset.theme;')) === 'dark');
  await saveShot(wd, '05-settings-dark.png');
  await wd.clickCss('.tab[data-view="main"]');
  await wd.clickCss(`${app('jupyter')} .app-button`);
  await wd.waitVisible(tunnelRow('jupyter'), 60000);
  const bg = await wd.execute('return getComputedStyle(document.body).backgroundColor;');
  assert.equal(bg, 'rgb(18, 21, 27)');
  await saveShot(wd, '06-sessions-dark.png');
  const settings = fs.readFileSync(path.join(dirs.config, 'porthole', 'settings.toml'), 'utf8');
  assert.match(settings, /theme = "dark"/);
});

test('a second profile with web login, and switching between profiles', async () => {
  await signedIn();
  await wd.clickCss('#profile-button');
  await clickMenuItem('Add profile…');
  await wd.type('#pf-name', 'gui-web');
  await wd.type('#pf-endpoint', endpoint);
  await wd.clickCss('#profile-form input[name="mode"][value="session"]');
  await wd.type('#pf-user', USERNAME);
  await wd.type('#pf-secret', PASSWORD);
  await wd.clickCss('#pf-test');
  const tested = await wd.waitText('#pf-result.ok', (t) => t.startsWith('Connected'), 30000);
  assert.match(tested, /2 sessions visible/);
  await wd.clickCss('#pf-save');
  await wd.waitText('#profile-name', (t) => t === 'gui-web', 30000);
  await wd.waitVisible(app('jupyter'), 30000);
  assert.equal(secretToolLookup(env, ['service', 'porthole', 'username', 'profile:gui-web']), PASSWORD);
  assert.deepEqual(filesContaining(Object.values(dirs), PASSWORD), []);
  await wd.clickCss('#profile-button');
  await clickMenuItem('gui-lab');
  await wd.waitText('#profile-name', (t) => t === 'gui-lab', 30000);
  await wd.waitVisible(app('jupyter'), 30000);
});

test('closing the window keeps tunnels running; a second launch shows it again', async () => {
  await tunnelUp('jupyter');
  const port = Number((await wd.waitText(`${tunnelRow('jupyter')} .t-addr`, (t) => t.includes(':'))).split(':').pop());
  await wd.ctrlKey('w');
  await wd.waitFor('the window to hide', async () => !(await windowVisible()));
  const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(20000) });
  assert.match(await res.text(), new RegExp(MARKER), 'the tunnel still serves with the window closed');
  assert.ok((await wd.invoke('tray_menu')).tunnels.some((t) => t.label === 'gui-lab · Jupyter'));
  // Single instance: launching again shows the running app instead of a second one.
  const second = spawn(APP, [], { env, stdio: 'ignore' });
  const code = await new Promise((resolve) => {
    const timer = setTimeout(() => { second.kill('SIGKILL'); resolve('timeout'); }, 20000);
    second.once('exit', (c) => { clearTimeout(timer); resolve(c); });
  });
  assert.notEqual(code, 'timeout', 'the second instance exits');
  await wd.waitFor('the window to show again', windowVisible);
});

test('an endpoint that stops answering shows one banner with Retry', async () => {
  await signedIn();
  // The emulator is the last process started before the keyring; stop it.
  const emulator = procs.children.find((c) => c.spawnargs.some((a) => a.endsWith('emulator.toml')));
  const gone = new Promise((r) => emulator.once('exit', r));
  emulator.kill('SIGTERM');
  await gone;
  await wd.clickCss('#refresh-button');
  const text = await wd.waitText('#banner-text', (t) => t.length > 0, 30000);
  assert.match(text, /Cannot reach/);
  await wd.waitVisible('#banner-retry');
  assert.equal(await wd.execute("return document.querySelectorAll('#banner').length;"), 1);
  await saveShot(wd, '07-error-unreachable.png');
  const menu = await wd.invoke('tray_menu');
  assert.equal(menu.state, 'error');
});

// Last: after everything above (API and web login, tunnels, ssh, ssh config, restarts),
// nothing secret is in any file the app or the porthole command wrote.
test('after the whole run no file holds a secret key, password, session cookie or signature', async () => {
  // Alone, the run is a sign-in: something to scan.
  if ((await wd.invoke('list_profiles')).length === 0) await signedIn();
  const where = Object.values(dirs);
  assert.deepEqual(filesContaining(where, SECRET_KEY), [], 'secret key');
  assert.deepEqual(filesContaining(where, PASSWORD), [], 'password');
  const patterns = {
    // The web server's session cookie / header value (32 hex digits after the name).
    cookie: /AIOHTTP_SESSION=[0-9a-f]{16}|X-BackendAI-SessionID[^\n]{0,8}[0-9a-f]{16}/i,
    // A signed request's Authorization header.
    signature: /signMethod=HMAC-SHA256|BackendAI signMethod|signature=[0-9a-f]{16}/i,
  };
  for (const [what, re] of Object.entries(patterns)) {
    const hits = filesMatching(where, (bytes) => re.test(bytes.toString('latin1')));
    assert.deepEqual(hits, [], what);
  }
  // The scan itself works: the log files it read are there and non-empty.
  const logs = filesMatching(where, (bytes) => bytes.toString('latin1').includes('signed in'));
  assert.ok(logs.length > 0, 'the app wrote logs that were scanned');
});
