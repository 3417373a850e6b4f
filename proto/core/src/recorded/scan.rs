//! Searching text for recorded values in every form a log line could carry them: hex
//! (either case, either byte order: a scalar printed as a big-endian number), base64
//! (standard and URL-safe, padded or not, at any alignment inside a longer encoding), and
//! Rust `Debug` of a byte array or slice (decimal, `{:x?}`, `{:X?}`, `{:02x?}`; `{:#?}` too, since
//! whitespace is ignored). Every form is searched as a substring, so a value inside a longer
//! buffer (a message's bytes, a plaintext) is found as well.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Kind, Recorded};

/// Values shorter than this are not searched for: their encodings are too short to tell
/// from other text.
pub const MIN_LEN: usize = 16;

/// Values with fewer distinct bytes than this are not searched for: they are hand-made test
/// values (`[5; 32]`), never drawn at random, and runs like `0000…` occur in honest text.
pub const MIN_DISTINCT_BYTES: usize = 8;

/// How a value was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Form {
    /// Lowercase hex.
    HexLower,
    /// Uppercase hex.
    HexUpper,
    /// Lowercase hex of the bytes reversed.
    HexLowerReversed,
    /// Uppercase hex of the bytes reversed.
    HexUpperReversed,
    /// Standard base64, the value starting `shift` bytes into a 3-byte group.
    Base64 {
        /// 0, 1 or 2.
        shift: u8,
    },
    /// URL-safe base64, the value starting `shift` bytes into a 3-byte group.
    Base64Url {
        /// 0, 1 or 2.
        shift: u8,
    },
    /// `{:?}` of the bytes: `[1, 2, 3]`.
    DebugDecimal,
    /// `{:x?}` of the bytes.
    DebugHexLower,
    /// `{:X?}` of the bytes.
    DebugHexUpper,
    /// `{:02x?}` of the bytes.
    DebugHexPadded,
}

impl std::fmt::Display for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Form::HexLower => f.write_str("hex"),
            Form::HexUpper => f.write_str("uppercase hex"),
            Form::HexLowerReversed => f.write_str("hex, bytes reversed"),
            Form::HexUpperReversed => f.write_str("uppercase hex, bytes reversed"),
            Form::Base64 { shift } => write!(f, "base64 (alignment {shift})"),
            Form::Base64Url { shift } => write!(f, "URL-safe base64 (alignment {shift})"),
            Form::DebugDecimal => f.write_str("Debug of the bytes"),
            Form::DebugHexLower => f.write_str("{:x?} of the bytes"),
            Form::DebugHexUpper => f.write_str("{:X?} of the bytes"),
            Form::DebugHexPadded => f.write_str("{:02x?} of the bytes"),
        }
    }
}

/// One value found in a text. Names the value by its kind and number, never its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    /// What was found.
    pub kind: Kind,
    /// Which of the searched values (in the order given to [`Needles::new`]).
    pub value: usize,
    /// How it was written.
    pub form: Form,
}

struct Needle {
    value: usize,
    form: Form,
    text: Vec<u8>,
}

/// Every form of every value worth searching for, indexed by each form's first 8 bytes.
pub struct Needles {
    kinds: Vec<Kind>,
    searched: BTreeMap<Kind, usize>,
    skipped: usize,
    needles: Vec<Needle>,
    /// (first 8 bytes, needle), sorted.
    index: Vec<([u8; 8], usize)>,
    /// Whether any needle starts with these two bytes: most positions stop here.
    first_two: Vec<bool>,
}

const PREFIX: usize = 8;

impl Needles {
    /// The needles for `values` (those too short or too regular are counted as skipped).
    pub fn new(values: &[Recorded]) -> Self {
        let mut needles = Vec::new();
        let mut searched = BTreeMap::new();
        let mut skipped = 0;
        for (i, v) in values.iter().enumerate() {
            let b = v.danger_bytes();
            if b.len() < MIN_LEN || distinct(b) < MIN_DISTINCT_BYTES {
                skipped += 1;
                continue;
            }
            *searched.entry(v.kind()).or_insert(0) += 1;
            needles.extend(forms(b).into_iter().map(|(form, text)| Needle {
                value: i,
                form,
                text,
            }));
        }
        let mut index: Vec<([u8; 8], usize)> =
            needles.iter().enumerate().map(|(n, needle)| (prefix(&needle.text), n)).collect();
        index.sort_unstable();
        let mut first_two = vec![false; 1 << 16];
        for n in &needles {
            first_two[pair(&n.text)] = true;
        }
        Needles {
            kinds: values.iter().map(Recorded::kind).collect(),
            searched,
            skipped,
            needles,
            index,
            first_two,
        }
    }

