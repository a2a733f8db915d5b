//! `bassline host` and `bassline join`: a peer-to-peer session from the command line. Prints
//! what happens (for people, or one JSON object per line with `--json`) and takes edits on
//! standard input, one JSON request per line.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use bassline_core::{Network, Request};
use bassline_net::{
    NetClient, NetEvent, Start,
    p2p::{P2pConfig, Room, p2p},
    rtc::RtcConfig,
};
use bassline_trust::RoomKey;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The signaling server a user gets without `--signal`: `bassline serve` on this machine.
pub const DEFAULT_SIGNAL: &str = "ws://127.0.0.1:8080/signal";

impl PeerArgs {
    /// The signaling server to use: `--signal`, else `bassline serve` on this machine.
    pub fn signal_url(&self) -> String {
        self.signal
            .clone()
            .unwrap_or_else(|| DEFAULT_SIGNAL.to_owned())
    }
}

/// Options shared by host and join.
#[derive(Debug, Clone, clap::Args)]
pub struct PeerArgs {
    /// Signaling server: `bassline serve` answers at ws://HOST:PORT/signal, a standalone
    /// `bassline signal` at ws://HOST:PORT/. Default: the server of the join link given to
    /// `join`, else ws://127.0.0.1:8080/signal.
    #[arg(long, env = "BASSLINE_SIGNAL")]
    pub signal: Option<String>,
    /// Room password (guests must give the same one). In a room with a room key (the
    /// default) the host checks it by PAKE and it never reaches the signaling server.
    #[arg(long, env = "BASSLINE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Failed password checks (PAKE runs) per minute this peer answers as host before it
    /// refuses further attempts for a while.
    #[arg(long, default_value_t = bassline_trust::DEFAULT_MAX_FAILURES, value_name = "N")]
    pub max_password_failures: usize,
    /// Print one JSON object per line (each with an "event" field) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Local UDP address for WebRTC (default: every interface; 127.0.0.1:0 keeps the session
    /// on this machine).
    #[arg(long, default_value = "0.0.0.0:0")]
    pub bind: String,
}

/// What kind of peer this process is.
pub enum Mode {
    /// Host a new room; `room_key`: make a key and sign offers/answers with it.
    Host {
        state: Option<PathBuf>,
        room_key: bool,
    },
    /// Join the room of a link or code (see [`crate::join_link`]); `trust_server`: send the
    /// password to the signaling server (rooms hosted with --no-room-key).
    Join {
        target: crate::join_link::Target,
        trust_server: bool,
    },
}

/// Runs the session until Ctrl-C, SIGTERM or a fatal error; returns whether it ended well
/// (a fatal error has been printed already).
pub async fn run(args: PeerArgs, mode: Mode) -> Result<bool> {
    let rtc = RtcConfig {
        bind: vec![args.bind.clone()],
        ..RtcConfig::default()
    };
    let (room, start, state, room_key) = match mode {
        Mode::Host { state, room_key } => {
            let net = match &state {
                Some(p) if p.exists() => crate::load(p)?,
                _ => Network::new(),
            };
            let key = if room_key {
                Some(RoomKey::generate().context("cannot make a room key")?)
            } else {
                None
            };
            (
                Room::Create {
                    password: args.password.clone(),
                    max_peers: None,
                },
                Start::Host(net),
                state,
                key,
            )
        }
        Mode::Join {
            target,
            trust_server,
        } => (
            Room::Join {
                code: target.code,
                password: args.password.clone(),
                trust_server,
            },
            Start::Guest,
            None,
            target.key,
        ),
    };
    let transport = p2p(P2pConfig {
        signal_url: args.signal_url(),
        room,
        rtc,
        room_key: room_key.clone(),
        guess_limiter: bassline_trust::GuessLimiter::new(
            args.max_password_failures,
            bassline_trust::DEFAULT_WINDOW_MS,
        ),
    });
    // Subscribed before the session runs: the room event (code and link) must not be missed.
    let (client, mut events) = NetClient::spawn_subscribed(transport, signing_config()?, start);
    if let Some(path) = &state {
        crate::persist::spawn_saver(client.clone(), path.clone(), Duration::from_secs(3));
    }
    let out = Printer {
        json: args.json,
        signal: args.signal_url(),
        room_key,
        password: args.password.is_some(),
    };
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    // Made once, outside the loop: a signal that arrives while no listener is registered is
    // lost, and a listener made afresh each time round would leave such a gap (the repeated
    // --state test caught a host that ignored SIGTERM).
    let shutdown = bassline_signal::server::shutdown_signal();
    tokio::pin!(shutdown);
    let result = loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => {
                    let fatal = matches!(&ev, NetEvent::Error { fatal: true, .. });
                    out.event(&ev);
                    if fatal {
                        break false;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    out.note(&format!("(skipped {n} events: output too slow)"));
                }
                Err(_) => break true,
            },
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(line)) => out.line(&client, &line).await,
                // End of input: keep collaborating until interrupted.
                Ok(None) | Err(_) => stdin_open = false,
            },
            () = &mut shutdown => break true,
        }
    };
    if let Some(path) = &state {
        crate::persist::save(&client, path)
            .await
            .with_context(|| format!("saving {}", path.display()))?;
    }
    Ok(result)
}

