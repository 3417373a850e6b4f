//! DESIGN §5 hygiene on a real `tq-agent` process: started with core dumps allowed, it turns
//! them off and marks itself non-dumpable, locks its memory when the limit allows, and a
//! crash leaves no core file. The crashes are SIGABRT (what a panic under `panic = "abort"`
//! raises) and SIGQUIT; not SIGSEGV sent from outside, which Rust's stack-overflow handler
//! swallows once (it restores the default action and returns, waiting for a fault that a
//! signal from `kill` never repeats). `tq-coordinator` runs the same start-up
//! (`tq_wire::process::service_main`).

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tq_protocol::{ClusterId, NodeId};

/// Allows core dumps and lifts the memory-lock limit where the shell may, then runs `$0`.
const PRELUDE: &str = "ulimit -c unlimited; ulimit -l unlimited 2>/dev/null; exec \"$0\" \"$@\"";

struct Dir(PathBuf);

impl Dir {
    fn new(what: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("tq-hardening-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("a temporary directory");
        Dir(d)
    }

    fn cores(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .expect("the directory")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("core"))
            .collect()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process, killed if a failed assertion leaves it running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tq-agent` in `dir` (its working directory) with core dumps allowed.
fn start_agent(dir: &Dir) -> Running {
    let cluster = ClusterId::from_bytes(*b"hardening-tests!");
    let node = NodeId::new("n1").expect("a node id");
    let certs = tq_wire::pki::init_cluster_certs(&dir.0.join("pki"), &cluster, &[node], "op")
        .expect("certificates");
    let (_, tls) = &certs.nodes[0];
    let config = format!(
        "cluster_id = \"{cluster}\"\nnode_id = \"n1\"\nlisten = \"127.0.0.1:0\"\n\
         state_dir = {:?}\nkey_socket = {:?}\n[tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
        dir.0.join("state"),
        dir.0.join("keys.sock"),
        tls.ca,
        tls.cert,
        tls.key
    );
    std::fs::write(dir.0.join("agent.toml"), config).expect("the configuration");
    let stderr = std::fs::File::create(dir.0.join("agent.log")).expect("the log file");
    let child = Running(
        Command::new("sh")
            .args(["-c", PRELUDE, env!("CARGO_BIN_EXE_tq-agent"), "--config", "agent.toml"])
            .args(["--log-format", "json", "--ready-file", "ready"])
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("tq-agent starts"),
    );
    let start = Instant::now();
    while !dir.0.join("ready").exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "tq-agent did not become ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// The first line of `/proc/<pid>/<file>` starting with `prefix`, split into words.
fn proc_line(pid: u32, file: &str, prefix: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).expect("/proc readable");
    let line = text.lines().find(|l| l.starts_with(prefix)).expect("the line");
    line[prefix.len()..].split_whitespace().map(str::to_string).collect()
}

fn crash(child: &mut Running, signal: &str) -> std::process::ExitStatus {
    let pid = child.0.id().to_string();
    let sent = Command::new("kill").args(["-s", signal, &pid]).status().expect("kill runs");
    assert!(sent.success(), "kill -s {signal} {pid} failed");
    let start = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().expect("the process is reaped") {
            return status;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "SIG{signal} did not end {pid}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a crash in this environment writes a core file into the working directory at
/// all (core_pattern may hand cores to a helper instead): a process started the same way
/// that does not harden itself.
fn cores_are_observable() -> bool {
    let dir = Dir::new("control");
    let mut child = Running(
        Command::new("sh")
            .args(["-c", PRELUDE, "sleep", "30"])
            .current_dir(&dir.0)
            .spawn()
            .expect("sleep starts"),
    );
    std::thread::sleep(Duration::from_millis(200));
    crash(&mut child, "ABRT");
    !dir.cores().is_empty()
}

/// §5: RLIMIT_CORE is 0 (hard and soft) in the running process although it was started
/// with unlimited core dumps; the process says it is not dumpable; its memory is locked
/// exactly when RLIMIT_MEMLOCK is unlimited; and SIGABRT and SIGQUIT leave no core file.
#[test]
fn a_crashing_agent_leaves_no_core_file_section_5() {
    let observable = cores_are_observable();
    if !observable {
        eprintln!(
            "this machine writes no core files into the working directory (core_pattern {:?}): \
             only the limits are checked",
            std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default()
        );
    }
    for (signal, number) in [("ABRT", 6), ("QUIT", 3)] {
        let dir = Dir::new(signal);
        let mut child = start_agent(&dir);
        let pid = child.0.id();
        let core = proc_line(pid, "limits", "Max core file size");
        assert_eq!(core[..2], ["0", "0"], "RLIMIT_CORE (soft, hard) of the running agent");
        let memlock_unlimited = proc_line(pid, "limits", "Max locked memory")[0] == "unlimited";
        let locked_kb: u64 = proc_line(pid, "status", "VmLck:")[0].parse().expect("VmLck in kB");
        assert_eq!(locked_kb > 0, memlock_unlimited, "VmLck {locked_kb} kB");
        let log = std::fs::read_to_string(dir.0.join("agent.log")).expect("the log");
        let line = log.lines().find(|l| l.contains("process hardening")).expect("the log line");
        for field in ["\"core_dumps_off\":true", "\"not_dumpable\":true"] {
            assert!(line.contains(field), "{field} missing: {line}");
        }
        let locked = format!("\"memory_locked\":{memlock_unlimited}");
        assert!(line.contains(&locked), "{locked} missing: {line}");

        let status = crash(&mut child, signal);
        assert_eq!(status.signal(), Some(number), "SIG{signal} ended the agent: {status:?}");
        if observable {
            assert_eq!(dir.cores(), Vec::<String>::new(), "SIG{signal} left a core file");
        }
    }
}
