//! The coordinator ledger in sled (DESIGN §7): one transaction per change, `flush()` and an
//! fsync of the data file before anything that depends on it (the commit decision is durable
//! before any Commit is sent). A ledger that will not open or fails its check is never used.

use std::path::Path;
use std::sync::Arc;

use sled::Transactional;
use sled::transaction::TransactionError;
use tq_protocol::coordinator::{AbortReason, KnownNode, Ledger, LedgerChange};
use tq_protocol::{ClusterId, Configuration, Digest, Epoch, NodeId};
use tq_wire::durable::{Durable, StoreError};
use tq_wire::failpoint::{Failpoints, Point};

const FORMAT: u8 = 1;

/// The coordinator's sled database and the ledger it holds.
#[derive(Debug)]
pub struct LedgerStore {
    d: Durable,
    meta: sled::Tree,
    committed: sled::Tree,
    aborted: sled::Tree,
    known: sled::Tree,
    former: sled::Tree,
    mirror: Ledger,
}

fn key(e: Epoch) -> [u8; 8] {
    e.get().to_be_bytes()
}

fn epoch_key(k: &[u8]) -> Option<Epoch> {
    Epoch::new(u64::from_be_bytes(k.try_into().ok()?)).ok()
}

impl LedgerStore {
    /// Opens `path` for `cluster`; a missing or empty directory starts a new ledger.
    pub fn open(path: &Path, cluster: &ClusterId) -> Result<LedgerStore, StoreError> {
        let identity = [&[FORMAT][..], cluster.as_bytes()].concat();
        let d = Durable::open(path, &identity, "tq ledger")?;
        let mut s = LedgerStore {
            meta: d.tree("meta")?,
            committed: d.tree("committed")?,
            aborted: d.tree("aborted")?,
            known: d.tree("known")?,
            former: d.tree("former_members")?,
            mirror: Ledger::new(*cluster),
            d,
        };
        s.mirror = s.read(*cluster)?;
        Ok(s)
    }

    /// Routes ledger writes through the `coordinator-persist` failpoint.
    pub fn with_failpoints(mut self, failpoints: Failpoints) -> LedgerStore {
        self.d = self.d.with_failpoint(failpoints, Point::CoordinatorPersist);
        self
    }

    fn corrupt(&self, why: impl ToString) -> StoreError {
        self.d.corrupt(why)
    }

    /// The ledger as stored (the coordinator checks it when it restores).
    pub fn ledger(&self) -> &Ledger {
        &self.mirror
    }

    fn read(&self, cluster: ClusterId) -> Result<Ledger, StoreError> {
        let mut l = Ledger::new(cluster);
        if let Some(v) = self.meta.get("highest").map_err(|e| self.corrupt(e))? {
            l.highest_epoch = Some(epoch_key(&v).ok_or_else(|| self.corrupt("highest epoch"))?);
        }
        if let Some(v) = self.meta.get("latest").map_err(|e| self.corrupt(e))? {
            let c = Configuration::decode(&v)
                .map_err(|e| self.corrupt(format!("latest configuration: {e}")))?;
            l.latest = Some(Arc::new(c));
        }
        for item in self.committed.iter() {
            let (k, v) = item.map_err(|e| self.corrupt(e))?;
            let e = epoch_key(&k).ok_or_else(|| self.corrupt("commit key"))?;
            l.committed.insert(
                e,
                Digest(v.as_ref().try_into().map_err(|_| self.corrupt("commit digest"))?),
            );
        }
        for item in self.aborted.iter() {
            let (k, v) = item.map_err(|e| self.corrupt(e))?;
            let e = epoch_key(&k).ok_or_else(|| self.corrupt("abort key"))?;
            l.aborted.insert(
                e,
                reason_from(v.first().copied()).ok_or_else(|| self.corrupt("abort reason"))?,
            );
        }
        for item in self.known.iter() {
            let (k, v) = item.map_err(|e| self.corrupt(e))?;
            let id = node(&k).ok_or_else(|| self.corrupt("known node id"))?;
            let (fresh, addr) = v.split_first().ok_or_else(|| self.corrupt("known node record"))?;
            let address =
                String::from_utf8(addr.to_vec()).map_err(|_| self.corrupt("known node address"))?;
            l.known.insert(id, KnownNode { address, fresh: *fresh == 1 });
        }
        for item in self.former.iter() {
            let (k, _) = item.map_err(|e| self.corrupt(e))?;
            l.former_members.insert(node(&k).ok_or_else(|| self.corrupt("former member id"))?);
        }
        Ok(l)
    }

    /// Applies one change in one transaction and makes it durable.
    pub fn apply(&mut self, change: &LedgerChange) -> Result<(), StoreError> {
        self.d.begin_write()?;
        let mut after = self.mirror.clone();
        after.apply(change);
        let res: Result<(), TransactionError<()>> =
            (&self.meta, &self.committed, &self.aborted, &self.known, &self.former).transaction(
                |(meta, committed, aborted, known, former)| {
                    if let Some(h) = after.highest_epoch {
                        meta.insert("highest", &key(h))?;
                    }
                    match change {
                        LedgerChange::EpochReserved(_) => {}
                        LedgerChange::Committed { config, .. } => {
                            committed.insert(&key(config.epoch()), &config.digest().0)?;
                            if let Some(latest) = &after.latest {
                                meta.insert("latest", latest.encode())?;
                            }
                            for id in config.members().keys() {
                                former.insert(id.as_str().as_bytes(), &[])?;
                            }
                            // Commits change who counts as freshly enrolled.
                            for (id, k) in &after.known {
                                known.insert(id.as_str().as_bytes(), known_record(k))?;
                            }
                        }
                        LedgerChange::Aborted { epoch, reason } => {
                            aborted.insert(&key(*epoch), &[reason_to(reason)])?;
                        }
                        LedgerChange::NodeEnrolled { node, .. } => {
                            if let Some(k) = after.known.get(node) {
                                known.insert(node.as_str().as_bytes(), known_record(k))?;
                            }
                        }
                    }
                    Ok(())
                },
            );
        res.map_err(|e| self.d.write_err(format!("{e:?}")))?;
        self.d.sync()?;
        self.mirror = after;
        Ok(())
    }
}

fn node(k: &[u8]) -> Option<NodeId> {
    NodeId::new(std::str::from_utf8(k).ok()?).ok()
}

fn known_record(k: &KnownNode) -> Vec<u8> {
    [&[u8::from(k.fresh)][..], k.address.as_bytes()].concat()
}

fn reason_to(r: &AbortReason) -> u8 {
    match r {
        AbortReason::Operator => 1,
        AbortReason::Timeout => 2,
        AbortReason::CoordinatorRestarted => 3,
        AbortReason::ShareCollectionFailed => 4,
    }
}

fn reason_from(b: Option<u8>) -> Option<AbortReason> {
    Some(match b? {
        1 => AbortReason::Operator,
        2 => AbortReason::Timeout,
        3 => AbortReason::CoordinatorRestarted,
        4 => AbortReason::ShareCollectionFailed,
        _ => return None,
    })
}
