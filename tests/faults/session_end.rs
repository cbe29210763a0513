//! The session terminated under open connections.

use super::*;

/// The session is terminated while connections are open: they close promptly, and the
/// next connection is refused with a reason that names the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_terminated_closes_connections() {
    let _serial = SERIAL.lock().await;
    bounded(120, async {
        let manager = echo_manager().await;
        let tunnel = open_tunnel(&manager.url(), "echo", options(PING)).await;
        let addr = tunnel.local_addr();
        let mut status = tunnel.status();
        let mut idle = idle_connection(addr).await;
        let mut busy = BusyConnection::start(addr).await;
        busy.wait_moved(MIB).await;

        manager.set_session_status("TERMINATED").await;
        let ended = Instant::now();
        closed_within(&mut idle, Duration::from_secs(2), "idle connection").await;
        let at = busy
            .ended_within(Duration::from_secs(2), "busy connection")
            .await;
        let s = wait_status(&mut status, 5, "closed", |s| s.active_connections == 0).await;
        eprintln!(
            "session terminated: connections closed after {:?}; status {s:?}",
            at - ended
        );

        // Either the tunnel has already stopped itself (the closes prompted a session
        // check), or the next connection meets the ended session and is closed.
        if let Ok(mut socket) = TcpStream::connect(addr).await {
            closed_within(
                &mut socket,
                Duration::from_secs(5),
                "connection after the end",
            )
            .await;
        }
        let s = wait_status(&mut status, 5, "the reason is reported", |s| {
            s.state != TunnelState::Active
                && s.last_error.as_deref().is_some_and(|e| e.contains(SESSION))
        })
        .await;
        eprintln!("session terminated, next connection: {:?}", s.last_error);
        tunnel.stop().await;
    })
    .await;
}

/// The session is terminated while the tunnel is open: the tunnel itself ends (failed or
/// stopped) with a reason saying the session ended, without waiting for a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_terminated_ends_the_tunnel_with_the_reason() {
    let _serial = SERIAL.lock().await;
    bounded(120, async {
        let manager = echo_manager().await;
        let tunnel = open_tunnel(&manager.url(), "echo", options(PING)).await;
        let mut status = tunnel.status();
        let mut idle = idle_connection(tunnel.local_addr()).await;
        manager.set_session_status("TERMINATED").await;
        closed_within(&mut idle, Duration::from_secs(2), "idle connection").await;
        let s = wait_status(&mut status, 15, "the tunnel ends with the reason", |s| {
            matches!(s.state, TunnelState::Failed | TunnelState::Stopped)
                && s.last_error.as_deref().is_some_and(|e| {
                    let e = e.to_lowercase();
                    ["terminated", "ended", "no longer", "gone"]
                        .iter()
                        .any(|w| e.contains(w))
                })
        })
        .await;
        eprintln!("session terminated: {s:?}");
        tunnel.stop().await;
    })
    .await;
}
