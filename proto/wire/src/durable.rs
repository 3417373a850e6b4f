//! The sled database under both services' stores (DESIGN §7): opened with the background
//! flusher off, checked against an identity record before anything is read, and made
//! durable by `flush()` then an fsync of sled's data file (sled's own flush uses
//! `sync_file_range`, which does not survive power loss, STACK.md).
//!
//! sled recovers a damaged log by keeping the longest valid prefix: a truncated data file or
//! a flipped bit silently takes the store back to an older state, often to no protocol state
//! at all, and it would open as if nothing happened. So every [`Durable::sync`] also counts
//! its write (`meta/seq`, written last) and then records that count in a seal file next to
//! sled's (`tq-seal`). On open the store must hold the sealed write, or the one after it (a
//! crash between the two fsyncs); anything older means durable writes were lost, and the
//! store fails closed.
//!
//! sled 0.34 writes a value over a quarter of its 512 KiB segment (a configuration of a
//! 1024-member mesh with long node ids, or with a long history of prior secrets) to a file
//! of its own under `blobs/`, which it never fsyncs: `sync` fsyncs each new one, and the
//! directory, before the data file that points to it.
//!
//! A store's protocol writes start with [`Durable::begin_write`], where a storage failpoint
//! (see [`crate::failpoint`]) can make the write fail through this same error path.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::failpoint::{Action, Failpoints, Point};

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
    /// Another process (or another open in this one) has the store open: sled holds an
    /// exclusive lock on its data file while it runs.
    #[error("state directory {path} is in use by another process")]
    InUse {
        /// The directory.
        path: PathBuf,
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

/// The seal file, in the state directory beside sled's files.
const SEAL: &str = "tq-seal";
/// The count of writes made durable, in the `meta` tree.
const SEQ: &str = "seq";

/// An open, identity-checked sled database.
pub struct Durable {
    path: PathBuf,
    /// The database (for transactions across its trees).
    pub db: sled::Db,
    data_file: File,
    meta: sled::Tree,
    seal: File,
    /// Writes made durable so far (what `meta/seq` and the seal hold).
    seq: AtomicU64,
    /// The storage failpoint this store's writes pass, if any.
    failpoint: Option<(Failpoints, Point)>,
    /// A failpoint struck with `fsync-eio`: the next fsync of the data file fails.
    fail_fsync: AtomicBool,
    /// The files under `blobs/` already fsynced (sled never rewrites one).
    synced_blobs: Mutex<Blobs>,
}

/// What [`Durable::sync_blobs`] last found under `blobs/`.
#[derive(Debug, Default)]
struct Blobs {
    synced: BTreeSet<OsString>,
    /// The directory's mtime at a listing made long enough after it that no entry added
    /// since can share it: while it is unchanged, nothing was added (one stat, not a listing,
    /// per write: a listing cost ~20 µs, a third of a persist on tmpfs).
    settled: Option<SystemTime>,
}

/// Longer than the coarsest timestamp granularity of a file system a store may be on
/// (FAT's 2 s; ext4 with 128-byte inodes 1 s), so that no file added after a listing can
/// carry the mtime that listing saw settled.
const SETTLE: Duration = Duration::from_secs(3);

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Durable({})", self.path.display())
    }
}

