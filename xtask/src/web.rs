//! `cargo xtask web`: the browser editor's bundle, and what its tests need (Chromium).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context, Result, bail};

use crate::{WASM_TARGET, cargo, ensure_wasm_target, run, step, workspace_root};

/// Where the bundle goes: `bassline serve` serves this folder at `/`.
pub fn dist_dir() -> PathBuf {
    workspace_root().join("target/web")
}

/// The wasm-bindgen version the lock file resolved (the web crate pins it with `=`).
fn locked_wasm_bindgen() -> Result<String> {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock"))
        .context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\""
            && let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
        {
            return Ok(v.trim_matches('"').to_owned());
        }
    }
    bail!("Cargo.lock has no wasm-bindgen; build bassline-web once to resolve it")
}

/// Installs wasm-bindgen-cli at exactly the library's version when it is missing or differs.
fn ensure_wasm_bindgen(version: &str) -> Result<()> {
    let have = Command::new("wasm-bindgen")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if have.as_deref() == Some(&format!("wasm-bindgen {version}")) {
        return Ok(());
    }
    eprintln!(
        "wasm-bindgen-cli {version} is needed (found: {}); installing it with cargo install \
         (about 5 minutes, once)",
        have.as_deref().unwrap_or("none")
    );
    let mut install = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    install.args(["install", "wasm-bindgen-cli", "--version", version]);
    run(
        install,
        &format!("cargo install wasm-bindgen-cli --version {version}"),
    )
}

fn gzip_size(path: &Path) -> Result<u64> {
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .context("gzip is needed to measure the compressed bundle")?;
    if !out.status.success() {
        bail!("gzip failed on {}", path.display());
    }
    Ok(out.stdout.len() as u64)
}

/// Sizes of the bundle's files: (name, raw bytes, gzip -9 bytes).
pub fn bundle_sizes(dist: &Path) -> Result<Vec<(String, u64, u64)>> {
    let mut rows = Vec::new();
    for name in [
        "bassline_web_bg.wasm",
        "bassline_web.js",
        "index.html",
        "style.css",
    ] {
        let path = dist.join(name);
        let raw = std::fs::metadata(&path)
            .with_context(|| format!("{} is missing; run `cargo xtask web`", path.display()))?
            .len();
        rows.push((name.to_owned(), raw, gzip_size(&path)?));
    }
    Ok(rows)
}

/// Where `cargo xtask test` builds the bundle its browser tests load.
pub fn test_dist_dir() -> PathBuf {
    workspace_root().join("target/web-test")
}

/// Builds the editor for the browser into `target/web`. `--dev` builds without optimisation
/// (much faster to build, larger and slower to run: for trying changes, never for figures).
pub fn web(args: &[String]) -> Result<()> {
    let profile = match args.first().map(String::as_str) {
        None => "wasm-release",
        Some("--dev") => "dev",
        Some(other) => bail!("unknown option `{other}` for `cargo xtask web` (known: --dev)"),
    };
    build(profile, &dist_dir())
}

/// The bundle the browser tests load: the same code in the dev profile, which builds in about
/// a third of the time of the optimised bundle (2.4 against 6.8 minutes from scratch here) and
/// shares its macros with the wasm32 clippy run just before it.
pub fn test_bundle() -> Result<PathBuf> {
    let dist = test_dist_dir();
    build("dev", &dist)?;
    Ok(dist)
}

fn build(profile: &str, dist: &Path) -> Result<()> {
    ensure_wasm_target()?;
    let started = Instant::now();
    let mut build = cargo();
    build.args([
        "build",
        "-p",
        "bassline-web",
        "--lib",
        "--target",
        WASM_TARGET,
        "--profile",
        profile,
    ]);
    run(
        build,
        &format!("build the editor for wasm32 (profile {profile})"),
    )?;
    let out_dir = if profile == "dev" { "debug" } else { profile };
    let version = locked_wasm_bindgen()?;
    ensure_wasm_bindgen(&version)?;
    let root = workspace_root();
    std::fs::create_dir_all(dist).with_context(|| format!("creating {}", dist.display()))?;
    let mut bindgen = Command::new("wasm-bindgen");
    bindgen
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--out-name",
            "bassline_web",
        ])
        .arg("--out-dir")
        .arg(dist)
        .arg(root.join(format!("target/{WASM_TARGET}/{out_dir}/bassline_web.wasm")));
    run(
        bindgen,
        &format!("wasm-bindgen {version} into {}", dist.display()),
    )?;
    for file in ["index.html", "style.css"] {
        let from = root.join("crates/web/static").join(file);
        std::fs::copy(&from, dist.join(file))
            .with_context(|| format!("copying {}", from.display()))?;
    }
    step("bundle");
    let (mut raw, mut gz) = (0, 0);
    for (name, r, g) in bundle_sizes(dist)? {
        eprintln!("  {name:<22} {:>9} B raw {:>9} B gzip", r, g);
        raw += r;
        gz += g;
    }
    eprintln!(
        "  {:<22} {raw:>9} B raw {gz:>9} B gzip   ({}, profile {profile}, built in {:.0?})",
        "total",
        dist.display(),
        started.elapsed()
    );
    Ok(())
}

