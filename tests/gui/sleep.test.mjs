// A laptop suspend is the whole client stopping: the real app is frozen (SIGSTOP) for
// longer than every timeout while its server restarts, then resumed. Within 5 s of waking
// the tunnel shows its true state (the connection that could not survive closed, none
// left open) and new connections work, with no user action.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';

import {
  ACCESS_KEY, SECRET_KEY, Procs, appEnv, appPid, checkEnvironment, freePort, saveShot, startApp,
  startEcho, startEmulator, startKeyring, tempRoot,
} from './harness.mjs';

const procs = new Procs();
let root;
let env;
let dirs;
let wd;
let echo;
let emulator;
let config;
let listen;

const row = '#tunnels li.tunnel[data-app="echo"]';

before(async () => {
  checkEnvironment();
  root = tempRoot('sleep');
  ({ env, dirs } = appEnv(root));
  echo = await startEcho();
  config = `api_version = "v8.20240915"

[[keypairs]]
access_key = "${ACCESS_KEY}"
secret_key = "${SECRET_KEY}"

[[sessions]]
name = "sleepy"
id = "00000000-0000-4000-8000-0000000000c1"
status = "RUNNING"
[[sessions.services]]
name = "echo"
protocol = "tcp"
container_ports = [7007]
target = "127.0.0.1:${echo.port}"
`;
  listen = `127.0.0.1:${await freePort()}`;
  emulator = await startEmulator(procs, path.join(root, 'emulator'), config, listen);
  await startKeyring(procs, env);
  wd = await startApp(procs, env);
  await wd.waitVisible('#view-signin');
  await wd.type('#pf-name', 'sleepy');
  await wd.type('#pf-endpoint', emulator.url);
  await wd.type('#pf-access', ACCESS_KEY);
  await wd.type('#pf-secret', SECRET_KEY);
  await wd.clickCss('#pf-save');
});

after(async () => {
  if (wd) await wd.delete();
  echo?.server.close();
  await procs.stopAll();
  if (root && !process.env.PORTHOLE_GUI_KEEP) fs.rmSync(root, { recursive: true, force: true });
});

function connect(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

function roundTrip(socket, text) {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d) => {
      got += d;
      if (got.length >= text.length) {
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(text);
  });
}

function closedWithin(socket, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the connection is still open ${ms} ms after waking`)), ms);
    socket.once('close', () => { clearTimeout(timer); resolve(); });
    socket.resume();
  });
}

test('frozen for 65 s while its server restarts, the app wakes to its true state within 5 s', async () => {
  await wd.waitVisible('#sessions li.session[data-name="sleepy"]', 30000);
  const opened = await wd.invoke('open_app', { sessionId: '00000000-0000-4000-8000-0000000000c1', app: 'echo', launch: false });
  const port = Number(opened.tunnel.local_addr.split(':').pop());
  const held = await connect(port);
  assert.equal(await roundTrip(held, 'before'), 'before');
  await wd.waitFor('the tunnel row to show the open connection', async () =>
    (await wd.execute('return document.querySelector(arguments[0])?.dataset.state;', [row])) === 'active');

  const pid = appPid(dirs);
  process.kill(pid, 'SIGSTOP');
  try {
    // The server goes away and comes back on the same address while the app sleeps.
    emulator.child.kill('SIGTERM');
    await new Promise((r) => emulator.child.once('exit', r));
    await new Promise((r) => setTimeout(r, 65000));
    emulator = await startEmulator(procs, path.join(root, 'emulator2'), config, listen);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  const woke = Date.now();
  await closedWithin(held, 5000);
  const fresh = await connect(port);
  assert.equal(await roundTrip(fresh, 'after'), 'after');
  fresh.destroy();
  await wd.waitFor('the row to show no connection left open', async () => {
    const r = await wd.execute(
      'const e = document.querySelector(arguments[0]); return e && [e.dataset.state, e.querySelector(".t-conns").textContent];',
      [row],
    );
    return r && r[0] === 'listening' && r[1].startsWith('0 conns');
  }, 5000 - (Date.now() - woke), 100);
  assert.ok(Date.now() - woke < 5000, `${Date.now() - woke} ms after waking`);
  await saveShot(wd, '14-after-sleep.png');
});
