//! The simulator over many seeds, and proof that its checks are not blind.

use bassline_sim::{SimConfig, run};
use bassline_sync::Fault;

/// How many seeds `cargo xtask test` runs; `cargo xtask sim --long` runs 100,000.
const SEEDS: u64 = 2_000;

#[test]
fn two_thousand_seeds_keep_every_invariant() {
    let mut failures = Vec::new();
    let mut applied = 0;
    let mut host_changes = 0;
    for seed in 0..SEEDS {
        match run(seed, &SimConfig::for_seed(seed)) {
            Ok(report) => {
                applied += report.ops_applied;
                host_changes += report.host_changes;
            }
            Err(f) => failures.push(f.to_string()),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {SEEDS} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The runs did real work: operations flowed and hosts changed.
    assert!(
        applied > SEEDS as usize * 20,
        "only {applied} operations applied"
    );
    assert!(
        host_changes > 100,
        "only {host_changes} host changes: faults were not exercised"
    );
}

/// A host that forgets to recognise re-sent operations applies some twice; the simulator must
/// notice within a bounded number of seeds.
#[test]
fn a_deliberate_exactly_once_bug_is_caught() {
    let caught = (0..200)
        .filter_map(|seed| {
            run(
                seed,
                &SimConfig {
                    fault: Some(Fault::SkipDedup),
                    ..SimConfig::for_seed(seed)
                },
            )
            .err()
        })
        .next();
    let failure = caught.expect("the skip-dedup bug went unnoticed for 200 seeds");
    let text = failure.to_string();
    assert!(
        text.contains("--fault skip-dedup"),
        "the replay command names the fault: {text}"
    );
    assert!(
        failure.reason.contains("twice") || failure.reason.contains("differs"),
        "caught for the right reason: {text}"
    );
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let a = run(42, &SimConfig::for_seed(42)).expect("seed 42 passes");
    let b = run(42, &SimConfig::for_seed(42)).expect("seed 42 passes");
    assert_eq!(
        (a.frames, a.bytes, a.ops_applied, a.steps),
        (b.frames, b.bytes, b.ops_applied, b.steps)
    );
}
