//! The room registry: a sans-IO state machine holding connections, peers and rooms.
//!
//! It never reads a clock, never draws randomness itself, never touches a socket and never runs
//! Argon2: time comes in as `now`, random bytes from the [`Entropy`] given at construction, and
//! password work goes out as [`Output::HashPassword`] / [`Output::VerifyPassword`] requests whose
//! results come back through [`Registry::handle_password_hashed`] /
//! [`Registry::handle_password_verified`]. Drive it like this:
//!
//! ```
//! use std::time::Instant;
//! use bassline_signal::{ClientMessage, ConnId, Config, Output, Registry, ServerMessage};
//!
//! let mut seed = 1u64;
//! let mut reg = Registry::new(Config::default(), move |buf: &mut [u8]| {
//!     for b in buf { seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1); *b = (seed >> 56) as u8; }
//! });
//! let now = Instant::now();
//! let host = ConnId(1);
//! reg.handle_connect(now, host, "127.0.0.1".parse().unwrap());
//! reg.handle_message(now, host, ClientMessage::Hello { version: 1, resume: None });
//! reg.handle_message(now, host, ClientMessage::CreateRoom { password: None, max_peers: None, pake: false });
//! let mut code = None;
//! while let Some(out) = reg.poll_output() {
//!     if let Output::Send { msg: ServerMessage::RoomCreated { code: c, .. }, .. } = out {
//!         code = Some(c);
//!     }
//! }
//! assert!(code.is_some());
//! // The driver sleeps until this deadline, then calls handle_timeout.
//! assert!(reg.poll_timeout().is_some());
//! ```

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, VecDeque},
    fmt,
    net::IpAddr,
    time::{Duration, Instant},
};

mod room;
mod shared;
mod types;

pub use room::{Carried, Member, RoomRecord, TokenRecord};
pub use types::{
    CommitResult, Config, ConnId, Entropy, InstanceId, JoinTicket, Loaded, Metrics, OpId, Output,
    PasswordHash,
};

use crate::{
    ClientMessage, Error, ErrorCode, PROTOCOL_VERSION, Password, PeerId, Reclaim, RejectReason,
    RoomCode, ServerMessage, protocol::CODE_LEN,
};

#[derive(Debug)]
struct Conn {
    ip: IpAddr,
    peer: Option<PeerId>,
    /// A password hash/verify is in flight for this connection.
    pending: bool,
    window_start: Instant,
    window_count: u32,
    /// (Shared registries.) The room record a password check in flight was started against.
    joining: Option<RoomRecord>,
}

#[derive(Debug)]
struct Peer {
    conn: Option<ConnId>,
    /// The address of its (latest) connection: a host's `reject` counts a failed join
    /// against it.
    ip: IpAddr,
    /// 128 random bits; sent as 32 hex digits. Kept as a number: thousands of peers each
    /// holding a String (and the index a second one) cost more than the rest of the entry.
    token: u128,
    room: Option<RoomCode>,
    /// Messages for a disconnected peer with the deadline after which they are dropped.
    queue: VecDeque<(Instant, ServerMessage)>,
    /// When the grace period of a disconnected peer ends.
    away_until: Option<Instant>,
}

/// A room as this registry knows it: the whole room when it is the only registry, or its copy
/// of the shared record while it holds at least one member (shared registries).
#[derive(Debug)]
struct Room {
    record: RoomRecord,
    last_activity: Instant,
    /// When the store was last asked to extend the room's lifetime (shared registries).
    last_touch: Instant,
}

#[derive(Debug, Default)]
struct IpState {
    conns: u32,
    failures: VecDeque<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Hello(ConnId),
    Grace(PeerId),
    RoomIdle(RoomCode),
    Queue(PeerId),
    Ip(IpAddr),
    /// (Shared registries.) A leave whose write found the store unreachable is written again.
    Releave(RoomCode, PeerId),
}

/// The room registry. See the module documentation for how to drive it.
pub struct Registry {
    config: Config,
    entropy: Box<dyn Entropy>,
    conns: HashMap<ConnId, Conn>,
    peers: HashMap<PeerId, Peer>,
    tokens: HashMap<u128, PeerId>,
    rooms: HashMap<RoomCode, Room>,
    ips: HashMap<IpAddr, IpState>,
    /// Deadlines, possibly stale: each is re-checked against the state when it fires.
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    out: VecDeque<Output>,
    next_generation: u64,
    metrics: Metrics,
    /// This registry's instance: members it holds carry it. Zero when it is the only one.
    me: InstanceId,
    /// Set when rooms live in a store shared with other instances.
    shared: Option<shared::SharedState>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("connections", &self.conns.len())
            .field("peers", &self.peers.len())
            .field("rooms", &self.rooms.len())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A registry with the given limits, drawing random bytes from `entropy`.
    pub fn new(config: Config, entropy: impl Entropy + 'static) -> Self {
        Self {
            config,
            entropy: Box::new(entropy),
            conns: HashMap::new(),
            peers: HashMap::new(),
            tokens: HashMap::new(),
            rooms: HashMap::new(),
            ips: HashMap::new(),
            timers: BinaryHeap::new(),
            out: VecDeque::new(),
            next_generation: 0,
            metrics: Metrics::default(),
            me: InstanceId(0),
            shared: None,
        }
    }

