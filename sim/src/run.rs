//! `sim`: many random cases, a JSON summary, an event log for each failure.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::event::{CaseSetup, Event};
use crate::generate::Generator;
use crate::liveness;
use crate::world::World;

/// Knobs for a run.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Most nodes in a case.
    pub max_nodes: usize,
    /// Fewest random actions per case.
    pub min_actions: usize,
    /// Most random actions per case.
    pub max_actions: usize,
}

/// What `sim` was asked to do.
#[derive(Debug, Clone)]
pub struct SimArgs {
    pub cases: u64,
    pub seed: u64,
    pub shape: Shape,
    pub bug: Option<String>,
    pub log_dir: PathBuf,
    pub quiet: bool,
}

/// A failing case's log: enough to replay it exactly.
#[derive(Serialize, Deserialize)]
pub struct CaseLog {
    pub setup: CaseSetup,
    pub events: Vec<Event>,
    pub violations: Vec<String>,
}

/// The result of one case.
pub struct CaseResult {
    /// Events applied, liveness phase included.
    pub events: u64,
    /// The first broken invariant: (name, event number, detail).
    pub first: Option<(&'static str, u64, String)>,
    /// Honest-only invariants a faulty coordinator broke (each named once).
    pub tolerated: Vec<&'static str>,
    /// Invariants evaluated at least once.
    pub exercised: Vec<&'static str>,
    /// Events by kind.
    pub kinds: BTreeMap<&'static str, u64>,
    /// The case ran with a faulty coordinator.
    pub faulty: bool,
    /// The most alarms raised and alive at once.
    pub alarms: u64,
    /// What happened, by kind.
    pub outcomes: BTreeMap<&'static str, u64>,
    pub log: CaseLog,
}

/// Runs one case from the run's seed.
pub fn run_case(seed: u64, case: u64, shape: &Shape, bug: Option<&str>) -> CaseResult {
    let mut generator = Generator::new(seed, case);
    let setup = generator.setup(seed, case, shape, bug);
    let actions = generator.actions(shape);
    let mut w = World::new(setup.clone());
    let mut events = Vec::with_capacity(actions + 512);
    for _ in 0..actions {
        let ev = generator.next(&w);
        w.apply(&ev);
        events.push(ev);
        if !w.check.violations.is_empty() {
            break;
        }
    }
    if w.check.violations.is_empty() {
        liveness::run(&mut w, &mut events);
    }
    let mut kinds = BTreeMap::new();
    for ev in &events {
        *kinds.entry(kind(ev)).or_insert(0) += 1;
    }
    if !w.setup.legacy_damage.is_empty() {
        *w.outcomes.entry("legacy_damaged_cases").or_insert(0) += 1;
        let caught = u64::from(w.check.legacy_damage_caught);
        *w.outcomes.entry("legacy_damage_named_by_coordinator").or_insert(0) += caught;
    }
    let first = w.check.violations.first().map(|v| (v.invariant, v.event, v.detail.clone()));
    let violations = w.check.violations.clone();
    CaseResult {
        first,
        events: events.len() as u64,
        tolerated: w
            .check
            .tolerated
            .iter()
            .map(|v| v.invariant)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        faulty: w.setup.faulty_coordinator,
        alarms: w.check.alarms_seen,
        exercised: w.check.exercised.iter().copied().collect(),
        kinds,
        outcomes: std::mem::take(&mut w.outcomes),
        log: CaseLog {
            setup,
            events,
            violations: violations
                .iter()
                .map(|v| format!("{} at event {}: {}", v.invariant, v.event, v.detail))
                .collect(),
        },
    }
}

/// The event's name, for counting what was exercised.
pub fn kind(ev: &Event) -> &'static str {
    match ev {
        Event::Deliver { .. } => "deliver",
        Event::Drop { .. } => "drop",
        Event::Duplicate { .. } => "duplicate",
        Event::Partition { .. } => "partition",
        Event::Heal => "heal",
        Event::Tick { .. } => "tick",
        Event::CrashNode { .. } => "crash_node",
        Event::RestartNode { .. } => "restart_node",
        Event::Wipe { .. } => "wipe",
        Event::CrashCoordinator => "crash_coordinator",
        Event::RestartCoordinator => "restart_coordinator",
        Event::Reconfigure { .. } => "reconfigure",
        Event::LegacyUpgrade { .. } => "legacy_upgrade",
        Event::Abort => "abort",
        Event::Commit => "commit",
        Event::Unlock { .. } => "unlock",
        Event::Tamper { .. } => "tamper",
    }
}

