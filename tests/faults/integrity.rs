//! Integrity: every byte arrives, in order and unchanged, in bulk and across half-closes.

use super::*;

/// 1 GiB each way over 32 concurrent connections of one tunnel: every byte arrives, in
/// order, unchanged (SHA-256 at both ends), and the tunnel's counters agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrity_one_gib_each_way_over_32_connections() {
    let _serial = SERIAL.lock().await;
    bounded(600, async {
        let app = source_sink_app().await;
        let manager = Manager::start(vec![Service::new("data", "tcp", &app.to_string())]).await;
        let tunnel = open_tunnel(&manager.url(), "data", options(Duration::from_secs(30))).await;
        let addr = tunnel.local_addr();
        const CONNECTIONS: u64 = 32;
        const EACH: u64 = 32 * MIB;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..CONNECTIONS {
            tasks.spawn(async move { (i, exchange(addr, EACH, EACH, 0x1000 + i, false).await) });
        }
        while let Some(done) = tasks.join_next().await {
            let (i, result) = done.expect("exchange task");
            let x = result.unwrap_or_else(|e| panic!("connection {i}: {e}"));
            assert_eq!(x.up_sent, x.up_received, "connection {i}: upload differs");
            assert_eq!(
                x.down_sent, x.down_received,
                "connection {i}: download differs"
            );
            assert_eq!(x.down_len, EACH);
        }
        let secs = started.elapsed().as_secs_f64();
        let total = CONNECTIONS * EACH;
        eprintln!(
            "integrity: {} MiB each way in {secs:.1} s ({:.0} MiB/s each way)",
            total / MIB,
            total as f64 / MIB as f64 / secs
        );
        let mut status = tunnel.status();
        let s = wait_status(&mut status, 10, "all closed, counters final", |s| {
            s.active_connections == 0 && s.bytes_down >= total
        })
        .await;
        // Headers and trailers ride along; the warm-up connection moved nothing.
        assert_eq!(s.bytes_up, total + CONNECTIONS * HEADER as u64, "{s:?}");
        assert_eq!(s.bytes_down, total + CONNECTIONS * TRAILER as u64, "{s:?}");
        assert_eq!(s.failed_connections, 0, "{s:?}");
        assert_eq!(s.total_connections, CONNECTIONS, "{s:?}");
        tunnel.stop().await;
    })
    .await;
}

/// The hash-sink app: reads an 8-byte length, then that many bytes, hashing them; reports
/// the hash (or the read error) on `report` and closes.
async fn hash_sink_app(
    report: tokio::sync::mpsc::UnboundedSender<std::io::Result<[u8; 32]>>,
) -> SocketAddr {
    serve(move |mut socket| {
        let report = report.clone();
        tokio::spawn(async move {
            let mut len = [0u8; 8];
            // The tunnel's warm-up connects and closes without a byte: nothing to report.
            if socket.read_exact(&mut len).await.is_err() {
                return;
            }
            let _ = report.send(sink(&mut socket, u64::from_le_bytes(len)).await);
        });
    })
    .await
}

/// The client uploads, then shuts its write side down at once (scp's EOF after the file):
/// every byte sent before the EOF reaches the app, and the local connection then ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_delivers_every_uploaded_byte() {
    let _serial = SERIAL.lock().await;
    bounded(120, async {
        let (report, mut reports) = tokio::sync::mpsc::unbounded_channel();
        let app = hash_sink_app(report).await;
        let manager = Manager::start(vec![Service::new("sink", "tcp", &app.to_string())]).await;
        let tunnel = open_tunnel(&manager.url(), "sink", options(Duration::from_secs(30))).await;
        for (i, len) in [1u64, 64 * 1024, 16 * MIB].into_iter().enumerate() {
            let mut socket = TcpStream::connect(tunnel.local_addr())
                .await
                .expect("connect");
            socket.write_all(&len.to_le_bytes()).await.expect("length");
            let sent = source(&mut socket, len, 0x3000 + i as u64)
                .await
                .expect("upload");
            socket.shutdown().await.expect("half-close");
            let received = tokio::time::timeout(Duration::from_secs(30), reports.recv())
                .await
                .expect("the app read the upload within 30 s")
                .expect("report")
                .unwrap_or_else(|e| panic!("upload {i} ({len} bytes): the app got {e}"));
            assert_eq!(sent, received, "upload {i} ({len} bytes) differs");
            closed_within(
                &mut socket,
                Duration::from_secs(10),
                "half-closed connection",
            )
            .await;
        }
        let mut status = tunnel.status();
        let s = wait_status(&mut status, 10, "all closed", |s| s.active_connections == 0).await;
        assert_eq!(s.failed_connections, 0, "{s:?}");
        tunnel.stop().await;
    })
    .await;
}

/// The client sends everything and shuts its write side down (scp's EOF, an HTTP/1.0
/// request); only then does the app answer, and it keeps sending before it closes. Every
/// byte of the answer must still arrive: the protocol has no half-close, so the tunnel
/// must keep the download open until the app closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_keeps_the_download_until_the_app_closes() {
    let _serial = SERIAL.lock().await;
    bounded(120, async {
        let app = source_sink_app().await;
        let manager = Manager::start(vec![Service::new("data", "tcp", &app.to_string())]).await;
        let tunnel = open_tunnel(&manager.url(), "data", options(Duration::from_secs(30))).await;
        for (i, (up, down)) in [(1024, 64 * MIB), (4 * MIB, 16 * MIB), (0, 1)]
            .into_iter()
            .enumerate()
        {
            let x = exchange(tunnel.local_addr(), up, down, 0x2000 + i as u64, true)
                .await
                .unwrap_or_else(|e| panic!("exchange {i} ({up} up, {down} down): {e}"));
            assert_eq!(x.up_sent, x.up_received, "exchange {i}: upload differs");
            assert_eq!(
                x.down_sent, x.down_received,
                "exchange {i}: download differs"
            );
        }
        let mut status = tunnel.status();
        let s = wait_status(&mut status, 10, "all closed", |s| s.active_connections == 0).await;
        assert_eq!(s.failed_connections, 0, "{s:?}");
        tunnel.stop().await;
    })
    .await;
}
