//! The machine the benchmark ran on, and how busy other programs kept it meanwhile: the
//! figures are only as good as the cores they had.

use serde_json::{Value, json};

use super::stats::round;

/// CPU time spent, in clock ticks, by the whole machine and by this process tree.
#[derive(Debug, Clone, Copy)]
pub(super) struct CpuMark {
    busy: u64,
    ours: u64,
}

fn ticks_per_s() -> f64 {
    // Linux has reported USER_HZ = 100 to user space on every architecture for decades.
    100.0
}

/// Busy ticks of the whole machine (user, nice, system, irq, softirq, steal).
fn machine_busy() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = cpu.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    Some(v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7).unwrap_or(&0))
}

/// utime + stime (+ cutime + cstime when `children`) of a process, in ticks.
fn process_ticks(pid: &str, children: bool) -> Option<u64> {
    stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?, children)
}

/// The same, from the text of a `/proc/<pid>/stat`.
fn stat_ticks(stat: &str, children: bool) -> Option<u64> {
    // Fields after the command name (which may hold spaces) start after the last ')', with
    // the state, field 3: field n is rest[n − 3]. They are taken by position, since some
    // are negative (tpgid is −1 without a terminal: skipping what does not parse as a u64
    // once shifted utime out of the sum, and every CPU figure was system time only).
    let rest: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3)?.parse::<i64>().ok().map(|v| v.max(0) as u64);
    let own = field(14)? + field(15)?;
    Some(if children { own + field(16)? + field(17)? } else { own })
}

/// CPU time of the live processes `pids` together, in ticks (each counted once).
pub(super) fn ticks_of(pids: &[i32]) -> u64 {
    let unique: std::collections::BTreeSet<i32> = pids.iter().copied().collect();
    unique.iter().filter_map(|p| process_ticks(&p.to_string(), false)).sum()
}

/// Ticks as milliseconds.
pub(super) fn ticks_ms(ticks: u64) -> f64 {
    ticks as f64 * 1000.0 / ticks_per_s()
}

impl CpuMark {
    /// Now, counting as ours this process, its reaped children and the live `pids` (once
    /// each: a mesh's agents share 16 processes, and counted per agent a 1024-agent run
    /// used 15 cores of 2 and showed other programs at 0 %).
    pub(super) fn now(pids: &[i32]) -> CpuMark {
        let ours = process_ticks("self", true).unwrap_or(0) + ticks_of(pids);
        CpuMark { busy: machine_busy().unwrap_or(0), ours }
    }
}

/// CPU seconds used by other programs between `start` and `end`, and by this benchmark.
pub(super) fn cpu_use(start: CpuMark, end: CpuMark, elapsed_s: f64) -> Value {
    let busy = end.busy.saturating_sub(start.busy) as f64 / ticks_per_s();
    let ours = end.ours.saturating_sub(start.ours) as f64 / ticks_per_s();
    let others = (busy - ours).max(0.0);
    let capacity = cpus() as f64 * elapsed_s;
    json!({
        "bench_cpu_s": round(ours),
        "other_programs_cpu_s": round(others),
        "other_programs_share_of_cpu": if capacity > 0.0 { round(others / capacity) } else { 0.0 },
    })
}

/// Online CPUs.
pub(super) fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// CPU model, kernel, cores, load average.
pub(super) fn describe() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    json!({
        "cpus": cpus(),
        "cpu_model": model,
        "kernel": kernel.trim(),
        "load_average_at_start": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_time() {
        assert!(machine_busy().is_some());
        assert!(process_ticks("self", true).is_some());
    }

    /// A service started in its own process group has no terminal: tpgid is −1.
    #[test]
    fn cpu_ticks_are_read_by_position() {
        let stat = "4242 (tq agent) S 1 4242 4242 0 -1 4194560 900 0 3 0 1234 56 7 8 39 19 12 \
                    0 2127933 3133440 380 18446744073709551615";
        assert_eq!(stat_ticks(stat, false), Some(1234 + 56));
        assert_eq!(stat_ticks(stat, true), Some(1234 + 56 + 7 + 8));
        assert_eq!(stat_ticks("4242 (tq-agent) S 1 4242", false), None);
    }
}
