//! `share_combine`: rebuilding secrets and shares from arbitrary share sets (DESIGN §5):
//! Feldman shares over Ristretto255 (`combine`, `interpolate_share`, `verify_share`,
//! `check_secret`) and the legacy GF(256) split (`legacy::combine`).
//!
//! Share sets mix real shares of fixed dealings with tampered ones, shares moved to another
//! x, raw bytes (x = 0, x too large, wrong lengths, non-canonical values) and duplicates.
//! Checked: no panic; bytes that are not a share give the right typed error; fewer than K
//! shares or a repeated x among the K used is refused; otherwise the result is the dealt
//! secret (or share) exactly when the K shares used lie on the polynomial, and the Feldman
//! checks accept it exactly when it is the dealt one. Legacy: a share whose digest matches
//! its sender's is used, and what combines is the legacy secret.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use rand_core::SeedableRng;
use tq_protocol::crypto::legacy::{self, LegacyError, LegacyPackage, LegacyShare};
use tq_protocol::crypto::sharing::{
    Commitments, SharingError, check_secret, combine, deal, interpolate_share, random_secret,
    verify_share,
};
use tq_protocol::crypto::{ShareError, digest::Digest};
use tq_protocol::quorum::MAX_MEMBERS;
use tq_protocol::{NodeId, Secret, Share, ShareIndex, Threshold};

use crate::dealt::id;
use crate::input::Input;

/// Most shares in one set: above every fixture's K, so duplicates and extras are reachable.
const MAX_SHARES: u8 = 12;

/// One Feldman dealing with N shares and threshold K.
struct Fixture {
    k: Threshold,
    shares: Vec<Share>,
    commitments: Commitments,
    secret: Secret,
}

impl Fixture {
    /// The true share at `x` (beyond N, interpolated from the first K real shares).
    fn share_at(&self, x: ShareIndex) -> Share {
        match self.shares.get(usize::from(x.get()) - 1) {
            Some(s) => s.duplicate(),
            None => {
                let first: Vec<&Share> = self.shares[..self.k.get()].iter().collect();
                interpolate_share(&first, self.k, x)
                    .unwrap_or_else(|e| panic!("real shares do not interpolate: {e}"))
            }
        }
    }
}

struct World {
    /// Every (N, K) with 3 ≤ N ≤ 7 and 2 ≤ K < N.
    fixtures: Vec<Fixture>,
    legacy_secret: Secret,
    /// n0..n5, K = 3; `n6` holds nothing.
    legacy: BTreeMap<NodeId, LegacyPackage>,
}

const LEGACY_NODES: [&str; 7] = ["n0", "n1", "n2", "n3", "n4", "n5", "n6"];

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut fixtures = Vec::new();
        for n in 3..=7 {
            for k in 2..n {
                let mut rng = rand_chacha::ChaCha20Rng::from_seed([(n * 16 + k) as u8; 32]);
                let k = Threshold::new(k, n).unwrap_or_else(|e| panic!("{e}"));
                let secret = random_secret(&mut rng);
                let d = deal(&secret, k, n, &mut rng);
                fixtures.push(Fixture { k, shares: d.shares, commitments: d.commitments, secret });
            }
        }
        let ids: Vec<NodeId> = LEGACY_NODES[..6].iter().map(|n| id(n)).collect();
        let k = Threshold::new(3, ids.len()).unwrap_or_else(|e| panic!("{e}"));
        let legacy_secret = Secret::from_bytes(&mut [0x5a; 32]);
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([0x5a; 32]);
        let legacy = legacy::split(&legacy_secret, k, &ids, &mut rng);
        World { fixtures, legacy_secret, legacy }
    })
}

/// Runs one input: a mode byte (even: Feldman, odd: legacy), then the share set.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    if input.byte() & 1 == 0 { feldman(&mut input) } else { legacy_split(&mut input) }
}

