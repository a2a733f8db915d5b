//! `cargo xtask <command>`: the project's build, test and benchmark entry points.
//!
//! Every command installs what it needs when it is missing and says what it is doing, so the
//! README's two commands work on a fresh machine.

use std::{
    env,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context, Result, bail};

mod benchdoc;
mod firefox;
mod p2pbench;
mod web;

const HELP: &str = "\
cargo xtask <command> [args]

Commands:
  serve [flags]   build the browser editor (as `web`) and run `bassline serve` with it: the
                  editor at /, signaling, remote mode, /healthz and /metrics on one port
                  (flags of `bassline serve`, e.g. --listen 0.0.0.0:8080)
  test            fmt check, clippy (warnings are errors), wasm32 checks, a browser bundle
                  (dev profile, target/web-test), then every test in the workspace, the
                  editor's in headless Chromium and Firefox ESR (installed from Debian
                  when missing; geckodriver with cargo install)
  web [--dev]     build the browser editor into target/web (wasm32 + wasm-bindgen, the CLI
                  installed at the library's exact version when missing); `bassline serve`
                  serves that folder at /
  bench [what]    run the benchmarks, print their figures and rewrite docs/BENCHMARKS.md
                  (what: all (default), core, protocol, sync, trust; web builds the editor and
                  writes its bundle size (raw and gzip) into the doc; automerge runs the state
                  encoding comparison against automerge, a separate heavy build; signal
                  [flags of `bassline bench signal`, e.g. --connections 10000 --rate 20000]
                  runs the signaling load benchmark; net measures WebRTC open time,
                  change latency, throughput and join-to-synced and writes its section of
                  docs/BENCHMARKS.md; p2p does the same between pages of the editor in
                  headless Chromium (channel open, joining 10,000 contacts, latency); table rewrites docs/BENCHMARKS.md from the last
                  results)
  sim [--long]    the deterministic simulator over 2,000 seeds (--long: 100,000); a failure
                  prints its seed and the command that replays it. Other flags go to
                  bassline-sim: --faults (each deliberate bug and the check that caught it),
                  --host-loss (only a host crash: the read-only window), --seed N --trace
  mutants         cargo-mutants over crates/sync, judged by the simulator (hours; not in
                  CI); results in target/mutants
  help            this text
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("web") => web::web(&args[1..]),
        Some("serve") => serve(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("sim") => sim(&args[1..]),
        Some("mutants") => mutants(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!(
            "unknown command `{other}`; run `cargo xtask help` for the list"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

fn step(what: &str) {
    eprintln!("\n==> {what}");
}

fn run(mut cmd: Command, what: &str) -> Result<()> {
    step(what);
    let status = cmd
        .status()
        .with_context(|| format!("could not start: {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Crates that must build for the browser (no tokio, no sockets, no clock).
const BROWSER_CRATES: &[&str] = &[
    "bassline-core",
    "bassline-protocol",
    "bassline-sync",
    "bassline-signal",
    "bassline-trust",
];

/// Installs the wasm32 target with rustup when it is missing.
fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup is needed to install the wasm32 target; install rustup first")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    eprintln!("the {WASM_TARGET} target is missing; installing it with rustup");
    let mut add = Command::new("rustup");
    add.args(["target", "add", WASM_TARGET]);
    run(add, "rustup target add wasm32-unknown-unknown")
}

/// The browser tests find the bundle and Chromium through these variables; without them they
/// skip (so a plain `cargo test` stays quick), and `cargo xtask test` always sets both.
const DIST_ENV: &str = "BASSLINE_WEB_DIST";
const CHROMIUM_ENV: &str = "BASSLINE_CHROMIUM";

/// The cross-browser tests find Firefox and geckodriver through these; under `cargo xtask
/// test` they are always set, and a test that sees the bundle but not these fails.
const FIREFOX_ENV: &str = "BASSLINE_FIREFOX";
const GECKODRIVER_ENV: &str = "BASSLINE_GECKODRIVER";

/// The remote-mode browser test runs this `bassline serve`: the binary the same test build
/// makes for the CLI's end-to-end tests (so no second build with other features).
const BIN_ENV: &str = "BASSLINE_BIN";

fn bassline_test_bin() -> PathBuf {
    workspace_root().join("target/debug/bassline")
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn test() -> Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    run(fmt, "cargo fmt --check (run `cargo fmt --all` to fix)")?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy, "cargo clippy, warnings are errors")?;

    ensure_wasm_target()?;
    let mut wasm = cargo();
    // Without default features: the signal crate's server half (tokio, axum) stays out.
    wasm.args(["check", "--no-default-features", "--target", WASM_TARGET]);
    for p in BROWSER_CRATES {
        wasm.args(["-p", p]);
    }
    run(
        wasm,
        "wasm32 check of the crates the browser editor builds on",
    )?;

    // The editor's UI only exists on wasm32, so the native clippy above never sees it.
    let mut web_clippy = cargo();
    web_clippy.args([
        "clippy",
        "-p",
        "bassline-web",
        "--target",
        WASM_TARGET,
        "--",
        "-D",
        "warnings",
    ]);
    run(web_clippy, "cargo clippy of the editor UI for wasm32")?;
    let dist = web::test_bundle()?;
    let chromium = web::ensure_chromium()?;
    let firefox = firefox::ensure_firefox()?;
    let geckodriver = firefox::ensure_geckodriver()?;

    let mut doc = cargo();
    doc.args(["test", "--workspace", "--doc"]);
    run(doc, "doc tests")?;

    // nextest runs test binaries in parallel and ends with one summary line; plain cargo test is
    // the fallback so a machine without nextest still runs every test.
    if has_nextest() {
        let mut nextest = cargo();
        nextest
            .env(DIST_ENV, &dist)
            .env(CHROMIUM_ENV, &chromium)
            .env(FIREFOX_ENV, &firefox)
            .env(GECKODRIVER_ENV, &geckodriver)
            .env(BIN_ENV, bassline_test_bin());
        nextest.args([
            "nextest",
            "run",
            "--workspace",
            "--no-fail-fast",
            "--failure-output",
            "final",
        ]);
        run(nextest, "every test (cargo nextest)")
    } else {
        eprintln!("cargo-nextest is not installed; running the tests with cargo test");
        let mut t = cargo();
        t.env(DIST_ENV, &dist)
            .env(CHROMIUM_ENV, &chromium)
            .env(FIREFOX_ENV, &firefox)
            .env(GECKODRIVER_ENV, &geckodriver)
            .env(BIN_ENV, bassline_test_bin());
        t.args([
            "test",
            "--workspace",
            "--no-fail-fast",
            "--lib",
            "--bins",
            "--tests",
        ]);
        run(t, "every test (cargo test)")
    }
}

/// cargo-mutants over crates/sync with the simulator as its test suite: every mutant of the
/// engine must make a simulator test fail. Hours long: outside CI.
fn mutants(args: &[String]) -> Result<()> {
    let installed = cargo()
        .args(["mutants", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!("cargo-mutants is missing; installing it from crates.io (a few minutes)");
        let mut install = cargo();
        install.args(["install", "cargo-mutants", "--locked"]);
        run(install, "cargo install cargo-mutants")?;
    }
    let mut cmd = cargo();
    cmd.args([
        "mutants",
        "--package",
        "bassline-sync",
        "--test-package",
        "bassline-sim",
        "--output",
        "target/mutants",
    ]);
    cmd.args(args);
    // 300 seeds a mutant (a few seconds) instead of 2,000; the faults and scenarios run whole.
    cmd.env("BASSLINE_SIM_SEEDS", "300");
    run(
        cmd,
        "cargo mutants over crates/sync, judged by the simulator",
    )
}

/// `cargo run` of the release `bassline` binary; its arguments follow.
fn bassline_release() -> Command {
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "--quiet",
        "-p",
        "bassline-cli",
        "--bin",
        "bassline",
        "--",
    ]);
    cmd
}

/// Builds the editor's bundle (target/web, installing the wasm32 target and the pinned
/// wasm-bindgen-cli when missing), then builds and runs `bassline serve` serving it at `/`;
/// serve prints its URL itself.
fn serve(args: &[String]) -> Result<()> {
    web::web(&[]).context("building the browser editor (`cargo xtask web`)")?;
    let mut cmd = bassline_release();
    cmd.arg("serve").args(args);
    if !args.iter().any(|a| a == "--web" || a.starts_with("--web=")) {
        cmd.arg("--web").arg(web::dist_dir());
    }
    step(
        "building and starting bassline serve (release build; the first build takes a few minutes)",
    );
    let status = cmd.status().context("could not start cargo")?;
    if !status.success() {
        bail!("bassline serve exited with {status}");
    }
    Ok(())
}

fn sim(args: &[String]) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["run", "--release", "-p", "bassline-sim", "--"]);
    match args.first().map(String::as_str) {
        Some("--long") => {
            cmd.arg("--long");
        }
        None => {
            cmd.args(["--seeds", "0..2000"]);
        }
        Some(_) => {
            cmd.args(args);
        }
    }
    run(cmd, "simulator (release build)")
}

fn bench(args: &[String]) -> Result<()> {
    let what = args.first().map(String::as_str).unwrap_or("all");
    let packages: &[&str] = match what {
        "all" => &[
            "bassline-core",
            "bassline-protocol",
            "bassline-sim",
            "bassline-trust",
        ],
        "core" => &["bassline-core"],
        "protocol" => &["bassline-protocol"],
        "sync" => &["bassline-sim"],
        "trust" => &["bassline-trust"],
        "web" => return web::bench_bundle(),
        // Rewrites the table from the last results without running anything.
        "table" => return write_bench_table(),
        "automerge" => {
            // A separate workspace: automerge is heavy to build and only this comparison needs it.
            let mut b = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            b.current_dir(workspace_root().join("benches-automerge"));
            b.env("CARGO_TARGET_DIR", workspace_root().join("target"));
            b.args(["run", "--release"]);
            return run(
                b,
                "state encoding: Bassline codecs against automerge (same data)",
            );
        }
        "net" => return bench_net(),
        "p2p" => return p2pbench::bench_p2p(),
        "signal" => {
            // `bassline bench signal` starts `bassline signal` as a child process, so the
            // server's memory is read from its own /proc entry and the clients run apart.
            let mut b = bassline_release();
            b.args(["bench", "signal"]).args(&args[1..]);
            return run(b, "signal load benchmark (release build)");
        }
        other => bail!(
            "unknown benchmark `{other}`; known: all, core, protocol, sync, trust, web, \
             automerge, signal, net, p2p"
        ),
    };
    let mut b = cargo();
    b.arg("bench");
    for p in packages {
        b.args(["-p", p]);
    }
    run(b, &format!("criterion benchmarks: {}", packages.join(", ")))?;
    write_bench_table()
}

/// The heading of the network section of docs/BENCHMARKS.md, written by `bench net` and kept
/// by the criterion table.
const NET_SECTION: &str = "## Network (`cargo xtask bench net`)";

/// The network benchmark: runs it (release), prints its table and puts it in the doc.
fn bench_net() -> Result<()> {
    let mut b = cargo();
    b.args(["bench", "-p", "bassline-net", "--bench", "net"]);
    step("network benchmark (release build, loopback, webrtc-rs on both ends)");
    let out = b.output().context("could not start cargo bench")?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("the network benchmark failed ({})", out.status);
    }
    let table: String = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| format!("{l}\n"))
        .collect();
    print!("{table}");
    let section = format!(
        "{NET_SECTION}\n\nOne run on a {}-core machine, loopback, release build; the same run gives \
         every figure, so compare within it.\n\n{table}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    benchdoc::write_section(NET_SECTION, &section)
}

/// Regenerates docs/BENCHMARKS.md from criterion's latest estimates.
fn write_bench_table() -> Result<()> {
    let root = workspace_root();
    let dir = root.join("target/criterion");
    let mut rows = Vec::new();
    // Benchmarks sit one to three folders deep (group / function / parameter); each has a
    // `new` folder with criterion's latest estimates.
    let mut stack = vec![dir.clone()];
    let mut benches = Vec::new();
    while let Some(d) = stack.pop() {
        if d.join("new/benchmark.json").is_file() {
            benches.push(d.join("new"));
        }
        stack.extend(
            read_dir_sorted(&d)?
                .into_iter()
                .filter(|p| !p.ends_with("new") && !p.ends_with("base")),
        );
    }
    benches.sort();
    for new in benches {
        let (Ok(meta), Ok(est)) = (
            std::fs::read_to_string(new.join("benchmark.json")),
            std::fs::read_to_string(new.join("estimates.json")),
        ) else {
            continue;
        };
        let meta: serde_json::Value = serde_json::from_str(&meta)?;
        let est: serde_json::Value = serde_json::from_str(&est)?;
        let name = meta["full_id"].as_str().unwrap_or("?").to_owned();
        let mean_ns = est["mean"]["point_estimate"].as_f64().unwrap_or(f64::NAN);
        let elements = meta["throughput"]["Elements"].as_f64();
        let rate = elements
            .map(|n| format!("{:.2} M/s", n / (mean_ns * 1e-9) / 1e6))
            .unwrap_or_else(|| "-".into());
        rows.push(format!("| {name} | {} | {rate} |", human_time(mean_ns)));
    }
    if rows.is_empty() {
        bail!("no criterion results under {}", dir.display());
    }
    let table = format!(
        "# Benchmarks\n\nRegenerated by `cargo xtask bench` on a {}-core machine; figures are \
         criterion means. Compare ratios within one run: the machine is shared and noisy.\n\n\
         | benchmark | mean time | throughput |\n|---|---|---|\n{}\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        rows.join("\n")
    );
    let out = root.join("docs/BENCHMARKS.md");
    // The sections of the other benchmark commands (browser bundle, network) are not
    // criterion's: keep them.
    let old = std::fs::read_to_string(&out).unwrap_or_default();
    let table = match benchdoc::sections(&old) {
        Some(kept) => format!("{}\n\n{}", table.trim_end(), kept),
        None => table,
    };
    std::fs::write(&out, table).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "report"))
        .collect();
    v.sort();
    Ok(v)
}

fn human_time(ns: f64) -> String {
    match ns {
        n if n >= 1e9 => format!("{:.2} s", n / 1e9),
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.2} µs", n / 1e3),
        n => format!("{n:.0} ns"),
    }
}
