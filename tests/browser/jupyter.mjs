// Checks that JupyterLab works through each URL the way a person uses it in one browser:
//   node tests/browser/jupyter.mjs URL [URL2 ...]
// One headless Chromium, ONE browser context (one profile: cookies are shared across the
// URLs as in a user's browser). The steps are interleaved across the URLs so that servers
// which could disturb each other (cookies such as _xsrf ignore ports) would: open every
// URL, then create a Python 3 notebook in each, run `print(6*7)` in each and wait for 42,
// save each under its own name (and check the server's file has the output), then reload
// each page and check the reopened notebook still shows 42. Requests answered 403 and
// console messages that mention xsrf are recorded, and fail the check.
// stdout: one JSON line {"ok":true,"results":[{url,notebook,output,afterReload,...}],"cookies":[...]}; on
// failure {"ok":false,"error":...} and exit 1, with the one-line reason on stderr and
// screenshots in $PORTHOLE_SHOT_DIR when set. Bounded by $PORTHOLE_BROWSER_TIMEOUT (150 s).
import { launch, log, elapsedMs, screenshots, deadline, oneLine } from './common.mjs';

const urls = process.argv.slice(2);
if (urls.length === 0) {
  console.error('usage: node tests/browser/jupyter.mjs URL [URL2 ...]');
  process.exit(2);
}
const TIMEOUT_S = Number(process.env.PORTHOLE_BROWSER_TIMEOUT || 150);
const STEP_MS = 60_000;
const CODE = 'print(6*7)';
const EXPECTED = '42';
const runId = Date.now().toString(36);

let browser;
let step = 'launch';
let current = null; // the session whose step is running
const sessions = urls.map((url, i) => ({
  url, index: i, page: null, baseUrl: null,
  panelId: null, notebook: null, output: null, afterReload: null, reopened: false, problems: [],
}));

function problemsOf(s) {
  return s.problems.length ? `; ${s.problems.length} xsrf/403 problem(s): ${s.problems.slice(0, 3).join(' | ')}` : '';
}

let failing = false;
async function fail(reason) {
  if (failing) return new Promise(() => {}); // the first failure reports and exits
  failing = true;
  console.error(`jupyter.mjs: FAIL: ${reason}`);
  console.log(JSON.stringify({ ok: false, error: reason, step, url: current?.url ?? null, results: summary() }));
  await screenshots('jupyter', sessions.map((s) => s.page).filter(Boolean));
  await browser?.close().catch(() => {});
  process.exit(1);
}

function summary() {
  return sessions.map(({ url, notebook, output, afterReload, reopened, problems }) =>
    ({ url, notebook, output, afterReload, reopened, xsrfProblems: problems }));
}

deadline(TIMEOUT_S, () => fail(`timed out after ${TIMEOUT_S}s in step "${step}" on ${current?.url ?? '-'}${current ? problemsOf(current) : ''}`));

// A main-area tab names its panel by data-id: the notebook is found through its tab, since
// a restored workspace may hold several notebooks.
const mainTabs = (page) => page.locator('#jp-main-dock-panel .lm-TabBar-tab');
const currentTab = (page) => page.locator('#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current');
const exactly = (text) => new RegExp(`^\\s*${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`);
const panel = (s) => s.page.locator(`[id="${s.panelId}"]`);

async function waitForOutput(s, what) {
  // The cell is found by its code: JupyterLab's windowed notebook can keep invisible
  // placeholder cells in the DOM, so "the first cell" is no guide either.
  const out = panel(s).locator('.jp-CodeCell').filter({ hasText: CODE }).locator('.jp-OutputArea-output');
  try {
    await out.filter({ hasText: EXPECTED }).first().waitFor({ timeout: STEP_MS });
  } catch (err) {
    const seen = (await out.allTextContents().catch(() => [])).join(' ').trim();
    throw new Error(`${what}: no output "${EXPECTED}" (cell output: ${JSON.stringify(seen)}): ${oneLine(err)}`);
  }
  return (await out.first().textContent()).trim();
}

// JupyterLab's HTML carries its page config (so a page without it fails at once); then
// the shell's main dock appears.
async function waitForShell(s) {
  const config = await s.page.evaluate(() => {
    const el = document.getElementById('jupyter-config-data');
    try { return el ? JSON.parse(el.textContent) : null; } catch { return null; }
  });
  if (!config || config.appName !== 'JupyterLab') {
    throw new Error(`not a JupyterLab page (title ${JSON.stringify(await s.page.title())}, no JupyterLab page config)`);
  }
  s.baseUrl = config.baseUrl;
  await s.page.locator('#jp-main-dock-panel').waitFor({ timeout: STEP_MS });
}

// The saved file on this server holds the output (GET needs no _xsrf). Polled briefly,
// expect.poll style: the UI may show "saved" a moment before a rename lands.
async function checkSavedFile(s) {
  const probe = async ([base, path, expected]) => {
    const r = await fetch(`${base}api/contents/${encodeURIComponent(path)}?content=1`, { cache: 'no-store' });
    if (!r.ok) return `HTTP ${r.status}`;
    const outputs = JSON.stringify((await r.json()).content?.cells?.[0]?.outputs ?? []);
    return outputs.includes(expected) ? true : `outputs ${outputs.slice(0, 160)}`;
  };
  let got;
  for (const until = Date.now() + 15_000; Date.now() < until; await s.page.waitForTimeout(250)) {
    got = await s.page.evaluate(probe, [s.baseUrl, s.notebook, EXPECTED]);
    if (got === true) return;
  }
  throw new Error(`saved file ${s.notebook} on the server does not hold output ${EXPECTED}: ${got}`);
}

