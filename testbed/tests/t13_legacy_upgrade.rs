//! DESIGN §6.10 end to end on real processes, as an operator runs it: a legacy split's
//! package files are imported into stopped agents with `tq-agent --import-legacy`, the
//! cluster starts, `tqctl upgrade-from-legacy` prepares and commits epoch 2, and every agent
//! then serves epoch 1's keys from the legacy secret itself. Bad imports are refused with
//! the store untouched, and no log of any process holds the legacy secret, a legacy share or
//! a key handed out. Uses the workspace's debug binaries (built by `cargo nextest run
//! --workspace`).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rand_core::SeedableRng;
use tq_node_agent::legacy_file;
use tq_node_agent::store::Store;
use tq_protocol::crypto::derive::derive_key;
use tq_protocol::crypto::legacy::{self, LegacyPackage};
use tq_protocol::crypto::sharing::random_secret;
use tq_protocol::recorded::{Kind, Recorded};
use tq_protocol::{NodeId, Threshold};
use tq_testbed::local::{LocalCluster, control};

const PURPOSE: &str = "legacy-test/disk";

/// Stops every process the cluster started, however the test ends.
struct Running(LocalCluster);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.stop_all();
    }
}

fn write_package(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(format!("{name}.legacy.toml"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&path)
        .expect("a new package file");
    f.write_all(text.as_bytes()).expect("write the package");
    path
}

fn import(c: &LocalCluster, node: &str, file: &Path) -> Output {
    Command::new(c.bin("tq-agent"))
        .arg("--config")
        .arg(c.config_path(node))
        .arg("--import-legacy")
        .arg(file)
        .output()
        .expect("run tq-agent --import-legacy")
}

/// Exit code and stderr of a refused import, which must never print the share.
fn refused(out: &Output, share: &LegacyPackage) -> (i32, String) {
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!said.contains(&hex::encode(&share.share.expose()[1..])), "the share was printed");
    (out.status.code().unwrap_or(-1), said)
}

