//! The network path cut, reset, refusing, and restored (through the fault proxy).

use super::*;

/// The path to the manager is cut (blackholed, nothing closed): pings find the idle
/// connections dead within about two intervals and the tunnel reports it. Restored: a new
/// connection works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_cut_found_by_pings_then_restored() {
    let _serial = SERIAL.lock().await;
    bounded(120, async {
        let manager = echo_manager().await;
        let proxy = FaultProxy::start(manager.addr()).await;
        let tunnel = open_tunnel(&proxy.url(), "echo", options(PING)).await;
        let addr = tunnel.local_addr();
        let mut status = tunnel.status();
        let mut idle = Vec::new();
        for _ in 0..3 {
            idle.push(idle_connection(addr).await);
        }

        proxy.blackhole();
        let cut = Instant::now();
        let limit = 2 * PING + Duration::from_millis(1500);
        for (i, socket) in idle.iter_mut().enumerate() {
            closed_within(socket, limit, &format!("idle connection {i}")).await;
        }
        let detected = cut.elapsed();
        let s = wait_status(&mut status, 5, "dead links reported", |s| {
            s.active_connections == 0
                && s.state == TunnelState::Degraded
                && s.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("no answer"))
        })
        .await;
        eprintln!("path cut: dead links found after {detected:?}; {s:?}");
        assert_eq!(s.failed_connections, 3, "{s:?}");

        proxy.pass();
        recovers(
            addr,
            &mut status,
            b"after the path came back",
            "a new connection works",
        )
        .await;
        tunnel.stop().await;
    })
    .await;
}

/// Uploading through a path that gets cut: the blocked upload must not keep the ping
/// timer from finding the link dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_cut_busy_connection_found_dead() {
    let _serial = SERIAL.lock().await;
    bounded(120, async {
        let manager = echo_manager().await;
        let proxy = FaultProxy::start(manager.addr()).await;
        let tunnel = open_tunnel(&proxy.url(), "echo", options(PING)).await;
        let mut status = tunnel.status();
        let mut busy = BusyConnection::start(tunnel.local_addr()).await;
        busy.wait_moved(4 * MIB).await;
        proxy.blackhole();
        let cut = Instant::now();
        let at = busy
            .ended_within(2 * PING + Duration::from_millis(1500), "busy connection")
            .await;
        eprintln!("path cut, busy: found dead after {:?}", at - cut);
        wait_status(&mut status, 5, "dead link reported", |s| {
            s.active_connections == 0
                && s.state == TunnelState::Degraded
                && s.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("no answer"))
        })
        .await;
        proxy.pass();
        tunnel.stop().await;
    })
    .await;
}

/// Every connection on the path is reset (RST) mid-transfer: the local connections close
/// at once, the tunnel keeps listening, and the next connection works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_reset_closes_connections_promptly() {
    let _serial = SERIAL.lock().await;
    bounded(120, async {
        let manager = echo_manager().await;
        let proxy = FaultProxy::start(manager.addr()).await;
        let tunnel = open_tunnel(&proxy.url(), "echo", options(PING)).await;
        let addr = tunnel.local_addr();
        let mut status = tunnel.status();
        let mut busy = busy_connections(addr, 2).await;
        let mut idle = idle_connection(addr).await;

        let reset = Instant::now();
        proxy.reset_all();
        all_end_within_a_second(&mut busy, reset, "path reset").await;
        closed_within(&mut idle, Duration::from_secs(1), "idle connection").await;
        let s = wait_status(&mut status, 5, "all closed", |s| s.active_connections == 0).await;
        eprintln!("path reset: {s:?}");
        assert!(s.state.is_running(), "{s:?}");

        echo_once(addr, b"after the reset")
            .await
            .expect("a new connection works");
        tunnel.stop().await;
    })
    .await;
}

/// Every connection on the path is reset (RST): each broken connection is counted as
/// failed and the tunnel reports a broken link, not a normal app close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_reset_is_reported_as_a_broken_link() {
    let _serial = SERIAL.lock().await;
    bounded(120, async {
        let manager = echo_manager().await;
        let proxy = FaultProxy::start(manager.addr()).await;
        let tunnel = open_tunnel(&proxy.url(), "echo", options(PING)).await;
        let addr = tunnel.local_addr();
        let mut status = tunnel.status();
        let mut busy = busy_connections(addr, 2).await;
        let mut idle = idle_connection(addr).await;
        let reset = Instant::now();
        proxy.reset_all();
        all_end_within_a_second(&mut busy, reset, "path reset").await;
        closed_within(&mut idle, Duration::from_secs(1), "idle connection").await;
        let s = wait_status(&mut status, 5, "broken links reported", |s| {
            s.active_connections == 0 && s.failed_connections == 3
        })
        .await;
        assert_eq!(s.state, TunnelState::Degraded, "{s:?}");
        assert!(s.last_error.is_some(), "{s:?}");
        tunnel.stop().await;
    })
    .await;
}

/// New connections to the manager are refused: a local connection is closed, and the
/// tunnel is degraded with the reason; once they are accepted again the next one works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_refusing_then_restored() {
    let _serial = SERIAL.lock().await;
    bounded(120, async {
        let manager = echo_manager().await;
        let proxy = FaultProxy::start(manager.addr()).await;
        let tunnel = open_tunnel(&proxy.url(), "echo", options(PING)).await;
        let addr = tunnel.local_addr();
        let mut status = tunnel.status();
        // An open connection is not affected by refusing new ones.
        let mut kept = idle_connection(addr).await;

        proxy.refuse();
        let mut socket = TcpStream::connect(addr).await.expect("the tunnel listens");
        closed_within(&mut socket, Duration::from_secs(5), "refused connection").await;
        let s = wait_status(&mut status, 5, "the refusal is reported", |s| {
            s.failed_connections == 1 && s.last_error.is_some()
        })
        .await;
        eprintln!("path refusing: {:?}", s.last_error);
        assert!(proxy.refused() >= 1);
        kept.write_all(b"still here").await.expect("write");
        let mut back = [0u8; 10];
        tokio::time::timeout(Duration::from_secs(5), kept.read_exact(&mut back))
            .await
            .expect("the open connection still echoes")
            .expect("read");
        drop(kept);
        let s = wait_status(&mut status, 5, "degraded", |s| {
            s.active_connections == 0 && s.state == TunnelState::Degraded
        })
        .await;
        assert!(s.last_error.is_some());

        proxy.pass();
        recovers(
            addr,
            &mut status,
            b"after the refusals",
            "a new connection works",
        )
        .await;
        tunnel.stop().await;
    })
    .await;
}
