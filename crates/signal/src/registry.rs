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
//! reg.handle_message(now, host, ClientMessage::CreateRoom { password: None, max_peers: None });
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

mod types;

pub use types::{Config, ConnId, Entropy, JoinTicket, Metrics, Output, PasswordHash};

use crate::{
    ClientMessage, Error, ErrorCode, MemberNumber, PROTOCOL_VERSION, Password, PeerId, RoomCode,
    ServerMessage, protocol::CODE_LEN,
};

#[derive(Debug)]
struct Conn {
    ip: IpAddr,
    peer: Option<PeerId>,
    /// A password hash/verify is in flight for this connection.
    pending: bool,
    window_start: Instant,
    window_count: u32,
}

#[derive(Debug)]
struct Peer {
    conn: Option<ConnId>,
    /// 128 random bits; sent as 32 hex digits. Kept as a number: thousands of peers each
    /// holding a String (and the index a second one) cost more than the rest of the entry.
    token: u128,
    room: Option<RoomCode>,
    /// Messages for a disconnected peer with the deadline after which they are dropped.
    queue: VecDeque<(Instant, ServerMessage)>,
    /// When the grace period of a disconnected peer ends.
    away_until: Option<Instant>,
}

#[derive(Debug)]
struct Room {
    /// In joining order, each with its member number.
    members: Vec<(PeerId, MemberNumber)>,
    /// The number the next member gets: numbers only grow, so none is reused while the room
    /// lives.
    next_number: MemberNumber,
    host: PeerId,
    password: Option<PasswordHash>,
    max_peers: u16,
    last_activity: Instant,
    generation: u64,
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
        }
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
                },
            ) => self.create_room(now, conn, p, password, max_peers),
            (Some(p), ClientMessage::JoinRoom { code, password }) => {
                self.join_room(now, conn, p, &code, password)
            }
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
        if let Err(e) = self.insert_room(now, pid, Some(hash), max_peers) {
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
        let result = if self
            .rooms
            .get(&ticket.code)
            .is_none_or(|r| r.generation != ticket.generation)
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
        let known = resume
            .as_deref()
            .and_then(parse_token)
            .and_then(|t| self.tokens.get(&t).copied());
        if let Some(pid) = known {
            return self.resume(now, conn, pid);
        }
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
        self.tokens.insert(token, pid);
        self.peers.insert(
            pid,
            Peer {
                conn: Some(conn),
                token,
                room: None,
                queue: VecDeque::new(),
                away_until: None,
            },
        );
        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer = Some(pid);
        }
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
            let msg = r.joined(code, pid);
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
            None => self.insert_room(now, pid, None, max_peers),
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
        pid: PeerId,
        password: Option<PasswordHash>,
        max_peers: u16,
    ) -> Result<(), Error> {
        if self.rooms.len() >= self.config.max_rooms {
            return Err(Error::TooManyRooms);
        }
        let code = self.fresh_code().ok_or(Error::TooManyRooms)?;
        let password_set = password.is_some();
        self.next_generation += 1;
        self.rooms.insert(
            code,
            Room {
                members: vec![(pid, 1)],
                next_number: 2,
                host: pid,
                password,
                max_peers,
                last_activity: now,
                generation: self.next_generation,
            },
        );
        self.timers.push(Reverse((
            now + self.config.room_idle,
            Timer::RoomIdle(code),
        )));
        self.metrics.rooms_created += 1;
        tracing::debug!(%code, max_peers, password = password_set, "room created");
        let peer = self
            .peers
            .get_mut(&pid)
            .expect("create-room comes from a greeted peer");
        peer.room = Some(code);
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
        Ok(())
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
        let ip = self.conns[&conn].ip;
        self.check_throttle(now, ip)?;
        let code = match RoomCode::parse(typed) {
            Ok(code) => code,
            Err(e) => {
                self.record_failure(now, ip);
                return Err(e);
            }
        };
        let Some(room) = self.rooms.get(&code) else {
            self.record_failure(now, ip);
            return Err(Error::RoomNotFound);
        };
        if room.members.len() >= usize::from(room.max_peers) {
            return Err(Error::RoomFull {
                max: room.max_peers,
            });
        }
        match (&room.password, password) {
            (None, _) => self.admit(now, pid, code),
            (Some(_), None) => {
                self.record_failure(now, ip);
                Err(Error::WrongPassword)
            }
            (Some(hash), Some(password)) => {
                let out = Output::VerifyPassword {
                    conn,
                    ticket: JoinTicket {
                        code,
                        generation: room.generation,
                    },
                    password,
                    hash: hash.clone(),
                };
                self.set_pending(conn);
                self.out.push_back(out);
                Ok(())
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
        let room = self.rooms.get_mut(&code).ok_or(Error::RoomNotFound)?;
        if room.members.len() >= usize::from(room.max_peers) {
            return Err(Error::RoomFull {
                max: room.max_peers,
            });
        }
        let others: Vec<PeerId> = room.members.iter().map(|&(m, _)| m).collect();
        let number = room.next_number;
        room.next_number += 1;
        room.members.push((pid, number));
        room.last_activity = now;
        let joined = room.joined(code, pid);
        self.metrics.joins += 1;
        let peer = self
            .peers
            .get_mut(&pid)
            .expect("joins come from greeted peers");
        peer.room = Some(code);
        if let Some(conn) = peer.conn {
            self.send(conn, joined);
        }
        for other in others {
            self.deliver(now, other, ServerMessage::PeerJoined { peer: pid, number });
        }
        Ok(())
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
        let Some(room) = self.rooms.get_mut(&code) else {
            return;
        };
        room.members.retain(|&(m, _)| m != pid);
        room.last_activity = now;
        if room.members.is_empty() {
            self.rooms.remove(&code);
            return;
        }
        let new_host = (room.host == pid).then(|| {
            room.host = room.members[0].0;
            room.host
        });
        let rest: Vec<PeerId> = room.members.iter().map(|&(m, _)| m).collect();
        for &m in &rest {
            self.deliver(now, m, ServerMessage::PeerLeft { peer: pid });
        }
        if let Some(host) = new_host {
            for &m in &rest {
                self.deliver(now, m, ServerMessage::HostChanged { host });
            }
        }
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
        let same_room = to != from && self.peers.get(&to).is_some_and(|p| p.room == Some(code));
        if !same_room {
            return Err(Error::UnknownPeer {
                peer: to.to_string(),
            });
        }
        if let Some(room) = self.rooms.get_mut(&code) {
            room.last_activity = now;
        }
        self.metrics.relayed += 1;
        self.deliver(now, to, msg);
        Ok(())
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
    }

    fn expire_room(&mut self, now: Instant, code: RoomCode) {
        let Some(room) = self.rooms.get(&code) else {
            return;
        };
        let due = room.last_activity + self.config.room_idle;
        if due > now {
            self.timers.push(Reverse((due, Timer::RoomIdle(code))));
            return;
        }
        let room = self.rooms.remove(&code).expect("checked above");
        self.metrics.rooms_expired += 1;
        tracing::debug!(%code, "room expired");
        for (m, _) in room.members {
            if let Some(p) = self.peers.get_mut(&m) {
                p.room = None;
            }
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

impl Room {
    /// The `joined` message telling `to` who is in the room now.
    fn joined(&self, code: RoomCode, to: PeerId) -> ServerMessage {
        ServerMessage::Joined {
            code,
            members: self.members.iter().map(|&(m, _)| m).collect(),
            numbers: self.members.iter().map(|&(_, n)| n).collect(),
            host: self.host,
            number: self
                .members
                .iter()
                .find(|&&(m, _)| m == to)
                .map_or(0, |&(_, n)| n),
        }
    }
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
