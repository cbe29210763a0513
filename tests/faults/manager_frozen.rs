//! The manager frozen (SIGSTOP): dead links are found by pings, idle or busy.

use super::*;

/// SIGSTOP the manager for longer than the ping timeout: pings find the idle connections
/// dead within two intervals and the tunnel reports it; after SIGCONT a connection asked
/// for during the freeze goes through and new ones work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_frozen_dead_links_found_by_pings() {
    let _serial = SERIAL.lock().await;
    bounded(120, async {
        let manager = echo_manager().await;
        let tunnel = open_tunnel(&manager.url(), "echo", options(PING)).await;
        let addr = tunnel.local_addr();
        let mut status = tunnel.status();
        let mut idle = Vec::new();
        for _ in 0..3 {
            idle.push(idle_connection(addr).await);
        }

        manager.signal(libc::SIGSTOP);
        let frozen = Instant::now();
        // A ping is due within one interval and found unanswered at the next tick.
        let limit = 2 * PING + Duration::from_millis(1500);
        for (i, socket) in idle.iter_mut().enumerate() {
            closed_within(socket, limit, &format!("idle connection {i}")).await;
        }
        let detected = frozen.elapsed();
        let s = wait_status(&mut status, 5, "dead links reported", |s| {
            s.active_connections == 0
                && s.state == TunnelState::Degraded
                && s.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("no answer"))
        })
        .await;
        eprintln!("manager frozen: dead links found after {detected:?}; {s:?}");
        assert_eq!(s.failed_connections, 3, "{s:?}");

        // Asked for during the freeze: the handshake waits in the manager's backlog.
        let pending = tokio::spawn(echo_once(addr, b"asked during the freeze"));
        wait_status(&mut status, 5, "the pending connection is accepted", |s| {
            s.active_connections == 1
        })
        .await;
        manager.signal(libc::SIGCONT);
        pending
            .await
            .expect("task")
            .expect("the connection asked for during the freeze works");
        recovers(
            addr,
            &mut status,
            b"after the freeze",
            "new connections work",
        )
        .await;
        tunnel.stop().await;
    })
    .await;
}

/// As above, but the connection is uploading when the manager freezes: the engine's write
/// to the WebSocket blocks once the socket buffers are full, and a dead link must still be
/// found by the ping timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_frozen_busy_connection_found_dead() {
    let _serial = SERIAL.lock().await;
    bounded(120, async {
        let manager = echo_manager().await;
        let tunnel = open_tunnel(&manager.url(), "echo", options(PING)).await;
        let mut status = tunnel.status();
        let mut busy = BusyConnection::start(tunnel.local_addr()).await;
        busy.wait_moved(4 * MIB).await;
        manager.signal(libc::SIGSTOP);
        let frozen = Instant::now();
        let at = busy
            .ended_within(2 * PING + Duration::from_millis(1500), "busy connection")
            .await;
        eprintln!("frozen, busy: found dead after {:?}", at - frozen);
        let s = wait_status(&mut status, 5, "dead link reported", |s| {
            s.active_connections == 0
                && s.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("no answer"))
        })
        .await;
        assert_eq!(s.state, TunnelState::Degraded);
        manager.signal(libc::SIGCONT);
        tunnel.stop().await;
    })
    .await;
}
