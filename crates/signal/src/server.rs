//! The axum driver: accepts WebSockets, moves frames between sockets and the [`Registry`], runs
//! its timers, does Argon2 on the blocking pool, and serves `/healthz` and `/metrics`.
//!
//! One registry behind one `std::sync::Mutex`: every registry call is microseconds and never
//! awaits, so a lock is cheaper than a channel hop, and the state machine stays in one place.
//! JSON encoding and socket writes happen outside the lock. Each connection is one task that
//! selects over its socket and its outbox; its outbox is a small `VecDeque` rather than a channel
//! so an idle connection costs no preallocated slots. One keepalive task, not a timer per
//! connection, asks every connection to ping and closes the silent ones.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    net::IpAddr,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    extract::{
        ConnectInfo, State,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use futures_util::SinkExt as _;
use tokio::{net::TcpListener, sync::Notify, time::Instant};
use tokio_tungstenite::tungstenite;

use crate::{
    ConnId, Error, ErrorCode, Output, Registry, ServerMessage, decode_client,
    ice::IceConfig,
    password::{self, PasswordParams},
};

mod args;
mod listener;
mod metrics;
pub mod proxy;

pub use args::{SignalArgs, raise_nofile, run, shutdown_signal};

/// Everything the driver needs besides the registry's own [`crate::Config`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Room registry limits and lifetimes.
    pub registry: crate::Config,
    /// STUN/TURN handed out in `welcome`.
    pub ice: IceConfig,
    /// Allowed `Origin` header values; empty allows any (and requests without one).
    pub allowed_origins: Vec<String>,
    /// Largest accepted frame/message in bytes.
    pub max_frame_bytes: usize,
    /// Interval of WebSocket pings.
    pub ping_interval: Duration,
    /// A connection that sent nothing (not even a pong) for this long is closed.
    pub idle_timeout: Duration,
    /// A write to a socket that does not complete within this long ends the connection.
    pub write_timeout: Duration,
    /// Argon2id costs for room passwords.
    pub password: PasswordParams,
    /// Per-connection read buffer of the WebSocket codec, in bytes. tungstenite allocates it
    /// eagerly for every connection (default 128 KiB); signaling messages are a few hundred
    /// bytes, and a larger frame simply grows the buffer for that frame.
    pub read_buffer_size: usize,
    /// Reverse proxies whose forwarding header names the client (`--trusted-proxies`).
    pub trusted_proxies: proxy::TrustedProxies,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            registry: crate::Config::default(),
            ice: IceConfig::default(),
            allowed_origins: Vec::new(),
            max_frame_bytes: crate::MAX_FRAME_BYTES,
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            password: PasswordParams::default(),
            read_buffer_size: 128,
            trusted_proxies: proxy::TrustedProxies::default(),
        }
    }
}

/// Messages waiting to be written to one connection, and whether to close it after them.
#[derive(Debug, Default)]
struct Outbox {
    msgs: VecDeque<(Instant, Utf8Bytes)>,
    /// The keepalive task asks for a ping.
    ping: bool,
    /// Bytes in `msgs`.
    bytes: usize,
    close: Option<&'static str>,
}

/// Most bytes waiting for one connection. A client that stops reading while its room keeps
/// sending would otherwise grow its outbox without bound; past this it is disconnected (and may
/// resume within the grace period, getting what the registry queues from then on).
const MAX_OUTBOX_BYTES: usize = 1 << 20;

/// The close reason for a connection that does not read its messages.
const SLOW_READER: &str = "not reading fast enough";

/// Close reasons that are "going away" (1001) rather than policy (1008).
const SHUTTING_DOWN: &str = "server shutting down";
const IDLE: &str = "idle timeout";

#[derive(Debug, Default)]
struct ConnHandle {
    outbox: Mutex<Outbox>,
    wake: Notify,
    /// When the last frame arrived, in ms since the server started.
    last_seen_ms: AtomicU64,
}

#[derive(Debug)]
struct State_ {
    reg: Registry,
    conns: HashMap<ConnId, Arc<ConnHandle>>,
}

/// Counters the registry cannot see (they happen in the socket layer).
#[derive(Debug, Default)]
struct DriverCounters {
    accepted: AtomicU64,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    dropped_stale: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State_>,
    timer_wake: Notify,
    cfg: ServerConfig,
    next_conn: AtomicU64,
    counters: DriverCounters,
    /// Argon2 jobs allowed at once. Each takes `m_cost` KiB (19 MiB by default) and a core, so
    /// an unbounded number of password joins from many addresses would exhaust memory.
    argon2_slots: Arc<tokio::sync::Semaphore>,
    /// Zero point of `ConnHandle::last_seen_ms`.
    started: Instant,
}

