//! The browser's peer-to-peer mesh: one signaling WebSocket and one [`Peer`] connection per
//! member, the same behaviour as the native transport (`bassline_net::p2p`): reconnecting to
//! the signaling server with backoff and the resume token, the higher member number offering,
//! ICE restart on a disconnected link (at most [`MAX_RESTARTS`] times), a link not open within
//! [`CONNECT_TIMEOUT_MS`] given up, and the offering side redialling a failed link with backoff.
//!
//! One driver per tab, in a thread-local. Callbacks and timers carry the generation they were
//! made for and do nothing once it is stale (after [`stop`] or a new [`start`]). Events reach the
//! UI only after the driver's state is released, so the UI may call [`send`] from them.

use std::{
    cell::RefCell,
    collections::{HashMap, VecDeque},
    rc::Rc,
    time::Duration,
};

use bassline_signal::{ServerMessage, mesh::Backoff};
use bassline_sync::{Channel, PeerId};
use bassline_trust::RoomKey;
use leptos::prelude::{IntervalHandle, set_interval_with_handle, set_timeout};

use super::{
    room::{Action, Room, Signal, Want},
    rtc::{Conn, Ice, PcEvent, Peer, SEND_BUFFER_LIMIT, Socket, SocketEvent},
    trace,
};

/// How long a link may take to open before it is given up and dialled again.
pub const CONNECT_TIMEOUT_MS: u64 = 15_000;
/// ICE restarts tried on one connection before it is torn down and dialled anew.
pub const MAX_RESTARTS: u32 = 3;
/// Bytes of reliable frames queued behind a full channel before the link is given up (the peer
/// reads too slowly; it catches up from a fresh link).
const QUEUE_LIMIT: usize = 16 << 20;
/// How often each open link's path and round-trip time are read.
const MEASURE_EVERY: Duration = Duration::from_secs(2);
/// How often the room's deadlines (PAKE runs, a throttled reclaim; seconds long) are looked
/// at.
const PAKE_TICK: Duration = Duration::from_millis(500);

/// What the signaling connection is doing.
#[derive(Clone, Debug, PartialEq)]
pub enum Signaling {
    Connecting,
    Connected,
    /// Lost (or never reached); the next attempt in `retry_in`.
    Reconnecting {
        retry_in: Duration,
        reached: bool,
    },
}

/// A member's link as the status shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PeerLink {
    Connecting,
    /// Open; `relayed` through TURN or direct; the round-trip time once measured.
    Open {
        relayed: bool,
        rtt_ms: Option<f64>,
    },
    /// Failed; dialled again after a backoff (or by the peer).
    Retrying,
}

/// What the driver tells the UI.
#[derive(Clone, Debug)]
pub enum Event {
    Signaling(Signaling),
    /// The room's code, confirmed by the server; the resume token to keep for a reload.
    Room {
        code: String,
        token: Option<String>,
    },
    /// Our member number (the session's peer id). See [`Action::Identity`].
    Identity {
        me: PeerId,
        created: bool,
        resumed: bool,
    },
    /// The link to `peer` is open (the session may use it), `open_ms` after this side made
    /// its connection (the offering side: before its offer; the answering side: on the offer).
    Up {
        peer: PeerId,
        open_ms: f64,
    },
    /// The open link to `peer` closed.
    Down(PeerId),
    /// The state of the link to a member changed, or it left (`None`).
    Peer(PeerId, Option<PeerLink>),
    Frame(PeerId, Channel, Vec<u8>),
    /// An offer or answer failed the room-key check; the attempt was refused.
    Tampered(String),
    /// The host confirmed our password and handed over the room key (keep it for a reload).
    Key(RoomKey),
    /// The signaling server lost the room and did not take it back; the links and the
    /// session go on (see [`Action::RoomLost`]): the notice to show until [`Event::Room`].
    RoomLost {
        code: String,
        message: String,
    },
    /// The room is lost for good (unknown code, wrong password...): the message to show.
    Fatal {
        code: String,
        message: String,
    },
}

/// How to start.
pub struct Config {
    /// `ws(s)://HOST:PORT/signal`.
    pub url: String,
    pub want: Want,
    pub key: Option<RoomKey>,
    /// The code and token an earlier page of this tab held (a reload).
    pub resume: Option<(String, String)>,
    pub on: Rc<dyn Fn(Event)>,
}

