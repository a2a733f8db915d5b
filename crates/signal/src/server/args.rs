//! `bassline signal`: flags (each also an environment variable) and the command's entry point.

use std::{
    io::{IsTerminal as _, Write as _},
    net::SocketAddr,
    time::Duration,
};

use anyhow::Context as _;

use super::ServerConfig;
use crate::{ice::IceConfig, password::PasswordParams};

/// Settings of `bassline signal`. Every flag can also be set by the environment variable named
/// in its help.
#[derive(Debug, Clone, clap::Args)]
pub struct SignalArgs {
    /// Address to listen on (use 0.0.0.0:PORT to accept from other machines).
    #[arg(long, env = "BASSLINE_SIGNAL_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// STUN URLs handed to peers, comma-separated (empty string for none).
    #[arg(
        long,
        env = "BASSLINE_SIGNAL_STUN",
        value_delimiter = ',',
        default_value = "stun:stun.l.google.com:19302"
    )]
    pub stun: Vec<String>,
    /// TURN URLs handed to peers, comma-separated; needs --turn-secret.
    #[arg(long, env = "BASSLINE_SIGNAL_TURN", value_delimiter = ',')]
    pub turn: Vec<String>,
    /// Secret shared with the TURN server (coturn `static-auth-secret`); credentials issued to
    /// peers are derived from it and expire.
    #[arg(long, env = "BASSLINE_SIGNAL_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,
    /// Lifetime of issued TURN credentials, seconds.
    #[arg(long, env = "BASSLINE_SIGNAL_TURN_TTL", default_value_t = 3600)]
    pub turn_ttl_secs: u64,
    /// Allowed page origins (e.g. https://bassline.example), comma-separated; empty allows all.
    #[arg(long, env = "BASSLINE_SIGNAL_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Reverse proxies (CIDR networks or addresses, comma-separated) whose forwarding header
    /// names the client, so per-address limits count each client rather than the proxy. Only
    /// list proxies that overwrite or append to that header; anyone else's is ignored.
    #[arg(long, env = "BASSLINE_SIGNAL_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<super::proxy::Cidr>,
    /// The header the trusted proxies name the client in.
    #[arg(
        long,
        env = "BASSLINE_SIGNAL_FORWARDED_HEADER",
        value_enum,
        default_value = "x-forwarded-for"
    )]
    pub forwarded_header: super::proxy::ForwardedHeader,
    /// Most live rooms.
    #[arg(long, env = "BASSLINE_SIGNAL_MAX_ROOMS", default_value_t = 10_000)]
    pub max_rooms: usize,
    /// Most open connections from one IP address.
    #[arg(long, env = "BASSLINE_SIGNAL_MAX_CONNS_PER_IP", default_value_t = 64)]
    pub max_conns_per_ip: u32,
    /// Peer limit of rooms created without max_peers.
    #[arg(long, env = "BASSLINE_SIGNAL_DEFAULT_MAX_PEERS", default_value_t = 8)]
    pub default_max_peers: u16,
    /// Largest max_peers a creator may ask for.
    #[arg(long, env = "BASSLINE_SIGNAL_MAX_ROOM_PEERS", default_value_t = 32)]
    pub max_room_peers: u16,
    /// Failed joins allowed per IP address per minute.
    #[arg(
        long,
        env = "BASSLINE_SIGNAL_FAILED_JOINS_PER_MIN",
        default_value_t = 10
    )]
    pub failed_joins_per_min: usize,
    /// Most messages a connection may send per second.
    #[arg(long, env = "BASSLINE_SIGNAL_MAX_MSGS_PER_SEC", default_value_t = 100)]
    pub max_msgs_per_sec: u32,
    /// A room with no activity for this many seconds closes.
    #[arg(long, env = "BASSLINE_SIGNAL_ROOM_IDLE", default_value_t = 3600)]
    pub room_idle_secs: u64,
    /// Seconds a disconnected peer keeps its place.
    #[arg(long, env = "BASSLINE_SIGNAL_GRACE", default_value_t = 10)]
    pub grace_secs: u64,
    /// Seconds after which an undelivered relayed message is dropped.
    #[arg(long, env = "BASSLINE_SIGNAL_MESSAGE_TTL", default_value_t = 30)]
    pub message_ttl_secs: u64,
    /// Most messages queued for a peer during its reconnect grace (oldest dropped first).
    #[arg(long, env = "BASSLINE_SIGNAL_MAX_QUEUED", default_value_t = 256)]
    pub max_queued_per_peer: usize,
    /// Close a connection that has not sent hello within this many seconds.
    #[arg(long, env = "BASSLINE_SIGNAL_HELLO_TIMEOUT", default_value_t = 10)]
    pub hello_timeout_secs: u64,
    /// Largest accepted WebSocket frame, bytes.
    #[arg(long, env = "BASSLINE_SIGNAL_MAX_FRAME", default_value_t = crate::MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,
    /// Initial per-connection WebSocket read buffer, bytes (grows for larger frames).
    #[arg(long, env = "BASSLINE_SIGNAL_WS_READ_BUFFER", default_value_t = 128)]
    pub ws_read_buffer: usize,
    /// Seconds between WebSocket pings.
    #[arg(long, env = "BASSLINE_SIGNAL_PING", default_value_t = 20)]
    pub ping_secs: u64,
    /// Close a connection silent (no frame, no pong) for this many seconds.
    #[arg(long, env = "BASSLINE_SIGNAL_IDLE_TIMEOUT", default_value_t = 60)]
    pub idle_timeout_secs: u64,
    /// Close a connection whose socket does not accept a write for this many seconds.
    #[arg(long, env = "BASSLINE_SIGNAL_WRITE_TIMEOUT", default_value_t = 10)]
    pub write_timeout_secs: u64,
    /// Argon2id memory cost for room passwords, KiB.
    #[arg(long, env = "BASSLINE_SIGNAL_ARGON2_M_KIB", default_value_t = 19 * 1024)]
    pub argon2_m_kib: u32,
    /// Argon2id iterations for room passwords.
    #[arg(long, env = "BASSLINE_SIGNAL_ARGON2_T", default_value_t = 2)]
    pub argon2_t: u32,
    /// Raise the open-files soft limit to this (capped at the hard limit); 0 = the hard limit.
    #[arg(long, env = "BASSLINE_SIGNAL_NOFILE", default_value_t = 0)]
    pub nofile: u64,
    /// Log filter (tracing EnvFilter syntax), e.g. "info" or "bassline_signal=debug".
    #[arg(long, env = "BASSLINE_SIGNAL_LOG", default_value = "info")]
    pub log: String,
    /// Write logs as JSON lines (for log collectors) instead of text.
    #[arg(long, env = "BASSLINE_SIGNAL_LOG_JSON")]
    pub log_json: bool,
}

