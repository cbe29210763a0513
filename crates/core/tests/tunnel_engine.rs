//! The tunnel engine against the emulator in-process, on real loopback sockets: status
//! published while idle, manager events in order, failures reported, session-mode silence
//! detected.

use std::net::SocketAddr;
use std::time::Duration;

use porthole_core::api::{BackendClient, ClientOptions, Credentials, Endpoint};
use porthole_core::tunnel::{
    Tunnel, TunnelEvent, TunnelManager, TunnelOptions, TunnelState, TunnelStatus, TunnelTarget,
};
use porthole_emulator::{Config, Emulator, RunningEmulator};
use porthole_testkit::{closed_port, echo_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const AK: &str = "AKIAENGINETEST000001";
const SK: &str = "engine-secret";

async fn emulator(echo: SocketAddr) -> RunningEmulator {
    let config = Config::from_toml_str(&format!(
        r#"
        [[keypairs]]
        access_key = "{AK}"
        secret_key = "{SK}"
        [[users]]
        username = "u@example.test"
        password = "pw"
        access_key = "{AK}"
        [[sessions]]
        name = "s1"
        [[sessions.services]]
        name = "echo"
        protocol = "tcp"
        container_ports = [7007]
        target = "{echo}"
        [[sessions.services]]
        name = "gone"
        protocol = "tcp"
        container_ports = [7008]
        target = "{}"
        "#,
        closed_port()
    ))
    .unwrap();
    Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn target(emu: &RunningEmulator, credentials: Credentials, app: &str) -> TunnelTarget {
    let endpoint = Endpoint::parse(&emu.endpoint_url()).unwrap();
    let client = BackendClient::connect(&endpoint, &credentials, &ClientOptions::default())
        .await
        .unwrap();
    let session = client.find_session("s1").await.unwrap();
    let app = session.app(app).unwrap().clone();
    TunnelTarget {
        client,
        session,
        app,
        launch: Default::default(),
    }
}

fn keypair() -> Credentials {
    Credentials::Keypair {
        access_key: AK.into(),
        secret_key: SK.into(),
    }
}

async fn wait_for(
    status: &mut watch::Receiver<TunnelStatus>,
    what: &str,
    want: impl Fn(&TunnelStatus) -> bool,
) -> TunnelStatus {
    let waited = tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| want(s)))
        .await
        .map(|r| r.map(|s| s.clone()));
    match waited {
        Ok(Ok(s)) => s,
        _ => panic!("{what}: last status {:?}", *status.borrow()),
    }
}

#[tokio::test]
async fn status_is_published_while_the_tunnel_waits_for_connections() {
    let emu = emulator(echo_server().await).await;
    let manager = TunnelManager::new();
    let info = manager
        .open(
            target(&emu, keypair(), "echo").await,
            "127.0.0.1:0".parse().unwrap(),
            TunnelOptions::default(),
        )
        .await
        .unwrap();
    let mut events = manager.subscribe();
    let mut socket = TcpStream::connect(info.local_addr).await.unwrap();
    socket.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    socket.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    drop(socket);
    // No further connection comes: the close and the byte counts must still arrive.
    let settled = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(TunnelEvent::Updated(info)) = events.recv().await {
                let s = &info.status;
                if s.state == TunnelState::Listening && s.bytes_up == 4 && s.bytes_down == 4 {
                    return info;
                }
            }
        }
    })
    .await
    .expect("the idle tunnel published its final counters");
    assert_eq!(settled.status.total_connections, 1);
    assert_eq!(settled.status.active_connections, 0);

    // Stop: the last event about the tunnel is its removal.
    assert!(manager.stop(info.id).await);
    let mut last = None;
    while let Ok(event) = events.try_recv() {
        last = Some(event);
    }
    assert!(
        matches!(last, Some(TunnelEvent::Removed { id }) if id == info.id),
        "{last:?}"
    );
    assert!(
        TcpStream::connect(info.local_addr).await.is_err(),
        "port released"
    );
    assert!(manager.list().is_empty());
}

#[tokio::test]
async fn an_app_that_never_listens_degrades_the_tunnel_and_says_why() {
    let emu = emulator(echo_server().await).await;
    let manager = TunnelManager::new();
    let options = TunnelOptions {
        warm_up: false,
        app_start_timeout: Duration::from_secs(1),
        ..TunnelOptions::default()
    };
    let info = manager
        .open(
            target(&emu, keypair(), "gone").await,
            "127.0.0.1:0".parse().unwrap(),
            options,
        )
        .await
        .unwrap();
    let tunnel_status = {
        let mut events = manager.subscribe();
        let mut socket = TcpStream::connect(info.local_addr).await.unwrap();
        let mut buf = [0u8; 1];
        // The manager closes with 1013 on every retry; after app_start_timeout the local
        // connection ends.
        let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf))
            .await
            .expect("local connection closed")
            .unwrap_or(0);
        assert_eq!(n, 0);
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Ok(TunnelEvent::Updated(info)) = events.recv().await {
                    if info.status.state == TunnelState::Degraded {
                        return info.status;
                    }
                }
            }
        })
        .await
        .expect("degraded")
    };
    assert_eq!(tunnel_status.failed_connections, 1);
    assert!(
        tunnel_status
            .last_error
            .as_deref()
            .unwrap()
            .contains("gone did not start listening within 1 s (close 1013)"),
        "{tunnel_status:?}"
    );
    // Same key again: the running tunnel is reused, not duplicated.
    let again = manager
        .open(
            target(&emu, keypair(), "gone").await,
            "127.0.0.1:0".parse().unwrap(),
            TunnelOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(again.id, info.id);
    manager.stop_all().await;
}