    /// How many values of each kind are searched for.
    pub fn searched(&self) -> &BTreeMap<Kind, usize> {
        &self.searched
    }

    /// How many values were too short or too regular to search for.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Every value found in `text` (whitespace ignored), each form once.
    pub fn scan(&self, text: &str) -> Vec<Hit> {
        let hay: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        let mut hits = Vec::new();
        if hay.len() < PREFIX || self.needles.is_empty() {
            return hits;
        }
        for i in 0..=hay.len() - PREFIX {
            if !self.first_two[pair(&hay[i..])] {
                continue;
            }
            let p = prefix(&hay[i..]);
            let from = self.index.partition_point(|(k, _)| *k < p);
            for (_, n) in self.index[from..].iter().take_while(|(k, _)| *k == p) {
                let needle = &self.needles[*n];
                if hay[i..].starts_with(&needle.text) {
                    let kind = self.kinds[needle.value];
                    hits.push(Hit { kind, value: needle.value, form: needle.form });
                }
            }
        }
        hits.sort_unstable();
        hits.dedup();
        hits
    }
}

fn distinct(b: &[u8]) -> usize {
    let mut seen = [false; 256];
    b.iter().for_each(|x| seen[usize::from(*x)] = true);
    seen.iter().filter(|s| **s).count()
}

fn prefix(b: &[u8]) -> [u8; 8] {
    let mut p = [0u8; PREFIX];
    p.copy_from_slice(&b[..PREFIX]);
    p
}

fn pair(b: &[u8]) -> usize {
    usize::from(b[0]) << 8 | usize::from(b[1])
}

fn forms(b: &[u8]) -> Vec<(Form, Vec<u8>)> {
    let reversed: Vec<u8> = b.iter().rev().copied().collect();
    let mut out = vec![
        (Form::HexLower, hex::encode(b)),
        (Form::HexUpper, hex::encode_upper(b)),
        (Form::HexLowerReversed, hex::encode(&reversed)),
        (Form::HexUpperReversed, hex::encode_upper(&reversed)),
        (Form::DebugDecimal, joined(b, |s, x| write!(s, "{x}"))),
        (Form::DebugHexLower, joined(b, |s, x| write!(s, "{x:x}"))),
        (Form::DebugHexUpper, joined(b, |s, x| write!(s, "{x:X}"))),
        (Form::DebugHexPadded, joined(b, |s, x| write!(s, "{x:02x}"))),
    ];
    for shift in 0..3u8 {
        out.push((Form::Base64 { shift }, base64_inner(b, shift, STANDARD)));
        out.push((Form::Base64Url { shift }, base64_inner(b, shift, URL_SAFE)));
    }
    out.into_iter().map(|(f, s)| (f, s.into_bytes())).collect()
}