struct Link {
    peer: Peer,
    generation: u64,
    offerer: bool,
    open: [bool; 2],
    up: bool,
    remote_set: bool,
    /// The fingerprint line of the peer's first offer: an offer with another one is a new
    /// connection (the peer redialled).
    remote_fingerprint: Option<String>,
    early: Vec<Signal>,
    restarts: u32,
    /// Reliable frames waiting for the channel's buffer to drain, and their bytes.
    queue: VecDeque<Vec<u8>>,
    queued: usize,
    /// When the connection was made (`performance.now()`, ms).
    started_ms: f64,
}

/// The page's monotonic clock, for the PAKE runs' deadlines.
fn now() -> Duration {
    Duration::from_secs_f64(now_ms().max(0.0) / 1000.0)
}

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

struct Driver {
    generation: u64,
    url: String,
    room: Room,
    on: Rc<dyn Fn(Event)>,
    socket: Option<Socket>,
    /// Bumped per socket: events and timers of an older one are ignored.
    attempt: u64,
    backoff: Backoff,
    reached: bool,
    /// A reconnect is scheduled (the retry button may bring it forward).
    waiting: bool,
    links: HashMap<PeerId, Link>,
    redial: HashMap<PeerId, Backoff>,
    next_link: u64,
    stopped: bool,
    ticker: Option<IntervalHandle>,
    /// Looks at the PAKE runs' deadlines.
    pake_ticker: Option<IntervalHandle>,
}

thread_local! {
    static DRIVER: RefCell<Option<Driver>> = const { RefCell::new(None) };
    static GENERATION: RefCell<u64> = const { RefCell::new(0) };
    static SPARE: RefCell<Option<Spare>> = const { RefCell::new(None) };
}

/// Where a socket's events go: held while it is a spare, to the driver once adopted.
enum Route {
    Held(Vec<SocketEvent>),
    Driver { generation: u64, attempt: u64 },
}

/// A signaling socket opened ahead, while the room manager is open, so a click on Join or
/// Host finds the connection made and greeted (measured: opening it on the click cost 58 ms
/// median, `start` to `ws-open`, in a page busy drawing the mode change). It says `hello`
/// without a token as it opens and holds what the server says until a driver adopts it.
struct Spare {
    url: String,
    socket: Socket,
    route: Rc<RefCell<Route>>,
    /// It opened and sent `hello`.
    greeted: Rc<std::cell::Cell<bool>>,
}

/// Opens a spare signaling socket to `url` (the room manager is open: a join or host may
/// follow). Nothing when one is already open to it.
pub fn prepare(url: &str) {
    let fresh = SPARE.with(|s| s.borrow().as_ref().is_none_or(|s| s.url != url));
    if !fresh {
        return;
    }
    discard_spare();
    let route = Rc::new(RefCell::new(Route::Held(Vec::new())));
    let greeted = Rc::new(std::cell::Cell::new(false));
    let (r, g) = (route.clone(), greeted.clone());
    let on: Rc<dyn Fn(SocketEvent)> = Rc::new(move |e| {
        let target = match &mut *r.borrow_mut() {
            Route::Held(held) => {
                if matches!(e, SocketEvent::Open) {
                    g.set(true);
                    SPARE.with(|s| {
                        if let Some(s) = s.borrow().as_ref() {
                            let hello = Room::fresh_hello();
                            s.socket.send(
                                &serde_json::to_string(&hello)
                                    .expect("client messages always serialize"),
                            );
                        }
                    });
                }
                held.push(e);
                return;
            }
            Route::Driver {
                generation,
                attempt,
            } => (*generation, *attempt),
        };
        with(target.0, |d, ev| {
            if d.attempt == target.1 {
                d.on_socket(e, ev);
            }
        })
    });
    if let Ok(socket) = Socket::open(url, on) {
        SPARE.with(|s| {
            *s.borrow_mut() = Some(Spare {
                url: url.to_owned(),
                socket,
                route,
                greeted,
            })
        });
    }
}

/// Closes the spare signaling socket, if any (the room manager closed unused).
pub fn discard_spare() {
    if let Some(s) = SPARE.with(|s| s.borrow_mut().take()) {
        s.socket.close();
    }
}

