// End-to-end: the demo works from a clean profile dir, by clicking "Try the demo" and by
// starting the app with PORTHOLE_DEMO=auto (what scripts/run.sh does when no profile exists).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';

import {
  Procs, appEnv, browserScript, checkEnvironment, getTunnel, saveShot, startApp, tempRoot,
  waitForFile,
} from './harness.mjs';

const notebook = '#sessions li.session[data-name="demo-notebook"]';
const roots = [];
const procs = new Procs();
const sessions = [];

after(async () => {
  for (const wd of sessions) await wd.delete();
  await procs.stopAll();
  if (!process.env.PORTHOLE_GUI_KEEP) for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

async function launch(name, extra) {
  checkEnvironment();
  const root = tempRoot(name);
  roots.push(root);
  const { env, dirs } = appEnv(root, extra);
  const browser = browserScript(root);
  env.BROWSER = browser.file;
  const wd = await startApp(procs, env);
  sessions.push(wd);
  return { wd, dirs, browser };
}

async function openNotebook(wd, browser) {
  await wd.clickCss(`${notebook} .app-group[data-app="jupyter"] .app-button`);
  const url = (await waitForFile(browser.log, 60000)).trim().split('\n').pop();
  const page = (await getTunnel(url)).text;
  assert.match(page, /Porthole demo app/);
  return url;
}

test('"Try the demo" from a clean profile dir shows demo sessions that open', async () => {
  const { wd, dirs, browser } = await launch('demo-click', {});
  try {
    await wd.waitVisible('#view-signin');
    await wd.clickCss('#demo-button');
    await wd.waitVisible(notebook, 30000);
    await wd.waitText('#profile-name', (t) => t === 'Demo');
    const why = await wd.waitText('#sessions li.session[data-name="demo-queued"] .s-unavailable', (t) => t.length > 0);
    assert.match(why, /Waiting for resources/);
    await openNotebook(wd, browser);
    await wd.waitVisible('#tunnels li.tunnel[data-app="jupyter"]');
    await saveShot(wd, '08-demo.png');
    assert.equal(fs.existsSync(path.join(dirs.config, 'porthole', 'profiles.toml')), false, 'the demo is not saved as a profile');
  } finally {
    // One instance at a time: the app is single-instance per session bus.
    await wd.delete();
  }
});

test('PORTHOLE_DEMO=auto with no profile starts straight into the demo', async () => {
  const { wd, browser } = await launch('demo-auto', { PORTHOLE_DEMO: 'auto' });
  try {
    await wd.waitVisible(notebook, 30000);
    await openNotebook(wd, browser);
    await wd.clickCss('.tab[data-view="logs"]');
    const logs = await wd.waitText('#log-lines', (t) => t.includes('demo started'));
    assert.doesNotMatch(logs, /porthole-demo-secret/, 'no secret in the log');
    await saveShot(wd, '09-logs.png');
  } finally {
    await wd.delete();
  }
});
