//! The sled database under both services' stores (DESIGN §7): opened with the background
//! flusher off, checked against an identity record before anything is read, and made
//! durable by `flush()` then an fsync of sled's data file (sled's own flush uses
//! `sync_file_range`, which does not survive power loss, STACK.md).

use std::fs::File;
use std::path::{Path, PathBuf};

/// A store that cannot be used: the service must not start (or must stop).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled refused to open the directory.
    #[error("state directory {path} does not open: {why}")]
    Open {
        /// The directory.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The contents are damaged or belong to someone else.
    #[error("state directory {path} is inconsistent: {why}")]
    Corrupt {
        /// The directory.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// A write or its flush failed.
    #[error("writing state to {path} failed: {why}")]
    Write {
        /// The directory.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

/// An open, identity-checked sled database.
pub struct Durable {
    path: PathBuf,
    /// The database (for transactions across its trees).
    pub db: sled::Db,
    data_file: File,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Durable({})", self.path.display())
    }
}

impl Durable {
    /// Opens `path`. A missing or empty directory becomes a new store stamped with
    /// `identity`; anything else must carry exactly `identity` (`what` names the store in
    /// the error: "tq agent store", "tq ledger").
    pub fn open(path: &Path, identity: &[u8], what: &str) -> Result<Durable, StoreError> {
        let open_err = |why: String| StoreError::Open { path: path.into(), why };
        let is_new = match std::fs::read_dir(path) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(open_err(e.to_string())),
        };
        // Every write is made durable explicitly before it is relied on; the background
        // flusher would only add writes nobody waits for.
        let db = sled::Config::new()
            .path(path)
            .flush_every_ms(None)
            .open()
            .map_err(|e| open_err(e.to_string()))?;
        let data_file =
            File::open(path.join("db")).map_err(|e| open_err(format!("data file: {e}")))?;
        let d = Durable { path: path.into(), db, data_file };
        let meta = d.tree("meta")?;
        match meta.get("identity").map_err(|e| d.corrupt(e))? {
            Some(found) if found.as_ref() == identity => {}
            Some(_) => {
                return Err(d.corrupt(format!(
                    "it belongs to another node, cluster or format version ({what})"
                )));
            }
            None if is_new => {
                meta.insert("identity", identity).map_err(|e| open_err(e.to_string()))?;
                d.sync().map_err(|e| open_err(e.to_string()))?;
            }
            None => {
                return Err(d.corrupt(format!(
                    "it has data but no identity record (not a {what}, or damaged)"
                )));
            }
        }
        Ok(d)
    }

    /// Opens one tree.
    pub fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        self.db
            .open_tree(name)
            .map_err(|e| StoreError::Open { path: self.path.clone(), why: e.to_string() })
    }

    /// Makes everything written so far durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| self.write_err(e))?;
        self.data_file.sync_all().map_err(|e| self.write_err(e))
    }

    /// The store's contents fail a check.
    pub fn corrupt(&self, why: impl ToString) -> StoreError {
        StoreError::Corrupt { path: self.path.clone(), why: why.to_string() }
    }

    /// A write failed.
    pub fn write_err(&self, why: impl ToString) -> StoreError {
        StoreError::Write { path: self.path.clone(), why: why.to_string() }
    }
}
