//! Services that stop by themselves (a durable write failed, DESIGN §7): starting them with
//! failpoints the test arms, and collecting the error their `run` returned.

// Each test binary uses part of the harness.
#![allow(dead_code)]

use tq_wire::failpoint::Failpoints;

use super::*;

impl<E> Running<E> {
    /// Waits for `run` to return by itself (nobody triggered its shutdown); returns its error.
    async fn failed(mut self, what: &str) -> E {
        match tokio::time::timeout(DEADLINE, &mut self.task).await {
            Ok(Ok(Err(e))) => e,
            Ok(Ok(Ok(()))) => panic!("{what} stopped without an error"),
            Ok(Err(e)) => panic!("{what} task failed: {e}"),
            Err(_) => panic!("{what} still runs after {DEADLINE:?}"),
        }
    }
}

impl Cluster {
    /// Stops agent `n` and starts it again with `failpoints` (which the test arms later).
    pub(crate) async fn restart_agent_with_failpoints(&mut self, n: &NodeId, fp: &Failpoints) {
        self.stop_agent(n).await;
        let mut config = self.agent_config(n);
        config.failpoints = fp.clone();
        self.start_agent_with(n, config).await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts the coordinator with `failpoints` (which the test arms later).
    pub(crate) async fn start_coordinator_with_failpoints(&mut self, fp: &Failpoints) {
        let mut config = self.coordinator_config();
        config.failpoints = fp.clone();
        self.start_coordinator_with(config).await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// Waits for agent `n` to stop by itself; returns the error its `run` returned.
    pub(crate) async fn agent_failed(&mut self, n: &NodeId) -> AgentError {
        let running =
            self.agent_mut(n).running.take().unwrap_or_else(|| panic!("agent {n} is not running"));
        running.failed(&format!("agent {n}")).await
    }

    /// Waits for the coordinator to stop by itself; returns the error its `run` returned.
    pub(crate) async fn coordinator_failed(&mut self) -> CoordinatorError {
        let running = self.coordinator.take().expect("the coordinator is not running");
        running.failed("the coordinator").await
    }
}
