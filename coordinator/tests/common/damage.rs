//! Damaging state directories (truncation, bit flips, restores).

// Each test binary uses part of the harness.
#![allow(dead_code)]

use super::*;

/// Replaces `dir`'s contents with `snap` exactly (files sled created since are removed).
pub(crate) fn restore(dir: &Path, snap: &Snapshot) {
    std::fs::remove_dir_all(dir).unwrap_or_else(|e| panic!("remove {}: {e}", dir.display()));
    for (rel, bytes) in snap {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("a directory");
        }
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

/// Truncates sled's data file (`db`) in `dir` to `len` bytes.
pub(crate) fn truncate_data_file(dir: &Path, len: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(dir.join("db")).expect("the data file");
    f.set_len(len).expect("truncate");
    f.sync_all().expect("sync");
}

/// Flips one bit of sled's data file (`db`) in `dir` at byte `at`.
pub(crate) fn flip_bit_of_data_file(dir: &Path, at: usize) {
    let path = dir.join("db");
    let mut b = std::fs::read(&path).expect("the data file");
    b[at] ^= 0x10;
    std::fs::write(&path, b).expect("write the data file");
}

/// The length of sled's data file in `dir`.
pub(crate) fn data_file_len(dir: &Path) -> usize {
    std::fs::metadata(dir.join("db")).expect("the data file").len() as usize
}
