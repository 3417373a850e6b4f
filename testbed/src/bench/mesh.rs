//! Meshes (`--nodes` above [`SEPARATE_MAX`]): more agents than two cores can run as separate
//! processes. The agents share [`HOST_PROCESSES`] `tq-testbed agent-host` processes, each
//! agent with its own sled store, TLS identity, listener and key socket, and talking to the
//! others over loopback mTLS as separate processes do. They start locked (their hosts have
//! not asked for the secret): a re-key after every rotation would be N × (N − 1) share
//! requests, which a real mesh spreads over N machines and this one would serialize on two
//! cores. Scenarios: rotations (`reconfigure_warm`, no re-key), unlock on a few agents
//! (`unlock_warm`), and `status_saturated`.

use serde_json::json;

use super::Bench;
use super::floor::Floors;
use super::stats::Samples;
use crate::local::LocalCluster;

/// The most agents run as separate `tq-agent` processes.
pub(super) const SEPARATE_MAX: usize = 32;
/// How many processes a mesh's agents share.
pub(super) const HOST_PROCESSES: usize = 16;
/// How many agents take turns in `unlock_warm` (each warms its channels once, untimed).
const UNLOCKERS: usize = 4;

/// Prepares a mesh's cluster before it starts: shared processes, agents locked.
pub(super) fn prepare(c: &mut LocalCluster) -> Result<String, String> {
    let per = c.nodes().len().div_ceil(HOST_PROCESSES);
    c.share_processes(per);
    for id in c.nodes() {
        super::unlock::set_unlock_on_start(c, id.as_str(), false)?;
    }
    Ok(format!(
        "{} agents in {} tq-testbed agent-host processes ({per} each, each agent with its own \
         store, TLS identity and listener) and a real tq-coordinator process; agents locked",
        c.nodes().len(),
        c.nodes().len().div_ceil(per)
    ))
}

impl Bench {
    /// The mesh's scenarios.
    pub(super) async fn mesh_scenarios(&mut self, floors: &Floors) -> Result<(), String> {
        self.sample_rss();
        self.rotations_without_rekey("reconfigure_warm", floors).await?;
        self.sample_rss();
        self.mesh_unlock(floors).await?;
        self.status_saturated(floors).await?;
        self.sample_rss();
        Ok(())
    }

    /// A few agents unlock in turn (from all N − 1 peers, K − 1 answers needed).
    async fn mesh_unlock(&mut self, floors: &Floors) -> Result<(), String> {
        let who: Vec<usize> = (0..UNLOCKERS.min(self.n())).collect();
        let mut keys = self.key_clients(&who).await?;
        let mut s = Samples::new();
        for i in 0..keys.len() + self.runs {
            let d = self.relock(&mut keys[i % who.len()]).await?;
            if i >= keys.len() {
                s.push(d);
            }
        }
        for k in &mut keys {
            k.lock(tq_wire::pb::LockRequest {}).await.map_err(super::clients::rpc_err("lock"))?;
        }
        self.record("unlock_warm", &s, floors.fanout.p50(), json!({ "agents": who.len() }));
        Ok(())
    }
}