#[tokio::test]
async fn session_mode_silence_is_reported_instead_of_hanging() {
    let emu = emulator(echo_server().await).await;
    let credentials = Credentials::WebLogin {
        username: "u@example.test".into(),
        password: "pw".into(),
        otp: None,
    };
    let mut options = TunnelOptions {
        warm_up: false,
        ..TunnelOptions::default()
    };
    options.relay.first_reply_timeout = Some(Duration::from_millis(300));
    let manager = TunnelManager::new();
    let info = manager
        .open(
            target(&emu, credentials, "gone").await,
            "127.0.0.1:0".parse().unwrap(),
            options,
        )
        .await
        .unwrap();
    let mut socket = TcpStream::connect(info.local_addr).await.unwrap();
    socket.write_all(b"hello?").await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf))
        .await
        .expect("the silent relay is given up, not left hanging")
        .unwrap_or(0);
    assert_eq!(n, 0);
    let tunnels = manager.list();
    let mut status = tunnels[0].status.clone();
    if status.last_error.is_none() {
        let mut events = manager.subscribe();
        status = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Ok(TunnelEvent::Updated(info)) = events.recv().await {
                    if info.status.last_error.is_some() {
                        return info.status;
                    }
                }
            }
        })
        .await
        .unwrap();
    }
    assert!(status.last_error.unwrap().contains("did not answer"));
    manager.stop_all().await;
}

#[tokio::test]
async fn tunnel_stop_closes_open_connections() {
    let emu = emulator(echo_server().await).await;
    let root = tokio_util::sync::CancellationToken::new();
    let tunnel = porthole_core::tunnel::Tunnel::start(
        target(&emu, keypair(), "echo").await,
        "127.0.0.1:0".parse().unwrap(),
        TunnelOptions::default(),
        &root,
    )
    .await
    .unwrap();
    let mut status = tunnel.status();
    let mut socket = TcpStream::connect(tunnel.local_addr()).await.unwrap();
    socket.write_all(b"x").await.unwrap();
    let mut buf = [0u8; 1];
    socket.read_exact(&mut buf).await.unwrap();
    wait_for(&mut status, "active", |s| s.state == TunnelState::Active).await;
    tunnel.stop().await;
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
        .await
        .expect("connection closed by stop")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert_eq!(status.borrow().state, TunnelState::Stopped);
}

/// The app's port opens only after the first connection arrived: the connection is held
/// (the tunnel says `starting`), retried with backoff, and its first bytes replayed, so
/// the client just sees a slow answer.
#[tokio::test]
async fn a_connection_waits_for_an_app_that_starts_late() {
    let late = closed_port();
    let emu = emulator_with_service(late).await;
    let tunnel_target = target(&emu, keypair(), "late").await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let options = TunnelOptions {
        warm_up: false,
        ..TunnelOptions::default()
    };
    let tunnel = Tunnel::start(
        tunnel_target,
        "127.0.0.1:0".parse().unwrap(),
        options,
        &cancel,
    )
    .await
    .unwrap();
    let mut status = tunnel.status();
    let mut socket = TcpStream::connect(tunnel.local_addr()).await.unwrap();
    socket.write_all(b"hello").await.unwrap();
    wait_for(&mut status, "starting while the app refuses", |s| {
        s.state == TunnelState::Starting
    })
    .await;
    // The app comes up on its port now; the held connection gets through.
    let listener = TcpListener::bind(late).await.unwrap();
    let app = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut got = [0u8; 5];
        socket.read_exact(&mut got).await.unwrap();
        socket.write_all(b"world").await.unwrap();
        got
    });
    let mut reply = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(10), socket.read_exact(&mut reply))
        .await
        .expect("reply once the app listens")
        .unwrap();
    assert_eq!(&reply, b"world");
    assert_eq!(&app.await.unwrap(), b"hello", "first bytes replayed");
    let active = wait_for(
        &mut status,
        "no longer starting once the app answered",
        |s| s.state != TunnelState::Starting && s.bytes_down == 5,
    )
    .await;
    assert_ne!(active.state, TunnelState::Degraded, "{active:?}");
    assert_eq!(active.failed_connections, 0, "{active:?}");
    assert_eq!(active.bytes_up, 5, "replayed bytes counted once");
    tunnel.stop().await;
}