fn feldman(input: &mut Input<'_>) {
    let w = world();
    let f = &w.fixtures[usize::from(input.byte()) % w.fixtures.len()];
    let target = index(input.u16());
    let count = input.byte() % (MAX_SHARES + 1);
    let mut shares: Vec<Share> = Vec::new();
    for _ in 0..count {
        if let Some(s) = pick(input, f, shares.last()) {
            shares.push(s);
        }
    }
    let refs: Vec<&Share> = shares.iter().collect();
    let k = f.k.get();
    let used = &refs[..k.min(refs.len())];
    let on_polynomial = used.iter().all(|s| {
        let ok = verify_share(s, &f.commitments).is_ok();
        assert_eq!(ok, s.ct_eq(&f.share_at(s.index())), "§5: Feldman check is wrong");
        ok
    });
    let repeated = first_repeat(used);

    match combine(&refs, f.k) {
        Err(SharingError::TooFewShares { got, needed }) => {
            assert_eq!((got, needed), (refs.len(), k));
            assert!(refs.len() < k, "refused {got} shares as too few for K = {k}");
        }
        Err(SharingError::DuplicateIndex(x)) => assert_eq!(repeated, Some(x), "wrong duplicate"),
        Err(e) => panic!("combine failed unexpectedly: {e}"),
        Ok(secret) => {
            assert!(refs.len() >= k && repeated.is_none(), "combined a set it must refuse");
            let right = secret.ct_eq(&f.secret);
            assert!(!on_polynomial || right, "§5: K valid shares rebuilt the wrong secret");
            let accepted = check_secret(&secret, &f.commitments).is_ok();
            assert_eq!(accepted, right, "§5: the constant-term check is wrong");
        }
    }

    let Some(x) = target else { return };
    match interpolate_share(&refs, f.k, x) {
        Err(SharingError::TooFewShares { .. }) => assert!(refs.len() < k),
        Err(SharingError::DuplicateIndex(d)) => assert_eq!(repeated, Some(d), "wrong duplicate"),
        Err(SharingError::TargetIndexGiven(i)) => {
            assert_eq!(i, x.get());
            assert!(used.iter().any(|s| s.index() == x), "refused an index that was not given");
        }
        Err(e) => panic!("interpolate_share failed unexpectedly: {e}"),
        Ok(share) => {
            assert!(refs.len() >= k && repeated.is_none(), "interpolated a set it must refuse");
            assert_eq!(share.index(), x);
            let right = share.ct_eq(&f.share_at(x));
            assert!(!on_polynomial || right, "§6.5: K valid shares gave the wrong share");
            let accepted = verify_share(&share, &f.commitments).is_ok();
            assert_eq!(accepted, right, "§5: the Feldman check is wrong");
        }
    }
}

/// A share index from two bytes, checking the typed refusal of bad ones (§5: x ≠ 0).
fn index(x: u16) -> Option<ShareIndex> {
    let x = u64::from(x);
    match ShareIndex::new(x) {
        Ok(i) => {
            assert!((1..=MAX_MEMBERS as u64).contains(&x), "accepted index {x}");
            Some(i)
        }
        Err(ShareError::ZeroIndex) => {
            assert_eq!(x, 0);
            None
        }
        Err(ShareError::IndexTooLarge(got)) => {
            assert!(got == x && x > MAX_MEMBERS as u64, "refused index {x}");
            None
        }
        Err(e) => panic!("index {x}: unexpected {e}"),
    }
}

/// One share: real, tampered, moved, raw bytes, or a copy of the previous one.
fn pick(input: &mut Input<'_>, f: &Fixture, previous: Option<&Share>) -> Option<Share> {
    let kind = input.byte();
    let real = &f.shares[usize::from(input.byte()) % f.shares.len()];
    match kind % 5 {
        0 => Some(real.duplicate()),
        1 => {
            let (at, bit) = (input.byte(), input.byte());
            let mut y = *real.expose_value();
            y[usize::from(at) % 32] ^= 1 << (bit % 8);
            value(real.index(), &y)
        }
        2 => {
            let x = index(input.u16())?;
            value(x, real.expose_value())
        }
        3 => {
            let x = index(input.u16())?;
            let len = usize::from(input.byte() % 40);
            value(x, input.bytes(len))
        }
        _ => previous.map(Share::duplicate),
    }
}

/// A share from value bytes, checking the typed refusal of bad ones (§5).
fn value(x: ShareIndex, y: &[u8]) -> Option<Share> {
    match Share::from_bytes(x, y) {
        Ok(s) => {
            assert_eq!(y.len(), 32, "accepted a {}-byte share", y.len());
            Some(s)
        }
        Err(ShareError::Length(n)) => {
            assert!(n == y.len() && n != 32, "refused a 32-byte share for its length");
            None
        }
        Err(ShareError::NotCanonical) => {
            assert_eq!(y.len(), 32);
            // Canonical scalars are below 2^253: the top 3 bits of the last byte are clear.
            assert!(y[31] >= 0x10, "refused a small scalar as non-canonical");
            None
        }
        Err(e) => panic!("share value: unexpected {e}"),
    }
}

