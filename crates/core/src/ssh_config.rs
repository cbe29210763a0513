//! The managed SSH config: one `Host <session>.porthole` block per running session that
//! has an `sshd` app, reached through `porthole proxy` as the `ProxyCommand` with the
//! session's downloaded key, so `ssh train-1.porthole`, `scp`, `rsync` and editors'
//! Remote-SSH work with no port juggling.
//!
//! Everything Porthole writes lives in `~/.ssh/porthole/` (the config and one key per
//! host, all private). The user's own `~/.ssh/config` is only ever touched by adding (or
//! removing) one `Include` line at its top, and the file as it was before is kept next
//! to it as `config.porthole-backup`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::api::{ApiError, BackendClient};
use crate::known_hosts::HostKeyPin;
use crate::ssh::{private_key, set_mode, shell_quote, KeyError, KEY_FILE_NAME};

/// What every managed host name ends with.
pub const HOST_SUFFIX: &str = ".porthole";

/// The comment above the `Include` line, so a reader knows where it came from.
const INCLUDE_COMMENT: &str =
    "# Added by `porthole ssh-config`; `porthole ssh-config --remove` takes it out again.";

/// Why the managed config could not be written or removed.
#[derive(Debug, thiserror::Error)]
pub enum SshConfigError {
    /// No home directory to find `~/.ssh` in.
    #[error("cannot find your home directory (HOME is not set)")]
    NoHome,
    /// A file could not be read or written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A session's key is unusable.
    #[error("session {session}: {source}")]
    Key {
        /// The session's name.
        session: String,
        /// What is wrong with its key.
        #[source]
        source: KeyError,
    },
}

impl SshConfigError {
    /// A stable short name for the error class.
    pub fn kind(&self) -> &'static str {
        match self {
            SshConfigError::NoHome => "no-home",
            SshConfigError::Io { .. } => "io",
            SshConfigError::Key { .. } => "key",
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SshConfigError + '_ {
    move |source| SshConfigError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the files are: `~/.ssh` and the managed directory inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfigPaths {
    ssh_dir: PathBuf,
}

impl SshConfigPaths {
    /// `~/.ssh` of the home directory `home`.
    pub fn in_home(home: &Path) -> Self {
        SshConfigPaths {
            ssh_dir: home.join(".ssh"),
        }
    }

    /// `~/.ssh` of the user running us (`$HOME`).
    pub fn default_location() -> Result<Self, SshConfigError> {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|home| Self::in_home(Path::new(&home)))
            .ok_or(SshConfigError::NoHome)
    }

    /// The user's own `~/.ssh/config`.
    pub fn user_config(&self) -> PathBuf {
        self.ssh_dir.join("config")
    }

    /// The copy of the user's config from before Porthole's last change to it.
    pub fn backup(&self) -> PathBuf {
        self.ssh_dir.join("config.porthole-backup")
    }

    /// `~/.ssh/porthole`, everything Porthole writes.
    pub fn managed_dir(&self) -> PathBuf {
        self.ssh_dir.join("porthole")
    }

    /// The included file with the `Host` blocks.
    pub fn managed_config(&self) -> PathBuf {
        self.managed_dir().join("config")
    }

    /// Porthole's own known-hosts file: the host keys pinned per session.
    pub fn known_hosts(&self) -> PathBuf {
        self.managed_dir().join("known_hosts")
    }

    /// The host-key pin of session `session_id` (see [`crate::known_hosts`]).
    pub fn pin(&self, session_id: &str) -> HostKeyPin {
        HostKeyPin::new(self.known_hosts(), session_id)
    }

    fn keys_dir(&self) -> PathBuf {
        self.managed_dir().join("keys")
    }

    /// The `Include` line for the user's config (an absolute path: `~` in ssh means the
    /// passwd home, which may differ from `$HOME`).
    pub fn include_line(&self) -> String {
        format!(
            "Include {}",
            ssh_quote(&self.managed_config().display().to_string())
        )
    }
}

/// One session to write a host for.
#[derive(Debug, Clone)]
pub struct SshHost {
    /// The session's name, e.g. `train-1`; the host is `train-1.porthole`.
    pub session: String,
    /// The session's id, which its host-key pin is named after.
    pub session_id: String,
    /// The session's downloaded `id_container`.
    pub key: Vec<u8>,
}

/// How ssh reaches a session: the `porthole` program and the profile it signs in with.
#[derive(Debug, Clone)]
pub struct ProxySpec {
    /// Absolute path of the `porthole` command.
    pub program: PathBuf,
    /// The profile to use; `None` means the BACKEND_* variables (or the active profile)
    /// of whatever runs ssh.
    pub profile: Option<String>,
    /// The login user in the container.
    pub user: String,
}

/// The host name for a session: its name with anything ssh patterns treat specially
/// replaced by `-`, plus [`HOST_SUFFIX`].
pub fn host_alias(session: &str) -> String {
    let name: String = session
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{name}{HOST_SUFFIX}")
}

/// One [`SshHost`] for every running session of `client` that offers sshd, with its key
/// downloaded.
pub async fn running_hosts(client: &BackendClient) -> Result<Vec<SshHost>, ApiError> {
    let mut hosts = Vec::new();
    for session in client.list_sessions(false).await? {
        if session.is_running() && session.app("sshd").is_some() {
            let key = client.download_file(&session, KEY_FILE_NAME).await?;
            hosts.push(SshHost {
                session: session.name,
                session_id: session.id,
                key,
            });
        }
    }
    Ok(hosts)
}

/// What [`install`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The host names, e.g. `train-1.porthole`.
    pub hosts: Vec<String>,
    /// The included config file.
    pub config: PathBuf,
    /// Whether the `Include` line was added now (else it was there already).
    pub include_added: bool,
    /// The backup of the user's config, when it was changed and existed before.
    pub backup: Option<PathBuf>,
}