impl SignalArgs {
    /// The driver configuration these flags describe.
    pub fn server_config(&self) -> ServerConfig {
        let registry = crate::Config {
            max_rooms: self.max_rooms,
            max_conns_per_ip: self.max_conns_per_ip,
            default_max_peers: self.default_max_peers,
            max_room_peers: self.max_room_peers,
            failed_join_limit: self.failed_joins_per_min,
            failed_join_window: Duration::from_secs(60),
            room_idle: Duration::from_secs(self.room_idle_secs),
            grace: Duration::from_secs(self.grace_secs),
            message_ttl: Duration::from_secs(self.message_ttl_secs),
            max_msgs_per_sec: self.max_msgs_per_sec,
            hello_timeout: Duration::from_secs(self.hello_timeout_secs.max(1)),
            max_queued_per_peer: self.max_queued_per_peer,
        };
        ServerConfig {
            registry,
            ice: IceConfig {
                stun_urls: self
                    .stun
                    .iter()
                    .filter(|s| !s.is_empty())
                    .cloned()
                    .collect(),
                turn_urls: self
                    .turn
                    .iter()
                    .filter(|s| !s.is_empty())
                    .cloned()
                    .collect(),
                turn_secret: self.turn_secret.clone(),
                turn_ttl: Duration::from_secs(self.turn_ttl_secs),
            },
            allowed_origins: self.allowed_origins.clone(),
            max_frame_bytes: self.max_frame_bytes,
            ping_interval: Duration::from_secs(self.ping_secs.max(1)),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs.max(1)),
            write_timeout: Duration::from_secs(self.write_timeout_secs.max(1)),
            password: PasswordParams {
                m_cost: self.argon2_m_kib,
                t_cost: self.argon2_t,
            },
            read_buffer_size: self.ws_read_buffer.max(64),
            trusted_proxies: super::proxy::TrustedProxies {
                networks: self.trusted_proxies.clone(),
                header: self.forwarded_header,
            },
        }
    }
}