/// The first x repeated among `used`, if any.
fn first_repeat(used: &[&Share]) -> Option<u16> {
    let mut seen = BTreeSet::new();
    used.iter().map(|s| s.index().get()).find(|x| !seen.insert(*x))
}

fn legacy_split(input: &mut Input<'_>) {
    let w = world();
    let some = |n: &str| w.legacy.get(&id(n)).unwrap_or_else(|| panic!("no legacy {n}"));
    let k = some("n0").threshold;
    let mut digests = some("n0").digests.clone();
    // Sometimes the stranger n6 is listed with someone else's digest: a share then matches
    // two senders, and the duplicate x must be caught.
    let alias = input.byte();
    if alias & 1 == 1 {
        let d: Digest =
            digests.values().nth(usize::from(alias >> 1) % 6).copied().unwrap_or(Digest([0; 32]));
        digests.insert(id("n6"), d);
    }
    let count = input.byte() % 8;
    let mut shares: BTreeMap<NodeId, LegacyShare> = BTreeMap::new();
    for _ in 0..count {
        let sender = id(LEGACY_NODES[usize::from(input.byte()) % LEGACY_NODES.len()]);
        let owner = LEGACY_NODES[usize::from(input.byte()) % 6];
        let real = some(owner).share.duplicate();
        let share = match input.byte() % 3 {
            0 => Some(real),
            1 => {
                let mut b = *real.expose();
                b[usize::from(input.byte()) % b.len()] ^= 1;
                legacy_bytes(&b)
            }
            _ => {
                let len = usize::from(input.byte() % 40);
                legacy_bytes(input.bytes(len))
            }
        };
        if let Some(s) = share {
            shares.insert(sender, s);
        }
    }
    match legacy::combine(k, &digests, &shares) {
        Ok(secret) => assert!(secret.ct_eq(&w.legacy_secret), "§6.10: wrong legacy secret"),
        Err(LegacyError::TooFewShares { got, needed }) => {
            assert!(got == shares.len() && got < needed && needed == k.get());
        }
        Err(LegacyError::UnknownDigest(from)) => {
            let share = shares.get(&from).unwrap_or_else(|| panic!("blamed absent {from}"));
            assert_ne!(digests.get(&from), Some(&share.digest()), "blamed a matching share");
        }
        Err(LegacyError::DuplicateIndex(_)) => assert!(alias & 1 == 1, "duplicate without alias"),
        Err(e) => panic!("legacy combine: unexpected {e}"),
    }
}

/// A legacy share from bytes, checking the typed refusal of bad ones.
fn legacy_bytes(b: &[u8]) -> Option<LegacyShare> {
    match LegacyShare::from_bytes(b) {
        Ok(s) => {
            assert!(b.len() == legacy::LEGACY_SHARE_LEN && b[0] != 0, "accepted a bad share");
            Some(s)
        }
        Err(LegacyError::Length(n)) => {
            assert!(n == b.len() && n != legacy::LEGACY_SHARE_LEN);
            None
        }
        Err(LegacyError::ZeroIndex) => {
            assert_eq!(b[0], 0);
            None
        }
        Err(e) => panic!("legacy share bytes: unexpected {e}"),
    }
}

/// Hand-made share sets, for the seed corpus.
pub fn seeds() -> Vec<Vec<u8>> {
    vec![
        // N = 5, K = 3 (fixture 6): three real shares, target x = 2.
        vec![0, 6, 0, 2, 3, 0, 0, 0, 2, 0, 4],
        // Same, with a tampered share and a duplicate.
        vec![0, 6, 0, 9, 4, 0, 0, 1, 1, 5, 3, 4, 0],
        // A share moved to x = 7 and a raw 32-byte value; target beyond N.
        vec![0, 9, 0, 12, 3, 2, 1, 0, 7, 3, 0, 0, 1, 32, 1, 2, 3, 4, 5, 6, 7, 8],
        // Too few shares; target x = 0.
        vec![0, 0, 0, 0, 1, 0, 0],
        // Legacy: three real shares; then an alias and a tampered share.
        vec![1, 0, 3, 0, 0, 0, 1, 1, 0, 2, 2, 0],
        vec![1, 1, 4, 6, 0, 0, 0, 0, 0, 1, 1, 1, 3, 2, 2, 0],
    ]
}