fn seed() -> u64 {
    (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64
}

/// Runs `f` on the driver of `generation` (if it is still current), then delivers the events
/// it produced, with the driver released.
fn with(generation: u64, f: impl FnOnce(&mut Driver, &mut Vec<Event>)) {
    let mut events = Vec::new();
    let on = DRIVER.with(|d| {
        let mut d = d.borrow_mut();
        let d = d
            .as_mut()
            .filter(|d| d.generation == generation && !d.stopped)?;
        f(d, &mut events);
        Some(d.on.clone())
    });
    if let Some(on) = on {
        for e in events {
            on(e);
        }
    }
}

/// Starts the mesh (stopping any earlier one).
pub fn start(cfg: Config) {
    stop();
    trace::mark("start", None);
    let generation = GENERATION.with(|g| {
        *g.borrow_mut() += 1;
        *g.borrow()
    });
    let ticker = set_interval_with_handle(move || measure(generation), MEASURE_EVERY).ok();
    let pake_ticker = set_interval_with_handle(
        move || {
            with(generation, |d, ev| {
                let actions = d.room.tick(now());
                d.act(actions, ev);
            })
        },
        PAKE_TICK,
    )
    .ok();
    DRIVER.with(|d| {
        *d.borrow_mut() = Some(Driver {
            generation,
            url: cfg.url,
            room: Room::new(cfg.want, cfg.key.as_ref(), cfg.resume),
            on: cfg.on,
            socket: None,
            attempt: 0,
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(10), seed()),
            reached: false,
            waiting: false,
            links: HashMap::new(),
            redial: HashMap::new(),
            next_link: 0,
            stopped: false,
            ticker,
            pake_ticker,
        })
    });
    let spare = SPARE.with(|s| s.borrow_mut().take());
    with(generation, |d, ev| match spare {
        Some(spare) if spare.url == d.url && d.room.token().is_none() => d.adopt(spare, ev),
        other => {
            if let Some(s) = other {
                s.socket.close();
            }
            d.connect(ev)
        }
    });
}

/// Stops the mesh: closes the socket and every link.
pub fn stop() {
    let old = DRIVER.with(|d| d.borrow_mut().take());
    if let Some(mut d) = old {
        d.shut();
    }
}

/// Reconnects to the signaling server now instead of after the backoff.
pub fn retry_now() {
    let generation = GENERATION.with(|g| *g.borrow());
    with(generation, |d, ev| {
        if d.waiting {
            d.connect(ev);
        }
    });
}

/// Sends one frame to `peer`; `false` when no link to it is open (the session resends what
/// matters once one is).
pub fn send(peer: PeerId, channel: Channel, frame: &[u8]) -> bool {
    let generation = GENERATION.with(|g| *g.borrow());
    let mut sent = false;
    with(generation, |d, ev| sent = d.send(peer, channel, frame, ev));
    sent
}

fn fingerprint(sdp: &str) -> Option<String> {
    sdp.lines()
        .find(|l| l.starts_with("a=fingerprint:"))
        .map(str::to_owned)
}

fn measure(generation: u64) {
    let mut open: Vec<(PeerId, u64, Conn)> = Vec::new();
    with(generation, |d, _| {
        open = d
            .links
            .iter()
            .filter(|(_, l)| l.up)
            .map(|(p, l)| (*p, l.generation, l.peer.conn()))
            .collect();
    });
    for (peer, link_gen, conn) in open {
        leptos::task::spawn_local(async move {
            if let Some((relayed, rtt)) = conn.path().await {
                with(generation, |d, ev| {
                    if d.links.get(&peer).is_some_and(|l| l.generation == link_gen) {
                        ev.push(Event::Peer(
                            peer,
                            Some(PeerLink::Open {
                                relayed,
                                rtt_ms: rtt.map(|s| s * 1000.0),
                            }),
                        ));
                    }
                });
            }
        });
    }
}

impl Driver {
    fn shut(&mut self) {
        self.stopped = true;
        if let Some(s) = self.socket.take() {
            s.close();
        }
        for (_, mut l) in self.links.drain() {
            l.peer.close();
        }
        self.redial.clear();
        if let Some(t) = self.ticker.take() {
            t.clear();
        }
        if let Some(t) = self.pake_ticker.take() {
            t.clear();
        }
    }

