//! Noticing that this computer slept, or that this process was stopped (a laptop suspend
//! is the whole client stopping): time went by that the process did not run for. After
//! it, links may be dead without a word (a proxy or a NAT dropped them meanwhile), and
//! everything that runs on timers must check again at once instead of trusting them.

use std::time::Duration;

/// A clock that counts time asleep too (Linux `CLOCK_BOOTTIME`; elsewhere the wall clock),
/// read at each of a task's regular wakeups: a gap much longer than the period means the
/// task did not run in between.
#[derive(Debug)]
pub struct WakeWatch {
    last: Duration,
}

impl Default for WakeWatch {
    fn default() -> Self {
        WakeWatch::new()
    }
}

impl WakeWatch {
    /// Starts watching from now.
    pub fn new() -> WakeWatch {
        WakeWatch { last: now() }
    }

    /// Whether more than `gap` passed since the last call (or since [`WakeWatch::new`]):
    /// the machine slept or the process was stopped.
    pub fn slept_longer_than(&mut self, gap: Duration) -> bool {
        let now = now();
        let passed = now.saturating_sub(self.last);
        self.last = now;
        passed > gap
    }
}

#[cfg(target_os = "linux")]
fn now() -> Duration {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_BOOTTIME)
        .map(Duration::from)
        .unwrap_or_default()
}

#[cfg(not(target_os = "linux"))]
fn now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_wait_is_no_sleep_and_the_clock_moves() {
        let mut watch = WakeWatch::new();
        assert!(!watch.slept_longer_than(Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(20));
        assert!(watch.slept_longer_than(Duration::from_millis(10)));
    }
}
