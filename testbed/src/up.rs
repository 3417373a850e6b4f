//! `tq-testbed up` and `tq-testbed restart`: a local cluster of real processes that runs
//! until SIGINT or SIGTERM.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};

use crate::local::{COORDINATOR, LocalCluster, control};

/// How long every agent may take to enroll.
pub const ENROLL_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates (or reopens) the cluster in `dir`, starts it, prints `READY <cluster.toml>`, and
/// supervises until a signal: a process that dies is reported, not restarted.
pub async fn up(dir: &Path, nodes: usize) -> Result<(), String> {
    let started = Instant::now();
    let c = if dir.join("cluster.toml").exists() {
        let c = LocalCluster::open(dir)?;
        eprintln!("reusing the cluster in {} ({} nodes)", c.dir().display(), c.nodes().len());
        c
    } else {
        LocalCluster::create(dir, nodes)?
    };
    let (mut term, mut int) =
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(t), Ok(i)) => (t, i),
            (Err(e), _) | (_, Err(e)) => return Err(format!("cannot handle signals: {e}")),
        };
    let res = tokio::select! {
        r = c.start_all(ENROLL_TIMEOUT) => r,
        _ = term.recv() => Err("stopped by SIGTERM while starting".into()),
        _ = int.recv() => Err("stopped by SIGINT while starting".into()),
    };
    if let Err(e) = res {
        c.stop_all();
        return Err(e);
    }
    for name in std::iter::once(COORDINATOR).chain(c.nodes().iter().map(|n| n.as_str())) {
        eprintln!(
            "  {name:<12} pid {:<8} log {}",
            c.pid(name).unwrap_or(0),
            c.log_path(name).display()
        );
    }
    eprintln!(
        "cluster {} up in {} ms: {} agents enrolled. Try:\n  tqctl --cluster {} status\n\
         Ctrl-C (or SIGTERM) stops every process.",
        c.cluster(),
        started.elapsed().as_millis(),
        c.nodes().len(),
        c.cluster_file().display()
    );
    println!("READY {}", c.cluster_file().display());
    let _ = std::io::stdout().flush();
    let mut watch = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = watch.tick() => {
                for (name, how) in c.reap() {
                    eprintln!("{name} exited ({how}); not restarting it. To restart: \
                        tq-testbed restart {} {name}", c.dir().display());
                }
            }
        }
    }
    eprintln!("stopping every process of the cluster");
    c.stop_all();
    Ok(())
}

/// Restarts one process of a cluster made by `up` (stopping it first if it runs).
pub fn restart(dir: &Path, name: &str) -> Result<(), String> {
    let c = LocalCluster::open(dir)?;
    if name != COORDINATOR && !c.nodes().iter().any(|n| n.as_str() == name) {
        return Err(format!(
            "{} has no process {name:?}: coordinator or node-1 … node-{}",
            c.dir().display(),
            c.nodes().len()
        ));
    }
    if c.signal(name, nix::sys::signal::Signal::SIGTERM) {
        eprintln!("stopped {name}");
    }
    // Passed on only here, on purpose: arming a failpoint by hand is a restart away.
    let failpoints = std::env::var(tq_wire::failpoint::ENV).ok().filter(|f| !f.is_empty());
    let pid = c.start_with_failpoints(name, failpoints.as_deref())?;
    match failpoints {
        Some(f) => println!("{name} started (pid {pid}) with {}={f}", tq_wire::failpoint::ENV),
        None => println!("{name} started (pid {pid})"),
    }
    Ok(())
}

/// Makes each named agent (every running one if none is named) forget its secrets and
/// unlock again from its peers; prints how long each took and checks they all derive the
/// same key from the latest epoch. Fails if any cannot.
pub async fn unlock(dir: &Path, only: &[String], json: bool) -> Result<(), String> {
    let c = LocalCluster::open(dir)?;
    let names: Vec<String> = if only.is_empty() {
        c.nodes().iter().map(|n| n.to_string()).filter(|n| c.pid(n).is_some()).collect()
    } else {
        only.to_vec()
    };
    let mut results = Vec::new();
    let mut first_key = None;
    let mut same = true;
    for name in &names {
        let socket = c.key_socket(name);
        control::lock(&socket).await.map_err(|e| format!("{name}: {e}"))?;
        let t = Instant::now();
        let epoch = control::unlock(&socket, Duration::from_secs(10))
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if epoch == 0 {
            return Err(format!("{name} could not unlock within 10 s (too few peers answering?)"));
        }
        let (_, key) = control::derive(&socket, "tq-testbed/unlock-check", epoch)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        match &first_key {
            None => first_key = Some((epoch, key)),
            Some((e, k)) => same &= *e == epoch && *k == key,
        }
        if !json {
            println!("{name}: unlocked epoch {epoch} in {ms:.2} ms");
        }
        results.push(serde_json::json!({"node_id": name, "epoch": epoch, "unlock_ms": ms}));
    }
    if json {
        println!("{}", serde_json::json!({"unlocked": results, "same_key": same}));
    } else if same {
        println!("every unlocked node derives the same key");
    }
    if same { Ok(()) } else { Err("the nodes derived different keys".into()) }
}