    fn connect(&mut self, ev: &mut Vec<Event>) {
        self.waiting = false;
        self.attempt += 1;
        let (generation, attempt) = (self.generation, self.attempt);
        if let Some(s) = self.socket.take() {
            s.close();
        }
        ev.push(Event::Signaling(Signaling::Connecting));
        let on: Rc<dyn Fn(SocketEvent)> = Rc::new(move |e| {
            with(generation, |d, ev| {
                if d.attempt == attempt {
                    d.on_socket(e, ev);
                }
            })
        });
        match Socket::open(&self.url, on) {
            Ok(s) => self.socket = Some(s),
            Err(e) => {
                ev.push(Event::Fatal {
                    code: "bad-address".into(),
                    message: format!("{} is not a signaling address: {e}", self.url),
                });
                self.shut();
            }
        }
    }

    /// Takes over a spare socket: what it heard is handled now, the rest as it comes.
    fn adopt(&mut self, spare: Spare, ev: &mut Vec<Event>) {
        let held = std::mem::replace(
            &mut *spare.route.borrow_mut(),
            Route::Driver {
                generation: self.generation,
                attempt: self.attempt + 1,
            },
        );
        let Route::Held(held) = held else {
            return self.connect(ev);
        };
        if held.iter().any(|e| matches!(e, SocketEvent::Closed)) {
            spare.socket.close();
            return self.connect(ev);
        }
        self.waiting = false;
        self.attempt += 1;
        self.socket = Some(spare.socket);
        ev.push(Event::Signaling(Signaling::Connecting));
        if !spare.greeted.get() {
            // Still connecting: its `open` greets as any socket's does.
            return;
        }
        trace::mark("ws-open", None);
        self.reached = true;
        self.backoff.reset();
        ev.push(Event::Signaling(Signaling::Connected));
        if let Some(m) = self.room.greeted() {
            self.send_json(&m);
        }
        for e in held {
            if let SocketEvent::Text(_) = e {
                self.on_socket(e, ev);
            }
        }
    }

    fn on_socket(&mut self, e: SocketEvent, ev: &mut Vec<Event>) {
        match e {
            SocketEvent::Open => {
                trace::mark("ws-open", None);
                self.reached = true;
                self.backoff.reset();
                ev.push(Event::Signaling(Signaling::Connected));
                for m in self.room.greeting() {
                    self.send_json(&m);
                }
            }
            SocketEvent::Text(t) => {
                // A newer server may say things we do not know; nothing to do about them.
                if let Ok(msg) = serde_json::from_str::<ServerMessage>(&t) {
                    match &msg {
                        ServerMessage::Welcome { .. } => trace::mark("welcome", None),
                        ServerMessage::Joined { .. } | ServerMessage::RoomCreated { .. } => {
                            trace::mark("joined", None)
                        }
                        _ => {}
                    }
                    let actions = self.room.on_server(msg, now());
                    self.act(actions, ev);
                }
            }
            SocketEvent::Closed => self.lost(ev),
        }
    }

    /// The signaling connection is gone: links keep working; try again after a backoff.
    fn lost(&mut self, ev: &mut Vec<Event>) {
        if let Some(s) = self.socket.take() {
            s.close();
        }
        self.room.signaling_lost();
        let delay = self.backoff.next_delay();
        self.waiting = true;
        ev.push(Event::Signaling(Signaling::Reconnecting {
            retry_in: delay,
            reached: self.reached,
        }));
        let (generation, attempt) = (self.generation, self.attempt);
        set_timeout(
            move || {
                with(generation, |d, ev| {
                    if d.attempt == attempt && d.waiting {
                        d.connect(ev);
                    }
                })
            },
            delay,
        );
    }

    fn send_json(&self, msg: &bassline_signal::ClientMessage) {
        use bassline_signal::ClientMessage::{CreateRoom, JoinRoom};
        if matches!(msg, JoinRoom { .. } | CreateRoom { .. }) {
            trace::mark("join-sent", None);
        }
        if let Some(s) = &self.socket {
            let text = serde_json::to_string(msg).expect("client messages always serialize");
            s.send(&text);
        }
    }

