//! SSH host keys pinned per session: trust on first use. Each session's sshd is known to
//! ssh under a name of its own ([`HostKeyPin::alias`], from the session id; the address
//! is always `127.0.0.1` on a port that changes), in a known-hosts file of Porthole's own
//! (`~/.ssh/porthole/known_hosts`), with `StrictHostKeyChecking accept-new`: the first
//! connection to a session records its key without a prompt, and a different key for the
//! same session later is refused by ssh. Pins of sessions that ended are pruned when the
//! managed SSH config is rewritten ([`prune`]).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The start of every alias, so pins are recognised (and pruned) as Porthole's.
const ALIAS_PREFIX: &str = "porthole-session-";

/// What ssh writes when the key it was shown differs from the pinned one.
const CHANGED_MARKERS: [&str; 2] = [
    "REMOTE HOST IDENTIFICATION HAS CHANGED",
    "Host key verification failed",
];

/// Where one session's host key is pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeyPin {
    known_hosts: PathBuf,
    alias: String,
}

impl HostKeyPin {
    /// The pin of the session with id `session_id` in the file `known_hosts`.
    pub fn new(known_hosts: impl Into<PathBuf>, session_id: &str) -> HostKeyPin {
        HostKeyPin {
            known_hosts: known_hosts.into(),
            alias: alias(session_id),
        }
    }

    /// The name ssh knows the session's sshd by.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// The known-hosts file.
    pub fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }

    /// The `-o` options that make ssh check (and on first use record) the pinned key.
    pub fn ssh_options(&self) -> Vec<String> {
        self.config_lines()
            .into_iter()
            .flat_map(|(k, v)| ["-o".to_owned(), format!("{k}={v}")])
            .collect()
    }

    /// The same as `(keyword, value)` pairs, for a `Host` block.
    pub fn config_lines(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HostKeyAlias", self.alias.clone()),
            ("UserKnownHostsFile", self.known_hosts.display().to_string()),
            ("StrictHostKeyChecking", "accept-new".to_owned()),
            // Plain names in Porthole's own file, so that pins can be pruned by session.
            ("HashKnownHosts", "no".to_owned()),
        ]
    }

    /// Makes sure ssh can record a first key: the file's directory exists, private.
    pub fn prepare(&self) -> io::Result<()> {
        if let Some(dir) = self.known_hosts.parent() {
            if !dir.exists() {
                fs::create_dir_all(dir)?;
                crate::ssh::set_mode(dir, 0o700)?;
            }
        }
        Ok(())
    }

    /// Whether a key is pinned for the session.
    pub fn is_pinned(&self) -> io::Result<bool> {
        Ok(read_lines(&self.known_hosts)?
            .iter()
            .any(|line| line_alias(line) == Some(self.alias.as_str())))
    }

    /// Forgets the pinned key, so the next connection records the key it meets (after
    /// the user decided why it changed). Returns whether one was pinned.
    pub fn forget(&self) -> io::Result<bool> {
        let removed = rewrite(&self.known_hosts, |alias| alias != self.alias)?;
        Ok(removed > 0)
    }
}

/// The alias of session `session_id`.
pub fn alias(session_id: &str) -> String {
    format!("{ALIAS_PREFIX}{session_id}")
}

/// Whether ssh's error output says the host key differs from the pinned one.
pub fn host_key_changed(ssh_stderr: &str) -> bool {
    CHANGED_MARKERS.iter().any(|m| ssh_stderr.contains(m))
}

/// Removes from `known_hosts` the pins of every session not in `keep` (session ids);
/// lines that are not Porthole's are kept. Returns how many were removed.
pub fn prune(known_hosts: &Path, keep: &[&str]) -> io::Result<usize> {
    let keep: Vec<String> = keep.iter().map(|id| alias(id)).collect();
    rewrite(known_hosts, |a| {
        !a.starts_with(ALIAS_PREFIX) || keep.iter().any(|k| k == a)
    })
}

/// The host names of a known-hosts line, if it names exactly one.
fn line_alias(line: &str) -> Option<&str> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
        return None;
    }
    line.split_whitespace().next()
}

fn read_lines(path: &Path) -> io::Result<Vec<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().map(str::to_owned).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Keeps the lines whose alias `keep` accepts (and every line without one); returns how
/// many were dropped. The file is replaced atomically, private.
fn rewrite(path: &Path, keep: impl Fn(&str) -> bool) -> io::Result<usize> {
    let lines = read_lines(path)?;
    let before = lines.len();
    let kept: Vec<&String> = lines
        .iter()
        .filter(|l| line_alias(l).is_none_or(&keep))
        .collect();
    let removed = before - kept.len();
    if removed == 0 {
        return Ok(0);
    }
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    for line in kept {
        writeln!(file, "{line}")?;
    }
    file.as_file().sync_all()?;
    crate::ssh::set_mode(file.path(), 0o600)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_pin_the_session_in_our_own_file() {
        let pin = HostKeyPin::new("/home/u/.ssh/porthole/known_hosts", "abc-123");
        assert_eq!(pin.alias(), "porthole-session-abc-123");
        let options = pin.ssh_options().join(" ");
        assert!(options.contains("-o HostKeyAlias=porthole-session-abc-123"));
        assert!(options.contains("-o UserKnownHostsFile=/home/u/.ssh/porthole/known_hosts"));
        assert!(options.contains("-o StrictHostKeyChecking=accept-new"));
    }

    #[test]
    fn forgetting_and_pruning_touch_only_porthole_pins() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        fs::write(
            &file,
            "porthole-session-a ssh-ed25519 AAAA1\n\
             porthole-session-b ssh-ed25519 AAAA2\n\
             # a comment\n\
             example.org ssh-ed25519 AAAA3\n\
             porthole-session-c ssh-rsa AAAA4\n",
        )
        .unwrap();
        let a = HostKeyPin::new(&file, "a");
        assert!(a.is_pinned().unwrap());
        assert!(a.forget().unwrap());
        assert!(!a.is_pinned().unwrap());
        assert!(!a.forget().unwrap(), "nothing left to forget");
        assert_eq!(prune(&file, &["c"]).unwrap(), 1, "b ended");
        let left = fs::read_to_string(&file).unwrap();
        assert_eq!(
            left,
            "# a comment\nexample.org ssh-ed25519 AAAA3\nporthole-session-c ssh-rsa AAAA4\n"
        );
        assert_eq!(prune(&dir.path().join("missing"), &[]).unwrap(), 0);
    }

    #[test]
    fn a_changed_key_is_recognised_in_ssh_output() {
        assert!(host_key_changed(
            "@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
        ));
        assert!(host_key_changed("Host key verification failed.\r\n"));
        assert!(!host_key_changed("Permission denied (publickey)."));
    }
}
