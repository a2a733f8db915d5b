//! The peer-to-peer transport: a signaling client, and a WebRTC link to every other member of
//! the room (see [`crate::mesh`] for who offers).
//!
//! It keeps its signaling connection alive (reconnecting with backoff and the resume token, so
//! it keeps its member number within the server's grace period), maps the signaling peer ids to
//! member numbers (the session's peer ids), and redials lost links. Links already open survive a
//! signaling outage: they do not go through the server. When the server lost our place anyway
//! (it restarted, or the grace period ran out), a member holding the room key reclaims it
//! (`join-room.reclaim`): the same code and member number, the room re-created if the server
//! has none, the links kept. Without a key (the server checked the room's password) the room
//! cannot be re-created open: the links stay up and the loss is reported as
//! [`TransportStatus::RoomLost`], not as a fatal error.
//!
//! With a room key ([`P2pConfig::room_key`]) every offer and answer this transport sends
//! carries an `auth` under the key, and every one it receives is checked
//! ([`crate::room_auth`]) before it reaches a peer connection: one that fails is dropped, the
//! pending link attempt to that peer is stopped (a live link is left alone), and
//! [`TransportEvent::Tampered`] says why. Candidates are not signed (see docs/SECURITY.md).
//! Without a key nothing is signed or checked: the signaling server is trusted.
//!
//! A room created with a key and a password is a PAKE room (`create-room` says `pake`, and
//! the password never goes to the server): a guest that has the password but not the key runs
//! the PAKE of [`crate::room_pake`] with the host the server names before it dials anyone, and
//! the host (or whichever member holding the key the server names host later) answers it.
//! A guest sends a password to the server only with [`Room::Join`]'s `trust_server`.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bassline_signal::{
    ClientMessage, ErrorCode, Password, PeerId as SignalId, Reclaim, ServerMessage,
};
use bassline_sync::PeerId;
use bassline_trust::{GuessLimiter, Kind, RoomKey};
use futures_util::{SinkExt, StreamExt};
use tokio::{
    sync::mpsc,
    task::JoinHandle,
    time::{Instant, sleep_until},
};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    Error,
    link::{Events, TransportEvent, TransportStatus},
    mesh::{Backoff, offers, random_seed},
    room_auth::RoomAuth,
    room_pake::{self, GuestRun, HostRuns, HostStep, PakeRole, pake_role},
    rtc::{Ended, RtcConfig, Signal, run_peer},
    transport::Transport,
};

/// Which room to be in.
#[derive(Clone, Debug)]
pub enum Room {
    /// Create one (this peer hosts it). With a room key, the password is checked by PAKE
    /// and never sent to the server; without one, the server checks it.
    Create {
        password: Option<String>,
        max_peers: Option<u16>,
    },
    /// Join one by its code. The password is used for the PAKE with the host; it is sent to
    /// the server only with `trust_server` (rooms whose host has no room key).
    Join {
        code: String,
        password: Option<String>,
        trust_server: bool,
    },
}

impl Room {
    fn password(&self) -> Option<&str> {
        match self {
            Room::Create { password, .. } | Room::Join { password, .. } => password.as_deref(),
        }
    }
}

/// Settings of the peer-to-peer transport.
#[derive(Clone, Debug)]
pub struct P2pConfig {
    /// The signaling server, e.g. `ws://127.0.0.1:8080/signal`.
    pub signal_url: String,
    pub room: Room,
    /// WebRTC settings; the ICE servers are replaced by the ones the signaling server hands
    /// out in its `welcome`.
    pub rtc: RtcConfig,
    /// The room's key (from the join link's fragment, or made by the host): offers and
    /// answers are signed and checked under it. `None` trusts the signaling server.
    pub room_key: Option<RoomKey>,
    /// The bound on failed PAKE runs this peer answers as host.
    pub guess_limiter: GuessLimiter,
}

/// Starts the transport.
pub fn p2p(cfg: P2pConfig) -> Transport {
    Transport::spawn(move |events| async move {
        let mut mesh = Mesh::new(cfg, events);
        mesh.run().await;
        mesh.stop_all();
    })
}

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct PeerTask {
    signals: mpsc::Sender<Signal>,
    task: JoinHandle<()>,
    generation: u64,
    /// The link is up (a refused offer or answer no longer stops it).
    connected: Arc<AtomicBool>,
}

/// Why one signaling connection ended.
enum Lost {
    /// Try again after a backoff.
    Retry,
    /// Stop for good (the error was reported).
    Fatal,
}