struct Printer {
    json: bool,
    signal: String,
    /// The room's key, which the join link carries in its fragment.
    room_key: Option<RoomKey>,
    /// The room has a password (with a key: guests may join by code + password).
    password: bool,
}

impl Printer {
    /// The join link: the page of the editor served by `bassline serve`, with the room key in
    /// its fragment; `bassline join` takes it too.
    fn link(&self, code: &str) -> String {
        let base = self
            .signal
            .replacen("ws://", "http://", 1)
            .replacen("wss://", "https://", 1);
        let base = base.trim_end_matches('/').trim_end_matches("/signal");
        crate::join_link::link(base, code, self.room_key.as_ref())
    }

    fn print(&self, v: serde_json::Value) {
        println!("{v}");
    }

    fn note(&self, text: &str) {
        if self.json {
            self.print(json!({"event": "note", "message": text}));
        } else {
            println!("{text}");
        }
    }

    fn event(&self, ev: &NetEvent) {
        if self.json {
            let mut v = serde_json::to_value(ev).expect("events serialize");
            if let NetEvent::Room { code } = ev {
                v["link"] = self.link(code).into();
            }
            self.print(v);
            return;
        }
        match ev {
            NetEvent::Room { code } if self.room_key.is_some() => {
                println!(
                    "room {code}\n  others join with: bassline join '{}' --signal {}\n  \
                     (the link carries the room key: share it only with the people you invite)",
                    self.link(code),
                    self.signal,
                );
                if self.password {
                    println!(
                        "  or with the code and the password: bassline join {code} --password \
                         PASSWORD --signal {}\n  (checked here by PAKE: the password never \
                         reaches the signaling server)",
                        self.signal
                    );
                }
            }
            NetEvent::Room { code } => println!(
                "room {code} (no room key: the signaling server is trusted)\n  others join \
                 with: bassline join {code} --signal {}\n  or open {}",
                self.signal,
                self.link(code)
            ),
            NetEvent::Role { role, epoch, host } => match host {
                Some(h) => println!("role: {role} (epoch {epoch}, host is peer {h})"),
                None => println!("role: {role} (epoch {epoch})"),
            },
            NetEvent::ReadOnly {
                value: true,
                because: Some(p),
            } => println!("read-only: the host made this peer {p} (you can look, not edit)"),
            NetEvent::ReadOnly { value: true, .. } => println!("read-only: waiting for a host"),
            NetEvent::ReadOnly { value: false, .. } => println!("editable"),
            NetEvent::Synced { hash } => println!("synced (state hash {hash})"),
            NetEvent::Replaced => println!("received the host's whole state"),
            NetEvent::Peer { peer, state, path } => match path {
                Some(p) => println!("peer {peer}: {state:?} ({p:?})"),
                None => println!("peer {peer}: {state:?}"),
            },
            NetEvent::Changes { changes } => {
                for c in changes {
                    println!(
                        "change: {}",
                        serde_json::to_string(c).expect("changes serialize")
                    );
                }
            }
            NetEvent::Decided { op, decision, .. } => {
                println!("decided {}:{}: {decision:?}", op.peer, op.counter)
            }
            NetEvent::Connection {
                status: bassline_net::TransportStatus::RoomLost { message, .. },
            } => eprintln!("warning: {message}"),
            NetEvent::Connection { status } => println!("connection: {status:?}"),
            NetEvent::Error { message, .. } => eprintln!("error: {message}"),
            NetEvent::Permission { peer, permission } => match peer {
                Some(p) => println!("permission: peer {p} is {permission}"),
                None => println!("permission: everyone else is {permission}"),
            },
            NetEvent::Misbehaved { peer, reason } => {
                eprintln!("peer {peer} sent something invalid: {reason}")
            }
        }
    }

