//! The legacy share package file (DESIGN §6.10) that `tq-agent --import-legacy` reads: what
//! a flat, unversioned split left on each machine, written out as TOML:
//!
//! ```toml
//! format = "tq-legacy-package-v1"
//! node_id = "node-3"           # the agent this package belongs to
//! threshold = 3                # K of the legacy split
//! share = "03…"                # x ‖ y: 33 bytes, hex; x ≠ 0
//! [digests]                    # every holder's SHA3-256(share), hex
//! node-1 = "…"
//! ```
//!
//! The share is a secret: no error names a value, only a key or a line. TOML is parsed to a
//! table first and read key by key, because the parser's and serde's own messages quote the
//! offending text, which may be the share.

use std::collections::BTreeMap;

use toml::{Table, Value};
use tq_protocol::crypto::legacy::{LegacyError, LegacyPackage, LegacyShare};
use tq_protocol::{Digest, NodeId, Threshold};
use zeroize::{Zeroize, Zeroizing};

/// The `format` every package file names.
pub const FORMAT: &str = "tq-legacy-package-v1";

/// The most holders a legacy split can have: its share index is one byte.
const MAX_HOLDERS: usize = 255;

/// Why a package file is refused. Never carries the share or any part of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageFileError {
    /// Not TOML.
    #[error("line {0} is not valid TOML")]
    Syntax(usize),
    /// A key the format does not have.
    #[error("unknown key `{0}`")]
    UnknownKey(String),
    /// A key the format needs.
    #[error("`{0}` is missing")]
    Missing(&'static str),
    /// A key whose value has the wrong type or form.
    #[error("`{key}` {why}")]
    Invalid {
        /// The key.
        key: String,
        /// What is wrong with it, without its value.
        why: String,
    },
    /// Another format, or a later version of this one.
    #[error("format is not \"{FORMAT}\"")]
    Format,
    /// The package belongs to another node.
    #[error("the package is for {found}, this agent is {expected}")]
    OtherNode {
        /// The file's `node_id`.
        found: NodeId,
        /// The agent's.
        expected: NodeId,
    },
    /// The digests do not name this node.
    #[error("`digests` has no entry for {0}, the package's own node")]
    NotNamed(NodeId),
    /// The share is not what the package's own digest says: a damaged or mixed-up file.
    #[error("the share does not match the digest recorded for {0}: the package is damaged")]
    ShareDigest(NodeId),
}

fn invalid(key: &str, why: impl ToString) -> PackageFileError {
    PackageFileError::Invalid { key: key.into(), why: why.to_string() }
}

/// Parses and checks a package file for node `me`.
pub fn parse(text: &str, me: &NodeId) -> Result<LegacyPackage, PackageFileError> {
    let mut table: Table = text.parse().map_err(|e: toml::de::Error| {
        let at = e.span().map_or(0, |s| s.start);
        // Bytes, not chars: a span inside a multi-byte character must not panic.
        let lines = text.as_bytes().iter().take(at).filter(|&&b| b == b'\n').count();
        PackageFileError::Syntax(1 + lines)
    })?;
    // Taken out first, so it is wiped whatever else is wrong.
    let share = match table.remove("share") {
        Some(Value::String(s)) => Some(Zeroizing::new(s)),
        Some(_) => return Err(invalid("share", "must be a hex string")),
        None => None,
    };
    if let Some(k) =
        table.keys().find(|k| !["format", "node_id", "threshold", "digests"].contains(&k.as_str()))
    {
        return Err(PackageFileError::UnknownKey(k.clone()));
    }
    match table.get("format") {
        Some(Value::String(f)) if f == FORMAT => {}
        Some(_) => return Err(PackageFileError::Format),
        None => return Err(PackageFileError::Missing("format")),
    }
    let node = match table.get("node_id") {
        Some(Value::String(s)) => NodeId::new(s.as_str()).map_err(|e| invalid("node_id", e))?,
        Some(_) => return Err(invalid("node_id", "must be a string")),
        None => return Err(PackageFileError::Missing("node_id")),
    };
    if &node != me {
        return Err(PackageFileError::OtherNode { found: node, expected: me.clone() });
    }
    let digests = digests(table.get("digests"))?;
    let threshold = match table.get("threshold") {
        Some(Value::Integer(k)) => usize::try_from(*k)
            .ok()
            .and_then(|k| Threshold::new(k, digests.len()).ok())
            .ok_or_else(|| {
                invalid(
                    "threshold",
                    format!("must be 2 to {} (one less than the holders)", digests.len() - 1),
                )
            })?,
        Some(_) => return Err(invalid("threshold", "must be an integer")),
        None => return Err(PackageFileError::Missing("threshold")),
    };
    let share = share.ok_or(PackageFileError::Missing("share"))?;
    let mut bytes =
        Zeroizing::new(hex::decode(share.as_str()).map_err(|_| invalid("share", "is not hex"))?);
    let share = LegacyShare::from_bytes(&bytes).map_err(|e| match e {
        LegacyError::Length(n) => invalid("share", format!("must be 33 bytes, got {n}")),
        _ => invalid("share", "has index 0, which no share may have"),
    })?;
    bytes.zeroize();
    match digests.get(me) {
        None => return Err(PackageFileError::NotNamed(me.clone())),
        Some(d) if *d != share.digest() => {
            return Err(PackageFileError::ShareDigest(me.clone()));
        }
        Some(_) => {}
    }
    Ok(LegacyPackage { threshold, share, digests })
}