impl Durable {
    /// Opens `path`. A missing or empty directory, or one whose creation was killed before
    /// anything was stored in it, becomes a new store stamped with `identity`; anything else
    /// must carry exactly `identity` (`what` names the store in the error: "tq agent store",
    /// "tq ledger").
    pub fn open(path: &Path, identity: &[u8], what: &str) -> Result<Durable, StoreError> {
        let open_err = |why: String| StoreError::Open { path: path.into(), why };
        let empty_seal = std::fs::metadata(path.join(SEAL)).is_ok_and(|m| m.len() == 0);
        let is_new = match std::fs::read_dir(path) {
            // Or killed while first opened, before sled's data file: sled's first files and
            // the empty seal made before them (below).
            Ok(mut entries) => {
                entries.next().is_none() || (empty_seal && !path.join("db").exists())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(open_err(e.to_string())),
        };
        let corrupt = |why: String| StoreError::Corrupt { path: path.into(), why };
        if is_new {
            // An empty seal first: if the process is killed before the store is stamped, it
            // tells an interrupted creation from a damaged store (`interrupted_creation`).
            std::fs::create_dir_all(path).map_err(|e| open_err(e.to_string()))?;
            open_seal(path).map_err(|e| open_err(format!("seal file: {e}")))?;
        } else if !path.join("db").exists() {
            // sled would add its files to whatever directory it is given.
            return Err(corrupt(format!("it holds files but no sled data file (not a {what})")));
        }
        let open_sled = || open_locked(path);
        let db = match open_sled() {
            // Killed while sled wrote its first files, before its data file: nothing was ever
            // stored, so sled starts over.
            Err(_) if is_new && !path.join("db").exists() => {
                removed(std::fs::remove_file(path.join("conf")))
                    .and_then(|()| removed(std::fs::remove_dir_all(path.join("blobs"))))
                    .map_err(|e| open_err(e.to_string()))?;
                open_sled()
            }
            other => other,
        }
        .map_err(|e| match e {
            Opened::InUse => StoreError::InUse { path: path.into() },
            Opened::Failed(e) => open_err(e.to_string()),
        })?;
        let data_file =
            File::open(path.join("db")).map_err(|e| open_err(format!("data file: {e}")))?;
        let meta = db.open_tree("meta").map_err(|e| open_err(e.to_string()))?;
        let stamp = match meta.get("identity").map_err(|e| corrupt(e.to_string()))? {
            Some(found) if found.as_ref() == identity => false,
            Some(_) => {
                return Err(corrupt(format!(
                    "it belongs to another node, cluster or format version ({what})"
                )));
            }
            None if is_new || interrupted_creation(path, &db, empty_seal)? => true,
            None => {
                return Err(corrupt(format!(
                    "it has data but no identity record (not a {what}, or damaged)"
                )));
            }
        };
        // Only in a directory that is ours (or new): nothing is added to anyone else's.
        let seal = open_seal(path).map_err(|e| open_err(format!("seal file: {e}")))?;
        let d = Durable {
            path: path.into(),
            db,
            data_file,
            meta,
            seal,
            seq: AtomicU64::new(0),
            failpoint: None,
            fail_fsync: AtomicBool::new(false),
            synced_blobs: Mutex::default(),
        };
        if stamp {
            d.meta.insert("identity", identity).map_err(|e| open_err(e.to_string()))?;
            d.sync().map_err(|e| open_err(e.to_string()))?;
        }
        d.check_seal()?;
        Ok(d)
    }

    /// The store must hold the last write its seal records (or the one after: the process
    /// stopped between the two fsyncs of [`Durable::sync`]).
    fn check_seal(&self) -> Result<(), StoreError> {
        let stored = match self.meta.get(SEQ).map_err(|e| self.corrupt(e))? {
            None => 0,
            Some(v) => u64::from_be_bytes(
                v.as_ref().try_into().map_err(|_| self.corrupt("malformed write count"))?,
            ),
        };
        let sealed = read_seal(&self.seal).map_err(|e| self.corrupt(format!("seal file: {e}")))?;
        if stored < sealed {
            return Err(self.corrupt(format!(
                "it lost durable writes: it holds write {stored} of {sealed} (a truncated or \
                 damaged data file, or sled files older than their seal)"
            )));
        }
        if stored > sealed + 1 {
            return Err(self.corrupt(format!(
                "its seal records write {sealed} but it holds write {stored} (a seal file \
                 that is missing, damaged or older than the data)"
            )));
        }
        if stored > sealed {
            // Stopped inside `sync`, perhaps before the data file's fsync (a failed fsync
            // stops the service there too): made durable before the seal covers it.
            self.db.flush().map_err(|e| self.write_err(e))?;
            self.sync_blobs().map_err(|e| self.write_err(e))?;
            self.data_file.sync_all().map_err(|e| self.write_err(e))?;
            write_seal(&self.seal, stored).map_err(|e| self.write_err(e))?;
        }
        self.seq.store(stored, Ordering::SeqCst);
        Ok(())
    }

    /// Opens one tree.
    pub fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        self.db
            .open_tree(name)
            .map_err(|e| StoreError::Open { path: self.path.clone(), why: e.to_string() })
    }

    /// Routes this store's protocol writes through a storage failpoint.
    pub fn with_failpoint(mut self, failpoints: Failpoints, point: Point) -> Durable {
        self.failpoint = Some((failpoints, point));
        self
    }

    /// Called before a protocol write touches sled: where an armed storage failpoint makes
    /// the write fail (`enospc`, `eio`: nothing is written) or its fsync fail (`fsync-eio`).
    pub fn begin_write(&self) -> Result<(), StoreError> {
        let Some((fp, point)) = &self.failpoint else { return Ok(()) };
        let errno = match fp.reached(*point) {
            Some(Action::Enospc) => nix::errno::Errno::ENOSPC,
            Some(Action::Eio) => nix::errno::Errno::EIO,
            Some(Action::FsyncEio) => {
                self.fail_fsync.store(true, Ordering::SeqCst);
                return Ok(());
            }
            Some(Action::Kill) | None => return Ok(()),
        };
        let e = std::io::Error::from_raw_os_error(errno as i32);
        Err(self.write_err(format!("sled write: {e}")))
    }