    /// One line of standard input: a request, or `{"type":"status"}`.
    async fn line(&self, client: &NetClient, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => return self.input_error(&format!("not JSON: {e}")),
        };
        if value.get("type").and_then(|t| t.as_str()) == Some("permit") {
            return self.permit(client, value).await;
        }
        if value.get("type").and_then(|t| t.as_str()) == Some("status") {
            match client.status_now().await {
                Ok(s) => {
                    let mut v = serde_json::to_value(&s).expect("status serializes");
                    v["event"] = "status".into();
                    if self.json {
                        self.print(v);
                    } else {
                        println!("status: {v}");
                    }
                }
                Err(e) => self.input_error(&e.to_string()),
            }
            return;
        }
        // Requests typed (or piped) before this peer has a host's state would only be refused
        // or answered from an empty network: hold them until the session is editable.
        // A member the host made read-only is read-only for good: its edit is refused at once.
        let waits = |s: &bassline_net::Status| {
            !s.read_only || s.permission != bassline_sync::Permission::ReadWrite
        };
        if let Err(e) = bassline_net::wait_for(client, waits).await {
            return self.input_error(&e.to_string());
        }
        let request: Request = match serde_json::from_value(value) {
            Ok(r) => r,
            Err(e) => {
                return self.input_error(&format!(
                    "not a request ({e}); one JSON request per line, as in `bassline apply`"
                ));
            }
        };
        let query = !request.is_mutation();
        match client.submit(request).await {
            Ok(response) if query => {
                let v = json!({"event": "answer", "reply": response.reply});
                if self.json {
                    self.print(v);
                } else {
                    println!("answer: {}", v["reply"]);
                }
            }
            Ok(_) => {}
            Err(e) => self.event(&NetEvent::error(&e, false)),
        }
    }

    /// `{"type":"permit","peer":N,"permission":"read-only"}` (the host only): what member N
    /// may do, `read-write`, `read-only` or `removed`; without `peer`, everyone who has no
    /// permission of their own, later joiners included.
    async fn permit(&self, client: &NetClient, value: serde_json::Value) {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Permit {
            #[serde(rename = "type")]
            _type: String,
            #[serde(default)]
            peer: Option<bassline_sync::PeerId>,
            permission: bassline_sync::Permission,
        }
        let p: Permit = match serde_json::from_value(value) {
            Ok(p) => p,
            Err(e) => {
                return self.input_error(&format!(
                    "not a permit ({e}); write {{\"type\":\"permit\",\"peer\":2,\
                     \"permission\":\"read-only\"}} (read-write, read-only or removed; \
                     without \"peer\": everyone without a permission of their own)"
                ));
            }
        };
        if let Err(e) = client.set_permission(p.peer, p.permission).await {
            self.event(&NetEvent::error(&e, false));
        }
    }

    fn input_error(&self, message: &str) {
        if self.json {
            self.print(
                json!({"event": "error", "code": "bad-input", "message": message, "fatal": false}),
            );
        } else {
            eprintln!("error: {message}");
        }
    }
}

/// Refuses a `--state` path that cannot be written before the session starts, rather than
/// failing at the first save.
pub fn check_state_path(path: &std::path::Path) -> Result<()> {
    if path.is_dir() {
        bail!(
            "--state {} is a directory; give a file name",
            path.display()
        );
    }
    Ok(())
}

/// The session settings of a peer in this process: a fresh Ed25519 identity, kept for as long
/// as the process runs (a signaling reconnect keeps the peer id, and so the key).
pub(crate) fn signing_config() -> Result<bassline_sync::Config> {
    let secret =
        bassline_trust::os::random::<32>().context("no OS randomness for the signing key")?;
    Ok(bassline_sync::Config {
        identity: std::sync::Arc::new(bassline_sync::Ed25519Identity::from_secret(secret)),
        ..bassline_sync::Config::default()
    })
}