    /// A registry that shares rooms, tokens and failed-join records with other instances
    /// through a store. It decides by the same rules as [`Registry::new`], but reads and
    /// writes rooms through [`Output::Load`] and [`Output::Commit`], whose answers come back
    /// through [`Registry::handle_loaded`] and [`Registry::handle_committed`], and reaches
    /// peers held by other instances through [`Output::Carry`].
    pub fn new_shared(config: Config, entropy: impl Entropy + 'static, me: InstanceId) -> Self {
        let mut reg = Self::new(config, entropy);
        reg.me = me;
        reg.shared = Some(shared::SharedState::default());
        reg
    }

    /// This registry's instance.
    pub fn instance(&self) -> InstanceId {
        self.me
    }

    /// The limits in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The next thing the driver must do, if any. Call until `None` after every `handle_*`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The earliest deadline at which [`Registry::handle_timeout`] has work (it may find none).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Current counters and gauges.
    pub fn metrics(&self) -> Metrics {
        let mut m = self.metrics.clone();
        m.connections = self.conns.len();
        m.peers = self.peers.len();
        m.rooms = self.rooms.len();
        m
    }

    /// A new connection from `ip`. Refused (error then close) past the per-address cap.
    pub fn handle_connect(&mut self, now: Instant, conn: ConnId, ip: IpAddr) {
        let state = self.ips.entry(ip).or_default();
        if state.conns >= self.config.max_conns_per_ip {
            // Fatal: the error is followed by a close.
            self.reject(conn, &Error::TooManyConnections);
            return;
        }
        state.conns += 1;
        self.conns.insert(
            conn,
            Conn {
                ip,
                peer: None,
                pending: false,
                window_start: now,
                window_count: 0,
                joining: None,
            },
        );
        self.timers.push(Reverse((
            now + self.config.hello_timeout,
            Timer::Hello(conn),
        )));
    }

    /// The connection closed (either side). Its peer keeps its place for the grace period.
    pub fn handle_disconnect(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(ip) = self.ips.get_mut(&c.ip) {
            ip.conns = ip.conns.saturating_sub(1);
            if ip.conns == 0 && ip.failures.is_empty() {
                self.ips.remove(&c.ip);
            }
        }
        if let Some(pid) = c.peer
            && let Some(peer) = self.peers.get_mut(&pid)
            && peer.conn == Some(conn)
        {
            peer.conn = None;
            let until = now + self.config.grace;
            peer.away_until = Some(until);
            self.timers.push(Reverse((until, Timer::Grace(pid))));
        }
    }

    /// Counts a refusal and sends its error to `conn`. The driver calls this for frames it
    /// could not decode; the registry for everything else.
    pub fn reject(&mut self, conn: ConnId, err: &Error) {
        tracing::debug!(conn = conn.0, reason = err.code().as_str(), "refused");
        *self.metrics.rejections.entry(err.code()).or_default() += 1;
        self.out.push_back(Output::Send {
            to: conn,
            msg: ServerMessage::error(err),
        });
        if err.is_fatal() {
            self.out.push_back(Output::Close {
                conn,
                reason: "fatal protocol error",
            });
        }
    }

    /// Counts a refusal that was answered outside the WebSocket (an HTTP status).
    pub fn count_rejection(&mut self, code: ErrorCode) {
        *self.metrics.rejections.entry(code).or_default() += 1;
    }

