//! SSH into a session: the downloaded `id_container` key as a private 0600 file that is
//! removed when no longer needed, and the `ssh` command line for a tunnel.

use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::known_hosts::HostKeyPin;

/// The user Backend.AI containers run dropbear/sshd for.
pub const CONTAINER_USER: &str = "work";

/// The name of the session's SSH key file in its home directory.
pub const KEY_FILE_NAME: &str = "id_container";

/// A private key on disk, readable by the owner only; deleted (with its private
/// directory) on drop.
#[derive(Debug)]
pub struct KeyFile {
    dir: tempfile::TempDir,
    path: PathBuf,
}

/// Why a downloaded key is unusable.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The bytes do not look like a private key.
    #[error("the session's {KEY_FILE_NAME} is not a private key (it has no \"-----BEGIN\" line)")]
    NotAKey,
    /// Writing it failed.
    #[error("cannot write the SSH key file: {0}")]
    Io(#[from] io::Error),
}

impl KeyFile {
    /// Writes `key` (anything before the first `-----` is dropped, as the WebUI does)
    /// to a fresh 0700 directory under `parent` (the system temp dir when `None`).
    pub fn write(key: &[u8], parent: Option<&Path>) -> Result<KeyFile, KeyError> {
        let key = private_key(key)?;
        let mut builder = tempfile::Builder::new();
        builder.prefix("porthole-ssh-");
        let dir = match parent {
            Some(parent) => builder.tempdir_in(parent)?,
            None => builder.tempdir()?,
        };
        set_mode(dir.path(), 0o700)?;
        let path = dir.path().join(KEY_FILE_NAME);
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path)?;
        file.write_all(&key)?;
        file.sync_all()?;
        Ok(KeyFile { dir, path })
    }

    /// Where the key is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the key on disk (for a managed ssh config) and returns its path.
    pub fn keep(self) -> io::Result<PathBuf> {
        let dir = self.dir.keep();
        Ok(dir.join(KEY_FILE_NAME))
    }
}

/// The private key in a downloaded `id_container`: anything before the first `-----`
/// dropped (as the WebUI does), and a final newline added (OpenSSH refuses a key whose
/// last line lacks it).
pub fn private_key(downloaded: &[u8]) -> Result<Vec<u8>, KeyError> {
    let start = find(downloaded, b"-----BEGIN").ok_or(KeyError::NotAKey)?;
    let mut key = downloaded[start..].to_vec();
    if !key.ends_with(b"\n") {
        key.push(b'\n');
    }
    Ok(key)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// The arguments for `ssh` to reach the container as `user` through a tunnel on `local`,
/// followed by the user's own `extra` arguments. The session's host key is checked
/// against its `pin` (trust on first use, see [`crate::known_hosts`]); without one (no
/// home directory to keep pins in) host keys are not checked at all.
pub fn ssh_args(
    local: SocketAddr,
    key: &Path,
    user: &str,
    pin: Option<&HostKeyPin>,
    extra: &[String],
) -> Vec<String> {
    let mut args = vec![
        "-i".to_owned(),
        key.display().to_string(),
        "-p".to_owned(),
        local.port().to_string(),
    ];
    match pin {
        Some(pin) => args.extend(pin.ssh_options()),
        None => args.extend(
            ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null"]
                .into_iter()
                .flat_map(|o| ["-o".to_owned(), o.to_owned()]),
        ),
    }
    args.extend(
        ["IdentitiesOnly=yes", "LogLevel=ERROR"]
            .into_iter()
            .flat_map(|o| ["-o".to_owned(), o.to_owned()]),
    );
    args.push(format!("{user}@{}", local.ip()));
    args.extend(extra.iter().cloned());
    args
}

/// `ssh_args` as one shell-quoted command line, for "copy ssh command".
pub fn ssh_command_line(local: SocketAddr, key: &Path, pin: Option<&HostKeyPin>) -> String {
    std::iter::once("ssh".to_owned())
        .chain(
            ssh_args(local, key, CONTAINER_USER, pin, &[])
                .iter()
                .map(|a| shell_quote(a)),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes `arg` for a POSIX shell when it needs it.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_private_trimmed_and_removed() {
        let parent = tempfile::tempdir().unwrap();
        let key = KeyFile::write(
            b"noise\n-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----",
            Some(parent.path()),
        )
        .unwrap();
        let text = fs::read_to_string(key.path()).unwrap();
        assert!(text.starts_with("-----BEGIN"));
        assert!(text.ends_with("-----\n"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(key.path()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let path = key.path().to_owned();
        drop(key);
        assert!(!path.exists());
        assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0);
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(matches!(
            KeyFile::write(b"<html>", None),
            Err(KeyError::NotAKey)
        ));
    }

    #[test]
    fn command_line_is_quoted() {
        let cmd = ssh_command_line(
            "127.0.0.1:9022".parse().unwrap(),
            Path::new("/tmp/a b/id_container"),
            None,
        );
        assert!(cmd.starts_with("ssh -i '/tmp/a b/id_container' -p 9022 "));
        assert!(cmd.ends_with(" work@127.0.0.1"));
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
