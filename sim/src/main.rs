//! `tq-sim`: the simulation alone (`tq-testbed sim` and `replay` run the same code). It
//! builds from tq-protocol only, which makes a `--features danger-inject-bugs` build cheap.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(name = "tq-sim", version, about = "Simulate a tq cluster and replay its event logs")]
struct Cli {
    #[command(subcommand)]
    command: tq_sim::cli::Command,
}

fn main() -> ExitCode {
    tq_sim::cli::run(Cli::parse().command, "tq-sim")
}
