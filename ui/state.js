// The window's one state, and the topics the views listen on when part of it changes.
// The account (signed out, signed in, or failed with a reason) is the engine's own value,
// replaced whole by its `account` events; the rest is what the window keeps between them.

export const state = {
  /** The engine's AccountView: `{state: 'signed-out'}`, `{state: 'signed-in',
   *  connection, error}` or `{state: 'failed', profile, error}`. */
  account: { state: 'signed-out' },
  /** Saved profiles (no secrets). */
  profiles: [],
  /** The settings, and the refresh interval's bounds in seconds. */
  settings: { refresh_secs: 10, theme: 'system', remember_ports: true, start_at_login: false },
  refreshBounds: [2, 3600],
  /** The last listing (SessionView), when it was made, and whether it is out of date. */
  sessions: [],
  refreshedAt: 0,
  stale: false,
  /** Running tunnels by id (TunnelView), ids already removed, live rates by id. */
  tunnels: new Map(),
  removed: new Set(),
  rates: new Map(),
  /** Clicks under way or failed, by session and app: `{state: 'starting'|'failed', message}`. */
  pending: new Map(),
  /** The view shown: signin, main, logs or settings. */
  view: 'main',
};

const listeners = new Map();

/** Calls `fn` whenever `topic` is emitted: account, sessions, tunnels, settings, view. */
export function on(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, []);
  listeners.get(topic).push(fn);
}

export function emit(topic, payload) {
  for (const fn of listeners.get(topic) || []) fn(payload);
}

/** The connection signed in with, or null. */
export function connection() {
  return state.account.state === 'signed-in' ? state.account.connection : null;
}

/** What identifies a connection: a new one means a new sessions list. */
export function connectionKey(c) {
  return c ? `${c.demo ? 'demo' : c.profile}\u0000${c.endpoint}` : '';
}

/** The profile the account is about (in use or failing); null when signed out. */
export function accountProfile() {
  if (state.account.state === 'signed-in') return state.account.connection.profile;
  if (state.account.state === 'failed') return state.account.profile;
  return null;
}

/** The saved profile the account is about, unless it is the demo. */
export function editableProfile() {
  const c = connection();
  if (c && c.demo) return null;
  const name = accountProfile();
  return state.profiles.find((p) => p.name === name) || null;
}

/** Whether the window has an account to show sessions for (signed in, or failing). */
export function hasAccount() {
  return state.account.state !== 'signed-out';
}

export function pendingKey(sessionId, app) {
  return `${sessionId}\u0000${app}`;
}
