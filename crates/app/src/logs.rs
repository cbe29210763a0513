//! Logging: `tracing` to a daily-rotated file in the platform log dir (seven files kept)
//! and to an in-memory ring of recent lines that the Logs view shows, each new line also
//! pushed to whoever listens ([`LogRing::subscribe`]: the window's `log` events), so the
//! view never polls. Nothing secret is logged anywhere in the app: credentials have
//! redacting `Debug` impls and no code logs headers, keys, cookies or passwords.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// How many recent lines the Logs view can show.
const RING_LINES: usize = 1000;

/// How many new lines a slow listener may fall behind before it misses some (and, being
/// told so, reads [`LogRing::recent`] again).
const PUSHED_LINES: usize = 256;

/// The most recent log lines, shared by the writer and the Logs view.
#[derive(Clone)]
pub struct LogRing {
    lines: Arc<Mutex<VecDeque<String>>>,
    pushed: broadcast::Sender<String>,
}

impl Default for LogRing {
    fn default() -> Self {
        LogRing {
            lines: Arc::default(),
            pushed: broadcast::channel(PUSHED_LINES).0,
        }
    }
}

impl LogRing {
    fn push(&self, text: &str) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if lines.len() == RING_LINES {
                lines.pop_front();
            }
            lines.push_back(line.to_owned());
            // Nobody listening is fine: the ring keeps the line.
            let _ = self.pushed.send(line.to_owned());
        }
    }

    /// Every line from now on, as it is written.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.pushed.subscribe()
    }

    /// The last `max` lines, oldest first.
    pub fn recent(&self, max: usize) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let skip = lines.len().saturating_sub(max);
        lines.iter().skip(skip).cloned().collect()
    }
}

/// A writer that appends one formatted event to the ring.
pub struct RingWriter(LogRing);

impl io::Write for RingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.push(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogRing {
    type Writer = RingWriter;
    fn make_writer(&'a self) -> Self::Writer {
        RingWriter(self.clone())
    }
}

/// Where the log files go: `$XDG_STATE_HOME`-style data dir on Linux
/// (`~/.local/share/porthole/logs`), the per-user app data dir elsewhere.
pub fn log_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "porthole").map(|d| d.data_local_dir().join("logs"))
}

/// What logging set up.
pub struct Logging {
    /// The recent lines for the Logs view.
    pub ring: LogRing,
    /// The log directory, when the file could be opened.
    pub dir: Option<PathBuf>,
}

/// Installs the global subscriber: `PORTHOLE_LOG` (or `RUST_LOG`) filters, default
/// `info` for Porthole and `warn` for the GUI toolkit.
pub fn init() -> Logging {
    let ring = LogRing::default();
    let filter = std::env::var("PORTHOLE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| {
            EnvFilter::new("info,tao=warn,wry=warn,tauri=warn,reqwest=warn,hyper=warn")
        });
    let dir = log_dir();
    let file = dir.as_ref().and_then(|dir| {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!(
                "porthole: cannot create the log directory {}: {e}",
                dir.display()
            );
            return None;
        }
        tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("porthole")
            .filename_suffix("log")
            .max_log_files(7)
            .build(dir)
            .map_err(|e| {
                eprintln!(
                    "porthole: cannot open the log file in {}: {e}",
                    dir.display()
                )
            })
            .ok()
    });
    let opened = file.is_some();
    let file_layer = file.map(|appender| {
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_target(true)
            .with_writer(appender)
    });
    let ring_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_target(false)
        .with_writer(ring.clone());
    let stderr_layer = tracing_subscriber::fmt::layer().with_writer(io::stderr);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(file_layer)
        .with(ring_layer)
        .with(stderr_layer)
        .try_init();
    Logging {
        ring,
        dir: if opened { dir } else { None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_ring_keeps_the_last_lines() {
        let ring = LogRing::default();
        let mut w = ring.make_writer();
        for i in 0..(RING_LINES + 5) {
            // The fmt layer writes one whole formatted event per call.
            w.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        let recent = ring.recent(3);
        assert_eq!(recent, ["line 1002", "line 1003", "line 1004"]);
        assert_eq!(ring.recent(usize::MAX).len(), RING_LINES);
    }

    #[test]
    fn new_lines_are_pushed_to_listeners() {
        let ring = LogRing::default();
        let mut listener = ring.subscribe();
        ring.make_writer().write_all(b"one\ntwo\n").unwrap();
        assert_eq!(listener.try_recv().unwrap(), "one");
        assert_eq!(listener.try_recv().unwrap(), "two");
        assert!(listener.try_recv().is_err());
    }
}