struct Mesh {
    cfg: P2pConfig,
    events: Events,
    /// Member numbers by signaling id and back.
    numbers: HashMap<SignalId, PeerId>,
    ids: HashMap<PeerId, SignalId>,
    me: Option<PeerId>,
    /// Our signaling peer id (from `welcome`), which offers and answers are bound to.
    my_sid: Option<SignalId>,
    /// Signs and checks offers and answers when the room has a key.
    auth: Option<RoomAuth>,
    /// The room key: from the configuration, or from a PAKE with the host.
    key: Option<RoomKey>,
    /// The host as the signaling server names it (`room-created`, `joined`, `host-changed`).
    server_host: Option<SignalId>,
    /// The room's password is checked by PAKE (`joined.pake`, or we created it so).
    pake_room: bool,
    /// Our PAKE run with the host while we wait for its reply.
    guest_run: Option<GuestRun>,
    /// The runs we answer as host.
    host_runs: HostRuns,
    /// The room password as another member handed it to us (we joined by link), so that we
    /// can answer password joins if we are elected host.
    learned_password: Option<String>,
    /// The room's code once in one; a peer that lost its place joins it again.
    code: Option<String>,
    /// The highest member number we have seen in the room (ours included): a reclaim asks
    /// the server to number newcomers above it, so no one gets a number a member held.
    highest: PeerId,
    /// A reclaim is on its way: the `joined` answering it lists only the members back so far.
    reclaiming: bool,
    /// The server lost our room and could not give it back: we stay with the links we have
    /// (and say so again after every reconnect: what we said is here).
    room_lost: Option<String>,
    /// A (re)join the server refused for now (its throttle): when to send it again.
    rejoin_at: Option<Instant>,
    token: Option<String>,
    ice: Vec<bassline_signal::IceServer>,
    peers: HashMap<PeerId, PeerTask>,
    generation: u64,
    /// Offering side: when to dial a peer again after its link failed.
    redial: HashMap<PeerId, (Instant, Backoff)>,
    out_tx: mpsc::Sender<(PeerId, Signal)>,
    out_rx: mpsc::Receiver<(PeerId, Signal)>,
    ended_tx: mpsc::Sender<(PeerId, u64, Ended)>,
    ended_rx: mpsc::Receiver<(PeerId, u64, Ended)>,
}

impl Mesh {
    fn new(cfg: P2pConfig, events: Events) -> Self {
        let (out_tx, out_rx) = mpsc::channel(256);
        let (ended_tx, ended_rx) = mpsc::channel(64);
        Mesh {
            auth: cfg.room_key.as_ref().map(RoomAuth::new),
            key: cfg.room_key.clone(),
            server_host: None,
            pake_room: false,
            guest_run: None,
            host_runs: HostRuns::new(cfg.guess_limiter.clone()),
            learned_password: None,
            cfg,
            events,
            numbers: HashMap::new(),
            ids: HashMap::new(),
            me: None,
            my_sid: None,
            code: None,
            highest: 0,
            reclaiming: false,
            room_lost: None,
            rejoin_at: None,
            token: None,
            ice: Vec::new(),
            peers: HashMap::new(),
            generation: 0,
            redial: HashMap::new(),
            out_tx,
            out_rx,
            ended_tx,
            ended_rx,
        }
    }

    async fn emit(&self, ev: TransportEvent) {
        let _ = self.events.send(ev).await;
    }

    async fn run(&mut self) {
        let mut backoff = Backoff::new(
            Duration::from_millis(250),
            Duration::from_secs(10),
            random_seed(),
        );
        let mut ever_connected = false;
        loop {
            // Signaling messages are small and come in bursts (a PAKE confirm right before an
            // offer): Nagle would hold the second back for the first's delayed ACK, ~40 ms.
            match tokio_tungstenite::connect_async_with_config(
                self.cfg.signal_url.as_str(),
                None,
                true,
            )
            .await
            {
                Ok((ws, _)) => {
                    ever_connected = true;
                    backoff.reset();
                    self.emit(TransportEvent::Status(TransportStatus::Connected))
                        .await;
                    match self.connection(ws).await {
                        Lost::Retry => {}
                        Lost::Fatal => return,
                    }
                }
                Err(e) if !ever_connected => {
                    // Nothing to keep alive yet: a wrong address should say so at once.
                    let err = Error::Unreachable {
                        url: self.cfg.signal_url.clone(),
                        reason: e.to_string(),
                    };
                    self.emit(TransportEvent::Fatal(err)).await;
                    return;
                }
                Err(e) => tracing::info!(error = %e, "signaling reconnect failed"),
            }
            let delay = backoff.next_delay();
            self.emit(TransportEvent::Status(TransportStatus::Reconnecting {
                retry_in: delay,
                attempt: backoff.attempt(),
            }))
            .await;
            // Links keep working meanwhile, and failed ones are redialled once the server is
            // back (their offers need it).
            tokio::time::sleep(delay).await;
        }
    }

    async fn send(ws: &mut WsStream, msg: &ClientMessage) -> bool {
        let text = serde_json::to_string(msg).expect("client messages always serialize");
        ws.send(Message::text(text)).await.is_ok()
    }

