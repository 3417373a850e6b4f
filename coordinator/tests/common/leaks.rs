//! The leak scan (DESIGN §5): every captured log line searched for every secret, share,
//! derived key and dealing seed this test process made, in every form `recorded::scan`
//! knows. A leak is reported by test, service and line number, never by its bytes.

use std::fmt;

use tq_protocol::recorded::scan::{Form, Needles};
use tq_protocol::recorded::{Kind, recorded};

use slog::{Logger, o};

use super::logs::{Captured, tracing_capture};

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

/// The leak scan of a cluster's captured logs.
impl super::Cluster {
    /// Searches every log line so far for every secret and share made so far.
    pub(crate) fn scan_logs(&self) -> Scan {
        scan(&self.logs, tracing_capture(), self.test_log_may_leak.then_some(TEST_LOG))
    }

    /// A logger into the services' captured log, for tests that write to it.
    pub(crate) fn test_log(&self) -> Logger {
        self.log.new(o!("service" => TEST_LOG))
    }

    /// Lines of the services' log so far.
    pub(crate) fn log_lines(&self) -> usize {
        self.logs.len()
    }

    /// How many lines so far came from `source` (`agent n3`, `coordinator`) and contain
    /// every one of `parts`.
    pub(crate) fn lines_with(&self, source: &str, parts: &[&str]) -> usize {
        self.logs.with_lines(|lines| {
            lines
                .iter()
                .filter(|l| l.source == source && parts.iter().all(|p| l.text.contains(p)))
                .count()
        })
    }

    /// Lets the final scan pass over the lines written through [`Cluster::test_log`], which
    /// a test of the scan leaks into on purpose.
    pub(crate) fn allow_leaks_in_test_log(&mut self) {
        self.test_log_may_leak = true;
    }

    /// The scan at the end of the test, once; prints its summary line.
    pub(super) fn final_scan(&mut self) -> Scan {
        self.scanned = true;
        let scan = self.scan_logs();
        eprintln!("{}", scan.summary(&self.test));
        scan
    }
}

/// The `service` of [`Cluster::test_log`].
const TEST_LOG: &str = "test";

pub(super) fn leak_report(test: &str, scan: &Scan) -> String {
    let mut r =
        format!("{test}: {} secret values found in the logs (DESIGN §5):", scan.leaks.len());
    for l in &scan.leaks {
        r.push_str(&format!("\n  {l}"));
    }
    r
}
