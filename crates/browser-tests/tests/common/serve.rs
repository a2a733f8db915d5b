//! A real `bassline serve` process for the tests that need one (remote mode, peer-to-peer):
//! it serves the editor at `/`, signaling at `/signal` and remote mode at `/remote`.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail};

/// The `bassline` binary: `BASSLINE_BIN` (set by `cargo xtask test`), else the one the
/// workspace's test build leaves in target/debug.
pub fn bassline_bin() -> Option<PathBuf> {
    let bin = std::env::var_os("BASSLINE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/bassline")
        });
    bin.is_file().then_some(bin)
}

/// A `bassline serve` process, killed when dropped.
pub struct Serve {
    child: Child,
    pub addr: String,
}

impl Serve {
    pub fn start(bin: &Path, data: &Path, web: &Path, listen: &str) -> Result<Serve> {
        let mut child = Command::new(bin)
            .args(["serve", "--listen", listen, "--stun", ""])
            .arg("--data")
            .arg(data)
            .arg("--web")
            .arg(web)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting bassline serve")?;
        let mut out = BufReader::new(child.stdout.take().context("piped")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("bassline serve listening on http://")
            .and_then(|a| a.strip_suffix('/'))
            .with_context(|| format!("unexpected first line of serve: {line:?}"))?
            .to_owned();
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in out.lines() {});
        Ok(Serve { child, addr })
    }

    /// SIGTERM (it saves on the way out) and a bounded wait for it to exit.
    pub fn stop(&mut self) -> Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        for _ in 0..600 {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("bassline serve did not stop on SIGTERM")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
