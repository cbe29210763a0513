//! The emulator is only believable if the official client accepts it: `backend.ai app`
//! from PyPI's backend.ai-client 23.9.10 (installed by scripts/install-test-deps.sh)
//! tunnels real bytes through it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use porthole_e2e::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};

fn official_cli() -> PathBuf {
    let venv = std::env::var_os("PORTHOLE_BAI_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().parent().unwrap().join("bai-client-venv"));
    let cli = venv.join("bin/backend.ai");
    assert!(
        cli.exists(),
        "{} is missing: run scripts/install-test-deps.sh (it installs backend.ai-client 23.9.10)",
        cli.display()
    );
    cli
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_ai_app_tunnels_through_the_emulator() {
    let cli = official_cli();
    let target = greeting_echo_server(b"").await.to_string();
    let mode = Mode::ApiV8;
    let sessions = vec![Session {
        name: "train-1".into(),
        status: "RUNNING".into(),
        services: vec![Service::new("echo", "tcp", &target)],
        ssh_key: None,
    }];
    let emu = Emulator::start(mode, &emulator_config(mode, &sessions, "")).await;
    let home = tempfile::tempdir().unwrap();

    // `backend.ai ps`-style listing goes through GraphQL with the official signer.
    let port = free_port();
    let mut app = tokio::process::Command::new(&cli);
    app.args(["app", "train-1", "echo", "-b", &format!("127.0.0.1:{port}")])
        .envs(emu.env())
        .env("HOME", home.path())
        .env("BACKEND_VFOLDER_MOUNTS", "")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = app.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    read_line_until(&mut err, 60, "backend.ai app", |l| {
        l.contains(&format!("127.0.0.1:{port}"))
    })
    .await;

    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let payload: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    socket.write_all(&payload).await.unwrap();
    let mut back = vec![0u8; payload.len()];
    tokio::time::timeout(Duration::from_secs(30), socket.read_exact(&mut back))
        .await
        .expect("echo through backend.ai app within 30 s")
        .unwrap();
    assert_eq!(back, payload);
    drop(socket);
    terminate(&child);
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}