    /// One signaling connection, from hello until it drops.
    async fn connection(&mut self, mut ws: WsStream) -> Lost {
        let hello = ClientMessage::Hello {
            version: bassline_signal::PROTOCOL_VERSION,
            resume: self.token.clone(),
        };
        if !Self::send(&mut ws, &hello).await {
            return Lost::Retry;
        }
        loop {
            let next_redial = self.redial.values().map(|(t, _)| *t).min();
            let next_pake = self
                .guest_run
                .as_ref()
                .map(|r| r.deadline)
                .into_iter()
                .chain(self.host_runs.next_deadline())
                .min();
            tokio::select! {
                msg = ws.next() => {
                    let text = match msg {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Lost::Retry,
                        Some(Ok(_)) => continue,
                    };
                    let Ok(msg) = serde_json::from_str::<ServerMessage>(&text) else {
                        tracing::warn!("signaling server sent something unreadable; ignored");
                        continue;
                    };
                    if let Some(lost) = self.on_server(&mut ws, msg).await {
                        return lost;
                    }
                }
                out = self.out_rx.recv() => {
                    let Some((peer, signal)) = out else { continue };
                    let Some(&to) = self.ids.get(&peer) else { continue };
                    let msg = match signal {
                        Signal::Offer(sdp) => {
                            let Ok(auth) = self.sign(to, Kind::Offer, &sdp) else { continue };
                            ClientMessage::Offer { to, sdp, auth }
                        }
                        Signal::Answer(sdp) => {
                            let Ok(auth) = self.sign(to, Kind::Answer, &sdp) else { continue };
                            ClientMessage::Answer { to, sdp, auth }
                        }
                        Signal::Candidate { candidate, sdp_mid, sdp_m_line_index } => {
                            ClientMessage::Candidate { to, candidate, sdp_mid, sdp_m_line_index }
                        }
                    };
                    if !Self::send(&mut ws, &msg).await {
                        return Lost::Retry;
                    }
                }
                ended = self.ended_rx.recv() => {
                    if let Some((peer, generation, ended)) = ended {
                        self.on_ended(peer, generation, ended).await;
                    }
                }
                () = sleep_or_never(self.rejoin_at) => {
                    self.rejoin_at = None;
                    let msg = self.room_message();
                    if !Self::send(&mut ws, &msg).await {
                        return Lost::Retry;
                    }
                }
                () = sleep_or_never(next_pake) => {
                    if let Some(lost) = self.pake_timeouts(&mut ws).await {
                        return lost;
                    }
                }
                () = sleep_or_never(next_redial) => {
                    let now = Instant::now();
                    let due: Vec<PeerId> = self.redial.iter().filter(|(_, (t, _))| *t <= now).map(|(p, _)| *p).collect();
                    for p in due {
                        if let Some((_, b)) = self.redial.get_mut(&p) {
                            // Keep the backoff for the next failure; clear the deadline.
                            let b = b.clone();
                            self.redial.insert(p, (Instant::now() + Duration::from_secs(3600), b));
                        }
                        if self.ids.contains_key(&p) && !self.peers.contains_key(&p) {
                            self.dial(p, None);
                        }
                    }
                }
            }
        }
    }

