//! Porthole's desktop app: a thin Tauri layer over the engine. Commands call
//! [`engine::Engine`] in one line each, the tunnel manager's broadcast becomes `tunnel`
//! events for the window and updates of the tray, and the window hides instead of
//! closing so tunnels keep running until Quit.

pub mod autostart;
pub mod engine;
pub mod error;
pub mod launch;
pub mod logging;
pub mod tray;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use porthole_core::catalog::TrayMenu;
use porthole_core::profiles::KeyringSecrets;
use porthole_core::settings::Settings;
use porthole_core::tunnel::{TunnelEvent, TunnelInfo};
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, RunEvent, State, WindowEvent};
use tauri_plugin_clipboard_manager::ClipboardExt;
use tokio::sync::broadcast::error::RecvError;

use engine::{
    Connected, DemoMode, Engine, OpenReply, Paths, ProfileInput, ProfileSummary, SessionsReply,
    SettingsReply, SshConfigReply, Startup, TestReport,
};
use error::UiError;
use logging::LogRing;

type Eng<'a> = State<'a, Arc<Engine>>;
type Reply<T> = Result<T, UiError>;

/// Set once Quit has started, so the exit it ends with is not prevented.
static QUITTING: AtomicBool = AtomicBool::new(false);

// ----- commands: one call into the engine each -----

#[tauri::command]
async fn startup(app: AppHandle, engine: Eng<'_>) -> Reply<Startup> {
    let reply = engine.startup().await;
    tray::refresh(&app, &engine);
    reply
}

#[tauri::command]
fn list_profiles(engine: Eng<'_>) -> Reply<Vec<ProfileSummary>> {
    engine.list_profiles()
}

#[tauri::command]
async fn test_profile(engine: Eng<'_>, input: ProfileInput) -> Reply<TestReport> {
    engine.test_profile(input).await
}

#[tauri::command]
async fn add_profile(engine: Eng<'_>, input: ProfileInput, force: bool) -> Reply<Connected> {
    engine.add_profile(input, force).await
}

#[tauri::command]
async fn update_profile(
    engine: Eng<'_>,
    original: String,
    input: ProfileInput,
    force: bool,
) -> Reply<Connected> {
    engine.update_profile(&original, input, force).await
}

#[tauri::command]
fn remove_profile(engine: Eng<'_>, name: String) -> Reply<()> {
    engine.remove_profile(&name)
}

#[tauri::command]
async fn sign_in(app: AppHandle, engine: Eng<'_>, name: String) -> Reply<Connected> {
    let reply = engine.sign_in(&name).await;
    tray::refresh(&app, &engine);
    reply
}

#[tauri::command]
async fn start_demo(engine: Eng<'_>) -> Reply<Connected> {
    engine.start_demo().await
}

#[tauri::command]
fn sign_out(engine: Eng<'_>) {
    engine.sign_out()
}

#[tauri::command]
async fn list_sessions(app: AppHandle, engine: Eng<'_>) -> Reply<SessionsReply> {
    let reply = engine.list_sessions().await;
    tray::refresh(&app, &engine);
    reply
}

#[tauri::command]
async fn open_app(
    engine: Eng<'_>,
    session_id: String,
    app: String,
    launch: bool,
) -> Reply<OpenReply> {
    engine.open_app(&session_id, &app, launch).await
}

#[tauri::command]
fn open_tunnel(engine: Eng<'_>, id: u64) -> Reply<()> {
    engine.open_tunnel(id)
}

#[tauri::command]
async fn write_ssh_config(engine: Eng<'_>) -> Reply<SshConfigReply> {
    engine.write_ssh_config().await
}

#[tauri::command]
fn remove_ssh_config(engine: Eng<'_>) -> Reply<bool> {
    engine.remove_ssh_config()
}

#[tauri::command]
fn list_tunnels(engine: Eng<'_>) -> Vec<TunnelInfo> {
    engine.list_tunnels()
}

#[tauri::command]
async fn stop_tunnel(engine: Eng<'_>, id: u64) -> Reply<bool> {
    Ok(engine.stop_tunnel(id).await)
}

#[tauri::command]
async fn stop_all(engine: Eng<'_>) -> Reply<()> {
    engine.stop_all().await;
    Ok(())
}

#[tauri::command]
fn copy_text(app: AppHandle, text: String) -> Reply<()> {
    app.clipboard()
        .write_text(text)
        .map_err(|e| UiError::new("clipboard", format!("cannot copy: {e}")))
}

