//! `cargo xtask bench p2p`: peer-to-peer between pages of the editor in headless Chromium
//! (the release bundle, a release `bassline serve` for signaling), written into its section of
//! docs/BENCHMARKS.md.

use anyhow::{Context, Result};

use crate::{benchdoc, cargo, run, web, workspace_root};

/// The heading of this section of docs/BENCHMARKS.md.
pub const P2P_SECTION: &str = "## Peer-to-peer in the browser (`cargo xtask bench p2p`)";

pub fn bench_p2p() -> Result<()> {
    web::web(&[]).context("building the release bundle (`cargo xtask web`)")?;
    let chromium = web::ensure_chromium()?;
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "-p",
        "bassline-cli",
        "--bin",
        "bassline",
    ]);
    run(build, "build the release bassline binary (signaling)")?;
    let root = workspace_root();
    let out = root.join("target/p2p-bench.txt");
    let _ = std::fs::remove_file(&out);
    let mut t = cargo();
    t.env("BASSLINE_WEB_DIST", web::dist_dir())
        .env("BASSLINE_CHROMIUM", &chromium)
        .env("BASSLINE_BIN", root.join("target/release/bassline"))
        .env("BASSLINE_BENCH_OUT", &out)
        .args([
            "test",
            "-p",
            "bassline-browser-tests",
            "--test",
            "bench_p2p",
            "--",
            "--ignored",
            "--nocapture",
        ]);
    run(
        t,
        "peer-to-peer figures: channel open, join 10,000 contacts, change latency",
    )?;
    let rows =
        std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
    print!("{rows}");
    let section = format!(
        "{P2P_SECTION}\n\nPages of the editor in headless Chromium (software rendering), each in a \
         browser of its own, on a {}-core machine shared with other work; the release bundle; \
         signaling through a release `bassline serve` on loopback, no STUN (host candidates on \
         the machine's interface). Times are taken inside the pages (a click or key listener, \
         then a MutationObserver on what the page shows), not by the test's polling.\n\n\
         | figure | result |\n|---|---|\n{rows}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    benchdoc::write_section(P2P_SECTION, &section)
}
