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

const HELP: &str = "\
cargo xtask <command> [args]

Commands:
  test            fmt check, clippy (warnings are errors), then every test in the workspace
  bench [what]    run the benchmarks and print their figures (what: core, signal [flags of
                  `bassline bench signal`, e.g. --connections 10000 --rate 20000])
  help            this text
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("bench") => bench(&args[1..]),
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

    let mut doc = cargo();
    doc.args(["test", "--workspace", "--doc"]);
    run(doc, "doc tests")?;

    // nextest runs test binaries in parallel and ends with one summary line; plain cargo test is
    // the fallback so a machine without nextest still runs every test.
    if has_nextest() {
        let mut nextest = cargo();
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

fn bench(args: &[String]) -> Result<()> {
    let what = args.first().map(String::as_str).unwrap_or("all");
    match what {
        "core" | "all" => {
            let mut b = cargo();
            b.args(["bench", "-p", "bassline-core"]);
            run(b, "core benchmarks (criterion)")
        }
        "signal" => {
            // `bassline bench signal` starts `bassline signal` as a child process, so the
            // server's memory is read from its own /proc entry and the clients run apart.
            let mut b = cargo();
            b.args([
                "run",
                "--release",
                "--quiet",
                "-p",
                "bassline-cli",
                "--bin",
                "bassline",
            ]);
            b.args(["--", "bench", "signal"]).args(&args[1..]);
            run(b, "signal load benchmark (release build)")
        }
        other => bail!("unknown benchmark `{other}`; known: core, signal"),
    }
}
