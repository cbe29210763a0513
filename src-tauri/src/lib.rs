//! Porthole's desktop app: Tauri glue over [`porthole_app::App`], which holds all of its
//! logic. Each command is one call into the app; the app's changes (tunnels, the account,
//! log lines) become window events and tray updates; the window hides instead of closing,
//! so tunnels keep running until Quit.

#![forbid(unsafe_code)]

mod launch;
mod tray;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use porthole_app::account::AccountView;
use porthole_app::logs::{self, LogRing};
use porthole_app::presenter::{TrayMenu, TunnelView};
use porthole_app::settings::Settings;
use porthole_app::{
    App, Connected, DemoMode, OpenReply, Paths, ProfileInput, ProfileSummary, SessionsReply,
    SettingsReply, SshConfigReply, Startup, TestReport, UiError,
};
use porthole_core::profiles::KeyringSecrets;
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, RunEvent, State, WindowEvent};
use tauri_plugin_clipboard_manager::ClipboardExt;
use tokio::sync::broadcast::error::RecvError;

type Porthole<'a> = State<'a, Arc<App>>;
type Reply<T> = Result<T, UiError>;

/// Set once Quit has started, so the exit it ends with is not prevented (managed state).
#[derive(Default)]
struct Quitting(AtomicBool);

/// Whether Quit has started.
fn quitting(handle: &AppHandle) -> bool {
    handle
        .try_state::<Quitting>()
        .is_some_and(|q| q.0.load(Ordering::SeqCst))
}

// ----- commands: one call into the app each -----

#[tauri::command]
async fn startup(app: Porthole<'_>) -> Reply<Startup> {
    app.startup().await
}

#[tauri::command]
fn list_profiles(app: Porthole<'_>) -> Reply<Vec<ProfileSummary>> {
    app.list_profiles()
}

#[tauri::command]
async fn test_profile(app: Porthole<'_>, input: ProfileInput) -> Reply<TestReport> {
    app.test_profile(input).await
}

#[tauri::command]
async fn add_profile(app: Porthole<'_>, input: ProfileInput, force: bool) -> Reply<Connected> {
    app.add_profile(input, force).await
}

#[tauri::command]
async fn update_profile(
    app: Porthole<'_>,
    original: String,
    input: ProfileInput,
    force: bool,
) -> Reply<Connected> {
    app.update_profile(&original, input, force).await
}

#[tauri::command]
fn remove_profile(app: Porthole<'_>, name: String) -> Reply<()> {
    app.remove_profile(&name)
}

#[tauri::command]
async fn sign_in(app: Porthole<'_>, name: String) -> Reply<Connected> {
    app.sign_in(&name).await
}

#[tauri::command]
async fn start_demo(app: Porthole<'_>) -> Reply<Connected> {
    app.start_demo().await
}

#[tauri::command]
fn sign_out(app: Porthole<'_>) {
    app.sign_out()
}

#[tauri::command]
fn account(app: Porthole<'_>) -> AccountView {
    app.account()
}

#[tauri::command]
async fn list_sessions(app: Porthole<'_>) -> Reply<SessionsReply> {
    app.list_sessions().await
}

#[tauri::command]
async fn open_app(
    porthole: Porthole<'_>,
    session_id: String,
    app: String,
    launch: bool,
) -> Reply<OpenReply> {
    porthole.open_app(&session_id, &app, launch).await
}

#[tauri::command]
fn open_tunnel(app: Porthole<'_>, id: u64) -> Reply<()> {
    app.open_tunnel(id)
}

#[tauri::command]
async fn write_ssh_config(app: Porthole<'_>) -> Reply<SshConfigReply> {
    app.write_ssh_config().await
}

#[tauri::command]
fn remove_ssh_config(app: Porthole<'_>) -> Reply<bool> {
    app.remove_ssh_config()
}

#[tauri::command]
fn list_tunnels(app: Porthole<'_>) -> Vec<TunnelView> {
    app.list_tunnels()
}

#[tauri::command]
async fn stop_tunnel(app: Porthole<'_>, id: u64) -> Reply<bool> {
    Ok(app.stop_tunnel(id).await)
}

#[tauri::command]
async fn stop_all(app: Porthole<'_>) -> Reply<()> {
    app.stop_all().await;
    Ok(())
}

#[tauri::command]
fn copy_text(handle: AppHandle, text: String) -> Reply<()> {
    handle
        .clipboard()
        .write_text(text)
        .map_err(|e| UiError::new("clipboard", format!("cannot copy: {e}")))
}

#[tauri::command]
fn tray_menu(app: Porthole<'_>) -> TrayMenu {
    app.tray_menu()
}

#[tauri::command]
fn get_settings(app: Porthole<'_>) -> Reply<SettingsReply> {
    app.settings()
}

#[tauri::command]
fn save_settings(app: Porthole<'_>, settings: Settings) -> Reply<SettingsReply> {
    app.save_settings(settings)
}

#[tauri::command]
fn test_terminal(app: Porthole<'_>, template: Option<String>) -> Reply<()> {
    app.test_terminal(template)
}

/// What the Logs view shows when it opens; new lines arrive as `log` events.
#[derive(Serialize)]
struct LogsReply {
    dir: Option<String>,
    lines: Vec<String>,
}

#[tauri::command]
fn recent_logs(logs: State<'_, LogInfo>, max: Option<usize>) -> LogsReply {
    LogsReply {
        dir: logs.dir.clone(),
        lines: logs.ring.recent(max.unwrap_or(500)),
    }
}

#[tauri::command]
fn app_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The log ring and directory, managed for the Logs view.
struct LogInfo {
    ring: LogRing,
    dir: Option<String>,
}

// ----- window, clipboard, quit -----