    async fn on_server(&mut self, ws: &mut WsStream, msg: ServerMessage) -> Option<Lost> {
        match msg {
            ServerMessage::Welcome {
                peer_id,
                resume_token,
                resumed,
                ice_servers,
                ..
            } => {
                self.my_sid = Some(peer_id);
                self.token = Some(resume_token);
                if !ice_servers.is_empty() || !resumed {
                    self.ice = ice_servers;
                }
                if !resumed && let Some(message) = self.room_lost.clone() {
                    self.lose_room(message).await;
                } else if !resumed {
                    // A fresh place: create the room, or (re)join it. (A rejoin planned on
                    // the last connection is this one.)
                    self.rejoin_at = None;
                    let msg = self.room_message();
                    if !Self::send(ws, &msg).await {
                        return Some(Lost::Retry);
                    }
                }
            }
            ServerMessage::RoomCreated { code, number, .. } => {
                self.code = Some(code.to_string());
                self.server_host = self.my_sid;
                self.pake_room = self.key.is_some() && self.cfg.room.password().is_some();
                self.emit(TransportEvent::Room {
                    code: code.to_string(),
                })
                .await;
                self.set_me(number, Some(number)).await;
            }
            ServerMessage::Joined {
                code,
                members,
                numbers,
                number,
                host,
                pake,
            } => {
                let first = self.code.is_none();
                self.server_host = Some(host);
                self.pake_room = pake;
                self.code = Some(code.to_string());
                if first {
                    self.emit(TransportEvent::Room {
                        code: code.to_string(),
                    })
                    .await;
                }
                // A joiner learns its host from the peers' heartbeats: the signaling server's
                // idea of the host may be stale after an election.
                self.set_me(number, None).await;
                let now: HashMap<SignalId, PeerId> = members.into_iter().zip(numbers).collect();
                // After a reclaim the others come back one by one (`peer-joined`): one missing
                // here is not gone, and one that really left has its link close anyway.
                if !std::mem::take(&mut self.reclaiming) {
                    let gone: Vec<PeerId> = self
                        .ids
                        .keys()
                        .copied()
                        .filter(|n| !now.values().any(|m| m == n))
                        .collect();
                    for g in gone {
                        self.left(g).await;
                    }
                }
                for (sid, n) in now {
                    if Some(n) != self.me {
                        self.member(sid, n);
                    }
                }
                if let Some(lost) = self.start_guest_run(ws).await {
                    return Some(lost);
                }
            }
            ServerMessage::PeerJoined { peer, number } => self.member(peer, number),
            ServerMessage::PeerLeft { peer } => {
                self.host_runs.forget(peer.0);
                if let Some(&n) = self.numbers.get(&peer) {
                    self.left(n).await;
                }
            }
            ServerMessage::Pake { from, data } => return self.on_pake(ws, from, data).await,
            ServerMessage::Offer { from, sdp, auth } => {
                if self.signed(from, Kind::Offer, sdp, auth).await {
                    return self.share_password(ws, from).await;
                }
            }
            ServerMessage::Answer { from, sdp, auth } => {
                if self.signed(from, Kind::Answer, sdp, auth).await {
                    return self.share_password(ws, from).await;
                }
            }
            ServerMessage::Candidate {
                from,
                candidate,
                sdp_mid,
                sdp_m_line_index,
            } => self.signal(
                from,
                Signal::Candidate {
                    candidate,
                    sdp_mid,
                    sdp_m_line_index,
                },
            ),
            // The answer to our reclaim (relays to members not back yet may fail meanwhile).
            ServerMessage::Error {
                code,
                message,
                retry_after_secs,
            } if self.reclaiming
                && !matches!(
                    code,
                    ErrorCode::UnknownPeer | ErrorCode::NotInRoom | ErrorCode::RateLimited
                ) =>
            {
                return self
                    .reclaim_refused(ws, code, message, retry_after_secs)
                    .await;
            }
            // We were a member (no key to reclaim with) and the server refuses our plain
            // rejoin for now or for its limits: the links are fine, so like a refused reclaim
            // it is no reason to stop.
            ServerMessage::Error {
                code:
                    code @ (ErrorCode::TooManyAttempts | ErrorCode::TooManyRooms | ErrorCode::RoomFull),
                message,
                retry_after_secs,
            } if self.me.is_some() && !(self.pake_room && self.key.is_none()) => {
                return self
                    .reclaim_refused(ws, code, message, retry_after_secs)
                    .await;
            }
            ServerMessage::Error {
                code: ErrorCode::RoomNotFound,
                message,
                ..
            } if self.me.is_some() => {
                // We were in the room and the server no longer has it (it restarted), and we
                // have no key to re-create it with.
                self.lose_room(format!(
                    "the signaling server lost room {} (it restarted?) and this member cannot \
                     put it back: only members holding the room key re-create a room, a room \
                     without one would come back open ({message}). Links to the members here \
                     stay up; to let new members in, host a new room",
                    self.code.as_deref().unwrap_or_default()
                ))
                .await;
            }
            ServerMessage::Error { code, message, .. } => {
                let room = self.code.clone().unwrap_or_else(|| match &self.cfg.room {
                    Room::Join { code, .. } => code.clone(),
                    Room::Create { .. } => String::new(),
                });
                let fatal = match code {
                    ErrorCode::RoomNotFound => Some(Error::RoomNotFound { code: room }),
                    // Our host refused our PAKE run (the server only passed it on).
                    ErrorCode::WrongPassword if self.pake_room => {
                        Some(Error::HostRefusedPassword { code: room })
                    }
                    // A password-less join to a room whose server checks its password: we
                    // did not send ours on our own (a server could ask just to harvest it).
                    ErrorCode::WrongPassword
                        if self.server_password().is_none()
                            && self.cfg.room.password().is_some() =>
                    {
                        Some(Error::ServerChecksPassword { code: room })
                    }
                    ErrorCode::WrongPassword => Some(Error::WrongPassword { code: room }),
                    ErrorCode::TooManyAttempts if self.pake_room && self.key.is_none() => {
                        Some(Error::HostTooManyAttempts { code: room })
                    }
                    ErrorCode::BadCode
                    | ErrorCode::RoomFull
                    | ErrorCode::TooManyAttempts
                    | ErrorCode::TooManyRooms
                    | ErrorCode::UnsupportedVersion
                    | ErrorCode::InvalidMaxPeers => Some(Error::Refused {
                        code: code.as_str().into(),
                        message,
                    }),
                    _ => {
                        tracing::warn!(code = code.as_str(), %message, "signaling refused a message");
                        None
                    }
                };
                if let Some(e) = fatal {
                    self.emit(TransportEvent::Fatal(e)).await;
                    return Some(Lost::Fatal);
                }
            }
            ServerMessage::RoomClosed { .. } => {
                self.emit(TransportEvent::Fatal(Error::Refused {
                    code: "room-closed".into(),
                    message: "the room closed after an hour without activity; host a new one"
                        .into(),
                }))
                .await;
                return Some(Lost::Fatal);
            }
            ServerMessage::Shutdown { .. } => return Some(Lost::Retry),
            ServerMessage::HostChanged { host } => {
                self.server_host = Some(host);
                // A run with the old host can no longer finish: run again with the new one.
                if self.guest_run.as_ref().is_some_and(|r| r.host != host.0) {
                    return self.start_guest_run(ws).await;
                }
            }
            ServerMessage::Left { .. } => {}
        }
        None
    }

