//! `tq-agent`: the shared service start-up around [`tq_node_agent::run`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use tq_node_agent::import::{ImportError, Imported, import_legacy};
use tq_node_agent::{AgentConfig, AgentError, run};
use tq_wire::process::{CommonArgs, ConfigError, load_toml, service_main};

// The rule-breaking simulation build must never reach a service binary.
const _: () = assert!(
    !tq_protocol::DANGER_BUGS_COMPILED,
    "tq-agent must not be built with danger-inject-bugs"
);

// Debug builds may carry the secret recorder (`cargo nextest run --workspace` unifies the
// test harness's features into them); it records nothing unless a harness switches it on.
// A release build must not carry it at all.
const _: () = assert!(
    !(tq_protocol::DANGER_RECORD_SECRETS_COMPILED && !cfg!(debug_assertions)),
    "tq-agent must not be built in release with danger-record-secrets"
);

/// The tq node agent: holds this machine's share of the cluster secret, answers the
/// coordinator and its peers over mTLS, and serves derived keys on a local Unix socket.
///
/// Exit status: 0 after SIGINT/SIGTERM, 64 on a bad configuration or TLS file, 74 when the
/// store will not open, fails its check, or a write fails; 1 otherwise.
///
/// With --import-legacy it does not serve: it installs a legacy share package into the
/// store (the agent must be stopped), prints what it did and exits: 0 when installed or
/// already there, 65 when the package is refused (unreadable, open to group or others, not
/// valid, for another node, a different package already installed, or the node already
/// holds tq epochs), 64 and 74 as above.
///
/// For fault tests only, TQ_FAILPOINTS arms named failpoints (a crash or a failed write at a
/// named place; the process logs a warning at start when any is armed, and exits 64 on a
/// value that does not parse).
#[derive(Parser)]
#[command(name = "tq-agent", version)]
struct Args {
    /// The TOML configuration file (see README, "Configuration reference").
    #[arg(long, short, env = "TQ_AGENT_CONFIG")]
    config: PathBuf,
    /// Install this legacy share package file (DESIGN §6.10; format in README, "Upgrading
    /// from a legacy split") into the stopped agent's store, then exit.
    #[arg(long, value_name = "FILE")]
    import_legacy: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

fn import(config: &Path, file: &Path) -> ExitCode {
    // The share will be in memory: no core dump, no ptrace, as for the service.
    tq_wire::harden::harden();
    let res = load_toml::<AgentConfig>(config)
        // toml's message quotes the offending line: if the package was given as --config,
        // that line may be the share.
        .map_err(|e| match e {
            ConfigError::Parse { path, .. } => ConfigError::Parse {
                path,
                why: "not an agent configuration (--config takes agent.toml, \
                      --import-legacy the package)"
                    .into(),
            },
            e => e,
        })
        .map_err(ImportError::Config)
        .and_then(|c| import_legacy(&c, file).map(|done| (c, done)));
    match res {
        Ok((c, done)) => {
            let what = match done {
                Imported::Installed => "installed",
                Imported::AlreadyInstalled => "already installed",
            };
            println!(
                "tq-agent: legacy package for {} {what} in {}; once `tqctl upgrade-from-legacy` \
                 has committed, the store deletes its copy: delete {} then",
                c.node_id,
                c.state_dir.display(),
                file.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tq-agent: {e}");
            ExitCode::from(match e {
                ImportError::Config(_) => 64,
                ImportError::Open(_) | ImportError::Store(_) => 74,
                _ => 65,
            })
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(file) = &args.import_legacy {
        return import(&args.config, file);
    }
    service_main(
        "tq-agent",
        &args.config,
        args.common,
        |config, log, ready_file, shutdown| {
            run(config, log, move |ready| ready_file.write(ready.listen), shutdown)
        },
        |e| match e {
            AgentError::Config(_) | AgentError::Tls(_) => 64,
            AgentError::Store(_) | AgentError::State(_) => 74,
            _ => 1,
        },
    )
}
