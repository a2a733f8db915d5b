//! Real webrtc-rs peers in this process, a real signaling server on loopback, and a WebSocket
//! proxy between them that tampers with the offers and answers it relays (tests/common/proxy.rs).
//! With a room key a swapped fingerprint, a wrong key and a replayed offer are each refused and
//! reported (`signaling-tampered`), and nothing crosses a refused connection; through an honest
//! proxy the same peers connect and converge, so the proxy itself is not what breaks them.
//!
//! Every wait is bounded; no timing is asserted.

mod common;

use std::time::Duration;

use bassline_core::{Network, Request, Value, id};
use bassline_net::{
    LinkState, NetClient, NetEvent, Start,
    p2p::{P2pConfig, Room, p2p},
    rtc::RtcConfig,
    wait_for,
};
use bassline_signal::server::{self, ServerConfig};
use bassline_trust::RoomKey;
use common::proxy::{Mode, Proxy};
use tokio::sync::{broadcast, oneshot};

const WAIT: Duration = Duration::from_secs(45);

async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} (bounded wait, not a timing assertion)"))
}

/// A signaling server on 127.0.0.1:0 without STUN (nothing leaves the machine); stops when
/// dropped.
struct Signaling {
    url: String,
    _stop: oneshot::Sender<()>,
}

async fn signaling() -> Signaling {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let mut cfg = ServerConfig::default();
    cfg.ice.stun_urls = Vec::new();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server::serve(listener, cfg, async move {
        let _ = stopped.await;
    }));
    Signaling { url, _stop: stop }
}

/// A peer and the events it has reported since it started.
struct Peer {
    name: &'static str,
    client: NetClient,
    events: broadcast::Receiver<NetEvent>,
    seen: Vec<NetEvent>,
}

impl Peer {
    fn start(
        name: &'static str,
        url: &str,
        room: Room,
        key: Option<RoomKey>,
        start: Start,
    ) -> Peer {
        let transport = p2p(P2pConfig {
            signal_url: url.to_owned(),
            room,
            rtc: RtcConfig {
                bind: vec!["127.0.0.1:0".into()],
                ..RtcConfig::default()
            },
            room_key: key,
            guess_limiter: Default::default(),
        });
        // Subscribed before the session runs: not even the room event can be missed.
        let (client, events) = NetClient::spawn_subscribed(transport, Default::default(), start);
        Peer {
            name,
            client,
            events,
            seen: Vec::new(),
        }
    }

