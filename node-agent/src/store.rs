//! The agent's durable state in sled (DESIGN §7): each transition is one transaction across
//! the trees, made durable ([`Durable::sync`]) before any reply that depends on it. A store
//! that will not open, or whose contents fail their check, is never used.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Transactional, Tree};
use tq_protocol::codec::{Reader, Writer};
use tq_protocol::crypto::legacy::{LegacyPackage, LegacyShare};
use tq_protocol::node::{NodeChange, NodeState};
use tq_protocol::{ClusterId, Configuration, Digest, Epoch, NodeId, Share, ShareIndex, Threshold};
use tq_wire::durable::{Durable, StoreError};
use tq_wire::failpoint::{Failpoints, Point};
use zeroize::Zeroizing;

const FORMAT: u8 = 1;

/// The agent's sled database.
#[derive(Debug)]
pub struct Store {
    d: Durable,
    meta: Tree,
    configs: Tree,
    shares: Tree,
    committed: Tree,
    address_book: Tree,
}

fn key(e: Epoch) -> [u8; 8] {
    e.get().to_be_bytes()
}

impl Store {
    /// Opens `path` for `node` of `cluster`. A missing or empty directory starts a new node;
    /// anything else must open and be this node's.
    pub fn open(path: &Path, cluster: &ClusterId, node: &NodeId) -> Result<Store, StoreError> {
        let identity = [&[FORMAT][..], cluster.as_bytes(), node.as_str().as_bytes()].concat();
        let d = Durable::open(path, &identity, "tq agent store")?;
        Ok(Store {
            meta: d.tree("meta")?,
            configs: d.tree("configs")?,
            shares: d.tree("shares")?,
            committed: d.tree("committed")?,
            address_book: d.tree("address_book")?,
            d,
        })
    }

    /// Routes protocol writes through the `agent-persist` failpoint.
    pub fn with_failpoints(mut self, failpoints: Failpoints) -> Store {
        self.d = self.d.with_failpoint(failpoints, Point::AgentPersist);
        self
    }

    fn write_err(&self, why: impl ToString) -> StoreError {
        self.d.write_err(why)
    }

    fn corrupt(&self, why: impl ToString) -> StoreError {
        self.d.corrupt(why)
    }

    /// Reads the whole protocol state (the node checks it when it restores).
    pub fn load(&self) -> Result<NodeState, StoreError> {
        let mut state = NodeState::default();
        for item in self.configs.iter() {
            let (k, v) = item.map_err(|e| self.corrupt(e))?;
            let config = Configuration::decode(&v)
                .map_err(|e| self.corrupt(format!("configuration: {e}")))?;
            if k.as_ref() != key(config.epoch()) {
                return Err(self.corrupt(format!(
                    "configuration for epoch {} stored under another key",
                    config.epoch()
                )));
            }
            state.configs.insert(config.epoch(), Arc::new(config));
        }
        for item in self.shares.iter() {
            let (k, v) = item.map_err(|e| self.corrupt(e))?;
            let e = epoch_key(&k).ok_or_else(|| self.corrupt("bad share key"))?;
            state.shares.insert(
                e,
                decode_share(&v).ok_or_else(|| self.corrupt(format!("share for epoch {e}")))?,
            );
        }
        for item in self.committed.iter() {
            let (k, _) = item.map_err(|e| self.corrupt(e))?;
            state.committed.insert(epoch_key(&k).ok_or_else(|| self.corrupt("bad commit key"))?);
        }
        if let Some(v) = self.meta.get("legacy").map_err(|e| self.corrupt(e))? {
            state.legacy =
                Some(decode_legacy(&v).ok_or_else(|| self.corrupt("legacy share package"))?);
        }
        if let Some(v) = self.meta.get("expunged").map_err(|e| self.corrupt(e))? {
            state.expunged = Some(epoch_key(&v).ok_or_else(|| self.corrupt("expunged marker"))?);
        }
        Ok(state)
    }

