//! The leak scan (DESIGN §5): every captured log line searched for every secret, share,
//! derived key and dealing seed this test process made, in every form `recorded::scan`
//! knows. A leak is reported by test, service and line number, never by its bytes.

use std::fmt;

use tq_protocol::recorded::scan::{Form, Needles};
use tq_protocol::recorded::{Kind, recorded};

use super::logs::Captured;

/// One recorded value found in one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leak {
    /// `cluster` (the services' own logs) or `tracing` (tonic, h2, hyper).
    pub(crate) log: &'static str,
    /// 1-based, in the order written.
    pub(crate) line: usize,
    /// The logger's `service` and `node`.
    pub(crate) source: String,
    pub(crate) kind: Kind,
    pub(crate) form: Form,
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} log line {} ({}): a {} as {}",
            self.log,
            self.line,
            self.source,
            self.kind.name(),
            self.form
        )
    }
}

/// What one scan searched and found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Lines of the services' logs.
    pub(crate) lines: usize,
    /// Lines of the process's `tracing` events.
    pub(crate) tracing_lines: usize,
    /// Values searched for, by kind.
    pub(crate) searched: Vec<(Kind, usize)>,
    /// Values too short or too regular to search for (hand-made test values).
    pub(crate) skipped: usize,
    pub(crate) leaks: Vec<Leak>,
}

impl Scan {
    /// Values of `kind` searched for.
    pub(crate) fn searched(&self, kind: Kind) -> usize {
        self.searched.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n)
    }

    /// The one-line summary each test prints.
    pub(crate) fn summary(&self, test: &str) -> String {
        let values: Vec<String> =
            self.searched.iter().map(|(k, n)| format!("{}: {n}", k.name())).collect();
        format!(
            "tq-leak-scan {test}: {} lines + {} tracing lines; searched for {}; {} hand-made \
             values skipped; {} leaks",
            self.lines,
            self.tracing_lines,
            if values.is_empty() { "nothing".to_string() } else { values.join(", ") },
            self.skipped,
            self.leaks.len()
        )
    }
}

/// Searches every line of `cluster` and `tracing` for every value recorded so far, except
/// lines from `skip_source` (where a test of the scan leaks on purpose).
pub(crate) fn scan(cluster: &Captured, tracing: &Captured, skip_source: Option<&str>) -> Scan {
    let values = recorded();
    let needles = Needles::new(&values);
    let mut leaks = Vec::new();
    for (log, captured) in [("cluster", cluster), ("tracing", tracing)] {
        captured.with_lines(|lines| {
            for (i, l) in lines.iter().enumerate() {
                let line = i + 1;
                if skip_source == Some(l.source.as_str()) {
                    continue;
                }
                leaks.extend(needles.scan(&l.text).into_iter().map(|h| Leak {
                    log,
                    line,
                    source: l.source.clone(),
                    kind: h.kind,
                    form: h.form,
                }));
            }
        });
    }
    Scan {
        lines: cluster.len(),
        tracing_lines: tracing.len(),
        searched: Kind::ALL
            .into_iter()
            .map(|k| (k, needles.searched().get(&k).copied().unwrap_or(0)))
            .collect(),
        skipped: needles.skipped(),
        leaks,
    }
}
