//! The browser's signaling client, without I/O: what to say to the signaling server, what its
//! messages mean for the mesh, and the room-key check on every offer and answer.
//!
//! It mirrors the native transport (`bassline_net::p2p`) message for message so a browser and a
//! native peer share a room: `hello` (with the resume token after a reconnect), `create-room` or
//! `join-room`, member numbers as the session's peer ids, the higher number offers
//! ([`bassline_signal::mesh::offers`]), and with a room key every offer and answer is signed
//! and checked by [`RoomAuth`] under the same binding (signaling peer ids, the room code the
//! server confirmed, the kind). The driver (`p2p::driver`, wasm32) moves the messages and owns
//! the peer connections; this type decides.
//!
//! A room hosted with a password is a PAKE room, as natively: `create-room` says `pake` and
//! the password never goes to the server. A guest that has the password but not the key runs
//! [`bassline_signal::room_pake`] (the very code the native transport runs) with the host the
//! server names before it links to anyone; the host answers hellos only while the server
//! names it host, and refuses failed runs with `reject`.
//!
//! When the server lost our place though our WebSocket came back (it restarted), a page
//! holding the room key reclaims it: the same code and member number (`join-room.reclaim`),
//! the links kept, the members' new signaling ids mapped to their unchanged numbers.
//!
//! A member whose room the server cannot give back (no key to reclaim with, or a reclaim
//! refused for the room cap, the throttle...) keeps its links, as the native transport does
//! (`TransportStatus::RoomLost`): [`Action::RoomLost`] says so, never [`Action::Fatal`]. A
//! throttled reclaim is tried again after the `retry_after_secs` the server named
//! ([`Room::tick`]).

use std::{collections::HashMap, time::Duration};

use bassline_signal::{
    ClientMessage, ErrorCode, IceServer, PeerId as SignalId, Reclaim, ServerMessage,
    room_pake::{
        GUEST_WAIT, GuestRun, HostRuns, HostStep, PakeRole, pake_role, password_share,
        read_password_share,
    },
};
use bassline_sync::PeerId;
use bassline_trust::{Kind, NONCE_LEN, RoomKey, room_auth::RoomAuth};

/// Which room to be in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want {
    /// Create one and host it; with a password (and the room key every editor host has) the
    /// room is a PAKE room and this page checks the password of guests that lack the key.
    Create { password: Option<String> },
    /// Join one by code; the password is only ever used for the PAKE with the host.
    Join {
        code: String,
        password: Option<String>,
    },
}

/// An offer, answer or candidate, to or from one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    Offer(String),
    Answer(String),
    Candidate {
        candidate: String,
        sdp_mid: Option<String>,
        sdp_m_line_index: Option<u16>,
    },
}

/// What the driver must do after a server message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this to the signaling server.
    Send(ClientMessage),
    /// We have a place in the room under member number `me`; `created`: we made the room (and
    /// host it); `resumed`: the server gave back a place we held before (a reload).
    Identity {
        me: PeerId,
        created: bool,
        resumed: bool,
    },
    /// The room's code, as the server confirmed it.
    Code(String),
    /// `peer` is a member: link to it (the driver dials if we offer).
    Member(PeerId),
    /// `peer` left the room: drop its link.
    Gone(PeerId),
    /// An offer, answer or candidate from `peer`, checked when the room has a key.
    Signal(PeerId, Signal),
    /// An offer or answer from `peer` failed the room-key check; `replay`: it repeats one
    /// already accepted (only the copy is dropped), otherwise the pending attempt stops.
    Tampered {
        peer: PeerId,
        reason: String,
        replay: bool,
    },
    /// The server refused us for good (unknown code, wrong password, full...): what to tell.
    Fatal { code: String, message: String },
    /// We are a member, but the server lost the room (it restarted) and did not take it back:
    /// links stay up and editing goes on, only newcomers cannot join. `retry_in`: the
    /// (re)join is sent again after that long ([`Room::tick`]); `None`: not before the next
    /// signaling connection (and, without the room key, never: see [`Room::lost_for_good`]).
    RoomLost {
        code: String,
        message: String,
        retry_in: Option<Duration>,
    },
    /// The server is going away: reconnect (after a backoff).
    Reconnect,
    /// The host confirmed our password and handed over the room key: keep it (a reload
    /// rejoins with it, like a link-joined page).
    Key(RoomKey),
}

/// The signaling state of one page in one room; kept across reconnects of its WebSocket.
#[derive(Debug)]
pub struct Room {
    want: Want,
    auth: Option<RoomAuth>,
    /// The room key, when we have it (from the link, as the host, or from the PAKE).
    key: Option<RoomKey>,
    /// The room's password is checked by PAKE (`joined.pake`, or we created it so).
    pake_room: bool,
    /// The host the signaling server names (only it answers PAKE hellos).
    server_host: Option<SignalId>,
    /// Our PAKE run with the host, while we wait for its reply.
    guest_run: Option<GuestRun<Duration>>,
    /// Guests' PAKE runs while we host, and the bound on failed ones.
    host_runs: HostRuns<Duration>,
    /// The room password as a member handed it over (we came in by the link), so that we can
    /// answer password joins if we are elected host.
    learned_password: Option<String>,
    me: Option<PeerId>,
    my_sid: Option<SignalId>,
    code: Option<String>,
    token: Option<String>,
    ice: Vec<IceServer>,
    numbers: HashMap<SignalId, PeerId>,
    ids: HashMap<PeerId, SignalId>,
    /// The last `welcome` gave back an earlier place (our member number is one an earlier page
    /// of this tab used).
    resumed: bool,
    /// The highest member number seen in the room, ours included: a reclaim asks the server to
    /// number newcomers above it.
    highest: PeerId,
    /// A reclaim is on its way: the `joined` answering it lists only the members back so far.
    reclaiming: bool,
    /// [`Room::greeting`] sent the room message with `hello`: the welcome sends none.
    room_asked: bool,
    /// A `join-room` or `create-room` is on its way (an error now may be its refusal).
    joining: bool,
    /// When to send a refused (re)join again (the throttle's `retry_after_secs`).
    retry_at: Option<Duration>,
    /// The server lost the room and we cannot put it back (no room key): later connections
    /// do not ask for it again (it would come back open), they repeat this notice.
    lost_for_good: Option<(String, String)>,
}

impl Room {
    /// A page that wants `want`, with the room key when it has one; `resume` is the code and
    /// token an earlier page of this tab held (a reload), so it takes its place back.
    pub fn new(want: Want, key: Option<&RoomKey>, resume: Option<(String, String)>) -> Room {
        let (code, token) = match resume {
            Some((c, t)) => (Some(c), Some(t)),
            None => (None, None),
        };
        Room {
            want,
            auth: key.map(RoomAuth::new),
            key: key.cloned(),
            pake_room: false,
            server_host: None,
            guest_run: None,
            host_runs: HostRuns::default(),
            learned_password: None,
            me: None,
            my_sid: None,
            code,
            token,
            ice: Vec::new(),
            numbers: HashMap::new(),
            ids: HashMap::new(),
            resumed: false,
            highest: 0,
            reclaiming: false,
            room_asked: false,
            joining: false,
            retry_at: None,
            lost_for_good: None,
        }
    }