    /// Applies one change in one transaction and makes it durable. On error nothing may be
    /// acknowledged: the agent stops.
    pub fn apply(&self, change: &NodeChange) -> Result<(), StoreError> {
        self.d.begin_write()?;
        // Keys to discard on commit are read first: the transaction API cannot scan, and the
        // agent is the only writer.
        let commit_epoch = match change {
            NodeChange::Committed { epoch } => Some(*epoch),
            NodeChange::CaughtUp { config, .. } => Some(config.epoch()),
            _ => None,
        };
        let older: Vec<sled::IVec> = match commit_epoch {
            Some(e) => self
                .configs
                .range(..key(e))
                .keys()
                .chain(self.shares.range(..key(e)).keys())
                .collect::<Result<_, _>>()
                .map_err(|err| self.write_err(err))?,
            None => Vec::new(),
        };
        let res: Result<(), TransactionError<()>> =
            (&self.meta, &self.configs, &self.shares, &self.committed).transaction(
                |(meta, configs, shares, committed)| {
                    let put = |config: &Configuration,
                               share: &Share|
                     -> Result<(), ConflictableTransactionError<()>> {
                        configs.insert(&key(config.epoch()), config.encode())?;
                        shares.insert(&key(config.epoch()), encode_share(share).as_slice())?;
                        Ok(())
                    };
                    match change {
                        NodeChange::Prepared { config, share } => put(config, share)?,
                        NodeChange::CaughtUp { config, share } => put(config, share)?,
                        NodeChange::Expunged { epoch } => {
                            meta.insert("expunged", &key(*epoch))?;
                        }
                        NodeChange::Committed { .. } => {}
                    }
                    if let Some(e) = commit_epoch {
                        committed.insert(&key(e), &[])?;
                        for k in &older {
                            configs.remove(k)?;
                            shares.remove(k)?;
                        }
                        meta.remove("legacy")?;
                    }
                    Ok(())
                },
            );
        res.map_err(|e| self.write_err(format!("{e:?}")))?;
        self.d.sync()
    }

    /// Installs a legacy share package (§6.10), durably.
    pub fn install_legacy(&self, pkg: &LegacyPackage) -> Result<(), StoreError> {
        self.meta.insert("legacy", encode_legacy(pkg).as_slice()).map_err(|e| self.write_err(e))?;
        self.d.sync()
    }

    /// The persisted address book.
    pub fn address_book(&self) -> Result<BTreeMap<NodeId, String>, StoreError> {
        let mut out = BTreeMap::new();
        for item in self.address_book.iter() {
            let (k, v) = item.map_err(|e| self.corrupt(e))?;
            let id = std::str::from_utf8(&k)
                .ok()
                .and_then(|s| NodeId::new(s).ok())
                .ok_or_else(|| self.corrupt("address book key"))?;
            let addr =
                String::from_utf8(v.to_vec()).map_err(|_| self.corrupt("address book value"))?;
            out.insert(id, addr);
        }
        Ok(out)
    }

    /// Replaces the address book, durably.
    pub fn set_address_book(&self, book: &BTreeMap<NodeId, String>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for k in self.address_book.iter().keys() {
            batch.remove(k.map_err(|e| self.write_err(e))?);
        }
        for (id, addr) in book {
            batch.insert(id.as_str().as_bytes(), addr.as_bytes());
        }
        self.address_book.apply_batch(batch).map_err(|e| self.write_err(e))?;
        self.d.sync()
    }
}

fn epoch_key(k: &[u8]) -> Option<Epoch> {
    Epoch::new(u64::from_be_bytes(k.try_into().ok()?)).ok()
}

fn encode_share(s: &Share) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(34));
    v.extend_from_slice(&s.index().get().to_be_bytes());
    v.extend_from_slice(s.expose_value());
    v
}

fn decode_share(b: &[u8]) -> Option<Share> {
    let (x, y) = b.split_at_checked(2)?;
    let x = ShareIndex::new(u64::from(u16::from_be_bytes(x.try_into().ok()?))).ok()?;
    Share::from_bytes(x, y).ok()
}

fn encode_legacy(p: &LegacyPackage) -> Zeroizing<Vec<u8>> {
    let mut w = Writer::new();
    w.u16(p.threshold.get() as u16).bytes(p.share.expose()).u32(p.digests.len() as u32);
    for (id, d) in &p.digests {
        w.bytes(id.as_str().as_bytes()).fixed(&d.0);
    }
    Zeroizing::new(w.finish())
}

fn decode_legacy(b: &[u8]) -> Option<LegacyPackage> {
    let mut r = Reader::new(b);
    let k = usize::from(r.u16().ok()?);
    let share = LegacyShare::from_bytes(r.bytes().ok()?).ok()?;
    let n = r.u32().ok()? as usize;
    let mut digests = BTreeMap::new();
    for _ in 0..n {
        let id = NodeId::new(std::str::from_utf8(r.bytes().ok()?).ok()?).ok()?;
        digests.insert(id, Digest(r.fixed().ok()?));
    }
    r.finish().ok()?;
    Some(LegacyPackage { threshold: Threshold::new(k, n).ok()?, share, digests })
}