    /// What asks the server for our place: create the room, or (re)join it, as the member we
    /// were when we were one and hold the key.
    fn room_message(&mut self) -> ClientMessage {
        let reclaim = self.reclaim();
        self.reclaiming = reclaim.is_some();
        match (&self.code, &self.cfg.room) {
            (Some(code), _) | (None, Room::Join { code, .. }) => ClientMessage::JoinRoom {
                code: code.clone(),
                password: self
                    .server_password()
                    .filter(|_| reclaim.is_none())
                    .map(Password),
                reclaim,
            },
            (
                None,
                Room::Create {
                    password,
                    max_peers,
                },
            ) => ClientMessage::CreateRoom {
                // With a room key the members check the password (PAKE).
                password: password
                    .clone()
                    .filter(|_| self.key.is_none())
                    .map(Password),
                max_peers: *max_peers,
                pake: password.is_some() && self.key.is_some(),
            },
        }
    }

    /// Our claim to the place we held (`bassline_signal::mesh::reclaim` says when we have one).
    fn reclaim(&self) -> Option<Reclaim> {
        bassline_signal::mesh::reclaim(self.me, self.key.is_some(), self.highest, self.pake_room)
    }

    /// The server refused our reclaim (or a member's plain rejoin). Our number held by someone
    /// else: join as a new member (the links start again under the new number). Anything else
    /// (the room cap, the throttle, ...): we keep our links and say the room is lost on the
    /// server for now; a throttled one asks again after the wait the server names, any other
    /// on the next reconnect.
    async fn reclaim_refused(
        &mut self,
        ws: &mut WsStream,
        code: ErrorCode,
        message: String,
        retry_after_secs: Option<u64>,
    ) -> Option<Lost> {
        self.reclaiming = false;
        if code == ErrorCode::NumberTaken {
            tracing::warn!(%message, "our member number is taken; joining as a new member");
            let msg = ClientMessage::JoinRoom {
                code: self.code.clone().unwrap_or_default(),
                password: None,
                reclaim: None,
            };
            if !Self::send(ws, &msg).await {
                return Some(Lost::Retry);
            }
            return None;
        }
        let retry = retry_after_secs.filter(|_| code == ErrorCode::TooManyAttempts);
        self.rejoin_at = retry.map(|s| Instant::now() + Duration::from_secs(s.max(1)));
        let when = match retry {
            Some(s) => format!("asked again in {} s", s.max(1)),
            None => "asked again on the next reconnect".into(),
        };
        let status = TransportStatus::RoomLost {
            code: self.code.clone().unwrap_or_default(),
            message: format!(
                "the signaling server lost the room (it restarted?) and refused to give it back \
                 ({}: {message}); links to the members here stay up, new members cannot join \
                 until it does ({when})",
                code.as_str()
            ),
        };
        tracing::warn!(?status, "reclaim refused");
        self.emit(TransportEvent::Status(status)).await;
        None
    }

    /// The server lost our room for good (we cannot reclaim it): keep the links, stop asking.
    async fn lose_room(&mut self, message: String) {
        self.room_lost = Some(message.clone());
        let code = self.code.clone().unwrap_or_default();
        tracing::warn!(%code, %message, "room lost on the signaling server");
        self.emit(TransportEvent::Status(TransportStatus::RoomLost {
            code,
            message,
        }))
        .await;
    }

    /// The password to send to the server in `join-room`: only when the user allowed it
    /// (`trust_server`), or to re-enter our own room whose server checks it.
    fn server_password(&self) -> Option<String> {
        match &self.cfg.room {
            Room::Join {
                password,
                trust_server: true,
                ..
            } => password.clone(),
            Room::Create { password, .. } if self.cfg.room_key.is_none() => password.clone(),
            _ => None,
        }
    }

    /// Whether links may be made: always, except in a PAKE room before we hold its key.
    fn ready(&self) -> bool {
        self.key.is_some() || !self.pake_room
    }

