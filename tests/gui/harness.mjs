// Processes for the GUI tests: the real app under tauri-driver, porthole-emulator, a real
// OpenSSH sshd and python's http.server, each on loopback ports the OS picks, plus temp
// config/data/cache dirs so every run starts clean. Everything started is stopped in
// `Procs.stopAll()`.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Session } from './webdriver.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TARGET = process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target');
export const BIN_DIR = process.env.PORTHOLE_GUI_BIN_DIR || path.join(TARGET, 'debug');
export const APP = process.env.PORTHOLE_GUI_APP || path.join(BIN_DIR, 'porthole-desktop');
export const SHOTS = path.join(ROOT, 'target', 'screenshots');

export const ACCESS_KEY = 'AKIAPORTHOLEGUI00001';
export const SECRET_KEY = 'gui-test-secret-9f3b2c7d5e1a4f60';

function need(file, hint) {
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: ${hint}`);
}

export function checkEnvironment() {
  need(APP, 'build it with `cargo build -p porthole-desktop` (scripts/test-gui.sh does)');
  need(path.join(BIN_DIR, 'porthole-emulator'), 'build it with `cargo build --workspace --bins`');
  if (!process.env.DISPLAY) throw new Error('no $DISPLAY: run under xvfb-run (scripts/test-gui.sh does)');
  if (!process.env.DBUS_SESSION_BUS_ADDRESS) throw new Error('no session bus: run under dbus-run-session (scripts/test-gui.sh does)');
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Resolves with the first line of `stream` that satisfies `want`, within `ms`.
function lineMatching(stream, want, ms, what) {
  return new Promise((resolve, reject) => {
    let buf = '';
    let seen = '';
    const timer = setTimeout(() => {
      stream.off('data', onData);
      reject(new Error(`${what}: no expected line within ${ms} ms; it printed:\n${seen}`));
    }, ms);
    const onData = (chunk) => {
      buf += chunk.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trimEnd();
        buf = buf.slice(i + 1);
        seen += `${line}\n`;
        if (want(line)) {
          clearTimeout(timer);
          stream.off('data', onData);
          stream.resume();
          resolve(line);
          return;
        }
      }
    };
    stream.on('data', onData);
  });
}

export class Procs {
  constructor() {
    this.children = [];
  }

  spawn(cmd, args, opts = {}) {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    child.on('error', () => {});
    this.children.push(child);
    if (process.env.PORTHOLE_GUI_VERBOSE) {
      child.stderr.on('data', (d) => process.stderr.write(`[${path.basename(cmd)}] ${d}`));
    }
    return child;
  }

  // Stops the processes, newest first, waiting up to 5 s for each.
  async stopAll() {
    for (const child of this.children.reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    }
    this.children = [];
  }
}

export function tempRoot(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `porthole-gui-${name}-`));
}

// Clean per-run home, config, data, cache and state dirs, and the app's environment.
export function appEnv(root, extra = {}) {
  const dirs = {
    home: path.join(root, 'home'),
    config: path.join(root, 'config'),
    data: path.join(root, 'data'),
    cache: path.join(root, 'cache'),
    state: path.join(root, 'state'),
  };
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
  const env = {
    ...process.env,
    HOME: dirs.home,
    XDG_CONFIG_HOME: dirs.config,
    XDG_DATA_HOME: dirs.data,
    XDG_CACHE_HOME: dirs.cache,
    XDG_STATE_HOME: dirs.state,
    PORTHOLE_LOG: 'info,porthole_core=debug',
    ...extra,
  };
  delete env.PORTHOLE_DEMO;
  if (extra.PORTHOLE_DEMO) env.PORTHOLE_DEMO = extra.PORTHOLE_DEMO;
  return { env, dirs };
}

// Unlocks a fresh gnome-keyring (Secret Service) on the session bus, keeping its files
// under the test's data dir.
export async function startKeyring(procs, env) {
  // An earlier test file's daemon (its keyring files already deleted) may still own the
  // Secret Service name on this D-Bus session; the bus is the test run's own
  // (dbus-run-session), so its owner is always a test daemon: end it first.
  await stopKeyringOnBus(env);
  const child = procs.spawn('gnome-keyring-daemon', ['--unlock', '--components=secrets'], {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.end('pw');
  const code = await new Promise((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`gnome-keyring-daemon --unlock exited ${code}`);
}

// Ends whatever process owns org.freedesktop.secrets on the session bus of `env`, and
// waits until the name is free.
async function stopKeyringOnBus(env) {
  const owner = () => {
    try {
      const out = execFileSync('dbus-send', ['--session', '--print-reply', '--dest=org.freedesktop.DBus', '/',
        'org.freedesktop.DBus.GetConnectionUnixProcessID', 'string:org.freedesktop.secrets'],
      { env, encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
      const m = out.match(/uint32 (\d+)/);
      return m ? Number(m[1]) : null;
    } catch {
      return null; // nobody owns the name
    }
  };
  const pid = owner();
  if (!pid) return;
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  const deadline = Date.now() + 10000;
  while (owner() === pid && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

export function secretToolLookup(env, attrs) {
  try {
    return execFileSync('secret-tool', ['lookup', ...attrs], { env, encoding: 'utf8', timeout: 10000 });
  } catch {
    return '';
  }
}

// Files under `dirs` whose bytes contain `needle`.
export function filesContaining(dirs, needle) {
  return filesMatching(dirs, (bytes) => bytes.includes(needle));
}

// Every file under `dirs` whose bytes satisfy `test` (a function of a Buffer).
export function filesMatching(dirs, test) {
  const hits = [];
  const walk = (dir) => {
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        try {
          if (test(fs.readFileSync(p))) hits.push(p);
        } catch {
          // unreadable socket or vanished file
        }
      }
    }
  };
  for (const d of dirs) walk(d);
  return hits;
}

export function userExists(name) {
  try {
    return fs.readFileSync('/etc/passwd', 'utf8').split('\n').some((l) => l.split(':')[0] === name);
  } catch {
    return false;
  }
}

// A real OpenSSH sshd on a loopback port accepting one generated key (the session's
// id_container), logging in as `work` when that user exists, else the current user.
export async function startSshd(procs, dir) {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  for (const file of ['host_key', 'id_container']) {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'porthole-gui-test', '-f', path.join(dir, file)]);
  }
  fs.copyFileSync(path.join(dir, 'id_container.pub'), path.join(dir, 'authorized_keys'));
  fs.chmodSync(path.join(dir, 'authorized_keys'), 0o644);
  const user = userExists('work') ? 'work' : os.userInfo().username;
  const port = await freePort();
  const config = [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${dir}/host_key`, `PidFile ${dir}/sshd.pid`,
    `AuthorizedKeysFile ${dir}/authorized_keys`, 'StrictModes no', 'UsePAM no', 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', 'PermitRootLogin prohibit-password', 'LogLevel INFO', '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'sshd_config'), config);
  fs.mkdirSync('/run/sshd', { recursive: true });
  const sshd = ['/usr/sbin/sshd', '/usr/bin/sshd'].find((p) => fs.existsSync(p));
  if (!sshd) throw new Error('OpenSSH sshd is not installed (apt-get install openssh-server)');
  const child = procs.spawn(sshd, ['-D', '-e', '-f', path.join(dir, 'sshd_config')]);
  await lineMatching(child.stderr, (l) => l.includes('Server listening on'), 20000, 'sshd');
  return { port, user, key: path.join(dir, 'id_container') };
}

