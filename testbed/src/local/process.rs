//! Starting and stopping the service binaries as real processes, tracked by PID files.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Where `tq-agent`, `tq-coordinator` and `tqctl` are: `TQ_BIN_DIR`, else next to this binary
/// (cargo puts every binary of the workspace in one directory, and a test binary in `deps`
/// below it).
pub fn bin_dir() -> Result<PathBuf, String> {
    let dir = match std::env::var_os("TQ_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot locate tq-testbed itself: {e}"))?;
            let dir = exe.parent().ok_or("tq-testbed has no parent directory")?;
            match dir.parent() {
                Some(up) if dir.ends_with("deps") => up.to_path_buf(),
                _ => dir.to_path_buf(),
            }
        }
    };
    for b in ["tq-agent", "tq-coordinator", "tqctl"] {
        if !dir.join(b).is_file() {
            return Err(format!(
                "{b} is not in {} — build every binary first: cargo build --release --workspace \
                 (or point TQ_BIN_DIR at them)",
                dir.display()
            ));
        }
    }
    Ok(dir)
}

/// Spawns `binary --config config --ready-file ready`, output appended to `log`, in its own
/// process group (a terminal's Ctrl-C reaches the supervisor, which stops it in order), with
/// `TQ_FAILPOINTS` set to `failpoints` or else unset (never inherited by accident), at
/// `nice` (0: the caller's priority).
pub fn spawn(
    binary: &Path,
    config: &Path,
    ready: &Path,
    log: &Path,
    failpoints: Option<&str>,
    nice: u8,
) -> Result<Child, String> {
    let args =
        [OsStr::new("--config"), config.as_os_str(), OsStr::new("--ready-file"), ready.as_os_str()];
    spawn_with(binary, &args, &[ready], log, failpoints, nice)
}

/// Spawns `tq-testbed agent-host` for several agents (configuration, ready file) at once.
pub fn spawn_host(
    testbed: &Path,
    agents: &[(PathBuf, PathBuf)],
    log: &Path,
    nice: u8,
) -> Result<Child, String> {
    let mut args = vec![OsStr::new("agent-host")];
    for (config, ready) in agents {
        args.extend([
            OsStr::new("--config"),
            config.as_os_str(),
            OsStr::new("--ready-file"),
            ready.as_os_str(),
        ]);
    }
    let readies: Vec<&Path> = agents.iter().map(|(_, r)| r.as_path()).collect();
    spawn_with(testbed, &args, &readies, log, None, nice)
}

fn spawn_with(
    binary: &Path,
    args: &[&OsStr],
    readies: &[&Path],
    log: &Path,
    failpoints: Option<&str>,
    nice: u8,
) -> Result<Child, String> {
    for r in readies {
        let _ = std::fs::remove_file(r);
    }
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    // nice(1) execs the binary, so the PID is the service's, and every thread the service
    // starts inherits the priority (a renice afterwards would reach only the main thread).
    let mut cmd = match nice {
        0 => Command::new(binary),
        n => {
            let mut c = Command::new("nice");
            c.arg("-n").arg(n.to_string()).arg(binary);
            c
        }
    };
    cmd.env_remove(tq_wire::failpoint::ENV);
    if let Some(spec) = failpoints {
        cmd.env(tq_wire::failpoint::ENV, spec);
    }
    cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err).process_group(0).spawn().map_err(
        |e| match nice {
            0 => format!("cannot start {}: {e}", binary.display()),
            _ => format!("cannot start {} through nice(1): {e}", binary.display()),
        },
    )
}

/// Waits until `child` writes its ready file, and returns the address in it.
pub fn wait_ready(
    child: &mut Child,
    ready: &Path,
    log: &Path,
    timeout: Duration,
) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(addr) = std::fs::read_to_string(ready)
            && !addr.trim().is_empty()
        {
            return Ok(addr.trim().to_string());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited during start-up ({status}); {}", log_tail(log)));
        }
        if Instant::now() > deadline {
            return Err(format!("not ready after {timeout:?}; {}", log_tail(log)));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    let tail: Vec<&str> = lines.into_iter().rev().collect();
    format!("last lines of {}:\n  {}", log.display(), tail.join("\n  "))
}

/// The PID recorded in `pid_file`, if that process is alive and runs one of our binaries
/// (a stale file whose PID was reused by something else is ignored).
pub fn live_pid(pid_file: &Path) -> Option<Pid> {
    let pid: i32 = std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut argv = cmdline.split(|b| *b == 0);
    let file_name =
        |a: &[u8]| Some(Path::new(std::str::from_utf8(a).ok()?).file_name()?.to_owned());
    let mut name = file_name(argv.next()?)?;
    // Started through `nice -n N binary …` and not yet exec'd.
    if name == "nice" {
        name = file_name(argv.nth(2)?)?;
    }
    let name = name.to_str()?;
    // A zombie has an empty command line: it is dead.
    let ours = matches!(name, "tq-agent" | "tq-coordinator")
        || (name == "tq-testbed" && argv.next() == Some(b"agent-host"));
    ours.then_some(Pid::from_raw(pid))
}

/// Sends `signal` to the process in `pid_file` and waits for it to go; after `grace` it is
/// killed. Returns whether a process was there.
pub fn stop(pid_file: &Path, signal: Signal, grace: Duration) -> bool {
    let Some(pid) = live_pid(pid_file) else { return false };
    let _ = kill(pid, signal);
    let deadline = Instant::now() + grace;
    while live_pid(pid_file).is_some() {
        if Instant::now() > deadline {
            let _ = kill(pid, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}