enum Action {
    Send(Arc<ConnHandle>, ServerMessage),
    Close(Arc<ConnHandle>, &'static str),
    Hash(ConnId, crate::Password, u16),
    Verify(
        ConnId,
        crate::JoinTicket,
        crate::Password,
        crate::PasswordHash,
    ),
}

fn os_entropy(buf: &mut [u8]) {
    // The OS generator failing means the machine cannot produce secrets at all; serving rooms
    // with predictable codes would be worse than stopping.
    getrandom::fill(buf).expect("the operating system's random generator is available");
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Shared {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, State_> {
        // A poisoned lock means a registry call panicked, which is a bug; keep serving the
        // other rooms with the state as it is rather than taking the whole server down.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the registry, then carries out what it asked for.
    fn with_registry(self: &Arc<Self>, f: impl FnOnce(&mut Registry, std::time::Instant)) {
        let actions = {
            let mut st = self.lock();
            let before = st.reg.poll_timeout();
            f(&mut st.reg, Instant::now().into_std());
            let mut actions = Vec::new();
            while let Some(out) = st.reg.poll_output() {
                match out {
                    Output::Send { to, msg } => {
                        if let Some(h) = st.conns.get(&to) {
                            actions.push(Action::Send(h.clone(), msg));
                        }
                    }
                    Output::Close { conn, reason } => {
                        if let Some(h) = st.conns.get(&conn) {
                            actions.push(Action::Close(h.clone(), reason));
                        }
                    }
                    Output::HashPassword {
                        conn,
                        password,
                        max_peers,
                    } => actions.push(Action::Hash(conn, password, max_peers)),
                    Output::VerifyPassword {
                        conn,
                        ticket,
                        password,
                        hash,
                    } => actions.push(Action::Verify(conn, ticket, password, hash)),
                }
            }
            let after = st.reg.poll_timeout();
            if after.is_some() && (before.is_none() || after < before) {
                self.timer_wake.notify_one();
            }
            actions
        };
        for action in actions {
            self.perform(action);
        }
    }

    fn perform(self: &Arc<Self>, action: Action) {
        match action {
            Action::Send(h, mut msg) => {
                if let ServerMessage::Welcome {
                    peer_id,
                    ice_servers,
                    ..
                } = &mut msg
                {
                    *ice_servers = self.cfg.ice.servers_for(*peer_id, unix_now());
                }
                let text = Utf8Bytes::from(msg.to_json());
                let mut ob = h.outbox.lock().unwrap_or_else(|e| e.into_inner());
                if ob.close.is_some() {
                    return;
                }
                if ob.bytes + text.len() > MAX_OUTBOX_BYTES {
                    ob.close = Some(SLOW_READER);
                    self.counters
                        .dropped_stale
                        .fetch_add(ob.msgs.len() as u64 + 1, Ordering::Relaxed);
                    ob.msgs.clear();
                    ob.bytes = 0;
                } else {
                    ob.bytes += text.len();
                    ob.msgs.push_back((Instant::now(), text));
                }
                drop(ob);
                h.wake.notify_one();
            }
            Action::Close(h, reason) => {
                let mut ob = h.outbox.lock().unwrap_or_else(|e| e.into_inner());
                ob.close.get_or_insert(reason);
                drop(ob);
                h.wake.notify_one();
            }
            Action::Hash(conn, pw, max_peers) => {
                let params = self.cfg.password;
                self.argon2(move |me| {
                    let mut salt = [0u8; 16];
                    os_entropy(&mut salt);
                    let hash = password::hash(&params, &pw, salt);
                    me.with_registry(|reg, now| {
                        reg.handle_password_hashed(now, conn, hash, max_peers)
                    });
                });
            }
            Action::Verify(conn, ticket, pw, hash) => {
                let params = self.cfg.password;
                self.argon2(move |me| {
                    let ok = password::verify(&params, &pw, &hash);
                    me.with_registry(|reg, now| {
                        reg.handle_password_verified(now, conn, ticket, ok)
                    });
                });
            }
        }
    }
}

impl Shared {
    /// Runs `job` on the blocking pool once an Argon2 slot is free.
    fn argon2(self: &Arc<Self>, job: impl FnOnce(&Arc<Self>) + Send + 'static) {
        let me = self.clone();
        tokio::spawn(async move {
            let Ok(permit) = me.argon2_slots.clone().acquire_owned().await else {
                return;
            };
            let _ = tokio::task::spawn_blocking(move || {
                job(&me);
                drop(permit);
            })
            .await;
        });
    }
}

/// A running server's handle for tests and embedding.
#[derive(Debug, Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// The registry's counters now.
    pub fn metrics(&self) -> crate::Metrics {
        self.shared.lock().reg.metrics()
    }
}

/// Serves signaling on `listener` until `shutdown` completes, then tells every peer and closes
/// (waiting at most 5 s for their sockets). Returns once everything is closed.
pub async fn serve(
    listener: TcpListener,
    cfg: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_handle(listener, cfg, shutdown, |_| {}).await
}

/// Like [`serve`], handing a [`Handle`] to `on_start` first.
pub async fn serve_with_handle(
    listener: TcpListener,
    cfg: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_start: impl FnOnce(Handle),
) -> std::io::Result<()> {
    serve_routes(listener, cfg, shutdown, on_start, None).await
}

/// Serves signaling at `/signal` beside the routes of `app` (which must not use `/signal`,
/// `/healthz` or `/metrics`) on one listener: how `bassline serve` puts everything on one port.
pub async fn serve_embedded(
    listener: TcpListener,
    cfg: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_start: impl FnOnce(Handle),
    app: Router,
) -> std::io::Result<()> {
    serve_routes(listener, cfg, shutdown, on_start, Some(app)).await
}

async fn serve_routes(
    listener: TcpListener,
    cfg: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_start: impl FnOnce(Handle),
    app: Option<Router>,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State_ {
            reg: Registry::new(cfg.registry.clone(), os_entropy),
            conns: HashMap::new(),
        }),
        timer_wake: Notify::new(),
        cfg,
        next_conn: AtomicU64::new(1),
        counters: DriverCounters::default(),
        argon2_slots: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )),
        started: Instant::now(),
    });
    on_start(Handle {
        shared: shared.clone(),
    });
    let timers = tokio::spawn(timer_loop(shared.clone()));
    let keepalive = tokio::spawn(keepalive_loop(shared.clone()));
    let signaling = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_page));
    let signaling = match app {
        None => signaling
            .route("/", get(ws_upgrade))
            .route("/ws", get(ws_upgrade)),
        Some(_) => signaling.route("/signal", get(ws_upgrade)),
    };
    let signaling = signaling.with_state(shared.clone());
    let app = match app {
        Some(app) => signaling.merge(app),
        None => signaling,
    };
    let on_shutdown = shared.clone();
    // Twice the registry's cap: room for handshakes in flight, so ordinary overflow still gets
    // the registry's typed error, while sockets that never finish a handshake stay bounded.
    let hard_cap = shared
        .cfg
        .registry
        .max_conns_per_ip
        .saturating_mul(2)
        .max(1);
    let on_refuse = shared.clone();
    let proxies = shared.cfg.trusted_proxies.clone();
    let listener = listener::CappedListener::new(listener, hard_cap, proxies, move |ip| {
        tracing::debug!(%ip, "refused at accept: too many connections from this address");
        on_refuse
            .lock()
            .reg
            .count_rejection(ErrorCode::TooManyConnections);
    });
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<listener::PeerAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: telling every peer");
        on_shutdown.with_registry(|reg, _| reg.handle_shutdown());
    })
    .await;
    // Upgraded sockets live outside axum's connection tracking; wait for them to say goodbye.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !shared.lock().conns.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    timers.abort();
    keepalive.abort();
    result
}

