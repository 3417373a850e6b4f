//! What each `tqctl` command does.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use tonic::transport::Channel;
use tq_protocol::{ClusterId, NodeId};
use tq_wire::pb::{self, coordinator_client::CoordinatorClient};

use crate::render;
use tq_coordinator::cluster_file::{ClusterFile, relative};

fn rpc_err(s: tonic::Status) -> String {
    match s.code() {
        tonic::Code::Unavailable => format!("coordinator unreachable: {}", s.message()),
        code => format!("{}: {}", code_name(code), s.message()),
    }
}

fn code_name(c: tonic::Code) -> &'static str {
    match c {
        tonic::Code::InvalidArgument => "invalid request",
        tonic::Code::FailedPrecondition => "refused",
        tonic::Code::PermissionDenied => "permission denied",
        tonic::Code::Unauthenticated => "not authenticated",
        tonic::Code::DeadlineExceeded => "timed out",
        _ => "error",
    }
}

pub(crate) struct Ctx {
    client: CoordinatorClient<Channel>,
    json: bool,
}

impl Ctx {
    pub(crate) fn new(path: &Path, json: bool) -> Result<Ctx, String> {
        let (file, id) = ClusterFile::load(path)?;
        Ok(Ctx { client: file.connect(id)?, json })
    }

    async fn fetch_status(&self) -> Result<pb::ClusterStatus, String> {
        Ok(self
            .client
            .clone()
            .status(pb::StatusRequest { if_version: 0 })
            .await
            .map_err(rpc_err)?
            .into_inner())
    }

    pub(crate) async fn status(&self) -> Result<u8, String> {
        let s = self.fetch_status().await?;
        if self.json {
            println!("{}", render::status_json(&s));
        } else {
            print!("{}", render::status_table(&s));
        }
        Ok(if s.members.iter().any(|m| m.stale) {
            3
        } else if s.pending.is_some() {
            2
        } else {
            0
        })
    }

    pub(crate) async fn nodes(&self) -> Result<u8, String> {
        let n = self.client.clone().nodes(pb::NodesRequest {}).await.map_err(rpc_err)?.into_inner();
        if self.json {
            println!("{}", render::nodes_json(&n));
        } else {
            print!("{}", render::nodes_table(&n));
        }
        Ok(0)
    }

    fn print_attempt(&self, verb: &str, a: &pb::Attempt) {
        if self.json {
            println!("{}", render::attempt_json(a));
        } else {
            println!("{verb}: epoch {} ({}) is {}", a.epoch, a.kind, a.phase);
        }
    }

    pub(crate) async fn reconfigure(
        &self,
        members: Vec<String>,
        threshold: u32,
        previous_epoch: Option<u64>,
        wait: bool,
        timeout: Duration,
    ) -> Result<u8, String> {
        let previous_epoch = match previous_epoch {
            Some(e) => e,
            None => self.fetch_status().await?.latest_committed_epoch,
        };
        let start = Instant::now();
        // Subscribe before asking, so no change is missed.
        let mut changes = if wait {
            Some(
                self.client.clone().watch(pb::WatchRequest {}).await.map_err(rpc_err)?.into_inner(),
            )
        } else {
            None
        };
        let req = pb::ReconfigureRequest { members, threshold, previous_epoch };
        let a = self.client.clone().reconfigure(req).await.map_err(rpc_err)?.into_inner();
        let Some(changes) = changes.as_mut() else {
            self.print_attempt("started", &a);
            return Ok(0);
        };
        if !self.json {
            println!(
                "epoch {} started; waiting (up to {})",
                a.epoch,
                humantime::format_duration(timeout)
            );
        }
        let mut decided = None;
        let mut last = a.clone();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let outcome = loop {
            tokio::select! {
                _ = &mut deadline => break if decided.is_some() { "committed" } else { "timeout" },
                next = changes.message() => {
                    let Some(s) = next.map_err(rpc_err)? else { return Err("the coordinator closed the watch".into()) };
                    let Some(l) = s.last_attempt.filter(|l| l.epoch == a.epoch) else { continue };
                    last = l;
                    match last.phase.as_str() {
                        "committed" => {
                            decided.get_or_insert(start.elapsed());
                            break "committed";
                        }
                        "committing" => {
                            decided.get_or_insert(start.elapsed());
                            // A stale member may be down for hours: once the decision is
                            // durable, waiting is only for the members that can answer.
                            let live_done = s.members.iter().all(|m| {
                                m.stale
                                    || m.state == "expunged"
                                    || (m.state == "committed" && m.committed_epoch >= a.epoch)
                            });
                            if live_done {
                                break "committed";
                            }
                        }
                        "aborted" => break "aborted",
                        _ => {}
                    }
                }
            }
        };
        let elapsed = start.elapsed();
        let all = last.phase == "committed";
        if self.json {
            println!(
                "{}",
                json!({
                    "epoch": a.epoch,
                    "outcome": outcome,
                    "all_members_committed": all,
                    "abort_reason": if last.abort_reason.is_empty() { serde_json::Value::Null } else { json!(last.abort_reason) },
                    "elapsed_ms": elapsed.as_millis() as u64,
                    "decided_ms": decided.map(|d| d.as_millis() as u64),
                    "acks": last.acks,
                    "acks_needed": last.acks_needed,
                    "threshold": last.threshold,
                })
            );
        } else {
            match outcome {
                "committed" if all => {
                    println!("epoch {} committed on every member in {:.0?}", a.epoch, elapsed)
                }
                "committed" => println!(
                    "epoch {} committed (decided after {:.0?}); some members have not confirmed yet",
                    a.epoch,
                    decided.unwrap_or(elapsed)
                ),
                "aborted" => println!("epoch {} aborted: {}", a.epoch, last.abort_reason),
                _ => println!(
                    "epoch {} did not commit within {}: {} of {} acks",
                    a.epoch,
                    humantime::format_duration(timeout),
                    last.acks,
                    last.acks_needed
                ),
            }
        }
        Ok(if outcome == "committed" { 0 } else { 1 })
    }

