// A dependency-free W3C WebDriver client (Node 20 fetch) for tauri-driver: just what the
// GUI tests use. Waiting is a bounded poll, since WebDriver has no events.

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

export class WebDriverError extends Error {}

export class Session {
  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  static async create(base, capabilities, timeoutMs = 60000) {
    const deadline = Date.now() + timeoutMs;
    let last;
    // tauri-driver may still be starting: retry the connection, not WebDriver errors.
    while (Date.now() < deadline) {
      try {
        const value = await request(base, 'POST', '/session', { capabilities });
        return new Session(base, value.sessionId);
      } catch (e) {
        last = e;
        if (e instanceof WebDriverError) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    throw new Error(`cannot create a WebDriver session at ${base}: ${last}`);
  }

  cmd(method, path, body) {
    return request(this.base, method, `/session/${this.id}${path}`, body);
  }

  async delete() {
    try {
      await this.cmd('DELETE', '');
    } catch {
      // The app may already be gone.
    }
  }

  async find(css) {
    const value = await this.cmd('POST', '/element', { using: 'css selector', value: css });
    return value[ELEMENT];
  }

  async findAll(css) {
    const value = await this.cmd('POST', '/elements', { using: 'css selector', value: css });
    return value.map((v) => v[ELEMENT]);
  }

  click(id) {
    return this.cmd('POST', `/element/${id}/click`, {});
  }

  clear(id) {
    return this.cmd('POST', `/element/${id}/clear`, {});
  }

  sendKeys(id, text) {
    return this.cmd('POST', `/element/${id}/value`, { text });
  }

  text(id) {
    return this.cmd('GET', `/element/${id}/text`);
  }

  // Presses `key` (a character or a WebDriver key code) with the Control key held.
  async ctrlKey(key) {
    const ctrl = '\uE009';
    await this.cmd('POST', '/actions', {
      actions: [{
        type: 'key',
        id: 'keyboard',
        actions: [
          { type: 'keyDown', value: ctrl },
          { type: 'keyDown', value: key },
          { type: 'keyUp', value: key },
          { type: 'keyUp', value: ctrl },
        ],
      }],
    });
    await this.cmd('DELETE', '/actions');
  }

  execute(script, args = []) {
    return this.cmd('POST', '/execute/sync', { script, args });
  }

  executeAsync(script, args = []) {
    return this.cmd('POST', '/execute/async', { script, args });
  }

  async screenshot() {
    const b64 = await this.cmd('GET', '/screenshot');
    return Buffer.from(b64, 'base64');
  }

  // Calls a Tauri command from inside the page and returns its result (or throws its
  // {kind, message} error as text).
  async invoke(command, args = {}) {
    const r = await this.executeAsync(
      `const done = arguments[arguments.length - 1];
       window.__TAURI__.core.invoke(arguments[0], arguments[1])
         .then((v) => done({ ok: v }), (e) => done({ err: e }));`,
      [command, args],
    );
    if (r && 'err' in r) throw new Error(`${command}: ${JSON.stringify(r.err)}`);
    return r.ok;
  }

  // Polls `probe` (an async function) every `intervalMs` until it returns a truthy value.
  async waitFor(what, probe, timeoutMs = 20000, intervalMs = 100) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
      try {
        const v = await probe();
        if (v) return v;
      } catch (e) {
        last = e;
      }
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  // Waits for a visible element matching `css` and returns its id.
  async waitVisible(css, timeoutMs = 20000) {
    return this.waitFor(`${css} to be visible`, async () => {
      const visible = await this.execute(
        `const e = document.querySelector(arguments[0]);
         return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0;`,
        [css],
      );
      return visible ? this.find(css) : null;
    }, timeoutMs);
  }

  // Waits until the text of `css` satisfies `predicate` and returns the text.
  async waitText(css, predicate, timeoutMs = 20000) {
    let last = null;
    try {
      return await this.waitFor(`text of ${css}`, async () => {
        last = await this.execute(
          'const e = document.querySelector(arguments[0]); return e ? e.textContent : null;',
          [css],
        );
        return last !== null && predicate(last) ? last : null;
      }, timeoutMs);
    } catch (e) {
      throw new Error(`${e.message}; last text: ${JSON.stringify(last)}`);
    }
  }

  async type(css, text) {
    const id = await this.waitVisible(css);
    await this.clear(id);
    await this.sendKeys(id, text);
    return id;
  }

  async clickCss(css) {
    const id = await this.waitVisible(css);
    await this.execute("document.querySelector(arguments[0]).scrollIntoView({ block: 'center' });", [css]);
    await this.click(id);
    return id;
  }
}

async function request(base, method, path, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(90000),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new WebDriverError(`${method} ${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  }
  if (!res.ok || (json.value && json.value.error)) {
    const v = json.value || {};
    throw new WebDriverError(`${method} ${path}: ${v.error || res.status}: ${v.message || text.slice(0, 300)}`);
  }
  return json.value;
}
