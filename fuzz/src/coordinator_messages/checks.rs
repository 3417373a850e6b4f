//! What `coordinator_messages` checks on every output and after every step (see the
//! parent module's documentation for the list, with its DESIGN sections).

use super::*;

impl Harness {
    pub(super) fn check_change(&self, change: &LedgerChange) {
        let l = &self.durable;
        match change {
            LedgerChange::EpochReserved(e) => {
                assert!(Some(*e) > l.highest_epoch, "§6.1: epoch {e:?} handed out twice");
            }
            LedgerChange::Committed { config, by_operator } => {
                let e = config.epoch();
                assert!(Some(e) <= l.highest_epoch, "committed unreserved {e:?}");
                assert!(!l.committed.contains_key(&e), "I2: {e:?} committed twice");
                assert!(!l.aborted.contains_key(&e), "committed aborted {e:?}");
                assert!(Some(e) > l.latest_committed(), "§6.8: commit below the latest");
                let dealt = self.dealings.get(&e).map(|d| d.config.digest());
                assert_eq!(dealt, Some(config.digest()), "committed a configuration never sent");
                let acks = self
                    .acks
                    .get(&e)
                    .map_or(0, |a| a.iter().filter(|n| config.is_member(n)).count());
                let needed =
                    if *by_operator { config.threshold().get() } else { config.acks_needed() };
                assert!(acks >= needed, "I4: {e:?} committed with {acks} acks of {needed}");
            }
            LedgerChange::Aborted { epoch, .. } => {
                assert!(!l.committed.contains_key(epoch), "§6.4: aborted committed {epoch:?}");
                assert!(Some(*epoch) <= l.highest_epoch, "aborted unreserved {epoch:?}");
            }
            LedgerChange::NodeEnrolled { .. } => {}
        }
    }

    pub(super) fn check_send(&mut self, to: &NodeId, request: &Request) {
        let l = &self.durable;
        match request {
            Request::Prepare { config, share } => {
                let e = config.epoch();
                assert_eq!(Some(e), l.highest_epoch, "§6.1: dealt {e:?} before reserving it");
                assert_eq!(*config.cluster_id(), CLUSTER, "dealt for another cluster");
                assert!(config.is_member(to), "Prepare of {e:?} to non-member {to}");
                assert!(!l.is_removed(to), "I8: Prepare of {e:?} to removed {to}");
                assert!(config.share_matches(to, share), "{to}'s share misses its digest");
                self.note_prepare(to, config, share);
            }
            Request::Commit { epoch, digest } => {
                assert_eq!(l.committed.get(epoch), Some(digest), "§6.4: Commit before decision");
                let member = self.dealings.get(epoch).is_some_and(|d| d.config.is_member(to));
                assert!(member, "Commit of {epoch:?} to non-member {to}");
            }
            Request::PrepareAndCommit { config } => {
                let e = config.epoch();
                assert_eq!(l.committed.get(&e), Some(&config.digest()), "§6.4: before decision");
                assert!(config.is_member(to), "PrepareAndCommit of {e:?} to non-member {to}");
            }
            Request::GetShare { epoch, digest } => {
                let latest = l.latest.as_ref().unwrap_or_else(|| panic!("GetShare, no commit"));
                assert_eq!(latest.epoch(), *epoch, "§6.2: asked for shares of an old epoch");
                assert_eq!(*digest, Some(latest.digest()));
                assert!(latest.is_member(to), "§6.2: asked non-member {to} for a share");
            }
            Request::GetLegacyShare => {
                assert!(l.known.contains_key(to), "asked unknown {to} for a legacy share");
            }
            Request::Status => {}
        }
    }

    pub(super) fn note_prepare(&mut self, to: &NodeId, config: &Arc<Configuration>, share: &Share) {
        let e = config.epoch();
        if !self.dealings.contains_key(&e) {
            let expected_prior = match (config.previous_epoch(), self.durable.latest_committed()) {
                (None, None) => Some(SecretHistory::default()),
                (Some(p), Some(c)) if p == c => {
                    let from = self.dealings.get(&p).and_then(|d| d.history.as_ref());
                    let from = from.unwrap_or_else(|| panic!("{p:?} committed, never checked"));
                    Some(from.duplicate())
                }
                (Some(p), None) if p == Epoch::FIRST => None,
                (p, c) => panic!("§6.8: {e:?} replaces {p:?}; the latest commit is {c:?}"),
            };
            let dealing = Dealing {
                config: config.clone(),
                shares: BTreeMap::new(),
                expected_prior,
                history: None,
            };
            self.dealings.insert(e, dealing);
        }
        let Some(d) = self.dealings.get_mut(&e) else { return };
        assert!(d.config == *config, "two configurations dealt for {e:?}");
        match d.shares.get(to) {
            Some(s) => assert!(s.ct_eq(share), "{to} was sent two shares of {e:?}"),
            None => {
                let ok = verify_share(share, config.commitments()).is_ok();
                assert!(ok, "§5: {to}'s share of {e:?} is not on the committed polynomial");
                d.shares.insert(to.clone(), share.duplicate());
            }
        }
    }

