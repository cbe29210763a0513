//! Waiting. Inside a test, await the event itself and bound it with [`within`]; only
//! state owned by another process (a port that opens, a file that appears) is polled, with
//! [`wait_until`].

use std::future::Future;
use std::time::Duration;

/// The longest any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// Awaits `fut`, or fails the test after [`WAIT`].
pub async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("nothing happened within {WAIT:?}"))
}

/// Polls `check` (every 20 ms) until it gives `Some`, or fails the test after `timeout`
/// naming `what`. For state that no event of this process announces.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
