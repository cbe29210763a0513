//! A real dropbear SSH server, as Backend.AI containers run it (`sshd` app, user `work`),
//! for the end-to-end tests.
//!
//! Dropbear has no option to say where the authorized keys are: it reads
//! `~USER/.ssh/authorized_keys` from the login user's home in the passwd database, and
//! runs sftp from a path compiled into it. So that no test ever writes into a real home
//! directory (or a system directory), dropbear runs in a private mount namespace
//! (`unshare --mount`) where a temporary directory is bind-mounted over the user's home.
//! A missing home or compiled-in sftp-server path is made to appear, again only inside
//! that namespace, with an overlay whose upper layer is in the temporary directory. The
//! mounts live and die with dropbear's processes and are never visible outside them.
//!
//! As root the namespace is a plain mount namespace and the login user is `work` when it
//! exists (as in Backend.AI containers), else root. As any other user, mounting needs a
//! user namespace that maps the user to root; dropbear then runs in a nested one that
//! maps them back to their own uid, as dropbear only lets a non-root server log in as
//! its own user; the login user is then the current user.

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::{free_port, read_line_until, run_with_timeout, user_exists};

/// The OpenSSH sftp-server that stands in for a missing compiled-in sftp path.
const OPENSSH_SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// A local account, as the passwd database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
}

impl Account {
    /// Looks up `name` in the passwd database (files, LDAP, whatever NSS says).
    pub fn by_name(name: &str) -> Option<Account> {
        let cname = CString::new(name).ok()?;
        lookup(|pwd, buf, result| {
            // SAFETY: every pointer is valid for the call; `buf` outlives the result.
            unsafe { libc::getpwnam_r(cname.as_ptr(), pwd, buf.as_mut_ptr(), buf.len(), result) }
        })
    }

    /// The account of the real user id of this process.
    pub fn current() -> Account {
        // SAFETY: getuid(2) cannot fail.
        let uid = unsafe { libc::getuid() };
        lookup(|pwd, buf, result| {
            // SAFETY: every pointer is valid for the call; `buf` outlives the result.
            unsafe { libc::getpwuid_r(uid, pwd, buf.as_mut_ptr(), buf.len(), result) }
        })
        .unwrap_or_else(|| panic!("uid {uid} has no passwd entry"))
    }
}

