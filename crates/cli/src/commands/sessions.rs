//! `porthole sessions`: list sessions and their apps.

use std::process::ExitCode;

use porthole_core::api::ComputeSession;

use crate::target::{connect, CliError, Scope};

/// Arguments of `porthole sessions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON array instead of a table.
    #[arg(long)]
    json: bool,
    /// Include ended sessions (TERMINATED, CANCELLED, ERROR).
    #[arg(long)]
    all: bool,
}

/// Runs the command.
pub async fn run(scope: Scope<'_>, args: Args) -> Result<ExitCode, CliError> {
    let client = connect(scope).await?;
    let sessions = client.list_sessions(args.all).await?;
    if args.json {
        let json = serde_json::to_string(&sessions)
            .map_err(|e| CliError::Usage(format!("cannot encode the list: {e}")))?;
        println!("{json}");
    } else if sessions.is_empty() {
        println!(
            "No sessions on {}. Start one in the Backend.AI WebUI; it appears here.",
            client.endpoint()
        );
    } else {
        print!("{}", table(&sessions));
    }
    Ok(ExitCode::SUCCESS)
}

fn table(sessions: &[ComputeSession]) -> String {
    let rows: Vec<[String; 4]> = sessions
        .iter()
        .map(|s| {
            let apps = if s.is_running() {
                s.tunnellable_apps()
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                format!(
                    "(not running{})",
                    s.status_info
                        .as_deref()
                        .map(|i| format!(": {i}"))
                        .unwrap_or_default()
                )
            };
            [
                s.name.clone(),
                s.status.clone(),
                s.image.clone().unwrap_or_default(),
                apps,
            ]
        })
        .collect();
    let header = ["NAME", "STATUS", "IMAGE", "APPS"].map(str::to_owned);
    let widths: Vec<usize> = (0..3)
        .map(|i| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows.iter()) {
        out.push_str(&format!(
            "{:w0$}  {:w1$}  {:w2$}  {}\n",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        ));
    }
    out
}