    /// Once K shares of a dealing were seen: the secret they rebuild matches its commitment
    /// and its prior secrets open to exactly the history carried forward. Not every member's:
    /// one that re-enrolled with a removed node's state gets no share (I8), and the epoch may
    /// still commit without it. Each share is checked against the commitments as it is sent.
    pub(super) fn check_dealings(&mut self) {
        let legacy: Vec<&Secret> = self.w.legacy.iter().map(|(s, _)| s).collect();
        for (e, d) in &mut self.dealings {
            if d.history.is_some() || d.shares.len() < d.config.threshold().get() {
                continue;
            }
            let shares: Vec<&Share> = d.shares.values().collect();
            let secret = combine(&shares, d.config.threshold())
                .unwrap_or_else(|err| panic!("{e:?}'s shares do not combine: {err}"));
            assert!(check_secret(&secret, d.config.commitments()).is_ok(), "§5: bad dealing");
            let opened = match d.config.prior_secrets() {
                None => SecretHistory::default(),
                Some(sealed) => open(&secret, &CLUSTER, *e, sealed)
                    .unwrap_or_else(|err| panic!("{e:?}'s prior secrets do not open: {err}")),
            };
            match &d.expected_prior {
                Some(expected) => {
                    assert!(opened.ct_eq(expected), "§6.2: {e:?} carries the wrong history")
                }
                None => {
                    let one = opened.0.len() == 1;
                    let legacy_secret = opened.0.get(&Epoch::FIRST);
                    let known = legacy_secret.is_some_and(|s| legacy.iter().any(|l| l.ct_eq(s)));
                    assert!(one && known, "§6.10: {e:?} does not carry the legacy secret");
                }
            }
            let mut history = opened;
            history.0.insert(*e, secret);
            d.history = Some(history);
        }
    }

    pub(super) fn check_ledger(
        &self,
        before: (Option<Epoch>, Option<Epoch>),
        committed: &BTreeMap<Epoch, Digest>,
    ) {
        let (mine, theirs) = (&self.durable, self.coord.ledger());
        let same = mine.cluster_id == theirs.cluster_id
            && mine.highest_epoch == theirs.highest_epoch
            && mine.committed == theirs.committed
            && mine.latest == theirs.latest
            && mine.former_members == theirs.former_members
            && mine.aborted == theirs.aborted
            && mine.known == theirs.known;
        assert!(same, "§7: the ledger in memory is not the one persisted");
        mine.check().unwrap_or_else(|e| panic!("§7: the persisted ledger fails its check: {e}"));
        assert!(mine.highest_epoch >= before.0, "the highest epoch went down");
        assert!(mine.latest_committed() >= before.1, "§6.4: a commit was undone");
        assert!(
            committed.iter().all(|(e, d)| mine.committed.get(e) == Some(d)),
            "§6.4: a commit decision changed"
        );
    }

    /// The version must move whenever the status does (§8), except that contact times and
    /// how long a node has been silent may advance without it.
    pub(super) fn check_status(&mut self) {
        let status = self.coord.status(self.now);
        assert_eq!(status.latest_committed_epoch, self.durable.latest_committed());
        if let Some(last) = &self.last_status
            && last.version == status.version
        {
            let (a, b) = (comparable(last), comparable(&status));
            assert!(a == b, "§8: the status changed but its version did not: {a:?} → {b:?}");
        }
        self.last_status = Some(status);
    }
}

/// The status without what may change under one version.
fn comparable(s: &ClusterStatus) -> ClusterStatus {
    let mut s = s.clone();
    for m in &mut s.members {
        m.last_contact = None;
        if let Some(StaleReason::NoContact { for_ms }) = &mut m.stale {
            *for_ms = 0;
        }
    }
    s
}
