//! A local cluster whose every link crosses a fault proxy: one [`Proxy`] in front of each
//! agent, whose address the agent advertises (so the coordinator's and the peers'
//! connections to it cross it), and one in front of the coordinator, where agents enroll
//! (so a partitioned agent cannot reach the coordinator either). The operator (this
//! program) reaches the coordinator directly, and reads agents' own status directly at
//! their listen addresses: the faults are on the cluster's links, not on the observer's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tq_protocol::{NodeId, Peer};
use tq_wire::client::{ClientLimits, channel};
use tq_wire::pb::{self, node_agent_client::NodeAgentClient};
use tq_wire::tls::TlsMaterial;

use super::proxy::{Candidates, Counters, Fabric, Link, Proxy};
use crate::local::{COORDINATOR, LocalCluster, control, process};
use crate::up::ENROLL_TIMEOUT;

/// The retransmission timeout an emulated loss costs (Linux's minimum RTO).
pub(crate) const RTO: Duration = Duration::from_millis(200);

/// The proxies, the rules they follow, and how to read an agent's own state.
pub(crate) struct Net {
    fabric: Arc<Fabric>,
    /// By the name of the process behind each.
    proxies: BTreeMap<String, Proxy>,
    /// The coordinator, then every agent.
    names: Vec<String>,
    tls: TlsMaterial,
}

impl Net {
    /// Starts a proxy in front of every process of `c`, then the processes, pointed at the
    /// proxies; returns once every agent has enrolled.
    pub(crate) async fn start(c: &mut LocalCluster, seed: u64) -> Result<Net, String> {
        let names: Vec<String> = std::iter::once(COORDINATOR.to_string())
            .chain(c.nodes().iter().map(ToString::to_string))
            .collect();
        // PID files are written as soon as a process is spawned, before it can connect.
        let files: Vec<_> = names.iter().map(|n| (c.pid_file(n), n.clone())).collect();
        let candidates: Candidates = Box::new(move || {
            files
                .iter()
                .filter_map(|(f, n)| process::live_pid(f).map(|p| (p.as_raw() as u32, n.clone())))
                .collect()
        });
        let fabric = Fabric::new(seed, RTO, candidates);
        let mut proxies = BTreeMap::new();
        for name in &names {
            let p = Proxy::start(fabric.clone(), name)
                .await
                .map_err(|e| format!("cannot start the proxy for {name}: {e}"))?;
            proxies.insert(name.clone(), p);
        }
        let (file, cluster) = tq_coordinator::cluster_file::ClusterFile::load(&c.cluster_file())?;
        let tls = TlsMaterial::load(&file.tls, cluster, None).map_err(|e| e.to_string())?;
        let net = Net { fabric, proxies, names, tls };
        for name in net.agents() {
            let at = net.proxy(name)?.addr().to_string();
            c.edit_agent(name, |a| a.advertise = Some(at))?;
        }
        c.start(COORDINATOR)?;
        net.proxy(COORDINATOR)?.set_target(c.listen_addr(COORDINATOR)?);
        c.enroll_agents_at(net.proxy(COORDINATOR)?.addr().to_string());
        for name in net.agents() {
            c.start(name)?;
            net.proxy(name)?.set_target(c.listen_addr(name)?);
        }
        control::wait_enrolled(c, ENROLL_TIMEOUT).await?;
        // The services make themselves non-dumpable, which closes their /proc/<pid>/fd to
        // anyone without CAP_SYS_PTRACE: then no connection could be told apart.
        for name in &net.names {
            let pid = c.pid(name).ok_or_else(|| format!("{name} is not running"))?;
            std::fs::read_dir(format!("/proc/{pid}/fd")).map_err(|e| {
                format!(
                    "cannot read /proc/{pid}/fd of {name} ({e}): the proxies tell who connected \
                     from the services' sockets, which needs root or CAP_SYS_PTRACE"
                )
            })?;
        }
        Ok(net)
    }

    fn proxy(&self, name: &str) -> Result<&Proxy, String> {
        self.proxies.get(name).ok_or_else(|| format!("no proxy in front of {name}"))
    }

    fn agents(&self) -> impl Iterator<Item = &String> {
        self.names.iter().filter(|n| *n != COORDINATOR)
    }

    /// Puts `link` between every process of `group` and every process outside it, both
    /// ways (whichever side opens a connection).
    pub(crate) fn isolate(&self, group: &[String], link: Link) {
        for inside in group {
            for outside in self.names.iter().filter(|n| !group.contains(n)) {
                self.fabric.set(inside, outside, link);
                self.fabric.set(outside, inside, link);
            }
        }
    }

    /// Puts `link` between every two processes of the cluster.
    pub(crate) fn everywhere(&self, link: Link) {
        for a in &self.names {
            for b in self.names.iter().filter(|b| *b != a) {
                self.fabric.set(a, b, link);
            }
        }
    }

    /// Every link passes again.
    pub(crate) fn heal(&self) {
        self.fabric.heal();
    }

    /// What the proxies did so far.
    pub(crate) fn counters(&self) -> Counters {
        self.fabric.counters()
    }

    /// An agent's own view of its state, asked at its listen address (no proxy).
    pub(crate) async fn agent_status(
        &self,
        c: &LocalCluster,
        name: &str,
    ) -> Result<pb::NodeStatus, String> {
        let id = NodeId::new(name).map_err(|e| e.to_string())?;
        let addr = c.listen_addr(name)?.to_string();
        let limits = ClientLimits { request_timeout: Duration::from_secs(3), ..Default::default() };
        let ch = channel(&self.tls, Peer::Node(id), &addr, &limits)
            .map_err(|s| format!("{name}: {}", s.message()))?;
        NodeAgentClient::new(ch)
            .status(pb::NodeStatusRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| format!("{name} status: {}", s.message()))
    }
}
