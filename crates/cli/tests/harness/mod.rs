//! Real `bassline` processes on loopback for the end-to-end tests: `serve` on port 0 (no STUN,
//! nothing leaves the machine), `host`/`join` peers speaking JSON lines. Every process is killed
//! when its handle drops; every wait is bounded (a hang fails the test, no timing is asserted).

#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::Value;

pub const WAIT: Duration = Duration::from_secs(60);

pub fn bassline() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bassline"));
    c.env_remove("RUST_BACKTRACE").env("RUST_LOG", "warn");
    c
}

/// A fresh directory for one test (its data folders, state files), removed when the test's
/// handle drops, whether the test passed or panicked. Bind it to a variable declared before
/// the servers that use it, so it outlives their restarts and they stop before it goes.
pub fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("bassline-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    TempDir(dir)
}

/// See [`temp_dir`].
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `bassline serve` process.
pub struct Serve {
    pub child: Child,
    pub addr: String,
}

impl Serve {
    pub fn start(data: &Path) -> Serve {
        Serve::start_at(data, "127.0.0.1:0")
    }

    /// Starts on a given address (a restart on the same port).
    pub fn start_at(data: &Path, listen: &str) -> Serve {
        Serve::start_with(data, listen, &[])
    }

    /// Starts with more flags of `bassline serve` (e.g. `--web DIR`).
    pub fn start_with(data: &Path, listen: &str, extra: &[&std::ffi::OsStr]) -> Serve {
        let mut child = bassline()
            .args(["serve", "--listen", listen, "--stun", ""])
            .arg("--data")
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("bassline serve starts");
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        out.read_line(&mut line).expect("serve prints its address");
        let addr = line
            .trim()
            .strip_prefix("bassline serve listening on http://")
            .and_then(|a| a.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in out.lines() {});
        Serve { child, addr }
    }

    pub fn signal(&self) -> String {
        format!("ws://{}/signal", self.addr)
    }

    pub fn remote(&self) -> String {
        format!("ws://{}/remote", self.addr)
    }

    /// SIGTERM, then wait for it to exit (it saves on the way out).
    pub fn stop(mut self) {
        terminate(&mut self.child, "bassline serve");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `bassline host` or `join` process in `--json` mode.
pub struct Peer {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
    /// Everything it printed so far, for failure messages.
    pub seen: Vec<Value>,
    pub name: String,
}

impl Peer {
    fn spawn(name: &str, args: &[&str]) -> Peer {
        let mut child = bassline()
            .args(args)
            .args(["--json", "--bind", "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("bassline starts");
        let out = BufReader::new(child.stdout.take().expect("piped"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Peer {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            seen: Vec::new(),
            name: name.into(),
        }
    }

    pub fn host(serve: &Serve, extra: &[&str]) -> Peer {
        let signal = serve.signal();
        let mut args = vec!["host", "--signal", &signal];
        args.extend_from_slice(extra);
        Peer::spawn("host", &args)
    }

    /// Joins with `room`: the join link a keyed host printed, or a bare code.
    pub fn join(name: &str, serve: &Serve, room: &str, extra: &[&str]) -> Peer {
        Peer::join_via(name, &serve.signal(), room, extra)
    }

    /// A host whose signaling goes to `signal` (a proxy in front of the server, say).
    pub fn host_via(signal: &str, extra: &[&str]) -> Peer {
        let mut args = vec!["host", "--signal", signal];
        args.extend_from_slice(extra);
        Peer::spawn("host", &args)
    }

    /// A guest whose signaling goes to `signal`.
    pub fn join_via(name: &str, signal: &str, room: &str, extra: &[&str]) -> Peer {
        let mut args = vec!["join", room, "--signal", signal];
        args.extend_from_slice(extra);
        Peer::spawn(name, &args)
    }

    /// The next event matching `pred`; events before it are kept in `seen`.
    pub fn wait(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "{}: no {what} (bounded wait); it printed:\n{}",
                    self.name,
                    self.seen
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            }
        }
    }

    pub fn wait_event(&mut self, event: &str) -> Value {
        self.wait(event, |v| v["event"] == event)
    }

    pub fn send(&mut self, json: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{json}").expect("peer reads stdin");
        stdin.flush().expect("flush");
    }

    /// Asks for the status and returns it.
    pub fn status(&mut self) -> Value {
        self.send(r#"{"type":"status"}"#);
        self.wait_event("status")
    }

    /// Asks a query and returns its answer.
    pub fn ask(&mut self, json: &str) -> Value {
        self.send(json);
        self.wait("answer or error", |v| {
            v["event"] == "answer" || v["event"] == "error"
        })
    }

    /// Waits for the process to exit; returns whether it succeeded, and its output.
    pub fn exit(mut self) -> (bool, Vec<Value>) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                while let Ok(v) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(v);
                }
                return (status.success(), std::mem::take(&mut self.seen));
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM (as Ctrl-C would), then wait for the process to exit.
    pub fn terminate(&mut self) {
        terminate(&mut self.child, &self.name);
    }

    /// kill -9.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGTERM and waits (bounded) for the process to exit.
fn terminate(child: &mut Child, name: &str) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{name} did not stop on SIGTERM");
}

/// Polls every peer's status until all are synced with nothing pending and one state hash;
/// returns the hash.
pub fn converge(peers: &mut [&mut Peer]) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let statuses: Vec<Value> = peers.iter_mut().map(|p| p.status()).collect();
        let hashes: Vec<&Value> = statuses.iter().map(|s| &s["hash"]).collect();
        let settled = statuses
            .iter()
            .all(|s| s["synced"] == true && s["pending"] == 0 && s["read_only"] == false);
        if settled && hashes.windows(2).all(|w| w[0] == w[1]) {
            return hashes[0].as_str().expect("a hash").to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "peers did not converge (bounded wait): {statuses:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