    /// In a PAKE room without the key: (re)starts our run with the server's host. A run in
    /// flight is started again (after a reconnect its messages may be lost).
    async fn start_guest_run(&mut self, ws: &mut WsStream) -> Option<Lost> {
        if self.ready() {
            return None;
        }
        let code = self.code.clone().unwrap_or_default();
        let Some(password) = self.cfg.room.password().map(str::to_owned) else {
            self.emit(TransportEvent::Fatal(Error::PasswordRequired { code }))
                .await;
            return Some(Lost::Fatal);
        };
        let (Some(me), Some(host)) = (self.my_sid, self.server_host) else {
            return None;
        };
        let seed = match bassline_trust::os::random() {
            Ok(s) => s,
            Err(e) => {
                self.emit(TransportEvent::Fatal(Error::Io(e.to_string())))
                    .await;
                return Some(Lost::Fatal);
            }
        };
        let (run, hello) = GuestRun::start(Instant::now(), &code, me.0, host.0, &password, seed);
        self.guest_run = Some(run);
        tracing::info!(%host, "asking the host for the room key (PAKE)");
        let msg = ClientMessage::Pake {
            to: host,
            data: hello,
        };
        if !Self::send(ws, &msg).await {
            return Some(Lost::Retry);
        }
        None
    }

    /// A `pake` message: the host's reply to our run, or (as the server's host holding the
    /// key and the password) a guest's hello or confirmation. Anything else is ignored: a
    /// member that is not the host never answers a hello.
    async fn on_pake(&mut self, ws: &mut WsStream, from: SignalId, data: String) -> Option<Lost> {
        let code = self.code.clone().unwrap_or_default();
        let me = self.my_sid.unwrap_or(from).0;
        if let Some(share) =
            room_pake::read_password_share(&code, me, from.0, self.key.as_ref(), &data)
        {
            match share {
                // A member handed us the password (we came in by the link): keep it.
                Ok(password) if self.password().is_none() => {
                    tracing::info!(%from, "a member handed over the room password");
                    self.learned_password = Some(password);
                }
                Ok(_) => {}
                Err(e) => tracing::info!(%from, %e, "refused a password share"),
            }
            return None;
        }
        let can_answer = self.key.is_some() && self.password().is_some();
        let role = pake_role(
            self.guest_run.as_ref().map(|r| r.host),
            from.0,
            self.my_sid.map(|s| s.0),
            self.server_host.map(|s| s.0),
            can_answer,
        );
        if role == PakeRole::Ignore {
            tracing::info!(%from, "a PAKE message not for us (we are not the host); ignored");
            return None;
        }
        if role == PakeRole::Guest {
            let run = self.guest_run.take().expect("pake_role saw our run");
            let code = self.code.clone().unwrap_or_default();
            return match run.on_reply(&data) {
                Ok((key, confirm)) => {
                    tracing::info!("the host confirmed the password; holding the room key");
                    self.auth = Some(RoomAuth::new(&key));
                    self.key = Some(key);
                    if !Self::send(
                        ws,
                        &ClientMessage::Pake {
                            to: from,
                            data: confirm,
                        },
                    )
                    .await
                    {
                        return Some(Lost::Retry);
                    }
                    let known: Vec<(SignalId, PeerId)> =
                        self.numbers.iter().map(|(s, n)| (*s, *n)).collect();
                    for (sid, n) in known {
                        self.member(sid, n);
                    }
                    None
                }
                Err((error, abort)) => {
                    let _ = Self::send(
                        ws,
                        &ClientMessage::Pake {
                            to: from,
                            data: abort,
                        },
                    )
                    .await;
                    let err = match error {
                        bassline_trust::Error::WrongPassword => Error::HostRefusedPassword { code },
                        other => Error::Refused {
                            code: "pake-failed".into(),
                            message: format!(
                                "the host's answer to the password check was unusable ({other}); \
                                 the signaling path may have altered it"
                            ),
                        },
                    };
                    self.emit(TransportEvent::Fatal(err)).await;
                    Some(Lost::Fatal)
                }
            };
        }
        let password = self.password().map(str::to_owned);
        let (Some(me), Some(key), Some(password), Some(code)) = (
            self.my_sid,
            self.key.as_ref(),
            password,
            self.code.as_deref(),
        ) else {
            return None;
        };
        let seed = bassline_trust::os::random().ok()?;
        let step = self.host_runs.on_message(
            Instant::now(),
            code,
            me.0,
            from.0,
            &password,
            key,
            &data,
            seed,
        );
        let msg = match step {
            HostStep::Reply(data) => ClientMessage::Pake { to: from, data },
            HostStep::Admitted => {
                tracing::info!(%from, "a guest proved the password; it holds the room key");
                return None;
            }
            HostStep::Reject(reason) => {
                tracing::info!(%from, ?reason, "refused a guest's password");
                ClientMessage::Reject { peer: from, reason }
            }
            HostStep::Ignore => return None,
        };
        if !Self::send(ws, &msg).await {
            return Some(Lost::Retry);
        }
        None
    }

