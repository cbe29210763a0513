//! Launching what a click opens: the browser (honouring `$BROWSER`, else the opener
//! plugin, i.e. the desktop's default) and a terminal (through the shell plugin).

use tauri::{AppHandle, Runtime};
use tauri_plugin_opener::OpenerExt;
use tauri_plugin_shell::process::CommandEvent;
use tauri_plugin_shell::ShellExt;

use crate::engine::Launcher;

/// The program and arguments `$BROWSER` asks for to open `url`: the first entry of the
/// colon-separated list, split into words, with `%s` replaced by the URL or the URL
/// appended. `None` when `$BROWSER` is unset or empty.
pub fn browser_command(browser: Option<&str>, url: &str) -> Option<(String, Vec<String>)> {
    let entry = browser?.split(':').map(str::trim).find(|e| !e.is_empty())?;
    let mut words = porthole_core::terminal::split_words(entry).ok()?;
    if words.is_empty() {
        return None;
    }
    let mut placed = false;
    for word in words.iter_mut() {
        if word.contains("%s") {
            *word = word.replace("%s", url);
            placed = true;
        }
    }
    if !placed {
        words.push(url.to_owned());
    }
    let program = words.remove(0);
    Some((program, words))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_variable_is_honoured() {
        let url = "http://127.0.0.1:8890/";
        assert_eq!(browser_command(None, url), None);
        assert_eq!(browser_command(Some(" "), url), None);
        assert_eq!(
            browser_command(Some("/tmp/record-url"), url),
            Some(("/tmp/record-url".to_owned(), vec![url.to_owned()]))
        );
        assert_eq!(
            browser_command(Some("firefox --new-tab %s:chromium"), url),
            Some((
                "firefox".to_owned(),
                vec!["--new-tab".to_owned(), url.to_owned()]
            ))
        );
    }
}
