// The desktop app with real apps behind the emulator, as a user meets them: clicking
// JupyterLab hands its URL to $BROWSER, here tests/browser/browser-check.sh (headless
// Debian Chromium), which must find a working JupyterLab (shell up, kernels API answered
// with the page's cookies); clicking SSH runs ssh to dropbear (how Backend.AI containers
// serve SSH, as `work`) in the configured terminal.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import {
  ACCESS_KEY, BIN_DIR, Procs, ROOT, SECRET_KEY, appEnv, checkEnvironment, saveShot, startApp,
  startDropbear, startEmulator, startJupyterLab, startKeyring, tempRoot, terminalScript, useTerminal,
  waitForFile,
} from './harness.mjs';

const procs = new Procs();
let root;
let env;
let wd;
let terminal;
let dropbear;
let results;

const apps = '#sessions li.session[data-name="gui-apps"]';
const app = (name) => `${apps} .app-group[data-app="${name}"]`;

// `porthole profile add` with the secret on stdin: the app then starts signed in to it.
function addProfile(endpoint) {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(BIN_DIR, 'porthole'),
      ['profile', 'add', 'apps', '--endpoint', endpoint, '--access-key', ACCESS_KEY], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.stdin.end(`${SECRET_KEY}\n`);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`porthole profile add: ${code}: ${out}`))));
  });
}

before(async () => {
  checkEnvironment();
  root = tempRoot('apps');
  fs.chmodSync(root, 0o755);
  ({ env } = appEnv(root));
  const lab = await startJupyterLab(procs, path.join(root, 'lab'));
  dropbear = await startDropbear(procs, path.join(root, 'dropbear'));
  const config = `api_version = "v8.20240915"

[[keypairs]]
access_key = "${ACCESS_KEY}"
secret_key = "${SECRET_KEY}"

[[sessions]]
name = "gui-apps"
files = { id_container = "${dropbear.key}" }
[[sessions.services]]
name = "jupyterlab"
protocol = "http"
container_ports = [8090]
target = "127.0.0.1:${lab.port}"
[[sessions.services]]
name = "sshd"
protocol = "tcp"
container_ports = [2200]
target = "127.0.0.1:${dropbear.port}"
`;
  const { url } = await startEmulator(procs, path.join(root, 'emulator'), config);
  results = path.join(root, 'browser-results.jsonl');
  env.BROWSER = path.join(ROOT, 'tests', 'browser', 'browser-check.sh');
  env.PORTHOLE_BROWSER_RESULT = results;
  env.PORTHOLE_SHOT_DIR = path.join(ROOT, 'target', 'screenshots', 'browser');
  env.PORTHOLE_SSH_USER = dropbear.user;
  terminal = terminalScript(root);
  await startKeyring(procs, env);
  await addProfile(url);
  wd = await startApp(procs, env);
});

after(async () => {
  if (wd) await wd.delete();
  await procs.stopAll();
  if (root && !process.env.PORTHOLE_GUI_KEEP) fs.rmSync(root, { recursive: true, force: true });
});

test('the session shows JupyterLab and SSH', async () => {
  await wd.waitVisible(app('jupyterlab'), 30000);
  await wd.waitVisible(app('sshd'));
});

test('clicking JupyterLab opens a working JupyterLab in Chromium on the tunnel’s own name', async () => {
  await wd.waitVisible(app('jupyterlab'), 30000);
  await wd.clickCss(`${app('jupyterlab')} .app-button`);
  const line = (await waitForFile(results, 90000)).trim().split('\n').pop();
  const result = JSON.parse(line);
  assert.match(result.url, /^http:\/\/jupyterlab-gui-apps\.localhost:\d+\/lab$/);
  assert.equal(result.ok, true, `browser check: ${line}`);
  await saveShot(wd, '12-real-jupyterlab.png');
});

test('clicking SSH runs ssh to dropbear in the terminal', async () => {
  await wd.waitVisible(app('sshd'), 30000);
  await useTerminal(wd, terminal.file);
  await wd.clickCss(`${app('sshd')} .app-button`);
  const rc = await waitForFile(path.join(terminal.out, 'rc'), 60000);
  const stderr = fs.readFileSync(path.join(terminal.out, 'stderr'), 'utf8');
  assert.equal(rc.trim(), '0', `ssh failed: ${stderr}\ndropbear: ${dropbear.log()}`);
  assert.equal(fs.readFileSync(path.join(terminal.out, 'stdout'), 'utf8').trim(), 'porthole-ssh-ok');
  assert.match(dropbear.log(), /Pubkey auth succeeded for '[^']+'/);
});
