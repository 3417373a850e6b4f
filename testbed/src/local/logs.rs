//! Searching a local cluster's logs (`D/logs/*.log`, each process's stdout and stderr) for
//! what must never be there: a panic, which the default hook writes to stderr while the
//! process may go on serving (a panicking tokio task does not stop it), and any value the
//! caller holds that derives from a secret, in every form `recorded::scan` knows (DESIGN §5).

use std::path::Path;

use serde_json::{Value, json};
use tq_protocol::recorded::Recorded;
use tq_protocol::recorded::scan::Needles;

/// The default panic hook's first line: `thread 'name' (tid) panicked at src/file.rs:1:2:`
/// (before Rust 1.91, without the thread id).
const PANIC: &str = " panicked at ";

/// What one search of the logs read and found.
#[derive(Debug, Default)]
pub struct LogScan {
    pub files: usize,
    pub lines: usize,
    /// Values searched for (those too short or regular to search are not counted).
    pub searched: usize,
    /// `node-3.log line 12: …`: where, and what, never the bytes of a value.
    pub findings: Vec<String>,
}

impl LogScan {
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "files": self.files,
            "lines": self.lines,
            "values_searched": self.searched,
            "findings": self.findings,
        })
    }
}

/// Reads every `*.log` in `dir` and searches each line for a panic and for `values`.
pub fn scan(dir: &Path, values: &[Recorded]) -> Result<LogScan, String> {
    let needles = Needles::new(values);
    let mut out = LogScan { searched: needles.searched().values().sum(), ..LogScan::default() };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    paths.sort();
    for path in paths {
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        out.files += 1;
        for (i, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
            out.lines += 1;
            // The hook's first line holds only the thread and the location; the message,
            // which could hold anything, is on the next line and is not repeated here.
            if let Some(at) = line.find(PANIC).filter(|_| line.starts_with("thread '")) {
                let location = line[at + PANIC.len()..].chars().take(120).collect::<String>();
                out.findings.push(format!("{name} line {}: a panic at {location}", i + 1));
            }
            for hit in needles.scan(line) {
                out.findings.push(format!(
                    "{name} line {}: a {} as {}",
                    i + 1,
                    hit.kind.name(),
                    hit.form
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tq_protocol::recorded::Kind;

    #[test]
    fn finds_a_panic_and_a_held_value_in_any_log_section_5() {
        let dir = std::env::temp_dir().join(format!("tq-logscan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
        let quiet = "Dec 03 09:00:00.000 WARN a peer's handler panicked at its end, node: node-1\n";
        std::fs::write(dir.join("node-1.log"), quiet).unwrap();
        std::fs::write(dir.join("notes.txt"), "thread 'x' panicked at a.rs:1:1:\n").unwrap();
        let clean = scan(&dir, &[Recorded::new(Kind::DerivedKey, &key)]).unwrap();
        assert!(clean.ok(), "{:?}", clean.findings);
        assert_eq!((clean.files, clean.lines, clean.searched), (1, 1, 1));

        let bad = format!(
            "{quiet}thread 'tokio-rt-worker' (5971) panicked at node-agent/src/x.rs:3:9:\nboom\n\
             DEBUG derived, key: {}\nthread 'main' panicked at src/main.rs:1:1:\n",
            hex::encode(&key)
        );
        std::fs::write(dir.join("node-2.log"), bad).unwrap();
        let found = scan(&dir, &[Recorded::new(Kind::DerivedKey, &key)]).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(found.files, 2);
        assert_eq!(
            found.findings,
            [
                "node-2.log line 2: a panic at node-agent/src/x.rs:3:9:",
                "node-2.log line 4: a derived key as hex",
                "node-2.log line 5: a panic at src/main.rs:1:1:",
            ]
        );
        assert!(found.findings.iter().all(|f| !f.contains(&hex::encode(&key))));
    }
}
