//! `porthole ssh-config`: a `Host <session>.porthole` for every running session with
//! sshd, in an included file, so plain `ssh`, `scp`, `rsync` and editors reach sessions.

use std::process::ExitCode;

use porthole_core::ssh_config::{self, ProxySpec, SshConfigPaths};

use crate::target::{connect, profile_in_use, CliError, Scope};

/// Arguments of `porthole ssh-config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Take Porthole's hosts and the Include line out again.
    #[arg(long)]
    remove: bool,
    /// Login user inside the containers.
    #[arg(long, default_value = porthole_core::ssh::CONTAINER_USER)]
    user: String,
}

/// Runs the command.
pub async fn run(scope: Scope<'_>, args: Args) -> Result<ExitCode, CliError> {
    let paths = SshConfigPaths::default_location()?;
    if args.remove {
        let removed = ssh_config::remove(&paths)?;
        match (removed.include_removed, removed.managed_removed) {
            (false, false) => println!("Nothing to remove: no Porthole hosts are configured."),
            (include, _) => {
                if include {
                    println!(
                        "Removed the Include line from {} (the previous version is in {}).",
                        paths.user_config().display(),
                        paths.backup().display()
                    );
                }
                println!("Removed {} and its keys.", paths.managed_dir().display());
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let client = connect(scope).await?;
    let hosts = ssh_config::running_hosts(&client).await?;
    let program = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| CliError::Usage(format!("cannot find the porthole program itself: {e}")))?;
    let profile = profile_in_use(scope.profile)?;
    if profile.is_none() {
        eprintln!(
            "porthole: note: the hosts sign in with the BACKEND_* variables of whatever runs \
             ssh; save a profile (`porthole profile add`) so editors and other shells work too"
        );
    }
    let proxy = ProxySpec {
        program,
        profile,
        user: args.user,
    };
    let installed = ssh_config::install(&paths, &hosts, &proxy)?;
    if installed.include_added {
        println!(
            "Added `{}` to the top of {}{}.",
            paths.include_line(),
            paths.user_config().display(),
            installed
                .backup
                .as_ref()
                .map(|b| format!(" (the previous version is in {})", b.display()))
                .unwrap_or_default()
        );
    }
    if installed.hosts.is_empty() {
        println!(
            "No running session has sshd; {} lists no hosts.",
            installed.config.display()
        );
    } else {
        println!("Wrote {}:", installed.config.display());
        for host in &installed.hosts {
            println!("  ssh {host}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