/// Raises the open-files soft limit to `want` (0 = the hard limit), returning the new limit.
pub fn raise_nofile(want: u64) -> anyhow::Result<u64> {
    let (_, hard) = rlimit::Resource::NOFILE
        .get()
        .context("reading the open-files limit")?;
    let soft = if want == 0 { hard } else { want.min(hard) };
    rlimit::Resource::NOFILE
        .set(soft, hard)
        .context("raising the open-files soft limit")?;
    Ok(soft)
}

/// Runs `bassline signal` until Ctrl-C or SIGTERM, then tells every peer and exits.
pub async fn run(args: SignalArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .with_context(|| format!("bad --log filter {:?}", args.log))?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // An embedding program may have installed a subscriber already; then that one wins.
    let _ = if args.log_json {
        logs.json().try_init()
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).try_init()
    };
    let nofile = raise_nofile(args.nofile)?;
    let cfg = args.server_config();
    if cfg.ice.turn_secret.is_none() && !cfg.ice.turn_urls.is_empty() {
        tracing::warn!("--turn given without --turn-secret: TURN URLs are not handed out");
    }
    let socket = match args.listen {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .context("creating the listening socket")?;
    socket.set_reuseaddr(true).context("SO_REUSEADDR")?;
    socket
        .bind(args.listen)
        .with_context(|| format!("binding {}", args.listen))?;
    // A deep accept queue, so a burst of thousands of connects is not refused by the kernel.
    let listener = socket.listen(4096).context("listening")?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, nofile, ?cfg.ice, "signaling server listening");
    // One machine-readable line on stdout, so scripts (and `bassline bench signal`) can find the
    // port when --listen asked for port 0.
    println!("bassline signal listening on ws://{addr}/");
    let _ = std::io::stdout().flush();
    super::serve(listener, cfg, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM: when a server (or `bassline serve`, `host`, `join`) stops.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        signal: super::SignalArgs,
    }

    #[derive(Debug, Parser)]
    struct Bench {
        #[command(flatten)]
        load: crate::load::LoadArgs,
    }

    #[test]
    fn flags_are_consistent_and_map_to_the_config() {
        Cli::command().debug_assert();
        Bench::command().debug_assert();
        let cli = Cli::parse_from([
            "bassline",
            "--stun",
            "",
            "--turn",
            "turn:127.0.0.1:3478",
            "--turn-secret",
            "s",
            "--max-rooms",
            "5",
            "--grace-secs",
            "3",
            "--allowed-origins",
            "https://a.example,https://b.example",
        ]);
        let cfg = cli.signal.server_config();
        assert!(cfg.ice.stun_urls.is_empty());
        assert_eq!(cfg.ice.turn_urls, vec!["turn:127.0.0.1:3478".to_string()]);
        assert_eq!(cfg.registry.max_rooms, 5);
        assert_eq!(cfg.registry.grace.as_secs(), 3);
        assert_eq!(cfg.allowed_origins.len(), 2);
        let bench = Bench::parse_from(["bassline", "--connections", "100"]);
        assert_eq!(bench.load.connections, 100);
    }
}
