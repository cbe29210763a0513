// Benchmark scenario 5 (issue 4): the desktop app on the built-in demo.
//   (a) launch → session list on screen, several launches, median/min/max;
//   (b) RSS (and PSS) of the app and of each WebKit child when idle;
//   (c) CPU seconds used over an idle window, without and with two demo tunnels open.
// Not a test (node --test only picks up *.test.mjs here). Run under Xvfb and D-Bus like the
// GUI tests; `scripts/bench.sh --desktop` does:
//
//   xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- node tests/gui/bench-desktop.mjs
//
// Options: --runs N (timed launches, default 5), --warmup N (launches before them, not in
// the median, default 1: the first launch in a fresh D-Bus session also starts
// gnome-keyring and the AT-SPI registry, which a desktop session already runs; reported as
// "cold"), --idle-secs S (default 10), --debug (use
// target/debug), --app PATH (or PORTHOLE_GUI_APP), --out FILE (default
// target/bench/desktop.json). Launch time is from the app process's start (its /proc start
// time, 10 ms resolution) to the first 20 ms WebDriver poll that sees a session row with a
// layout box; the time from the WebDriver "new session" request and the app's own log
// timestamps ("starting", "demo started") are recorded beside it.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import {
  ROOT, appEnv, browserScript, freePort, getTunnel, portOpen, tempRoot,
} from './harness.mjs';
import { Session } from './webdriver.mjs';

const ROW = '#sessions li.session';
const POLL_MS = 20;

function parseArgs(argv) {
  const o = { runs: 5, warmup: 1, idleSecs: 10, debug: false, app: process.env.PORTHOLE_GUI_APP || null, out: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--runs') o.runs = Math.max(1, Number(val()));
    else if (a === '--warmup') o.warmup = Math.max(0, Number(val()));
    else if (a === '--idle-secs') o.idleSecs = Math.max(1, Number(val()));
    else if (a === '--debug') o.debug = true;
    else if (a === '--app') o.app = val();
    else if (a === '--out') o.out = val();
    else throw new Error(`unknown argument ${a}; usage: bench-desktop.mjs [--runs N] [--warmup N] [--idle-secs S] [--debug] [--app PATH] [--out FILE]`);
  }
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target');
  o.build = o.app ? 'custom' : o.debug ? 'debug' : 'release';
  o.app = path.resolve(o.app || path.join(target, o.debug ? 'debug' : 'release', 'porthole-desktop'));
  o.out = path.resolve(o.out || path.join(ROOT, 'target', 'bench', 'desktop.json'));
  return o;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

// ----- /proc -----

function readStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = s.lastIndexOf(')');
    const comm = s.slice(s.indexOf('(') + 1, close);
    const f = s.slice(close + 2).split(' '); // f[0] is field 3 (state)
    return {
      pid,
      comm,
      ppid: Number(f[1]),
      utime: Number(f[11]),
      stime: Number(f[12]),
      starttime: Number(f[19]),
    };
  } catch {
    return null;
  }
}

function allStats() {
  const out = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (st) out.set(st.pid, st);
  }
  return out;
}

function descendants(rootPid, stats = allStats()) {
  const kids = new Map();
  for (const st of stats.values()) {
    if (!kids.has(st.ppid)) kids.set(st.ppid, []);
    kids.get(st.ppid).push(st.pid);
  }
  const out = [];
  const walk = (pid) => {
    for (const k of kids.get(pid) || []) {
      out.push(stats.get(k));
      walk(k);
    }
  };
  walk(rootPid);
  return out;
}

function exeOf(pid) {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}

function statusKb(pid, field) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function pssKb(pid) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+) kB/m);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

