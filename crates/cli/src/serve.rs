//! `bassline serve`: one process, one port. Signaling at `/signal`, the remote-mode endpoint at
//! `/remote` (this server is the permanent host of one network, persisted in the data
//! directory), `/healthz`, `/metrics`, and a page at `/` saying how to connect.

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
    response::{Html, IntoResponse, Response},
    routing::get,
};
use bassline_core::Network;
use bassline_net::{
    Events, NetClient, Start, Transport, TransportEvent, mesh::random_seed, ws::Welcome,
};
use bassline_sync::{Candidacy, PeerId};
use futures_util::{SinkExt, StreamExt, future};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Settings of `bassline serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (0.0.0.0:8080 accepts other machines).
    #[arg(long, env = "BASSLINE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the remote-mode network is kept (default: a per-user data directory).
    #[arg(long, env = "BASSLINE_DATA")]
    pub data: Option<PathBuf>,
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

/// Peer ids handed out by this server, kept across restarts so none is ever reused (a reused
/// id would make a new client's edits look like an old client's re-sends).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Ids {
    next: PeerId,
    tokens: HashMap<String, PeerId>,
}

/// Tokens remembered; the oldest are forgotten past this (their clients get a new id).
const MAX_TOKENS: usize = 10_000;

struct Hub {
    ids: Mutex<Ids>,
    ids_file: PathBuf,
    host: PeerId,
    events: Events,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ids> {
        // Each update is a few map operations; a poisoned lock still holds usable ids.
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The id for a connecting client: its old one for a known token, else a fresh one.
    fn admit(&self, resume: Option<&str>) -> (PeerId, String) {
        let mut ids = self.lock();
        if let Some(t) = resume
            && let Some(&id) = ids.tokens.get(t)
        {
            return (id, t.to_owned());
        }
        let id = ids.next.max(1);
        ids.next = id + 1;
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
        (id, token)
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

#[derive(Deserialize)]
struct RemoteQuery {
    resume: Option<String>,
}

pub async fn run(args: ServeArgs) -> Result<()> {
    let data = args.data.clone().unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data)
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    let network_file = data.join("network.json");
    let ids_file = data.join("peers.json");
    let network = if network_file.exists() {
        crate::load(&network_file)?
    } else {
        Network::new()
    };
    // A new host id for every start: its epoch then outranks the previous run's, so clients
    // that followed the old process follow this one.
    let mut ids = load_ids(&ids_file)?;
    let host = ids.next.max(1);
    ids.next = host + 1;
    save_ids(&ids_file, &ids)?;

    let (tx, rx) = mpsc::channel(bassline_net::EVENT_QUEUE);
    tx.try_send(TransportEvent::Identity {
        me: host,
        host: Some(host),
    })
    .expect("a fresh queue has room");
    let config = bassline_sync::Config {
        candidacy: Candidacy::Permanent,
        ..Default::default()
    };
    let client = NetClient::spawn(Transport::from_receiver(rx), config, Start::Host(network));
    crate::persist::spawn_saver(client.clone(), network_file.clone(), Duration::from_secs(1));
    // The session ends when every sender of its transport is gone; this one keeps it alive
    // past the router (dropped at shutdown) for the final save.
    let keep_session = tx.clone();
    let hub = Arc::new(Hub {
        ids: Mutex::new(ids),
        ids_file,
        host,
        events: tx,
    });

    let app = Router::new()
        .route("/", get(index))
        .route("/remote", get(remote))
        .with_state(hub);

    let mut cfg = bassline_signal::server::ServerConfig::default();
    cfg.ice.stun_urls = args
        .stun
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect();
    cfg.redis = args.redis.clone().filter(|u| !u.is_empty());
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
    crate::persist::save(&client, &network_file).await?;
    drop(keep_session);
    Ok(())
}

async fn index() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><meta charset=utf-8><title>Bassline</title>",
        "<h1>Bassline is running</h1>",
        "<p>The browser editor is not part of this build yet. Meanwhile:</p><ul>",
        "<li>Host a peer-to-peer room: <code>bassline host --signal ws://THIS-HOST/signal</code></li>",
        "<li>Join one: <code>bassline join CODE --signal ws://THIS-HOST/signal</code></li>",
        "<li>Remote mode (this server keeps the network): WebSocket <code>/remote</code></li>",
        "<li>Health: <a href=/healthz>/healthz</a>, metrics: <a href=/metrics>/metrics</a></li>",
        "</ul>"
    ))
}

async fn remote(
    State(hub): State<Arc<Hub>>,
    Query(q): Query<RemoteQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(bassline_signal::MAX_FRAME_BYTES + 1)
        .on_upgrade(move |socket| client(hub, socket, q.resume))
        .into_response()
}

async fn client(hub: Arc<Hub>, mut socket: WebSocket, resume: Option<String>) {
    let (peer, token) = hub.admit(resume.as_deref());
    let welcome = Welcome {
        peer,
        host: hub.host,
        token,
    };
    let text = serde_json::to_string(&welcome).expect("welcome serializes");
    if socket.send(Message::Text(text.into())).await.is_err() {
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
}