async fn timer_loop(shared: Arc<Shared>) {
    loop {
        let next = shared.lock().reg.poll_timeout();
        match next {
            Some(at) => {
                let at = Instant::from_std(at);
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {
                        shared.with_registry(|reg, now| reg.handle_timeout(now));
                    }
                    () = shared.timer_wake.notified() => {}
                }
            }
            None => shared.timer_wake.notified().await,
        }
    }
}

/// Closes connections silent for `idle_timeout` and asks the rest to ping, each once per
/// `ping_interval`. One task instead of a timer in each connection task saves ~130 bytes per
/// connection. The interval is cut into slices of ~100 ms and each tick serves the connections
/// of one slice, so 10,000 pings are spread over the interval rather than sent in one burst
/// (measured: a single burst every 2 s raised relay p99 at 20,000 messages/s to ~220 ms).
async fn keepalive_loop(shared: Arc<Shared>) {
    let period = shared.cfg.ping_interval.max(Duration::from_millis(1));
    let slices = u64::try_from(period.as_millis() / 100)
        .unwrap_or(1000)
        .clamp(1, 1000);
    let tick_every = period / u32::try_from(slices).unwrap_or(1);
    let idle_ms = u64::try_from(shared.cfg.idle_timeout.as_millis()).unwrap_or(u64::MAX);
    let mut tick = tokio::time::interval_at(Instant::now() + tick_every, tick_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut slice = 0u64;
    loop {
        tick.tick().await;
        // Clone this slice's handles and let go of the registry lock before touching them.
        let handles: Vec<Arc<ConnHandle>> = shared
            .lock()
            .conns
            .iter()
            .filter(|(id, _)| id.0 % slices == slice)
            .map(|(_, h)| h.clone())
            .collect();
        slice = (slice + 1) % slices;
        let now = shared.now_ms();
        for h in handles {
            let silent = now.saturating_sub(h.last_seen_ms.load(Ordering::Relaxed));
            let mut ob = h.outbox.lock().unwrap_or_else(|e| e.into_inner());
            if silent >= idle_ms {
                ob.close.get_or_insert(IDLE);
            } else {
                ob.ping = true;
            }
            drop(ob);
            h.wake.notify_one();
        }
    }
}

async fn metrics_page(State(shared): State<Arc<Shared>>) -> Response {
    let m = shared.lock().reg.metrics();
    let body = metrics::render(&m, &shared.counters);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn ws_upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(listener::PeerAddr(addr)): ConnectInfo<listener::PeerAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !shared.cfg.allowed_origins.is_empty() {
        let origin = headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !shared.cfg.allowed_origins.iter().any(|o| o == origin) {
            shared
                .lock()
                .reg
                .count_rejection(ErrorCode::OriginNotAllowed);
            tracing::info!(%addr, origin, "refused: origin not allowed");
            return (StatusCode::FORBIDDEN, Error::OriginNotAllowed.to_string()).into_response();
        }
    }
    let client = shared.cfg.trusted_proxies.client_ip(addr.ip(), &headers);
    if client != addr.ip() {
        tracing::debug!(%addr, %client, "client address from the trusted proxy's header");
    }
    let cap = shared.cfg.max_frame_bytes;
    ws.read_buffer_size(shared.cfg.read_buffer_size)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * cap)
        .max_frame_size(cap)
        .max_message_size(cap)
        // Boxed: an async fn keeps a by-value argument in its state next to the local it moves
        // into (rustc #62958), so a 368-byte WebSocket passed by value costs twice that in
        // every connection's task; through a Box it is stored once, on the heap.
        .on_upgrade(move |socket| connection(shared, Box::new(socket), limit_key(client)))
}

