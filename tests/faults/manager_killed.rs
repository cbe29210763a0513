//! The manager killed mid-transfer: every broken connection ends and is reported; a restart on
//! the same port brings new connections back.

use super::*;

/// SIGKILL the manager during transfers: the local connections close within 1 s and the
/// tunnel keeps listening; a connection while the manager is down is closed and the tunnel
/// says it is degraded and why; the manager restarted on the same port serves the next
/// connection with nothing done to the tunnel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_killed_mid_transfer_then_restarted() {
    let _serial = SERIAL.lock().await;
    bounded(120, async {
        let mut manager = echo_manager().await;
        let tunnel = open_tunnel(&manager.url(), "echo", options(PING)).await;
        let addr = tunnel.local_addr();
        let mut status = tunnel.status();
        let mut busy = busy_connections(addr, 4).await;

        let killed = Instant::now();
        manager.kill().await;
        all_end_within_a_second(&mut busy, killed, "manager killed").await;
        let s = wait_status(&mut status, 5, "all closed", |s| s.active_connections == 0).await;
        eprintln!("manager killed: {s:?}");
        assert!(s.state.is_running(), "{s:?}");

        // Still listening: a connection is accepted and closed, with the reason reported.
        let mut socket = TcpStream::connect(addr)
            .await
            .expect("the tunnel still listens");
        closed_within(&mut socket, Duration::from_secs(5), "connection while down").await;
        let s = wait_status(&mut status, 5, "the refused connection is reported", |s| {
            s.state == TunnelState::Degraded
                && s.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("cannot reach"))
        })
        .await;
        eprintln!("manager down: {:?}", s.last_error);

        manager.restart().await;
        recovers(
            addr,
            &mut status,
            b"after the restart",
            "the next connection works",
        )
        .await;
        tunnel.stop().await;
    })
    .await;
}

/// SIGKILL the manager during transfers: the tunnel is degraded with the reason at once,
/// before any new connection. Not every broken connection can count as failed: the
/// kernel ends a killed process's sockets with FIN when nothing was unread, and a link
/// ending without a close frame is exactly how the 23.09 manager reports an app's EOF;
/// the ends prompt a check of the server, which finds it unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_killed_every_broken_connection_is_reported() {
    let _serial = SERIAL.lock().await;
    bounded(120, async {
        let mut manager = echo_manager().await;
        let tunnel = open_tunnel(&manager.url(), "echo", options(PING)).await;
        let mut status = tunnel.status();
        let mut busy = busy_connections(tunnel.local_addr(), 4).await;
        let killed = Instant::now();
        manager.kill().await;
        all_end_within_a_second(&mut busy, killed, "manager killed").await;
        let s = wait_status(&mut status, 5, "the broken link reported", |s| {
            s.active_connections == 0 && s.state == TunnelState::Degraded
        })
        .await;
        assert!(s.failed_connections >= 1, "{s:?}");
        let reason = s.last_error.as_deref().unwrap_or_default();
        assert!(
            reason.contains("broke") || reason.contains("cannot reach"),
            "{s:?}"
        );
        tunnel.stop().await;
    })
    .await;
}