    fn act(&mut self, actions: Vec<Action>, ev: &mut Vec<Event>) {
        for a in actions {
            match a {
                Action::Send(m) => self.send_json(&m),
                Action::Identity {
                    me,
                    created,
                    resumed,
                } => {
                    // A new number (our place expired): links made under the old one carry the
                    // wrong id, so they all start again.
                    let stale: Vec<PeerId> = self.links.keys().copied().collect();
                    for p in stale {
                        self.drop_link(p, ev);
                    }
                    ev.push(Event::Identity {
                        me,
                        created,
                        resumed,
                    });
                    for p in self.room.members() {
                        self.member(p, ev);
                    }
                }
                Action::Code(code) => ev.push(Event::Room {
                    code,
                    token: self.room.token().map(str::to_owned),
                }),
                Action::Member(p) => self.member(p, ev),
                Action::Gone(p) => {
                    self.redial.remove(&p);
                    self.drop_link(p, ev);
                    ev.push(Event::Peer(p, None));
                }
                Action::Signal(p, s) => self.signal(p, s, ev),
                Action::Tampered {
                    peer,
                    reason,
                    replay,
                } => {
                    if !replay && self.links.get(&peer).is_some_and(|l| !l.up) {
                        self.failed(peer, ev);
                    }
                    ev.push(Event::Tampered(reason));
                }
                Action::Fatal { code, message } => {
                    ev.push(Event::Fatal { code, message });
                    self.shut();
                    return;
                }
                // The links and the session go on: only the notice.
                Action::RoomLost { code, message, .. } => {
                    ev.push(Event::RoomLost { code, message })
                }
                Action::Reconnect => self.lost(ev),
                Action::Key(key) => ev.push(Event::Key(key)),
            }
        }
    }

    fn member(&mut self, peer: PeerId, ev: &mut Vec<Event>) {
        if self.room.me().is_none() {
            return;
        }
        if self.room.offers_to(peer) {
            if !self.links.contains_key(&peer) {
                self.dial(peer, ev);
            }
        } else if !self.links.contains_key(&peer) {
            ev.push(Event::Peer(peer, Some(PeerLink::Connecting)));
        }
    }

    /// A new connection to `peer` (offering when we offer).
    fn open_link(&mut self, peer: PeerId, ev: &mut Vec<Event>) -> Option<u64> {
        self.drop_link(peer, ev);
        self.next_link += 1;
        let link_gen = self.next_link;
        let generation = self.generation;
        let on: Rc<dyn Fn(PcEvent)> = Rc::new(move |e| {
            with(generation, |d, ev| {
                if d.links.get(&peer).is_some_and(|l| l.generation == link_gen) {
                    d.on_pc(peer, e, ev);
                }
            })
        });
        trace::mark("pc-created", Some(peer));
        let p = match Peer::new(self.room.ice_servers(), peer, on) {
            Ok(p) => p,
            Err(e) => {
                ev.push(Event::Fatal {
                    code: "no-webrtc".into(),
                    message: format!("this browser cannot make a WebRTC connection: {e}"),
                });
                return None;
            }
        };
        let offerer = self.room.offers_to(peer);
        self.links.insert(
            peer,
            Link {
                peer: p,
                generation: link_gen,
                offerer,
                open: [false; 2],
                up: false,
                remote_set: false,
                remote_fingerprint: None,
                early: Vec::new(),
                restarts: 0,
                queue: VecDeque::new(),
                queued: 0,
                started_ms: now_ms(),
            },
        );
        ev.push(Event::Peer(peer, Some(PeerLink::Connecting)));
        set_timeout(
            move || {
                with(generation, |d, ev| {
                    if d.links
                        .get(&peer)
                        .is_some_and(|l| l.generation == link_gen && !l.up)
                    {
                        d.failed(peer, ev);
                    }
                })
            },
            Duration::from_millis(CONNECT_TIMEOUT_MS),
        );
        Some(link_gen)
    }

    /// Offers a new connection to `peer`.
    fn dial(&mut self, peer: PeerId, ev: &mut Vec<Event>) {
        let Some(link_gen) = self.open_link(peer, ev) else {
            return;
        };
        self.offer(peer, link_gen, false);
    }

    fn offer(&self, peer: PeerId, link_gen: u64, restart: bool) {
        let Some(conn) = self.links.get(&peer).map(|l| l.peer.conn()) else {
            return;
        };
        let generation = self.generation;
        let making = conn.offer(restart);
        leptos::task::spawn_local(async move {
            let made = making.await;
            with(generation, |d, ev| {
                if d.links.get(&peer).is_none_or(|l| l.generation != link_gen) {
                    return;
                }
                match made {
                    Ok(sdp) => d.signal_out(peer, Signal::Offer(sdp)),
                    Err(_) => d.failed(peer, ev),
                }
            });
        });
    }

