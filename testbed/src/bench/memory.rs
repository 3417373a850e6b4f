//! Resident memory of the services, from `/proc/<pid>/status`.

/// `VmRSS` and `VmHWM` (peak) of a process, in MiB.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Rss {
    /// Resident now.
    pub(super) now_mb: f64,
    /// The peak since the process started.
    pub(super) peak_mb: f64,
    /// The private part of `now_mb` (`RssAnon`): the rest is file pages (the binary's
    /// code, libc), shared by every process running the same binary.
    pub(super) anon_mb: f64,
}

/// Reads a process's resident memory; None if it is gone.
pub(super) fn rss(pid: i32) -> Option<Rss> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb / 1024.0)
    };
    Some(Rss {
        now_mb: field("VmRSS:")?,
        peak_mb: field("VmHWM:").unwrap_or(0.0),
        anon_mb: field("RssAnon:").unwrap_or(0.0),
    })
}

/// The largest readings seen of one kind of process, and which process it was.
#[derive(Debug, Clone, Default)]
pub(super) struct Highest {
    /// The largest `VmRSS` seen.
    pub(super) now_mb: f64,
    /// Which process.
    pub(super) name: String,
    /// The largest `VmHWM` seen.
    pub(super) peak_mb: f64,
    /// `RssAnon` of the process with the largest `VmRSS`, at that reading.
    pub(super) anon_mb: f64,
}

impl Highest {
    /// Takes a reading of process `name` into account.
    pub(super) fn see(&mut self, name: &str, r: Rss) {
        if r.now_mb > self.now_mb {
            self.now_mb = r.now_mb;
            self.anon_mb = r.anon_mb;
            self.name = name.to_string();
        }
        self.peak_mb = self.peak_mb.max(r.peak_mb);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_rss() {
        let r = rss(std::process::id() as i32).expect("this process has a status");
        assert!(r.now_mb > 0.0 && r.peak_mb >= r.now_mb);
    }
}