fn legacy_of(c: &LocalCluster, node: &NodeId) -> Option<[u8; legacy::LEGACY_SHARE_LEN]> {
    let store = Store::open(&c.state_dir(node.as_str()), &c.cluster(), node).expect("open store");
    store.load().expect("load store").legacy.map(|p| *p.share.expose())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_split_imported_into_real_agents_upgrades_to_epoch_2_section_6_10() {
    let dir = std::env::temp_dir().join(format!("tq-t13-legacy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let c = Running(LocalCluster::create(&dir, 5).expect("create a local cluster"));
    // Every line a release build can write, for the search of the logs at the end.
    c.0.set_log_level("debug").unwrap();
    let nodes = c.0.nodes().to_vec();
    let files = dir.join("legacy");
    std::fs::create_dir_all(&files).unwrap();

    let mut rng = rand_chacha::ChaCha20Rng::from_seed([13; 32]);
    let secret = random_secret(&mut rng);
    let pkgs = legacy::split(&secret, Threshold::new(3, 5).unwrap(), &nodes, &mut rng);
    let mut paths = Vec::new();
    for id in &nodes {
        let path = write_package(&files, id.as_str(), &legacy_file::render(id, &pkgs[id]), 0o600);
        let out = import(&c.0, id.as_str(), &path);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains(" installed in ") && !said.contains("already"), "{said}");
        paths.push(path);
    }
    let (n1, n2) = (&nodes[0], &nodes[1]);

    // Refusals: the store keeps exactly what it had.
    let before = legacy_of(&c.0, n2);
    assert!(before.is_some(), "the import did not reach the store");
    let (code, said) = refused(&import(&c.0, n2.as_str(), &paths[0]), &pkgs[n1]);
    assert_eq!(code, 65, "{said}");
    assert!(said.contains("the package is for node-1, this agent is node-2"), "{said}");
    let open = write_package(&files, "open", &legacy_file::render(n2, &pkgs[n2]), 0o644);
    let (code, said) = refused(&import(&c.0, n2.as_str(), &open), &pkgs[n2]);
    assert_eq!(code, 65, "{said}");
    assert!(said.contains("open to group or others (mode 644)"), "{said}");
    let other_split = legacy::split(&secret, Threshold::new(3, 5).unwrap(), &nodes, &mut rng);
    let other = write_package(&files, "other", &legacy_file::render(n2, &other_split[n2]), 0o600);
    let (code, said) = refused(&import(&c.0, n2.as_str(), &other), &other_split[n2]);
    assert_eq!(code, 65, "{said}");
    assert!(said.contains("already holds a different legacy package for node-2"), "{said}");
    assert_eq!(legacy_of(&c.0, n2), before, "a refused import changed the store");
    let (code, said) = refused(&import(&c.0, n2.as_str(), &files), &pkgs[n2]);
    assert_eq!(code, 65, "{said}");
    assert!(said.contains("not a regular file"), "{said}");
    // The package given as the configuration: toml's message would quote the share's line.
    let swapped = Command::new(c.0.bin("tq-agent"))
        .arg("--config")
        .arg(&paths[1])
        .arg("--import-legacy")
        .arg(&paths[1])
        .output()
        .expect("run tq-agent");
    let (code, said) = refused(&swapped, &pkgs[n2]);
    assert_eq!(code, 64, "{said}");
    assert!(said.contains("not an agent configuration"), "{said}");
    let again = import(&c.0, n2.as_str(), &paths[1]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already installed"));

    c.0.start_all(Duration::from_secs(20)).await.expect("start the cluster");
    // A running agent holds its store: the import is refused, the agent keeps serving.
    let (code, said) = refused(&import(&c.0, n1.as_str(), &paths[0]), &pkgs[n1]);
    assert_eq!(code, 74, "{said}");
    assert!(said.contains("is the agent still running?"), "{said}");

    let members: Vec<&str> = nodes.iter().map(NodeId::as_str).collect();
    let out = Command::new(c.0.bin("tqctl"))
        .arg("--cluster")
        .arg(c.0.cluster_file())
        .args(["upgrade-from-legacy", "--members", &members.join(","), "--threshold", "3"])
        .output()
        .expect("run tqctl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = control::status(&c.0).await.expect("status");
        let done = s.members.iter().filter(|m| m.committed_epoch == 2).count();
        if s.latest_committed_epoch == 2 && s.pending.is_none() && done == nodes.len() {
            break;
        }
        assert!(Instant::now() < deadline, "epoch 2 not committed everywhere: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Epoch 1 is the legacy secret, carried inside epoch 2: every agent derives its keys.
    let want = derive_key(&secret, &c.0.cluster(), PURPOSE, &[], 32).unwrap();
    let mut keys = vec![Recorded::new(Kind::Secret, secret.expose())];
    let mut epoch2: Vec<zeroize::Zeroizing<Vec<u8>>> = Vec::new();
    for id in &nodes {
        let socket = c.0.key_socket(id.as_str());
        let (got, key) = control::derive(&socket, PURPOSE, 1).await.expect("derive epoch 1");
        assert_eq!((got, &key[..]), (1, &want[..]), "{id}: epoch 1 is not the legacy secret");
        let (got, key2) = control::derive(&socket, PURPOSE, 2).await.expect("derive epoch 2");
        assert_eq!(got, 2);
        assert_ne!(key2, key, "epoch 2 must have a fresh secret");
        keys.push(Recorded::new(Kind::LegacyShare, &pkgs[id].share.expose()[1..]));
        epoch2.push(key2);
    }
    assert!(epoch2.windows(2).all(|w| w[0] == w[1]), "members derive different epoch 2 keys");
    keys.push(Recorded::new(Kind::DerivedKey, &want));
    keys.push(Recorded::new(Kind::DerivedKey, &epoch2[0]));

    c.0.stop_all();
    for id in &nodes {
        assert_eq!(legacy_of(&c.0, id), None, "{id} kept its legacy share after the commit");
    }
    let (code, said) = refused(&import(&c.0, n1.as_str(), &paths[0]), &pkgs[n1]);
    assert_eq!(code, 65, "{said}");
    assert!(said.contains("node-1 already holds tq state (epochs 2)"), "{said}");

    let scan = c.0.scan_logs(&keys).expect("search the logs");
    assert!(scan.ok(), "{}", scan.to_json());
    assert!(scan.lines > 100 && scan.searched == nodes.len() + 3, "{}", scan.to_json());
    drop(c);
    let _ = std::fs::remove_dir_all(&dir);
}