async fn emulator_with_service(target: SocketAddr) -> RunningEmulator {
    let config = Config::from_toml_str(&format!(
        r#"
        [[keypairs]]
        access_key = "{AK}"
        secret_key = "{SK}"
        [[sessions]]
        name = "s1"
        [[sessions.services]]
        name = "late"
        protocol = "tcp"
        container_ports = [7009]
        target = "{target}"
        "#
    ))
    .unwrap();
    Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// The session is terminated while a connection is open: the relay closes (1001, like an
/// app hanging up), which prompts a listing check, and the tunnel stops itself with the
/// reason and releases its port, although its periodic check is far away.
#[tokio::test]
async fn a_terminated_session_stops_its_tunnel_and_says_why() {
    let emu = emulator(echo_server().await).await;
    let tunnel = echo_tunnel_checking_every(&emu, Duration::from_secs(3600)).await;
    let local = tunnel.local_addr();
    let mut status = tunnel.status();
    let mut socket = TcpStream::connect(local).await.unwrap();
    socket.write_all(b"hi").await.unwrap();
    let mut buf = [0u8; 2];
    socket.read_exact(&mut buf).await.unwrap();
    emu.set_session_status("s1", "TERMINATED").unwrap();
    let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf))
        .await
        .expect("the open connection is closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    let failed = wait_for(&mut status, "failed with the reason", |s| {
        s.state == TunnelState::Failed
    })
    .await;
    assert_eq!(
        failed.last_error.as_deref(),
        Some("session s1 has ended (it is no longer listed); its tunnels were stopped"),
        "{failed:?}"
    );
    assert!(TcpStream::connect(local).await.is_err(), "port released");
    tunnel.stop().await;
}

/// An idle tunnel (no connection to prompt a check) notices at its periodic check.
#[tokio::test]
async fn an_idle_tunnel_notices_its_session_ending_at_the_next_check() {
    let emu = emulator(echo_server().await).await;
    let tunnel = echo_tunnel_checking_every(&emu, Duration::from_millis(200)).await;
    let mut status = tunnel.status();
    emu.set_session_status("s1", "TERMINATING").unwrap();
    let failed = wait_for(&mut status, "failed with the reason", |s| {
        s.state == TunnelState::Failed
    })
    .await;
    assert_eq!(
        failed.last_error.as_deref(),
        Some("session s1 is TERMINATING; its tunnels were stopped"),
        "{failed:?}"
    );
    tunnel.stop().await;
}

/// The tunnels of one account share one session listing: with two tunnels checking every
/// `INTERVAL`, four listings take three intervals at least, as for one tunnel (two
/// listings of their own would take two); and one listing stops both when the session
/// ends.
#[tokio::test]
async fn the_tunnels_of_one_account_share_one_session_listing() {
    const INTERVAL: Duration = Duration::from_millis(300);
    let emu = emulator(echo_server().await).await;
    let manager = TunnelManager::new();
    let options = TunnelOptions {
        session_check: Some(INTERVAL),
        warm_up: false,
        ..TunnelOptions::default()
    };
    let mut statuses = Vec::new();
    for app in ["echo", "gone"] {
        let info = manager
            .open(
                target(&emu, keypair(), app).await,
                "127.0.0.1:0".parse().unwrap(),
                options.clone(),
            )
            .await
            .unwrap();
        statuses.push(info.id);
    }
    let mut events = manager.subscribe();
    let start = tokio::time::Instant::now();
    let listed = emu.session_listings();
    emu.wait_session_listings(listed + 4).await;
    let took = start.elapsed();
    assert!(
        took >= INTERVAL * 3,
        "4 listings in {took:?}: more than one listing loop runs"
    );

    emu.set_session_status("s1", "TERMINATING").unwrap();
    let mut failed = std::collections::HashSet::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while failed.len() < statuses.len() {
            if let Ok(TunnelEvent::Updated(info)) = events.recv().await {
                if info.status.state == TunnelState::Failed {
                    failed.insert(info.id);
                }
            }
        }
    })
    .await
    .expect("both tunnels stop when their session ends");
    manager.stop_all().await;
}

/// A tunnel to `echo` of `s1` whose session check runs every `interval`.
async fn echo_tunnel_checking_every(emu: &RunningEmulator, interval: Duration) -> Tunnel {
    let options = TunnelOptions {
        session_check: Some(interval),
        ..TunnelOptions::default()
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    Tunnel::start(
        target(emu, keypair(), "echo").await,
        "127.0.0.1:0".parse().unwrap(),
        options,
        &cancel,
    )
    .await
    .unwrap()
}
