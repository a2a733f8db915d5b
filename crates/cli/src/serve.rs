//! `bassline serve`: one process, one port. The browser editor at `/`, signaling at `/signal`,
//! the remote-mode endpoint at `/remote` (this server is the permanent host of one network,
//! persisted in the data directory), `/healthz` and `/metrics`.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, Result};
use axum::{
    Router,
    extract::{
        Query, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    response::{IntoResponse, Response},
    routing::get,
};
use bassline_core::Network;
use bassline_net::{
    Events, NetClient, Start, Transport, TransportEvent, mesh::random_seed, ws::Welcome,
};
use bassline_sync::{Candidacy, HostSnapshot, PeerId, Session};
use futures_util::{SinkExt, StreamExt, future};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::editor_files::{self, EditorFiles};

/// Settings of `bassline serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (0.0.0.0:8080 accepts other machines).
    #[arg(long, env = "BASSLINE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the remote-mode network is kept (default: a per-user data directory).
    #[arg(long, env = "BASSLINE_DATA")]
    pub data: Option<PathBuf>,
    /// The browser editor's files, as `cargo xtask web` builds them (default: the `web`
    /// folder beside the binary's build folder, i.e. target/web, else ./target/web).
    #[arg(long, env = "BASSLINE_WEB")]
    pub web: Option<PathBuf>,
    /// STUN URLs handed to peer-to-peer peers, comma-separated ("" for none).
    #[arg(
        long,
        env = "BASSLINE_STUN",
        value_delimiter = ',',
        default_value = "stun:stun.l.google.com:19302"
    )]
    pub stun: Vec<String>,
    /// Share the signaling rooms at /signal with other instances through this Redis
    /// (redis://host:port/db); see docs/DEPLOY.md.
    #[arg(long, env = "BASSLINE_REDIS", hide_env_values = true)]
    pub redis: Option<String>,
    /// Reverse proxies (CIDR networks or addresses, comma-separated) whose forwarding header
    /// names the client, so the signaling per-address limits count each client, not the proxy.
    #[arg(long, env = "BASSLINE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<bassline_signal::server::proxy::Cidr>,
    /// The header those proxies name the client in.
    #[arg(
        long,
        env = "BASSLINE_FORWARDED_HEADER",
        value_enum,
        default_value = "x-forwarded-for"
    )]
    pub forwarded_header: bassline_signal::server::proxy::ForwardedHeader,
    /// What remote-mode clients may do: read-write, or read-only (they see the network live
    /// and edit nothing). Kept in the session across restarts; given again, it is set again.
    #[arg(long, env = "BASSLINE_GUESTS", value_enum)]
    pub guests: Option<Guests>,
}

/// What remote-mode clients may do (`bassline serve --guests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Guests {
    /// Edit, like the server.
    ReadWrite,
    /// Look, not edit.
    ReadOnly,
}

/// The per-user data directory: $XDG_DATA_HOME/bassline, ~/.local/share/bassline, or
/// ./bassline-data when neither is known.
fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("bassline");
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/share/bassline"),
        None => PathBuf::from("bassline-data"),
    }
}

/// The session file: what the host needs to host the network again after a restart.
const SESSION_FILE: &str = "session.json";
/// The peer ids issued so far and the tokens that resume them.
const IDS_FILE: &str = "peers.json";

/// Peer ids handed out by this server, kept across restarts so none is ever reused (a reused
/// id would make a new client's edits look like an old client's re-sends).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Ids {
    next: PeerId,
    tokens: HashMap<String, PeerId>,
}

impl Ids {
    fn issue(&mut self) -> PeerId {
        let id = self.next.max(1);
        self.next = id + 1;
        id
    }
}

/// Tokens remembered; the oldest are forgotten past this (their clients get a new id).
const MAX_TOKENS: usize = 10_000;

struct Hub {
    ids: Mutex<Ids>,
    ids_file: PathBuf,
    host: PeerId,
    events: Events,
    /// The ids with an open connection, by the page (or process) instance holding each.
    live: Mutex<HashMap<PeerId, Holder>>,
}

/// A connecting client's place in the session.
struct Admitted {
    peer: PeerId,
    token: String,
    /// The token was known and `peer` is the id it was issued with.
    resumed: bool,
    /// This connection's number, for [`Hub::gone`].
    connection: u64,
}

