//! Where the benchmark's cluster keeps its sled stores, and what filesystem that is.

use std::path::{Path, PathBuf};

/// The default: `/dev/shm` when it is a writable tmpfs (the stores' fsyncs then cost
/// nothing, so the figures show the software), else the system's temporary directory.
pub(super) fn default_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let writable = shm.is_dir()
        && tempfile_probe(shm).is_ok()
        && filesystem(shm).is_some_and(|fs| fs == "tmpfs");
    if writable { shm.to_path_buf() } else { std::env::temp_dir() }
}

/// Creates `base` if needed (a `--state-dir` that does not exist yet) and returns the type
/// of the filesystem it is on: a path that does not exist has none.
pub(super) fn prepare(base: &Path) -> Result<String, String> {
    std::fs::create_dir_all(base)
        .map_err(|e| format!("cannot create the state directory {}: {e}", base.display()))?;
    Ok(filesystem(base).unwrap_or_else(|| "unknown".into()))
}

fn tempfile_probe(dir: &Path) -> std::io::Result<()> {
    let p = dir.join(format!(".tq-bench-probe-{}", std::process::id()));
    std::fs::write(&p, b"")?;
    std::fs::remove_file(&p)
}

/// The type of the filesystem `path` is on (`tmpfs`, `ext4`, …), from `/proc/mounts`: the
/// mount point that is the longest prefix of the canonical path.
fn filesystem(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, at, fs) = (f.next()?, f.next()?, f.next()?);
            Some((unescape(at), fs.to_string()))
        })
        .filter(|(at, _)| path.starts_with(at))
        .max_by_key(|(at, _)| at.as_os_str().len())
        .map(|(_, fs)| fs)
}

/// `/proc/mounts` writes spaces and other special bytes as `\NNN` (octal).
fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|o| b[i] == b'\\' && o.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(o) => {
                out.push(o.iter().fold(0u8, |acc, c| acc.wrapping_mul(8).wrapping_add(c - b'0')));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mount_points() {
        assert_eq!(unescape("/mnt/a\\040b"), PathBuf::from("/mnt/a b"));
        assert_eq!(unescape("/"), PathBuf::from("/"));
    }

    /// `--state-dir target/bench-state` on a fresh clone was reported as `unknown`.
    #[test]
    fn a_state_dir_that_does_not_exist_yet_is_created_and_named() {
        let top = std::env::temp_dir().join(format!("tq-state-dir-{}", std::process::id()));
        let base = top.join("a/b");
        assert_eq!(filesystem(&base), None);
        let fs = prepare(&base);
        let made = base.is_dir();
        let _ = std::fs::remove_dir_all(&top);
        assert_eq!(fs, Ok(filesystem(&std::env::temp_dir()).unwrap()));
        assert!(made);
    }

    #[test]
    fn root_has_a_filesystem() {
        assert!(filesystem(Path::new("/")).is_some());
    }
}