/// Shows, restores and focuses the main window.
fn show_main_window(handle: &AppHandle) {
    if let Some(window) = handle.get_webview_window("main") {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

/// Copies `text` to the clipboard, logging a failure.
fn copy_to_clipboard(handle: &AppHandle, text: &str) {
    if let Err(e) = handle.clipboard().write_text(text.to_owned()) {
        tracing::warn!(error = %e, "cannot copy to the clipboard");
    }
}

/// Stops every tunnel cleanly (closing connections, removing keys, stopping the demo),
/// then exits.
fn quit(handle: AppHandle) {
    let started = handle
        .try_state::<Quitting>()
        .is_some_and(|q| q.0.swap(true, Ordering::SeqCst));
    if started {
        return;
    }
    tracing::info!("quitting");
    tauri::async_runtime::spawn(async move {
        if let Some(app) = handle.try_state::<Arc<App>>().map(|e| e.inner().clone()) {
            app.shutdown().await;
        }
        handle.exit(0);
    });
}

// ----- the app's changes, pushed to the window and the tray -----

/// Tunnel changes become `tunnel` events (and tray updates).
fn forward_tunnels(handle: AppHandle, app: Arc<App>) {
    let mut events = app.tunnel_manager().subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    let _ = handle.emit("tunnel", app.on_tunnel_event(&event));
                }
                Err(RecvError::Lagged(_)) => {
                    // Missed some updates: send the whole list instead.
                    let _ = handle.emit("tunnels", app.list_tunnels());
                }
                Err(RecvError::Closed) => break,
            }
            tray::refresh(&handle, &app);
        }
    });
}

/// Account changes become `account` events (and tray updates: a failing account marks
/// the icon red).
fn forward_account(handle: AppHandle, app: Arc<App>) {
    let mut changes = app.account_changes();
    tauri::async_runtime::spawn(async move {
        while changes.changed().await.is_ok() {
            let view = changes.borrow_and_update().clone();
            let _ = handle.emit("account", view);
            tray::refresh(&handle, &app);
        }
    });
}

/// New log lines become `log` events for the Logs view.
fn forward_logs(handle: AppHandle, ring: &LogRing) {
    let mut lines = ring.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            match lines.recv().await {
                Ok(line) => {
                    let _ = handle.emit("log", line);
                }
                // The view reads the ring again when told it missed lines.
                Err(RecvError::Lagged(_)) => {
                    let _ = handle.emit("log-lagged", ());
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
}

/// SIGTERM/SIGINT quit like the tray's Quit: tunnels are closed and keys removed.
fn quit_on_signals(handle: AppHandle) {
    tauri::async_runtime::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
        }
        quit(handle);
    });
}

/// Runs the app; returns when it exits.
pub fn run() -> ExitCode {
    let logging = logs::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let demo_mode = DemoMode::from_env(&args, std::env::var("PORTHOLE_DEMO").ok().as_deref());
    let paths = match Paths::default_locations() {
        Ok(paths) => paths,
        Err(e) => {
            eprintln!("porthole: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(version = env!("CARGO_PKG_VERSION"), ?demo_mode, "starting");
    let ring = logging.ring.clone();
    let log_info = LogInfo {
        ring: logging.ring.clone(),
        dir: logging.dir.as_ref().map(|d| d.display().to_string()),
    };
    let built = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|handle, _args, _cwd| {
            show_main_window(handle);
        }))
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_shell::init())
        .plugin(tauri_plugin_clipboard_manager::init())
        .manage(log_info)
        .manage(Quitting::default())
        .manage(tray::TrayCache::default())
        .setup(move |tauri_app| {
            let handle = tauri_app.handle().clone();
            let launcher = Arc::new(launch::TauriLauncher::new(handle.clone()));
            let app = Arc::new(App::new(
                paths,
                Arc::new(KeyringSecrets::new()),
                launcher,
                demo_mode,
            ));
            tauri_app.manage(app.clone());
            if let Err(e) = tray::create(&handle, &app) {
                // No tray host (or no appindicator): the window still works.
                tracing::warn!(error = %e, "no tray icon");
            }
            forward_tunnels(handle.clone(), app.clone());
            forward_account(handle.clone(), app);
            forward_logs(handle.clone(), &ring);
            quit_on_signals(handle);
            Ok(())
        })
        .on_window_event(|window, event| {
            if let WindowEvent::CloseRequested { api, .. } = event {
                if !quitting(window.app_handle()) {
                    // Tunnels keep running in the tray; Quit is in the tray menu.
                    api.prevent_close();
                    let _ = window.hide();
                }
            }
        })
        .invoke_handler(tauri::generate_handler![
            startup,
            list_profiles,
            test_profile,
            add_profile,
            update_profile,
            remove_profile,
            sign_in,
            start_demo,
            sign_out,
            account,
            list_sessions,
            open_app,
            open_tunnel,
            list_tunnels,
            stop_tunnel,
            stop_all,
            copy_text,
            tray_menu,
            get_settings,
            save_settings,
            test_terminal,
            write_ssh_config,
            remove_ssh_config,
            recent_logs,
            app_version,
        ])
        .build(tauri::generate_context!());
    let built = match built {
        Ok(built) => built,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the app");
            eprintln!("porthole: cannot start the app: {e}");
            return ExitCode::FAILURE;
        }
    };
    built.run(|handle, event| {
        if let RunEvent::ExitRequested { api, code, .. } = event {
            if code.is_none() && !quitting(handle) {
                // The last window went away: keep running in the tray.
                api.prevent_exit();
            } else if !quitting(handle) {
                api.prevent_exit();
                quit(handle.clone());
            }
        }
    });
    ExitCode::SUCCESS
}