    /// The next event matching `pred` (every event is kept in `seen`).
    async fn wait(&mut self, what: &str, pred: impl Fn(&NetEvent) -> bool) -> NetEvent {
        let name = self.name;
        let (events, seen) = (&mut self.events, &mut self.seen);
        let found = tokio::time::timeout(WAIT, async {
            loop {
                match events.recv().await {
                    Ok(ev) => {
                        seen.push(ev.clone());
                        if pred(&ev) {
                            return ev;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("{name}: events ended: {e}"),
                }
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!(
                "{name}: no {what} (bounded wait, not a timing assertion); saw {:?}",
                self.seen
            )
        })
    }

    async fn tamper_error(&mut self) -> (String, Option<u64>) {
        match self
            .wait(
                "signaling-tampered error",
                |e| matches!(e, NetEvent::Error { code, .. } if code == "signaling-tampered"),
            )
            .await
        {
            NetEvent::Error {
                message,
                fatal,
                peer,
                ..
            } => {
                assert!(!fatal, "a refused connection does not end the session");
                (message, peer)
            }
            _ => unreachable!("matched above"),
        }
    }

    /// It reported a link to a peer at some point.
    fn ever_linked(&self) -> bool {
        self.seen.iter().any(|e| {
            matches!(
                e,
                NetEvent::Peer {
                    state: LinkState::Connected,
                    ..
                }
            )
        })
    }
}

fn add(c: &str, v: f64) -> Request {
    Request::AddContact {
        id: Some(id!(c)),
        group: id!("root"),
        name: None,
        blend: Default::default(),
        value: Value::from(v),
        boundary: None,
    }
}

/// A host with one contact already in its network, and its room code.
async fn host(url: &str, key: Option<RoomKey>) -> (Peer, String) {
    let mut net = Network::new();
    net.apply(add("from-host", 1.0))
        .expect("a fresh network takes a contact");
    let mut host = Peer::start(
        "host",
        url,
        Room::Create {
            password: None,
            max_peers: None,
        },
        key,
        Start::Host(net),
    );
    let code = match host
        .wait("room", |e| matches!(e, NetEvent::Room { .. }))
        .await
    {
        NetEvent::Room { code } => code,
        _ => unreachable!("matched above"),
    };
    (host, code)
}

fn guest(url: &str, code: &str, key: Option<RoomKey>) -> Peer {
    Peer::start(
        "guest",
        url,
        Room::Join {
            code: code.to_owned(),
            password: None,
            trust_server: false,
        },
        key,
        Start::Guest,
    )
}

async fn hash(p: &Peer) -> String {
    p.client
        .status_now()
        .await
        .expect("running")
        .hash
        .expect("asked for")
}

/// Both peers hold the same state, the guest's edit included.
async fn converge(host: &Peer, guest: &Peer, edit: &str) {
    bounded(
        "guest editable",
        wait_for(&guest.client, |s| s.synced && !s.read_only),
    )
    .await
    .unwrap();
    guest
        .client
        .submit(add(edit, 2.0))
        .await
        .expect("the host takes the edit");
    bounded("host sees the edit", async {
        loop {
            bounded(
                "pending settles",
                wait_for(&guest.client, |s| s.pending == 0),
            )
            .await
            .unwrap();
            if hash(host).await == hash(guest).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// Neither side has a link, and the guest never got the host's state.
async fn nothing_crossed(host: &Peer, guest: &Peer) {
    assert!(!host.ever_linked(), "host linked: {:?}", host.seen);
    assert!(!guest.ever_linked(), "guest linked: {:?}", guest.seen);
    assert!(
        !guest
            .seen
            .iter()
            .any(|e| matches!(e, NetEvent::Synced { .. })),
        "the guest got the host's state: {:?}",
        guest.seen
    );
    let g = guest.client.status_now().await.unwrap();
    assert!(!g.synced && g.read_only, "{g:?}");
    let h = host.client.status_now().await.unwrap();
    assert!(
        h.peers.iter().all(|p| p.state != LinkState::Connected),
        "{h:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_offer_fingerprint_is_refused_by_the_host_and_nothing_crosses() {
    let sig = signaling().await;
    let proxy = Proxy::start(sig.url.clone(), Mode::TamperOffers).await;
    let key = RoomKey::generate().unwrap();
    let (mut host, code) = host(&proxy.url(), Some(key.clone())).await;
    let mut guest = guest(&proxy.url(), &code, Some(key));
    // The guest (member 2) offers; the host gets the offer with another fingerprint.
    let (message, peer) = host.tamper_error().await;
    assert_eq!(peer, Some(2));
    assert!(
        message.starts_with(
            "connection to peer 2 refused: the signaling path was tampered with: the \
             offer/answer's DTLS fingerprint is not the one its sender signed"
        ),
        "{message}"
    );
    assert!(message.contains("or the server itself"), "{message}");
    assert!(proxy.tampered() >= 1);
    // Give the guest's side its say too: whatever it saw, it never linked.
    guest
        .seen
        .extend(std::iter::from_fn(|| guest.events.try_recv().ok()));
    nothing_crossed(&host, &guest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_answer_fingerprint_is_refused_by_the_guest_every_time_it_dials() {
    let sig = signaling().await;
    let proxy = Proxy::start(sig.url.clone(), Mode::TamperAnswers).await;
    let key = RoomKey::generate().unwrap();
    let (mut host, code) = host(&proxy.url(), Some(key.clone())).await;
    let mut guest = guest(&proxy.url(), &code, Some(key));
    // The guest refuses the host's answer, stops that attempt and dials again: refused again.
    for _ in 0..2 {
        let (message, peer) = guest.tamper_error().await;
        assert_eq!(peer, Some(1));
        assert!(
            message
                .starts_with("connection to peer 1 refused: the signaling path was tampered with:"),
            "{message}"
        );
    }
    host.seen
        .extend(std::iter::from_fn(|| host.events.try_recv().ok()));
    nothing_crossed(&host, &guest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_room_key_is_refused_as_not_signed_with_this_rooms_key() {
    let sig = signaling().await;
    let proxy = Proxy::start(sig.url.clone(), Mode::Honest).await;
    let (mut host, code) = host(&proxy.url(), Some(RoomKey::generate().unwrap())).await;
    let mut guest = guest(&proxy.url(), &code, Some(RoomKey::generate().unwrap()));
    let (message, peer) = host.tamper_error().await;
    assert_eq!(peer, Some(2));
    assert!(
        message.contains("not signed with this room's key"),
        "{message}"
    );
    assert!(
        !message.contains("bare room code"),
        "it was signed: {message}"
    );
    guest
        .seen
        .extend(std::iter::from_fn(|| guest.events.try_recv().ok()));
    nothing_crossed(&host, &guest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_without_the_key_is_refused_as_unsigned() {
    let sig = signaling().await;
    let (mut host, code) = host(&sig.url, Some(RoomKey::generate().unwrap())).await;
    let mut guest = guest(&sig.url, &code, None);
    let (message, _) = host.tamper_error().await;
    assert!(message.contains("bare room code"), "{message}");
    guest
        .seen
        .extend(std::iter::from_fn(|| guest.events.try_recv().ok()));
    nothing_crossed(&host, &guest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_an_honest_proxy_peers_with_the_key_connect_and_converge() {
    let sig = signaling().await;
    let proxy = Proxy::start(sig.url.clone(), Mode::Honest).await;
    let key = RoomKey::generate().unwrap();
    let (host, code) = host(&proxy.url(), Some(key.clone())).await;
    let guest = guest(&proxy.url(), &code, Some(key));
    converge(&host, &guest, "from-guest").await;
    assert_eq!(proxy.tampered(), 0);
    for p in [&host, &guest] {
        assert!(
            !p.seen
                .iter()
                .any(|e| matches!(e, NetEvent::Error { code, .. } if code == "signaling-tampered")),
            "{}: {:?}",
            p.name,
            p.seen
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_nothing_is_signed_and_peers_still_connect() {
    let sig = signaling().await;
    let proxy = Proxy::start(sig.url.clone(), Mode::Honest).await;
    let (host, code) = host(&proxy.url(), None).await;
    let guest = guest(&proxy.url(), &code, None);
    converge(&host, &guest, "from-guest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_offer_is_refused_and_the_live_link_goes_on() {
    let sig = signaling().await;
    let proxy = Proxy::start(sig.url.clone(), Mode::Honest).await;
    let key = RoomKey::generate().unwrap();
    let (mut host, code) = host(&proxy.url(), Some(key.clone())).await;
    let guest = guest(&proxy.url(), &code, Some(key));
    converge(&host, &guest, "before-replay").await;
    // The proxy plays the guest's offer to the host once more.
    assert!(proxy.replay_offers() >= 1);
    let (message, peer) = host.tamper_error().await;
    assert_eq!(peer, Some(2));
    assert!(message.contains("replayed"), "{message}");
    // The link it copied is untouched: edits still cross.
    converge(&host, &guest, "after-replay").await;
}