    /// Deadlines of PAKE runs: our own wait for the host, and guests that never confirmed.
    async fn pake_timeouts(&mut self, ws: &mut WsStream) -> Option<Lost> {
        let now = Instant::now();
        if self.guest_run.as_ref().is_some_and(|r| r.deadline <= now) {
            self.guest_run = None;
            let code = self.code.clone().unwrap_or_default();
            self.emit(TransportEvent::Fatal(Error::HostNotAnswering { code }))
                .await;
            return Some(Lost::Fatal);
        }
        for (peer, reason) in self.host_runs.expire(now) {
            let msg = ClientMessage::Reject {
                peer: SignalId(peer),
                reason,
            };
            if !Self::send(ws, &msg).await {
                return Some(Lost::Retry);
            }
        }
        None
    }

    async fn set_me(&mut self, number: PeerId, host: Option<PeerId>) {
        if self.me != Some(number) {
            if self.me.is_some() {
                // Our old place is gone (the grace period ran out): links made under the old
                // number would carry the wrong id, so start them all again.
                self.stop_all();
            }
            self.me = Some(number);
            self.highest = self.highest.max(number);
            self.emit(TransportEvent::Identity { me: number, host })
                .await;
        }
    }

    /// A member is (still) in the room: dial it if this side offers and no link task runs. A
    /// member back under a new signaling id (after a reclaim) keeps its number and its link.
    fn member(&mut self, sid: SignalId, number: PeerId) {
        self.numbers.insert(sid, number);
        if let Some(old) = self.ids.insert(number, sid)
            && old != sid
        {
            self.numbers.remove(&old);
        }
        self.highest = self.highest.max(number);
        if let Some(me) = self.me
            && offers(me, number)
            && !self.peers.contains_key(&number)
        {
            self.dial(number, None);
        }
    }

    async fn left(&mut self, number: PeerId) {
        if let Some(sid) = self.ids.remove(&number) {
            self.numbers.remove(&sid);
        }
        self.redial.remove(&number);
        if let Some(t) = self.peers.remove(&number) {
            t.task.abort();
        }
        self.emit(TransportEvent::Left { peer: number }).await;
    }

    /// The `auth` for our own offer or answer to `to`: `Ok(None)` without a room key, `Err`
    /// (logged; the message is not sent, and the link attempt times out and is tried again)
    /// when it cannot be signed.
    fn sign(&self, to: SignalId, kind: Kind, sdp: &str) -> Result<Option<String>, ()> {
        let Some(auth) = &self.auth else {
            return Ok(None);
        };
        let (Some(code), Some(me)) = (self.code.as_deref(), self.my_sid) else {
            tracing::warn!("an offer/answer before joining a room; not sent");
            return Err(());
        };
        let signed = bassline_trust::os::random()
            .and_then(|nonce| auth.sign(code, me.0, to.0, kind, sdp, nonce));
        match signed {
            Ok(a) => Ok(Some(a)),
            Err(e) => {
                tracing::error!(error = %e, "cannot sign our own offer/answer; not sent");
                Err(())
            }
        }
    }

    /// An offer or answer from a member: checked against the room key (when there is one)
    /// before it may reach the link. True when it was signed with the room key and passed on.
    async fn signed(
        &mut self,
        from: SignalId,
        kind: Kind,
        sdp: String,
        auth: Option<String>,
    ) -> bool {
        let Some(&peer) = self.numbers.get(&from) else {
            return false;
        };
        if !self.ready() {
            // Without the key nothing could be checked; the offering side tries again.
            tracing::info!(peer, "an offer/answer before we hold the room key; dropped");
            return false;
        }
        if let Some(checker) = self.auth.as_mut() {
            let (Some(code), Some(me)) = (self.code.as_deref(), self.my_sid) else {
                return false;
            };
            if let Err(error) = checker.check(code, from.0, me.0, kind, &sdp, auth.as_deref()) {
                // Reported as an event (the CLI prints it); the log need not say it twice.
                tracing::info!(peer, %error, "refused an offer/answer");
                // A replay repeats what was already accepted: the attempt it belongs to is
                // genuine, so only the copy is dropped.
                if error != bassline_trust::Error::Replayed {
                    self.stop_pending(peer);
                }
                self.emit(TransportEvent::Tampered {
                    peer,
                    error,
                    unsigned: auth.is_none(),
                })
                .await;
                return false;
            }
        }
        let signal = match kind {
            Kind::Offer => Signal::Offer(sdp),
            Kind::Answer => Signal::Answer(sdp),
        };
        self.signal(from, signal);
        self.auth.is_some()
    }

    /// The room password, typed by the user or handed over by a member.
    fn password(&self) -> Option<&str> {
        self.cfg
            .room
            .password()
            .or(self.learned_password.as_deref())
    }

