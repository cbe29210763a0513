//! The desktop app's logic end to end, without a window: the demo and an in-process
//! emulator behind it, a recording launcher, an in-memory keychain.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use porthole_app::account::AccountView;
use porthole_app::presenter::AppAction;
use porthole_app::{App, Connected, DemoMode, Launcher, Paths, ProfileInput, DEMO_PROFILE};
use porthole_core::profiles::{AuthMode, MemorySecrets, SecretStore};
use porthole_core::ssh_config::SshConfigPaths;
use porthole_emulator::demo::{self, DEMO_ACCESS_KEY, DEMO_SECRET_KEY};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn signed_in(account: &AccountView) -> Connected {
    match account {
        AccountView::SignedIn { connection, .. } => connection.clone(),
        other => panic!("not signed in: {other:?}"),
    }
}

#[derive(Default)]
struct Recorder {
    urls: Mutex<Vec<String>>,
    spawned: Mutex<Vec<(String, Vec<String>)>>,
}

impl Launcher for Recorder {
    fn open_url(&self, url: &str) -> Result<(), String> {
        lock(&self.urls).push(url.to_owned());
        Ok(())
    }
    fn spawn(&self, program: &str, args: &[String]) -> Result<(), String> {
        lock(&self.spawned).push((program.to_owned(), args.to_vec()));
        Ok(())
    }
}

struct Rig {
    app: App,
    launcher: Arc<Recorder>,
    secrets: Arc<MemorySecrets>,
    dir: tempfile::TempDir,
}

fn rig(mode: DemoMode) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths {
        profiles: dir.path().join("cfg/profiles.toml"),
        settings: dir.path().join("cfg/settings.toml"),
        ports: dir.path().join("cfg/ports.toml"),
        keys_dir: Some(dir.path().to_owned()),
        ssh: Some(SshConfigPaths::in_home(&dir.path().join("home"))),
    };
    let launcher = Arc::new(Recorder::default());
    let secrets = Arc::new(MemorySecrets::default());
    let app = App::new(paths, secrets.clone(), launcher.clone(), mode);
    Rig {
        app,
        launcher,
        secrets,
        dir,
    }
}