/// The address per-IP limits count against: IPv4 addresses as they are (IPv4-mapped IPv6 ones
/// unwrapped), IPv6 addresses by their /64 prefix, since one subscriber usually holds a whole /64
/// and could otherwise dodge every per-address limit by changing the low bits.
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mask = !0u128 << 64;
                IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

/// Why a connection loop ended.
enum End {
    /// The peer closed or the socket failed; nothing more to send.
    Gone,
    /// We close, with this code and reason.
    Close(u16, &'static str),
}

async fn connection(shared: Arc<Shared>, mut ws: Box<WebSocket>, ip: IpAddr) {
    let conn = ConnId(shared.next_conn.fetch_add(1, Ordering::Relaxed));
    let handle = Arc::new(ConnHandle::default());
    handle
        .last_seen_ms
        .store(shared.now_ms(), Ordering::Relaxed);
    shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
    shared.lock().conns.insert(conn, handle.clone());
    shared.with_registry(|reg, now| reg.handle_connect(now, conn, ip));
    tracing::debug!(conn = conn.0, %ip, "connected");

    let end = drive(&shared, &mut ws, conn, &handle).await;
    if let End::Close(code, reason) = end {
        let close = ws.send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })));
        let _ = Box::pin(tokio::time::timeout(shared.cfg.write_timeout, close)).await;
    }
    shared.lock().conns.remove(&conn);
    shared.with_registry(|reg, now| reg.handle_disconnect(now, conn));
    tracing::debug!(conn = conn.0, "disconnected");
}

