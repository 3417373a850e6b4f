//! Every log record of the services a test starts, kept in memory for the leak scan
//! (DESIGN §5: secrets never appear in logs). Records are kept at every level, trace
//! included, whatever `TQ_IT_LOG` prints; tonic's, h2's and hyper's `tracing` events are
//! forwarded into a process-wide capture through the services' own forwarding layer.

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, OnceLock};

use slog::{Drain, Key, Logger, Never, OwnedKVList, Record, Serializer, o};

/// One record as one line: level, message, then every key-value, the logger's included.
pub(crate) struct Line {
    /// `service` and `node` of the logger that wrote it (`agent n3`), to say where a leak is.
    pub(crate) source: String,
    pub(crate) text: String,
}

/// A drain that keeps every record.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<Line>>>);

impl Captured {
    /// Runs `f` over every line kept so far (numbered from 1, in the order written).
    pub(crate) fn with_lines<T>(&self, f: impl FnOnce(&[Line]) -> T) -> T {
        f(&self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    pub(crate) fn len(&self) -> usize {
        self.with_lines(<[Line]>::len)
    }
}

impl Drain for Captured {
    type Ok = ();
    type Err = Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), Never> {
        let mut line = LineWriter::default();
        let _ = write!(line.text, "{} {}", record.level().as_short_str(), record.msg());
        let _ = slog::KV::serialize(&record.kv(), record, &mut line);
        let _ = slog::KV::serialize(values, record, &mut line);
        let source = [line.service, line.node].into_iter().flatten().collect::<Vec<_>>().join(" ");
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Line { source, text: line.text });
        Ok(())
    }
}

#[derive(Default)]
struct LineWriter {
    text: String,
    service: Option<String>,
    node: Option<String>,
}

impl Serializer for LineWriter {
    fn emit_arguments(&mut self, key: Key, val: &fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.text, ", {key}: {val}");
        match key {
            "service" => self.service = Some(val.to_string()),
            "node" => self.node = Some(val.to_string()),
            _ => {}
        }
        Ok(())
    }
}

/// The root logger for a cluster's services: everything into `captured`, and to stderr at
/// `TQ_IT_LOG`'s level when it is set.
pub(crate) fn capturing_logger(captured: &Captured) -> Logger {
    match std::env::var("TQ_IT_LOG") {
        Ok(level) => {
            let level = tq_wire::logging::parse_level(&level).unwrap_or(slog::Level::Debug);
            let (term, guard) =
                tq_wire::logging::logger(tq_wire::logging::LogFormat::Term, level, "it");
            // The guard flushes on drop; a test process may keep it.
            std::mem::forget(guard);
            Logger::root(slog::Duplicate::new(captured.clone(), term).fuse(), o!())
        }
        Err(_) => Logger::root(captured.clone(), o!()),
    }
}

/// The `tracing` events of this process, at every level. `tracing` has one global
/// subscriber, so every cluster of the process shares this capture.
pub(crate) fn tracing_capture() -> &'static Captured {
    static TRACING: OnceLock<Captured> = OnceLock::new();
    TRACING.get_or_init(|| {
        let captured = Captured::default();
        let log = capturing_logger(&captured).new(o!("service" => "tracing"));
        tq_wire::logging::forward_tracing(log, slog::Level::Trace);
        captured
    })
}
