//! What happens in a simulated case, as data: the setup and the event log. Replaying the
//! same log gives the same run, byte for byte (every random choice is in it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a case is set up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseSetup {
    /// The run's seed.
    pub seed: u64,
    /// The case number within the run.
    pub case: u64,
    /// Every node's id (some start as spares, outside the first configuration).
    pub nodes: Vec<String>,
    /// The operator commits by hand.
    pub manual_commit: bool,
    /// The coordinator may equivocate and hand out bad shares.
    pub faulty_coordinator: bool,
    /// Nodes start with a legacy split of this threshold (§6.10).
    pub legacy_threshold: Option<usize>,
    /// Legacy packages damaged before the case starts, by node. At least K + 1 stay intact,
    /// so the upgrade must still complete, with the legacy secret.
    #[serde(default)]
    pub legacy_damage: BTreeMap<String, LegacyDamage>,
    /// A deliberately broken rule (`--inject-bug`).
    pub bug: Option<String>,
}

/// How a node's legacy package is damaged (§6.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegacyDamage {
    /// A bit of its share flipped: the share no longer matches its own digest.
    CorruptShare,
    /// A package of another split of another secret, shared by every node so damaged.
    OtherSplit,
    /// Its own share and digests, with another K.
    OtherThreshold,
}

/// How a faulty coordinator tampers with a Prepare in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tamper {
    /// Replace it with another dealing for the same epoch (alternative `variant`).
    Equivocate {
        /// Which alternative dealing (the same variant gives the same configuration).
        variant: u8,
    },
    /// Flip a bit of the share: its digest no longer matches.
    CorruptShare,
    /// Replace the share with one off the polynomial and record that share's digest, so only
    /// the Feldman check can catch it.
    ForgeShare,
}

/// One step of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Deliver message `id`.
    Deliver {
        /// The message.
        id: u64,
    },
    /// Lose message `id`.
    Drop {
        /// The message.
        id: u64,
    },
    /// Deliver a copy of message `id` later too.
    Duplicate {
        /// The message.
        id: u64,
    },
    /// Cut a node off from everyone.
    Partition {
        /// The node.
        node: String,
    },
    /// Restore every link.
    Heal,
    /// Let time pass, then tick every live process.
    Tick {
        /// Milliseconds.
        ms: u64,
    },
    /// Kill a node: everything not durable is lost.
    CrashNode {
        /// The node.
        node: String,
    },
    /// Operator: wipe a node's state and restart its agent (how a removed node comes back).
    Wipe {
        /// The node.
        node: String,
    },
    /// Start a crashed node from its disk.
    RestartNode {
        /// The node.
        node: String,
    },
    /// Kill the coordinator.
    CrashCoordinator,
    /// Start the coordinator from its ledger.
    RestartCoordinator,
    /// Operator: a new configuration.
    Reconfigure {
        /// Its members.
        members: Vec<String>,
        /// K.
        threshold: usize,
        /// The dealing's randomness.
        entropy: [u8; 32],
    },
    /// Operator: upgrade from the legacy split.
    LegacyUpgrade {
        /// The first epoch's members.
        members: Vec<String>,
        /// K.
        threshold: usize,
        /// The dealing's randomness.
        entropy: [u8; 32],
    },
    /// Operator: abort the epoch in flight.
    Abort,
    /// Operator: commit the preparing epoch.
    Commit,
    /// Operator on a node's host: unlock.
    Unlock {
        /// The node.
        node: String,
    },
    /// Faulty coordinator: tamper with Prepare message `id`.
    Tamper {
        /// The message.
        id: u64,
        /// How.
        how: Tamper,
    },
}
