//! `bassline-sim`: run seeded simulations from the command line.
//!
//! ```text
//! bassline-sim --seed 42                  replay one seed (prints its report or failure)
//! bassline-sim --seeds 0..2000            run a range of seeds
//! bassline-sim --long                     100,000 seeds
//! bassline-sim --fault drop-pending-on-resend   inject a deliberate bug
//! bassline-sim --seed 42 --trace          print every message and event of one seed
//! bassline-sim --host-loss --seeds 0..2000  only a host crash: the read-only window alone
//! ```

use std::{process::ExitCode, time::Instant};

use bassline_sim::{SCENARIO_ONLY, SimConfig, Summary, run};
use bassline_sync::Fault;

fn usage() -> ExitCode {
    eprintln!(
        "usage: bassline-sim [--seed N | --seeds A..B | --long] [--host-loss] [--fault NAME] [--trace]\n\
       bassline-sim --faults   (each deliberate bug: which check caught it, how soon)\n\
         Runs deterministic simulations of Bassline sessions and judges every edit with an\n\
         independent oracle; a failure prints its seed and the command that replays it.\n\
         Faults (deliberate bugs the oracle must catch): {}",
        Fault::ALL.map(Fault::name).join(", ")
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seeds = 0..2000u64;
    let mut fault = None;
    let mut verbose = false;
    let mut trace = false;
    let mut host_loss = false;
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
            ("--faults", _) => return faults(),
            ("--host-loss", _) => host_loss = true,
            ("--trace", _) => trace = true,
            ("--fault", Some(f)) => {
                let Some(f) = Fault::from_name(f) else {
                    eprintln!(
                        "unknown fault `{f}`; known: {}",
                        Fault::ALL.map(Fault::name).join(", ")
                    );
                    return ExitCode::from(2);
                };
                fault = Some(f);
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
    let mut summary = Summary::default();
    for (k, seed) in seeds.enumerate() {
        let base = if host_loss {
            SimConfig::host_loss(seed)
        } else {
            SimConfig::for_seed(seed)
        };
        let cfg = SimConfig {
            fault,
            trace,
            ..base
        };
        match run(seed, &cfg) {
            Ok(report) => {
                if verbose {
                    println!("seed {seed} passed: {report:#?}");
                }
                summary.add(&report);
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
        "{} passed, {failures} failed ({total} seeds, {:.1} s)\n{summary}",
        total - failures,
        started.elapsed().as_secs_f64()
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs every deliberate bug over the first 300 seeds and prints, as a markdown table, the
/// check that caught it first and how many seeds that took (docs/ARCHITECTURE.md).
fn faults() -> ExitCode {
    const SEEDS: u64 = 300;
    println!(
        "| planted fault | caught first by | first caught at seed | seeds failing of {SEEDS} |"
    );
    println!("|---|---|---|---|");
    let mut blind = false;
    for fault in Fault::ALL {
        if SCENARIO_ONLY.contains(&fault) {
            println!(
                "| `{}` | its scenario in crates/sim/tests/findings.rs (random runs heal it) | - | - |",
                fault.name()
            );
            continue;
        }
        let mut first: Option<(u64, String)> = None;
        let mut failing = 0;
        for seed in 0..SEEDS {
            let cfg = SimConfig {
                fault: Some(fault),
                ..SimConfig::for_seed(seed)
            };
            if let Err(f) = run(seed, &cfg) {
                failing += 1;
                if first.is_none() {
                    let check = f.reason.split(':').next().unwrap_or("").to_owned();
                    first = Some((seed, check));
                }
            }
        }
        match first {
            Some((seed, check)) => {
                println!("| `{}` | {check} | {seed} | {failing} |", fault.name())
            }
            None => {
                blind = true;
                println!("| `{}` | NOT CAUGHT | - | 0 |", fault.name());
            }
        }
    }
    if blind {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
