//! The log scan every test ends with (DESIGN §5 hygiene: secrets and shares never appear in
//! logs): it finds a value written in any form a logger could write it, and it passes the
//! real services' logs of a whole configuration history.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::Cluster;
use tq_protocol::recorded::scan::{Form, MIN_DISTINCT_BYTES};
use tq_protocol::recorded::{Kind, Recorded, recorded};
use tq_protocol::{Secret, Share, ShareIndex};

/// The first recorded value of `kind` that was drawn at random (hand-made ones are not
/// searched for).
fn random_value(kind: Kind) -> Recorded {
    recorded()
        .into_iter()
        .find(|v| {
            let distinct: std::collections::BTreeSet<_> = v.danger_bytes().iter().collect();
            v.kind() == kind && distinct.len() >= MIN_DISTINCT_BYTES
        })
        .unwrap_or_else(|| panic!("no {} was recorded", kind.name()))
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// §5: a share and a secret written through the services' logger as hex, uppercase hex,
/// big-endian hex, base64 (padded, URL-safe unpadded one byte into a longer buffer) and
/// `Debug` (plain, and pretty inside a longer buffer) are each found, on the line they were
/// written to, and the report names the line without the bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_or_secret_written_to_the_log_is_found_in_every_form() {
    let (mut c, all) = Cluster::configured("leakfound", 3, 2).await;
    c.same_key_everywhere(&all, 1).await;
    let share = random_value(Kind::Share);
    let secret = random_value(Kind::Secret);
    let y = share.danger_bytes();
    let reversed: Vec<u8> = y.iter().rev().copied().collect();
    let upper: String = y.iter().map(|x| format!("{x:02X}")).collect();
    let embedded = [&[0xaa][..], y, &[0xbb, 0xcc]].concat();
    let log = c.test_log();
    let written = [
        (format!("y={}", hex_lower(y)), Kind::Share, Form::HexLower),
        (format!("y={upper}"), Kind::Share, Form::HexUpper),
        (format!("y={}", hex_lower(&reversed)), Kind::Share, Form::HexLowerReversed),
        (format!("y={}", STANDARD.encode(y)), Kind::Share, Form::Base64 { shift: 0 }),
        (URL_SAFE_NO_PAD.encode(&embedded), Kind::Share, Form::Base64Url { shift: 1 }),
        (format!("y={y:?}"), Kind::Share, Form::DebugDecimal),
        (format!("{embedded:#?}"), Kind::Share, Form::DebugDecimal),
        (format!("secret {}", hex_lower(secret.danger_bytes())), Kind::Secret, Form::HexLower),
    ];
    for (text, _, _) in &written {
        slog::info!(log, "on purpose"; "value" => text);
    }

    let scan = c.scan_logs();
    let real: Vec<String> =
        scan.leaks.iter().filter(|l| l.source != "test").map(ToString::to_string).collect();
    assert!(real.is_empty(), "the services leaked: {real:#?}");
    let mut lines: Vec<usize> = scan.leaks.iter().map(|l| l.line).collect();
    lines.dedup();
    assert_eq!(lines.len(), written.len(), "one leaking line per value written: {:#?}", scan.leaks);
    for ((_, kind, form), line) in written.iter().zip(&lines) {
        assert!(
            scan.leaks.iter().any(|l| l.line == *line && l.kind == *kind && l.form == *form),
            "line {line}: no {} as {form} reported: {:#?}",
            kind.name(),
            scan.leaks
        );
    }
    let report = format!("{:?} {}", scan.leaks, scan.summary("t35"));
    for v in [&share, &secret] {
        assert!(!report.contains(&hex_lower(&v.danger_bytes()[..8])), "the report shows bytes");
    }
    c.allow_leaks_in_test_log();
    c.shutdown().await;
}

/// §5: the services' logs (every level, and tonic's and h2's `tracing` events) of an initial
/// configuration, a reconfiguration, an expunge and key derivation hold none of the secrets,
/// shares, derived keys or dealing seeds; nor do the redacted `Debug` forms of a share and
/// a secret. The counts prove the scan had something to search for and somewhere to look.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_logs_hold_no_secret() {
    let (c, all) = Cluster::configured("leakfree", 4, 3).await;
    c.reconfigure(&all[1..], 2, 1).await.expect("epoch 2 accepted");
    c.wait_committed(2, &all[1..]).await;
    c.same_key_everywhere(&all[1..], 2).await;
    c.same_key_everywhere(&all[1..], 1).await;

    let y = random_value(Kind::Share);
    let share = Share::from_bytes(ShareIndex::new(1).expect("x"), y.danger_bytes()).expect("y");
    let mut s: [u8; 32] = random_value(Kind::Secret).danger_bytes().try_into().expect("32 bytes");
    let secret = Secret::from_bytes(&mut s);
    slog::info!(c.test_log(), "redacted"; "share" => ?share, "secret" => ?secret);

    let scan = c.scan_logs();
    let leaks: Vec<String> = scan.leaks.iter().map(ToString::to_string).collect();
    assert!(leaks.is_empty(), "{leaks:#?}");
    assert!(scan.lines > 100, "the services' logs were not captured: {}", scan.summary("t35"));
    assert!(scan.tracing_lines > 0, "tonic's events were not captured: {}", scan.summary("t35"));
    for (kind, least) in
        [(Kind::Secret, 2), (Kind::Share, 7), (Kind::DerivedKey, 1), (Kind::Entropy, 2)]
    {
        assert!(
            scan.searched(kind) >= least,
            "fewer than {least} {} recorded: {}",
            kind.name(),
            scan.summary("t35")
        );
    }
    c.shutdown().await;
}
