//! What both service binaries do around their `run`: read the TOML file, apply flag
//! overrides, arm failpoints from `TQ_FAILPOINTS` (tests only), harden the process, start
//! logging and the runtime, stop on SIGINT/SIGTERM, and map failures to sysexits codes (64
//! bad configuration, 74 storage, 1 anything else).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use slog::Logger;

use crate::failpoint::Failpoints;
use crate::logging::{LogFormat, forward_tracing, logger, parse_level};

/// Logging settings (`[log]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `term` or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    #[serde(default = "info")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: LogFormat::Term, level: info() }
    }
}

fn info() -> String {
    "info".into()
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {why}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The file is not valid TOML for this schema.
    #[error("{path}: {why}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// A value is out of range.
    #[error("invalid {field}: {why}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// Why.
        why: String,
    },
}

/// Reads and parses a TOML configuration file.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Read { path: path.into(), why: e.to_string() })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.into(), why: e.to_string() })
}

/// A service's configuration, as far as the shared start-up needs it.
pub trait ServiceConfig: DeserializeOwned {
    /// `listen`, which `--listen` overrides.
    fn listen_mut(&mut self) -> &mut SocketAddr;
    /// `[log]`, which `--log-format` and `--log-level` override.
    fn log_mut(&mut self) -> &mut LogConfig;
    /// Checks every value (after the overrides).
    fn check(&self) -> Result<(), ConfigError>;
    /// The failpoints the service is started with (never from the file: `TQ_FAILPOINTS`).
    fn failpoints_mut(&mut self) -> &mut Failpoints;
}

/// The flags both services take besides `--config`.
#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    /// Override `listen`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Override `log.format` (term or json).
    #[arg(long)]
    pub log_format: Option<LogFormat>,
    /// Override `log.level` (error, warn, info, debug, trace).
    #[arg(long)]
    pub log_level: Option<String>,
    /// Write the bound address to this file once serving (for supervisors and scripts).
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
}

/// Tells whoever started the process where it listens.
#[derive(Debug)]
pub struct ReadyFile(Option<PathBuf>);

impl ReadyFile {
    /// Writes the bound address, if a ready file was asked for.
    pub fn write(self, listen: SocketAddr) {
        if let Some(path) = self.0 {
            // Written whole then renamed, so a reader never sees half an address.
            let tmp = path.with_extension("tmp");
            if std::fs::write(&tmp, format!("{listen}\n")).is_ok() {
                let _ = std::fs::rename(tmp, path);
            }
        }
    }
}

/// Runs a service binary's `main`: everything but the service itself, which `serve` starts
/// with the checked configuration, the logger, the ready file and the shutdown signal.
/// `exit_code` maps the service's error to a process exit code.
pub fn service_main<C, E, F>(
    name: &'static str,
    config_path: &Path,
    args: CommonArgs,
    serve: impl FnOnce(C, Logger, ReadyFile, Shutdown) -> F,
    exit_code: impl Fn(&E) -> u8,
) -> ExitCode
where
    C: ServiceConfig,
    E: std::fmt::Display,
    F: Future<Output = Result<(), E>>,
{
    crate::tls::install_crypto_provider();
    let hardening = crate::harden::harden();
    let mut config: C = match load_toml(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(64);
        }
    };
    if let Some(l) = args.listen {
        *config.listen_mut() = l;
    }
    if let Some(f) = args.log_format {
        config.log_mut().format = f;
    }
    if let Some(l) = args.log_level {
        config.log_mut().level = l;
    }
    if let Err(e) = config.check() {
        eprintln!("{name}: {e}");
        return ExitCode::from(64);
    }
    match Failpoints::from_env() {
        Ok(fp) => *config.failpoints_mut() = fp,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(64);
        }
    }
    let level = parse_level(&config.log_mut().level).unwrap_or(slog::Level::Info);
    let (log, guard) = logger(config.log_mut().format, level, name);
    forward_tracing(log.clone(), slog::Level::Warning.max(level));
    if config.failpoints_mut().any_armed() {
        slog::warn!(log, "FAILPOINTS ARMED: this process will crash or fail its writes on \
            purpose; unset TQ_FAILPOINTS unless this is a test"; "failpoints" => %config.failpoints_mut());
    }
    slog::info!(log, "process hardening"; "core_dumps_off" => hardening.core_dumps_off,
        "not_dumpable" => hardening.not_dumpable, "memory_locked" => hardening.memory_locked);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            slog::crit!(log, "cannot start the runtime"; "error" => %e);
            return ExitCode::FAILURE;
        }
    };
    let ready = ReadyFile(args.ready_file);
    match runtime.block_on(serve(config, log.clone(), ready, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            slog::crit!(log, "stopped on an error"; "error" => %e);
            // Flush the log before the message on stderr, so they do not interleave.
            drop(guard);
            eprintln!("{name}: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub type Shutdown = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

fn shutdown_signal() -> Shutdown {
    Box::pin(async {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