const steps = {
  async open(s) {
    const page = (s.page = await context.newPage());
    page.on('response', async (r) => {
      if (r.status() !== 403) return;
      const body = (await r.text().catch(() => '')).replace(/\s+/g, ' ').slice(0, 160);
      s.problems.push(`403 ${r.request().method()} ${new URL(r.url()).pathname} ${body}`.trim());
    });
    page.on('console', (m) => {
      if (/xsrf/i.test(m.text())) s.problems.push(`console ${m.type()}: ${m.text().slice(0, 200)}`);
    });
    const resp = await page.goto(s.url, { waitUntil: 'domcontentloaded', timeout: STEP_MS });
    if (!resp || !resp.ok()) throw new Error(`page load answered HTTP ${resp ? resp.status() : 'nothing'}`);
    await waitForShell(s);
  },

  async create(s) {
    const { page } = s;
    await page.bringToFront();
    // A new launcher tab (a restored workspace may show none), then its Python 3 card.
    await page.locator('[data-command="launcher:create"]').first().click({ timeout: STEP_MS });
    await page.locator('.jp-Launcher:visible .jp-LauncherCard[data-category="Notebook"]').first().click({ timeout: STEP_MS });
    // The launcher tab turns into the notebook's tab.
    await currentTab(page).locator('.lm-TabBar-tabLabel', { hasText: /\.ipynb\s*$/ }).waitFor({ timeout: STEP_MS });
    s.panelId = await currentTab(page).getAttribute('data-id');
    await panel(s).locator('.jp-Cell .cm-content').first().waitFor({ timeout: STEP_MS });
  },

  async run(s) {
    const { page } = s;
    await page.bringToFront();
    // A cell run before the kernel is connected is silently dropped, as a person would
    // see by the kernel status: wait for "Python 3 ... | Idle" on this notebook.
    await page.waitForFunction((id) => {
      const nb = document.getElementById(id);
      const kernel = nb?.querySelector('[data-jp-item-name="kernelName"]')?.textContent ?? '';
      const status = nb?.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status;
      return status === 'idle' && kernel.trim() !== '' && !/no kernel/i.test(kernel);
    }, s.panelId, { timeout: STEP_MS });
    await panel(s).locator('.jp-Cell .cm-content').first().click({ timeout: STEP_MS });
    await page.keyboard.type(CODE);
    await page.keyboard.press('Shift+Enter');
    s.output = await waitForOutput(s, 'run');
  },

  async save(s) {
    const { page } = s;
    await page.bringToFront();
    const name = `porthole-${runId}-${s.index + 1}.ipynb`;
    const tab = mainTabs(page).and(page.locator(`[data-id="${s.panelId}"]`));
    await page.keyboard.press('Control+s');
    // JupyterLab 4 asks for a name when an Untitled file is first saved.
    const dialog = page.locator('.jp-Dialog');
    const clean = tab.and(page.locator(':not(.jp-mod-dirty)'));
    await dialog.or(clean).first().waitFor({ timeout: STEP_MS });
    let label = /\.ipynb\s*$/;
    if (await dialog.isVisible()) {
      await dialog.locator('input').first().fill(name);
      await dialog.locator('button.jp-mod-accept').click();
      await dialog.waitFor({ state: 'detached', timeout: STEP_MS });
      label = exactly(name);
    }
    await clean.locator('.lm-TabBar-tabLabel', { hasText: label }).waitFor({ timeout: STEP_MS });
    s.notebook = (await tab.locator('.lm-TabBar-tabLabel').textContent()).trim();
    await checkSavedFile(s);
  },

  async reload(s) {
    const { page } = s;
    await page.bringToFront();
    await page.reload({ waitUntil: 'domcontentloaded', timeout: STEP_MS });
    await waitForShell(s);
    // The workspace normally restores the open notebook; if it does not, open it by URL.
    const tab = mainTabs(page).filter({ has: page.locator('.lm-TabBar-tabLabel', { hasText: exactly(s.notebook) }) });
    try {
      await tab.first().waitFor({ timeout: 20_000 });
    } catch {
      s.reopened = true;
      log(`${s.url}: notebook not restored after reload, opening lab/tree/${s.notebook}`);
      await page.goto(new URL(`lab/tree/${encodeURIComponent(s.notebook)}`, new URL(s.baseUrl, s.url)).href,
        { waitUntil: 'domcontentloaded', timeout: STEP_MS });
      await waitForShell(s);
      await tab.first().waitFor({ timeout: STEP_MS });
    }
    await tab.first().click();
    s.panelId = await tab.first().getAttribute('data-id');
    s.afterReload = await waitForOutput(s, 'after reload');
  },
};

let context;
try {
  browser = await launch();
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  for (step of Object.keys(steps)) {
    for (const s of sessions) {
      current = s;
      try {
        await steps[step](s);
      } catch (err) {
        await fail(`${s.url}: step "${step}" failed: ${oneLine(err)}${problemsOf(s)}`);
      }
      log(`${s.url}: ${step} ok${s.problems.length ? ` (${s.problems.length} xsrf/403 problems so far)` : ''}`);
    }
  }
  current = null;
  for (const s of sessions) {
    if (s.problems.length) await fail(`${s.url}: all steps passed but${problemsOf(s).slice(1)}`);
  }
  // Cookie names per host (no values): shows which cookies the URLs ended up sharing.
  const cookies = (await context.cookies()).map((c) => `${c.name}@${c.domain}${c.path}`).sort();
  console.log(JSON.stringify({ ok: true, elapsedMs: elapsedMs(), results: summary(), cookies }));
  await browser.close();
  process.exit(0);
} catch (err) {
  await fail(`step "${step}": ${oneLine(err)}`);
}