// python3 -m http.server serving a directory with index.html = `body`.
export async function startHttp(procs, dir, body) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'index.html'), body);
  const child = procs.spawn('python3', ['-u', '-m', 'http.server', '--bind', '127.0.0.1', '0', '--directory', dir]);
  const line = await lineMatching(child.stdout, (l) => l.startsWith('Serving HTTP'), 20000, 'http.server');
  const port = Number(line.split(/\s+/)[line.split(/\s+/).indexOf('port') + 1]);
  return { port };
}

// porthole-emulator with `config` (TOML) on a free port.
export async function startEmulator(procs, dir, config, listen = '127.0.0.1:0') {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'emulator.toml');
  fs.writeFileSync(file, config);
  const child = procs.spawn(path.join(BIN_DIR, 'porthole-emulator'), ['--config', file, '--listen', listen]);
  const line = await lineMatching(child.stdout, (l) => l.startsWith('listening on '), 20000, 'porthole-emulator');
  return { url: line.slice('listening on '.length).trim(), child };
}

// A TCP echo server in this process; resolves with its port.
export function startEcho() {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => socket.pipe(socket));
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ port: server.address().port, server }));
  });
}

// The process id of the app started with `dirs` (tauri-driver starts it; its environment
// names this test's config directory).
export function appPid(dirs) {
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const exe = fs.readlinkSync(`/proc/${pid}/exe`);
      if (!exe.endsWith('porthole-desktop')) continue;
      const environ = fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
      if (environ.includes(`XDG_CONFIG_HOME=${dirs.config}`)) return Number(pid);
    } catch {
      // The process ended meanwhile, or is not ours to read.
    }
  }
  throw new Error(`no porthole-desktop running with XDG_CONFIG_HOME=${dirs.config}`);
}