/// The elements as `{:?}` of a slice prints them, whitespace removed: `1,2,3`.
fn joined(b: &[u8], each: impl Fn(&mut String, u8) -> std::fmt::Result) -> String {
    let mut s = String::new();
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = each(&mut s, *x);
    }
    s
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The base64 characters that depend on `b` alone when `b` starts `shift` bytes into a
/// 3-byte group: they appear in any encoding of any buffer holding `b` at that alignment.
fn base64_inner(b: &[u8], shift: u8, alphabet: &[u8; 64]) -> String {
    let shift = usize::from(shift);
    let bits: Vec<bool> = std::iter::repeat_n(0u8, shift)
        .chain(b.iter().copied())
        .flat_map(|byte| (0..8).rev().map(move |i| byte >> i & 1 == 1))
        .collect();
    let (start, end) = (8 * shift, bits.len());
    bits.chunks(6)
        .enumerate()
        .filter(|(c, chunk)| 6 * c >= start && 6 * c + chunk.len() <= end && chunk.len() == 6)
        .map(|(_, chunk)| {
            let v = chunk.iter().fold(0usize, |acc, bit| acc << 1 | usize::from(*bit));
            char::from(alphabet[v])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 0, 1, …, 31 with a few high bytes, so the two base64 alphabets differ.
    fn value() -> [u8; 32] {
        let mut b: [u8; 32] = std::array::from_fn(|i| i as u8);
        b[5] = 0xfb;
        b[6] = 0xff;
        b[20] = 0xfe;
        b
    }

    fn needles() -> Needles {
        Needles::new(&[Recorded::new(Kind::Share, &value())])
    }

    fn forms_found(text: &str) -> Vec<Form> {
        needles().scan(text).into_iter().map(|h| h.form).collect()
    }

    // Encodings of `value()` by Python's base64 and binascii, not by this module.
    const B64: &str = "AAECAwT7/wcICQoLDA0ODxAREhP+FRYXGBkaGxwdHh8=";
    const B64_URL: &str = "AAECAwT7_wcICQoLDA0ODxAREhP-FRYXGBkaGxwdHh8=";
    // 0x41 then the value: the value sits one byte into a group.
    const B64_SHIFT1: &str = "QQABAgME+/8HCAkKCwwNDg8QERIT/hUWFxgZGhscHR4f";
    // 0x41 0x42 then the value, URL-safe, unpadded.
    const B64_URL_SHIFT2: &str = "QUIAAQIDBPv_BwgJCgsMDQ4PEBESE_4VFhcYGRobHB0eHw";

    #[test]
    fn every_form_is_found_standalone_and_inside_longer_text() {
        let v = value();
        let cases: Vec<(String, Form)> = vec![
            (format!("k={}", hex::encode(v)), Form::HexLower),
            (format!("k={}!", hex::encode_upper(v)), Form::HexUpper),
            (
                format!("x{}", hex::encode(v.iter().rev().copied().collect::<Vec<_>>())),
                Form::HexLowerReversed,
            ),
            (format!("y={B64}"), Form::Base64 { shift: 0 }),
            (format!("y={}", B64.trim_end_matches('=')), Form::Base64 { shift: 0 }),
            (format!("y={B64_URL}"), Form::Base64Url { shift: 0 }),
            (format!("z={B64_SHIFT1}"), Form::Base64 { shift: 1 }),
            (format!("z={B64_URL_SHIFT2}"), Form::Base64Url { shift: 2 }),
            (format!("share={v:?}"), Form::DebugDecimal),
            (format!("share={:?}", [&[9u8, 9][..], &v, &[7]].concat()), Form::DebugDecimal),
            (format!("pretty={v:#?}"), Form::DebugDecimal),
            (format!("share={v:x?}"), Form::DebugHexLower),
            (format!("share={v:X?}"), Form::DebugHexUpper),
            (format!("share={v:02x?}"), Form::DebugHexPadded),
        ];
        for (text, form) in cases {
            let found = forms_found(&text);
            assert!(found.contains(&form), "{form} not found in {text}: {found:?}");
        }
    }

    #[test]
    fn hits_name_the_value_not_its_bytes() {
        let other =
            Recorded::new(Kind::Secret, &[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3]);
        let n = Needles::new(&[other, Recorded::new(Kind::Share, &value())]);
        let hits = n.scan(&hex::encode(value()));
        assert_eq!(hits, vec![Hit { kind: Kind::Share, value: 1, form: Form::HexLower }]);
        assert!(!format!("{hits:?}").contains(&hex::encode(value())[..8]));
    }

    #[test]
    fn text_without_the_values_has_no_hits() {
        let v = value();
        let mut near = v;
        near[31] ^= 1;
        for text in [
            String::new(),
            "Share(x=3, y=<redacted>)".to_string(),
            hex::encode(&v[..31]),
            hex::encode(near),
            format!("{:?}", &v[1..]),
            B64[..40].to_string(),
        ] {
            assert_eq!(needles().scan(&text), vec![], "{text}");
        }
    }

    #[test]
    fn short_and_regular_values_are_skipped() {
        let n = Needles::new(&[
            Recorded::new(Kind::Share, &[5; 32]),
            Recorded::new(Kind::DerivedKey, &value()[..MIN_LEN - 1]),
            Recorded::new(Kind::Secret, &value()),
        ]);
        assert_eq!(n.skipped(), 2);
        assert_eq!(n.searched().get(&Kind::Secret), Some(&1));
        assert_eq!(n.scan(&"05".repeat(32)), vec![]);
    }
}
