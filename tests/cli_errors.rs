//! Every failure a user can meet gives one line starting with `porthole:`, a non-zero
//! exit, and never a panic or a hang.

use std::process::Output;

use porthole_e2e::*;

fn assert_one_line_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit code; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("porthole: "))
        .collect();
    assert_eq!(lines.len(), 1, "exactly one error line in: {stderr}");
    assert!(
        lines[0].contains(needle),
        "{:?} does not mention {needle:?}",
        lines[0]
    );
}

async fn emulator(mode: Mode, echo_target: &str) -> Emulator {
    let mut failing = Service::new("jupyter", "http", echo_target);
    failing.extra = "start_failure = \"jupyter exited with status 1: ModuleNotFoundError\"".into();
    let sessions = vec![
        Session {
            name: "train-1".into(),
            status: "RUNNING".into(),
            services: vec![Service::new("echo", "tcp", echo_target), failing],
            ssh_key: None,
        },
        Session::pending("queued"),
    ];
    Emulator::start(mode, &emulator_config(mode, &sessions, "")).await
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_secret_is_refused_with_401() {
    let emu = emulator(Mode::ApiV8, "127.0.0.1:9").await;
    let mut cmd = emu.porthole(&["sessions"]);
    cmd.env("BACKEND_SECRET_KEY", "wrong-secret");
    assert_one_line_error(
        &run_with_timeout(cmd, 30).await,
        "refused the credentials (401",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_in_session_mode() {
    let emu = emulator(Mode::Session, "127.0.0.1:9").await;
    let mut cmd = emu.porthole(&["sessions"]);
    cmd.env("BACKEND_PASSWORD", "wrong-password");
    assert_one_line_error(&run_with_timeout(cmd, 30).await, "sign-in failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn skewed_clock_is_explained() {
    let emu = emulator(Mode::ApiV8, "127.0.0.1:9").await;
    // A real skew: libfaketime moves this process's clock 20 minutes back.
    let mut cmd = tokio::process::Command::new("faketime");
    cmd.arg("-f")
        .arg("-20m")
        .arg(bin("porthole"))
        .arg("sessions")
        .envs(emu.env());
    assert_one_line_error(&run_with_timeout(cmd, 30).await, "clock skew");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_session_and_app() {
    let emu = emulator(Mode::ApiV8, "127.0.0.1:9").await;
    assert_one_line_error(
        &emu.run(&["open", "nope", "echo", "--no-launch"], 30).await,
        "no session \"nope\"",
    );
    assert_one_line_error(
        &emu.run(&["open", "train-1", "nope", "--no-launch"], 30)
            .await,
        "has no app \"nope\"",
    );
    assert_one_line_error(
        &emu.run(&["ssh", "train-1"], 30).await,
        "has no app \"sshd\"",
    );
    assert_one_line_error(
        &emu.run(&["open", "queued", "jupyter", "--no-launch"], 30)
            .await,
        "PENDING",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn app_start_failure_shows_the_agents_reason() {
    for mode in [Mode::ApiV8, Mode::ApiV4] {
        let emu = emulator(mode, "127.0.0.1:9").await;
        let out = emu
            .run(&["open", "train-1", "jupyter", "--no-launch"], 60)
            .await;
        assert_one_line_error(
            &out,
            "jupyter failed to start in session \"train-1\": jupyter exited with status 1",
        );
    }
    // The web server hides the reason behind a 502; say so.
    let emu = emulator(Mode::Session, "127.0.0.1:9").await;
    let out = emu
        .run(&["open", "train-1", "jupyter", "--no-launch"], 60)
        .await;
    assert_one_line_error(&out, "502");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_endpoint() {
    let port = free_port();
    let mut cmd = tokio::process::Command::new(bin("porthole"));
    cmd.args(["sessions"])
        .env("BACKEND_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("BACKEND_ACCESS_KEY", ACCESS_KEY)
        .env("BACKEND_SECRET_KEY", SECRET_KEY);
    assert_one_line_error(&run_with_timeout(cmd, 30).await, "cannot reach");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_endpoint_and_arguments() {
    let mut cmd = tokio::process::Command::new(bin("porthole"));
    cmd.args(["sessions"])
        .env("BACKEND_ENDPOINT", "api.example.com")
        .env("BACKEND_ACCESS_KEY", ACCESS_KEY)
        .env("BACKEND_SECRET_KEY", SECRET_KEY);
    assert_one_line_error(&run_with_timeout(cmd, 30).await, "invalid endpoint URL");
    let emu = emulator(Mode::ApiV8, "127.0.0.1:9").await;
    assert_one_line_error(
        &emu.run(&["open", "train-1", "echo", "--bind", "localhost:1"], 30)
            .await,
        "is not an IP address",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_port_in_use() {
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap().to_string();
    let emu = emulator(Mode::ApiV8, &echo_addr).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = emu
        .run(
            &["open", "train-1", "echo", "--port", &port, "--no-launch"],
            30,
        )
        .await;
    assert_one_line_error(&out, &format!("local port {port} is already in use"));
}

/// An account with two-factor sign-in: the web server asks for the one-time password,
/// which `porthole` takes from BACKEND_OTP (or asks for on a terminal).
#[tokio::test(flavor = "multi_thread")]
async fn a_one_time_password_is_asked_for_and_used() {
    let extra = format!(
        "[[users]]\nusername = \"otp@example.test\"\npassword = \"otp-pw\"\n\
         access_key = \"{ACCESS_KEY}\"\notp = \"424242\"\n"
    );
    let sessions = [Session {
        name: "train-1".into(),
        status: "RUNNING".into(),
        services: vec![Service::new("echo", "tcp", "127.0.0.1:9")],
        ssh_key: None,
    }];
    let emu = Emulator::start(
        Mode::Session,
        &emulator_config(Mode::Session, &sessions, &extra),
    )
    .await;
    let run = |otp: Option<&str>| {
        let mut cmd = emu.porthole(&["sessions"]);
        cmd.env("BACKEND_USERNAME", "otp@example.test")
            .env("BACKEND_PASSWORD", "otp-pw");
        if let Some(otp) = otp {
            cmd.env("BACKEND_OTP", otp);
        }
        run_with_timeout(cmd, 30)
    };
    assert_one_line_error(&run(None).await, "one-time password (OTP)");
    let out = run(None).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("BACKEND_OTP"));
    assert_one_line_error(
        &run(Some("000000")).await,
        "sign-in failed: Invalid OTP code",
    );
    let out = run(Some("424242")).await;
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("train-1"));
}