/// GET / from the tunnel at `url` (`http://name.localhost:PORT/`), connecting to the
/// loopback address as a browser would resolve the name.
fn http_get(url: &str) -> String {
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let port = host.rsplit(':').next().unwrap();
    let mut s = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    write!(s, "GET / HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

fn api_input(name: &str, endpoint: &str, secret: &str) -> ProfileInput {
    ProfileInput {
        name: name.into(),
        endpoint: endpoint.into(),
        mode: AuthMode::Api,
        access_key: Some(DEMO_ACCESS_KEY.into()),
        username: None,
        skip_tls_verify: false,
        secret: secret.into(),
        proxy: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_one_click_opens_the_browser_through_a_reused_tunnel() {
    let rig = rig(DemoMode::On);
    let start = rig.app.startup().await.unwrap();
    let connected = signed_in(&start.account);
    assert!(connected.demo);
    assert_eq!(connected.profile, DEMO_PROFILE);
    assert!(
        start.profiles.is_empty(),
        "the demo is not saved as a profile"
    );
    let list = rig.app.list_sessions().await.unwrap();
    let notebook = list
        .sessions
        .iter()
        .find(|s| s.name == "demo-notebook")
        .unwrap();
    assert!(notebook.apps.iter().any(|a| a.name == "jupyter"));
    let queued = list
        .sessions
        .iter()
        .find(|s| s.name == "demo-queued")
        .unwrap();
    assert!(queued.apps.is_empty() && queued.unavailable.is_some());

    let opened = rig
        .app
        .open_app(&notebook.id, "jupyter", true)
        .await
        .unwrap();
    assert!(opened.launched);
    let url = lock(&rig.launcher.urls)[0].clone();
    assert_eq!(Some(url.clone()), opened.url);
    assert_eq!(
        url,
        format!(
            "http://jupyter-demo-notebook.localhost:{}/",
            opened.tunnel.info.local_addr.port()
        )
    );
    let page = tokio::task::spawn_blocking(move || http_get(&url))
        .await
        .unwrap();
    assert!(page.contains("Porthole demo app"), "{page}");

    let again = rig
        .app
        .open_app(&notebook.id, "jupyter", false)
        .await
        .unwrap();
    assert_eq!(
        again.tunnel.info.id, opened.tunnel.info.id,
        "the tunnel is reused"
    );
    assert!(!again.launched);
    let menu = rig.app.tray_menu();
    assert_eq!(menu.tunnels.len(), 1);
    assert_eq!(menu.tunnels[0].label, "demo-notebook · Jupyter");
    let ssh_config = rig.app.write_ssh_config().await.unwrap_err();
    assert_eq!(ssh_config.kind, "demo", "{ssh_config:?}");

    let port = opened.tunnel.info.local_addr.port();
    assert!(rig.app.stop_tunnel(opened.tunnel.info.id).await);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port closed"
    );
    let reopened = rig
        .app
        .open_app(&notebook.id, "jupyter", false)
        .await
        .unwrap();
    assert_eq!(
        reopened.tunnel.info.local_addr.port(),
        port,
        "the remembered port is reused"
    );
    let echo = rig.app.open_app(&notebook.id, "echo", true).await.unwrap();
    assert_eq!(echo.action, AppAction::Address);
    assert!(!echo.launched && echo.url.is_none());
    rig.app.shutdown().await;
    assert!(rig.app.list_tunnels().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_keep_secrets_in_the_keychain_and_refuse_wrong_ones() {
    let demo = demo::start_demo(loopback(0)).await.unwrap();
    let url = demo.endpoint_url();
    let rig = rig(DemoMode::Auto);
    let wrong = rig
        .app
        .add_profile(api_input("lab", &url, "not-the-secret"), false)
        .await
        .unwrap_err();
    assert_eq!(wrong.kind, "auth-failed", "{wrong:?}");
    assert!(
        wrong.message.contains("refused the credentials"),
        "{}",
        wrong.message
    );
    assert!(rig.app.list_profiles().unwrap().is_empty(), "nothing saved");

    let connected = rig
        .app
        .add_profile(api_input("lab", &url, DEMO_SECRET_KEY), false)
        .await
        .unwrap();
    assert!(!connected.demo);
    assert_eq!(
        rig.secrets.get("lab").unwrap().as_deref(),
        Some(DEMO_SECRET_KEY)
    );
    let file = std::fs::read_to_string(rig.dir.path().join("cfg/profiles.toml")).unwrap();
    assert!(!file.contains(DEMO_SECRET_KEY));

    // Editing without a secret keeps the stored one; a rename moves it.
    let mut edit = api_input("lab2", &url, "");
    edit.skip_tls_verify = true;
    rig.app.update_profile("lab", edit, false).await.unwrap();
    assert_eq!(rig.secrets.get("lab").unwrap(), None);
    assert_eq!(
        rig.secrets.get("lab2").unwrap().as_deref(),
        Some(DEMO_SECRET_KEY)
    );

    // A fresh engine (the app restarted) signs in to the active profile, not the demo.
    let paths = Paths {
        profiles: rig.dir.path().join("cfg/profiles.toml"),
        settings: rig.dir.path().join("cfg/settings.toml"),
        ports: rig.dir.path().join("cfg/ports.toml"),
        keys_dir: None,
        ssh: None,
    };
    let again = App::new(
        paths,
        rig.secrets.clone(),
        rig.launcher.clone(),
        DemoMode::Auto,
    );
    let start = again.startup().await.unwrap();
    assert_eq!(signed_in(&start.account).profile, "lab2");

    // A secret that stopped working shows as an endpoint error at start.
    rig.secrets.set("lab2", "revoked").unwrap();
    let paths = Paths {
        profiles: rig.dir.path().join("cfg/profiles.toml"),
        settings: rig.dir.path().join("cfg/settings.toml"),
        ports: rig.dir.path().join("cfg/ports.toml"),
        keys_dir: None,
        ssh: None,
    };
    let third = App::new(
        paths,
        rig.secrets.clone(),
        rig.launcher.clone(),
        DemoMode::Off,
    );
    let start = third.startup().await.unwrap();
    let AccountView::Failed { profile, error } = &start.account else {
        panic!("not failed: {:?}", start.account);
    };
    assert_eq!(
        (profile.as_str(), error.kind.as_str()),
        ("lab2", "auth-failed")
    );
    assert_eq!(
        third.tray_menu().state,
        porthole_app::presenter::TrayState::Error
    );

    rig.app.remove_profile("lab2").unwrap();
    assert_eq!(rig.secrets.get("lab2").unwrap(), None);
    assert!(rig.app.list_sessions().await.is_err(), "signed out");
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sshd_opens_a_terminal_with_a_private_key_removed_on_stop() {
    use porthole_emulator::{Emulator, ServiceConfig, SessionConfig};
    let services = demo::DemoServices::start().await.unwrap();
    let mut config = services.config();
    let key =
        "junk\n-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    config.sessions.push(
        SessionConfig::new("ssh-box")
            .with_service(ServiceConfig::new(
                "sshd",
                "tcp",
                2200,
                services.echo_addr().to_string(),
            ))
            .with_file("id_container", key),
    );
    let emulator = Emulator::start(config, loopback(0)).await.unwrap();
    let rig = rig(DemoMode::Off);
    rig.app
        .add_profile(
            api_input("box", &emulator.endpoint_url(), DEMO_SECRET_KEY),
            false,
        )
        .await
        .unwrap();
    let mut settings = rig.app.settings().unwrap().settings;
    settings.terminal_command = Some("my-term --title 'Porthole SSH' --".into());
    rig.app.save_settings(settings).unwrap();
    let list = rig.app.list_sessions().await.unwrap();
    let session = list.sessions.iter().find(|s| s.name == "ssh-box").unwrap();
    let opened = rig.app.open_app(&session.id, "sshd", true).await.unwrap();
    assert_eq!(opened.action, AppAction::Terminal);
    let (program, args) = lock(&rig.launcher.spawned)[0].clone();
    assert_eq!(program, "my-term");
    assert_eq!(&args[..4], ["--title", "Porthole SSH", "--", "ssh"]);
    assert_eq!(
        args.last().unwrap(),
        &format!("{}@127.0.0.1", rig.app.ssh_user())
    );
    let key_path = PathBuf::from(&args[args.iter().position(|a| a == "-i").unwrap() + 1]);
    assert!(key_path.starts_with(rig.dir.path()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let cmd = opened.ssh_command.unwrap();
    assert!(
        cmd.starts_with("ssh -i ")
            && cmd.contains(&format!("-p {}", opened.tunnel.info.local_addr.port()))
    );
    // Copy again: same key, no second download.
    let again = rig.app.open_app(&session.id, "sshd", false).await.unwrap();
    assert_eq!(again.ssh_command.unwrap(), cmd);
    rig.app.stop_tunnel(opened.tunnel.info.id).await;
    assert!(!key_path.exists(), "the key goes with its tunnel");
    emulator.shutdown().await;
    services.shutdown().await;
}

#[test]
fn demo_mode_comes_from_the_flag_or_the_variable() {
    let none: Vec<String> = Vec::new();
    assert_eq!(DemoMode::from_env(&["--demo".into()], None), DemoMode::On);
    assert_eq!(DemoMode::from_env(&none, Some("1")), DemoMode::On);
    assert_eq!(DemoMode::from_env(&none, Some("auto")), DemoMode::Auto);
    assert_eq!(DemoMode::from_env(&none, Some("0")), DemoMode::Off);
    assert_eq!(DemoMode::from_env(&none, None), DemoMode::Off);
}

#[test]
fn profile_input_debug_hides_the_secret() {
    let input = api_input("x", "http://127.0.0.1:1", "hunter2");
    assert!(!format!("{input:?}").contains("hunter2"));
}
