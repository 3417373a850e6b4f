//! `tq-agent --import-legacy FILE`: installs a legacy share package (DESIGN §6.10) into a
//! stopped agent's store, so `tqctl upgrade-from-legacy` can collect it. Offline on purpose:
//! the store is locked by a running agent, and a package arriving under a live protocol
//! state would be a transition no Prepare or Commit made.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tq_protocol::crypto::legacy::LegacyPackage;
use tq_protocol::{Epoch, NodeId};
use tq_wire::durable::StoreError;
use zeroize::Zeroizing;

use crate::config::AgentConfig;
use crate::legacy_file::{self, PackageFileError};
use crate::store::Store;

/// Far above any package (255 holders), far below what reading could strain.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// The package is now in the store.
    Installed,
    /// The store already held this very package.
    AlreadyInstalled,
}

/// Why a package was not imported. The store is untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] tq_wire::process::ConfigError),
    /// The file cannot be read.
    #[error("cannot read {path}: {why}")]
    Read {
        /// The package file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// Others may read the share.
    #[error(
        "{path} is open to group or others (mode {mode:o}); it holds a secret share: \
         chmod 600 it, and check who has copied it"
    )]
    Exposed {
        /// The package file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a valid package for this agent.
    #[error("{path}: {error}")]
    Package {
        /// The package file.
        path: PathBuf,
        /// What is wrong.
        error: PackageFileError,
    },
    /// The store already holds another package.
    #[error("the store already holds a different legacy package for {0}; refusing to replace it")]
    Different(NodeId),
    /// The node has started tq: a legacy share no longer has a place.
    #[error(
        "{node} already holds tq state (epochs {epochs}): legacy packages are only for a cluster \
         that has not upgraded yet"
    )]
    Upgraded {
        /// This node.
        node: NodeId,
        /// The epochs it holds.
        epochs: String,
    },
    /// The store will not open: most often a running agent holds it.
    #[error("{0} (is the agent still running? stop it first)")]
    Open(StoreError),
    /// The store is damaged, or the write failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Imports the package at `file` into the store `config` names.
pub fn import_legacy(config: &AgentConfig, file: &Path) -> Result<Imported, ImportError> {
    let me = config.validate()?;
    let text = read_private(file)?;
    let pkg = legacy_file::parse(&text, &me.node)
        .map_err(|error| ImportError::Package { path: file.into(), error })?;
    let store = Store::open(&config.state_dir, &me.cluster, &me.node).map_err(|e| match e {
        StoreError::Open { .. } | StoreError::InUse { .. } => ImportError::Open(e),
        e => ImportError::Store(e),
    })?;
    let state = store.load()?;
    if let Some(held) = &state.legacy {
        return if same(held, &pkg) {
            Ok(Imported::AlreadyInstalled)
        } else {
            Err(ImportError::Different(me.node))
        };
    }
    let epochs: BTreeSet<Epoch> =
        state.configs.keys().chain(&state.committed).chain(&state.expunged).copied().collect();
    if !epochs.is_empty() {
        let epochs: Vec<String> = epochs.iter().map(Epoch::to_string).collect();
        return Err(ImportError::Upgraded { node: me.node, epochs: epochs.join(", ") });
    }
    store.install_legacy(&pkg)?;
    Ok(Imported::Installed)
}

/// Reads `file` if it is a regular file no one but its owner may read or write, checked
/// on the handle it is read through (a file swapped in after the check is not read).
fn read_private(file: &Path) -> Result<Zeroizing<String>, ImportError> {
    let read = |why: String| ImportError::Read { path: file.into(), why };
    let io = |e: std::io::Error| read(e.to_string());
    // Checked before opening too: opening a FIFO would wait for a writer.
    let before = std::fs::metadata(file).map_err(io)?;
    if !before.is_file() {
        return Err(read("not a regular file".into()));
    }
    let mut f = std::fs::File::open(file).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    if (meta.dev(), meta.ino()) != (before.dev(), before.ino()) {
        return Err(read("it was replaced while being opened".into()));
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(ImportError::Exposed { path: file.into(), mode: mode & 0o7777 });
    }
    let mut text =
        Zeroizing::new(String::with_capacity(meta.len().min(MAX_FILE_BYTES) as usize + 1));
    (&mut f).take(MAX_FILE_BYTES + 1).read_to_string(&mut text).map_err(io)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(read(format!(
            "over {MAX_FILE_BYTES} bytes; a package of 255 holders is under 40 KB"
        )));
    }
    Ok(text)
}

fn same(a: &LegacyPackage, b: &LegacyPackage) -> bool {
    a.threshold == b.threshold && a.digests == b.digests && a.share.digest() == b.share.digest()
}