/// Writes one host per entry of `hosts` (replacing what an earlier run wrote, so hosts of
/// ended sessions disappear, and with them their pinned host keys) and makes sure the
/// user's config includes it.
pub fn install(
    paths: &SshConfigPaths,
    hosts: &[SshHost],
    proxy: &ProxySpec,
) -> Result<Installed, SshConfigError> {
    let keys_dir = paths.keys_dir();
    for dir in [&paths.ssh_dir, &paths.managed_dir(), &keys_dir] {
        create_private_dir(dir)?;
    }
    let mut text = format!(
        "# Written by `porthole ssh-config`; it is rewritten on every run, edit ~/.ssh/config \
         instead.\n# One host per running session with sshd: `ssh <session>{HOST_SUFFIX}`.\n"
    );
    let mut written = Vec::new();
    for host in hosts {
        let alias = host_alias(&host.session);
        let key = private_key(&host.key).map_err(|source| SshConfigError::Key {
            session: host.session.clone(),
            source,
        })?;
        let key_path = keys_dir.join(&alias);
        write_private(&key_path, &key)?;
        let pin = paths.pin(&host.session_id);
        text.push_str(&host_block(&alias, &host.session, &key_path, &pin, proxy));
        written.push(alias);
    }
    remove_stale_keys(&keys_dir, &written)?;
    let running: Vec<&str> = hosts.iter().map(|h| h.session_id.as_str()).collect();
    let known_hosts = paths.known_hosts();
    crate::known_hosts::prune(&known_hosts, &running).map_err(io_error(&known_hosts))?;
    write_private(&paths.managed_config(), text.as_bytes())?;
    let (include_added, backup) = add_include(paths)?;
    Ok(Installed {
        hosts: written,
        config: paths.managed_config(),
        include_added,
        backup,
    })
}

/// What [`remove`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Whether the `Include` line was found and taken out.
    pub include_removed: bool,
    /// Whether `~/.ssh/porthole` existed and was deleted.
    pub managed_removed: bool,
}

/// Takes the `Include` line out of the user's config (backing it up first) and deletes
/// `~/.ssh/porthole` with its keys.
pub fn remove(paths: &SshConfigPaths) -> Result<Removed, SshConfigError> {
    let include_removed = remove_include(paths)?;
    let managed = paths.managed_dir();
    let managed_removed = managed.exists();
    if managed_removed {
        fs::remove_dir_all(&managed).map_err(io_error(&managed))?;
    }
    Ok(Removed {
        include_removed,
        managed_removed,
    })
}

fn host_block(
    alias: &str,
    session: &str,
    key: &Path,
    pin: &HostKeyPin,
    proxy: &ProxySpec,
) -> String {
    let mut command = vec![shell_quote(&proxy.program.display().to_string())];
    if let Some(profile) = &proxy.profile {
        command.push("--profile".into());
        command.push(shell_quote(profile));
    }
    command.extend(["proxy".into(), shell_quote(session), "sshd".into()]);
    // ssh expands %-tokens in ProxyCommand; a literal % must be doubled.
    let command = command.join(" ").replace('%', "%%");
    let mut block = format!(
        "\nHost {alias}\n    HostName {alias}\n    User {user}\n    ProxyCommand {command}\n    \
         IdentityFile {key}\n    IdentitiesOnly yes\n    \
         # The session's host key, pinned at the first connection.\n",
        user = proxy.user,
        key = ssh_quote(&key.display().to_string()),
    );
    for (keyword, value) in pin.config_lines() {
        block.push_str(&format!("    {keyword} {}\n", ssh_quote(&value)));
    }
    block.push_str("    LogLevel ERROR\n");
    block
}

