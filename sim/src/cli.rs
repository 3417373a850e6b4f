//! The `sim` and `replay` commands, shared by the `tq-sim` binary and `tq-testbed`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::bugs::{Bug, NAMES};
use crate::run::{Shape, SimArgs};

#[derive(Subcommand)]
pub enum Command {
    /// Run random cases of the deterministic cluster simulation and check DESIGN §9's
    /// invariants after every event. Exits 0 only when no invariant broke.
    Sim {
        /// How many cases.
        #[arg(long, default_value_t = 100)]
        cases: u64,
        /// The run's seed: every random choice derives from it.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print the summary as one JSON object on the last line.
        #[arg(long)]
        json: bool,
        /// Break a rule on purpose (needs the danger-inject-bugs feature).
        #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(NAMES))]
        inject_bug: Option<String>,
        /// Most nodes in a case (coordinator not counted).
        #[arg(long, default_value_t = 16)]
        max_nodes: usize,
        /// Fewest random actions per case (before the liveness phase).
        #[arg(long, default_value_t = 300)]
        min_actions: usize,
        /// Most random actions per case.
        #[arg(long, default_value_t = 2000)]
        max_actions: usize,
        /// Where failing cases' event logs go.
        #[arg(long, default_value = "target/sim-failures")]
        log_dir: PathBuf,
    },
    /// Step through an event log written by `sim`, printing each event and what it changed.
    Replay {
        /// The log.
        log: PathBuf,
        /// Stop after this event.
        #[arg(long)]
        until: Option<u64>,
    },
}

/// Runs `cmd`; `prog` prefixes error messages.
pub fn run(cmd: Command, prog: &str) -> ExitCode {
    match cmd {
        Command::Sim {
            cases,
            seed,
            json,
            inject_bug,
            max_nodes,
            min_actions,
            max_actions,
            log_dir,
        } => {
            let args = SimArgs {
                cases,
                seed,
                shape: Shape { max_nodes, min_actions, max_actions },
                bug: inject_bug,
                log_dir,
                quiet: false,
            };
            if let Some(b) = &args.bug
                && let Err(e) = Bug::parse(b)
            {
                eprintln!("{prog}: {e}");
                return ExitCode::from(64);
            }
            match crate::run::run(&args) {
                Ok(summary) => print_summary(&summary, json, summary["violations"] == 0),
                Err(e) => {
                    eprintln!("{prog}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Replay { log, until } => match crate::replay::replay(&log, until) {
            Ok(0) => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("{prog}: {e}");
                ExitCode::from(66)
            }
        },
    }
}

/// Prints a run's summary (one JSON line with --json, else indented); exits 0 when `ok`.
pub fn print_summary(summary: &serde_json::Value, json: bool, ok: bool) -> ExitCode {
    if json {
        println!("{summary}");
    } else {
        println!("{}", serde_json::to_string_pretty(summary).unwrap_or_default());
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