// The app under tauri-driver (which starts WebKitWebDriver, which starts the app) with
// `env`; returns the WebDriver session.
export async function startApp(procs, env) {
  const port = await freePort();
  const nativePort = await freePort();
  const driver = procs.spawn('tauri-driver', ['--port', String(port), '--native-port', String(nativePort)], { env });
  let log = '';
  driver.stdout.on('data', (d) => { log += d; });
  driver.stderr.on('data', (d) => { log += d; });
  try {
    return await Session.create(`http://127.0.0.1:${port}`, {
      alwaysMatch: { 'tauri:options': { application: APP } },
    });
  } catch (e) {
    throw new Error(`${e.message}\ntauri-driver said:\n${log.slice(-3000)}`);
  }
}

export async function saveShot(session, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  // Let the page paint what the test just changed.
  await session.executeAsync('const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));');
  const file = path.join(SHOTS, name);
  fs.writeFileSync(file, await session.screenshot());
  return file;
}

// A script standing in for the browser: records each URL it is given.
export function browserScript(dir) {
  const file = path.join(dir, 'browser.sh');
  const log = path.join(dir, 'browser-urls.txt');
  fs.writeFileSync(file, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${log}'\n`, { mode: 0o755 });
  return { file, log };
}

// A script standing in for the terminal: runs the command it is given (ssh ...) with a
// remote command appended, and records the output, the exit code and the key it used.
export function terminalScript(dir) {
  const file = path.join(dir, 'terminal.sh');
  const out = path.join(dir, 'terminal');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(file, `#!/bin/sh
printf '%s\\n' "$*" > '${out}/argv'
# Terminal options come first (e.g. --title X); the command starts at "ssh".
while [ $# -gt 0 ] && [ "$1" != ssh ]; do shift; done
prev=""
for a in "$@"; do
  [ "$prev" = "-i" ] && key="$a"
  prev="$a"
done
printf '%s\\n' "$key" > '${out}/key.path'
stat -c %a "$key" > '${out}/key.mode' 2>/dev/null
"$@" 'echo porthole-ssh-ok' > '${out}/stdout' 2> '${out}/stderr' < /dev/null
echo $? > '${out}/rc.tmp' && mv '${out}/rc.tmp' '${out}/rc'
`, { mode: 0o755 });
  return { file, out };
}

// Resolves when `file` exists and `read(file)` is truthy, polling every 100 ms.
export async function waitForFile(file, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (fs.existsSync(file)) {
      const text = fs.readFileSync(file, 'utf8');
      if (text.trim()) return text;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${file} did not appear within ${timeoutMs} ms`);
}

// Whether something accepts TCP connections on 127.0.0.1:port.
export function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

// GET a tunnel URL such as http://jupyter-s.localhost:PORT/ the way a browser does:
// `*.localhost` is the loopback address (browsers know it; glibc here does not), and
// the name goes in the Host header, which the tunnel's Host guard checks.
// Redirects within the tunnel are followed; `url` in the result is the final one.
export async function getTunnel(url, timeoutMs = 20000, redirects = 5) {
  const res = await getTunnelOnce(url, timeoutMs);
  if (res.status >= 300 && res.status < 400 && res.location && redirects > 0) {
    return getTunnel(new URL(res.location, url).href, timeoutMs, redirects - 1);
  }
  return { ...res, url };
}

function getTunnelOnce(url, timeoutMs) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.get(
      // No keep-alive: a pooled socket into the app's tunnel would keep this test process
      // (and so the whole run) alive after its last test.
      {
        host: '127.0.0.1', port: Number(u.port), path: `${u.pathname}${u.search}`, agent: false,
        headers: { Host: u.host, Connection: 'close' }, timeout: timeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { text += d; });
        res.on('end', () => resolve({ status: res.statusCode, text, location: res.headers.location }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

// The passwd entry of `name`: uid, gid, home.
function account(name) {
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.split(':')[0] === name);
  if (!line) throw new Error(`no user ${name}`);
  const f = line.split(':');
  return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] };
}

// dropbear as Backend.AI containers run it (for `work` when that user exists), on a
// loopback port. Its login user's home is a temp dir bind-mounted over the real one in a
// private mount namespace, so the test's authorized_keys never touches a real home.
// Needs root (unshare --mount), as CI runs; the Rust harness (tests/src/dropbear.rs)
// also covers non-root runs.
export async function startDropbear(procs, dir) {
  if (process.getuid() !== 0) throw new Error('startDropbear needs root (unshare --mount)');
  const user = account(userExists('work') ? 'work' : os.userInfo().username);
  fs.mkdirSync(path.join(dir, 'home', '.ssh'), { recursive: true });
  execFileSync('dropbearkey', ['-t', 'ed25519', '-f', path.join(dir, 'host_key')], { stdio: 'ignore' });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'porthole-gui-dropbear', '-f', path.join(dir, 'id_container')]);
  const authorized = path.join(dir, 'home', '.ssh', 'authorized_keys');
  fs.copyFileSync(path.join(dir, 'id_container.pub'), authorized);
  for (const [p, mode] of [[path.join(dir, 'home'), 0o755], [path.join(dir, 'home', '.ssh'), 0o700], [authorized, 0o600]]) {
    fs.chownSync(p, user.uid, user.gid);
    fs.chmodSync(p, mode);
  }
  fs.mkdirSync(user.home, { recursive: true });
  const port = await freePort();
  const q = (s) => `'${String(s).replace(/'/g, "'\\''")}'`;
  const script = `set -e; mount --bind ${q(path.join(dir, 'home'))} ${q(user.home)}; exec dropbear -F -E -s -g -K 15 -I 0 `
    + `-r ${q(path.join(dir, 'host_key'))} -P ${q(path.join(dir, 'dropbear.pid'))} -p 127.0.0.1:${port}`;
  const child = procs.spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script]);
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  await lineMatching(child.stderr, (l) => l.includes('Not backgrounding'), 20000, 'dropbear');
  return { port, user: user.name, key: path.join(dir, 'id_container'), log: () => log };
}