/// Quotes a path for ssh_config, which splits arguments on spaces unless double-quoted.
fn ssh_quote(text: &str) -> String {
    if text.contains([' ', '\t', '"']) {
        format!("\"{}\"", text.replace('"', ""))
    } else {
        text.to_owned()
    }
}

/// The exact text [`add_include`] puts at the top of the user's config.
fn include_block(paths: &SshConfigPaths) -> String {
    format!("{INCLUDE_COMMENT}\n{}\n\n", paths.include_line())
}

/// Adds the `Include` at the top (an `Include` further down would only apply inside the
/// preceding `Host` block). Returns whether it was added and the backup made.
fn add_include(paths: &SshConfigPaths) -> Result<(bool, Option<PathBuf>), SshConfigError> {
    let config = paths.user_config();
    let current = match fs::read_to_string(&config) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error(&config)(e)),
    };
    let line = paths.include_line();
    if let Some(text) = &current {
        if text.lines().any(|l| l.trim() == line) {
            return Ok((false, None));
        }
    }
    let backup = match &current {
        Some(text) => {
            write_private(&paths.backup(), text.as_bytes())?;
            Some(paths.backup())
        }
        None => None,
    };
    let updated = format!("{}{}", include_block(paths), current.unwrap_or_default());
    write_in_place(&config, updated.as_bytes())?;
    Ok((true, backup))
}

/// Takes out what [`add_include`] added: the whole block when it is still at the top,
/// else just the comment and `Include` lines wherever they moved.
fn remove_include(paths: &SshConfigPaths) -> Result<bool, SshConfigError> {
    let config = paths.user_config();
    let text = match fs::read_to_string(&config) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_error(&config)(e)),
    };
    let line = paths.include_line();
    let updated = match text.strip_prefix(&include_block(paths)) {
        Some(rest) => rest.to_owned(),
        None => {
            let kept: Vec<&str> = text
                .split_inclusive('\n')
                .filter(|l| l.trim() != line && l.trim() != INCLUDE_COMMENT)
                .collect();
            kept.concat()
        }
    };
    if updated == text {
        return Ok(false);
    }
    write_private(&paths.backup(), text.as_bytes())?;
    write_in_place(&config, updated.as_bytes())?;
    Ok(true)
}

fn create_private_dir(dir: &Path) -> Result<(), SshConfigError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        set_mode(dir, 0o700).map_err(io_error(dir))?;
    }
    Ok(())
}

/// Writes a file readable by the owner only, through a temporary file and a rename so a
/// crash never leaves half a key or config behind.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SshConfigError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_error(path))?;
    set_mode(tmp.path(), 0o600).map_err(io_error(path))?;
    tmp.write_all(bytes).map_err(io_error(path))?;
    tmp.as_file().sync_all().map_err(io_error(path))?;
    tmp.persist(path).map_err(|e| io_error(path)(e.error))?;
    Ok(())
}

/// Rewrites the user's config in place, keeping its mode, owner and any symlink (dotfile
/// managers link `~/.ssh/config` elsewhere).
fn write_in_place(path: &Path, bytes: &[u8]) -> Result<(), SshConfigError> {
    let existed = path.exists();
    fs::write(path, bytes).map_err(io_error(path))?;
    if !existed {
        set_mode(path, 0o600).map_err(io_error(path))?;
    }
    Ok(())
}

