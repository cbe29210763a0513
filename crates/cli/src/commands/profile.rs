//! `porthole profile`: saved endpoints; secrets go to the OS keychain only.

use std::io::{self, BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use porthole_core::profiles::{AuthMode, KeyringSecrets, Profile, ProfileStore};

use crate::target::CliError;

/// `porthole profile ...`
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Save an endpoint; the secret key or password is read from the terminal (or the
    /// first line of stdin) and stored in the OS keychain.
    Add(AddArgs),
    /// List saved profiles (no secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a profile and its secret.
    Remove {
        /// Profile name.
        name: String,
    },
    /// Use this profile when none is named.
    Use {
        /// Profile name.
        name: String,
    },
}

/// Arguments of `porthole profile add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Profile name.
    name: String,
    /// Manager URL (api mode) or web server URL (session mode).
    #[arg(long)]
    endpoint: String,
    /// api (keypair) or session (web login).
    #[arg(long, value_enum, default_value = "api")]
    mode: Mode,
    /// Access key (api mode).
    #[arg(long)]
    access_key: Option<String>,
    /// Username (session mode).
    #[arg(long)]
    username: Option<String>,
    /// Accept any TLS certificate (only for servers you trust by other means).
    #[arg(long)]
    skip_tls_verify: bool,
    /// PEM file with extra CA certificates to trust.
    #[arg(long)]
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Mode {
    Api,
    Session,
}

/// Runs the command.
pub fn run(command: Command) -> Result<ExitCode, CliError> {
    let store = ProfileStore::default_location()?;
    let secrets = KeyringSecrets::new();
    match command {
        Command::Add(args) => {
            let mode = match args.mode {
                Mode::Api => AuthMode::Api,
                Mode::Session => AuthMode::Session,
            };
            let profile = Profile {
                name: args.name,
                endpoint: args.endpoint,
                mode,
                access_key: args.access_key,
                username: args.username,
                skip_tls_verify: args.skip_tls_verify,
                ca_file: args.ca_file,
                // The environment's proxy; the desktop app sets one per profile.
                proxy: None,
            };
            profile.validate()?;
            let prompt = match mode {
                AuthMode::Api => "Secret key: ",
                AuthMode::Session => "Password: ",
            };
            let secret = read_secret(prompt)?;
            let name = profile.name.clone();
            store.add(profile, &secret, &secrets)?;
            println!("Saved profile {name:?} (secret in the OS keychain).");
        }
        Command::List { json } => {
            let file = store.load()?;
            if json {
                let text = serde_json::to_string(&file.profiles)
                    .map_err(|e| CliError::Usage(e.to_string()))?;
                println!("{text}");
            } else if file.profiles.is_empty() {
                println!(
                    "No profiles. Add one with `porthole profile add NAME --endpoint URL ...`."
                );
            } else {
                for p in &file.profiles {
                    let mark = if file.active.as_deref() == Some(&p.name) {
                        "*"
                    } else {
                        " "
                    };
                    let who = p
                        .access_key
                        .as_deref()
                        .or(p.username.as_deref())
                        .unwrap_or("");
                    let mode = match p.mode {
                        AuthMode::Api => "api",
                        AuthMode::Session => "session",
                    };
                    println!("{mark} {}  {}  {mode}  {who}", p.name, p.endpoint);
                }
            }
        }
        Command::Remove { name } => {
            store.remove(&name, &secrets)?;
            println!("Removed profile {name:?} and its secret.");
        }
        Command::Use { name } => {
            store.set_active(&name)?;
            println!("Using profile {name:?}.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_secret(prompt: &str) -> Result<String, CliError> {
    let secret = if io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)
            .map_err(|e| CliError::Usage(format!("cannot read the secret: {e}")))?
    } else {
        let mut line = String::new();
        io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Usage(format!("cannot read the secret from stdin: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if secret.is_empty() {
        return Err(CliError::Usage("the secret is empty".into()));
    }
    Ok(secret)
}
