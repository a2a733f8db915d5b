//! The simulator over many seeds, and proof that its checks are not blind: every deliberate
//! bug is caught, quickly, by the invariant that guards against it.

use bassline_sim::{SCENARIO_ONLY, SimConfig, Summary, run};
use bassline_sync::Fault;

/// How many seeds `cargo xtask test` runs; `cargo xtask sim --long` runs 100,000.
/// `cargo xtask mutants` runs fewer per mutant (`BASSLINE_SIM_SEEDS`).
fn seeds() -> u64 {
    std::env::var("BASSLINE_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000)
}

#[test]
fn two_thousand_seeds_keep_every_invariant() {
    let seeds = seeds();
    let mut failures = Vec::new();
    let mut summary = Summary::default();
    for seed in 0..seeds {
        match run(seed, &SimConfig::for_seed(seed)) {
            Ok(report) => summary.add(&report),
            Err(f) => failures.push(f.to_string()),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{summary}");
    // The runs did real work under every kind of fault the simulator has.
    assert!(summary.edits_checked > 20 * seeds as usize, "{summary}");
    assert!(summary.host_changes > seeds as usize, "{summary}");
    assert!(summary.partitions > seeds as usize / 2, "{summary}");
    assert!(summary.crashes > seeds as usize / 2, "{summary}");
    assert!(summary.restarts_same_id > seeds as usize / 10, "{summary}");
    assert!(summary.hostile_frames > seeds as usize / 2, "{summary}");
    assert!(summary.read_only_windows.len() > 100, "{summary}");
    // The orphan path (a lineage that lost) runs in many seeds, not a handful.
    assert!(summary.runs_with_orphans > seeds as usize / 10, "{summary}");
    // Few rooms lose every peer that held the network (nothing to check in those).
    assert!(summary.rooms_lost < seeds as usize / 20, "{summary}");
    assert!(summary.permits > seeds as usize / 2, "{summary}");
    assert!(summary.denied > seeds as usize / 10, "{summary}");
}

/// The invariant each deliberate bug must be caught by (words of the failure's reason), and
/// how many seeds the simulator may need at most. docs/ARCHITECTURE.md has the table with
/// the seeds each one took (`bassline-sim --faults` prints it).
const PLANTED: &[(Fault, &[&str])] = &[
    (Fault::SkipDedup, &["exactly once"]),
    (Fault::DropPendingOnResend, &["fate", "convergence"]),
    // Dropping its own edits leaves a gap in the host's counters that the next host refuses.
    (
        Fault::HostDropsOwnPending,
        &["fate", "honest peers trusted", "convergence"],
    ),
    (Fault::SortOrphans, &["order"]),
    (Fault::ForgetLogOnInstall, &["fate", "nothing seen is lost"]),
    (Fault::LwwIgnoresBlend, &["semantics"]),
    (
        Fault::NoIdAssignment,
        &["no repair needed", "agreement", "serial replay"],
    ),
    (Fault::StaleLamport, &["causality"]),
    (
        Fault::GuestForgetsWriters,
        &["no repair needed", "agreement"],
    ),
    (
        Fault::TruncateOrphans,
        &["nothing seen is lost", "convergence"],
    ),
    (Fault::CounterRestarts, &["fate", "handed out twice"]),
    (Fault::IgnorePermissions, &["permissions"]),
    (Fault::PermitsFromAnyone, &["permissions"]),
    (
        Fault::SkipSignatureCheck,
        &["serial replay", "hostile frames refused"],
    ),
    (Fault::NoSubmitLimit, &["hostile frames refused"]),
    (Fault::FollowReadOnly, &["hostile frames ignored"]),
    (Fault::TrustClaimedFollowers, &["hostile frames ignored"]),
];

const FAULT_SEEDS: u64 = 300;

#[test]
fn every_planted_fault_is_caught_for_the_right_reason() {
    for fault in Fault::ALL {
        assert!(
            PLANTED.iter().any(|(f, _)| *f == fault) || SCENARIO_ONLY.contains(&fault),
            "{} has an invariant or a scenario that catches it",
            fault.name()
        );
    }
    for &(fault, reasons) in PLANTED {
        let caught = (0..FAULT_SEEDS)
            .filter_map(|seed| {
                run(
                    seed,
                    &SimConfig {
                        fault: Some(fault),
                        ..SimConfig::for_seed(seed)
                    },
                )
                .err()
            })
            .next();
        let failure = caught
            .unwrap_or_else(|| panic!("{} went unnoticed for {FAULT_SEEDS} seeds", fault.name()));
        let text = failure.to_string();
        assert!(
            text.contains(&format!("--fault {}", fault.name())),
            "the replay command names the fault: {text}"
        );
        assert!(
            reasons.iter().any(|r| failure.reason.contains(r)),
            "{} was caught, but not by {reasons:?}: {text}",
            fault.name()
        );
    }
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let a = run(42, &SimConfig::for_seed(42)).expect("seed 42 passes");
    let b = run(42, &SimConfig::for_seed(42)).expect("seed 42 passes");
    assert_eq!(
        (a.frames, a.bytes, a.ops_applied, a.steps, a.edits_checked),
        (b.frames, b.bytes, b.ops_applied, b.steps, b.edits_checked)
    );
}

/// Each fault has its own command-line name, and the name leads back to it.
#[test]
fn every_fault_is_named_for_the_command_line() {
    let names: std::collections::BTreeSet<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(names.len(), Fault::ALL.len(), "distinct names");
    for fault in Fault::ALL {
        let name = fault.name();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
            "{name:?}"
        );
        assert_eq!(Fault::from_name(name), Some(fault));
    }
    assert_eq!(Fault::from_name("no-such-fault"), None);
}