async fn drive(shared: &Arc<Shared>, ws: &mut WebSocket, conn: ConnId, h: &ConnHandle) -> End {
    let cfg = &shared.cfg;
    let ttl = cfg.registry.message_ttl;
    loop {
        tokio::select! {
            () = h.wake.notified() => {
                let (msgs, close, ping) = {
                    let mut ob = h.outbox.lock().unwrap_or_else(|e| e.into_inner());
                    ob.bytes = 0;
                    (std::mem::take(&mut ob.msgs), ob.close, std::mem::take(&mut ob.ping))
                };
                let now = Instant::now();
                let write = async {
                    let mut wrote = false;
                    if ping {
                        ws.feed(Message::Ping(Default::default())).await?;
                        wrote = true;
                    }
                    for (queued_at, text) in msgs {
                        // A socket too slow to take a message within the ttl gets it dropped,
                        // the same promise the registry keeps for disconnected peers.
                        if now.duration_since(queued_at) > ttl {
                            shared.counters.dropped_stale.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        ws.feed(Message::Text(text)).await?;
                        wrote = true;
                        shared.counters.frames_out.fetch_add(1, Ordering::Relaxed);
                    }
                    if wrote {
                        ws.flush().await?;
                    }
                    Ok::<(), axum::Error>(())
                };
                // A client that stops reading fills its socket buffers and would park this task
                // in a write forever, so a write gets a deadline. Nearly every write completes
                // at once, so the timer is armed only for one that does not: a timer per write
                // would cost a timer-wheel insert and removal per message. Boxed, because inline
                // the write state and the timer would enlarge every idle connection's task.
                let mut write = Box::pin(write);
                let first = std::future::poll_fn(|cx| {
                    std::task::Poll::Ready(write.as_mut().poll(cx))
                })
                .await;
                let result = match first {
                    std::task::Poll::Ready(r) => Ok(r),
                    std::task::Poll::Pending => {
                        Box::pin(tokio::time::timeout(cfg.write_timeout, write)).await
                    }
                };
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return End::Gone,
                    Err(_) => {
                        tracing::debug!(conn = conn.0, "write timed out: the client does not read");
                        return End::Gone;
                    }
                }
                if let Some(reason) = close {
                    let code = if reason == SHUTTING_DOWN || reason == IDLE { 1001 } else { 1008 };
                    return End::Close(code, reason);
                }
            }
            frame = ws.recv() => {
                h.last_seen_ms.store(shared.now_ms(), Ordering::Relaxed);
                match frame {
                    None | Some(Ok(Message::Close(_))) => return End::Gone,
                    Some(Ok(Message::Text(text))) => {
                        shared.counters.frames_in.fetch_add(1, Ordering::Relaxed);
                        match decode_client(text.as_bytes()) {
                            Ok(msg) => shared.with_registry(|reg, now| reg.handle_message(now, conn, msg)),
                            Err(e) => shared.with_registry(|reg, _| reg.reject(conn, &e)),
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        shared.counters.frames_in.fetch_add(1, Ordering::Relaxed);
                        shared.with_registry(|reg, _| reg.reject(conn, &Error::BinaryFrame));
                    }
                    // tungstenite answers pings itself; both kinds only prove liveness.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Err(e)) => {
                        if is_capacity_error(&e) {
                            let err = Error::FrameTooLarge { limit: cfg.max_frame_bytes };
                            shared.with_registry(|reg, _| reg.reject(conn, &err));
                            // The registry queued the error and a close; write them now, since
                            // the codec cannot read past the oversized frame.
                            let msgs = std::mem::take(&mut h.outbox.lock().unwrap_or_else(|e| e.into_inner()).msgs);
                            for (_, text) in msgs {
                                let _ = ws.feed(Message::Text(text)).await;
                            }
                            return End::Close(1009, "frame too large");
                        }
                        tracing::debug!(conn = conn.0, error = %e, "socket error");
                        return End::Gone;
                    }
                }
            }
        }
    }
}

fn is_capacity_error(e: &axum::Error) -> bool {
    use std::error::Error as _;
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(s) = source {
        if let Some(tungstenite::Error::Capacity(_)) = s.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::limit_key;

    #[test]
    fn ipv6_limits_count_per_slash_64() {
        let a = limit_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = limit_key("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = limit_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            limit_key("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7".parse::<std::net::IpAddr>().unwrap()
        );
    }
}
