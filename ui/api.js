// Every call into the engine and every event it pushes, in one place: the rest of the
// window imports these functions and never touches `window.__TAURI__` itself. Replies and
// errors are the engine's (`crates/app`): errors are `{kind, message, retryable,
// unchecked, action}`, and labels, icons and addresses come ready to show.

const tauri = window.__TAURI__;
const invoke = (cmd, args) => tauri.core.invoke(cmd, args);

// ----- account and profiles -----
export const startup = () => invoke('startup');
export const listProfiles = () => invoke('list_profiles');
export const testProfile = (input) => invoke('test_profile', { input });
export const addProfile = (input, force) => invoke('add_profile', { input, force });
export const updateProfile = (original, input, force) => invoke('update_profile', { original, input, force });
export const removeProfile = (name) => invoke('remove_profile', { name });
export const signIn = (name) => invoke('sign_in', { name });
export const startDemo = () => invoke('start_demo');
export const account = () => invoke('account');

// ----- sessions and one click -----
export const listSessions = () => invoke('list_sessions');
export const openApp = (sessionId, app, launch) => invoke('open_app', { sessionId, app, launch });

// ----- tunnels -----
export const stopTunnel = (id) => invoke('stop_tunnel', { id });
export const stopAll = () => invoke('stop_all');
export const openTunnel = (id) => invoke('open_tunnel', { id });

// ----- settings, ssh config, logs, misc -----
export const getSettings = () => invoke('get_settings');
export const saveSettings = (settings) => invoke('save_settings', { settings });
export const testTerminal = (template) => invoke('test_terminal', { template });
export const writeSshConfig = () => invoke('write_ssh_config');
export const removeSshConfig = () => invoke('remove_ssh_config');
export const recentLogs = (max) => invoke('recent_logs', { max });
export const copyText = (text) => invoke('copy_text', { text });
export const appVersion = () => invoke('app_version');

/** Hides the window (tunnels keep running in the tray). */
export const closeWindow = () => tauri.window.getCurrentWindow().close();

/**
 * Subscribes to what the engine pushes: `account` (the account state), `tunnel` (one
 * tunnel changed or was removed), `tunnels` (the whole list, after missed events), `log`
 * (one new log line) and `log-lagged` (lines were missed).
 */
export async function onEngineEvents(handlers) {
  for (const [name, handler] of Object.entries(handlers)) {
    await tauri.event.listen(name, (e) => handler(e.payload));
  }
}
