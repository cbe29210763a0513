// Checks that an installed Porthole (PORTHOLE_GUI_APP, e.g. /usr/bin/porthole-desktop from
// the .deb) starts in a real window and shows the demo sessions. Run by
// `scripts/test-gui.sh --deb` under Xvfb and dbus-run-session.

import fs from 'node:fs';

import { APP, Procs, appEnv, saveShot, startApp, tempRoot } from './harness.mjs';

const procs = new Procs();
const root = tempRoot('installed');
let wd;
try {
  const { env } = appEnv(root, { PORTHOLE_DEMO: '1' });
  wd = await startApp(procs, env);
  await wd.waitVisible('#sessions li.session[data-name="demo-notebook"]', 60000);
  await saveShot(wd, '10-installed-deb.png');
  console.log(`installed-check: ${APP} started and shows the demo sessions`);
} catch (e) {
  console.error(`installed-check: ${APP}: ${e.message}`);
  process.exitCode = 1;
} finally {
  if (wd) await wd.delete();
  await procs.stopAll();
  fs.rmSync(root, { recursive: true, force: true });
}
