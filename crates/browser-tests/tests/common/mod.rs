//! The harness: a static file server for the bundle, a fresh headless Chromium per test, and
//! input the way a person gives it (CDP mouse and key events, not DOM calls).
#![allow(dead_code)]

pub mod serve;
pub mod trace;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use chromiumoxide::{
    Browser, BrowserConfig, Page,
    cdp::browser_protocol::input::{
        DispatchKeyEventParams, DispatchKeyEventType, DispatchMouseEventParams,
        DispatchMouseEventType, InsertTextParams, MouseButton,
    },
};
use futures::StreamExt;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// Longest wait for anything the page should do; generous because two cores also run the
/// rest of the test suite. Waiting is a bounded poll for a condition, never a sleep-and-hope.
const PATIENCE: Duration = Duration::from_secs(30);

pub const CTRL: i64 = 2;
pub const SHIFT: i64 = 8;
pub const ALT: i64 = 1;

/// Where the bundle and Chromium are, from `cargo xtask test`; `None` when run without them.
pub fn setup() -> Option<(PathBuf, PathBuf)> {
    let dist = std::env::var_os("BASSLINE_WEB_DIST").map(PathBuf::from);
    let chromium = std::env::var_os("BASSLINE_CHROMIUM").map(PathBuf::from);
    match (dist, chromium) {
        (Some(d), Some(c)) => Some((d, c)),
        _ => {
            eprintln!(
                "skipped: the browser tests run under `cargo xtask test`, which builds the \
                 bundle and sets BASSLINE_WEB_DIST and BASSLINE_CHROMIUM"
            );
            None
        }
    }
}

