//! `bassline-sim`: run seeded simulations from the command line.
//!
//! ```text
//! bassline-sim --seed 42            replay one seed (prints its report or failure)
//! bassline-sim --seeds 0..2000      run a range of seeds
//! bassline-sim --long               100,000 seeds
//! bassline-sim --fault skip-dedup   inject a deliberate bug
//! ```

use std::{process::ExitCode, time::Instant};

use bassline_sim::{SimConfig, run};
use bassline_sync::Fault;

fn usage() -> ExitCode {
    eprintln!(
        "usage: bassline-sim [--seed N | --seeds A..B | --long] [--fault skip-dedup] [--trace]\n\
         Runs deterministic simulations of Bassline sessions; a failure prints its seed and\n\
         the command that replays it."
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seeds = 0..2000u64;
    let mut fault = None;
    let mut verbose = false;
    let mut trace = false;
    let mut i = 0;
    while i < args.len() {
        match (args[i].as_str(), args.get(i + 1)) {
            ("--seed", Some(n)) => {
                let Ok(n) = n.parse::<u64>() else {
                    return usage();
                };
                seeds = n..n + 1;
                verbose = true;
                i += 1;
            }
            ("--seeds", Some(r)) => {
                let Some((a, b)) = r.split_once("..") else {
                    return usage();
                };
                let (Ok(a), Ok(b)) = (a.parse(), b.parse()) else {
                    return usage();
                };
                seeds = a..b;
                i += 1;
            }
            ("--long", _) => seeds = 0..100_000,
            ("--trace", _) => trace = true,
            ("--fault", Some(f)) if f == "skip-dedup" => {
                fault = Some(Fault::SkipDedup);
                i += 1;
            }
            ("--help" | "-h", _) => {
                usage();
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
        i += 1;
    }
    let total = seeds.end - seeds.start;
    let started = Instant::now();
    let mut failures = 0u64;
    let mut applied = 0usize;
    for (k, seed) in seeds.enumerate() {
        let cfg = SimConfig {
            fault,
            trace,
            ..SimConfig::for_seed(seed)
        };
        match run(seed, &cfg) {
            Ok(report) => {
                applied += report.ops_applied;
                if verbose {
                    println!("seed {seed} passed: {report:?}");
                }
            }
            Err(f) => {
                failures += 1;
                eprintln!("{f}");
            }
        }
        if (k as u64 + 1).is_multiple_of(1000) {
            eprintln!(
                "{} / {total} seeds, {failures} failed, {:.1} s",
                k + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "{} passed, {failures} failed ({total} seeds, {applied} operations applied, {:.1} s)",
        total - failures,
        started.elapsed().as_secs_f64()
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
