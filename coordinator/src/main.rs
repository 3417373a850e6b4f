//! `tq-coordinator`: the shared service start-up around [`tq_coordinator::run`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tq_coordinator::{CoordinatorError, run};
use tq_wire::process::{CommonArgs, service_main};

// The rule-breaking simulation build must never reach a service binary.
const _: () = assert!(
    !tq_protocol::DANGER_BUGS_COMPILED,
    "tq-coordinator must not be built with danger-inject-bugs"
);

// Debug builds may carry the secret recorder (`cargo nextest run --workspace` unifies the
// test harness's features into them); it records nothing unless a harness switches it on.
// A release build must not carry it at all.
const _: () = assert!(
    !(tq_protocol::DANGER_RECORD_SECRETS_COMPILED && !cfg!(debug_assertions)),
    "tq-coordinator must not be built in release with danger-record-secrets"
);

/// The tq coordinator: deals new configurations of the cluster secret to the node agents,
/// decides commits, tracks stale nodes, and serves the control plane over mTLS.
///
/// Exit status: 0 after SIGINT/SIGTERM, 64 on a bad configuration or TLS file, 74 when the
/// ledger will not open, fails its check, or a write fails; 1 otherwise.
///
/// For fault tests only, TQ_FAILPOINTS arms named failpoints (a crash or a failed write at a
/// named place; the process logs a warning at start when any is armed, and exits 64 on a
/// value that does not parse).
#[derive(Parser)]
#[command(name = "tq-coordinator", version)]
struct Args {
    /// The TOML configuration file (see README, "Configuration reference").
    #[arg(long, short, env = "TQ_COORDINATOR_CONFIG")]
    config: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    service_main(
        "tq-coordinator",
        &args.config,
        args.common,
        |config, log, ready_file, shutdown| {
            run(config, log, move |ready| ready_file.write(ready.listen), shutdown)
        },
        |e| match e {
            CoordinatorError::Config(_) | CoordinatorError::Tls(_) => 64,
            CoordinatorError::Store(_) | CoordinatorError::Ledger(_) => 74,
            _ => 1,
        },
    )
}