/// Serves the files of `dir` on 127.0.0.1 (a port of its own), until the test ends.
pub async fn serve(dir: PathBuf) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let dir = dir.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut n = 0;
                while n < buf.len() {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => n += k,
                    }
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split_whitespace().nth(1).unwrap_or("/");
                let path = path.split(['?', '#']).next().unwrap_or("/");
                let name = if path == "/" {
                    "index.html"
                } else {
                    path.trim_start_matches('/')
                };
                let file = (!name.contains("..")).then(|| dir.join(name));
                let body = match &file {
                    Some(f) => tokio::fs::read(f).await.ok(),
                    None => None,
                };
                let (status, kind, body) = match body {
                    Some(b) => ("200 OK", content_type(name), b),
                    None => ("404 Not Found", "text/plain", b"not found".to_vec()),
                };
                let header = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
                     Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(header.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Ok(format!("http://{addr}"))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// One test's browser: its own profile folder, so storage starts empty.
pub struct Session {
    pub browser: Browser,
    pub page: Page,
    pub base: String,
    pub profile: PathBuf,
    name: String,
}

impl Session {
    pub async fn start(name: &str, dist: &Path, chromium: &Path) -> Result<Session> {
        let base = serve(dist.to_path_buf()).await?;
        Session::start_at(name, base, chromium).await
    }

    /// A browser of its own showing the page at `base` (e.g. a `bassline serve` process).
    pub async fn start_at(name: &str, base: String, chromium: &Path) -> Result<Session> {
        let profile = std::env::temp_dir().join(format!(
            "bassline-browser-{name}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile)?;
        let config = BrowserConfig::builder()
            .chrome_executable(chromium)
            .new_headless_mode()
            .no_sandbox()
            .user_data_dir(&profile)
            .window_size(1400, 860)
            .viewport(None)
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(60))
            .args([
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(("disable-features", "WebRtcHideLocalIpsWithMdns"))
            .build()
            .map_err(|e| anyhow!("browser config: {e}"))?;
        let (browser, mut handler) = Browser::launch(config)
            .await
            .context("launching Chromium")?;
        tokio::spawn(async move { while handler.next().await.is_some() {} });
        let page = browser.new_page(base.as_str()).await?;
        let s = Session {
            browser,
            page,
            base,
            profile,
            name: name.to_owned(),
        };
        s.wait_ready().await?;
        Ok(s)
    }

    /// Waits until the editor has restored its state and drawn.
    pub async fn wait_ready(&self) -> Result<()> {
        self.wait_for("document.body.dataset.ready === '1'", "the editor to start")
            .await
    }

    /// Evaluates `expr` (wrapped in JSON.stringify, so `undefined` and `null` come back as
    /// text instead of failing) and reads the JSON.
    pub async fn eval<T: serde::de::DeserializeOwned>(&self, expr: &str) -> Result<T> {
        let js = format!("JSON.stringify(({expr}) ?? null)");
        let text: String = self
            .page
            .evaluate(js.as_str())
            .await
            .with_context(|| format!("evaluating {expr}"))?
            .into_value()?;
        serde_json::from_str(&text).with_context(|| format!("reading {text}"))
    }

    /// Polls a JavaScript condition until it holds.
    pub async fn wait_for(&self, condition: &str, what: &str) -> Result<()> {
        let start = Instant::now();
        loop {
            if self
                .eval::<bool>(&format!("!!({condition})"))
                .await
                .unwrap_or(false)
            {
                return Ok(());
            }
            if start.elapsed() > PATIENCE {
                bail!("gave up waiting for {what} ({condition})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Text of the first element matching `selector` ("" if none).
    pub async fn text(&self, selector: &str) -> Result<String> {
        self.eval(&format!(
            "document.querySelector({})?.textContent ?? ''",
            js_str(selector)
        ))
        .await
    }

    pub async fn count(&self, selector: &str) -> Result<usize> {
        self.eval(&format!(
            "document.querySelectorAll({}).length",
            js_str(selector)
        ))
        .await
    }

    pub async fn state_hash(&self) -> Result<String> {
        self.eval("document.body.dataset.stateHash").await
    }

    /// The centre of an element, in window coordinates.
    pub async fn centre(&self, selector: &str) -> Result<(f64, f64)> {
        let at: Option<(f64, f64)> = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({}); if (!e) return null; \
                 const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
                js_str(selector)
            ))
            .await?;
        at.ok_or_else(|| anyhow!("no element matches {selector}"))
    }

    /// A point of the canvas, `dx`, `dy` pixels from its top-left corner.
    pub async fn canvas_point(&self, dx: f64, dy: f64) -> Result<(f64, f64)> {
        let (x, y): (f64, f64) = self
            .eval(
                "(() => { const r = document.querySelector('.canvas').getBoundingClientRect(); \
                 return [r.x, r.y]; })()",
            )
            .await?;
        Ok((x + dx, y + dy))
    }

    async fn mouse(
        &self,
        kind: DispatchMouseEventType,
        (x, y): (f64, f64),
        clicks: i64,
        modifiers: i64,
    ) -> Result<()> {
        let pressed = !matches!(kind, DispatchMouseEventType::MouseReleased);
        let mut b = DispatchMouseEventParams::builder()
            .r#type(kind.clone())
            .x(x)
            .y(y)
            .modifiers(modifiers);
        if !matches!(kind, DispatchMouseEventType::MouseMoved) {
            b = b.button(MouseButton::Left).click_count(clicks);
        }
        if pressed && !matches!(kind, DispatchMouseEventType::MouseMoved) {
            b = b.buttons(1);
        }
        let params = b.build().map_err(|e| anyhow!(e))?;
        self.page.execute(params).await?;
        Ok(())
    }

    pub async fn hover(&self, at: (f64, f64)) -> Result<()> {
        self.mouse(DispatchMouseEventType::MouseMoved, at, 0, 0)
            .await
    }

    pub async fn click_with(&self, at: (f64, f64), modifiers: i64) -> Result<()> {
        self.hover(at).await?;
        self.mouse(DispatchMouseEventType::MousePressed, at, 1, modifiers)
            .await?;
        self.mouse(DispatchMouseEventType::MouseReleased, at, 1, modifiers)
            .await
    }

    pub async fn click(&self, at: (f64, f64)) -> Result<()> {
        self.click_with(at, 0).await
    }

    pub async fn click_on(&self, selector: &str) -> Result<()> {
        let at = self.centre(selector).await?;
        self.click(at).await
    }

    pub async fn double_click(&self, at: (f64, f64)) -> Result<()> {
        self.click(at).await?;
        self.mouse(DispatchMouseEventType::MousePressed, at, 2, 0)
            .await?;
        self.mouse(DispatchMouseEventType::MouseReleased, at, 2, 0)
            .await
    }

    /// Presses at `from`, moves in steps (with the button held) and releases at `to`.
    pub async fn drag(&self, from: (f64, f64), to: (f64, f64)) -> Result<()> {
        self.drag_steps(from, to, 8).await
    }

    pub async fn drag_steps(&self, from: (f64, f64), to: (f64, f64), steps: u32) -> Result<()> {
        self.hover(from).await?;
        self.mouse(DispatchMouseEventType::MousePressed, from, 1, 0)
            .await?;
        for i in 1..=steps {
            let t = f64::from(i) / f64::from(steps);
            let at = (from.0 + (to.0 - from.0) * t, from.1 + (to.1 - from.1) * t);
            let params = DispatchMouseEventParams::builder()
                .r#type(DispatchMouseEventType::MouseMoved)
                .x(at.0)
                .y(at.1)
                .button(MouseButton::Left)
                .buttons(1)
                .build()
                .map_err(|e| anyhow!(e))?;
            self.page.execute(params).await?;
        }
        self.mouse(DispatchMouseEventType::MouseReleased, to, 1, 0)
            .await
    }

    /// A key press (`key` as in KeyboardEvent.key), with modifiers.
    pub async fn key_with(&self, key: &str, modifiers: i64) -> Result<()> {
        let text = (key.chars().count() == 1 && modifiers & (CTRL | ALT) == 0).then_some(key);
        for kind in [DispatchKeyEventType::KeyDown, DispatchKeyEventType::KeyUp] {
            let mut b = DispatchKeyEventParams::builder()
                .r#type(kind.clone())
                .key(key)
                .modifiers(modifiers);
            if let (Some(t), DispatchKeyEventType::KeyDown) = (text, &kind) {
                b = b.text(t);
            }
            if key == "Enter" && matches!(kind, DispatchKeyEventType::KeyDown) {
                b = b.text("\r");
            }
            let params = b.build().map_err(|e| anyhow!(e))?;
            self.page.execute(params).await?;
        }
        Ok(())
    }

    pub async fn key(&self, key: &str) -> Result<()> {
        self.key_with(key, 0).await
    }

    /// Types into whatever has the focus.
    pub async fn type_text(&self, text: &str) -> Result<()> {
        self.page.execute(InsertTextParams::new(text)).await?;
        Ok(())
    }

    /// Types into a contact's inline editor (double-click, clear, type), without committing.
    pub async fn type_into_editor(&self, contact: &str, text: &str) -> Result<()> {
        // A contact made elsewhere arrives as two edits (add, then place): drawn before its
        // placement, it can move under a double-click. Aim again at where it is now.
        let focused =
            "!!(document.activeElement && document.activeElement.closest('.value-editor'))";
        for _ in 0..4 {
            let at = self
                .centre(&format!("[data-node='{contact}'] .value"))
                .await?;
            self.double_click(at).await?;
            for _ in 0..20 {
                if self.eval::<bool>(focused).await? {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            if self.eval::<bool>(focused).await? {
                break;
            }
        }
        self.wait_for(
            "document.activeElement && document.activeElement.closest('.value-editor')",
            "the value editor to take the focus",
        )
        .await?;
        self.eval::<()>("(() => { document.activeElement.value = ''; })()")
            .await?;
        self.type_text(text).await
    }

    /// Sets a value through the inline editor: double-click the contact, type, Enter.
    pub async fn type_value(&self, contact: &str, text: &str) -> Result<()> {
        self.type_into_editor(contact, text).await?;
        self.key("Enter").await
    }

    pub async fn value_of(&self, contact: &str) -> Result<String> {
        self.text(&format!("[data-node='{contact}'] .value")).await
    }

    pub async fn screenshot(&self, file: &str) -> Result<PathBuf> {
        let dir = artifacts();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(file);
        let png = self
            .page
            .screenshot(
                chromiumoxide::page::ScreenshotParams::builder()
                    .full_page(false)
                    .build(),
            )
            .await?;
        std::fs::write(&path, png)?;
        Ok(path)
    }

    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Screenshots and downloads of the browser tests (failures save one here).
pub fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-artifacts")
}

/// A JavaScript string literal.
pub fn js_str(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// Runs one browser scenario: skips without the bundle, saves a screenshot if it fails.
pub fn run(name: &str, scenario: impl AsyncFnOnce(&Session) -> Result<()>) {
    let Some((dist, chromium)) = setup() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let session = Session::start(name, &dist, &chromium)
            .await
            .unwrap_or_else(|e| panic!("{name}: could not start the browser: {e:#}"));
        let result = scenario(&session).await;
        if let Err(e) = result {
            let shot = session.screenshot(&format!("{name}-failure.png")).await;
            let toasts: Vec<String> = session
                .eval("[...document.querySelectorAll('.toast')].map(t => t.textContent)")
                .await
                .unwrap_or_default();
            eprintln!("{name}: toasts on screen: {toasts:?}");
            session.close().await;
            panic!("{name} failed: {e:#}\nscreenshot: {shot:?}");
        }
        session.close().await;
    });
}