/// The Chromium binary the browser tests drive, installed from Debian when missing.
pub fn ensure_chromium() -> Result<PathBuf> {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(candidate).exists() {
            return Ok(candidate.into());
        }
    }
    eprintln!(
        "Chromium is missing; the browser tests need it. Installing Debian's package with \
         `apt-get install -y chromium` (about a minute)"
    );
    let mut update = Command::new("apt-get");
    update.arg("update");
    run(update, "apt-get update")?;
    let mut install = Command::new("apt-get");
    install.args(["install", "-y", "chromium"]);
    install.env("DEBIAN_FRONTEND", "noninteractive");
    run(install, "apt-get install -y chromium")?;
    let path = PathBuf::from("/usr/bin/chromium");
    if !path.exists() {
        bail!("apt-get installed chromium but /usr/bin/chromium is not there");
    }
    Ok(path)
}

/// Rewrites the browser bundle section of docs/BENCHMARKS.md from the built bundle.
pub fn bench_bundle() -> Result<()> {
    web(&[])?;
    let rows = bundle_sizes(&dist_dir())?;
    let (raw, gz): (u64, u64) = rows.iter().fold((0, 0), |(r, g), (_, a, b)| (r + a, g + b));
    let mut section = String::from(BUNDLE_HEADING);
    section.push_str(
        "\n\nWritten by `cargo xtask bench web` (`cargo xtask web`: wasm32, profile \
         `wasm-release` (opt-level s, LTO), wasm-bindgen; gzip -9). Target: under 1 MB gzip, \
         500 KB stretch.\n\n| file | raw | gzip |\n|---|---:|---:|\n",
    );
    for (name, r, g) in &rows {
        section.push_str(&format!("| {name} | {} | {} |\n", kb(*r), kb(*g)));
    }
    section.push_str(&format!(
        "| **total** | **{}** | **{}** |\n",
        kb(raw),
        kb(gz)
    ));
    section.push_str(&format!(
        "\nIn headless Chromium on this machine (software rendering, `cargo xtask bench web`): \
         {}.\n",
        browser_figures()?
    ));
    crate::benchdoc::write_section(BUNDLE_HEADING, &section)
}

/// Runs the browser benchmark (first paint, panning 1,000 contacts, remote edits arriving
/// from another client of a `bassline serve`) and returns its line.
fn browser_figures() -> Result<String> {
    let chromium = ensure_chromium()?;
    // The server the remote-edits figure runs against (the debug build the tests use: at 100
    // edits a second it is far from busy).
    let mut cli = cargo();
    cli.args(["build", "-p", "bassline-cli"]);
    run(
        cli,
        "build bassline (the server of the remote-edits figure)",
    )?;
    let out = workspace_root().join("target/web-bench.txt");
    let _ = std::fs::remove_file(&out);
    let mut t = cargo();
    t.env("BASSLINE_WEB_DIST", dist_dir())
        .env("BASSLINE_CHROMIUM", &chromium)
        .env(
            "BASSLINE_BIN",
            workspace_root().join("target/debug/bassline"),
        )
        .env("BASSLINE_BENCH_OUT", &out)
        .args([
            "test",
            "-p",
            "bassline-browser-tests",
            "--test",
            "bench",
            "--",
            "--ignored",
            "--nocapture",
        ]);
    run(
        t,
        "browser figures: first paint, panning 1,000 contacts, remote edits",
    )?;
    std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))
}

fn kb(bytes: u64) -> String {
    format!("{:.1} KB", bytes as f64 / 1000.0)
}

/// The heading of the bundle section of docs/BENCHMARKS.md.
pub const BUNDLE_HEADING: &str = "## Browser bundle";