#[tauri::command]
fn tray_menu(engine: Eng<'_>) -> TrayMenu {
    engine.tray_menu()
}

#[tauri::command]
fn get_settings(engine: Eng<'_>) -> Reply<SettingsReply> {
    engine.settings()
}

#[tauri::command]
fn save_settings(engine: Eng<'_>, settings: Settings) -> Reply<SettingsReply> {
    let before = engine
        .settings()
        .map(|s| s.settings.start_at_login)
        .unwrap_or(false);
    if settings.start_at_login != before {
        autostart::apply(settings.start_at_login)?;
    }
    engine.save_settings(settings)
}

#[tauri::command]
fn test_terminal(engine: Eng<'_>, template: Option<String>) -> Reply<()> {
    engine.test_terminal(template)
}

/// What the Logs view shows.
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
pub fn show_main_window(app: &AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

/// Copies `text` to the clipboard, logging a failure.
pub fn copy_to_clipboard(app: &AppHandle, text: &str) {
    if let Err(e) = app.clipboard().write_text(text.to_owned()) {
        tracing::warn!(error = %e, "cannot copy to the clipboard");
    }
}

/// Stops every tunnel cleanly (closing connections, removing keys, stopping the demo),
/// then exits.
pub fn quit(app: AppHandle) {
    if QUITTING.swap(true, Ordering::SeqCst) {
        return;
    }
    tracing::info!("quitting");
    tauri::async_runtime::spawn(async move {
        if let Some(engine) = app.try_state::<Arc<Engine>>().map(|e| e.inner().clone()) {
            engine.shutdown().await;
        }
        app.exit(0);
    });
}

/// Turns the tunnel manager's broadcast into `tunnel` events for the window and tray
/// updates; removes a tunnel's SSH key when the tunnel is gone.
fn forward_tunnel_events(app: AppHandle, engine: Arc<Engine>) {
    let mut events = engine.tunnels().subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let TunnelEvent::Removed { id } = &event {
                        engine.forget_key(*id);
                    }
                    let _ = app.emit("tunnel", &event);
                }
                Err(RecvError::Lagged(_)) => {
                    // Missed some updates: send the whole list instead.
                    let _ = app.emit("tunnels", engine.list_tunnels());
                }
                Err(RecvError::Closed) => break,
            }
            tray::refresh(&app, &engine);
        }
    });
}

/// SIGTERM/SIGINT quit like the tray's Quit: tunnels are closed and keys removed.
fn quit_on_signals(app: AppHandle) {
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
        quit(app);
    });
}

/// Runs the app; returns when it exits.
pub fn run() -> ExitCode {
    let logging = logging::init();
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
    let log_info = LogInfo {
        ring: logging.ring.clone(),
        dir: logging.dir.as_ref().map(|d| d.display().to_string()),
    };
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            show_main_window(app);
        }))
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_shell::init())
        .plugin(tauri_plugin_clipboard_manager::init())
        .manage(log_info)
        .manage(tray::TrayCache::default())
        .setup(move |app| {
            let handle = app.handle().clone();
            let launcher = Arc::new(launch::TauriLauncher::new(handle.clone()));
            let engine = Arc::new(Engine::new(
                paths,
                Arc::new(KeyringSecrets::new()),
                launcher,
                demo_mode,
            ));
            app.manage(engine.clone());
            if let Err(e) = tray::create(&handle, &engine) {
                // No tray host (or no appindicator): the window still works.
                tracing::warn!(error = %e, "no tray icon");
            }
            forward_tunnel_events(handle.clone(), engine);
            quit_on_signals(handle);
            Ok(())
        })
        .on_window_event(|window, event| {
            if let WindowEvent::CloseRequested { api, .. } = event {
                if !QUITTING.load(Ordering::SeqCst) {
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
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the app");
            eprintln!("porthole: cannot start the app: {e}");
            return ExitCode::FAILURE;
        }
    };
    app.run(|app, event| {
        if let RunEvent::ExitRequested { api, code, .. } = event {
            if code.is_none() && !QUITTING.load(Ordering::SeqCst) {
                // The last window went away: keep running in the tray.
                api.prevent_exit();
            } else if !QUITTING.load(Ordering::SeqCst) {
                api.prevent_exit();
                quit(app.clone());
            }
        }
    });
    ExitCode::SUCCESS
}
