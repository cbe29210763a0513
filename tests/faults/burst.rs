//! Connection bursts: thousands of short connections leave no descriptor, task or memory
//! behind.

use super::*;

/// Opens `total` echoed connections through `addr`, `at_once` at a time, each one round
/// trip then closed; fails with the first errors.
async fn burst(addr: SocketAddr, total: usize, at_once: usize) -> Duration {
    let started = Instant::now();
    let slots = Arc::new(tokio::sync::Semaphore::new(at_once));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        tasks.spawn(async move {
            let message = format!("connection {i:04}");
            let result = echo_once(addr, message.as_bytes()).await;
            drop(permit);
            result.map_err(|e| format!("connection {i}: {e}"))
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done.expect("task") {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    started.elapsed()
}

/// Waits (at most 10 s) until this process's fds and tasks are at most `fds` and `tasks`.
async fn settle(fds: usize, tasks: usize) -> Result<(), String> {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while open_fds() > fds || alive_tasks() > tasks {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    waited.map_err(|_| {
        format!(
            "fds {} (at most {fds} expected), tasks {} (at most {tasks} expected)",
            open_fds(),
            alive_tasks()
        )
    })
}

/// 2,000 connections opened and closed, 200 at a time: the tunnel's active count returns
/// to 0, and this process's open file descriptors and tasks return to their baseline and
/// its memory stays bounded; a second burst of 2,000 does not grow it further (no
/// per-connection leak).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_2000_connections_leaves_nothing_behind() {
    let _serial = SERIAL.lock().await;
    bounded(300, async {
        let manager = echo_manager().await;
        // Each client closes right after its echo, and the echo app never closes: the
        // relay keeps a half-closed connection for `half_close_quiet` in case the app
        // still sends. Short here, so a burst holds about AT_ONCE connections as meant.
        let mut opts = options(Duration::from_secs(30));
        opts.relay.half_close_quiet = Duration::from_millis(100);
        let tunnel = open_tunnel(&manager.url(), "echo", opts).await;
        let addr = tunnel.local_addr();
        let mut status = tunnel.status();
        // One connection first, so lazily made things (buffers, pools) are in the baseline.
        echo_once(addr, b"warm").await.expect("warm connection");
        wait_status(&mut status, 10, "warm connection closed", |s| {
            s.active_connections == 0
        })
        .await;
        let (fds_before, tasks_before, rss_before) = (open_fds(), alive_tasks(), rss());
        const TOTAL: usize = 2000;
        const AT_ONCE: usize = 200;
        const FD_SLACK: usize = 4;
        const TASK_SLACK: usize = 4;

        let mut rss_after = Vec::new();
        for round in 1..=2u64 {
            let elapsed = burst(addr, TOTAL, AT_ONCE).await;
            let s = wait_status(&mut status, 20, "every connection closed", |s| {
                s.active_connections == 0
            })
            .await;
            assert_eq!(s.total_connections, round * TOTAL as u64 + 1, "{s:?}");
            assert_eq!(s.failed_connections, 0, "{s:?}");
            assert_eq!(s.state, TunnelState::Listening, "{s:?}");
            let settled = settle(fds_before + FD_SLACK, tasks_before + TASK_SLACK).await;
            rss_after.push(rss());
            eprintln!(
                "burst {round}: {TOTAL} connections in {elapsed:?}; fds {fds_before} -> {}, \
                 tasks {tasks_before} -> {}, RSS {} -> {} MiB",
                open_fds(),
                alive_tasks(),
                rss_before / MIB,
                rss() / MIB
            );
            if let Err(e) = settled {
                panic!("after burst {round}: {e}");
            }
        }
        assert!(
            rss_after[0] < rss_before + 48 * MIB,
            "RSS grew from {} to {} MiB in the first burst",
            rss_before / MIB,
            rss_after[0] / MIB
        );
        assert!(
            rss_after[1] < rss_after[0] + 16 * MIB,
            "RSS grew from {} to {} MiB in the second burst",
            rss_after[0] / MIB,
            rss_after[1] / MIB
        );
        tunnel.stop().await;
    })
    .await;
}