fn lookup(
    call: impl Fn(&mut libc::passwd, &mut [libc::c_char], &mut *mut libc::passwd) -> libc::c_int,
) -> Option<Account> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain old data; all-zero is a valid value to be overwritten.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    let rc = call(&mut pwd, &mut buf, &mut result);
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success the strings point into `buf`, NUL-terminated.
    let text = |p: *const libc::c_char| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    Some(Account {
        name: text(pwd.pw_name),
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
        home: PathBuf::from(text(pwd.pw_dir)),
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The account dropbear lets the tests log in as: `work` when it exists and we are root
/// (as in Backend.AI containers, and in CI), else the current user (a server that is
/// not root can only log in its own user).
pub fn login_account() -> Account {
    if is_root() && user_exists("work") {
        Account::by_name("work").expect("passwd entry of work")
    } else {
        Account::current()
    }
}

/// Where the session's `id_container` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKey {
    /// `ssh-keygen -t ed25519`: an OpenSSH-format key, as the manager hands out when the
    /// user's keypair holds an SSH keypair (the 411-byte key of the real-manager rig).
    Ed25519,
    /// What Backend.AI's kernel runner makes when there is none: `dropbearkey -t rsa -s
    /// 2048`, converted with `dropbearconvert dropbear openssh`.
    DropbearRsa,
}

/// A real dropbear on a loopback port, accepting one generated client key for one user,
/// with options as Backend.AI's kernel runner starts it.
pub struct Dropbear {
    /// Its port.
    pub port: u16,
    /// The private key that logs in (the session's `id_container`), OpenSSH format.
    pub client_key: PathBuf,
    /// The user to log in as (see the module documentation).
    pub user: String,
    /// The user's home as dropbear and its sessions see it: the passwd path, backed by a
    /// temporary directory inside dropbear's mount namespace only.
    pub home: PathBuf,
    /// A directory every user can write, for transfers.
    pub scratch: PathBuf,
    /// The sftp-server path compiled into dropbear.
    pub sftp_server: PathBuf,
    log: watch::Receiver<String>,
    child: Child,
    dir: tempfile::TempDir,
}

/// One mount made inside dropbear's namespace before it starts.
#[derive(Debug)]
enum Mount {
    /// `mount --bind source target`
    Bind { source: PathBuf, target: PathBuf },
    /// An overlay on `target` (an existing directory) whose upper layer is `upper`.
    Overlay {
        target: PathBuf,
        upper: PathBuf,
        work: PathBuf,
    },
}

impl Mount {
    fn command(&self) -> String {
        match self {
            Mount::Bind { source, target } => {
                format!("mount --bind {} {}", quote(source), quote(target))
            }
            Mount::Overlay {
                target,
                upper,
                work,
            } => {
                for p in [target, upper, work] {
                    let s = p.to_string_lossy();
                    assert!(
                        !s.contains([',', ':', '\\']),
                        "overlay path {s:?} cannot go into mount options"
                    );
                }
                let options = format!(
                    "lowerdir={},upperdir={},workdir={}",
                    target.display(),
                    upper.display(),
                    work.display()
                );
                format!(
                    "mount -t overlay porthole-test -o {} {}",
                    quote(&options),
                    quote(target)
                )
            }
        }
    }

    fn target(&self) -> &Path {
        match self {
            Mount::Bind { target, .. } | Mount::Overlay { target, .. } => target,
        }
    }
}

/// Single-quotes `arg` for `sh`.
fn quote(arg: impl AsRef<std::ffi::OsStr>) -> String {
    let arg = arg.as_ref().to_string_lossy();
    format!("'{}'", arg.replace('\'', "'\\''"))
}

/// Plans how `path`, which does not exist, appears inside the namespace: an overlay on
/// its nearest existing ancestor, whose upper layer (under `scratch`) holds the missing
/// components. Returns the mount and where `path` is in the upper layer; the caller
/// creates it there.
fn overlay_for_missing(path: &Path, scratch: &Path) -> (Mount, PathBuf) {
    let ancestor = path
        .ancestors()
        .skip(1)
        .find(|a| a.is_dir())
        .expect("some ancestor exists");
    assert!(
        ancestor != Path::new("/"),
        "{} is missing and its nearest existing ancestor is /: refusing to lay an overlay on /",
        path.display()
    );
    assert!(
        !scratch.starts_with(ancestor),
        "{} is missing and the overlay for it on {} would hold its own upper layer ({})",
        path.display(),
        ancestor.display(),
        scratch.display()
    );
    let upper = scratch.join("upper");
    let work = scratch.join("work");
    std::fs::create_dir_all(&upper).expect("overlay upper dir");
    std::fs::create_dir_all(&work).expect("overlay work dir");
    let inside = upper.join(path.strip_prefix(ancestor).expect("ancestor prefix"));
    std::fs::create_dir_all(inside.parent().expect("parent")).expect("overlay dirs");
    (
        Mount::Overlay {
            target: ancestor.to_owned(),
            upper,
            work,
        },
        inside,
    )
}

/// The sftp-server path compiled into the dropbear binary at `dropbear` (Debian:
/// `/usr/lib/sftp-server`, upstream: `/usr/libexec/sftp-server`).
pub fn compiled_sftp_server_path(dropbear: &Path) -> PathBuf {
    let bytes = std::fs::read(dropbear).expect("read the dropbear binary");
    bytes
        .split(|b| *b == 0)
        .filter(|s| s.starts_with(b"/") && s.ends_with(b"/sftp-server"))
        .map(|s| PathBuf::from(String::from_utf8_lossy(s).into_owned()))
        .next()
        .unwrap_or_else(|| PathBuf::from("/usr/libexec/sftp-server"))
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn program(name: &str, package: &str) -> PathBuf {
    find_program(&[name])
        .unwrap_or_else(|| panic!("{name} is not installed (apt-get install {package})"))
}

async fn run(mut cmd: Command, what: &str) -> std::process::Output {
    cmd.stdin(Stdio::null());
    let out = run_with_timeout(cmd, 60).await;
    assert!(out.status.success(), "{what} failed: {out:?}");
    out
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown(path: &Path, account: &Account) {
    std::os::unix::fs::chown(path, Some(account.uid), Some(account.gid)).expect("chown");
}

/// Writes the client key pair as `dir/id_container` (OpenSSH private key) and returns the
/// public key line for `authorized_keys`.
async fn client_key(dir: &Path, kind: ClientKey) -> String {
    let key = dir.join("id_container");
    match kind {
        ClientKey::Ed25519 => {
            let mut c = Command::new("ssh-keygen");
            c.args(["-q", "-t", "ed25519", "-N", "", "-C", "porthole-test", "-f"])
                .arg(&key);
            run(c, "ssh-keygen").await;
            std::fs::read_to_string(dir.join("id_container.pub")).expect("public key")
        }
        ClientKey::DropbearRsa => {
            let raw = dir.join("id_dropbear");
            let mut c = Command::new(program("dropbearkey", "dropbear-bin"));
            c.args(["-t", "rsa", "-s", "2048", "-f"]).arg(&raw);
            let out = run(c, "dropbearkey").await;
            // "Public key portion is:\nssh-rsa AAAA... root@host\nFingerprint: ..."
            let public = String::from_utf8_lossy(&out.stdout)
                .lines()
                .find(|l| l.starts_with("ssh-rsa "))
                .expect("dropbearkey prints the public key")
                .to_owned();
            let mut c = Command::new(program("dropbearconvert", "dropbear-bin"));
            c.args(["dropbear", "openssh"]).arg(&raw).arg(&key);
            run(c, "dropbearconvert").await;
            set_mode(&key, 0o600);
            public + "\n"
        }
    }
}

impl Dropbear {
    /// Starts dropbear with an ed25519 client key (see [`Dropbear::start_with`]).
    pub async fn start() -> Dropbear {
        Dropbear::start_with(ClientKey::Ed25519).await
    }

    /// Generates a host key and a `kind` client key, and starts dropbear in the
    /// foreground on a free loopback port; returns once it listens.
    pub async fn start_with(kind: ClientKey) -> Dropbear {
        let dropbear = program("dropbear", "dropbear-bin");
        let unshare = program("unshare", "util-linux");
        let dir = tempfile::tempdir().expect("tempdir");
        set_mode(dir.path(), 0o755);
        let d = dir.path();
        let account = login_account();

        let mut c = Command::new(program("dropbearkey", "dropbear-bin"));
        c.args(["-t", "ed25519", "-f"]).arg(d.join("host_key"));
        run(c, "dropbearkey").await;
        let public = client_key(d, kind).await;

        let scratch = d.join("scratch");
        std::fs::create_dir(&scratch).expect("scratch dir");
        set_mode(&scratch, 0o777);

        // The user's home: a temp dir over the real one, or an overlay if it is missing.
        let mut mounts = Vec::new();
        let home = if account.home.is_dir() {
            let home = d.join("home");
            std::fs::create_dir(&home).expect("home dir");
            mounts.push(Mount::Bind {
                source: home.clone(),
                target: account.home.clone(),
            });
            home
        } else {
            let (mount, home) = overlay_for_missing(&account.home, &d.join("home-overlay"));
            std::fs::create_dir(&home).expect("home dir");
            mounts.push(mount);
            home
        };
        // dropbear wants the home, ~/.ssh and authorized_keys owned by the user or root and
        // not writable by group or others.
        chown(&home, &account);
        set_mode(&home, 0o755);
        let ssh_dir = home.join(".ssh");
        std::fs::create_dir(&ssh_dir).expect(".ssh");
        chown(&ssh_dir, &account);
        set_mode(&ssh_dir, 0o700);
        let authorized = ssh_dir.join("authorized_keys");
        std::fs::write(&authorized, public).expect("authorized_keys");
        chown(&authorized, &account);
        set_mode(&authorized, 0o600);

        // sftp: dropbear runs the sftp-server compiled into it; make it exist if missing.
        let sftp_server = compiled_sftp_server_path(&dropbear);
        if !sftp_server.exists() {
            let openssh = Path::new(OPENSSH_SFTP_SERVER);
            assert!(
                openssh.exists(),
                "dropbear runs {} for sftp, which is missing, and so is {OPENSSH_SFTP_SERVER} \
                 (apt-get install openssh-sftp-server)",
                sftp_server.display()
            );
            let (mount, link) = overlay_for_missing(&sftp_server, &d.join("sftp-overlay"));
            // A dangling symlink left by an uninstalled package is replaced in the overlay.
            std::os::unix::fs::symlink(openssh, link).expect("sftp-server symlink");
            mounts.push(mount);
        }
        // Outer mounts first, so that a nested one lands on top.
        mounts.sort_by_key(|m| m.target().components().count());

        for attempt in 1..=3 {
            let port = free_port();
            // As Backend.AI's kernel runner starts it (-E -F -g -w -K 15 -I 0; its build
            // has a 256 KiB receive window, given here with -W), but on loopback, with an
            // ed25519 host key, no password logins, and a pid file of its own.
            let mut args: Vec<String> = [
                "-F", "-E", "-s", "-g", "-K", "15", "-I", "0", "-W", "262144", "-r",
            ]
            .map(String::from)
            .to_vec();
            args.push(d.join("host_key").display().to_string());
            args.extend(["-P".into(), d.join("dropbear.pid").display().to_string()]);
            args.extend(["-p".into(), format!("127.0.0.1:{port}")]);
            if account.uid != 0 {
                args.push("-w".into());
            }
            let mut script = String::from("set -e\n");
            for m in &mounts {
                script.push_str(&m.command());
                script.push('\n');
            }
            script.push_str("exec ");
            if !is_root() {
                script.push_str(&format!(
                    "{} --map-user={} --map-group={} ",
                    quote(&unshare),
                    account.uid,
                    account.gid
                ));
            }
            script.push_str(&quote(&dropbear));
            for a in &args {
                script.push(' ');
                script.push_str(&quote(a));
            }
            let mut cmd = Command::new(&unshare);
            if !is_root() {
                cmd.arg("--map-root-user");
            }
            cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(&script)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let mut child = cmd.spawn().expect("spawn unshare ... dropbear");
            // dropbear binds its listeners, then says "Not backgrounding" (with -F).
            let mut err = BufReader::new(child.stderr.take().expect("stderr"));
            let line = read_line_until(&mut err, 20, "dropbear", |l| {
                l.contains("Not backgrounding") || l.contains("Failed listening")
            })
            .await;
            if line.contains("Failed listening") {
                // Someone took the free port between our check and dropbear's bind.
                let _ = child.kill().await;
                assert!(attempt < 3, "dropbear could not listen 3 times: {line}");
                continue;
            }
            let (sink, log) = watch::channel(String::new());
            tokio::spawn(async move {
                let mut line = String::new();
                while err
                    .read_line(&mut line)
                    .await
                    .map(|n| n > 0)
                    .unwrap_or(false)
                {
                    if std::env::var_os("PORTHOLE_TEST_SSHD_LOG").is_some() {
                        eprint!("dropbear: {line}");
                    }
                    sink.send_modify(|log| log.push_str(&line));
                    line.clear();
                }
            });
            return Dropbear {
                port,
                client_key: d.join("id_container"),
                user: account.name.clone(),
                home: account.home.clone(),
                scratch,
                sftp_server,
                log,
                child,
                dir,
            };
        }
        unreachable!("the loop returns or panics")
    }

    /// `127.0.0.1:PORT`
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The temporary directory holding the keys and the files behind the user's home.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What dropbear has logged since it became ready (one line per event, e.g.
    /// "Pubkey auth succeeded for 'work' with ssh-ed25519 key ...").
    pub fn log(&self) -> String {
        self.log.borrow().clone()
    }

    /// Waits up to `secs` for dropbear to log a line containing `needle` (its log is read
    /// in the background, so a line may arrive just after the event it reports).
    pub async fn wait_for_log(&self, needle: &str, secs: u64) {
        let mut log = self.log.clone();
        let seen = tokio::time::timeout(
            std::time::Duration::from_secs(secs),
            log.wait_for(|l| l.contains(needle)),
        )
        .await;
        if !matches!(seen, Ok(Ok(_))) {
            panic!(
                "dropbear did not log {needle:?} within {secs} s; its log:\n{}",
                self.log()
            );
        }
    }

    /// Options for the system ssh/scp/sftp that log in with the session key through
    /// `port`.
    pub fn client_options(&self, port: u16) -> Vec<String> {
        crate::ssh_client_options(&self.client_key, port)
    }
}

impl Drop for Dropbear {
    fn drop(&mut self) {
        // dropbear itself (unshare and sh exec into it). Sessions still open end with
        // their connections; the namespace and its mounts go with the last of them.
        let _ = self.child.start_kill();
    }
}