    pub(crate) async fn upgrade(&self, members: Vec<String>, threshold: u32) -> Result<u8, String> {
        let a = self
            .client
            .clone()
            .upgrade_from_legacy(pb::UpgradeFromLegacyRequest { members, threshold })
            .await
            .map_err(rpc_err)?
            .into_inner();
        self.print_attempt("started", &a);
        Ok(0)
    }

    pub(crate) async fn abort(&self) -> Result<u8, String> {
        let a = self.client.clone().abort(pb::AbortRequest {}).await.map_err(rpc_err)?.into_inner();
        self.print_attempt("aborted", &a);
        Ok(0)
    }

    pub(crate) async fn commit(&self) -> Result<u8, String> {
        let a = self
            .client
            .clone()
            .commit(pb::CommitEpochRequest {})
            .await
            .map_err(rpc_err)?
            .into_inner();
        self.print_attempt("committed", &a);
        Ok(0)
    }

    pub(crate) async fn watch(&self) -> Result<u8, String> {
        let mut s =
            self.client.clone().watch(pb::WatchRequest {}).await.map_err(rpc_err)?.into_inner();
        while let Some(status) = s.message().await.map_err(rpc_err)? {
            if self.json {
                println!("{}", render::status_json(&status));
            } else {
                println!("{}", render::status_table(&status));
            }
        }
        Ok(0)
    }
}

pub(crate) fn certs_init(
    dir: &Path,
    cluster_id: Option<String>,
    nodes: &[String],
    operator: &str,
    coordinator: &str,
    json: bool,
) -> Result<u8, String> {
    if dir.join("ca.pem").exists() {
        return Err(format!("{} already holds a CA: refusing to overwrite it", dir.display()));
    }
    let cluster: ClusterId = match cluster_id {
        Some(s) => s.parse().map_err(|e: tq_protocol::ids::ClusterIdError| e.to_string())?,
        None => tq_wire::pki::random_cluster_id().map_err(|e| e.to_string())?,
    };
    let nodes = nodes
        .iter()
        .map(|n| NodeId::new(n.as_str()).map_err(|e| format!("node {n:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    NodeId::new(operator).map_err(|e| format!("operator name {operator:?}: {e}"))?;
    let certs = tq_wire::pki::init_cluster_certs(dir, &cluster, &nodes, operator)
        .map_err(|e| e.to_string())?;
    let file = ClusterFile {
        cluster_id: cluster.to_string(),
        coordinator: coordinator.to_string(),
        tls: tq_wire::tls::TlsFiles {
            ca: relative(dir, &certs.ca),
            cert: relative(dir, &certs.operator.cert),
            key: relative(dir, &certs.operator.key),
        },
    };
    let cluster_file = dir.join("cluster.toml");
    file.write(&cluster_file)?;
    if json {
        println!(
            "{}",
            json!({"cluster_id": cluster.to_string(), "dir": dir.display().to_string(), "cluster_file": cluster_file.display().to_string()})
        );
    } else {
        println!(
            "cluster {cluster}: CA, coordinator, {} node and operator certificates in {}",
            nodes.len(),
            dir.display()
        );
        println!("cluster file: {} (use with --cluster or TQ_CLUSTER)", cluster_file.display());
        println!("keep {} off the cluster's machines", dir.join("ca-key.pem").display());
    }
    Ok(0)
}
