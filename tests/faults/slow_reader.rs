//! A local client that reads slowly or not at all: backpressure, bounded memory, and no
//! false alarm.

use super::*;

/// One local client stops reading while the app keeps sending: the bytes in flight stop
/// growing at a bound (backpressure reaches the app), this process's memory stays
/// bounded, and another connection of the same tunnel keeps its speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_is_bounded_and_does_not_slow_others() {
    let _serial = SERIAL.lock().await;
    bounded(180, async {
        let firehose = Firehose::default();
        let app = firehose.start().await;
        let manager = Manager::start(vec![Service::new("hose", "tcp", &app.to_string())]).await;
        let tunnel = open_tunnel(&manager.url(), "hose", options(Duration::from_secs(30))).await;
        let addr = tunnel.local_addr();
        const DOWNLOAD: u64 = 128 * MIB;
        // Best of a few runs: other load on the machine only ever slows a run down.
        let best_of = |tags: std::ops::Range<u8>| async move {
            let mut best = 0f64;
            for tag in tags {
                best = best.max(firehose_download(addr, tag, DOWNLOAD).await);
            }
            best
        };

        let baseline = best_of(10..12).await;
        let rss_before = rss();

        // Connection 2 reads nothing at all.
        let mut stalled = TcpStream::connect(addr).await.expect("connect");
        stalled.write_all(&[2]).await.expect("tag");
        // Wait until the app's writes to it have stopped for a while.
        let plateau = tokio::time::timeout(Duration::from_secs(30), async {
            let mut last = 0;
            let mut still_since = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let now = firehose.written(2);
                if now != last || now == 0 {
                    last = now;
                    still_since = Instant::now();
                } else if still_since.elapsed() >= Duration::from_millis(750) {
                    return now;
                }
            }
        })
        .await
        .expect("the stalled connection's bytes in flight stop growing");
        let rss_stalled = rss();

        let during = best_of(20..23).await;
        let in_flight_after = firehose.written(2);
        let rss_after = rss();
        eprintln!(
            "slow reader: {} KiB in flight (then {} KiB); baseline {:.0} MiB/s, beside the \
             stalled one {:.0} MiB/s; RSS {} -> {} -> {} MiB",
            plateau / 1024,
            in_flight_after / 1024,
            baseline / MIB as f64,
            during / MIB as f64,
            rss_before / MIB,
            rss_stalled / MIB,
            rss_after / MIB
        );
        // Socket buffers on three hops (loopback autotuning allows some MiB each) plus
        // the relays' own frames: tens of MiB at most, far from unbounded.
        assert!(plateau < 96 * MIB, "{} MiB in flight", plateau / MIB);
        assert!(
            in_flight_after <= plateau + 8 * MIB,
            "the stalled connection kept taking data: {plateau} then {in_flight_after}"
        );
        assert!(
            rss_stalled < rss_before + 32 * MIB,
            "RSS grew from {} to {} MiB while a reader was stalled",
            rss_before / MIB,
            rss_stalled / MIB
        );
        assert!(
            rss_after < rss_before + 64 * MIB,
            "RSS grew from {} to {} MiB",
            rss_before / MIB,
            rss_after / MIB
        );
        assert!(
            during >= baseline / 4.0,
            "a stalled reader slowed another connection: {:.0} MiB/s, baseline {:.0} MiB/s",
            during / MIB as f64,
            baseline / MIB as f64
        );
        let mut status = tunnel.status();
        wait_status(
            &mut status,
            10,
            "only the stalled connection is open",
            |s| s.active_connections == 1,
        )
        .await;
        drop(stalled);
        wait_status(&mut status, 10, "the stalled connection closes", |s| {
            s.active_connections == 0
        })
        .await;
        tunnel.stop().await;
    })
    .await;
}

/// A local client pauses reading for several ping intervals (a terminal paused with
/// Ctrl-S, a consumer busy elsewhere) while the app keeps sending: the tunnel must not
/// take its own backpressure for a dead server; reading again gets the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_reader_is_not_taken_for_a_dead_link() {
    let _serial = SERIAL.lock().await;
    bounded(120, async {
        let firehose = Firehose::default();
        let app = firehose.start().await;
        let manager = Manager::start(vec![Service::new("hose", "tcp", &app.to_string())]).await;
        let tunnel = open_tunnel(&manager.url(), "hose", options(PING)).await;
        let mut status = tunnel.status();
        let mut socket = TcpStream::connect(tunnel.local_addr())
            .await
            .expect("connect");
        socket.write_all(&[9]).await.expect("tag");
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        while got < MIB {
            got += socket.read(&mut buf).await.expect("read") as u64;
        }
        // The pause is the fault under test, not a wait for an event.
        tokio::time::sleep(5 * PING).await;
        let resumed = tokio::time::timeout(Duration::from_secs(30), async {
            let mut more = 0u64;
            while more < 32 * MIB {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return Err(more),
                    Ok(n) => more += n as u64,
                }
            }
            Ok(more)
        })
        .await
        .expect("reading resumes within 30 s");
        let s = status.borrow_and_update().clone();
        assert!(
            resumed.is_ok(),
            "the connection was closed after {} more bytes; {s:?}",
            resumed.unwrap_err()
        );
        assert_eq!(s.failed_connections, 0, "{s:?}");
        drop(socket);
        tunnel.stop().await;
    })
    .await;
}