// CPU of a process (all its threads): clock ticks from /proc/PID/stat, nanoseconds summed
// over /proc/PID/task/*/schedstat, and context switches summed over its threads.
function cpuOf(pid) {
  const st = readStat(pid);
  if (!st) return null;
  let ns = 0;
  let switches = 0;
  let threads = 0;
  const perThread = new Map();
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        const tns = Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
        const s = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
        const tsw = Number(s.match(/^voluntary_ctxt_switches:\s+(\d+)/m)[1])
          + Number(s.match(/^nonvoluntary_ctxt_switches:\s+(\d+)/m)[1]);
        ns += tns;
        switches += tsw;
        threads += 1;
        perThread.set(tid, { name: s.match(/^Name:\s+(.*)$/m)[1], ns: tns, switches: tsw });
      } catch {
        // the thread exited
      }
    }
  } catch {
    // the process exited
  }
  return { ticks: st.utime + st.stime, ns, switches, threads, perThread };
}

// Maps /proc start times (clock ticks since boot) onto performance.now(): waits for
// /proc/uptime to tick over so the offset is good to about a millisecond.
function bootOffsetMs() {
  const read = () => Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  const first = read();
  const deadline = performance.now() + 50;
  for (;;) {
    const v = read();
    const now = performance.now();
    if (v !== first || now > deadline) return v * 1000 - now;
  }
}

// The app and its helper processes (WebKitWebProcess, WebKitNetworkProcess, bwrap, ...)
// under tauri-driver → WebKitWebDriver.
function appProcesses(driverPid, appExe) {
  const stats = allStats();
  const under = descendants(driverPid, stats);
  const app = under.find((st) => exeOf(st.pid) === appExe || st.comm.startsWith('porthole-deskto'));
  if (!app) return null;
  return { app, children: descendants(app.pid, stats) };
}

function label(st, isApp) {
  return isApp ? 'porthole-desktop' : st.comm;
}

// ----- the app -----

async function waitExit(pid, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!fs.existsSync(`/proc/${pid}`)) return true;
    const st = readStat(pid);
    if (!st) return true;
    await sleep(50);
  }
  return false;
}

function appLogTimes(dirs) {
  const logDir = path.join(dirs.data, 'porthole', 'logs');
  const out = {};
  let text = '';
  try {
    for (const f of fs.readdirSync(logDir)) text += fs.readFileSync(path.join(logDir, f), 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const m = line.match(/^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.(\d+)Z)\s/);
    if (!m) continue;
    // Keep sub-millisecond digits: Date.parse only takes milliseconds.
    const ms = Date.parse(`${m[1].slice(0, 19)}Z`) + Number(`0.${m[2]}`) * 1000;
    if (out.starting === undefined && /\bstarting\b/.test(line)) out.starting = ms;
    if (out.demo_started === undefined && /demo started/.test(line)) out.demo_started = ms;
  }
  return out;
}

// Wall-clock (epoch ms) → performance.now() of this process.
const wallToPerf = (ms) => ms - performance.timeOrigin;

class Launch {
  constructor(opts, index) {
    this.opts = opts;
    this.index = index;
    this.root = tempRoot(`bench-${index}`);
    const { env, dirs } = appEnv(this.root, { PORTHOLE_DEMO: '1', PORTHOLE_LOG: 'info' });
    env.BROWSER = browserScript(this.root).file;
    this.env = env;
    this.dirs = dirs;
    this.driver = null;
    this.wd = null;
    this.appPid = null;
  }