    /// A decoded message from `conn`.
    pub fn handle_message(&mut self, now: Instant, conn: ConnId, msg: ClientMessage) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if now.saturating_duration_since(c.window_start) >= Duration::from_secs(1) {
            c.window_start = now;
            c.window_count = 0;
        }
        c.window_count += 1;
        if c.window_count > self.config.max_msgs_per_sec {
            let per_sec = self.config.max_msgs_per_sec;
            // Say it once per window, then drop silently: answering a flood is part of the flood.
            if c.window_count == per_sec + 1 {
                self.reject(conn, &Error::RateLimited { per_sec });
            } else {
                *self
                    .metrics
                    .rejections
                    .entry(ErrorCode::RateLimited)
                    .or_default() += 1;
            }
            return;
        }
        let peer = c.peer;
        if peer.is_none() && c.pending {
            // A shared registry is still looking up this connection's resume token.
            return self.reject(conn, &Error::Busy);
        }
        let result = match (peer, msg) {
            (None, ClientMessage::Hello { version, resume }) => {
                self.hello(now, conn, version, resume);
                Ok(())
            }
            (None, _) => Err(Error::HelloRequired),
            (Some(_), ClientMessage::Hello { .. }) => Err(Error::AlreadyGreeted),
            (
                Some(p),
                ClientMessage::CreateRoom {
                    password,
                    max_peers,
                    pake,
                },
            ) => self.create_room(now, conn, p, password, max_peers, pake),
            (
                Some(p),
                ClientMessage::JoinRoom {
                    code,
                    password,
                    reclaim,
                },
            ) => match reclaim {
                // Sharing rooms, the store keeps them across an instance's restart: a reclaim
                // is a plain join there (the member gets a new number, as before).
                Some(claim) if self.shared.is_none() => self.reclaim(now, conn, p, &code, claim),
                _ => self.join_room(now, conn, p, &code, password),
            },
            (Some(p), ClientMessage::LeaveRoom) => self.leave_room(now, p),
            (Some(p), ClientMessage::Offer { to, sdp, auth }) => {
                self.relay(now, p, to, ServerMessage::Offer { from: p, sdp, auth })
            }
            (Some(p), ClientMessage::Answer { to, sdp, auth }) => {
                self.relay(now, p, to, ServerMessage::Answer { from: p, sdp, auth })
            }
            (
                Some(p),
                ClientMessage::Candidate {
                    to,
                    candidate,
                    sdp_mid,
                    sdp_m_line_index,
                },
            ) => self.relay(
                now,
                p,
                to,
                ServerMessage::Candidate {
                    from: p,
                    candidate,
                    sdp_mid,
                    sdp_m_line_index,
                },
            ),
            (Some(p), ClientMessage::Pake { to, data }) => {
                self.relay(now, p, to, ServerMessage::Pake { from: p, data })
            }
            (Some(p), ClientMessage::Reject { peer, reason }) => {
                self.reject_member(now, p, peer, reason)
            }
        };
        if let Err(e) = result {
            self.reject(conn, &e);
        }
    }

    /// The result of an [`Output::HashPassword`].
    pub fn handle_password_hashed(
        &mut self,
        now: Instant,
        conn: ConnId,
        hash: PasswordHash,
        max_peers: u16,
    ) {
        let Some((pid, _)) = self.finish_password_job(conn) else {
            return;
        };
        if let Err(e) = self.insert_room(now, conn, pid, Some(hash), max_peers, false) {
            self.reject(conn, &e);
        }
    }

    /// The result of an [`Output::VerifyPassword`].
    pub fn handle_password_verified(
        &mut self,
        now: Instant,
        conn: ConnId,
        ticket: JoinTicket,
        ok: bool,
    ) {
        let Some((pid, ip)) = self.finish_password_job(conn) else {
            return;
        };
        if self.shared.is_some() {
            return self.shared_password_verified(now, conn, pid, ip, ticket, ok);
        }
        let result = if self
            .rooms
            .get(&ticket.code)
            .is_none_or(|r| r.record.generation != ticket.generation)
        {
            // The room closed while the hash was checked; not the joiner's fault, not a failure.
            Err(Error::RoomNotFound)
        } else if !ok {
            self.record_failure(now, ip);
            Err(Error::WrongPassword)
        } else {
            self.admit(now, pid, ticket.code)
        };
        if let Err(e) = result {
            self.reject(conn, &e);
        }
    }

    /// A password job for `conn` finished: clears its pending mark and returns its peer and
    /// address, unless the connection is gone or its peer entered a room meanwhile (refused).
    fn finish_password_job(&mut self, conn: ConnId) -> Option<(PeerId, IpAddr)> {
        let c = self.conns.get_mut(&conn)?;
        c.pending = false;
        let ip = c.ip;
        let pid = c.peer?;
        if self.peers.get(&pid).is_some_and(|p| p.room.is_some()) {
            self.reject(conn, &Error::AlreadyInRoom);
            return None;
        }
        Some((pid, ip))
    }

    /// Expires what is due at `now`: grace periods, idle rooms, undelivered messages, old
    /// failure records.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Hello(conn) => self.expire_hello(conn),
                Timer::Grace(pid) => self.expire_grace(now, pid),
                Timer::RoomIdle(code) => self.expire_room(now, code),
                Timer::Queue(pid) => self.prune_queue(now, pid),
                Timer::Ip(ip) => self.prune_ip(now, ip),
                Timer::Releave(code, pid) => self.shared_releave(code, pid),
            }
        }
    }

    /// Server shutdown: tells every connection and closes it.
    pub fn handle_shutdown(&mut self) {
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort();
        for conn in conns {
            self.out.push_back(Output::Send {
                to: conn,
                msg: ServerMessage::Shutdown {
                    message: "the signaling server is shutting down; reconnect in a moment".into(),
                },
            });
            self.out.push_back(Output::Close {
                conn,
                reason: "server shutting down",
            });
        }
    }

    fn send(&mut self, to: ConnId, msg: ServerMessage) {
        self.out.push_back(Output::Send { to, msg });
    }

    fn random_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.entropy.fill(&mut b);
        u64::from_le_bytes(b)
    }

    fn hello(&mut self, now: Instant, conn: ConnId, version: u32, resume: Option<String>) {
        if version != PROTOCOL_VERSION {
            return self.reject(
                conn,
                &Error::UnsupportedVersion {
                    got: version,
                    supported: PROTOCOL_VERSION,
                },
            );
        }
        let token = resume.as_deref().and_then(parse_token);
        if let Some(pid) = token.and_then(|t| self.tokens.get(&t).copied()) {
            return self.resume(now, conn, pid);
        }
        if let Some(token) = token
            && self.shared.is_some()
        {
            // Maybe a peer of another instance (one that died, or that the client left).
            return self.shared_hello(conn, token);
        }
        self.new_peer(conn);
    }

    /// Greets `conn` as a new peer with a fresh id and resume token.
    fn new_peer(&mut self, conn: ConnId) {
        let pid = loop {
            let id = PeerId(self.random_u64());
            if !self.peers.contains_key(&id) {
                break id;
            }
        };
        let token = loop {
            let mut t = [0u8; 16];
            self.entropy.fill(&mut t);
            let t = u128::from_le_bytes(t);
            if !self.tokens.contains_key(&t) {
                break t;
            }
        };
        self.attach_peer(conn, pid, token);
        self.save_token(pid);
        self.send(
            conn,
            ServerMessage::Welcome {
                version: PROTOCOL_VERSION,
                peer_id: pid,
                resume_token: format!("{token:032x}"),
                resumed: false,
                ice_servers: Vec::new(),
            },
        );
    }

    /// Makes `pid`, holding resume `token`, the peer of `conn`: outside any room, nothing queued.
    fn attach_peer(&mut self, conn: ConnId, pid: PeerId, token: u128) {
        self.tokens.insert(token, pid);
        let ip = self
            .conns
            .get(&conn)
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.ip);
        self.peers.insert(
            pid,
            Peer {
                conn: Some(conn),
                ip,
                token,
                room: None,
                queue: VecDeque::new(),
                away_until: None,
            },
        );
        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer = Some(pid);
        }
    }

    fn resume(&mut self, now: Instant, conn: ConnId, pid: PeerId) {
        let peer = self
            .peers
            .get_mut(&pid)
            .expect("every token maps to a live peer");
        // A client that reconnects before the server noticed its old connection died: the new
        // connection wins and the old one is closed.
        if let Some(old) = peer.conn.replace(conn) {
            if let Some(c) = self.conns.get_mut(&old) {
                c.peer = None;
            }
            self.out.push_back(Output::Close {
                conn: old,
                reason: "replaced by a newer connection of the same peer",
            });
        }
        peer.away_until = None;
        let token = peer.token;
        let room = peer.room;
        let queued: Vec<_> = peer.queue.drain(..).collect();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer = Some(pid);
            peer.ip = c.ip;
        }
        self.metrics.resumes += 1;
        self.send(
            conn,
            ServerMessage::Welcome {
                version: PROTOCOL_VERSION,
                peer_id: pid,
                resume_token: format!("{token:032x}"),
                resumed: true,
                ice_servers: Vec::new(),
            },
        );
        if let Some(code) = room
            && let Some(r) = self.rooms.get(&code)
        {
            let msg = r.record.joined(code, pid);
            self.send(conn, msg);
        }
        for (deadline, msg) in queued {
            if deadline > now {
                self.send(conn, msg);
            } else {
                self.metrics.dropped += 1;
            }
        }
    }

    fn create_room(
        &mut self,
        now: Instant,
        conn: ConnId,
        pid: PeerId,
        password: Option<Password>,
        max_peers: Option<u16>,
        pake: bool,
    ) -> Result<(), Error> {
        self.check_not_busy(conn, pid)?;
        let max_peers = max_peers.unwrap_or(self.config.default_max_peers);
        if !(2..=self.config.max_room_peers).contains(&max_peers) {
            return Err(Error::InvalidMaxPeers {
                max: self.config.max_room_peers,
            });
        }
        if self.rooms.len() >= self.config.max_rooms {
            return Err(Error::TooManyRooms);
        }
        match password {
            Some(password) => {
                self.set_pending(conn);
                self.out.push_back(Output::HashPassword {
                    conn,
                    password,
                    max_peers,
                });
                Ok(())
            }
            None => self.insert_room(now, conn, pid, None, max_peers, pake),
        }
    }

    fn check_not_busy(&self, conn: ConnId, pid: PeerId) -> Result<(), Error> {
        if self.conns.get(&conn).is_some_and(|c| c.pending) {
            return Err(Error::Busy);
        }
        if self.peers.get(&pid).is_some_and(|p| p.room.is_some()) {
            return Err(Error::AlreadyInRoom);
        }
        Ok(())
    }

    fn set_pending(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.pending = true;
        }
    }

    fn insert_room(
        &mut self,
        now: Instant,
        conn: ConnId,
        pid: PeerId,
        password: Option<PasswordHash>,
        max_peers: u16,
        pake: bool,
    ) -> Result<(), Error> {
        if self.rooms.len() >= self.config.max_rooms {
            return Err(Error::TooManyRooms);
        }
        let code = self.fresh_code().ok_or(Error::TooManyRooms)?;
        // Unique across instances too, so a result about a closed room never acts on a room
        // another instance opened under the same code.
        let generation = if self.shared.is_some() {
            self.random_u64()
        } else {
            self.next_generation += 1;
            self.next_generation
        };
        let mut record = RoomRecord::new(pid, self.me, password, max_peers, generation);
        record.pake = pake;
        if self.shared.is_some() {
            self.shared_create(conn, pid, code, record, 0);
            return Ok(());
        }
        self.open_room(now, pid, code, record);
        Ok(())
    }

    /// Makes `record` (a room just created by `pid`) live here and tells its creator.
    fn open_room(&mut self, now: Instant, pid: PeerId, code: RoomCode, record: RoomRecord) {
        let max_peers = record.max_peers;
        tracing::debug!(%code, max_peers, password = record.password.is_some(), pake = record.pake, "room created");
        self.rooms.insert(
            code,
            Room {
                record,
                last_activity: now,
                last_touch: now,
            },
        );
        self.timers.push(Reverse((
            now + self.room_check_after(),
            Timer::RoomIdle(code),
        )));
        self.metrics.rooms_created += 1;
        let Some(peer) = self.peers.get_mut(&pid) else {
            return;
        };
        peer.room = Some(code);
        self.save_token(pid);
        let Some(peer) = self.peers.get(&pid) else {
            return;
        };
        if let Some(conn) = peer.conn {
            self.send(
                conn,
                ServerMessage::RoomCreated {
                    code,
                    max_peers,
                    number: 1,
                },
            );
        }
    }

    /// A code no live room uses, or `None` if 64 draws all collided (the code space is 36^6, so
    /// that means the space is nearly full, which the room cap prevents).
    fn fresh_code(&mut self) -> Option<RoomCode> {
        for _ in 0..64 {
            let mut bytes = [0u8; CODE_LEN];
            let mut filled = 0;
            while filled < CODE_LEN {
                let mut b = [0u8; 16];
                self.entropy.fill(&mut b);
                // Rejection sampling: 252 = 7 * 36, so `b % 36` is uniform for b < 252.
                for x in b.into_iter().filter(|&x| x < 252) {
                    if filled < CODE_LEN {
                        bytes[filled] = x;
                        filled += 1;
                    }
                }
            }
            let code = RoomCode::from_uniform_bytes(bytes);
            if !self.rooms.contains_key(&code) {
                return Some(code);
            }
        }
        None
    }

    fn join_room(
        &mut self,
        now: Instant,
        conn: ConnId,
        pid: PeerId,
        typed: &str,
        password: Option<Password>,
    ) -> Result<(), Error> {
        self.check_not_busy(conn, pid)?;
        if self.shared.is_some() {
            self.shared_join(conn, pid, typed, password);
            return Ok(());
        }
        let room = RoomCode::parse(typed)
            .ok()
            .and_then(|code| self.rooms.get(&code))
            .map(|r| r.record.clone());
        match self.decide_join(now, conn, typed, password, room.as_ref())? {
            JoinStep::Admit(code) => self.admit(now, pid, code),
            JoinStep::Verify(out) => {
                self.set_pending(conn);
                self.out.push_back(*out);
                Ok(())
            }
        }
    }

    /// A member takes back its old place after its peer was lost (the server restarted, or
    /// its grace period ran out): into the room under its old number if the number is free,
    /// or into the room re-created under its old code if the server no longer has one. The
    /// same throttle as a join applies, and re-creating a room counts against the address's
    /// failed joins and the room cap: otherwise reclaiming random codes would tell, free of
    /// charge, which ones exist.
    fn reclaim(
        &mut self,
        now: Instant,
        conn: ConnId,
        pid: PeerId,
        typed: &str,
        claim: Reclaim,
    ) -> Result<(), Error> {
        self.check_not_busy(conn, pid)?;
        let ip = self.conns.get(&conn).ok_or(Error::RoomNotFound)?.ip;
        self.check_throttle(now, ip)?;
        let code = match RoomCode::parse(typed) {
            Ok(code) => code,
            Err(e) => {
                self.record_failure(now, ip);
                return Err(e);
            }
        };
        let Some(room) = self.rooms.get(&code) else {
            if self.rooms.len() >= self.config.max_rooms {
                return Err(Error::TooManyRooms);
            }
            self.record_failure(now, ip);
            self.next_generation += 1;
            // Room enough for every member it knew of, within the server's limits.
            let knew = usize::try_from(claim.next - 1).unwrap_or(usize::MAX);
            let max_peers = u16::try_from(knew.clamp(
                usize::from(self.config.default_max_peers),
                usize::from(self.config.max_room_peers),
            ))
            .unwrap_or(self.config.max_room_peers);
            let record =
                RoomRecord::reclaimed(pid, self.me, claim, max_peers, self.next_generation);
            tracing::debug!(%code, number = claim.number, pake = claim.pake, "room re-created by a reclaim");
            self.metrics.rooms_created += 1;
            self.enter(now, pid, code, record);
            return Ok(());
        };
        let record = room.record.clone();
        if record.password.is_some() {
            // The server checks this room's password, and a reclaim carries none.
            self.record_failure(now, ip);
            return Err(Error::WrongPassword);
        }
        if record.is_full() {
            return Err(Error::RoomFull {
                max: record.max_peers,
            });
        }
        if record.number_held(claim.number) {
            return Err(Error::NumberTaken {
                number: claim.number,
            });
        }
        let next = record.admit_reclaimed(pid, self.me, claim);
        self.enter(now, pid, code, next);
        Ok(())
    }

    /// The rules of a join, given the room the typed code names (as this registry or the
    /// shared store knows it): throttle, code, existence, capacity, password.
    fn decide_join(
        &mut self,
        now: Instant,
        conn: ConnId,
        typed: &str,
        password: Option<Password>,
        room: Option<&RoomRecord>,
    ) -> Result<JoinStep, Error> {
        let ip = self.conns.get(&conn).ok_or(Error::RoomNotFound)?.ip;
        self.check_throttle(now, ip)?;
        let code = match RoomCode::parse(typed) {
            Ok(code) => code,
            Err(e) => {
                self.record_failure(now, ip);
                return Err(e);
            }
        };
        let Some(room) = room else {
            self.record_failure(now, ip);
            return Err(Error::RoomNotFound);
        };
        if room.is_full() {
            return Err(Error::RoomFull {
                max: room.max_peers,
            });
        }
        match (&room.password, password) {
            (None, _) => Ok(JoinStep::Admit(code)),
            (Some(_), None) => {
                self.record_failure(now, ip);
                Err(Error::WrongPassword)
            }
            (Some(hash), Some(password)) => {
                Ok(JoinStep::Verify(Box::new(Output::VerifyPassword {
                    conn,
                    ticket: JoinTicket {
                        code,
                        generation: room.generation,
                    },
                    password,
                    hash: hash.clone(),
                })))
            }
        }
    }

    fn check_throttle(&mut self, now: Instant, ip: IpAddr) -> Result<(), Error> {
        let window = self.config.failed_join_window;
        let limit = self.config.failed_join_limit;
        let Some(state) = self.ips.get_mut(&ip) else {
            return Ok(());
        };
        while state.failures.front().is_some_and(|&t| t + window <= now) {
            state.failures.pop_front();
        }
        if state.failures.len() < limit {
            return Ok(());
        }
        // The oldest failure in the window must age out before another attempt is considered.
        let oldest = *state
            .failures
            .front()
            .expect("len >= limit, and the limit is at least one when we get here");
        let wait = (oldest + window).saturating_duration_since(now);
        Err(Error::TooManyAttempts {
            retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        })
    }

    fn record_failure(&mut self, now: Instant, ip: IpAddr) {
        if self.shared.is_some() {
            self.out.push_back(Output::RecordFailure {
                ip,
                keep: self.config.failed_join_limit.max(1),
                window: self.config.failed_join_window,
            });
        }
        let state = self.ips.entry(ip).or_default();
        state.failures.push_back(now);
        // Bounded: check_throttle refuses before lookups once `limit` failures are in the window.
        while state.failures.len() > self.config.failed_join_limit.max(1) {
            state.failures.pop_front();
        }
        self.timers.push(Reverse((
            now + self.config.failed_join_window,
            Timer::Ip(ip),
        )));
    }

    fn admit(&mut self, now: Instant, pid: PeerId, code: RoomCode) -> Result<(), Error> {
        let room = self.rooms.get(&code).ok_or(Error::RoomNotFound)?;
        if room.record.is_full() {
            return Err(Error::RoomFull {
                max: room.record.max_peers,
            });
        }
        let (next, _) = room.record.admit(pid, self.me);
        self.enter(now, pid, code, next);
        Ok(())
    }

    /// `pid` is a member of `next`, the room's record from now on: tell it, then the others.
    fn enter(&mut self, now: Instant, pid: PeerId, code: RoomCode, next: RoomRecord) {
        let joined = next.joined(code, pid);
        self.metrics.joins += 1;
        let Some(peer) = self.peers.get_mut(&pid) else {
            return;
        };
        peer.room = Some(code);
        if let Some(conn) = peer.conn {
            self.send(conn, joined);
        }
        self.save_token(pid);
        self.replace_record(now, code, Some(next));
    }

    /// The room's record is now `next` (`None`: it closed): members held here who were in it
    /// before and still are get told what changed, in the same order everywhere.
    fn replace_record(&mut self, now: Instant, code: RoomCode, next: Option<RoomRecord>) {
        let me = self.me;
        let Some(next) = next else {
            if let Some(room) = self.rooms.remove(&code) {
                for m in room.record.members.iter().filter(|m| m.instance == me) {
                    if let Some(p) = self.peers.get_mut(&m.peer)
                        && p.room == Some(code)
                    {
                        p.room = None;
                    }
                }
            }
            return;
        };
        let Some(room) = self.rooms.get_mut(&code) else {
            if next.members.iter().any(|m| m.instance == me) {
                self.rooms.insert(
                    code,
                    Room {
                        record: next,
                        last_activity: now,
                        last_touch: now,
                    },
                );
                self.timers.push(Reverse((
                    now + self.room_check_after(),
                    Timer::RoomIdle(code),
                )));
            }
            return;
        };
        let notices = room.record.notices(&next);
        let told: Vec<PeerId> = room
            .record
            .members
            .iter()
            .filter(|m| m.instance == me && next.member(m.peer).is_some())
            .map(|m| m.peer)
            .collect();
        room.last_activity = now;
        let keep = next.members.iter().any(|m| m.instance == me);
        room.record = next;
        if !keep {
            self.rooms.remove(&code);
        }
        for msg in notices {
            for &m in &told {
                if self.peers.get(&m).is_some_and(|p| p.room == Some(code)) {
                    self.deliver(now, m, msg.clone());
                }
            }
        }
    }

    /// How long after the last look a room is looked at again: when it would expire (sharing
    /// rooms, the store's lifetime decides then; members of dead instances are noticed by
    /// instance, not by looking at every room).
    fn room_check_after(&self) -> Duration {
        self.config.room_idle
    }

    fn leave_room(&mut self, now: Instant, pid: PeerId) -> Result<(), Error> {
        let code = self
            .peers
            .get(&pid)
            .and_then(|p| p.room)
            .ok_or(Error::NotInRoom)?;
        self.remove_from_room(now, pid);
        if let Some(conn) = self.peers.get(&pid).and_then(|p| p.conn) {
            self.send(conn, ServerMessage::Left { code });
        }
        Ok(())
    }

    fn remove_from_room(&mut self, now: Instant, pid: PeerId) {
        let Some(code) = self.peers.get_mut(&pid).and_then(|p| p.room.take()) else {
            return;
        };
        self.save_token(pid);
        let Some(room) = self.rooms.get(&code) else {
            return;
        };
        if room
            .record
            .member(pid)
            .is_none_or(|m| m.instance != self.me)
        {
            // It moved to another instance, which speaks for it now.
            return;
        }
        let next = room.record.without(pid);
        if self.shared.is_some() {
            let old = room.record.clone();
            return self.shared_leave(now, pid, code, old, next);
        }
        self.replace_record(now, code, next);
    }

    fn relay(
        &mut self,
        now: Instant,
        from: PeerId,
        to: PeerId,
        msg: ServerMessage,
    ) -> Result<(), Error> {
        let code = self
            .peers
            .get(&from)
            .and_then(|p| p.room)
            .ok_or(Error::NotInRoom)?;
        let target = self
            .rooms
            .get(&code)
            .and_then(|r| r.record.member(to))
            .filter(|_| to != from)
            .map(|m| m.instance);
        let Some(instance) = target else {
            return Err(Error::UnknownPeer {
                peer: to.to_string(),
            });
        };
        let touch_every = self.config.room_idle / 8;
        let mut touch = false;
        if let Some(room) = self.rooms.get_mut(&code) {
            room.last_activity = now;
            if self.shared.is_some()
                && now.saturating_duration_since(room.last_touch) >= touch_every
            {
                room.last_touch = now;
                touch = true;
            }
        }
        if touch {
            self.out.push_back(Output::Touch {
                code,
                ttl: self.config.room_idle,
            });
        }
        self.metrics.relayed += 1;
        if instance == self.me {
            self.deliver(now, to, msg);
        } else {
            self.metrics.carried += 1;
            self.out.push_back(Output::Carry {
                to: instance,
                what: Carried::Relay {
                    to,
                    msg,
                    forwarded: false,
                },
            });
        }
        Ok(())
    }

    /// A host's `reject` of member `target`: only the room's host may send it, and only about
    /// another member of its room.
    fn reject_member(
        &mut self,
        now: Instant,
        from: PeerId,
        target: PeerId,
        reason: RejectReason,
    ) -> Result<(), Error> {
        let code = self
            .peers
            .get(&from)
            .and_then(|p| p.room)
            .ok_or(Error::NotInRoom)?;
        let room = self.rooms.get(&code).ok_or(Error::NotInRoom)?;
        if room.record.host != from {
            return Err(Error::NotHost);
        }
        let Some(instance) = room
            .record
            .member(target)
            .filter(|_| target != from)
            .map(|m| m.instance)
        else {
            return Err(Error::UnknownPeer {
                peer: target.to_string(),
            });
        };
        if instance == self.me {
            self.refuse_member(now, target, code, reason);
        } else {
            // Only the instance holding the peer knows its address.
            self.out.push_back(Output::Carry {
                to: instance,
                what: Carried::Reject {
                    peer: target,
                    code,
                    reason,
                },
            });
        }
        Ok(())
    }

    /// Member `pid` (held here) of room `code` was refused by its host: one failed join
    /// against its address, the error to it, and out of the room (the others get `peer-left`).
    fn refuse_member(&mut self, now: Instant, pid: PeerId, code: RoomCode, reason: RejectReason) {
        let Some(ip) = self
            .peers
            .get(&pid)
            .filter(|p| p.room == Some(code))
            .map(|p| p.ip)
        else {
            return;
        };
        tracing::debug!(%code, reason = reason.code().as_str(), "the host refused a member");
        self.record_failure(now, ip);
        *self.metrics.rejections.entry(reason.code()).or_default() += 1;
        self.deliver(
            now,
            pid,
            ServerMessage::Error {
                code: reason.code(),
                message: reason.message().into(),
                retry_after_secs: None,
            },
        );
        self.remove_from_room(now, pid);
    }

    /// Sends to a connected peer, or queues for one within its grace period.
    fn deliver(&mut self, now: Instant, pid: PeerId, msg: ServerMessage) {
        let Some(peer) = self.peers.get_mut(&pid) else {
            return;
        };
        if let Some(conn) = peer.conn {
            return self.send(conn, msg);
        }
        let deadline = now + self.config.message_ttl;
        peer.queue.push_back((deadline, msg));
        if peer.queue.len() > self.config.max_queued_per_peer {
            peer.queue.pop_front();
            self.metrics.dropped += 1;
        }
        self.timers.push(Reverse((deadline, Timer::Queue(pid))));
    }

    fn expire_hello(&mut self, conn: ConnId) {
        // A connection that took over a peer and was then replaced also has no peer, but it
        // is already being closed; closing twice is harmless.
        if self.conns.get(&conn).is_some_and(|c| c.peer.is_none()) {
            self.reject(conn, &Error::HelloRequired);
            self.out.push_back(Output::Close {
                conn,
                reason: "no hello in time",
            });
        }
    }

    fn expire_grace(&mut self, now: Instant, pid: PeerId) {
        let Some(peer) = self.peers.get(&pid) else {
            return;
        };
        if peer.conn.is_some() || peer.away_until.is_none_or(|t| t > now) {
            return;
        }
        self.remove_from_room(now, pid);
        let peer = self.peers.remove(&pid).expect("checked above");
        self.tokens.remove(&peer.token);
        self.metrics.dropped += peer.queue.len() as u64;
        if self.shared.is_some() {
            self.out.push_back(Output::SaveToken {
                token: peer.token,
                record: None,
                ttl: Duration::ZERO,
            });
        }
    }

    fn expire_room(&mut self, now: Instant, code: RoomCode) {
        let Some(room) = self.rooms.get(&code) else {
            return;
        };
        if self.shared.is_some() {
            // The store keeps the room's lifetime (every instance's activity extends it).
            return self.shared_check(code);
        }
        let due = room.last_activity + self.config.room_idle;
        if due > now {
            self.timers.push(Reverse((due, Timer::RoomIdle(code))));
            return;
        }
        self.close_expired(now, code);
    }

    /// The room expired: its members held here are told and leave it.
    fn close_expired(&mut self, now: Instant, code: RoomCode) {
        let Some(room) = self.rooms.remove(&code) else {
            return;
        };
        self.metrics.rooms_expired += 1;
        tracing::debug!(%code, "room expired");
        for m in room.record.members {
            if m.instance != self.me {
                continue;
            }
            let m = m.peer;
            match self.peers.get_mut(&m) {
                Some(p) if p.room == Some(code) => p.room = None,
                _ => continue,
            }
            self.save_token(m);
            self.deliver(
                now,
                m,
                ServerMessage::RoomClosed {
                    code,
                    reason: crate::CloseReason::Expired,
                },
            );
        }
    }

    fn prune_queue(&mut self, now: Instant, pid: PeerId) {
        if let Some(peer) = self.peers.get_mut(&pid) {
            let before = peer.queue.len();
            peer.queue.retain(|(deadline, _)| *deadline > now);
            self.metrics.dropped += (before - peer.queue.len()) as u64;
        }
    }

    fn prune_ip(&mut self, now: Instant, ip: IpAddr) {
        let window = self.config.failed_join_window;
        if let Some(state) = self.ips.get_mut(&ip) {
            state.failures.retain(|&t| t + window > now);
            if state.conns == 0 && state.failures.is_empty() {
                self.ips.remove(&ip);
            }
        }
    }
}

/// What a join that passed the rules does next.
enum JoinStep {
    /// Admit the joiner.
    Admit(RoomCode),
    /// Check the password first (this output).
    Verify(Box<Output>),
}

/// A resume token as sent: exactly 32 hex digits.
fn parse_token(s: &str) -> Option<u128> {
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(s, 16).ok()
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