fn remove_stale_keys(keys_dir: &Path, keep: &[String]) -> Result<(), SshConfigError> {
    let entries = fs::read_dir(keys_dir).map_err(io_error(keys_dir))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !keep.iter().any(|k| name == k.as_str()) {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_error(&path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const KEY: &[u8] =
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----";

    fn proxy() -> ProxySpec {
        ProxySpec {
            program: "/opt/my tools/porthole".into(),
            profile: Some("lab".into()),
            user: "work".into(),
        }
    }

    fn hosts(names: &[&str]) -> Vec<SshHost> {
        names
            .iter()
            .map(|n| SshHost {
                session: (*n).into(),
                session_id: format!("id-{n}"),
                key: KEY.to_vec(),
            })
            .collect()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn install_writes_hosts_keys_and_one_include_then_remove_restores_the_config() {
        let home = tempfile::tempdir().unwrap();
        let paths = SshConfigPaths::in_home(home.path());
        fs::create_dir(home.path().join(".ssh")).unwrap();
        let original = "Host github.com\n    User git\n";
        fs::write(paths.user_config(), original).unwrap();

        let installed = install(&paths, &hosts(&["train-1", "eval 7"]), &proxy()).unwrap();
        assert_eq!(installed.hosts, ["train-1.porthole", "eval-7.porthole"]);
        assert!(installed.include_added);
        assert_eq!(fs::read_to_string(paths.backup()).unwrap(), original);
        let user = fs::read_to_string(paths.user_config()).unwrap();
        assert!(user.starts_with(INCLUDE_COMMENT), "{user}");
        assert!(
            user.ends_with(original),
            "the user's lines are kept: {user}"
        );
        let managed = fs::read_to_string(paths.managed_config()).unwrap();
        assert!(managed.contains("\nHost train-1.porthole\n"), "{managed}");
        assert!(
            managed
                .contains("ProxyCommand '/opt/my tools/porthole' --profile lab proxy train-1 sshd"),
            "{managed}"
        );
        assert!(managed
            .contains("ProxyCommand '/opt/my tools/porthole' --profile lab proxy 'eval 7' sshd"));
        let key = paths.managed_dir().join("keys/train-1.porthole");
        assert!(managed.contains(&format!("IdentityFile {}", key.display())));
        assert_eq!(fs::read(&key).unwrap(), [KEY, b"\n"].concat());
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&paths.managed_config()), 0o600);
        assert_eq!(mode(&paths.managed_dir()), 0o700);

        // Again with one session gone: one Include still, its key removed.
        let again = install(&paths, &hosts(&["train-1"]), &proxy()).unwrap();
        assert!(!again.include_added);
        let user = fs::read_to_string(paths.user_config()).unwrap();
        assert_eq!(user.matches(&paths.include_line()).count(), 1);
        assert!(!paths.managed_dir().join("keys/eval-7.porthole").exists());

        let removed = remove(&paths).unwrap();
        assert!(removed.include_removed && removed.managed_removed);
        assert_eq!(fs::read_to_string(paths.user_config()).unwrap(), original);
        assert!(!paths.managed_dir().exists());
        assert_eq!(
            remove(&paths).unwrap(),
            Removed {
                include_removed: false,
                managed_removed: false
            }
        );
    }

    #[test]
    fn a_missing_config_is_created_private_and_a_moved_include_still_comes_out() {
        let home = tempfile::tempdir().unwrap();
        let paths = SshConfigPaths::in_home(home.path());
        let installed = install(&paths, &hosts(&["a"]), &proxy()).unwrap();
        assert_eq!(installed.backup, None);
        assert_eq!(mode(&paths.user_config()), 0o600);
        assert_eq!(mode(&home.path().join(".ssh")), 0o700);
        // The user moved our lines below their own.
        let moved = format!("Host x\n    User y\n{}", include_block(&paths));
        fs::write(paths.user_config(), &moved).unwrap();
        assert!(remove(&paths).unwrap().include_removed);
        assert_eq!(
            fs::read_to_string(paths.user_config()).unwrap(),
            "Host x\n    User y\n\n"
        );
    }

    #[test]
    fn rewriting_prunes_the_host_keys_of_ended_sessions() {
        let home = tempfile::tempdir().unwrap();
        let paths = SshConfigPaths::in_home(home.path());
        install(&paths, &hosts(&["a", "gone"]), &proxy()).unwrap();
        fs::write(
            paths.known_hosts(),
            "porthole-session-id-a ssh-ed25519 AAAA1\nporthole-session-id-gone ssh-ed25519 AAAA2\n",
        )
        .unwrap();
        install(&paths, &hosts(&["a"]), &proxy()).unwrap();
        assert!(paths.pin("id-a").is_pinned().unwrap());
        assert!(!paths.pin("id-gone").is_pinned().unwrap());
        let config = fs::read_to_string(paths.managed_config()).unwrap();
        assert!(
            config.contains("HostKeyAlias porthole-session-id-a"),
            "{config}"
        );
    }

    #[test]
    fn a_bad_key_names_the_session_and_writes_nothing_half() {
        let home = tempfile::tempdir().unwrap();
        let paths = SshConfigPaths::in_home(home.path());
        let bad = vec![SshHost {
            session: "s".into(),
            session_id: "id-s".into(),
            key: b"not a key".to_vec(),
        }];
        let err = install(&paths, &bad, &proxy()).unwrap_err();
        assert_eq!(err.kind(), "key");
        assert!(err.to_string().starts_with("session s: "), "{err}");
        assert!(!paths.user_config().exists());
        assert!(!paths.managed_config().exists());
    }

    #[test]
    fn percent_signs_are_escaped_for_ssh() {
        let spec = ProxySpec {
            program: "/bin/porthole".into(),
            profile: Some("100%".into()),
            user: "work".into(),
        };
        let pin = HostKeyPin::new("/h/.ssh/porthole/known_hosts", "id-s");
        let block = host_block("s.porthole", "s", Path::new("/k"), &pin, &spec);
        assert!(block.contains("--profile 100%% proxy s sshd"), "{block}");
        assert!(
            block.contains("    HostKeyAlias porthole-session-id-s\n")
                && block.contains("    StrictHostKeyChecking accept-new\n"),
            "{block}"
        );
    }
}