fn digests(v: Option<&Value>) -> Result<BTreeMap<NodeId, Digest>, PackageFileError> {
    let t = match v {
        Some(Value::Table(t)) => t,
        Some(_) => return Err(invalid("digests", "must be a table of node id = hex digest")),
        None => return Err(PackageFileError::Missing("digests")),
    };
    if !(3..=MAX_HOLDERS).contains(&t.len()) {
        return Err(invalid(
            "digests",
            format!("must name 3 to {MAX_HOLDERS} holders, not {}", t.len()),
        ));
    }
    let mut out = BTreeMap::new();
    for (name, d) in t {
        let key = format!("digests.{name}");
        let id = NodeId::new(name.as_str()).map_err(|e| invalid(&key, e))?;
        let bytes = match d {
            // Wiped: a share misplaced under [digests] lands here.
            Value::String(s) => {
                Zeroizing::new(hex::decode(s).map_err(|_| invalid(&key, "is not hex"))?)
            }
            _ => return Err(invalid(&key, "must be a hex string")),
        };
        let d: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| invalid(&key, format!("must be 32 bytes, got {}", bytes.len())))?;
        out.insert(id, Digest(d));
    }
    Ok(out)
}

/// Writes `pkg` as `node`'s package file (for legacy fixtures: the inverse of [`parse`]).
pub fn render(node: &NodeId, pkg: &LegacyPackage) -> Zeroizing<String> {
    // Sized up front: growing would free copies of the share unwiped.
    let mut out = Zeroizing::new(String::with_capacity(200 + 140 * pkg.digests.len()));
    out.push_str(&format!(
        "format = \"{FORMAT}\"\nnode_id = \"{node}\"\nthreshold = {}\nshare = \"",
        pkg.threshold.get()
    ));
    let mut share = Zeroizing::new(hex::encode(pkg.share.expose()));
    out.push_str(&share);
    share.zeroize();
    out.push_str("\"\n\n[digests]\n");
    for (id, d) in &pkg.digests {
        out.push_str(&format!("{id} = \"{}\"\n", hex::encode(d.0)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;
    use tq_protocol::crypto::legacy;
    use tq_protocol::crypto::secret::Secret;

    fn ids() -> Vec<NodeId> {
        (1..=4).map(|i| NodeId::new(format!("node-{i}")).unwrap()).collect()
    }

    fn packages() -> BTreeMap<NodeId, LegacyPackage> {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([5; 32]);
        let secret = Secret::from_bytes(&mut [0x17; 32]);
        legacy::split(&secret, Threshold::new(2, 4).unwrap(), &ids(), &mut rng)
    }

    fn file(n: usize) -> (NodeId, String, String) {
        let id = ids()[n].clone();
        let pkgs = packages();
        let share = hex::encode(pkgs[&id].share.expose());
        (id.clone(), render(&id, &pkgs[&id]).to_string(), share)
    }

    #[test]
    fn a_rendered_package_parses_back_to_the_same_package_section_6_10() {
        let (id, text, _) = file(2);
        let pkg = parse(&text, &id).unwrap();
        let want = &packages()[&id];
        assert_eq!(pkg.share.expose(), want.share.expose());
        assert_eq!(pkg.digests, want.digests);
        assert_eq!(pkg.threshold, want.threshold);
    }

    /// Every refusal is specific, and none of them repeats the share (§5: secrets never
    /// reach errors).
    #[test]
    fn a_bad_package_file_is_refused_by_name_without_quoting_the_share_section_6_10() {
        let (id, text, share) = file(0);
        let other = ids()[1].clone();
        let edit = |from: &str, to: &str| text.replacen(from, to, 1);
        let damaged = {
            // The last hex digit of the share, changed: still hex, still 33 bytes.
            let last = &share[share.len() - 1..];
            let flipped = if last == "0" { "1" } else { "0" };
            edit(&share, &format!("{}{flipped}", &share[..share.len() - 1]))
        };
        let cases: Vec<(String, PackageFileError)> = vec![
            (edit("threshold = 2", "threshold = = 2"), PackageFileError::Syntax(3)),
            (
                edit("threshold = 2", "threshold = 2\nsecret = 1"),
                PackageFileError::UnknownKey("secret".into()),
            ),
            (
                edit("format = \"tq-legacy-package-v1\"", "format = \"v2\""),
                PackageFileError::Format,
            ),
            (
                edit("node_id = \"node-1\"", "node_id = \"node-2\""),
                PackageFileError::OtherNode { found: other, expected: id.clone() },
            ),
            (
                edit("threshold = 2", "threshold = 4"),
                invalid("threshold", "must be 2 to 3 (one less than the holders)"),
            ),
            (
                edit(&format!("share = \"{share}\""), "share = 7"),
                invalid("share", "must be a hex string"),
            ),
            (edit(&share, &format!("{share}zz")), invalid("share", "is not hex")),
            (edit(&share, &share[..64]), invalid("share", "must be 33 bytes, got 32")),
            (
                edit(&share, &format!("00{}", &share[2..])),
                invalid("share", "has index 0, which no share may have"),
            ),
            (damaged, PackageFileError::ShareDigest(id.clone())),
            (
                edit("node-4 = ", "Node-4 = "),
                invalid("digests.Node-4", "node id may only contain a-z, 0-9 and '-', found 'N'"),
            ),
            (
                text.lines().filter(|l| !l.starts_with("node-1 =")).collect::<Vec<_>>().join("\n"),
                PackageFileError::NotNamed(id.clone()),
            ),
            (
                text.lines().filter(|l| !l.starts_with("share")).collect::<Vec<_>>().join("\n"),
                PackageFileError::Missing("share"),
            ),
        ];
        for (bad, want) in cases {
            let got = parse(&bad, &id).err();
            assert_eq!(got.as_ref(), Some(&want));
            let shown = got.map(|e| e.to_string()).unwrap_or_default();
            assert!(!shown.contains(&share[2..20]), "the error quotes the share: {shown}");
        }
    }
}
