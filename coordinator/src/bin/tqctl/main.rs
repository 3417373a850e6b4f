//! `tqctl`: the operator's command line for a tq cluster.

mod commands;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Operate a tq cluster: create its certificates, see its status, change its membership.
///
/// Every command but `certs init` talks to the coordinator over mTLS with the operator
/// certificate named in the cluster file (--cluster or TQ_CLUSTER).
#[derive(Parser)]
#[command(name = "tqctl", version)]
struct Cli {
    /// The cluster file (written by `certs init` or `tq-testbed up`).
    #[arg(long, global = true, env = "TQ_CLUSTER")]
    cluster: Option<PathBuf>,
    /// Print JSON instead of tables (one object; for `watch`, one per line).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Certificates for a new cluster.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// The cluster's status. Exit status: 0 nothing pending and no member stale, 2 an epoch
    /// is pending, 3 a member is stale, 1 error.
    Status,
    /// Every enrolled node agent.
    Nodes,
    /// Start a new configuration (new secret, new shares; earlier secrets carried forward).
    Reconfigure {
        /// The members, comma-separated node ids.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
        /// K: how many members rebuild the secret.
        #[arg(long)]
        threshold: u32,
        /// The latest committed epoch you expect (default: ask the coordinator).
        #[arg(long)]
        previous_epoch: Option<u64>,
        /// Wait until the epoch commits or aborts.
        #[arg(long)]
        wait: bool,
        /// How long to wait.
        #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Upgrade from a legacy split: prepare the first tq epoch carrying the legacy secret.
    UpgradeFromLegacy {
        /// The members, comma-separated node ids.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
        /// K.
        #[arg(long)]
        threshold: u32,
    },
    /// Abort the epoch in progress (it is skipped forever).
    Abort,
    /// Commit the preparing epoch now (manual commit policy; needs K acks).
    Commit,
    /// Print the status every time it changes.
    Watch,
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Create a CA and certificates for the coordinator, each node and an operator, and a
    /// cluster file pointing at them. Refuses to overwrite an existing CA.
    Init {
        /// Directory for the files (created).
        #[arg(long)]
        dir: PathBuf,
        /// The cluster id (a UUID; generated if omitted).
        #[arg(long)]
        cluster_id: Option<String>,
        /// The node ids, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        nodes: Vec<String>,
        /// The operator's name.
        #[arg(long, default_value = "admin")]
        operator: String,
        /// The coordinator's address, for the cluster file.
        #[arg(long, default_value = "127.0.0.1:7400")]
        coordinator: String,
    },
}

fn main() -> ExitCode {
    tq_wire::tls::install_crypto_provider();
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Certs {
            command: CertsCommand::Init { dir, cluster_id, nodes, operator, coordinator },
        } => commands::certs_init(&dir, cluster_id, &nodes, &operator, &coordinator, cli.json),
        other => {
            let Some(path) = cli.cluster else {
                eprintln!("tqctl: no cluster file: pass --cluster FILE or set TQ_CLUSTER");
                return ExitCode::from(64);
            };
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("tqctl: {e}");
                    return ExitCode::FAILURE;
                }
            };
            rt.block_on(async {
                let ctx = match commands::Ctx::new(&path, cli.json) {
                    Ok(c) => c,
                    Err(e) => return Err(e),
                };
                match other {
                    Command::Status => ctx.status().await,
                    Command::Nodes => ctx.nodes().await,
                    Command::Reconfigure { members, threshold, previous_epoch, wait, timeout } => {
                        ctx.reconfigure(members, threshold, previous_epoch, wait, timeout).await
                    }
                    Command::UpgradeFromLegacy { members, threshold } => {
                        ctx.upgrade(members, threshold).await
                    }
                    Command::Abort => ctx.abort().await,
                    Command::Commit => ctx.commit().await,
                    Command::Watch => ctx.watch().await,
                    Command::Certs { .. } => unreachable!("handled above"),
                }
            })
        }
    };
    match res {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("tqctl: {e}");
            ExitCode::FAILURE
        }
    }
}
