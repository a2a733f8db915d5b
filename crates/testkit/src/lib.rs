//! Test support shared by the workspace's suites: a property-test configuration whose runs
//! replay exactly and whose failures are recorded on purpose, never by accident.
//!
//! ```
//! use proptest::prelude::*;
//! let mut runner = proptest::test_runner::TestRunner::new(bassline_testkit::proptest_config(64));
//! runner
//!     .run(&(0u32..1000, 0u32..1000), |(a, b)| {
//!         prop_assert_eq!(a + b, b + a);
//!         Ok(())
//!     })
//!     .unwrap();
//! ```
//!
//! In a suite: `proptest! { #![proptest_config(bassline_testkit::proptest_config(256))] ... }`.
//!
//! Every run draws its generator seed up front (or takes `PROPTEST_RNG_SEED`), so the whole
//! run can be replayed. Saved failures in a test file's `.proptest-regressions` neighbour are
//! replayed first, as proptest does; but a new failure is not written there. It is printed,
//! with the line to add: a regression file changes only in a commit that means it to, not on
//! a CI machine or a developer's checkout as a side effect of a red run.

#![forbid(unsafe_code)]

use std::{any::Any, fmt};

use proptest::test_runner::{
    Config, FailurePersistence, FileFailurePersistence, PersistedSeed, RngSeed,
};

/// Where proptest keeps saved failures: next to the test file, same name, this extension.
const REGRESSIONS: FileFailurePersistence =
    FileFailurePersistence::WithSource("proptest-regressions");

/// A proptest configuration running `cases` cases from a seed printed on failure.
pub fn proptest_config(cases: u32) -> Config {
    let seed = match Config::default().rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => random_seed(),
    };
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: Some(Box::new(ReadOnlyRegressions { run_seed: seed })),
        ..Config::default()
    }
}

/// A seed that differs between runs without an RNG dependency: the standard library's
/// randomly keyed hasher, mixed with the time.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Reads the saved failures; reports a new one instead of writing it.
#[derive(Clone, Debug, PartialEq)]
struct ReadOnlyRegressions {
    run_seed: u64,
}

impl FailurePersistence for ReadOnlyRegressions {
    fn load_persisted_failures2(&self, source_file: Option<&'static str>) -> Vec<PersistedSeed> {
        REGRESSIONS.load_persisted_failures2(source_file)
    }

    fn save_persisted_failure2(
        &mut self,
        source_file: Option<&'static str>,
        seed: PersistedSeed,
        shrunken_value: &dyn fmt::Debug,
    ) {
        let file = source_file.map_or_else(
            || "the test file's .proptest-regressions neighbour".to_owned(),
            |f| format!("{}.proptest-regressions", f.trim_end_matches(".rs")),
        );
        eprintln!(
            "proptest failure.\n  replay this run: PROPTEST_RNG_SEED={seed_run} (same test command)\n  \
             replay this case on every run: add the line below to {file} and commit it with the fix\n  \
             {seed} # shrinks to {shrunken_value:?}",
            seed_run = self.run_seed,
        );
    }

    fn box_clone(&self) -> Box<dyn FailurePersistence> {
        Box::new(self.clone())
    }

    fn eq(&self, other: &dyn FailurePersistence) -> bool {
        other
            .as_any()
            .downcast_ref::<Self>()
            .is_some_and(|o| o == self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
