//! Samples, percentiles, and the slow-RPC guard: any single loopback RPC taking 35 ms or
//! more is counted (STACK.md: that is the signature of Nagle + delayed ACK, ~44 ms).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

/// A loopback RPC this slow is counted in `slow_rpcs`.
pub(super) const SLOW_RPC: Duration = Duration::from_millis(35);

/// Latencies of one measurement, in the order taken.
#[derive(Debug, Default, Clone)]
pub(super) struct Samples(Vec<Duration>);

impl Samples {
    /// No samples yet.
    pub(super) fn new() -> Samples {
        Samples(Vec::new())
    }

    /// Adds one.
    pub(super) fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// Adds every sample of `other`.
    pub(super) fn extend(&mut self, other: &Samples) {
        self.0.extend_from_slice(&other.0);
    }

    /// How many.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p`-th percentile (nearest rank), in milliseconds; 0 without samples.
    pub(super) fn percentile_ms(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let mut v = self.0.clone();
        v.sort_unstable();
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        ms(v[rank.clamp(1, v.len()) - 1])
    }

    /// The median, in milliseconds.
    pub(super) fn p50(&self) -> f64 {
        self.percentile_ms(50.0)
    }

    /// The 99th percentile, in milliseconds.
    pub(super) fn p99(&self) -> f64 {
        self.percentile_ms(99.0)
    }

    /// The largest, in milliseconds.
    pub(super) fn max(&self) -> f64 {
        self.0.iter().max().map_or(0.0, |d| ms(*d))
    }

    /// `{"p50_ms", "p99_ms", "max_ms", "samples"}`.
    pub(super) fn summary(&self) -> Value {
        json!({
            "p50_ms": round(self.p50()),
            "p99_ms": round(self.p99()),
            "max_ms": round(self.max()),
            "samples": self.len(),
        })
    }
}

/// Milliseconds as a float.
pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Three decimals are more than the measurements are worth.
pub(super) fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Counts the RPCs that took [`SLOW_RPC`] or more, and remembers the slowest of each kind.
#[derive(Debug, Default)]
pub(super) struct SlowRpcs {
    count: AtomicU64,
    total: AtomicU64,
    worst: Mutex<Vec<(String, Duration)>>,
}

impl SlowRpcs {
    /// Records one RPC of `kind` that took `d`.
    pub(super) fn record(&self, kind: &str, d: Duration) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if d < SLOW_RPC {
            return;
        }
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= 5 {
            eprintln!(
                "tq-testbed bench: SLOW RPC: {kind} took {:.1} ms on loopback (≥ {} ms)",
                ms(d),
                SLOW_RPC.as_millis()
            );
        }
        if let Ok(mut w) = self.worst.lock() {
            match w.iter_mut().find(|(k, _)| k == kind) {
                Some((_, worst)) => *worst = (*worst).max(d),
                None => w.push((kind.to_string(), d)),
            }
        }
    }

    /// How many were slow.
    pub(super) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// How many were timed in all.
    pub(super) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The slowest of each kind that was slow: `{kind: ms}`.
    pub(super) fn worst(&self) -> Value {
        let w = self.worst.lock().map(|w| w.clone()).unwrap_or_default();
        Value::Object(w.into_iter().map(|(k, d)| (k, json!(round(ms(d))))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::new();
        for i in 1..=100 {
            s.push(Duration::from_millis(i));
        }
        assert_eq!(s.p50(), 50.0);
        assert_eq!(s.p99(), 99.0);
        assert_eq!(s.max(), 100.0);
        let mut one = Samples::new();
        one.push(Duration::from_millis(7));
        assert_eq!(one.p50(), 7.0);
        assert_eq!(one.p99(), 7.0);
        assert_eq!(Samples::new().p99(), 0.0);
    }

    #[test]
    fn slow_rpcs_are_counted() {
        let s = SlowRpcs::default();
        s.record("a", Duration::from_millis(1));
        s.record("a", Duration::from_millis(40));
        s.record("b", Duration::from_millis(36));
        assert_eq!(s.count(), 2);
        assert_eq!(s.total(), 3);
    }
}
