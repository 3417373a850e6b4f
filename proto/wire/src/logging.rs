//! Logging: slog to the terminal or as JSON lines, and tonic/h2/hyper's `tracing` events
//! forwarded into the same logger (no maintained crate does that, STACK.md).

use std::fmt::Write as _;

use slog::{Drain, Level, Logger, o};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, one line per record.
    #[default]
    Term,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "term" => Ok(LogFormat::Term),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log format must be term or json, not {other:?}")),
        }
    }
}

/// Parses "error", "warn", "info", "debug", "trace".
pub fn parse_level(s: &str) -> Result<Level, String> {
    match s {
        "error" => Ok(Level::Error),
        "warn" | "warning" => Ok(Level::Warning),
        "info" => Ok(Level::Info),
        "debug" => Ok(Level::Debug),
        "trace" => Ok(Level::Trace),
        other => Err(format!("log level must be error, warn, info, debug or trace, not {other:?}")),
    }
}

/// Keeps the asynchronous drain flushing; drop it last.
pub struct LogGuard(#[allow(dead_code)] slog_async::AsyncGuard);

/// The root logger for a process, writing to stderr.
pub fn logger(format: LogFormat, level: Level, process: &'static str) -> (Logger, LogGuard) {
    let drain: Box<dyn Drain<Ok = (), Err = slog::Never> + Send> = match format {
        LogFormat::Term => {
            let d =
                slog_term::FullFormat::new(slog_term::PlainSyncDecorator::new(std::io::stderr()))
                    .build();
            Box::new(d.fuse())
        }
        LogFormat::Json => Box::new(slog_json::Json::default(std::io::stderr()).fuse()),
    };
    // Records are dropped (and the drop reported) only under a flood: at info level the
    // largest burst is one line per node enrolling (1 024 in a mesh), and a rotation logs
    // about four. The channel's slots are allocated and touched up front (104 bytes each):
    // 65 536 of them were 6.5 MB of every process's resident memory (BENCHMARKS.md).
    let (drain, guard) = slog_async::Async::new(drain).chan_size(8_192).build_with_guard();
    // Filtered before the channel, not behind it: release builds keep debug records, and
    // each one (several per RPC) was copied, sent and woke the log thread only to be
    // dropped there.
    let drain = slog::LevelFilter::new(drain.fuse(), level).ignore_res();
    (Logger::root(drain, o!("process" => process)), LogGuard(guard))
}

/// Sends `tracing` events (tonic, h2, hyper, rustls via log) at `level` or above to `log`.
pub fn forward_tracing(log: Logger, level: Level) {
    let layer = SlogLayer { log, level };
    // The level filter tells `tracing` which callsites are off, so the spans and events that
    // h2, hyper and tonic make for every frame and request below `level` are never built.
    // Without it every one of them reached the registry and the layer only to be dropped:
    // several percent of the services' CPU under load (tq-testbed bench, BENCHMARKS.md).
    let filter = tracing_subscriber::filter::LevelFilter::from_level(tracing_level(level));
    let subscriber = tracing_subscriber::registry().with(filter).with(layer);
    // Err: a subscriber is installed already (tests): keep it.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

struct SlogLayer {
    log: Logger,
    level: Level,
}

fn tracing_level(l: Level) -> tracing::Level {
    match l {
        Level::Critical | Level::Error => tracing::Level::ERROR,
        Level::Warning => tracing::Level::WARN,
        Level::Info => tracing::Level::INFO,
        Level::Debug => tracing::Level::DEBUG,
        Level::Trace => tracing::Level::TRACE,
    }
}

fn slog_level(l: &tracing::Level) -> Level {
    match *l {
        tracing::Level::ERROR => Level::Error,
        tracing::Level::WARN => Level::Warning,
        tracing::Level::INFO => Level::Info,
        tracing::Level::DEBUG => Level::Debug,
        tracing::Level::TRACE => Level::Trace,
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SlogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = slog_level(meta.level());
        if !level.is_at_least(self.level) {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let target = meta.target();
        let text = format!("{}{}", f.message, f.rest);
        match level {
            Level::Critical | Level::Error => {
                slog::error!(self.log, "{}", text; "target" => target)
            }
            Level::Warning => slog::warn!(self.log, "{}", text; "target" => target),
            Level::Info => slog::info!(self.log, "{}", text; "target" => target),
            Level::Debug => slog::debug!(self.log, "{}", text; "target" => target),
            Level::Trace => slog::trace!(self.log, "{}", text; "target" => target),
        }
    }
}
