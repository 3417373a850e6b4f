//! `tq-testbed demo`: a narrated tour of a real local cluster. Every step runs what a user
//! would (tqctl, signals, the local key socket), prints it as it happens, and is checked.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use tq_protocol::recorded::{Kind, Recorded};
use zeroize::Zeroizing;

use crate::local::{COORDINATOR, LocalCluster, control};
use crate::up::ENROLL_TIMEOUT;

/// The purpose every node derives a key for: equal keys mean the same secret was rebuilt.
const PURPOSE: &str = "demo/disk-encryption";

struct Demo {
    c: LocalCluster,
    started: Instant,
    checks: usize,
    /// Every key the agents handed out: searched for in their logs at the end.
    keys: Vec<Recorded>,
}

/// Runs the demo in `dir` (a fresh temporary directory if `None`) with `nodes` agents.
pub async fn demo(dir: Option<PathBuf>, nodes: usize, keep: bool) -> Result<(), String> {
    if nodes < 5 {
        return Err(format!("the demo needs at least 5 nodes, not {nodes}"));
    }
    let (dir, temporary) = match dir {
        Some(d) => (d, false),
        None => (std::env::temp_dir().join(format!("tq-demo-{}", std::process::id())), true),
    };
    let c = LocalCluster::create(&dir, nodes)?;
    // Every line a release build can write, for the search of the logs at the end.
    c.set_log_level("debug")?;
    let mut d = Demo { c, started: Instant::now(), checks: 0, keys: Vec::new() };
    let mut res = d.run().await;
    d.c.stop_all();
    if res.is_ok() {
        res = d.check_logs();
    }
    match &res {
        Ok(()) => {
            println!(
                "\n✔ demo finished: {} checks passed in {:.1} s",
                d.checks,
                d.started.elapsed().as_secs_f64()
            );
            if temporary && !keep {
                let _ = std::fs::remove_dir_all(&dir);
            } else {
                println!(
                    "  the cluster's files (logs, state, certificates) are in {}",
                    dir.display()
                );
            }
        }
        Err(_) => println!("\n✘ demo failed; logs and state kept in {}", dir.display()),
    }
    res
}

fn majority(n: usize) -> usize {
    n / 2 + 1
}

fn names(ids: &[&str]) -> String {
    ids.join(",")
}

impl Demo {
    fn step(&self, text: &str) {
        println!("\n[{:>5.1}s] ── {text}", self.started.elapsed().as_secs_f64());
    }

    fn say(&self, text: &str) {
        println!("         {text}");
    }

    fn check(&mut self, ok: bool, what: &str) -> Result<(), String> {
        if ok {
            self.checks += 1;
            println!("         ✔ {what}");
            Ok(())
        } else {
            println!("         ✘ {what}");
            Err(format!("check failed: {what}"))
        }
    }

