//! `codec`: the canonical binary encoding (`tq_protocol::codec`) and what is kept with it:
//! configurations (stores keep `Configuration::encode`, and the digest every ack and commit
//! carries covers it, DESIGN §4) and the sealed history of prior secrets (§5).
//!
//! Checked: no panic on any bytes; a configuration that decodes encodes back to exactly the
//! same bytes and survives its parts; a reader reads back exactly what a writer writes,
//! and says precisely where and by how much input ran short; a sealed history opens to
//! itself, and does not open once a byte changes or under another epoch.

use tq_protocol::codec::{DecodeError, Reader, Writer};
use tq_protocol::crypto::prior::{PriorSecrets, PriorSecretsError, SecretHistory, open, seal};
use tq_protocol::{Configuration, Epoch, Secret};

use crate::dealt::{CLUSTER, Dealt};
use crate::input::Input;

/// Runs one input: a mode byte (0 configuration, 1 reader program, 2 sealed history).
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    match input.byte() % 3 {
        0 => configuration(input.rest()),
        1 => reader(&mut input),
        _ => history(&mut input),
    }
}

fn configuration(bytes: &[u8]) {
    let Ok(c) = Configuration::decode(bytes) else { return };
    assert!(c.encode() == bytes, "§4: accepted a configuration encoding that is not canonical");
    let again = Configuration::try_from(c.to_parts())
        .unwrap_or_else(|e| panic!("a decoded configuration fails validation: {e}"));
    assert!(again == c && again.digest() == c.digest(), "§4: the parts lost something");
}

/// One read, as a program step.
#[derive(Debug, Clone, Copy)]
enum Read {
    U8,
    U16,
    U32,
    U64,
    Fixed32,
    Bytes,
    Finish,
}

impl Read {
    fn from_byte(b: u8) -> Read {
        [Read::U8, Read::U16, Read::U32, Read::U64, Read::Fixed32, Read::Bytes, Read::Finish]
            [usize::from(b) % 7]
    }

    /// Bytes the read takes beyond the length prefix (`Bytes` reads its own length).
    fn width(self) -> usize {
        match self {
            Read::U8 => 1,
            Read::U16 => 2,
            Read::U32 | Read::Bytes => 4,
            Read::U64 => 8,
            Read::Fixed32 => 32,
            Read::Finish => 0,
        }
    }
}

/// Runs a read program over the rest of the input, writes back what it read, and checks the
/// two agree byte for byte.
fn reader(input: &mut Input<'_>) {
    let len = usize::from(input.byte() % 16);
    let program = input.bytes(len);
    let data = input.rest();
    let mut r = Reader::new(data);
    let mut w = Writer::new();
    let mut at = 0;
    for step in program.iter().map(|b| Read::from_byte(*b)) {
        let res = match step {
            Read::U8 => r.u8().map(|v| {
                w.u8(v);
            }),
            Read::U16 => r.u16().map(|v| {
                w.u16(v);
            }),
            Read::U32 => r.u32().map(|v| {
                w.u32(v);
            }),
            Read::U64 => r.u64().map(|v| {
                w.u64(v);
            }),
            Read::Fixed32 => r.fixed::<32>().map(|v| {
                w.fixed(&v);
            }),
            Read::Bytes => r.bytes().map(|v| {
                w.bytes(v);
            }),
            Read::Finish => break,
        };
        let left = data.len() - at;
        match res {
            Ok(()) => {
                at += step.width();
                if let Read::Bytes = step {
                    at += u32_at(data, at - 4);
                }
            }
            Err(e) => {
                let expected = if left < step.width() {
                    DecodeError::Truncated { at, needed: step.width() - left }
                } else {
                    // Only a byte string can fail with its prefix present: its body is short.
                    let n = u32_at(data, at);
                    DecodeError::Truncated { at: at + 4, needed: n - (left - 4) }
                };
                assert_eq!(e, expected, "the reader misreported a short input");
                return;
            }
        }
    }
    let written = w.finish();
    assert_eq!(written, data[..at], "what was read does not write back the same");
    let rest = data.len() - at;
    let finish = r.finish();
    assert_eq!(finish, if rest == 0 { Ok(()) } else { Err(DecodeError::Trailing(rest)) });
}

fn u32_at(data: &[u8], at: usize) -> usize {
    let mut b = [0; 4];
    b.copy_from_slice(&data[at..at + 4]);
    u32::from_be_bytes(b) as usize
}

/// Seals a history built from the input, opens it, then opens altered copies.
fn history(input: &mut Input<'_>) {
    let secret = Secret::from_bytes(&mut input.array());
    let epoch = Epoch::new(u64::from_be_bytes(input.array())).unwrap_or(Epoch::FIRST);
    let mut history = SecretHistory::default();
    for _ in 0..input.byte() % 8 {
        let e = u64::from_be_bytes(input.array());
        let s = Secret::from_bytes(&mut input.array());
        if let Ok(e) = Epoch::new(e) {
            history.0.insert(e, s);
        }
    }
    let salt = input.array();
    let sealed = seal(&secret, &CLUSTER, epoch, &history, salt);
    let opened = open(&secret, &CLUSTER, epoch, &sealed)
        .unwrap_or_else(|e| panic!("§5: a sealed history does not open: {e}"));
    assert!(opened.ct_eq(&history), "§5: the history changed through sealing");

    let (at, bit) = (usize::from(input.u16()), input.byte());
    let mut altered = sealed.clone();
    let n = altered.ciphertext.len();
    altered.ciphertext[at % n] ^= 1 << (bit % 8);
    assert_eq!(open(&secret, &CLUSTER, epoch, &altered).err(), Some(PriorSecretsError::Decrypt));
    if let Ok(other) = epoch.next() {
        assert_eq!(open(&secret, &CLUSTER, other, &sealed).err(), Some(PriorSecretsError::Decrypt));
    }
    let forged = PriorSecrets { salt, ciphertext: input.rest().to_vec() };
    assert!(open(&secret, &CLUSTER, epoch, &forged).is_err(), "§5: opened a forged history");
}

/// Real encodings and programs, for the seed corpus.
pub fn seeds() -> Vec<Vec<u8>> {
    let e1 = Dealt::new(CLUSTER, 1, None, &["n0", "n1", "n2"], 2, 1);
    let e2 = Dealt::new(CLUSTER, 2, Some(&e1), &["n0", "n1", "n2", "n3", "n4"], 3, 2);
    let mut out = Vec::new();
    for d in [&e1, &e2] {
        let mut seed = vec![0];
        seed.extend(d.config.encode());
        out.push(seed);
    }
    // Read a configuration's header: version, cluster id, epochs, threshold, member count.
    let mut program = vec![1, 9, 0, 4, 3, 3, 1, 2, 5, 5, 6];
    program.extend(e2.config.encode());
    out.push(program);
    let mut history = vec![2];
    history.extend([3; 32]);
    history.extend(2u64.to_be_bytes());
    history.push(1);
    history.extend(1u64.to_be_bytes());
    history.extend([4; 32]);
    history.extend([5; 32]);
    history.extend([0, 7, 3]);
    out.push(history);
    out
}
