//! What the Firefox browser tests need: Debian's Firefox ESR and geckodriver (the WebDriver
//! server for Firefox) from crates.io, each installed when missing.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Result, bail};

use crate::{cargo, run};

/// geckodriver's version, pinned: 0.37.1 builds with this toolchain (`--locked`, its own lock
/// file) and drives Firefox ESR 153 headless. A different version on PATH is replaced.
pub const GECKODRIVER_VERSION: &str = "0.37.1";

/// The Firefox binary the tests drive, installed from Debian (`firefox-esr`) when missing.
pub fn ensure_firefox() -> Result<PathBuf> {
    for candidate in ["/usr/bin/firefox-esr", "/usr/bin/firefox"] {
        if Path::new(candidate).exists() {
            return Ok(candidate.into());
        }
    }
    eprintln!(
        "Firefox is missing; the cross-browser tests need it. Installing Debian's package with \
         `apt-get install -y firefox-esr` (about a minute)"
    );
    let mut update = Command::new("apt-get");
    update.arg("update");
    run(update, "apt-get update")?;
    let mut install = Command::new("apt-get");
    install.args(["install", "-y", "firefox-esr"]);
    install.env("DEBIAN_FRONTEND", "noninteractive");
    run(install, "apt-get install -y firefox-esr")?;
    let path = PathBuf::from("/usr/bin/firefox-esr");
    if !path.exists() {
        bail!("apt-get installed firefox-esr but /usr/bin/firefox-esr is not there");
    }
    Ok(path)
}

/// Where `cargo install` puts binaries.
fn cargo_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
        .join("bin")
}

/// The version a geckodriver binary reports ("geckodriver 0.37.1 (...)"), if it runs.
fn version_of(bin: &Path) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next()?;
    Some(first.split_whitespace().nth(1)?.to_owned())
}

/// geckodriver at the pinned version, installed with `cargo install` when missing or another
/// version (about 3 minutes here, once).
pub fn ensure_geckodriver() -> Result<PathBuf> {
    let bin = cargo_bin_dir().join("geckodriver");
    let found = version_of(&bin);
    if found.as_deref() == Some(GECKODRIVER_VERSION) {
        return Ok(bin);
    }
    eprintln!(
        "geckodriver {GECKODRIVER_VERSION} is needed for the Firefox tests (found: {}); \
         installing it with cargo install (a few minutes, once)",
        found.as_deref().unwrap_or("none")
    );
    let mut install = cargo();
    install.args([
        "install",
        "geckodriver",
        "--locked",
        "--version",
        GECKODRIVER_VERSION,
    ]);
    run(
        install,
        &format!("cargo install geckodriver --locked --version {GECKODRIVER_VERSION}"),
    )?;
    match version_of(&bin) {
        Some(v) if v == GECKODRIVER_VERSION => Ok(bin),
        other => bail!(
            "cargo install geckodriver finished but {} reports {other:?}",
            bin.display()
        ),
    }
}