    /// Sends our offer, answer or candidate to `peer`, signed when the room has a key.
    fn signal_out(&self, peer: PeerId, signal: Signal) {
        let Ok(nonce) = bassline_trust::os::random() else {
            return;
        };
        let step = match &signal {
            Signal::Offer(_) => "offer-sent",
            Signal::Answer(_) => "answer-sent",
            Signal::Candidate { .. } => "local-candidate",
        };
        if let Some(m) = self.room.outgoing(peer, signal, nonce) {
            self.send_json(&m);
            trace::mark(step, Some(peer));
        }
    }

    fn signal(&mut self, peer: PeerId, signal: Signal, ev: &mut Vec<Event>) {
        match signal {
            Signal::Offer(sdp) => {
                trace::mark("offer-received", Some(peer));
                if self.room.offers_to(peer) {
                    // Only the higher number offers; ignore rather than let two offers race.
                    return;
                }
                let fp = fingerprint(&sdp);
                let fresh = match self.links.get(&peer) {
                    None => true,
                    Some(l) => l.remote_fingerprint.is_some() && l.remote_fingerprint != fp,
                };
                if fresh && self.open_link(peer, ev).is_none() {
                    return;
                }
                let Some(l) = self.links.get_mut(&peer) else {
                    return;
                };
                l.remote_fingerprint = fp;
                let (conn, link_gen, generation) = (l.peer.conn(), l.generation, self.generation);
                let answering = conn.answer(&sdp);
                leptos::task::spawn_local(async move {
                    let answered = answering.await;
                    with(generation, |d, ev| {
                        if d.links.get(&peer).is_none_or(|l| l.generation != link_gen) {
                            return;
                        }
                        match answered {
                            Ok(sdp) => {
                                d.signal_out(peer, Signal::Answer(sdp));
                                d.remote_ready(peer);
                            }
                            Err(_) => d.failed(peer, ev),
                        }
                    });
                });
            }
            Signal::Answer(sdp) => {
                trace::mark("answer-received", Some(peer));
                let Some(l) = self.links.get(&peer).filter(|l| l.offerer) else {
                    return;
                };
                let (conn, link_gen, generation) = (l.peer.conn(), l.generation, self.generation);
                let accepting = conn.accept(&sdp);
                leptos::task::spawn_local(async move {
                    let accepted = accepting.await;
                    with(generation, |d, ev| {
                        if d.links.get(&peer).is_none_or(|l| l.generation != link_gen) {
                            return;
                        }
                        match accepted {
                            Ok(()) => d.remote_ready(peer),
                            Err(_) => d.failed(peer, ev),
                        }
                    });
                });
            }
            c @ Signal::Candidate { .. } => {
                trace::mark("remote-candidate", Some(peer));
                let Some(l) = self.links.get_mut(&peer) else {
                    return;
                };
                if l.remote_set {
                    add_candidate(l.peer.conn(), c);
                } else {
                    l.early.push(c);
                }
            }
        }
    }

    /// The peer's description is set: the candidates held for it go in.
    fn remote_ready(&mut self, peer: PeerId) {
        if let Some(l) = self.links.get_mut(&peer) {
            l.peer.watch_sctp();
            l.remote_set = true;
            for c in l.early.drain(..) {
                add_candidate(l.peer.conn(), c);
            }
        }
    }

