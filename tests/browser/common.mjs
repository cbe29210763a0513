// Shared helpers for the browser checks: launch the system Chromium headless (never a
// downloaded browser), bound the whole run in time, and report failures uniformly.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const CHROMIUM = process.env.PORTHOLE_CHROMIUM || '/usr/bin/chromium';

export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-gpu'],
  });
}

const t0 = Date.now();
export function log(...args) {
  console.error(`[${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...args);
}
export const elapsedMs = () => Date.now() - t0;

// Saves a screenshot of each page into $PORTHOLE_SHOT_DIR (when set); never throws.
export async function screenshots(prefix, pages) {
  const dir = process.env.PORTHOLE_SHOT_DIR;
  if (!dir) return [];
  const saved = [];
  try { mkdirSync(dir, { recursive: true }); } catch { return saved; }
  for (const [i, page] of pages.entries()) {
    const path = join(dir, `${prefix}-${i + 1}.png`);
    try {
      await page.screenshot({ path, timeout: 5000 });
      saved.push(path);
    } catch { /* page gone or hung: nothing to show */ }
  }
  if (saved.length) log('screenshots:', saved.join(' '));
  return saved;
}

// Kills the process after `seconds` whatever it is waiting on (the browser goes with it:
// playwright launches Chromium as a child that dies when its pipe closes).
export function deadline(seconds, onExpire) {
  const timer = setTimeout(async () => {
    try { await Promise.race([onExpire(), new Promise((r) => setTimeout(r, 5000))]); } finally {
      process.exit(1);
    }
  }, seconds * 1000);
  timer.unref();
  return timer;
}

// A one-line reason out of a playwright error (their messages carry multi-line call logs).
export function oneLine(err) {
  return String(err && err.message ? err.message : err).split('\n')[0].trim();
}