    /// The first message of every signaling connection.
    pub fn hello(&self) -> ClientMessage {
        ClientMessage::Hello {
            version: bassline_signal::PROTOCOL_VERSION,
            resume: self.token.clone(),
        }
    }

    /// What to send as a signaling connection opens: `hello`, and, with no place to resume
    /// (no token: a fresh page), the room message right behind it instead of after `welcome`.
    /// The server handles one connection's messages in order and greets a tokenless hello at
    /// once, so `welcome` still comes first, and the join costs one round trip less. With a
    /// token the welcome says whether our place is back, which decides what to send.
    pub fn greeting(&mut self) -> Vec<ClientMessage> {
        let mut out = vec![self.hello()];
        self.room_asked = self.token.is_none();
        if self.room_asked {
            out.push(self.room_message());
        }
        out
    }

    /// The `hello` of a socket opened before any room is wanted (no token: a fresh place).
    pub fn fresh_hello() -> ClientMessage {
        ClientMessage::Hello {
            version: bassline_signal::PROTOCOL_VERSION,
            resume: None,
        }
    }

    /// What to send on a socket that already said [`Room::fresh_hello`] (opened ahead): the
    /// room message, as [`Room::greeting`] would after its `hello`; `None` when we hold a
    /// token (such a socket is not used then: the welcome must decide).
    pub fn greeted(&mut self) -> Option<ClientMessage> {
        self.room_asked = self.token.is_none();
        self.room_asked.then(|| self.room_message())
    }

    /// Create the room, or (re)join the one we were in. The password never goes to the
    /// server: with the room key the members check it (PAKE).
    /// When we were a member and hold the key, (re)joining is a reclaim: the server restarted
    /// and lost the room, and we take back our number.
    fn room_message(&mut self) -> ClientMessage {
        let reclaim = self.reclaim();
        self.reclaiming = reclaim.is_some();
        self.joining = true;
        match (&self.code, &self.want) {
            (Some(code), _) | (None, Want::Join { code, .. }) => ClientMessage::JoinRoom {
                code: code.clone(),
                password: None,
                reclaim,
            },
            (None, Want::Create { password }) => ClientMessage::CreateRoom {
                password: None,
                max_peers: None,
                pake: password.is_some() && self.key.is_some(),
            },
        }
    }

    pub fn me(&self) -> Option<PeerId> {
        self.me
    }

    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn ice_servers(&self) -> &[IceServer] {
        &self.ice
    }

    /// Whether offers and answers are signed and checked (the room has a key here).
    pub fn keyed(&self) -> bool {
        self.auth.is_some()
    }

    /// The members we know of, besides us; none until we may link (in a PAKE room, once we
    /// hold its key).
    pub fn members(&self) -> Vec<PeerId> {
        if !self.ready() {
            return Vec::new();
        }
        let mut m: Vec<PeerId> = self.ids.keys().copied().collect();
        m.sort_unstable();
        m
    }

    /// Whether we send the offer on the link to `peer`.
    pub fn offers_to(&self, peer: PeerId) -> bool {
        self.me
            .is_some_and(|me| bassline_signal::mesh::offers(me, peer))
    }

    /// Whether links may be made: always, except in a PAKE room before we hold its key.
    fn ready(&self) -> bool {
        self.key.is_some() || !self.pake_room
    }

    /// The room password: typed on this page, or handed over by a member.
    fn password(&self) -> Option<&str> {
        match &self.want {
            Want::Create { password } | Want::Join { password, .. } => password.as_deref(),
        }
        .or(self.learned_password.as_deref())
    }

    /// In a PAKE room, hands the password (sealed under the room key, see
    /// `bassline_trust::seal_password_share`) to a member whose offer or answer just proved it
    /// holds the key, so that whoever is elected host later can answer password joins. Sent
    /// with every link (a reloaded page has forgotten it); one small message.
    fn share_password(&self, to: SignalId, out: &mut Vec<Action>) {
        if !self.pake_room {
            return;
        }
        let (Some(me), Some(key), Some(password), Some(code)) = (
            self.my_sid,
            self.key.as_ref(),
            self.password(),
            self.code.as_deref(),
        ) else {
            return;
        };
        let Ok(nonce) = bassline_trust::os::random::<12>() else {
            return;
        };
        // A password too long to share stays with the pages that typed it.
        if let Some(data) = password_share(code, me.0, to.0, key, password, nonce) {
            out.push(Action::Send(ClientMessage::Pake { to, data }));
        }
    }