    /// Runs tqctl as an operator would; returns its exit status and its JSON output.
    fn tqctl(&self, args: &[&str]) -> Result<(i32, Value), String> {
        let shown = args.join(" ");
        println!("         $ tqctl {shown}");
        let out = Command::new(self.c.bin("tqctl"))
            .arg("--cluster")
            .arg(self.c.cluster_file())
            .arg("--json")
            .args(args)
            .output()
            .map_err(|e| format!("cannot run tqctl: {e}"))?;
        let code = out.status.code().unwrap_or(-1);
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text.lines().last().unwrap_or("");
        let json = serde_json::from_str(last).map_err(|_| {
            format!(
                "tqctl {shown} exited {code} without JSON: {}{}",
                text,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        Ok((code, json))
    }

    fn socket(&self, node: &str) -> PathBuf {
        self.c.key_socket(node)
    }

    async fn key(&mut self, node: &str, epoch: u64) -> Result<Zeroizing<Vec<u8>>, String> {
        let (got, key) = control::derive(&self.socket(node), PURPOSE, epoch)
            .await
            .map_err(|e| format!("{node}: {e}"))?;
        if got != epoch {
            return Err(format!("{node} derived from epoch {got}, not {epoch}"));
        }
        let held = Recorded::new(Kind::DerivedKey, &key);
        if !self.keys.contains(&held) {
            self.keys.push(held);
        }
        Ok(key)
    }

    /// After every process stopped: their logs hold no panic and none of the keys.
    fn check_logs(&mut self) -> Result<(), String> {
        self.step("Search every process's log for a panic and for the keys the agents gave out");
        let scan = self.c.scan_logs(&self.keys)?;
        for f in &scan.findings {
            self.say(f);
        }
        self.check(
            scan.ok() && scan.searched == self.keys.len(),
            &format!(
                "no panic, and none of the {} keys (hex, base64, Debug) in {} lines of {} logs",
                scan.searched, scan.lines, scan.files
            ),
        )
    }

    /// Every node in `nodes` derives the same key from `epoch`'s secret.
    async fn same_key(&mut self, nodes: &[&str], epoch: u64) -> Result<Zeroizing<Vec<u8>>, String> {
        let first = self.key(nodes[0], epoch).await?;
        let mut same = true;
        for n in &nodes[1..] {
            same &= self.key(n, epoch).await? == first;
        }
        self.check(
            same,
            &format!("{} derive the same key from epoch {epoch}'s secret", names(nodes)),
        )?;
        Ok(first)
    }

    async fn reconfigure(&mut self, members: &[&str], k: usize) -> Result<u64, String> {
        let (code, out) = self.tqctl(&[
            "reconfigure",
            "--members",
            &names(members),
            "--threshold",
            &k.to_string(),
            "--wait",
            "--timeout",
            "60s",
        ])?;
        let epoch = out["epoch"].as_u64().unwrap_or(0);
        self.say(&format!(
            "epoch {epoch}: {} (decided in {} ms, every live member committed after {} ms; {} of {} acks)",
            out["outcome"].as_str().unwrap_or("?"),
            out["decided_ms"],
            out["elapsed_ms"],
            out["acks"],
            out["acks_needed"],
        ));
        self.check(
            code == 0 && out["outcome"] == "committed",
            &format!("epoch {epoch} committed with N={} K={k}", members.len()),
        )?;
        Ok(epoch)
    }

    fn status(&self) -> Result<(i32, Value), String> {
        self.tqctl(&["status"])
    }

    fn member<'a>(status: &'a Value, node: &str) -> Option<&'a Value> {
        status["members"].as_array()?.iter().find(|m| m["node_id"] == node)
    }

    /// Polls status until `pred` holds for `node`, up to `timeout`; returns the member entry
    /// and how long it took.
    async fn wait_member(
        &self,
        node: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<(Value, Duration), String> {
        let start = Instant::now();
        loop {
            let s = control::status(&self.c).await?;
            let json = serde_json::json!({"members": s.members.iter().map(|m| serde_json::json!({
                "node_id": m.node_id, "state": m.state, "committed_epoch": m.committed_epoch,
                "stale": m.stale, "stale_reason": m.stale_reason, "stale_detail": m.stale_detail,
            })).collect::<Vec<_>>()});
            if let Some(m) = Self::member(&json, node)
                && pred(m)
            {
                return Ok((m.clone(), start.elapsed()));
            }
            if start.elapsed() > timeout {
                return Err(format!("{node} did not reach the expected state in {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn run(&mut self) -> Result<(), String> {
        let all: Vec<String> = self.c.nodes().iter().map(|n| n.to_string()).collect();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let n = all.len();
        let dir = self.c.dir().to_path_buf();

        self.step(&format!("Start one tq-coordinator and {n} tq-agent processes on 127.0.0.1"));
        self.say(&format!("certificates, configs, state and logs in {}", dir.display()));
        self.c.start_all(ENROLL_TIMEOUT).await?;
        self.check(true, &format!("all {n} agents enrolled over mTLS"))?;

        let first: Vec<&str> = all[..n - 1].to_vec();
        self.step(&format!(
            "Initial configuration: {} members, any {} of them rebuild the secret",
            first.len(),
            majority(first.len())
        ));
        let e1 = self.reconfigure(&first, majority(first.len())).await?;
        let (code, s) = self.status()?;
        let committed = first.iter().all(|m| {
            Self::member(&s, m)
                .is_some_and(|v| v["state"] == "committed" && v["committed_epoch"] == e1)
        });
        self.check(
            code == 0 && committed,
            "status: every member committed, nothing pending, none stale",
        )?;

        self.step("Unlock on every member: each rebuilds the secret from its peers' shares");
        let k1 = self.same_key(&first, e1).await?;

        let newcomer = all[n - 1];
        self.step(&format!("Add {newcomer}: a new epoch with a fresh secret and fresh shares"));
        let e2 = self.reconfigure(&all, majority(n)).await?;
        self.same_key(&all, e2).await?;
        let old = self.key(newcomer, e1).await?;
        self.check(
            old == k1,
            &format!("{newcomer} also unlocks epoch {e1}'s secret (carried forward, encrypted)"),
        )?;

        let removed = all[1];
        let members: Vec<&str> = all.iter().copied().filter(|m| *m != removed).collect();
        self.step(&format!("Remove {removed}"));
        let e3 = self.reconfigure(&members, majority(members.len())).await?;
        let (_, s) = self.status()?;
        let state = Self::member(&s, removed).map(|m| m["state"].clone());
        self.say(&format!("status of {removed}: {}", state.clone().unwrap_or(Value::Null)));
        self.check(
            state.is_none_or(|s| s == "expunged"),
            &format!("{removed} is no longer a member (expunged)"),
        )?;
        let k3 = self.same_key(&members, e3).await?;

        let victim = members[2];
        self.step(&format!("kill -9 {victim}, and watch the coordinator notice"));
        let pid = self.c.pid(victim).unwrap_or(0);
        self.say(&format!("$ kill -9 {pid}"));
        self.c.signal(victim, Signal::SIGKILL);
        let (m, took) =
            self.wait_member(victim, Duration::from_secs(30), |m| m["stale"] == true).await?;
        self.say(&format!(
            "{victim} stale after {:.1} s: {} ({})",
            took.as_secs_f64(),
            m["stale_reason"].as_str().unwrap_or(""),
            m["stale_detail"].as_str().unwrap_or("")
        ));
        let (code, _) = self.status()?;
        self.check(
            code == 3,
            &format!("{victim} reported stale, with its reason; status exits 3"),
        )?;
        let alive: Vec<&str> = members.iter().copied().filter(|m| *m != victim).collect();
        let t = Instant::now();
        control::lock(&self.socket(alive[0])).await?;
        let latest = control::unlock(&self.socket(alive[0]), Duration::from_secs(10)).await?;
        self.say(&format!(
            "{} re-unlocked without {victim} in {} ms",
            alive[0],
            t.elapsed().as_millis()
        ));
        self.check(latest == e3, &format!("{} unlocks epoch {e3} with {victim} down", alive[0]))?;
        let again = self.same_key(&alive, e3).await?;
        self.check(again == k3, "the surviving members still derive the same key")?;

        self.step("Stop the coordinator; restart an agent: it unlocks from its peers alone");
        self.say(&format!("$ kill -TERM {}", self.c.pid(COORDINATOR).unwrap_or(0)));
        self.c.signal(COORDINATOR, Signal::SIGTERM);
        let restarted = alive[1];
        self.c.signal(restarted, Signal::SIGTERM);
        let t = Instant::now();
        self.c.start(restarted)?;
        let latest = control::unlock(&self.socket(restarted), Duration::from_secs(10)).await?;
        self.say(&format!(
            "{restarted} restarted and unlocked in {} ms with no coordinator running",
            t.elapsed().as_millis()
        ));
        let key = self.key(restarted, e3).await?;
        self.check(latest == e3 && key == k3, &format!("{restarted} rebuilt epoch {e3}'s secret"))?;

        self.step(&format!("Restart the coordinator and rotate the secret while {victim} is down"));
        self.c.start(COORDINATOR)?;
        self.say("the coordinator restored its ledger and is polling the agents again; it has");
        self.say(&format!(
            "not heard from {victim} since it restarted, so --wait returns once {victim} is stale"
        ));
        let e4 = self.reconfigure(&members, majority(members.len())).await?;

        self.step(&format!("Restart {victim}: it catches up to epoch {e4} (PrepareAndCommit)"));
        let t = Instant::now();
        self.c.start(victim)?;
        let (_, took) = self
            .wait_member(victim, Duration::from_secs(30), |m| {
                m["state"] == "committed" && m["committed_epoch"] == e4 && m["stale"] == false
            })
            .await?;
        self.say(&format!(
            "{victim} committed epoch {e4} {:.1} s after it came back",
            took.max(t.elapsed()).as_secs_f64()
        ));
        self.same_key(&members, e4).await?;
        let (code, _) = self.status()?;
        self.check(code == 0, "status: every member committed, nothing pending, none stale")?;
        Ok(())
    }
}
