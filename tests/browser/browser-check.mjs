// A $BROWSER-style program for tests of "open in browser": given the URL an app opens,
//   node tests/browser/browser-check.mjs URL      (or tests/browser/browser-check.sh URL)
// checks in headless Chromium that URL is a working JupyterLab: the page loads, its page
// config names JupyterLab, the JupyterLab shell appears, and GET api/kernels answers a JSON
// list from the page (same cookies as the page). Appends one JSON line
// {"url","ok","title","detail",...} to the file named by $PORTHOLE_BROWSER_RESULT (and
// prints it on stdout), then exits: 0 when ok, 1 otherwise. Bounded by
// $PORTHOLE_BROWSER_TIMEOUT (45 s); a failure to launch the browser is reported the same way.
import { appendFileSync } from 'node:fs';
import { launch, log, elapsedMs, screenshots, deadline, oneLine } from './common.mjs';

const url = process.argv[2];
if (!url) {
  console.error('usage: node tests/browser/browser-check.mjs URL');
  process.exit(2);
}
const TIMEOUT_S = Number(process.env.PORTHOLE_BROWSER_TIMEOUT || 45);
let browser, page, title = null, written = false;

async function finish(ok, detail, extra = {}) {
  if (written) return new Promise(() => {});
  written = true;
  const line = JSON.stringify({ url, ok, title, detail, ...extra, elapsedMs: elapsedMs() });
  console.log(line);
  if (process.env.PORTHOLE_BROWSER_RESULT) appendFileSync(process.env.PORTHOLE_BROWSER_RESULT, line + '\n');
  if (!ok) {
    console.error(`browser-check.mjs: FAIL: ${url}: ${detail}`);
    await screenshots('browser-check', page ? [page] : []);
  }
  await browser?.close().catch(() => {});
  process.exit(ok ? 0 : 1);
}
deadline(TIMEOUT_S, () => finish(false, `timed out after ${TIMEOUT_S}s`));

try {
  browser = await launch();
  page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  const stepMs = Math.max(5, TIMEOUT_S - 5) * 1000;
  const resp = await page.goto(url, { waitUntil: 'domcontentloaded', timeout: stepMs });
  title = await page.title();
  if (!resp || !resp.ok()) await finish(false, `page load answered HTTP ${resp ? resp.status() : 'nothing'}`);
  log(`${url}: loaded "${title}" (${page.url()})`);

  // JupyterLab's HTML carries its page config; anything else is not JupyterLab.
  const config = await page.evaluate(() => {
    const el = document.getElementById('jupyter-config-data');
    try { return el ? JSON.parse(el.textContent) : null; } catch { return null; }
  });
  if (!config || config.appName !== 'JupyterLab') {
    await finish(false, config ? `a Jupyter page but not JupyterLab (appName ${config.appName})` : 'not a JupyterLab page (no jupyter-config-data)');
  }
  await page.locator('#jp-main-dock-panel').waitFor({ timeout: stepMs });
  log(`${url}: JupyterLab ${config.appVersion} shell shown`);

  const kernels = await page.evaluate(async (base) => {
    const r = await fetch(`${base}api/kernels`, { cache: 'no-store' });
    return { status: r.status, body: r.ok ? await r.json() : null };
  }, config.baseUrl);
  if (kernels.status !== 200 || !Array.isArray(kernels.body)) {
    await finish(false, `JupyterLab shell shown but GET api/kernels answered ${kernels.status}`);
  }
  await finish(true, `JupyterLab ${config.appVersion}: shell shown, api/kernels lists ${kernels.body.length} kernel(s)`,
    { finalUrl: page.url(), appVersion: config.appVersion });
} catch (err) {
  await finish(false, oneLine(err));
}