/// Who holds a connected id: the instance the client named (a random string per page load or
/// process), and which connection of this run it is.
#[derive(Debug, Clone)]
struct Holder {
    instance: Option<String>,
    connection: u64,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ids> {
        // Each update is a few map operations; a poisoned lock still holds usable ids.
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The id for a connecting client: its old one for a known token (and `true`), else a
    /// fresh one. A token whose id is connected right now from another instance is a copy (a
    /// duplicated browser tab copies the tab's session storage, token included): the copy gets
    /// an id of its own, since two editors under one id would number their edits alike. The
    /// same instance (or one that names none) takes its id back, as a reconnect does.
    ///
    /// The id is marked connected at once (the returned number is for [`Hub::gone`]), so two
    /// copies connecting together cannot both take it.
    fn admit(&self, resume: Option<&str>, instance: Option<String>) -> Admitted {
        let mut ids = self.lock();
        if let Some(t) = resume
            && let Some(&id) = ids.tokens.get(t)
        {
            let held_by_another = self
                .live_lock()
                .get(&id)
                .is_some_and(|h| matches!((&h.instance, &instance), (Some(a), Some(b)) if a != b));
            if !held_by_another {
                return Admitted {
                    peer: id,
                    token: t.to_owned(),
                    resumed: true,
                    connection: self.connected(id, instance),
                };
            }
        }
        let id = ids.issue();
        let token = format!("{:016x}{:016x}", random_seed(), random_seed());
        if ids.tokens.len() >= MAX_TOKENS
            && let Some(oldest) = ids
                .tokens
                .iter()
                .min_by_key(|(_, v)| **v)
                .map(|(k, _)| k.clone())
        {
            ids.tokens.remove(&oldest);
        }
        ids.tokens.insert(token.clone(), id);
        if let Err(e) = save_ids(&self.ids_file, &ids) {
            eprintln!("bassline serve: {e:#}");
        }
        Admitted {
            peer: id,
            token,
            resumed: false,
            connection: self.connected(id, instance),
        }
    }

    fn live_lock(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, Holder>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `peer` connected by `instance`; returns the connection's number for [`Hub::gone`].
    fn connected(&self, peer: PeerId, instance: Option<String>) -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let connection = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.live_lock().insert(
            peer,
            Holder {
                instance,
                connection,
            },
        );
        connection
    }

    /// Connection `connection` of `peer` ended (a later one that took the id over stays).
    fn gone(&self, peer: PeerId, connection: u64) {
        let mut live = self.live_lock();
        if live.get(&peer).is_some_and(|h| h.connection == connection) {
            live.remove(&peer);
        }
    }
}

fn save_ids(path: &Path, ids: &Ids) -> Result<()> {
    let text = serde_json::to_string(ids).expect("ids serialize");
    crate::persist::write_atomic(path, &text)
}

fn load_ids(path: &Path) -> Result<Ids> {
    match std::fs::read_to_string(path) {
        Ok(t) => serde_json::from_str(&t).with_context(|| format!("{} is damaged", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ids {
            next: 1,
            tokens: HashMap::new(),
        }),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn load_snapshot(path: &Path) -> Result<Option<HostSnapshot>> {
    match std::fs::read_to_string(path) {
        Ok(t) => serde_json::from_str(&t)
            .map(Some)
            .with_context(|| format!("{} is damaged", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The remote-mode host: resumed from its snapshot (same id, next epoch, the decided
/// operations known, so a client's re-sent edit is not applied twice), or new.
fn host_session(data: &Path, ids: &mut Ids, config: bassline_sync::Config) -> Result<Session> {
    let file = data.join(SESSION_FILE);
    let Some(snapshot) = load_snapshot(&file)? else {
        return Ok(Session::host(ids.issue(), config, Network::new()));
    };
    let host = snapshot.epoch.host;
    // Never issue an id the saved session knows (a lost or older peers.json must not hand a
    // new client the id of one whose edits were decided).
    let known = snapshot.state.applied.iter().map(|(p, _)| *p);
    ids.next = known.chain([host]).fold(ids.next, |n, p| n.max(p + 1));
    Session::host_from(host, config, snapshot)
        .with_context(|| format!("{} holds a network that does not load", file.display()))
}

#[derive(Deserialize)]
struct RemoteQuery {
    resume: Option<String>,
    /// A random name for the page load or process connecting, so that a copy of its token (a
    /// duplicated tab) is told apart from the same client reconnecting.
    instance: Option<String>,
}

/// Where the editor's files are by default: `target/web` beside the binary's build folder
/// (`target/release/bassline` or `target/debug/bassline`), else `./target/web`.
fn default_web_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("web")))
        .filter(|d| d.join("index.html").is_file())
        .unwrap_or_else(|| PathBuf::from("target/web"))
}

#[derive(Clone)]
struct AppState {
    hub: Arc<Hub>,
    editor: Arc<EditorFiles>,
}

pub async fn run(args: ServeArgs) -> Result<()> {
    let data = args.data.clone().unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data)
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    let session_file = data.join(SESSION_FILE);
    let ids_file = data.join(IDS_FILE);
    let mut ids = load_ids(&ids_file)?;
    let config = bassline_sync::Config {
        candidacy: Candidacy::Permanent,
        ..crate::session::signing_config()?
    };
    let session = host_session(&data, &mut ids, config.clone())?;
    let host = session.id();
    save_ids(&ids_file, &ids)?;

    let (tx, rx) = mpsc::channel(bassline_net::EVENT_QUEUE);
    tx.try_send(TransportEvent::Identity {
        me: host,
        host: Some(host),
    })
    .expect("a fresh queue has room");
    let client = NetClient::spawn(
        Transport::from_receiver(rx),
        config,
        Start::Session(Box::new(session)),
    );
    // The epoch this run leads is on disk before any edit is decided in it: a crash before
    // the next save must not let the run after it lead the same epoch again.
    crate::persist::save_snapshot(&client, &session_file).await?;
    if let Some(guests) = args.guests {
        let permission = match guests {
            Guests::ReadWrite => bassline_sync::Permission::ReadWrite,
            Guests::ReadOnly => bassline_sync::Permission::ReadOnly,
        };
        client
            .set_permission(None, permission)
            .await
            .context("could not set what clients may do")?;
    }
    crate::persist::spawn_snapshot_saver(
        client.clone(),
        session_file.clone(),
        Duration::from_secs(1),
    );
    // The session ends when every sender of its transport is gone; this one keeps it alive
    // past the router (dropped at shutdown) for the final save.
    let keep_session = tx.clone();
    let web = args.web.clone().unwrap_or_else(default_web_dir);
    let editor = Arc::new(EditorFiles::new(web.clone()));
    let state = AppState {
        hub: Arc::new(Hub {
            ids: Mutex::new(ids),
            ids_file,
            host,
            events: tx,
            live: Mutex::new(HashMap::new()),
        }),
        editor,
    };

    let app = Router::new()
        .route("/", get(editor_file))
        .route("/{file}", get(editor_file))
        .route("/remote", get(remote))
        .with_state(state.clone());

    let mut cfg = bassline_signal::server::ServerConfig::default();
    cfg.ice.stun_urls = args
        .stun
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect();
    cfg.redis = args.redis.clone().filter(|u| !u.is_empty());
    cfg.trusted_proxies = bassline_signal::server::proxy::TrustedProxies {
        networks: args.trusted_proxies.clone(),
        header: args.forwarded_header,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another bassline serve running? pass --listen ADDR",
                args.listen
            )
        })?;
    let addr = listener.local_addr().context("reading the bound address")?;
    println!("bassline serve listening on http://{addr}/");
    match state.editor.missing() {
        None => println!("  editor: http://{addr}/ (files from {})", web.display()),
        Some(_) => println!(
            "  editor: not built in {}; run `cargo xtask web` (or `cargo xtask serve`)",
            web.display()
        ),
    }
    println!("  data: {}", data.display());
    println!("  peer-to-peer: bassline host --signal ws://{addr}/signal");
    println!("  remote mode:  ws://{addr}/remote");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    bassline_signal::server::serve_embedded(
        listener,
        cfg,
        bassline_signal::server::shutdown_signal(),
        |_| {},
        app,
    )
    .await
    .context("serving")?;
    crate::persist::save_snapshot(&client, &session_file).await?;
    drop(keep_session);
    Ok(())
}

/// `/` and the bundle's files, from the build folder (read per request, so a rebuild shows
/// on reload); a page saying how to build the editor when it is missing.
async fn editor_file(
    State(state): State<AppState>,
    file: Option<axum::extract::Path<String>>,
) -> Response {
    let name = file.map(|f| f.0).unwrap_or_else(|| "index.html".into());
    editor_files::respond(&state.editor, &name).await
}

async fn remote(
    State(state): State<AppState>,
    Query(q): Query<RemoteQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(bassline_signal::MAX_FRAME_BYTES + 1)
        .on_upgrade(move |socket| client(state.hub, socket, q.resume, q.instance))
        .into_response()
}

async fn client(
    hub: Arc<Hub>,
    mut socket: WebSocket,
    resume: Option<String>,
    instance: Option<String>,
) {
    // An instance name is the client's own random string; a long one is cut, not trusted.
    let instance = instance.map(|i| i.chars().take(64).collect::<String>());
    let Admitted {
        peer,
        token,
        resumed,
        connection,
    } = hub.admit(resume.as_deref(), instance);
    let welcome = Welcome {
        peer,
        host: hub.host,
        token,
        resumed,
    };
    let text = serde_json::to_string(&welcome).expect("welcome serializes");
    if socket.send(Message::Text(text.into())).await.is_err() {
        hub.gone(peer, connection);
        return;
    }
    let socket = socket
        .with(|b: Vec<u8>| future::ready(Ok::<_, axum::Error>(Message::Binary(b.into()))))
        .filter_map(|m| {
            future::ready(match m {
                Ok(Message::Binary(b)) => Some(Ok::<_, ()>(b.to_vec())),
                Ok(Message::Close(_)) | Err(_) => Some(Err(())),
                Ok(_) => None,
            })
        });
    bassline_net::ws::serve_socket(socket, peer, hub.events.clone()).await;
    hub.gone(peer, connection);
}
