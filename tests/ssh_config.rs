//! `porthole ssh-config` end to end: the managed hosts let plain `ssh`, `scp` and `rsync`
//! reach a session's real OpenSSH sshd through `porthole proxy`, the user's own config
//! gains only an `Include` line (with a backup), and `--remove` restores it byte for byte.

use std::path::Path;
use std::process::Stdio;

use porthole_e2e::*;
use tokio::process::Command;

const USER_CONFIG: &str = "# my own settings\nHost github.com\n    User git\n";

struct Fixture {
    sshd: Sshd,
    emu: Emulator,
    home: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let sshd = Sshd::start().await;
    let sessions = vec![
        Session {
            name: "train-1".into(),
            status: "RUNNING".into(),
            services: vec![Service::new("sshd", "tcp", &sshd.target())],
            ssh_key: Some(sshd.client_key.clone()),
        },
        Session::pending("queued"),
    ];
    let emu = Emulator::start(Mode::ApiV8, &emulator_config(Mode::ApiV8, &sessions, "")).await;
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".ssh")).unwrap();
    std::fs::write(home.path().join(".ssh/config"), USER_CONFIG).unwrap();
    Fixture { sshd, emu, home }
}

impl Fixture {
    fn ssh_config(&self) -> std::path::PathBuf {
        self.home.path().join(".ssh/config")
    }

    async fn porthole_ssh_config(&self, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["ssh-config", "--user", self.sshd.user.as_str()];
        args.extend_from_slice(extra);
        let mut cmd = self.emu.porthole(&args);
        cmd.env("HOME", self.home.path());
        run_with_timeout(cmd, 30).await
    }

    /// A system ssh tool reading the user's config (its `~` is the passwd home, so the
    /// config is named explicitly), with the endpoint in its environment as a user's
    /// shell would have it.
    fn tool(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.emu.env())
            .env("HOME", self.home.path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    fn ssh_f(&self) -> String {
        format!("-F{}", self.ssh_config().display())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_work_with_ssh_scp_and_rsync_and_remove_restores_the_config() {
    let f = fixture().await;
    let out = f.porthole_ssh_config(&[]).await;
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ssh train-1.porthole"), "{stdout}");
    assert!(
        !stdout.contains("queued"),
        "pending sessions get no host: {stdout}"
    );

    // The user's config: one Include line added at the top, the rest untouched, backed up.
    let config = std::fs::read_to_string(f.ssh_config()).unwrap();
    let managed = f.home.path().join(".ssh/porthole/config");
    assert!(
        config.contains(&format!("\nInclude {}\n", managed.display())),
        "{config}"
    );
    assert!(config.ends_with(USER_CONFIG), "{config}");
    let backup = f.home.path().join(".ssh/config.porthole-backup");
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), USER_CONFIG);
    let key = f.home.path().join(".ssh/porthole/keys/train-1.porthole");
    assert_eq!(file_mode(&key), 0o600);

    // Running it again changes nothing in the user's config.
    let again = f.porthole_ssh_config(&[]).await;
    assert!(again.status.success(), "{again:?}");
    assert_eq!(std::fs::read_to_string(f.ssh_config()).unwrap(), config);

    // ssh: a command and its exit code.
    let mut ssh = f.tool("ssh");
    ssh.args([
        &f.ssh_f(),
        "-o",
        "BatchMode=yes",
        "train-1.porthole",
        "echo",
        "ok;",
        "exit",
        "5",
    ]);
    let out = run_with_timeout(ssh, 30).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{out:?}");
    assert_eq!(out.status.code(), Some(5), "{out:?}");

    // scp up, rsync back: same bytes.
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("data.bin");
    random_file(&src, 8 << 20);
    let remote = f
        .sshd
        .scratch
        .join(format!("cfg-{}.bin", std::process::id()));
    let mut scp = f.tool("scp");
    scp.args([&f.ssh_f(), "-q", "-o", "BatchMode=yes"])
        .arg(&src)
        .arg(format!("train-1.porthole:{}", remote.display()));
    let out = run_with_timeout(scp, 60).await;
    assert!(out.status.success(), "scp: {out:?}");
    assert_eq!(sha256_file(&remote), sha256_file(&src));
    let back = local.path().join("back.bin");
    let mut rsync = f.tool("rsync");
    rsync
        .args(["-a", "-e", &format!("ssh {} -o BatchMode=yes", f.ssh_f())])
        .arg(format!("train-1.porthole:{}", remote.display()))
        .arg(&back);
    let out = run_with_timeout(rsync, 60).await;
    assert!(out.status.success(), "rsync: {out:?}");
    assert_eq!(sha256_file(&back), sha256_file(&src));
    let _ = std::fs::remove_file(&remote);

    // --remove: the config is exactly the user's again, the keys are gone.
    let out = f.porthole_ssh_config(&["--remove"]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(f.ssh_config()).unwrap(),
        USER_CONFIG
    );
    assert!(!f.home.path().join(".ssh/porthole").exists());
    let mut ssh = f.tool("ssh");
    ssh.args([
        &f.ssh_f(),
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
        "train-1.porthole",
        "true",
    ]);
    let out = run_with_timeout(ssh, 30).await;
    assert!(!out.status.success(), "the host is gone after --remove");
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_leave_the_users_config_alone() {
    let f = fixture().await;
    // A wrong secret: nothing is written.
    let mut cmd = f.emu.porthole(&["ssh-config"]);
    cmd.env("HOME", f.home.path())
        .env("BACKEND_SECRET_KEY", "wrong");
    let out = run_with_timeout(cmd, 30).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert_eq!(
        std::fs::read_to_string(f.ssh_config()).unwrap(),
        USER_CONFIG
    );
    assert!(!f.home.path().join(".ssh/porthole").exists());
    // Removing when nothing was added says so and changes nothing.
    let out = f.porthole_ssh_config(&["--remove"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Nothing to remove"));
    assert_eq!(
        std::fs::read_to_string(f.ssh_config()).unwrap(),
        USER_CONFIG
    );
    assert!(!Path::new(&f.home.path().join(".ssh/config.porthole-backup")).exists());
}

fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