    /// Takes in one message from the server at `now` (any monotonic clock: the page's
    /// `performance.now()`).
    pub fn on_server(&mut self, msg: ServerMessage, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
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
                self.resumed = resumed;
                if !ice_servers.is_empty() || !resumed {
                    self.ice = ice_servers;
                }
                // This connection asks again (or has nothing to ask): no retry pending.
                self.retry_at = None;
                // A fresh place: create the room, or (re)join the one we were in, unless the
                // greeting already asked; not a room lost for good (it would come back open).
                if !resumed && !std::mem::take(&mut self.room_asked) {
                    match self.lost_for_good.clone() {
                        Some((code, message)) => out.push(Action::RoomLost {
                            code,
                            message,
                            retry_in: None,
                        }),
                        None => out.push(Action::Send(self.room_message())),
                    }
                }
            }
            ServerMessage::RoomCreated { code, number, .. } => {
                self.joining = false;
                self.server_host = self.my_sid;
                self.pake_room = self.key.is_some() && self.password().is_some();
                self.code = Some(code.to_string());
                out.push(Action::Code(code.to_string()));
                self.set_me(number, true, false, &mut out);
            }
            ServerMessage::Joined {
                code,
                members,
                numbers,
                number,
                host,
                pake,
            } => {
                self.joining = false;
                self.lost_for_good = None;
                self.server_host = Some(host);
                self.pake_room = pake;
                let resumed = self.resumed;
                self.code = Some(code.to_string());
                out.push(Action::Code(code.to_string()));
                self.set_me(number, false, resumed, &mut out);
                let current: HashMap<SignalId, PeerId> = members.into_iter().zip(numbers).collect();
                // After a reclaim the others come back one by one (`peer-joined`): one missing
                // here is not gone, and one that really left has its link close anyway.
                if !std::mem::take(&mut self.reclaiming) {
                    let gone: Vec<PeerId> = self
                        .ids
                        .keys()
                        .copied()
                        .filter(|n| !current.values().any(|m| m == n))
                        .collect();
                    for g in gone {
                        self.left(g, &mut out);
                    }
                }
                let mut members_now: Vec<(SignalId, PeerId)> = current.into_iter().collect();
                members_now.sort_by_key(|(_, n)| *n);
                for (sid, n) in members_now {
                    if Some(n) != self.me {
                        self.member(sid, n, &mut out);
                    }
                }
                self.start_guest_run(now, &mut out);
            }
            ServerMessage::PeerJoined { peer, number } => self.member(peer, number, &mut out),
            ServerMessage::PeerLeft { peer } => {
                self.host_runs.forget(peer.0);
                if let Some(&n) = self.numbers.get(&peer) {
                    self.left(n, &mut out);
                }
            }
            ServerMessage::Offer { from, sdp, auth } => {
                self.signed(from, Kind::Offer, sdp, auth, &mut out)
            }
            ServerMessage::Answer { from, sdp, auth } => {
                self.signed(from, Kind::Answer, sdp, auth, &mut out)
            }
            ServerMessage::Candidate {
                from,
                candidate,
                sdp_mid,
                sdp_m_line_index,
            } => {
                if let Some(&peer) = self.numbers.get(&from) {
                    out.push(Action::Signal(
                        peer,
                        Signal::Candidate {
                            candidate,
                            sdp_mid,
                            sdp_m_line_index,
                        },
                    ));
                }
            }
            // The answer to our (re)join while we are a member (relays to members not back
            // yet may fail meanwhile: those errors are not it).
            ServerMessage::Error {
                code,
                message,
                retry_after_secs,
            } if self.joining
                && self.me.is_some()
                && !matches!(
                    code,
                    ErrorCode::UnknownPeer | ErrorCode::NotInRoom | ErrorCode::RateLimited
                ) =>
            {
                self.rejoin_refused(code, &message, retry_after_secs, now, &mut out)
            }
            ServerMessage::Error { code, message, .. } => {
                let room = self.room_name();
                // In a PAKE room these come from our host (the server only passed them on).
                if self.pake_room && self.key.is_none() {
                    let message = match code {
                        ErrorCode::WrongPassword => Some(format!(
                            "room {room}: wrong password (the host checked it; the server never \
                             sees it)"
                        )),
                        ErrorCode::TooManyAttempts => Some(format!(
                            "the host of room {room} refuses password attempts for now, after \
                             too many wrong ones; wait a minute and try again"
                        )),
                        _ => None,
                    };
                    if let Some(message) = message {
                        out.push(Action::Fatal {
                            code: code.as_str().to_owned(),
                            message,
                        });
                        return out;
                    }
                }
                let fatal = matches!(
                    code,
                    ErrorCode::RoomNotFound
                        | ErrorCode::WrongPassword
                        | ErrorCode::BadCode
                        | ErrorCode::RoomFull
                        | ErrorCode::TooManyAttempts
                        | ErrorCode::TooManyRooms
                        | ErrorCode::UnsupportedVersion
                        | ErrorCode::InvalidMaxPeers
                );
                if fatal {
                    out.push(Action::Fatal {
                        code: code.as_str().to_owned(),
                        message: self.explain(code, &message),
                    });
                }
            }
            ServerMessage::RoomClosed { .. } => out.push(Action::Fatal {
                code: "room-closed".into(),
                message: "the room closed after an hour without activity; host a new one".into(),
            }),
            ServerMessage::Shutdown { .. } => out.push(Action::Reconnect),
            ServerMessage::HostChanged { host } => {
                self.server_host = Some(host);
                // A run with the old host can no longer finish: run again with the new one.
                if self.guest_run.as_ref().is_some_and(|r| r.host != host.0) {
                    self.start_guest_run(now, &mut out);
                }
            }
            ServerMessage::Pake { from, data } => self.on_pake(from, &data, now, &mut out),
            ServerMessage::Left { .. } => {}
        }
        out
    }

    /// The signaling connection closed: a retry planned on it is moot (the next `welcome`
    /// asks for the room anyway), and nothing is on its way any more.
    pub fn signaling_lost(&mut self) {
        self.retry_at = None;
        self.joining = false;
    }

    /// The server lost the room and this page cannot put it back (it has no room key).
    pub fn lost_for_good(&self) -> bool {
        self.lost_for_good.is_some()
    }

    /// The server refused our (re)join while we are a member of the room, with links to keep.
    /// Our number held by someone else: join as a new member (the links start again under
    /// the new number). Anything else (the room unknown and no key to re-create it with, the
    /// room cap, the throttle...): keep the links and say the room is lost on the server;
    /// with a `retry_after_secs`, ask again then.
    fn rejoin_refused(
        &mut self,
        code: ErrorCode,
        message: &str,
        retry_after_secs: Option<u64>,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        self.joining = false;
        if code == ErrorCode::NumberTaken && std::mem::take(&mut self.reclaiming) {
            self.joining = true;
            out.push(Action::Send(ClientMessage::JoinRoom {
                code: self.room_name(),
                password: None,
                reclaim: None,
            }));
            return;
        }
        self.reclaiming = false;
        let room = self.room_name();
        if code == ErrorCode::RoomNotFound && self.key.is_none() {
            let message = format!(
                "The signaling server restarted and no longer knows room {room}. Everyone \
                 already connected stays connected and keeps editing; nobody new can join (only \
                 a member holding the room key can put a room back, and this page joined by \
                 the code alone). Host a new room to invite others."
            );
            self.lost_for_good = Some((code.as_str().to_owned(), message.clone()));
            out.push(Action::RoomLost {
                code: code.as_str().to_owned(),
                message,
                retry_in: None,
            });
            return;
        }
        let retry_in = retry_after_secs.map(|s| Duration::from_secs(s.max(1)));
        self.retry_at = retry_in.map(|d| now + d);
        let next = match retry_in {
            Some(d) => format!("Trying again in {} s.", d.as_secs()),
            None => "It is tried again when the signaling connection is next made; to invite \
                     others now, host a new room."
                .to_owned(),
        };
        out.push(Action::RoomLost {
            code: code.as_str().to_owned(),
            message: format!(
                "The signaling server restarted and refused to put room {room} back ({}: \
                 {message}). Everyone already connected stays connected and keeps editing; \
                 nobody new can join until it is back. {next}",
                code.as_str()
            ),
            retry_in,
        });
    }

    /// The deadlines at `now`: a refused (re)join to send again, our own PAKE wait for the
    /// host, and guests that never confirmed (each refused, so the server counts it too).
    pub fn tick(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.retry_at.is_some_and(|at| at <= now) {
            self.retry_at = None;
            out.push(Action::Send(self.room_message()));
        }
        if self.guest_run.as_ref().is_some_and(|r| r.deadline <= now) {
            self.guest_run = None;
            out.push(Action::Fatal {
                code: "host-not-answering".into(),
                message: format!(
                    "the host of room {} did not answer the password check within {}s; check \
                     that the host is still there and try again",
                    self.room_name(),
                    GUEST_WAIT.as_secs()
                ),
            });
        }
        for (peer, reason) in self.host_runs.expire(now) {
            out.push(Action::Send(ClientMessage::Reject {
                peer: SignalId(peer),
                reason,
            }));
        }
        out
    }

    /// The room's code as the server confirmed it, else as typed.
    fn room_name(&self) -> String {
        self.code
            .clone()
            .or_else(|| match &self.want {
                Want::Join { code, .. } => Some(code.trim().to_ascii_uppercase()),
                Want::Create { .. } => None,
            })
            .unwrap_or_default()
    }

    /// In a PAKE room without the key: (re)starts our run with the server's host.
    fn start_guest_run(&mut self, now: Duration, out: &mut Vec<Action>) {
        if self.ready() {
            return;
        }
        let room = self.room_name();
        let Some(password) = self.password().map(str::to_owned) else {
            out.push(Action::Fatal {
                code: "password-required".into(),
                message: format!(
                    "room {room} needs its password (type it next to the code) or the join \
                     link the host shows"
                ),
            });
            return;
        };
        let (Some(me), Some(host)) = (self.my_sid, self.server_host) else {
            return;
        };
        let seed = match bassline_trust::os::random() {
            Ok(s) => s,
            Err(e) => {
                out.push(Action::Fatal {
                    code: "no-random".into(),
                    message: format!("cannot run the password check: {e}"),
                });
                return;
            }
        };
        let (run, hello) = GuestRun::start(now, &room, me.0, host.0, &password, seed);
        self.guest_run = Some(run);
        out.push(Action::Send(ClientMessage::Pake {
            to: host,
            data: hello,
        }));
    }

    /// A `pake` message: the host's reply to our run, or (as the server's host holding the
    /// key and the password) a guest's hello or confirmation. Anything else is ignored.
    fn on_pake(&mut self, from: SignalId, data: &str, now: Duration, out: &mut Vec<Action>) {
        let code = self.code.clone().unwrap_or_default();
        let me = self.my_sid.unwrap_or(from).0;
        if let Some(share) = read_password_share(&code, me, from.0, self.key.as_ref(), data) {
            // A member handed us the password (we came in by the link): keep it.
            if let Ok(password) = share
                && self.password().is_none()
            {
                self.learned_password = Some(password);
            }
            return;
        }
        let can_answer = self.key.is_some() && self.password().is_some();
        let role = pake_role(
            self.guest_run.as_ref().map(|r| r.host),
            from.0,
            self.my_sid.map(|s| s.0),
            self.server_host.map(|s| s.0),
            can_answer,
        );
        match role {
            PakeRole::Ignore => {}
            PakeRole::Guest => {
                let Some(run) = self.guest_run.take() else {
                    return;
                };
                match run.on_reply(data) {
                    Ok((key, confirm)) => {
                        self.auth = Some(RoomAuth::new(&key));
                        self.key = Some(key.clone());
                        out.push(Action::Send(ClientMessage::Pake {
                            to: from,
                            data: confirm,
                        }));
                        out.push(Action::Key(key));
                        for n in self.members() {
                            out.push(Action::Member(n));
                        }
                    }
                    Err((error, abort)) => {
                        out.push(Action::Send(ClientMessage::Pake {
                            to: from,
                            data: abort,
                        }));
                        let room = self.room_name();
                        out.push(match error {
                            bassline_trust::Error::WrongPassword => Action::Fatal {
                                code: "wrong-password".into(),
                                message: format!(
                                    "room {room}: wrong password (the host checked it; the \
                                     server never sees it)"
                                ),
                            },
                            other => Action::Fatal {
                                code: "pake-failed".into(),
                                message: format!(
                                    "the host's answer to the password check was unusable \
                                     ({other}); the signaling path may have altered it"
                                ),
                            },
                        });
                    }
                }
            }
            PakeRole::Host => {
                let (Some(me), Some(key), Some(password), Some(code)) = (
                    self.my_sid,
                    self.key.clone(),
                    self.password().map(str::to_owned),
                    self.code.clone(),
                ) else {
                    return;
                };
                let Ok(seed) = bassline_trust::os::random() else {
                    return;
                };
                let step = self
                    .host_runs
                    .on_message(now, &code, me.0, from.0, &password, &key, data, seed);
                match step {
                    HostStep::Reply(data) => {
                        out.push(Action::Send(ClientMessage::Pake { to: from, data }))
                    }
                    HostStep::Reject(reason) => {
                        out.push(Action::Send(ClientMessage::Reject { peer: from, reason }))
                    }
                    HostStep::Admitted | HostStep::Ignore => {}
                }
            }
        }
    }

    /// The server's own text says what to do; the room code is added so the person sees which.
    fn explain(&self, code: ErrorCode, message: &str) -> String {
        let room = self.code.clone().or_else(|| match &self.want {
            Want::Join { code, .. } => Some(code.trim().to_ascii_uppercase()),
            Want::Create { .. } => None,
        });
        match (code, room) {
            (
                ErrorCode::RoomNotFound
                | ErrorCode::WrongPassword
                | ErrorCode::RoomFull
                | ErrorCode::BadCode,
                Some(room),
            ) => format!("room {room}: {message}"),
            _ => message.to_owned(),
        }
    }

    /// Our claim to the place we held (`bassline_signal::mesh::reclaim` says when we have one).
    fn reclaim(&self) -> Option<Reclaim> {
        bassline_signal::mesh::reclaim(self.me, self.key.is_some(), self.highest, self.pake_room)
    }

    fn set_me(&mut self, number: PeerId, created: bool, resumed: bool, out: &mut Vec<Action>) {
        self.highest = self.highest.max(number);
        if self.me != Some(number) {
            self.me = Some(number);
            out.push(Action::Identity {
                me: number,
                created,
                resumed,
            });
        }
    }

    /// A member is (still) in the room; one back under a new signaling id (after a reclaim)
    /// keeps its number and its link.
    fn member(&mut self, sid: SignalId, number: PeerId, out: &mut Vec<Action>) {
        self.numbers.insert(sid, number);
        if let Some(old) = self.ids.insert(number, sid)
            && old != sid
        {
            self.numbers.remove(&old);
        }
        self.highest = self.highest.max(number);
        if self.ready() {
            out.push(Action::Member(number));
        }
    }

    fn left(&mut self, number: PeerId, out: &mut Vec<Action>) {
        if let Some(sid) = self.ids.remove(&number) {
            self.numbers.remove(&sid);
        }
        out.push(Action::Gone(number));
    }

    fn signed(
        &mut self,
        from: SignalId,
        kind: Kind,
        sdp: String,
        auth: Option<String>,
        out: &mut Vec<Action>,
    ) {
        let Some(&peer) = self.numbers.get(&from) else {
            return;
        };
        if let Some(checker) = self.auth.as_mut() {
            let (Some(code), Some(me)) = (self.code.as_deref(), self.my_sid) else {
                return;
            };
            if let Err(error) = checker.check(code, from.0, me.0, kind, &sdp, auth.as_deref()) {
                let reason = if auth.is_none() {
                    format!(
                        "member {peer} sent an unsigned {}: it has no room key (joined by \
                         code without the link?), or the signaling path stripped it",
                        kind_name(kind)
                    )
                } else {
                    format!(
                        "member {peer}'s {} failed the room-key check: {error}",
                        kind_name(kind)
                    )
                };
                out.push(Action::Tampered {
                    peer,
                    reason,
                    replay: error == bassline_trust::Error::Replayed,
                });
                return;
            }
        }
        let signal = match kind {
            Kind::Offer => Signal::Offer(sdp),
            Kind::Answer => Signal::Answer(sdp),
        };
        out.push(Action::Signal(peer, signal));
        if self.auth.is_some() {
            self.share_password(from, out);
        }
    }

    /// The message carrying our `signal` to `peer`, signed when the room has a key; `None`
    /// when `peer` is not (or no longer) a member or it cannot be signed (the attempt then
    /// times out and is tried again). `nonce` must be fresh random bytes.
    pub fn outgoing(
        &self,
        peer: PeerId,
        signal: Signal,
        nonce: [u8; NONCE_LEN],
    ) -> Option<ClientMessage> {
        let to = *self.ids.get(&peer)?;
        let sign = |kind, sdp: &str| -> Option<Option<String>> {
            let Some(auth) = &self.auth else {
                return Some(None);
            };
            let code = self.code.as_deref()?;
            let me = self.my_sid?;
            auth.sign(code, me.0, to.0, kind, sdp, nonce).ok().map(Some)
        };
        Some(match signal {
            Signal::Offer(sdp) => ClientMessage::Offer {
                to,
                auth: sign(Kind::Offer, &sdp)?,
                sdp,
            },
            Signal::Answer(sdp) => ClientMessage::Answer {
                to,
                auth: sign(Kind::Answer, &sdp)?,
                sdp,
            },
            Signal::Candidate {
                candidate,
                sdp_mid,
                sdp_m_line_index,
            } => ClientMessage::Candidate {
                to,
                candidate,
                sdp_mid,
                sdp_m_line_index,
            },
        })
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Offer => "offer",
        Kind::Answer => "answer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bassline_signal::RoomCode;

    const SDP: &str = "v=0\r\na=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n";

    const T0: Duration = Duration::from_secs(1);

    fn welcome(sid: u64) -> ServerMessage {
        ServerMessage::Welcome {
            version: 1,
            peer_id: SignalId(sid),
            resume_token: format!("tok{sid}"),
            resumed: false,
            ice_servers: Vec::new(),
        }
    }

    fn code() -> RoomCode {
        RoomCode::parse("A3B7K9").unwrap()
    }

    /// A host (signaling id 10, member 1) and a guest (20, member 2) who both hold the key.
    fn pair(key: Option<&RoomKey>) -> (Room, Room) {
        let mut host = Room::new(Want::Create { password: None }, key, None);
        let acts = host.on_server(welcome(10), T0);
        assert!(matches!(
            &acts[..],
            [Action::Send(ClientMessage::CreateRoom { .. })]
        ));
        let acts = host.on_server(
            ServerMessage::RoomCreated {
                code: code(),
                max_peers: 8,
                number: 1,
            },
            T0,
        );
        assert!(acts.contains(&Action::Identity {
            me: 1,
            created: true,
            resumed: false
        }));
        let mut guest = Room::new(
            Want::Join {
                code: "a3b7k9".into(),
                password: None,
            },
            key,
            None,
        );
        let acts = guest.on_server(welcome(20), T0);
        assert_eq!(
            acts,
            vec![Action::Send(ClientMessage::JoinRoom {
                code: "a3b7k9".into(),
                password: None,
                reclaim: None,
            })]
        );
        let acts = guest.on_server(
            ServerMessage::Joined {
                code: code(),
                members: vec![SignalId(10), SignalId(20)],
                numbers: vec![1, 2],
                host: SignalId(10),
                number: 2,
                pake: false,
            },
            T0,
        );
        assert!(acts.contains(&Action::Member(1)), "{acts:?}");
        host.on_server(
            ServerMessage::PeerJoined {
                peer: SignalId(20),
                number: 2,
            },
            T0,
        );
        (host, guest)
    }

    fn relay(msg: ClientMessage, from: u64) -> ServerMessage {
        match msg {
            ClientMessage::Offer { sdp, auth, .. } => ServerMessage::Offer {
                from: SignalId(from),
                sdp,
                auth,
            },
            ClientMessage::Answer { sdp, auth, .. } => ServerMessage::Answer {
                from: SignalId(from),
                sdp,
                auth,
            },
            other => panic!("not relayed here: {other:?}"),
        }
    }

    #[test]
    fn a_page_that_came_in_by_link_gets_the_password_and_answers_password_joins_as_host() {
        let key = RoomKey::from_bytes([4; 32]);
        let mut host = pake_host(&key);
        // The guest opened the join link: the key, no password.
        let (mut guest, _) = pake_guest(Some(&key), None);
        assert_eq!(guest.password(), None);

        // Its signed offer proves it holds the key: the host hands it the password, sealed.
        let offer = guest
            .outgoing(1, Signal::Offer(SDP.into()), [1; 16])
            .unwrap();
        let acts = host.on_server(relay(offer, 20), T0);
        let shares = pake_relay(&acts, 10);
        assert_eq!(shares.len(), 1, "one share for the member: {acts:?}");
        assert!(
            !format!("{shares:?}").contains("right"),
            "the share is sealed"
        );
        assert!(guest.on_server(shares[0].clone(), T0).is_empty());
        assert_eq!(guest.password(), Some("right"));

        // The host leaves; the server names the guest host; a newcomer runs the PAKE with it.
        guest.on_server(ServerMessage::HostChanged { host: SignalId(20) }, T0);
        let (run, hello) = GuestRun::start(T0, "A3B7K9", 30, 20, "right", [7; 32]);
        let acts = guest.on_server(
            ServerMessage::Pake {
                from: SignalId(30),
                data: hello,
            },
            T0,
        );
        let reply = acts
            .iter()
            .find_map(|a| match a {
                Action::Send(ClientMessage::Pake { to, data }) if *to == SignalId(30) => {
                    Some(data.clone())
                }
                _ => None,
            })
            .expect("the new host answers the newcomer's hello");
        let (got, _confirm) = run
            .on_reply(&reply)
            .expect("the right password is confirmed");
        assert_eq!(got, key, "the newcomer holds the room key");
    }

    #[test]
    fn a_share_under_another_key_teaches_nothing() {
        let key = RoomKey::from_bytes([4; 32]);
        let (mut guest, _) = pake_guest(Some(&key), None);
        let ctx = bassline_trust::PakeContext {
            room_code: "A3B7K9",
            guest: 20,
            host: 10,
        };
        let forged = bassline_trust::seal_password_share(
            &ctx,
            &RoomKey::from_bytes([5; 32]),
            "chosen by the server",
            [0; 12],
        )
        .unwrap();
        guest.on_server(
            ServerMessage::Pake {
                from: SignalId(10),
                data: bassline_trust::pake_message_to_text(&forged),
            },
            T0,
        );
        assert_eq!(guest.password(), None);
    }

    #[test]
    fn the_newcomer_offers_and_a_signed_offer_is_accepted_once() {
        let key = RoomKey::from_bytes([4; 32]);
        let (mut host, guest) = pair(Some(&key));
        assert!(guest.offers_to(1) && !host.offers_to(2));
        let offer = guest
            .outgoing(1, Signal::Offer(SDP.into()), [1; 16])
            .unwrap();
        let relayed = relay(offer, 20);
        assert_eq!(
            host.on_server(relayed.clone(), T0),
            vec![Action::Signal(2, Signal::Offer(SDP.into()))]
        );
        assert!(matches!(
            &host.on_server(relayed, T0)[..],
            [Action::Tampered {
                peer: 2,
                replay: true,
                ..
            }]
        ));
    }

    #[test]
    fn an_offer_under_another_key_or_unsigned_is_tampered() {
        let key = RoomKey::from_bytes([4; 32]);
        let (mut host, _) = pair(Some(&key));
        let (_, impostor) = pair(Some(&RoomKey::from_bytes([5; 32])));
        let forged = impostor
            .outgoing(1, Signal::Offer(SDP.into()), [2; 16])
            .unwrap();
        assert!(matches!(
            &host.on_server(relay(forged, 20), T0)[..],
            [Action::Tampered {
                peer: 2,
                replay: false,
                ..
            }]
        ));
        let (_, keyless) = pair(None);
        let unsigned = keyless
            .outgoing(1, Signal::Offer(SDP.into()), [3; 16])
            .unwrap();
        match &host.on_server(relay(unsigned, 20), T0)[..] {
            [Action::Tampered { reason, .. }] => assert!(reason.contains("unsigned"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_fresh_page_asks_for_its_room_with_hello_and_a_resuming_one_waits_for_welcome() {
        let mut fresh = Room::new(
            Want::Join {
                code: "A3B7K9".into(),
                password: None,
            },
            None,
            None,
        );
        assert_eq!(
            fresh.greeting(),
            vec![
                ClientMessage::Hello {
                    version: 1,
                    resume: None
                },
                ClientMessage::JoinRoom {
                    code: "A3B7K9".into(),
                    password: None,
                    reclaim: None
                }
            ]
        );
        assert!(
            fresh.on_server(welcome(20), T0).is_empty(),
            "the join went with hello: the welcome sends it no second time"
        );
        // A reconnect with a token: the welcome decides (here: the place expired, rejoin).
        assert_eq!(fresh.greeting().len(), 1, "hello alone");
        assert_eq!(
            fresh.on_server(welcome(21), T0),
            vec![Action::Send(ClientMessage::JoinRoom {
                code: "A3B7K9".into(),
                password: None,
                reclaim: None
            })]
        );
        let mut host = Room::new(Want::Create { password: None }, None, None);
        assert!(matches!(
            &host.greeting()[..],
            [
                ClientMessage::Hello { .. },
                ClientMessage::CreateRoom { .. }
            ]
        ));
        // A socket opened ahead said hello already: the room message alone, and the welcome
        // (held until now, handled after it) sends nothing more.
        let mut ahead = Room::new(Want::Create { password: None }, None, None);
        assert!(matches!(
            ahead.greeted(),
            Some(ClientMessage::CreateRoom { .. })
        ));
        assert!(ahead.on_server(welcome(30), T0).is_empty());
    }

    #[test]
    fn server_refusals_are_fatal_with_the_room_named() {
        let mut guest = Room::new(
            Want::Join {
                code: "zzzzzz".into(),
                password: None,
            },
            None,
            None,
        );
        guest.on_server(welcome(20), T0);
        let acts = guest.on_server(
            ServerMessage::Error {
                code: ErrorCode::RoomNotFound,
                message: "no room with this code".into(),
                retry_after_secs: None,
            },
            T0,
        );
        assert_eq!(
            acts,
            vec![Action::Fatal {
                code: "room-not-found".into(),
                message: "room ZZZZZZ: no room with this code".into()
            }]
        );
    }

    #[test]
    fn a_resumed_place_keeps_the_number_and_a_lost_one_rejoins_by_code() {
        let mut again = Room::new(
            Want::Join {
                code: "A3B7K9".into(),
                password: None,
            },
            None,
            Some(("A3B7K9".into(), "tok20".into())),
        );
        assert_eq!(
            again.hello(),
            ClientMessage::Hello {
                version: 1,
                resume: Some("tok20".into())
            }
        );
        let mut w = welcome(20);
        if let ServerMessage::Welcome { resumed, .. } = &mut w {
            *resumed = true;
        }
        assert!(
            again.on_server(w, T0).is_empty(),
            "a resumed place sends nothing"
        );
        let acts = again.on_server(
            ServerMessage::Joined {
                code: code(),
                members: vec![SignalId(10), SignalId(20)],
                numbers: vec![1, 2],
                host: SignalId(10),
                number: 2,
                pake: false,
            },
            T0,
        );
        assert!(acts.contains(&Action::Identity {
            me: 2,
            created: false,
            resumed: true
        }));
        // A host whose place expired joins its room again rather than creating another.
        let mut host = Room::new(
            Want::Create { password: None },
            None,
            Some(("A3B7K9".into(), "old".into())),
        );
        assert!(matches!(
            &host.on_server(welcome(11), T0)[..],
            [Action::Send(ClientMessage::JoinRoom { code, .. })] if code == "A3B7K9"
        ));
    }

    #[test]
    fn after_a_server_restart_a_keyed_page_reclaims_its_number_and_keeps_its_members() {
        let key = RoomKey::from_bytes([4; 32]);
        let (mut host, mut guest) = pair(Some(&key));
        // A newcomer (member 3) came and left: numbering must go on above it.
        host.on_server(
            ServerMessage::PeerJoined {
                peer: SignalId(30),
                number: 3,
            },
            T0,
        );
        host.on_server(ServerMessage::PeerLeft { peer: SignalId(30) }, T0);

        // The server restarted: neither token resumes, every signaling id is new.
        let acts = host.on_server(welcome(11), T0);
        assert_eq!(
            acts,
            vec![Action::Send(ClientMessage::JoinRoom {
                code: "A3B7K9".into(),
                password: None,
                reclaim: Some(Reclaim {
                    number: 1,
                    next: 4,
                    pake: false
                }),
            })]
        );
        // The room is re-created with the host alone: the guest is not gone, nor renumbered.
        let acts = host.on_server(
            ServerMessage::Joined {
                code: code(),
                members: vec![SignalId(11)],
                numbers: vec![1],
                host: SignalId(11),
                number: 1,
                pake: false,
            },
            T0,
        );
        assert!(
            !acts
                .iter()
                .any(|a| matches!(a, Action::Gone(_) | Action::Identity { .. })),
            "{acts:?}"
        );
        assert_eq!(host.members(), vec![2]);

        let acts = guest.on_server(welcome(21), T0);
        assert!(
            matches!(
                &acts[..],
                [Action::Send(ClientMessage::JoinRoom {
                    reclaim: Some(Reclaim {
                        number: 2,
                        next: 3,
                        ..
                    }),
                    ..
                })]
            ),
            "{acts:?}"
        );
        let acts = guest.on_server(
            ServerMessage::Joined {
                code: code(),
                members: vec![SignalId(11), SignalId(21)],
                numbers: vec![1, 2],
                host: SignalId(11),
                number: 2,
                pake: false,
            },
            T0,
        );
        assert!(!acts.iter().any(|a| matches!(a, Action::Identity { .. })));
        host.on_server(
            ServerMessage::PeerJoined {
                peer: SignalId(21),
                number: 2,
            },
            T0,
        );

        // Offers and answers bind the new ids: the guest's signed offer from 21 is member 2's,
        // and one still claiming the old id 20 is no member's.
        let offer = guest
            .outgoing(1, Signal::Offer(SDP.into()), [1; 16])
            .unwrap();
        assert!(matches!(&offer, ClientMessage::Offer { to, .. } if *to == SignalId(11)));
        assert!(host.on_server(relay(offer.clone(), 20), T0).is_empty());
        assert_eq!(
            host.on_server(relay(offer, 21), T0),
            vec![Action::Signal(2, Signal::Offer(SDP.into()))]
        );

        // A page without the key cannot reclaim (the room would come back open): a plain join.
        let (mut keyless, _) = pair(None);
        assert!(matches!(
            &keyless.on_server(welcome(12), T0)[..],
            [Action::Send(ClientMessage::JoinRoom { reclaim: None, .. })]
        ));
    }

    #[test]
    fn a_page_whose_number_is_taken_joins_as_a_new_member() {
        let key = RoomKey::from_bytes([4; 32]);
        let (_, mut guest) = pair(Some(&key));
        guest.on_server(welcome(21), T0);
        let acts = guest.on_server(
            ServerMessage::Error {
                code: ErrorCode::NumberTaken,
                message: "taken".into(),
                retry_after_secs: None,
            },
            T0,
        );
        assert_eq!(
            acts,
            vec![Action::Send(ClientMessage::JoinRoom {
                code: "A3B7K9".into(),
                password: None,
                reclaim: None,
            })]
        );
    }

    fn refusal(code: ErrorCode, retry_after_secs: Option<u64>) -> ServerMessage {
        ServerMessage::Error {
            code,
            message: format!("refused: {}", code.as_str()),
            retry_after_secs,
        }
    }

    /// No action tears the room or a link down.
    fn keeps_everything(acts: &[Action]) {
        assert!(
            !acts.iter().any(|a| matches!(
                a,
                Action::Fatal { .. } | Action::Gone(_) | Action::Identity { .. }
            )),
            "{acts:?}"
        );
    }

    #[test]
    fn after_a_restart_a_keyless_member_keeps_its_links_when_the_server_lost_the_room() {
        let (mut host, mut guest) = pair(None);
        for (room, sid, me, other) in [(&mut host, 11, 1, 2), (&mut guest, 21, 2, 1)] {
            // No key, so no reclaim: a plain rejoin, which the restarted server cannot place.
            assert!(matches!(
                &room.on_server(welcome(sid), T0)[..],
                [Action::Send(ClientMessage::JoinRoom { reclaim: None, code, .. })]
                    if code == "A3B7K9"
            ));
            let acts = room.on_server(refusal(ErrorCode::RoomNotFound, None), T0);
            keeps_everything(&acts);
            match &acts[..] {
                [
                    Action::RoomLost {
                        code,
                        message,
                        retry_in: None,
                    },
                ] => {
                    assert_eq!(code, "room-not-found");
                    assert!(
                        message.contains("no longer knows room A3B7K9")
                            && message.contains("stays connected")
                            && message.contains("Host a new room"),
                        "{message}"
                    );
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(room.me(), Some(me));
            assert_eq!(room.members(), vec![other], "the member is still linked");
            assert!(room.lost_for_good());
            // Nothing is retried (the room would come back open), and a later connection
            // repeats the notice instead of asking again.
            assert!(room.tick(T0 + Duration::from_secs(3600)).is_empty());
            let again = room.on_server(welcome(sid + 1), T0);
            keeps_everything(&again);
            assert!(
                matches!(&again[..], [Action::RoomLost { code, .. }] if code == "room-not-found"),
                "{again:?}"
            );
        }
    }

    #[test]
    fn a_throttled_reclaim_keeps_the_links_and_is_tried_again_after_the_wait() {
        let key = RoomKey::from_bytes([4; 32]);
        let (_, mut guest) = pair(Some(&key));
        guest.on_server(welcome(21), T0);
        let acts = guest.on_server(refusal(ErrorCode::TooManyAttempts, Some(42)), T0);
        keeps_everything(&acts);
        match &acts[..] {
            [
                Action::RoomLost {
                    code,
                    message,
                    retry_in,
                },
            ] => {
                assert_eq!(code, "too-many-attempts");
                assert_eq!(*retry_in, Some(Duration::from_secs(42)));
                assert!(
                    message.contains("room A3B7K9")
                        && message.contains("stays connected")
                        && message.contains("Trying again in 42 s"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(guest.members(), vec![1]);
        assert!(!guest.lost_for_good());
        // A relay to a member not back yet failing meanwhile is not the answer.
        assert!(
            guest
                .on_server(refusal(ErrorCode::UnknownPeer, None), T0)
                .is_empty()
        );
        assert!(guest.tick(T0 + Duration::from_secs(41)).is_empty());
        assert_eq!(
            guest.tick(T0 + Duration::from_secs(42)),
            vec![Action::Send(ClientMessage::JoinRoom {
                code: "A3B7K9".into(),
                password: None,
                reclaim: Some(Reclaim {
                    number: 2,
                    next: 3,
                    pake: false
                }),
            })]
        );
        assert!(
            guest.tick(T0 + Duration::from_secs(43)).is_empty(),
            "sent once"
        );
        // This time the server takes it back: same number, the member kept.
        let acts = guest.on_server(
            ServerMessage::Joined {
                code: code(),
                members: vec![SignalId(21)],
                numbers: vec![2],
                host: SignalId(21),
                number: 2,
                pake: false,
            },
            T0,
        );
        keeps_everything(&acts);
        assert_eq!(guest.members(), vec![1]);

        // A retry planned on a connection that closed is dropped: the next `welcome` asks.
        let (_, mut other) = pair(Some(&key));
        other.on_server(welcome(22), T0);
        other.on_server(refusal(ErrorCode::TooManyAttempts, Some(5)), T0);
        other.signaling_lost();
        assert!(other.tick(T0 + Duration::from_secs(60)).is_empty());
    }

    #[test]
    fn a_reclaim_refused_by_the_room_cap_keeps_the_links_and_asks_on_the_next_connection() {
        let key = RoomKey::from_bytes([4; 32]);
        let (mut host, _) = pair(Some(&key));
        host.on_server(welcome(11), T0);
        let acts = host.on_server(refusal(ErrorCode::TooManyRooms, None), T0);
        keeps_everything(&acts);
        assert!(
            matches!(&acts[..], [Action::RoomLost { code, message, retry_in: None }]
                if code == "too-many-rooms" && message.contains("host a new room")),
            "{acts:?}"
        );
        assert_eq!(host.members(), vec![2]);
        assert!(host.tick(T0 + Duration::from_secs(3600)).is_empty());
        assert!(
            matches!(
                &host.on_server(welcome(12), T0)[..],
                [Action::Send(ClientMessage::JoinRoom {
                    reclaim: Some(Reclaim { number: 1, .. }),
                    ..
                })]
            ),
            "the next connection reclaims again"
        );
    }

    /// Passes the `pake` messages `acts` sends to `to`, as the server would (from `from`).
    fn pake_relay(acts: &[Action], from: u64) -> Vec<ServerMessage> {
        acts.iter()
            .filter_map(|a| match a {
                Action::Send(ClientMessage::Pake { data, .. }) => Some(ServerMessage::Pake {
                    from: SignalId(from),
                    data: data.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The host (signaling id 10, member 1) of a PAKE room with password "right" under `key`,
    /// which guest 20 (member 2) has joined.
    fn pake_host(key: &RoomKey) -> Room {
        let mut host = Room::new(
            Want::Create {
                password: Some("right".into()),
            },
            Some(key),
            None,
        );
        match &host.on_server(welcome(10), T0)[..] {
            [Action::Send(ClientMessage::CreateRoom { password, pake, .. })] => {
                assert!(password.is_none(), "the password never goes to the server");
                assert!(*pake);
            }
            other => panic!("{other:?}"),
        }
        host.on_server(
            ServerMessage::RoomCreated {
                code: code(),
                max_peers: 8,
                number: 1,
            },
            T0,
        );
        host.on_server(
            ServerMessage::PeerJoined {
                peer: SignalId(20),
                number: 2,
            },
            T0,
        );
        host
    }

    /// Guest 20 (member 2) in host 10's PAKE room, with the key (it opened the link) and/or a
    /// password: the room and its actions on `joined`.
    fn pake_guest(key: Option<&RoomKey>, password: Option<&str>) -> (Room, Vec<Action>) {
        let mut guest = Room::new(
            Want::Join {
                code: "A3B7K9".into(),
                password: password.map(str::to_owned),
            },
            key,
            None,
        );
        match &guest.on_server(welcome(20), T0)[..] {
            [Action::Send(ClientMessage::JoinRoom { password, .. })] => {
                assert!(password.is_none(), "the password never goes to the server")
            }
            other => panic!("{other:?}"),
        }
        let joined = guest.on_server(
            ServerMessage::Joined {
                code: code(),
                members: vec![SignalId(10), SignalId(20)],
                numbers: vec![1, 2],
                host: SignalId(10),
                number: 2,
                pake: true,
            },
            T0,
        );
        (guest, joined)
    }

    /// A host (signaling id 10) of a PAKE room with password "right", and a guest (20) that
    /// joins by code with `password` and no key: the guest's actions after each step.
    fn pake_join(password: Option<&str>) -> (Room, Vec<Action>, Vec<Action>) {
        let mut host = pake_host(&RoomKey::from_bytes([4; 32]));
        let (mut guest, joined) = pake_guest(None, password);
        assert!(
            !joined.contains(&Action::Member(1)),
            "no link before the key: {joined:?}"
        );
        let mut replies = Vec::new();
        for m in pake_relay(&joined, 20) {
            replies.extend(host.on_server(m, T0));
        }
        let mut after = Vec::new();
        for m in pake_relay(&replies, 10) {
            after.extend(guest.on_server(m, T0));
        }
        let mut host_last = Vec::new();
        for m in pake_relay(&after, 20) {
            host_last.extend(host.on_server(m, T0));
        }
        after.extend(host_last.iter().cloned().map(|a| match a {
            // What the host sent, marked as the host's (for the assertions).
            Action::Send(m) => Action::Fatal {
                code: "host-sent".into(),
                message: format!("{m:?}"),
            },
            other => other,
        }));
        (guest, joined, after)
    }

    #[test]
    fn a_guest_with_the_right_password_gets_the_key_then_links() {
        let (guest, _, after) = pake_join(Some("right"));
        assert!(
            after.contains(&Action::Key(RoomKey::from_bytes([4; 32]))),
            "{after:?}"
        );
        assert!(after.contains(&Action::Member(1)), "{after:?}");
        assert!(guest.keyed());
        assert!(
            !after.iter().any(|a| matches!(a, Action::Fatal { .. })),
            "{after:?}"
        );
    }

    #[test]
    fn a_wrong_password_is_refused_by_the_host_and_gets_no_key() {
        let (guest, _, after) = pake_join(Some("wrong"));
        assert!(!guest.keyed());
        assert!(
            !after
                .iter()
                .any(|a| matches!(a, Action::Key(_) | Action::Member(_))),
            "{after:?}"
        );
        assert!(
            after
                .iter()
                .any(|a| matches!(a, Action::Fatal { code, message }
                if code == "wrong-password" && message.contains("wrong password"))),
            "{after:?}"
        );
        // The host counted it: it sent `reject` for us (so the server counts it too).
        assert!(
            after
                .iter()
                .any(|a| matches!(a, Action::Fatal { code, message }
                if code == "host-sent" && message.contains("Reject"))),
            "{after:?}"
        );
    }

    #[test]
    fn a_pake_room_without_password_or_key_says_it_needs_one() {
        let (_, joined, _) = pake_join(None);
        assert!(
            joined
                .iter()
                .any(|a| matches!(a, Action::Fatal { code, message }
                if code == "password-required" && message.contains("A3B7K9"))),
            "{joined:?}"
        );
    }

    #[test]
    fn the_hosts_refusal_relayed_by_the_server_reads_as_the_hosts() {
        let (mut guest, _) = pake_guest(None, Some("x"));
        let acts = guest.on_server(
            ServerMessage::Error {
                code: ErrorCode::TooManyAttempts,
                message: "too many".into(),
                retry_after_secs: None,
            },
            T0,
        );
        assert!(
            matches!(&acts[..], [Action::Fatal { code, message }]
                if code == "too-many-attempts" && message.contains("host of room A3B7K9")),
            "{acts:?}"
        );
        // And a host that never answers is given up on after the wait.
        let (mut slow, _) = pake_guest(None, Some("x"));
        assert!(slow.tick(T0 + GUEST_WAIT / 2).is_empty());
        assert!(matches!(
            &slow.tick(T0 + GUEST_WAIT)[..],
            [Action::Fatal { code, .. }] if code == "host-not-answering"
        ));
    }
}