    fn on_pc(&mut self, peer: PeerId, e: PcEvent, ev: &mut Vec<Event>) {
        match e {
            PcEvent::Candidate(c) => self.signal_out(peer, c),
            PcEvent::Open(i) => {
                trace::mark(["channel-0-open", "channel-1-open"][i], Some(peer));
                let Some(l) = self.links.get_mut(&peer) else {
                    return;
                };
                l.open[i] = true;
                if l.open == [true, true] && !l.up && l.peer.is_open() {
                    trace::mark("link-up", Some(peer));
                    l.up = true;
                    l.restarts = 0;
                    self.redial.remove(&peer);
                    ev.push(Event::Peer(
                        peer,
                        Some(PeerLink::Open {
                            relayed: false,
                            rtt_ms: None,
                        }),
                    ));
                    ev.push(Event::Up {
                        peer,
                        open_ms: now_ms() - l.started_ms,
                    });
                }
            }
            PcEvent::Closed => self.failed(peer, ev),
            PcEvent::Message(i, data) => {
                trace::mark("frame-in", Some(peer));
                let channel = if i == 0 {
                    Channel::Reliable
                } else {
                    Channel::Unreliable
                };
                ev.push(Event::Frame(peer, channel, data));
            }
            PcEvent::Drained => self.drain(peer, ev),
            PcEvent::Reached(step) => trace::mark(step, Some(peer)),
            PcEvent::Ice(state) => match state {
                Ice::Connected => trace::mark("ice-connected", Some(peer)),
                Ice::Other => {}
                Ice::Closed => self.failed(peer, ev),
                Ice::Disconnected | Ice::Failed => {
                    let Some(l) = self.links.get_mut(&peer) else {
                        return;
                    };
                    if l.restarts >= MAX_RESTARTS || (state == Ice::Failed && !l.offerer) {
                        self.failed(peer, ev);
                    } else if l.offerer {
                        l.restarts += 1;
                        let link_gen = l.generation;
                        self.offer(peer, link_gen, true);
                    }
                }
            },
        }
    }

    /// Closes the link to `peer` (reporting it down if it was up).
    fn drop_link(&mut self, peer: PeerId, ev: &mut Vec<Event>) {
        if let Some(mut l) = self.links.remove(&peer) {
            l.peer.close();
            if l.up {
                ev.push(Event::Down(peer));
            }
        }
    }

    /// The link to `peer` failed: the offering side dials again after a backoff, the answering
    /// side waits for the next offer.
    fn failed(&mut self, peer: PeerId, ev: &mut Vec<Event>) {
        self.drop_link(peer, ev);
        if !self.room.members().contains(&peer) {
            return;
        }
        ev.push(Event::Peer(peer, Some(PeerLink::Retrying)));
        if !self.room.offers_to(peer) {
            return;
        }
        let delay = self
            .redial
            .entry(peer)
            .or_insert_with(|| {
                Backoff::new(Duration::from_millis(200), Duration::from_secs(10), seed())
            })
            .next_delay();
        let generation = self.generation;
        set_timeout(
            move || {
                with(generation, |d, ev| {
                    if d.room.members().contains(&peer) && !d.links.contains_key(&peer) {
                        d.dial(peer, ev);
                    }
                })
            },
            delay,
        );
    }

    fn send(&mut self, peer: PeerId, channel: Channel, frame: &[u8], ev: &mut Vec<Event>) -> bool {
        let Some(l) = self.links.get_mut(&peer).filter(|l| l.up) else {
            return false;
        };
        trace::mark("frame-out", Some(peer));
        match channel {
            Channel::Unreliable => {
                // A full buffer drops the frame: it is a heartbeat or presence update.
                if l.peer.buffered(1) <= SEND_BUFFER_LIMIT {
                    let _ = l.peer.send(1, frame);
                }
                true
            }
            Channel::Reliable => {
                if l.queue.is_empty() && l.peer.buffered(0) <= SEND_BUFFER_LIMIT {
                    if l.peer.send(0, frame).is_err() {
                        self.failed(peer, ev);
                        return false;
                    }
                    return true;
                }
                l.queued += frame.len();
                l.queue.push_back(frame.to_vec());
                if l.queued > QUEUE_LIMIT {
                    self.failed(peer, ev);
                    return false;
                }
                true
            }
        }
    }

    /// The reliable channel drained: send what waited for it, up to the limit again.
    fn drain(&mut self, peer: PeerId, ev: &mut Vec<Event>) {
        let Some(l) = self.links.get_mut(&peer) else {
            return;
        };
        while l.peer.buffered(0) <= SEND_BUFFER_LIMIT {
            let Some(f) = l.queue.pop_front() else { break };
            l.queued -= f.len();
            if l.peer.send(0, &f).is_err() {
                self.failed(peer, ev);
                return;
            }
        }
    }
}

fn add_candidate(conn: Conn, c: Signal) {
    if let Signal::Candidate {
        candidate,
        sdp_mid,
        sdp_m_line_index,
    } = c
    {
        leptos::task::spawn_local(async move {
            // A candidate the browser cannot use is one path fewer, not a failed link.
            let _ = conn
                .candidate(&candidate, sdp_mid.as_deref(), sdp_m_line_index)
                .await;
        });
    }
}
