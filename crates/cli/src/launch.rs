//! Opening an app for the user: its URL and the browser.

use std::io;
use std::process::{Command, Stdio};

/// Opens `url` with `$BROWSER` (first entry; `%s` is replaced by the URL), or the
/// desktop's opener. Does not wait for the browser.
pub fn open_browser(url: &str) -> io::Result<()> {
    let mut command = match std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty())
    {
        Some(browser) => {
            let first = browser
                .split(':')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned();
            let mut parts = first
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>();
            let has_placeholder = parts.iter().any(|p| p.contains("%s"));
            for part in &mut parts {
                *part = part.replace("%s", url);
            }
            if !has_placeholder {
                parts.push(url.to_owned());
            }
            let mut command = Command::new(&parts[0]);
            command.args(&parts[1..]);
            command
        }
        None => {
            let opener = if cfg!(target_os = "macos") {
                "open"
            } else {
                "xdg-open"
            };
            let mut command = Command::new(opener);
            command.arg(url);
            command
        }
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(|mut child| {
            // Reap the opener when it exits so no zombie lingers while we run.
            std::thread::spawn(move || child.wait());
        })
}
