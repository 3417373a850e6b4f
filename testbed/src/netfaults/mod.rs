//! `tq-testbed netfaults`: network faults on a local cluster of real processes, injected by
//! a userspace TCP proxy in front of every process (`proxy`; this kernel has no netem and
//! no packet filter): a minority partitioned during prepare, the coordinator partitioned
//! after its commit decision, N − K members blackholed during unlock, 30 % loss with
//! 200 ms delay on every link, and an agent, then the coordinator, paused by SIGSTOP for
//! 5 s (`cases`). One cluster runs every case; between cases every link is healed and the
//! cluster must converge. Every random choice comes from `--seed`.

mod cases;
mod net;
pub mod proxy;
mod watch;
mod whois;

use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::faults::{Campaign, short_timings};
use crate::local::LocalCluster;
use net::Net;

/// The cases, in the order they run.
pub const CASES: [&str; 6] = [
    "minority_partition",
    "coordinator_partition",
    "blackholed_unlock",
    "loss_and_delay",
    "paused_agent",
    "paused_coordinator",
];

/// What to run.
#[derive(Debug, Clone)]
pub struct NetFaultArgs {
    /// Agents in the cluster.
    pub nodes: usize,
    /// Every random choice derives from it.
    pub seed: u64,
}

/// A cluster behind proxies, and the threshold of every rotation.
struct Run {
    k: Campaign,
    net: Net,
    threshold: usize,
}

/// Runs every case; returns the summary (`failed` counts the cases that did not pass).
/// Per-case figures go to stderr as each case ends.
pub async fn netfaults(args: &NetFaultArgs) -> Result<Value, String> {
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("tq-netfaults-{}", std::process::id()));
    let mut c = LocalCluster::create(&dir, args.nodes)?;
    short_timings(&c)?;
    let net = match Net::start(&mut c, args.seed).await {
        Ok(net) => net,
        Err(e) => {
            c.stop_all();
            return Err(e);
        }
    };
    let mut run = Run { k: Campaign::new(c, args.seed), net, threshold: args.nodes / 2 + 1 };
    let results = run.all().await;
    run.k.c.stop_all();
    let counters = run.net.counters();
    drop(run.net);
    let logs = run.k.c.scan_logs(&[])?;
    let failed = CASES.len() - results.values().filter(|v| v["ok"] == true).count();
    let keep = failed > 0 || !logs.ok();
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let mut summary = json!({
        "cases": Value::Object(results),
        "failed": failed,
        "seed": args.seed,
        "nodes": args.nodes,
        "threshold": args.nodes / 2 + 1,
        "latest_committed_epoch": run.k.oracle.latest(),
        "findings": run.k.oracle.findings,
        "logs": logs.to_json(),
        "ok": !keep,
        "proxied": {
            "connections": counters.connections,
            "unattributed": counters.unattributed,
            "resets": counters.resets,
            "chunks": counters.chunks,
            "lost": counters.lost,
            "held": counters.held,
        },
        "elapsed_s": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    if keep {
        summary["dir"] = json!(dir.display().to_string());
    }
    Ok(summary)
}

impl Run {
    async fn all(&mut self) -> Map<String, Value> {
        let mut results = Map::new();
        let first = async {
            self.k.reconfigure(self.threshold).await?;
            match self.k.settle(0).await? {
                true => Ok(()),
                false => Err("the first configuration never converged".to_string()),
            }
        };
        if let Err(e) = first.await {
            self.k.oracle.findings.push(e);
            return results;
        }
        for (i, name) in CASES.iter().enumerate() {
            let t = Instant::now();
            let seen = (self.k.oracle.acked_lost, self.k.oracle.double_commits);
            let findings = self.k.oracle.findings.len();
            let res = match *name {
                "minority_partition" => cases::minority_partition(self).await,
                "coordinator_partition" => cases::coordinator_partition(self).await,
                "blackholed_unlock" => cases::blackholed_unlock(self).await,
                "loss_and_delay" => cases::loss_and_delay(self).await,
                "paused_agent" => cases::paused_agent(self).await,
                _ => cases::paused_coordinator(self).await,
            };
            let new: Vec<String> = self.k.oracle.findings[findings..].to_vec();
            let lost = (self.k.oracle.acked_lost, self.k.oracle.double_commits) != seen;
            let mut v = match res {
                Ok(mut v) if new.is_empty() && !lost => {
                    v["ok"] = json!(true);
                    v
                }
                Ok(mut v) => {
                    v["ok"] = json!(false);
                    v["error"] = json!(new.join("; "));
                    v
                }
                Err(e) => json!({ "ok": false, "error": e }),
            };
            v["elapsed_ms"] = json!(t.elapsed().as_millis() as u64);
            eprintln!("netfaults: {}/{} {name}: {v}", i + 1, CASES.len());
            if v["ok"] != true {
                // The next case starts from a healed, converged cluster, or reports why not.
                self.net.heal();
                let _ = self.k.settle(100 + i as u64).await;
            }
            results.insert(name.to_string(), v);
        }
        results
    }
}
