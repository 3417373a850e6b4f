//! `tq-testbed agent-host`: several agents in one process, for meshes larger than two cores
//! can run as separate processes (`tq-testbed bench --nodes 256`). Each agent is the real
//! [`tq_node_agent::run`] with its own configuration, sled store, TLS identity, listener and
//! key socket; they share only the process, its tokio runtime and its log. A fault of one is
//! a fault of all: the first agent to stop on an error stops the host.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use slog::{crit, info};
use tokio::sync::watch;
use tq_node_agent::AgentConfig;
use tq_wire::logging::{LogFormat, forward_tracing, logger};
use tq_wire::process::{ServiceConfig, load_toml};

/// Runs one agent per (configuration, ready file) pair until SIGTERM or SIGINT.
pub fn main(agents: &[(PathBuf, PathBuf)]) -> ExitCode {
    tq_wire::tls::install_crypto_provider();
    let hardening = tq_wire::harden::harden();
    let mut configs = Vec::with_capacity(agents.len());
    for (path, ready) in agents {
        match load_toml::<AgentConfig>(path).map(|c| c.check().map(|()| c)) {
            Ok(Ok(c)) => configs.push((c, ready.clone())),
            Ok(Err(e)) | Err(e) => {
                eprintln!("tq-testbed agent-host: {}: {e}", path.display());
                return ExitCode::from(64);
            }
        }
    }
    let (log, _guard) = logger(LogFormat::Term, slog::Level::Info, "agent-host");
    forward_tracing(log.clone(), slog::Level::Warning);
    info!(log, "hosting agents in one process"; "agents" => configs.len(),
        "core_dumps_off" => hardening.core_dumps_off, "not_dumpable" => hardening.not_dumpable);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            crit!(log, "cannot start the runtime"; "error" => %e);
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        for (config, ready) in configs {
            let (log, mut stopped) = (log.clone(), stopped.clone());
            let shutdown = Box::pin(async move {
                let _ = stopped.wait_for(|s| *s).await;
            });
            tasks.spawn(tq_node_agent::run(
                config,
                log,
                move |r| write_ready(&ready, &r.listen.to_string()),
                shutdown,
            ));
        }
        let failed = tokio::select! {
            () = terminated() => None,
            Some(r) = tasks.join_next() => Some(r),
        };
        let _ = stop.send(true);
        let code = match failed {
            None => ExitCode::SUCCESS,
            Some(r) => {
                let why = match r {
                    Ok(Ok(())) => "an agent stopped".to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                };
                crit!(log, "an agent stopped: stopping the host"; "error" => why);
                ExitCode::FAILURE
            }
        };
        while tasks.join_next().await.is_some() {}
        code
    })
}

/// Resolves on SIGTERM or SIGINT (never, if they cannot be handled: SIGKILL still works).
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut t), Ok(mut i)) => tokio::select! {
            _ = t.recv() => {}
            _ = i.recv() => {}
        },
        _ => std::future::pending().await,
    }
}

/// Written whole then renamed, as the services' `--ready-file`.
fn write_ready(path: &Path, addr: &str) {
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, format!("{addr}\n")).is_ok() {
        let _ = std::fs::rename(tmp, path);
    }
}