    /// Makes everything written so far durable, and seals it (see the module docs). A
    /// failure names its step: what an operator reads first.
    pub fn sync(&self) -> Result<(), StoreError> {
        let next = self.seq.load(Ordering::SeqCst) + 1;
        let failed = |step: &str, e: &dyn std::fmt::Display| self.write_err(format!("{step}: {e}"));
        // Written last, so that a log cut anywhere before the end loses it.
        self.meta.insert(SEQ, &next.to_be_bytes()).map_err(|e| failed("sled insert", &e))?;
        self.db.flush().map_err(|e| failed("sled flush", &e))?;
        self.sync_blobs().map_err(|e| failed("fsync of sled's blobs", &e))?;
        if self.fail_fsync.swap(false, Ordering::SeqCst) {
            let eio = std::io::Error::from_raw_os_error(nix::errno::Errno::EIO as i32);
            return Err(failed("fsync of the data file", &eio));
        }
        self.data_file.sync_all().map_err(|e| failed("fsync of the data file", &e))?;
        write_seal(&self.seal, next).map_err(|e| failed("seal", &e))?;
        self.seq.store(next, Ordering::SeqCst);
        Ok(())
    }

    /// fsyncs the files sled wrote under `blobs/` since the last call, then the directory.
    fn sync_blobs(&self) -> std::io::Result<()> {
        let dir = self.path.join("blobs");
        let mtime = match std::fs::metadata(&dir) {
            Ok(m) => m.modified()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut blobs = self.synced_blobs.lock().unwrap_or_else(|p| p.into_inner());
        if blobs.settled == Some(mtime) {
            return Ok(());
        }
        let mut present = BTreeSet::new();
        let mut added = false;
        for entry in std::fs::read_dir(&dir)? {
            let name = entry?.file_name();
            if !blobs.synced.contains(&name) {
                match File::open(dir.join(&name)) {
                    Ok(f) => f.sync_all()?,
                    // Collected by sled since it was listed.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                added = true;
            }
            present.insert(name);
        }
        if added {
            File::open(&dir)?.sync_all()?;
        }
        blobs.synced = present;
        let old = SystemTime::now().duration_since(mtime).is_ok_and(|age| age > SETTLE);
        blobs.settled = old.then_some(mtime);
        Ok(())
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

/// How long an open waits for sled's lock on the data file. A store this process has just
/// dropped is still locked while sled's threads let go of their last references to it (an
/// open right after a drop failed so in CI); held longer, another process has it.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Why sled did not open a directory.
enum Opened {
    /// Its data file stayed locked for [`LOCK_WAIT`].
    InUse,
    Failed(sled::Error),
}

/// Opens sled on `path`, waiting up to [`LOCK_WAIT`] for its data file's lock.
fn open_locked(path: &Path) -> Result<sled::Db, Opened> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        // Every write is made durable explicitly before it is relied on; the background
        // flusher would only add writes nobody waits for.
        match sled::Config::new().path(path).flush_every_ms(None).open() {
            Ok(db) => return Ok(db),
            // sled 0.34 says so only in the text of an `Other` error (`Config::try_lock`).
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::Other
                    && e.to_string().starts_with("could not acquire lock on") =>
            {
                if Instant::now() >= deadline {
                    return Err(Opened::InUse);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(Opened::Failed(e)),
        }
    }
}

/// Whether a store killed while it was first opened, before its identity was durable, is
/// what `db` holds: its seal was there and empty (`empty_seal`, never written) and no tree
/// holds a key, so stamping it now loses nothing (refused, it would stay refused until
/// someone emptied the directory). A missing seal is damage, not this.
fn interrupted_creation(path: &Path, db: &sled::Db, empty_seal: bool) -> Result<bool, StoreError> {
    if !empty_seal {
        return Ok(false);
    }
    for name in db.tree_names() {
        let tree = db
            .open_tree(&name)
            .map_err(|e| StoreError::Corrupt { path: path.into(), why: e.to_string() })?;
        if !tree.is_empty() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A removal that found nothing to remove did its job.
fn removed(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Opens the seal file, creating it (and making its directory entry durable) if missing. A
/// missing or empty seal reads as 0 writes: a store that holds more than one fails closed.
fn open_seal(dir: &Path) -> std::io::Result<File> {
    let path = dir.join(SEAL);
    let existed = path.exists();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    if !existed {
        File::open(dir)?.sync_all()?;
    }
    Ok(f)
}

/// The seal: the write count and its complement (a torn or altered seal does not pass).
fn read_seal(f: &File) -> Result<u64, String> {
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut b = [0u8; 16];
    if len != 16 {
        return Err(format!("{len} bytes, expected 16"));
    }
    f.read_exact_at(&mut b, 0).map_err(|e| e.to_string())?;
    let (seq, check) = b.split_at(8);
    let seq = u64::from_be_bytes(seq.try_into().map_err(|_| "short".to_string())?);
    let check = u64::from_be_bytes(check.try_into().map_err(|_| "short".to_string())?);
    if check != !seq {
        return Err("damaged".into());
    }
    Ok(seq)
}

fn write_seal(f: &File, seq: u64) -> std::io::Result<()> {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&seq.to_be_bytes());
    b[8..].copy_from_slice(&(!seq).to_be_bytes());
    f.write_all_at(&b, 0)?;
    f.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tq-durable-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// Opens `p` and makes `writes` more writes durable.
    fn write(p: &Path, writes: usize) {
        let d = Durable::open(p, b"me", "test store").unwrap();
        let t = d.tree("t").unwrap();
        for i in 0..writes {
            t.insert(i.to_be_bytes(), &b"v"[..]).unwrap();
            d.sync().unwrap();
        }
    }

    /// A value sled keeps in a file of its own is fsynced with the rest, and reads back after
    /// a reopen (§7).
    #[test]
    fn a_value_sled_writes_as_a_blob_is_fsynced_section_7() {
        let p = fresh_dir("blob");
        let big = vec![7u8; 300_000];
        {
            let d = Durable::open(&p, b"me", "test store").unwrap();
            let t = d.tree("t").unwrap();
            let all_synced = |d: &Durable| {
                let on_disk: BTreeSet<OsString> = std::fs::read_dir(p.join("blobs"))
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect();
                assert_eq!(d.synced_blobs.lock().unwrap().synced, on_disk);
                on_disk.len()
            };
            t.insert("config", &big[..]).unwrap();
            d.sync().unwrap();
            assert!(all_synced(&d) > 0, "sled kept the value in its log: no blob to check");
            // Another at once, maybe within the directory's timestamp granularity.
            t.insert("second", &big[..]).unwrap();
            d.sync().unwrap();
            let two = all_synced(&d);
            // Once the directory's mtime has settled, a write adds no listing; a new blob does.
            std::thread::sleep(SETTLE + Duration::from_millis(200));
            d.sync().unwrap();
            assert!(d.synced_blobs.lock().unwrap().settled.is_some());
            t.insert("third", &big[..]).unwrap();
            d.sync().unwrap();
            assert!(all_synced(&d) > two);
        }
        let d = Durable::open(&p, b"me", "test store").unwrap();
        for key in ["config", "second", "third"] {
            let got = d.tree("t").unwrap().get(key).unwrap();
            assert_eq!(got.as_deref(), Some(&big[..]), "{key}");
        }
        drop(d);
        std::fs::remove_dir_all(&p).unwrap();
    }

    /// A store open elsewhere is refused as in use, and opens once it is closed: at once
    /// after a drop in the same process too, where sled lets go of its lock a little late.
    #[test]
    fn a_store_open_elsewhere_is_in_use_and_opens_once_closed_section_7() {
        let p = fresh_dir("in-use");
        let first = Durable::open(&p, b"me", "test store").unwrap();
        let start = Instant::now();
        match Durable::open(&p, b"me", "test store") {
            Err(e @ StoreError::InUse { .. }) => {
                assert!(e.to_string().ends_with("is in use by another process"), "{e}")
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        assert!(start.elapsed() >= LOCK_WAIT);
        drop(first);
        for _ in 0..50 {
            write(&p, 1);
        }
        std::fs::remove_dir_all(&p).unwrap();
    }

    fn set_seal(p: &Path, seq: u64) {
        let f = std::fs::OpenOptions::new().write(true).open(p.join(SEAL)).unwrap();
        write_seal(&f, seq).unwrap();
    }

    #[test]
    fn a_seal_one_write_behind_is_a_crash_between_the_fsyncs_section_7() {
        let p = fresh_dir("behind");
        write(&p, 2); // the identity, then two writes: 3
        // Stopped after sled's fsync of write 3, before the seal's.
        set_seal(&p, 2);
        write(&p, 0);
        let f = File::open(p.join(SEAL)).unwrap();
        assert_eq!(read_seal(&f).unwrap(), 3, "the seal catches up on open");
        write(&p, 1);
        std::fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn lost_writes_and_bad_seals_fail_closed_section_7() {
        let p = fresh_dir("lost");
        write(&p, 2);
        let refused = |p: &Path| match Durable::open(p, b"me", "test store") {
            Err(StoreError::Corrupt { why, .. }) => why,
            other => panic!("expected a refusal, got {other:?}"),
        };
        // The data holds write 3; a seal of 4 means write 4 was lost.
        set_seal(&p, 4);
        assert!(refused(&p).starts_with("it lost durable writes: it holds write 3 of 4"));
        // A seal two behind is not a crash window.
        set_seal(&p, 1);
        assert!(refused(&p).starts_with("its seal records write 1 but it holds write 3"));
        std::fs::write(p.join(SEAL), [1, 2, 3]).unwrap();
        assert_eq!(refused(&p), "seal file: 3 bytes, expected 16");
        std::fs::remove_file(p.join(SEAL)).unwrap();
        assert!(refused(&p).starts_with("its seal records write 0 but it holds write 3"));
        // (The refused open left an empty seal, which reads as a missing one.) Another store's
        // directory is refused without a seal being added to it.
        std::fs::remove_file(p.join(SEAL)).unwrap();
        let err = Durable::open(&p, b"someone else", "test store").unwrap_err();
        assert!(err.to_string().contains("belongs to another"), "{err}");
        assert!(!p.join(SEAL).exists());
        std::fs::remove_dir_all(&p).unwrap();
    }

    /// §7: a store killed during its very first open opens as new, once it is certain nothing
    /// was stored; anything else without an identity stays refused, and a directory that is
    /// not a sled store gets no sled files.
    #[test]
    fn a_store_killed_while_created_opens_as_new_section_7() {
        let p = fresh_dir("created");
        let refused = |p: &Path| match Durable::open(p, b"me", "test store") {
            Err(StoreError::Corrupt { why, .. }) => why,
            other => panic!("expected a refusal, got {other:?}"),
        };
        // Killed after the empty seal, before sled's files.
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join(SEAL), b"").unwrap();
        write(&p, 1);
        write(&p, 1);
        std::fs::remove_dir_all(&p).unwrap();
        // Killed after sled created its files, before the identity was durable.
        let half_made = |p: &Path, key: Option<&str>| {
            std::fs::create_dir_all(p).unwrap();
            std::fs::write(p.join(SEAL), b"").unwrap();
            let db = sled::open(p).unwrap();
            let meta = db.open_tree("meta").unwrap();
            if let Some(k) = key {
                db.open_tree("t").unwrap().insert(k, "v").unwrap();
            }
            drop(meta);
            db.flush().unwrap();
        };
        half_made(&p, None);
        write(&p, 1);
        write(&p, 1);
        std::fs::remove_dir_all(&p).unwrap();
        // Killed while sled wrote its config file: its text without the checksum after it,
        // which sled refuses.
        let scratch = fresh_dir("created-scratch");
        drop(sled::open(&scratch).unwrap());
        let mut torn = std::fs::read(scratch.join("conf")).unwrap();
        torn.truncate(torn.len() - 4);
        std::fs::remove_dir_all(&scratch).unwrap();
        std::fs::create_dir_all(&scratch).unwrap();
        std::fs::write(scratch.join("conf"), &torn).unwrap();
        assert!(sled::open(&scratch).is_err(), "sled opens a torn conf: nothing to test");
        std::fs::remove_dir_all(&scratch).unwrap();
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join(SEAL), b"").unwrap();
        std::fs::write(p.join("conf"), &torn).unwrap();
        write(&p, 1);
        write(&p, 1);
        std::fs::remove_dir_all(&p).unwrap();
        // Something stored, or no seal: not an interrupted creation.
        half_made(&p, Some("k"));
        assert!(refused(&p).starts_with("it has data but no identity record"));
        std::fs::remove_dir_all(&p).unwrap();
        half_made(&p, None);
        std::fs::remove_file(p.join(SEAL)).unwrap();
        assert!(refused(&p).starts_with("it has data but no identity record"));
        assert!(!p.join(SEAL).exists());
        std::fs::remove_dir_all(&p).unwrap();
        // Someone else's directory.
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("notes.txt"), b"mine").unwrap();
        assert_eq!(refused(&p), "it holds files but no sled data file (not a test store)");
        let left: Vec<_> = std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![OsString::from("notes.txt")]);
        std::fs::remove_dir_all(&p).unwrap();
    }
}
