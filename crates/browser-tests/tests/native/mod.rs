//! Native `bassline host` / `bassline join` processes the browser tests run beside the pages:
//! real binaries on loopback, killed when dropped so a failing test leaves none behind.
//! (`bassline serve` is `common::serve`.)
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use tokio::sync::mpsc;

/// Longest wait for a native peer to say something (as the pages' waits: bounded, generous).
pub const WAIT: Duration = Duration::from_secs(30);

/// A `bassline host` or `bassline join` process in `--json` mode: requests go in on its
/// standard input, one JSON line each, and its events come out as JSON lines (read on a thread
/// of their own, so waiting never blocks the runtime that drives the browsers).
pub struct NativePeer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    /// Everything it printed so far, for failure messages.
    pub seen: Vec<Value>,
    pub name: String,
}

impl NativePeer {
    fn spawn(bin: &Path, name: &str, args: &[&str]) -> Result<NativePeer> {
        let mut child = Command::new(bin)
            .args(args)
            .args(["--json", "--bind", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting bassline {}", args.join(" ")))?;
        let out = BufReader::new(child.stdout.take().context("piped")?);
        let stdin = child.stdin.take().context("piped")?;
        let (tx, rx) = mpsc::unbounded_channel();
        let who = name.to_owned();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                match serde_json::from_str(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                    Err(e) => eprintln!("{who}: not a JSON line ({e}): {line}"),
                }
            }
        });
        Ok(NativePeer {
            child,
            stdin,
            lines: rx,
            seen: Vec::new(),
            name: name.to_owned(),
        })
    }

    /// `bassline host` with its signaling at `signal` (`ws://HOST:PORT/signal`).
    pub fn host(bin: &Path, signal: &str) -> Result<NativePeer> {
        NativePeer::spawn(bin, "native host", &["host", "--signal", signal])
    }

    /// `bassline join LINK`: the link names its signaling server.
    pub fn join(bin: &Path, link: &str) -> Result<NativePeer> {
        NativePeer::spawn(bin, "native guest", &["join", link])
    }

    /// The next event matching `pred`; the events before it are kept in `seen`.
    pub async fn wait(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Result<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.lines.recv()).await {
                Ok(Some(v)) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return Ok(v);
                    }
                }
                Ok(None) | Err(_) => bail!(
                    "{}: no {what} (bounded wait{}); it printed:\n{}",
                    self.name,
                    match self.child.try_wait() {
                        Ok(Some(status)) => format!(", exited with {status}"),
                        _ => String::new(),
                    },
                    self.seen
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            }
        }
    }

    pub async fn wait_event(&mut self, event: &str) -> Result<Value> {
        self.wait(event, |v| v["event"] == event).await
    }

    /// Sends one JSON line (a request, or `{"type":"status"}`).
    pub fn send(&mut self, json: &str) -> Result<()> {
        writeln!(self.stdin, "{json}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| anyhow!("{}: writing to its input: {e}", self.name))
    }

    /// Its status now (`synced`, `pending`, `read_only`, `hash`, ...).
    pub async fn status(&mut self) -> Result<Value> {
        self.send(r#"{"type":"status"}"#)?;
        self.wait_event("status").await
    }

    /// Asks a query and returns its answer (or its error event).
    pub async fn ask(&mut self, json: &str) -> Result<Value> {
        self.send(json)?;
        self.wait("answer or error", |v| {
            v["event"] == "answer" || v["event"] == "error"
        })
        .await
    }

    /// The value of contact `id` as this peer holds it (`null` when it has no such contact).
    pub async fn value_of(&mut self, id: &str) -> Result<Value> {
        let a = self
            .ask(&format!(
                r#"{{"type":"get-contact","id":{}}}"#,
                Value::from(id)
            ))
            .await?;
        Ok(a["reply"]["contact"]["value"].clone())
    }

    /// Polls until contact `id` holds `value` here.
    pub async fn wait_value(&mut self, id: &str, value: &Value) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.value_of(id).await?;
            if &now == value {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: {id} holds {now}, not {value} (bounded wait)",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until this peer may edit (its `read-only` event says false).
    pub async fn editable(&mut self) -> Result<()> {
        self.wait("editable", |v| {
            v["event"] == "read-only" && v["value"] == false
        })
        .await
        .map(drop)
    }

    /// Polls the status until it is synced with nothing pending; returns its state hash.
    pub async fn settled_hash(&mut self) -> Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.status().await?;
            if s["synced"] == true && s["pending"] == 0 && s["read_only"] == false {
                return s["hash"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| anyhow!("{}: a status without a hash: {s}", self.name));
            }
            if Instant::now() > deadline {
                bail!("{}: not settled (bounded wait): {s}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for NativePeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
