// Checks that TensorBoard works through URL the way a person uses it:
//   node tests/browser/tensorboard.mjs URL TAG
// Opens the scalars dashboard (URL#scalars unless URL has a hash) in headless Chromium and
// waits until a scalar card titled TAG is shown and the dashboard has fetched that tag's
// points from the server. stdout: one JSON line {"ok":true,"url","tag","title","points",...};
// on failure {"ok":false,"error"} and exit 1, the one-line reason on stderr and a screenshot
// in $PORTHOLE_SHOT_DIR when set. Bounded by $PORTHOLE_BROWSER_TIMEOUT (60 s).
import { launch, log, elapsedMs, screenshots, deadline, oneLine } from './common.mjs';

const [url, tag] = process.argv.slice(2);
if (!url || !tag) {
  console.error('usage: node tests/browser/tensorboard.mjs URL TAG');
  process.exit(2);
}
const TIMEOUT_S = Number(process.env.PORTHOLE_BROWSER_TIMEOUT || 60);
let browser, page, step = 'launch', failing = false;

async function fail(reason) {
  if (failing) return new Promise(() => {});
  failing = true;
  console.error(`tensorboard.mjs: FAIL: ${reason}`);
  console.log(JSON.stringify({ ok: false, url, tag, step, error: reason }));
  await screenshots('tensorboard', page ? [page] : []);
  await browser?.close().catch(() => {});
  process.exit(1);
}
deadline(TIMEOUT_S, () => fail(`${url}: timed out after ${TIMEOUT_S}s in step "${step}"`));

// The dashboard's data requests: GET .../scalars?tag=&run= (one run) or POST
// .../scalars_multirun (multipart form: tag, runs); both answer [wall_time, step, value] rows.
function requestedTag(req) {
  if (req.method() !== 'POST') return new URL(req.url()).searchParams.get('tag');
  const body = req.postData() ?? '';
  const multipart = body.match(/name="tag"\r?\n\r?\n([^\r\n]*)/);
  return multipart ? multipart[1] : new URLSearchParams(body).get('tag');
}
const isTagData = (r) => /\/data\/plugin\/scalars\/scalars/.test(r.url()) && r.ok() && requestedTag(r.request()) === tag;
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

try {
  browser = await launch();
  page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  const target = new URL(url);
  if (!target.hash) target.hash = 'scalars';

  step = 'open';
  const data = page.waitForResponse(isTagData, { timeout: 0 });
  data.catch(() => {}); // rejected only when the browser closes on a failure
  const resp = await page.goto(target.href, { waitUntil: 'domcontentloaded' });
  if (!resp || !resp.ok()) throw new Error(`page load answered HTTP ${resp ? resp.status() : 'nothing'}`);
  const title = await page.title();
  log(`${url}: loaded "${title}"`);

  step = 'scalar card';
  // tf-card-heading lives in (open) shadow roots, which playwright's CSS engine pierces.
  const headings = page.locator('tf-card-heading .heading-label.name');
  try {
    await headings.filter({ hasText: new RegExp(`^\\s*${escape(tag)}\\s*$`) }).first()
      .waitFor({ timeout: Math.max(5, TIMEOUT_S - 10) * 1000 });
  } catch (err) {
    const shown = (await headings.allTextContents()).map((t) => t.trim());
    throw new Error(`no scalar card "${tag}" (cards shown: ${JSON.stringify(shown)}): ${oneLine(err)}`);
  }
  log(`${url}: card "${tag}" shown`);

  step = 'scalar data';
  const rows = await (await data).json();
  const points = Array.isArray(rows) ? rows.length : Object.values(rows).reduce((n, r) => n + (Array.isArray(r) ? r.length : 0), 0);
  if (points === 0) throw new Error(`the server sent no points for tag ${tag}`);
  log(`${url}: ${points} points for "${tag}"`);

  console.log(JSON.stringify({ ok: true, url, tag, title, points, elapsedMs: elapsedMs() }));
  await browser.close();
  process.exit(0);
} catch (err) {
  await fail(`${url}: step "${step}" failed: ${oneLine(err)}`);
}