/// Runs every case; prints progress and the summary; returns whether no invariant broke.
pub fn run(args: &SimArgs) -> Result<serde_json::Value, String> {
    let start = Instant::now();
    let mut events = 0u64;
    let mut violations = 0u64;
    let mut failing_cases = 0u64;
    let mut faulty_cases = 0u64;
    let mut faulty_alarmed = 0u64;
    let mut faulty_tampered = 0u64;
    let mut faulty_breaks: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut first = None;
    let mut exercised = std::collections::BTreeSet::new();
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut outcomes: BTreeMap<&'static str, u64> = BTreeMap::new();
    for case in 0..args.cases {
        let r = run_case(args.seed, case, &args.shape, args.bug.as_deref());
        events += r.events;
        faulty_cases += u64::from(r.faulty);
        faulty_alarmed += u64::from(r.faulty && r.alarms > 0);
        faulty_tampered += u64::from(r.faulty && r.kinds.contains_key("tamper"));
        for inv in &r.tolerated {
            *faulty_breaks.entry(inv).or_insert(0) += 1;
        }
        exercised.extend(r.exercised);
        for (k, n) in r.kinds {
            *kinds.entry(k).or_insert(0) += n;
        }
        for (k, n) in r.outcomes {
            *outcomes.entry(k).or_insert(0) += n;
        }
        if let Some((invariant, event, detail)) = &r.first {
            violations += r.log.violations.len() as u64;
            failing_cases += 1;
            let path = write_log(&args.log_dir, &r.log)?;
            if !args.quiet {
                eprintln!(
                    "case {case}: {} violation(s), log {}",
                    r.log.violations.len(),
                    path.display()
                );
                for v in &r.log.violations {
                    eprintln!("  {v}");
                }
            }
            if first.is_none() {
                first = Some(json!({
                    "invariant": invariant,
                    "case": case,
                    "event": event,
                    "detail": detail,
                    "log": path.display().to_string(),
                }));
            }
        }
        if !args.quiet && (case + 1) % 100 == 0 {
            eprintln!(
                "{} cases, {events} events, {violations} violations, {:.1}s",
                case + 1,
                start.elapsed().as_secs_f64()
            );
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut summary = json!({
        "cases": args.cases,
        "events": events,
        "violations": violations,
        "failing_cases": failing_cases,
        "seed": args.seed,
        "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
        "cases_per_s": ((args.cases as f64 / elapsed) * 10.0).round() / 10.0,
        "events_per_s": (events as f64 / elapsed).round(),
        "invariants_exercised": exercised.into_iter().collect::<Vec<_>>(),
        "actions_exercised": kinds,
        "outcomes": outcomes,
        // With a faulty coordinator only I1, I2 and I7 may break; these say how often they did
        // (I7 breaking means members caught the lie and raised alarms).
        "faulty_coordinator": {
            "cases": faulty_cases,
            "cases_that_tampered": faulty_tampered,
            "cases_with_alarms": faulty_alarmed,
            "honest_only_invariants_broken": faulty_breaks,
        },
        "inject_bug": args.bug,
    });
    if let Some(f) = first {
        summary["first_violation"] = f;
    }
    Ok(summary)
}

fn write_log(dir: &PathBuf, log: &CaseLog) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let bug = log.setup.bug.as_deref().map(|b| format!("-{b}")).unwrap_or_default();
    let path = dir.join(format!("case-s{}-c{}{bug}.json", log.setup.seed, log.setup.case));
    let body = serde_json::to_vec(log).map_err(|e| format!("cannot encode the event log: {e}"))?;
    std::fs::write(&path, body).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}