  async start() {
    const port = await freePort();
    const nativePort = await freePort();
    this.driverLog = '';
    this.driver = spawn('tauri-driver', ['--port', String(port), '--native-port', String(nativePort)], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.driver.on('error', (e) => { this.driverLog += `spawn error: ${e.message}\n`; });
    this.driver.stdout.on('data', (d) => { this.driverLog += d; });
    this.driver.stderr.on('data', (d) => { this.driverLog += d; });
    const deadline = Date.now() + 20000;
    while (!(await portOpen(port))) {
      if (Date.now() > deadline || this.driver.exitCode !== null) {
        throw new Error(`tauri-driver did not listen on ${port}:\n${this.driverLog.slice(-2000)}`);
      }
      await sleep(20);
    }
    const offset = bootOffsetMs();
    const tRequest = performance.now();
    try {
      this.wd = await Session.create(`http://127.0.0.1:${port}`, {
        alwaysMatch: { 'tauri:options': { application: this.opts.app } },
      });
    } catch (e) {
      throw new Error(`${e.message}\ntauri-driver said:\n${this.driverLog.slice(-3000)}`);
    }
    const tSession = performance.now();
    const procs = appProcesses(this.driver.pid, this.opts.app);
    if (!procs) throw new Error('the app process was not found under tauri-driver');
    this.appPid = procs.app.pid;
    const tSpawn = (procs.app.starttime / CLK_TCK) * 1000 - offset;

    // Poll for a session row with a layout box (what waitVisible checks) every POLL_MS.
    let seen = null;
    let polls = 0;
    const timeoutAt = performance.now() + 60000;
    while (!seen) {
      const before = performance.now();
      polls += 1;
      try {
        const r = await this.wd.execute(
          `const e = document.querySelector(arguments[0]);
           const visible = !!e && !e.closest('[hidden]') && e.getClientRects().length > 0;
           return { visible, origin: performance.timeOrigin, at: performance.timeOrigin + performance.now(),
                    rows: document.querySelectorAll(arguments[0]).length };`,
          [ROW],
        );
        if (r && r.visible) seen = { ...r, tSeen: performance.now() };
      } catch {
        // the page may still be loading
      }
      if (performance.now() > timeoutAt) throw new Error(`no ${ROW} within 60 s`);
      const wait = POLL_MS - (performance.now() - before);
      if (!seen && wait > 0) await sleep(wait);
    }
    const logs = appLogTimes(this.dirs);
    const rel = (t) => (t === undefined ? null : Math.round((t - tSpawn) * 10) / 10);
    return {
      run: this.index,
      spawn_to_list_ms: rel(seen.tSeen),
      request_to_list_ms: Math.round((seen.tSeen - tRequest) * 10) / 10,
      request_to_spawn_ms: Math.round((tSpawn - tRequest) * 10) / 10,
      // Milestones, ms after the app process started:
      session_created_ms: rel(tSession),
      log_starting_ms: logs.starting === undefined ? null : rel(wallToPerf(logs.starting)),
      page_time_origin_ms: rel(wallToPerf(seen.origin)),
      log_demo_started_ms: logs.demo_started === undefined ? null : rel(wallToPerf(logs.demo_started)),
      page_saw_row_ms: rel(wallToPerf(seen.at)),
      rows: seen.rows,
      polls,
    };
  }

  processes() {
    const procs = appProcesses(this.driver.pid, this.opts.app);
    if (!procs) throw new Error('the app process is gone');
    return [{ ...procs.app, isApp: true }, ...procs.children];
  }

  snapshotMemory() {
    return this.processes().map((st) => ({
      name: label(st, st.isApp),
      pid: st.pid,
      rss_kib: statusKb(st.pid, 'VmRSS'),
      pss_kib: pssKb(st.pid),
    }));
  }

  // CPU used by the app and its children over `secs` of doing nothing here.
  async idleCpu(secs) {
    const list = this.processes();
    const t0 = performance.now();
    const before = new Map(list.map((st) => [st.pid, cpuOf(st.pid)]));
    await sleep(secs * 1000);
    const elapsed = (performance.now() - t0) / 1000;
    const rows = [];
    for (const st of list) {
      const a = before.get(st.pid);
      const b = cpuOf(st.pid);
      if (!a || !b) continue;
      rows.push({
        name: label(st, st.isApp),
        pid: st.pid,
        cpu_s: (b.ticks - a.ticks) / CLK_TCK,
        cpu_s_schedstat: Math.max(0, Math.round((b.ns - a.ns) / 1e3) / 1e6),
        // Summed over live threads, so a thread exiting in the window can hide some.
        context_switches: Math.max(0, b.switches - a.switches),
        threads: b.threads,
        // The engine's async runtime (tokio worker threads).
        tokio_cpu_ms: Math.round([...b.perThread].filter(([tid, t]) => a.perThread.has(tid) && t.name.startsWith('tokio'))
          .reduce((sum, [tid, t]) => sum + t.ns - a.perThread.get(tid).ns, 0) / 1e4) / 100,
        // The busiest threads in the window: who wakes up.
        top_threads: [...b.perThread].filter(([tid]) => a.perThread.has(tid)).map(([tid, t]) => ({
          tid: Number(tid),
          name: t.name,
          cpu_ms: Math.round((t.ns - a.perThread.get(tid).ns) / 1e4) / 100,
          context_switches: t.switches - a.perThread.get(tid).switches,
        })).filter((t) => t.context_switches > 0).sort((x, y) => y.cpu_ms - x.cpu_ms).slice(0, 6),
      });
    }
    const sum = (k) => rows.reduce((s, r) => s + r[k], 0);
    return {
      window_s: Math.round(elapsed * 100) / 100,
      processes: rows,
      total_cpu_s: Math.round(sum('cpu_s') * 100) / 100,
      total_cpu_s_schedstat: Math.round(sum('cpu_s_schedstat') * 1e4) / 1e4,
      total_context_switches: sum('context_switches'),
    };
  }

  // Opens two demo tunnels (jupyter and ttyd of demo-notebook) without launching a
  // browser, and does one HTTP request through each (connection closed afterwards).
  async openTwoTunnels() {
    const reply = await this.wd.invoke('list_sessions');
    const nb = reply.sessions.find((s) => s.name === 'demo-notebook');
    if (!nb) throw new Error('no demo-notebook session');
    const out = [];
    for (const app of ['jupyter', 'ttyd']) {
      const r = await this.wd.invoke('open_app', { sessionId: nb.id, app, launch: false });
      const url = r.url || `http://${r.address}/`;
      const { status } = await getTunnel(url, 30000);
      out.push({ app, address: r.address, http_status: status });
    }
    return out;
  }

  async stop() {
    // The app and its WebKit children, so the next launch (single instance per D-Bus
    // session) starts clean and nothing still writes into the temp dirs.
    let pids = [];
    try {
      pids = this.processes().map((st) => st.pid);
    } catch {
      // already gone
    }
    if (this.wd) await this.wd.delete();
    for (const pid of pids) {
      if (!(await waitExit(pid, 10000))) {
        try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
        await waitExit(pid, 5000);
      }
    }
    if (this.driver && this.driver.exitCode === null && this.driver.signalCode === null) {
      const gone = new Promise((r) => this.driver.once('exit', r));
      this.driver.kill('SIGTERM');
      const t = setTimeout(() => this.driver.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    }
    if (!process.env.PORTHOLE_GUI_KEEP) {
      try {
        fs.rmSync(this.root, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
      } catch (e) {
        console.error(`bench-desktop: could not remove ${this.root}: ${e.message}`);
      }
    }
  }
}

// ----- report -----

function stats(values) {
  const v = values.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { median, min: v[0], max: v[v.length - 1], n: v.length };
}

const mib = (kib) => (kib === null ? '-' : (kib / 1024).toFixed(1));
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);

function loadavg() {
  return os.loadavg().map((x) => Math.round(x * 100) / 100);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(opts.app)) {
    throw new Error(`${opts.app} is missing: cargo build ${opts.debug ? '' : '--release '}-p porthole-desktop`);
  }
  if (!process.env.DISPLAY) throw new Error('no $DISPLAY: run under xvfb-run (see the header of this file)');
  if (!process.env.DBUS_SESSION_BUS_ADDRESS) throw new Error('no session bus: run under dbus-run-session');

  const result = {
    scenario: 'desktop app (issue 4, scenario 5): demo profile',
    app: opts.app,
    build: opts.build,
    when: new Date().toISOString(),
    machine: { cpus: os.cpus().length, loadavg_start: loadavg() },
    method: {
      launch: `tauri-driver + WebKitWebDriver start the app (PORTHOLE_DEMO=1, clean HOME/XDG dirs); launch time = app process start (/proc start time, ${1000 / CLK_TCK} ms ticks) to the first ${POLL_MS} ms WebDriver poll that sees "${ROW}" with a layout box`,
      memory: 'VmRSS and PSS (smaps_rollup) of the app and each descendant, 3 s after the list is shown',
      cpu: 'utime+stime (/proc/PID/stat) of the app and each descendant over an idle window with no WebDriver traffic; also ns from /proc/PID/task/*/schedstat and context switches',
    },
    launches: [],
  };

  console.error(`bench-desktop: ${opts.warmup} warm-up + ${opts.runs} timed launches of ${opts.app} (${opts.build})`);
  result.warmup_launches = [];
  let last = null;
  const total = opts.warmup + opts.runs;
  for (let i = 1; i <= total; i++) {
    const launch = new Launch(opts, i);
    let keep = false;
    try {
      const r = await launch.start();
      const warm = i <= opts.warmup;
      (warm ? result.warmup_launches : result.launches).push(r);
      console.error(`  launch ${i}${warm ? ' (warm-up)' : ''}: list on screen ${r.spawn_to_list_ms} ms after spawn (${r.request_to_list_ms} ms after the WebDriver request)`);
      if (i === total) {
        keep = true;
        last = launch;
      }
    } finally {
      if (!keep) await launch.stop();
    }
  }

  if (!last) throw new Error('no launch to measure');
  try {
    await sleep(3000);
    result.idle_memory = last.snapshotMemory();
    console.error(`  idle CPU without tunnels over ${opts.idleSecs} s…`);
    result.idle_cpu_no_tunnels = await last.idleCpu(opts.idleSecs);
    result.tunnels = await last.openTwoTunnels();
    await sleep(3000);
    result.tunnels_memory = last.snapshotMemory();
    console.error(`  idle CPU with 2 tunnels open over ${opts.idleSecs} s…`);
    result.idle_cpu_tunnels = await last.idleCpu(opts.idleSecs);
  } finally {
    await last.stop();
  }
  result.machine.loadavg_end = loadavg();

  const keys = ['spawn_to_list_ms', 'request_to_list_ms', 'log_starting_ms', 'page_time_origin_ms', 'log_demo_started_ms', 'page_saw_row_ms'];
  result.launch_summary = Object.fromEntries(keys.map((k) => [k, stats(result.launches.map((l) => l[k]))]));
  const s = result.launch_summary.spawn_to_list_ms;
  result.targets = {
    list_within_1s: s.median <= 1000,
    idle_cpu_tunnels_s: result.idle_cpu_tunnels.total_cpu_s,
  };

  fs.mkdirSync(path.dirname(opts.out), { recursive: true });
  fs.writeFileSync(opts.out, `${JSON.stringify(result, null, 2)}\n`);

  // The table.
  const L = [];
  L.push(`Desktop app (${opts.build} build, demo profile), ${os.cpus().length} CPUs, load ${result.machine.loadavg_start.join(' ')} → ${result.machine.loadavg_end.join(' ')}`);
  L.push('');
  L.push(`${pad('launch → session list (ms)', 34)}${lpad('median', 8)}${lpad('min', 8)}${lpad('max', 8)}   runs`);
  const names = {
    spawn_to_list_ms: 'from app process start',
    request_to_list_ms: 'from WebDriver new-session',
    log_starting_ms: '  app logs "starting"',
    page_time_origin_ms: '  page navigation starts',
    log_demo_started_ms: '  app logs "demo started"',
    page_saw_row_ms: '  page has the row (in page)',
  };
  for (const k of keys) {
    const st = result.launch_summary[k];
    if (!st) continue;
    const runs = result.launches.map((l) => l[k]).join(' ');
    L.push(`${pad(names[k], 34)}${lpad(st.median.toFixed(0), 8)}${lpad(st.min.toFixed(0), 8)}${lpad(st.max.toFixed(0), 8)}   ${runs}`);
  }
  for (const w of result.warmup_launches) L.push(`${pad(`warm-up launch ${w.run} (cold D-Bus session)`, 34)}${lpad(w.spawn_to_list_ms.toFixed(0), 8)}`);
  L.push(`target: list within 1000 ms of launch: ${s.median <= 1000 ? 'met' : 'NOT met'} (median ${s.median.toFixed(0)} ms)`);
  L.push('');
  const byPid = new Map(result.tunnels_memory.map((m) => [m.pid, m]));
  const cpuA = new Map(result.idle_cpu_no_tunnels.processes.map((p) => [p.pid, p]));
  const cpuB = new Map(result.idle_cpu_tunnels.processes.map((p) => [p.pid, p]));
  L.push(`${pad('process', 24)}${lpad('RSS MiB', 9)}${lpad('PSS MiB', 9)}${lpad('+2 tun RSS', 11)}${lpad(`CPU s/${opts.idleSecs}s`, 12)}${lpad('+2 tun', 9)}${lpad('ctx sw', 8)}`);
  const tot = { rss: 0, pss: 0, rss2: 0 };
  const shown = [...result.idle_memory, ...result.tunnels_memory.filter((m) => !result.idle_memory.some((x) => x.pid === m.pid))];
  for (const m of shown) {
    const m2 = byPid.get(m.pid);
    const a = cpuA.get(m.pid);
    const b = cpuB.get(m.pid);
    if (result.idle_memory.includes(m)) {
      tot.rss += m.rss_kib || 0;
      tot.pss += m.pss_kib || 0;
    }
    tot.rss2 += (m2 && m2.rss_kib) || 0;
    L.push(`${pad(`${m.name} [${m.pid}]`, 24)}${lpad(mib(m.rss_kib), 9)}${lpad(mib(m.pss_kib), 9)}${lpad(m2 ? mib(m2.rss_kib) : '-', 11)}`
      + `${lpad(a ? a.cpu_s.toFixed(2) : '-', 12)}${lpad(b ? b.cpu_s.toFixed(2) : '-', 9)}${lpad(b ? b.context_switches : '-', 8)}`);
  }
  L.push(`${pad('total', 24)}${lpad(mib(tot.rss), 9)}${lpad(mib(tot.pss), 9)}${lpad(mib(tot.rss2), 11)}`
    + `${lpad(result.idle_cpu_no_tunnels.total_cpu_s.toFixed(2), 12)}${lpad(result.idle_cpu_tunnels.total_cpu_s.toFixed(2), 9)}${lpad(result.idle_cpu_tunnels.total_context_switches, 8)}`);
  L.push(`idle CPU with 2 tunnels over ${result.idle_cpu_tunnels.window_s} s: ${result.idle_cpu_tunnels.total_cpu_s.toFixed(2)} s (schedstat ${result.idle_cpu_tunnels.total_cpu_s_schedstat.toFixed(4)} s)`);
  const busiest = result.idle_cpu_tunnels.processes
    .flatMap((p) => p.top_threads.map((t) => ({ ...t, proc: p.name })))
    .sort((x, y) => y.cpu_ms - x.cpu_ms).slice(0, 5);
  L.push(`busiest threads then: ${busiest.map((t) => `${t.proc}/${t.name} ${t.cpu_ms} ms (${t.context_switches} sw)`).join(', ')}`);
  const engine = result.idle_cpu_tunnels.processes.find((p) => p.name === 'porthole-desktop');
  L.push(`of which the engine (tokio threads of porthole-desktop): ${engine ? engine.tokio_cpu_ms.toFixed(1) : '-'} ms`);
  L.push(`figures in ${path.relative(process.cwd(), opts.out) || opts.out}`);
  console.log(L.join('\n'));
}

main().catch((e) => {
  console.error(`bench-desktop: ${e.stack || e.message}`);
  process.exitCode = 1;
});
