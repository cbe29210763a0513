//! HTTPS endpoints: a certificate that does not verify is refused with a clear line, a
//! custom CA (`PORTHOLE_CA_FILE`) makes it work, and so does the opt-in skip
//! (`BACKEND_SKIP_SSLCERT_VALIDATION=1`, as the official client); tunnels then run over
//! `wss://`.

use porthole_e2e::*;
use porthole_testkit::tls::{TestPki, TlsFront};
use tokio::process::Command;

const PAGE: &str = "<!doctype html><title>tls</title><p>through wss</p>\n";

struct Fixture {
    _http: HttpServer,
    emu: Emulator,
    front: TlsFront,
    pki: TestPki,
}

async fn fixture() -> Fixture {
    let http = HttpServer::start(PAGE).await;
    let sessions = vec![Session {
        name: "train-1".into(),
        status: "RUNNING".into(),
        services: vec![Service::new("web", "http", &http.target())],
        ssh_key: None,
    }];
    let emu = Emulator::start(Mode::ApiV8, &emulator_config(Mode::ApiV8, &sessions, "")).await;
    let pki = TestPki::generate().await;
    let backend = emu.url.trim_start_matches("http://").to_owned();
    let front = TlsFront::start(&pki, backend).await;
    Fixture {
        _http: http,
        emu,
        front,
        pki,
    }
}

impl Fixture {
    fn porthole(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = self.emu.porthole(args);
        cmd.env("BACKEND_ENDPOINT", &self.front.url)
            .envs(env.iter().copied());
        cmd
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unverifiable_certificate_is_refused_in_one_line() {
    let f = fixture().await;
    let out = run_with_timeout(f.porthole(&["sessions"], &[]), 30).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("porthole: "), "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    // A CA file that is not PEM is its own clear error.
    let junk = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(junk.path(), "not a certificate").unwrap();
    let junk_path = junk.path().display().to_string();
    let out = run_with_timeout(
        f.porthole(&["sessions"], &[("PORTHOLE_CA_FILE", &junk_path)]),
        30,
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no PEM certificate"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_ca_or_the_opt_in_skip_makes_listing_and_tunnels_work() {
    let f = fixture().await;
    let ca = f.pki.ca.display().to_string();
    for env in [
        vec![("PORTHOLE_CA_FILE", ca.as_str())],
        vec![("BACKEND_SKIP_SSLCERT_VALIDATION", "1")],
    ] {
        let out = run_with_timeout(f.porthole(&["sessions"], &env), 30).await;
        assert!(out.status.success(), "{env:?}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("train-1"));
        // The tunnel's WebSockets go over wss:// with the same trust.
        let args = ["open", "train-1", "web", "--json", "--no-launch"];
        let mut cmd = f.porthole(&args, &env);
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        let tunnel = OpenTunnel::spawn(cmd).await;
        let url = tunnel.ready["url"].as_str().unwrap().to_owned();
        let mut curl = Command::new("curl");
        curl.args(["-sS", "--fail", "--max-time", "30", &url]);
        let page = run_with_timeout(curl, 40).await;
        assert!(page.status.success(), "{env:?}: {page:?}");
        assert_eq!(String::from_utf8_lossy(&page.stdout), PAGE);
        tunnel.stop().await;
    }
}