// JupyterLab from target/apps-venv (scripts/install-browser-deps.sh), started the way
// Backend.AI images start it: no token or password, remote access allowed, XSRF on.
export async function startJupyterLab(procs, dir) {
  const jupyter = path.join(ROOT, 'target', 'apps-venv', 'bin', 'jupyter');
  need(jupyter, 'run scripts/install-browser-deps.sh');
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const child = procs.spawn(jupyter, [
    'lab', '--no-browser', '--ip', '127.0.0.1', '--port', String(port), '--IdentityProvider.token=', '--allow-root',
    '--ServerApp.password=', '--ServerApp.allow_remote_access=True', '--ServerApp.port_retries=0',
    `--ServerApp.root_dir=${dir}`,
  ], {
    env: {
      ...process.env,
      HOME: dir,
      JUPYTER_CONFIG_DIR: path.join(dir, '.jupyter'),
      JUPYTER_DATA_DIR: path.join(dir, '.jupyter-data'),
      JUPYTER_RUNTIME_DIR: path.join(dir, '.jupyter-runtime'),
      IPYTHONDIR: path.join(dir, '.ipython'),
    },
  });
  child.stdout.resume();
  await lineMatching(child.stderr, (l) => l.includes('is running at'), 90000, 'jupyter lab');
  return { port };
}

// Settings → "Terminal for SSH" = `command`, saved; back on the sessions view.
export async function useTerminal(wd, command) {
  await wd.clickCss('.tab[data-view="settings"]');
  await wd.waitVisible('#st-terminal');
  await wd.type('#st-terminal', command);
  await wd.sendKeys(await wd.find('#st-terminal'), '\uE004');
  await wd.waitText('#st-result', (t) => t === 'Saved.');
  await wd.clickCss('.tab[data-view="main"]');
}
