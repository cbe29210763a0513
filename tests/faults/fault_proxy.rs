//! The fault proxy itself does what the other tests rely on.

use super::*;

/// The fault proxy does what the tests above rely on, straight to an echo server: passes
/// bytes and half-closes; a blackhole holds bytes without closing and releases them
/// unchanged when the path comes back; a reset ends open connections with RST; refusing
/// resets new connections and leaves open ones alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_proxy_modes() {
    let _serial = SERIAL.lock().await;
    bounded(60, async {
        let app = echo_app().await;
        let proxy = FaultProxy::start(app).await;
        let addr = proxy.addr();
        echo_once(addr, b"pass").await.expect("pass mode echoes");

        let mut held = idle_connection(addr).await;
        proxy.blackhole();
        held.write_all(b"held back").await.expect("write");
        let mut back = [0u8; 9];
        // Nothing may come back while the path is cut (an absence needs a time window).
        let early =
            tokio::time::timeout(Duration::from_millis(300), held.read_exact(&mut back)).await;
        assert!(early.is_err(), "bytes crossed a blackholed path");
        let opened_during = tokio::spawn(echo_once(addr, b"opened during the cut"));
        proxy.pass();
        tokio::time::timeout(Duration::from_secs(5), held.read_exact(&mut back))
            .await
            .expect("held bytes are released")
            .expect("read");
        assert_eq!(&back, b"held back");
        opened_during
            .await
            .expect("task")
            .expect("a connection opened during the cut works afterwards");

        // Half-close passes through: the echo server sees EOF and ends its side.
        held.shutdown().await.expect("shutdown");
        closed_within(&mut held, Duration::from_secs(5), "half-closed connection").await;

        let mut open = idle_connection(addr).await;
        proxy.refuse();
        // The RST may beat connect() back to this task, or come on the first read.
        let outcome = tokio::time::timeout(Duration::from_secs(5), async {
            let mut refused = TcpStream::connect(addr).await?;
            refused.read(&mut [0u8; 1]).await
        })
        .await
        .expect("a refused connection ends at once");
        assert!(
            matches!(&outcome, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{outcome:?}"
        );
        assert_eq!(proxy.refused(), 1);
        let mut buf = [0u8; 1];
        open.write_all(b"x").await.expect("write");
        open.read_exact(&mut buf)
            .await
            .expect("open ones keep going");

        // The closed connections' relays wind down after their clients saw the end.
        let one_left = tokio::time::timeout(Duration::from_secs(5), async {
            while proxy.open_connections() != 1 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(one_left.is_ok(), "{} open", proxy.open_connections());
        proxy.reset_all();
        let outcome = tokio::time::timeout(Duration::from_secs(5), open.read(&mut buf))
            .await
            .expect("a reset connection ends at once");
        assert!(
            matches!(&outcome, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{outcome:?}"
        );
        proxy.pass();
        echo_once(addr, b"again").await.expect("pass mode again");
    })
    .await;
}