    /// In a PAKE room, hands the password (sealed under the room key, see
    /// `bassline_trust::seal_password_share`) to a member whose offer or answer just proved it
    /// holds the key: whoever of us is elected host later can then answer password joins. Sent
    /// with every link a member makes (a reloaded page has forgotten it); one small message.
    async fn share_password(&mut self, ws: &mut WsStream, to: SignalId) -> Option<Lost> {
        if !self.pake_room {
            return None;
        }
        let (Some(me), Some(key), Some(password), Some(code)) = (
            self.my_sid,
            self.key.as_ref(),
            self.password(),
            self.code.as_deref(),
        ) else {
            return None;
        };
        let nonce = bassline_trust::os::random::<12>().ok()?;
        let Some(data) = room_pake::password_share(code, me.0, to.0, key, password, nonce) else {
            tracing::info!(%to, "the room password is too long to hand to other members");
            return None;
        };
        let msg = ClientMessage::Pake { to, data };
        if !Self::send(ws, &msg).await {
            return Some(Lost::Retry);
        }
        None
    }

    /// Stops the link attempt to `peer` unless its link is up already; the offering side dials
    /// again after its backoff.
    fn stop_pending(&mut self, peer: PeerId) {
        if self
            .peers
            .get(&peer)
            .is_some_and(|t| !t.connected.load(Ordering::Acquire))
            && let Some(t) = self.peers.remove(&peer)
        {
            t.task.abort();
            self.failed(peer, "an offer/answer was refused");
        }
    }

    /// An offer, answer or candidate from a member.
    fn signal(&mut self, from: SignalId, signal: Signal) {
        let Some(&peer) = self.numbers.get(&from) else {
            return;
        };
        if !self.peers.contains_key(&peer) {
            match (&signal, self.me) {
                // The answering side starts its link when the offer comes.
                (Signal::Offer(_), Some(me)) if !offers(me, peer) => {
                    self.dial(peer, Some(signal));
                }
                _ => {}
            }
            return;
        }
        if let Some(t) = self.peers.get(&peer) {
            // A full queue means the link task is stuck; dropping one signal is recoverable
            // (the offering side restarts ICE or redials).
            let _ = t.signals.try_send(signal);
        }
    }

    /// Starts a link task to `peer` (offering, or answering `first`).
    fn dial(&mut self, peer: PeerId, first: Option<Signal>) {
        let Some(me) = self.me else { return };
        if !self.ready() {
            // In a PAKE room no link is made before the key is ours: it could not be signed.
            return;
        }
        let (tx, rx) = mpsc::channel(64);
        if let Some(f) = first {
            let _ = tx.try_send(f);
        }
        self.generation += 1;
        let generation = self.generation;
        let mut rtc = self.cfg.rtc.clone();
        rtc.ice_servers = self.ice.clone();
        let (out, events, ended) = (
            self.out_tx.clone(),
            self.events.clone(),
            self.ended_tx.clone(),
        );
        let connected = Arc::new(AtomicBool::new(false));
        let up = connected.clone();
        let task = tokio::spawn(async move {
            let e = run_peer(rtc, peer, offers(me, peer), rx, out, events, up).await;
            let _ = ended.send((peer, generation, e)).await;
        });
        if let Some(old) = self.peers.insert(
            peer,
            PeerTask {
                signals: tx,
                task,
                generation,
                connected,
            },
        ) {
            old.task.abort();
        }
    }

    async fn on_ended(&mut self, peer: PeerId, generation: u64, ended: Ended) {
        if self
            .peers
            .get(&peer)
            .is_none_or(|t| t.generation != generation)
        {
            return;
        }
        self.peers.remove(&peer);
        match ended {
            Ended::Redial(offer) => self.dial(peer, Some(Signal::Offer(offer))),
            Ended::Failed(reason) => self.failed(peer, &reason),
            Ended::Closed => {}
        }
    }

    /// The link task to `peer` has ended without a link: the offering side dials again after
    /// a backoff, the answering side waits for the next offer.
    fn failed(&mut self, peer: PeerId, reason: &str) {
        let Some(me) = self.me else { return };
        if offers(me, peer) && self.ids.contains_key(&peer) {
            let entry = self.redial.entry(peer).or_insert_with(|| {
                (
                    Instant::now(),
                    Backoff::new(
                        Duration::from_millis(200),
                        Duration::from_secs(10),
                        random_seed(),
                    ),
                )
            });
            let delay = entry.1.next_delay();
            entry.0 = Instant::now() + delay;
            tracing::info!(peer, %reason, ?delay, "link lost; dialling again");
        } else {
            tracing::info!(peer, %reason, "link lost; the peer redials");
        }
    }

    fn stop_all(&mut self) {
        for (_, t) in self.peers.drain() {
            t.task.abort();
        }
        self.redial.clear();
    }
}

async fn sleep_or_never(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}
