//! The local cluster waits for every process it stops: restarting agents again and again
//! (as `bench`'s cold runs and the crash campaigns do) leaves no zombie behind. Uses the
//! workspace's debug binaries (built by `cargo nextest run --workspace`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tq_testbed::local::LocalCluster;

/// Stops every process the cluster started, however the test ends.
struct Running(LocalCluster);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.stop_all();
    }
}

/// This process's children that have exited and were not waited for.
fn zombie_children() -> Vec<i32> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // After the command name (which may hold spaces): state, then the parent's PID.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        let mut f = rest.split_whitespace();
        let (state, ppid) = (f.next(), f.next());
        if state == Some("Z") && ppid == Some(me.as_str()) {
            out.extend(entry.file_name().to_str().and_then(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_agents_leave_no_zombie() {
    let dir = std::env::temp_dir().join(format!("tq-t14-reaped-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = Running(LocalCluster::create(&dir, 3).expect("create a local cluster"));
    // As in `bench`: an exiting agent then waits longer for a core between letting go of its
    // memory (its command line empties) and becoming a zombie one can wait for.
    c.0.lower_agent_priority(19);
    c.0.start_all(Duration::from_secs(20)).await.expect("start the cluster");
    let nodes: Vec<String> = c.0.nodes().iter().map(ToString::to_string).collect();
    // A busy machine, as during `bench`: an exiting agent at nice 19 waits for a core.
    let spin = Arc::new(AtomicBool::new(true));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let spin = spin.clone();
            std::thread::spawn(move || {
                while spin.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    for round in 0..4 {
        // As `bench` restarts agents: SIGTERM to all at once, then each stopped and started.
        for n in &nodes {
            let pid = c.0.pid(n).expect("the agent runs");
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        tokio::task::block_in_place(|| {
            for n in &nodes {
                c.0.signal(n, Signal::SIGTERM);
            }
            for n in &nodes {
                c.0.start(n).unwrap_or_else(|e| panic!("round {round}: start {n}: {e}"));
            }
        });
    }
    spin.store(false, Ordering::Relaxed);
    for t in spinners {
        t.join().expect("a spinner");
    }
    assert_eq!(zombie_children(), Vec::<i32>::new(), "stopped agents were never waited for");
    c.0.stop_all();
    assert_eq!(zombie_children(), Vec::<i32>::new(), "stop_all left zombies");
    let _ = std::fs::remove_dir_all(&dir);
}
