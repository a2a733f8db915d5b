//! One page interface over both browsers the tests drive: Chromium (CDP, `common::Session`)
//! and Firefox (WebDriver through geckodriver, `firefox::Firefox`). A scenario written against
//! [`Page`] runs unchanged in either, so a cross-browser test says what the user does once.
#![allow(dead_code)]

pub mod firefox;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};

use crate::common::{Session, js_str};

/// Longest wait for anything a page should do (as in `common`): a bounded poll, never a
/// sleep-and-hope; generous because two cores also run the rest of the suite.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// What a test does with an editor page, whichever browser shows it. Input is real input
/// events (CDP in Chromium, WebDriver actions in Firefox), never DOM calls.
#[allow(async_fn_in_trait)]
pub trait Page {
    /// The name failures and screenshots use.
    fn label(&self) -> &str;

    /// Evaluates `expr` in the page and returns its value as JSON (`null` for `undefined`).
    async fn eval_json(&self, expr: &str) -> Result<serde_json::Value>;

    /// Moves the pointer to a point of the window, buttons up.
    async fn hover(&self, at: (f64, f64)) -> Result<()>;

    /// One left click at a point of the window.
    async fn click(&self, at: (f64, f64)) -> Result<()>;

    /// A double click at a point of the window.
    async fn double_click(&self, at: (f64, f64)) -> Result<()>;

    /// A key press, `key` as in `KeyboardEvent.key` (a character, or "Enter", "Escape").
    async fn key(&self, key: &str) -> Result<()>;

    /// Types text into whatever has the focus.
    async fn type_text(&self, text: &str) -> Result<()>;

    /// A PNG of the window.
    async fn screenshot_png(&self) -> Result<Vec<u8>>;

    /// Reloads the page.
    async fn reload(&self) -> Result<()>;

    async fn eval<T: serde::de::DeserializeOwned>(&self, expr: &str) -> Result<T> {
        let value = self.eval_json(expr).await?;
        serde_json::from_value(value.clone())
            .with_context(|| format!("{}: reading {value} from {expr}", self.label()))
    }

    /// Polls a JavaScript condition until it holds.
    async fn wait_for(&self, condition: &str, what: &str) -> Result<()> {
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
                bail!("{}: gave up waiting for {what} ({condition})", self.label());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the editor has restored its state and drawn.
    async fn wait_ready(&self) -> Result<()> {
        self.wait_for("document.body.dataset.ready === '1'", "the editor to start")
            .await
    }

    /// Text of the first element matching `selector` ("" if none).
    async fn text(&self, selector: &str) -> Result<String> {
        self.eval(&format!(
            "document.querySelector({})?.textContent ?? ''",
            js_str(selector)
        ))
        .await
    }

    async fn state_hash(&self) -> Result<String> {
        self.eval("document.body.dataset.stateHash").await
    }

    /// The centre of an element, in window coordinates.
    async fn centre(&self, selector: &str) -> Result<(f64, f64)> {
        let at: Option<(f64, f64)> = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({}); if (!e) return null; \
                 const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
                js_str(selector)
            ))
            .await?;
        at.ok_or_else(|| anyhow!("{}: no element matches {selector}", self.label()))
    }

    /// A point of the canvas, `dx`, `dy` pixels from its top-left corner.
    async fn canvas_point(&self, dx: f64, dy: f64) -> Result<(f64, f64)> {
        let (x, y): (f64, f64) = self
            .eval(
                "(() => { const r = document.querySelector('.canvas').getBoundingClientRect(); \
                 return [r.x, r.y]; })()",
            )
            .await?;
        Ok((x + dx, y + dy))
    }

    async fn click_on(&self, selector: &str) -> Result<()> {
        let at = self.centre(selector).await?;
        self.click(at).await
    }

    /// Sets a contact's value through its inline editor: double-click, clear, type, Enter.
    async fn type_value(&self, contact: &str, text: &str) -> Result<()> {
        let at = self
            .centre(&format!("[data-node='{contact}'] .value"))
            .await?;
        self.double_click(at).await?;
        self.wait_for(
            "document.activeElement && document.activeElement.closest('.value-editor')",
            "the value editor to take the focus",
        )
        .await?;
        self.eval::<()>("(() => { document.activeElement.value = ''; })()")
            .await?;
        self.type_text(text).await?;
        self.key("Enter").await
    }

    /// Waits until a contact shows `value`.
    async fn shows_value(&self, contact: &str, value: &str) -> Result<()> {
        self.wait_for(
            &format!(
                "document.querySelector(\"[data-node='{contact}'] .value\")?.textContent === {}",
                js_str(value)
            ),
            &format!("{contact} showing {value}"),
        )
        .await
    }

    /// Saves a screenshot under `target/browser-artifacts/`.
    async fn screenshot(&self, file: &str) -> Result<PathBuf> {
        let dir = crate::common::artifacts();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(file);
        std::fs::write(&path, self.screenshot_png().await?)?;
        Ok(path)
    }
}

impl Page for Session {
    fn label(&self) -> &str {
        "Chromium"
    }

    async fn eval_json(&self, expr: &str) -> Result<serde_json::Value> {
        Session::eval(self, expr).await
    }

    async fn hover(&self, at: (f64, f64)) -> Result<()> {
        Session::hover(self, at).await
    }

    async fn click(&self, at: (f64, f64)) -> Result<()> {
        Session::click(self, at).await
    }

    async fn double_click(&self, at: (f64, f64)) -> Result<()> {
        Session::double_click(self, at).await
    }

    async fn key(&self, key: &str) -> Result<()> {
        Session::key(self, key).await
    }

    async fn type_text(&self, text: &str) -> Result<()> {
        Session::type_text(self, text).await
    }

    async fn screenshot_png(&self) -> Result<Vec<u8>> {
        let png = self
            .page
            .screenshot(
                chromiumoxide::page::ScreenshotParams::builder()
                    .full_page(false)
                    .build(),
            )
            .await?;
        Ok(png)
    }

    async fn reload(&self) -> Result<()> {
        self.page.reload().await?;
        Ok(())
    }
}
