//! Headless Firefox through geckodriver (WebDriver, `fantoccini`): each [`Firefox`] is its own
//! geckodriver on a free loopback port, its own Firefox in a fresh profile folder, and both
//! are gone when it is closed or dropped, a failed test included.

use std::{
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use fantoccini::{
    Client, ClientBuilder,
    actions::{InputSource, KeyAction, KeyActions, MOUSE_BUTTON_LEFT, MouseActions, PointerAction},
    key::Key,
};
use hyper_util::client::legacy::connect::HttpConnector;

use super::Page;

/// Where Firefox and geckodriver are (set by `cargo xtask test`, which installs them).
pub const FIREFOX_ENV: &str = "BASSLINE_FIREFOX";
pub const GECKODRIVER_ENV: &str = "BASSLINE_GECKODRIVER";

/// Firefox and geckodriver from the environment. Under `cargo xtask test` (the bundle's
/// variable is set) a missing one fails loudly instead of letting a test pass unrun; a plain
/// `cargo test` without the bundle skips like every browser test.
pub fn setup() -> Option<(PathBuf, PathBuf)> {
    let firefox = std::env::var_os(FIREFOX_ENV).map(PathBuf::from);
    let driver = std::env::var_os(GECKODRIVER_ENV).map(PathBuf::from);
    match (firefox, driver) {
        (Some(f), Some(d)) => Some((f, d)),
        _ if std::env::var_os("BASSLINE_WEB_DIST").is_some() => panic!(
            "{FIREFOX_ENV} and {GECKODRIVER_ENV} must name Firefox and geckodriver: \
             `cargo xtask test` installs both and sets them"
        ),
        _ => {
            eprintln!(
                "skipped: the Firefox tests run under `cargo xtask test`, which installs \
                 Firefox and geckodriver and sets {FIREFOX_ENV} and {GECKODRIVER_ENV}"
            );
            None
        }
    }
}

/// Preferences of the test profile, on top of geckodriver's own (no updates, no telemetry).
fn prefs() -> serde_json::Value {
    serde_json::json!({
        // The machine is offline but for loopback: nothing should try to reach out.
        "network.captive-portal-service.enabled": false,
        "network.connectivity-service.enabled": false,
        "browser.safebrowsing.update.enabled": false,
        "extensions.update.enabled": false,
        // WebRTC: Firefox's host candidates carry the machine's address (192.0.2.2) instead of
        // an mDNS name (`<uuid>.local`) that neither Chromium nor webrtc-rs can resolve here.
        // Measured with a Chromium offer and a Firefox answer: without this the channel still
        // opened, but only because Chromium's checks reached Firefox (peer-reflexive
        // candidates); with it both sides' candidates are usable. Nothing else was needed:
        // no loopback candidates (the machine has a real interface), no STUN.
        "media.peerconnection.ice.obfuscate_host_addresses": false,
    })
}

/// Processes that must not outlive the test: killed on drop unless closed in order first.
struct Processes {
    driver: Child,
    browser_pid: Option<u32>,
    profile: PathBuf,
}

impl Drop for Processes {
    fn drop(&mut self) {
        if let Some(pid) = self.browser_pid.take() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A headless Firefox showing one page.
pub struct Firefox {
    client: Client,
    processes: Processes,
    label: String,
}

/// A port that was free a moment ago: geckodriver takes a port number, not a listener, so
/// another process can take it in between; [`start_driver`] retries on that.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Starts geckodriver on a free port and waits until it accepts connections.
fn start_driver(driver: &Path, firefox: &Path) -> Result<(Child, u16)> {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port()?;
        let mut child = Command::new(driver)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--log",
                "warn",
            ])
            .arg("--binary")
            .arg(firefox)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", driver.display()))?;
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                // Most likely the port was taken in between: try another.
                last = format!("geckodriver exited with {status} on port {port}");
                break;
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok((child, port));
            }
            if start.elapsed() > super::PATIENCE {
                let _ = child.kill();
                let _ = child.wait();
                bail!("geckodriver did not listen on port {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    bail!("geckodriver could not start: {last}")
}

impl Firefox {
    /// A fresh headless Firefox (its own profile) showing `url`, once the editor is ready.
    pub async fn start(label: &str, url: &str, firefox: &Path, driver: &Path) -> Result<Firefox> {
        let profile = std::env::temp_dir().join(format!(
            "bassline-firefox-{label}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile)?;
        let (child, port) = match start_driver(driver, firefox) {
            Ok(started) => started,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&profile);
                return Err(e);
            }
        };
        let mut processes = Processes {
            driver: child,
            browser_pid: None,
            profile: profile.clone(),
        };
        let caps = serde_json::json!({
            "moz:firefoxOptions": {
                "binary": firefox,
                "args": ["-headless", "-profile", profile],
                "prefs": prefs(),
            }
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .map_err(|e| anyhow!("starting a Firefox session through geckodriver: {e}"))?;
        processes.browser_pid = client
            .capabilities()
            .and_then(|c| c.get("moz:processID"))
            .and_then(serde_json::Value::as_u64)
            .and_then(|p| u32::try_from(p).ok());
        let ff = Firefox {
            client,
            processes,
            label: format!("Firefox {label}"),
        };
        ff.client
            .set_window_size(1400, 860)
            .await
            .map_err(|e| anyhow!("sizing the window: {e}"))?;
        ff.client
            .goto(url)
            .await
            .map_err(|e| anyhow!("opening {url}: {e}"))?;
        ff.wait_ready().await?;
        Ok(ff)
    }

    /// Ends the WebDriver session (Firefox quits), then geckodriver, then the profile.
    pub async fn close(mut self) {
        if self.client.clone().close().await.is_ok() {
            self.processes.browser_pid = None;
        }
        drop(self.processes);
    }

    async fn perform(&self, actions: impl Into<fantoccini::actions::Actions>) -> Result<()> {
        self.client
            .perform_actions(actions)
            .await
            .map_err(|e| anyhow!("{}: input actions: {e}", self.label))
    }

    /// A press and release of the left button where the pointer is, `n` times.
    async fn clicks_at(&self, (x, y): (f64, f64), n: usize) -> Result<()> {
        let mut mouse = MouseActions::new("mouse".into()).then(PointerAction::MoveTo {
            duration: None,
            x: x.round(),
            y: y.round(),
        });
        for _ in 0..n {
            mouse = mouse
                .then(PointerAction::Down {
                    button: MOUSE_BUTTON_LEFT,
                })
                .then(PointerAction::Up {
                    button: MOUSE_BUTTON_LEFT,
                });
        }
        self.perform(mouse).await
    }
}

/// The WebDriver code point of a named key (`KeyboardEvent.key` names), or the character.
fn key_char(key: &str) -> Result<char> {
    Ok(match key {
        "Enter" => char::from(Key::Enter),
        "Escape" => char::from(Key::Escape),
        "Backspace" => char::from(Key::Backspace),
        "Delete" => char::from(Key::Delete),
        "Tab" => char::from(Key::Tab),
        other => {
            let mut chars = other.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => c,
                _ => bail!("no WebDriver key for {other:?}"),
            }
        }
    })
}

impl Page for Firefox {
    fn label(&self) -> &str {
        &self.label
    }

    async fn eval_json(&self, expr: &str) -> Result<serde_json::Value> {
        // Through JSON text, as with Chromium, so both browsers give the same values.
        let script = format!("return JSON.stringify(({expr}) ?? null);");
        let text = self
            .client
            .execute(&script, vec![])
            .await
            .map_err(|e| anyhow!("{}: evaluating {expr}: {e}", self.label))?;
        let text = text
            .as_str()
            .ok_or_else(|| anyhow!("{}: {expr} gave {text}, not JSON text", self.label))?;
        serde_json::from_str(text).with_context(|| format!("reading {text}"))
    }

    async fn hover(&self, (x, y): (f64, f64)) -> Result<()> {
        self.perform(
            MouseActions::new("mouse".into()).then(PointerAction::MoveTo {
                duration: None,
                x: x.round(),
                y: y.round(),
            }),
        )
        .await
    }

    async fn click(&self, at: (f64, f64)) -> Result<()> {
        self.clicks_at(at, 1).await
    }

    async fn double_click(&self, at: (f64, f64)) -> Result<()> {
        self.clicks_at(at, 2).await
    }

    async fn key(&self, key: &str) -> Result<()> {
        let value = key_char(key)?;
        self.perform(
            KeyActions::new("keyboard".into())
                .then(KeyAction::Down { value })
                .then(KeyAction::Up { value }),
        )
        .await
    }

    async fn type_text(&self, text: &str) -> Result<()> {
        let focused = self
            .client
            .active_element()
            .await
            .map_err(|e| anyhow!("{}: the focused element: {e}", self.label))?;
        focused
            .send_keys(text)
            .await
            .map_err(|e| anyhow!("{}: typing {text:?}: {e}", self.label))
    }

    async fn screenshot_png(&self) -> Result<Vec<u8>> {
        self.client
            .screenshot()
            .await
            .map_err(|e| anyhow!("{}: screenshot: {e}", self.label))
    }

    async fn reload(&self) -> Result<()> {
        self.client
            .refresh()
            .await
            .map_err(|e| anyhow!("{}: reload: {e}", self.label))
    }
}
