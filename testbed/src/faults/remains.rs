//! What a process that a failpoint stopped left behind, read while it is down: its store
//! (what it made durable of the interrupted epoch) and its log (did the point strike, what
//! does an operator read last).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tq_protocol::{ClusterId, Epoch, NodeId};

use crate::local::COORDINATOR;

/// What a store holds of one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Held {
    /// An agent: nothing of it.
    Nothing,
    /// An agent: its configuration and share, not committed.
    Prepared,
    /// An agent: committed.
    Committed,
    /// An agent: a configuration without its share, or the reverse (never right).
    Torn,
    /// The coordinator: the epoch is reserved, no commit decision.
    Reserved,
    /// The coordinator: the commit decision.
    Decided,
}

impl Held {
    pub(super) fn name(self) -> String {
        format!("{self:?}").to_lowercase()
    }
}

/// What `victim`'s store in `dir` holds of `epoch` (for the coordinator, of the highest epoch
/// it reserved when `epoch` is unknown: it may die before answering). Opening it does what
/// the victim's own next start would: at most, bring its seal up to date.
pub(super) fn held(
    dir: &Path,
    cluster: &ClusterId,
    victim: &str,
    epoch: Option<u64>,
) -> Result<(u64, Held), String> {
    if victim == COORDINATOR {
        let store =
            tq_coordinator::store::LedgerStore::open(dir, cluster).map_err(|e| e.to_string())?;
        let ledger = store.ledger();
        let e = epoch.or(ledger.highest_epoch.map(|h| h.get())).unwrap_or_default();
        let held = match Epoch::new(e) {
            Ok(ep) if ledger.committed.contains_key(&ep) => Held::Decided,
            _ if ledger.highest_epoch.is_some_and(|h| h.get() >= e) => Held::Reserved,
            _ => Held::Nothing,
        };
        return Ok((e, held));
    }
    let e = epoch.ok_or("the reconfiguration was not answered")?;
    let ep = Epoch::new(e).map_err(|err| err.to_string())?;
    let node = NodeId::new(victim).map_err(|err| err.to_string())?;
    let store =
        tq_node_agent::store::Store::open(dir, cluster, &node).map_err(|err| err.to_string())?;
    let state = store.load().map_err(|err| err.to_string())?;
    let held = match (state.configs.contains_key(&ep), state.shares.contains_key(&ep)) {
        _ if state.committed.contains(&ep) => Held::Committed,
        (true, true) => Held::Prepared,
        (false, false) => Held::Nothing,
        _ => Held::Torn,
    };
    Ok((e, held))
}

/// How many times `line` occurs in the log.
pub(super) fn count(log: &Path, line: &str) -> usize {
    std::fs::read_to_string(log).map_or(0, |t| t.matches(line).count())
}

/// The log's last line.
pub(super) fn last_line(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().to_string()
}

/// Every file under a directory, with its bytes.
pub(super) type Snapshot = BTreeMap<PathBuf, Vec<u8>>;

/// A snapshot once the directory stopped changing (two reads 150 ms apart agree).
pub(super) async fn settled_snapshot(dir: &Path) -> Snapshot {
    let mut last = snapshot(dir);
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let now = snapshot(dir);
        if now == last {
            break;
        }
        last = now;
    }
    last
}

/// Every file under `dir`, with its bytes.
pub(super) fn snapshot(dir: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    out
}
