//! Launching what a click opens: the browser (honouring `$BROWSER`, else the opener
//! plugin, i.e. the desktop's default) and a terminal (through the shell plugin): the
//! Tauri side of [`porthole_app::Launcher`].

use tauri::{AppHandle, Runtime};
use tauri_plugin_opener::OpenerExt;
use tauri_plugin_shell::process::CommandEvent;
use tauri_plugin_shell::ShellExt;

use porthole_app::launcher::{browser_command, Launcher};

/// The app's launcher.
pub struct TauriLauncher<R: Runtime> {
    app: AppHandle<R>,
}

impl<R: Runtime> TauriLauncher<R> {
    /// A launcher for this app.
    pub fn new(app: AppHandle<R>) -> Self {
        TauriLauncher { app }
    }
}

impl<R: Runtime> Launcher for TauriLauncher<R> {
    fn open_url(&self, url: &str) -> Result<(), String> {
        let browser = std::env::var("BROWSER").ok();
        if let Some((program, args)) = browser_command(browser.as_deref(), url) {
            tracing::info!(browser = %program, "opening the browser ($BROWSER)");
            return self.spawn(&program, &args);
        }
        tracing::info!("opening the browser");
        self.app
            .opener()
            .open_url(url, None::<&str>)
            .map_err(|e| e.to_string())
    }

    fn spawn(&self, program: &str, args: &[String]) -> Result<(), String> {
        let (mut events, _child) = self
            .app
            .shell()
            .command(program)
            .args(args)
            .spawn()
            .map_err(|e| e.to_string())?;
        let name = program.to_owned();
        // Drain its output (the channel is bounded) and log how it ended.
        tauri::async_runtime::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    CommandEvent::Stderr(line) => {
                        let line = String::from_utf8_lossy(&line);
                        tracing::debug!(program = %name, "{}", line.trim_end());
                    }
                    CommandEvent::Terminated(status) => {
                        tracing::info!(program = %name, code = ?status.code, signal = ?status.signal, "exited");
                    }
                    CommandEvent::Error(e) => tracing::warn!(program = %name, error = %e, "failed"),
                    _ => {}
                }
            }
        });
        Ok(())
    }
}
