//! The driver over the in-memory transport: real sessions, real frames, no sockets.

use std::time::Duration;

use bassline_core::{Network, NetworkClient, Reply, Request, Value, id};
use bassline_net::{LinkState, MemoryNet, NetClient, NetEvent, Start, wait_for};
use bassline_sync::Config;

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("bounded wait (not a timing assertion)")
}

fn add(c: &str) -> Request {
    Request::AddContact {
        id: Some(id!(c)),
        group: id!("root"),
        name: None,
        blend: Default::default(),
        value: Value::Null,
        boundary: None,
    }
}

fn set(c: &str, v: f64) -> Request {
    Request::UpdateContent {
        contact: id!(c),
        value: Value::from(v),
    }
}

async fn hash(c: &NetClient) -> String {
    c.status_now()
        .await
        .expect("running")
        .hash
        .expect("asked for")
}

/// Both sides hold the same state with nothing pending.
async fn converged(a: &NetClient, b: &NetClient) {
    bounded(async {
        loop {
            let (sa, sb) = (a.status_now().await.unwrap(), b.status_now().await.unwrap());
            if sa.synced && sb.synced && sa.pending == 0 && sb.pending == 0 && sa.hash == sb.hash {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// A host and two guests, fully linked and synced, with a contact `a`.
async fn trio(net: &MemoryNet, cfg: Config) -> [NetClient; 3] {
    let host = NetClient::spawn(net.join(1, None), cfg.clone(), Start::Host(Network::new()));
    let g2 = NetClient::spawn(net.join(2, Some(1)), cfg.clone(), Start::Guest);
    let g3 = NetClient::spawn(net.join(3, Some(1)), cfg, Start::Guest);
    net.link(1, 2);
    net.link(1, 3);
    net.link(2, 3);
    bounded(wait_for(&g2, |s| s.synced && !s.read_only))
        .await
        .unwrap();
    g2.submit(add("a")).await.unwrap();
    converged(&host, &g2).await;
    converged(&host, &g3).await;
    [host, g2, g3]
}

/// Cuts the host's link to guest 2 (guest 3 still sees both, so 2 waits rather than electing),
/// makes five edits at the host, links again, and returns whether guest 2 was sent the whole
/// state to catch up.
async fn cut_edit_relink(net: &MemoryNet, [host, g2, _]: &[NetClient; 3]) -> bool {
    net.cut(1, 2);
    bounded(wait_for(host, |s| {
        s.peers
            .iter()
            .any(|p| p.peer == 2 && p.state != bassline_net::LinkState::Connected)
    }))
    .await
    .unwrap();
    for i in 0..5 {
        host.submit(set("a", f64::from(i))).await.unwrap();
    }
    let mut events = g2.events();
    net.link(1, 2);
    converged(host, g2).await;
    assert_eq!(hash(host).await, hash(g2).await);
    let mut replaced = false;
    while let Ok(ev) = events.try_recv() {
        replaced |= ev == NetEvent::Replaced;
    }
    assert_eq!(
        g2.status_now().await.unwrap().role,
        "guest",
        "no election happened"
    );
    replaced
}

#[tokio::test]
async fn a_guest_whose_link_was_cut_catches_up_by_delta() {
    let net = MemoryNet::new();
    let peers = trio(&net, Config::default()).await;
    // The missed edits come as operations from the host's log, not as a whole state.
    assert!(
        !cut_edit_relink(&net, &peers).await,
        "the guest was sent the whole state"
    );
}

#[tokio::test]
async fn a_cut_guest_catches_up_by_delta_even_past_the_log_cap() {
    // The log drops an entry only once every member has it: the host keeps what the cut guest
    // lacks however short the log, so even here the guest is sent operations, not the state.
    let net = MemoryNet::new();
    let cfg = Config {
        log_cap: 2,
        ..Config::default()
    };
    let peers = trio(&net, cfg).await;
    assert!(
        !cut_edit_relink(&net, &peers).await,
        "the guest was sent the whole state"
    );
    // The check can see a whole state: a newcomer is always sent one.
    let newcomer = NetClient::spawn(net.join(4, Some(1)), Config::default(), Start::Guest);
    let mut seen = newcomer.events();
    net.link(1, 4);
    bounded(wait_for(&newcomer, |s| s.synced)).await.unwrap();
    let mut replaced = false;
    while let Ok(ev) = seen.try_recv() {
        replaced |= ev == NetEvent::Replaced;
    }
    assert!(replaced);
}

#[tokio::test]
async fn refusals_are_typed_errors_and_queries_answer_locally() {
    let net = MemoryNet::new();
    let host = NetClient::spawn(
        net.join(1, None),
        Config::default(),
        Start::Host(Network::new()),
    );
    let err = host.submit(set("missing", 1.0)).await.unwrap_err();
    assert!(matches!(err, bassline_net::Error::Request(_)), "{err:?}");
    // A guest with no host yet is read-only.
    let lonely = NetClient::spawn(net.join(3, Some(1)), Config::default(), Start::Guest);
    bounded(wait_for(&lonely, |s| s.me == Some(3)))
        .await
        .unwrap();
    assert_eq!(
        lonely.submit(add("x")).await.unwrap_err(),
        bassline_net::Error::ReadOnly
    );
    let answer = host.submit(Request::ExportState).await.unwrap();
    assert!(answer.changes.is_empty());
}

#[tokio::test]
async fn an_add_without_an_id_answers_with_the_id_every_peer_creates() {
    let net = MemoryNet::new();
    let [host, g2, g3] = trio(&net, Config::default()).await;
    let mut request = add("unused");
    if let Request::AddContact { id, .. } = &mut request {
        *id = None;
    }
    let reply = g2.submit(request).await.unwrap().reply;
    let Reply::Created { id } = reply else {
        panic!("an add answers the id it was given, not {reply:?}")
    };
    converged(&host, &g2).await;
    converged(&host, &g3).await;
    for peer in [&host, &g2, &g3] {
        peer.request(Request::GetContact { id: id.clone() })
            .await
            .expect("every peer created the contact under the id the origin was told");
    }
}

/// Collects the `decided` events a client reports until its edits are all decided.
async fn decided_after(
    c: &NetClient,
    events: &mut tokio::sync::broadcast::Receiver<NetEvent>,
) -> Vec<NetEvent> {
    bounded(wait_for(c, |s| s.pending == 0)).await.unwrap();
    let mut out = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if matches!(ev, NetEvent::Decided { .. }) {
            out.push(ev);
        }
    }
    out
}

#[tokio::test]
async fn the_origin_alone_is_told_each_decision_once() {
    let net = MemoryNet::new();
    let [host, g2, g3] = trio(&net, Config::default()).await;
    let (mut e1, mut e2, mut e3) = (host.events(), g2.events(), g3.events());
    g2.submit(set("a", 1.0)).await.unwrap();
    g2.submit(set("missing", 2.0))
        .await
        .expect_err("refused where it is made");
    g3.submit(set("a", 3.0)).await.unwrap();
    converged(&host, &g2).await;
    converged(&host, &g3).await;
    let mine = |evs: Vec<NetEvent>, peer| {
        evs.into_iter()
            .map(|e| match e {
                NetEvent::Decided { op, decision, .. } => {
                    assert_eq!(op.peer, peer, "told of another peer's edit: {decision:?}");
                    op.counter
                }
                _ => unreachable!("filtered"),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(mine(decided_after(&g2, &mut e2).await, 2).len(), 1);
    assert_eq!(mine(decided_after(&g3, &mut e3).await, 3).len(), 1);
    assert!(decided_after(&host, &mut e1).await.is_empty());
}

#[tokio::test]
async fn a_peer_that_left_no_longer_holds_back_the_log() {
    let net = MemoryNet::new();
    let cfg = Config {
        log_cap: 2,
        ..Config::default()
    };
    let [host, g2, _g3] = trio(&net, cfg).await;
    // Guest 3 is cut off: the host keeps every operation it may lack, past the cap.
    net.cut(1, 3);
    net.cut(2, 3);
    bounded(wait_for(&host, |s| {
        s.peers
            .iter()
            .any(|p| p.peer == 3 && p.state != LinkState::Connected)
    }))
    .await
    .unwrap();
    for i in 0..10 {
        host.submit(set("a", f64::from(i))).await.unwrap();
    }
    converged(&host, &g2).await;
    let log = |c: NetClient| async move { c.stats().await.unwrap().expect("running").log };
    assert!(log(host.clone()).await > 2, "kept for the absent guest");
    // It leaves the room for good: nothing is kept for it any more.
    net.leave(3);
    bounded(wait_for(&host, |s| {
        s.peers
            .iter()
            .any(|p| p.peer == 3 && p.state == LinkState::Left)
    }))
    .await
    .unwrap();
    host.submit(set("a", 10.0)).await.unwrap();
    converged(&host, &g2).await;
    bounded(async {
        while log(host.clone()).await > 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Two peers alone: a cut shorter than the host timeout is waited out (nobody else to ask),
/// and the guest catches up by delta, still a guest.
#[tokio::test]
async fn a_two_peer_room_rides_out_a_short_cut() {
    let net = MemoryNet::new();
    let host = NetClient::spawn(
        net.join(1, None),
        Config::default(),
        Start::Host(Network::new()),
    );
    let guest = NetClient::spawn(net.join(2, Some(1)), Config::default(), Start::Guest);
    net.link(1, 2);
    bounded(wait_for(&guest, |s| s.synced && !s.read_only))
        .await
        .unwrap();
    guest.submit(add("a")).await.unwrap();
    converged(&host, &guest).await;
    let mut events = guest.events();
    net.cut(1, 2);
    bounded(wait_for(&guest, |s| s.read_only)).await.unwrap();
    host.submit(set("a", 5.0)).await.unwrap();
    net.link(1, 2);
    converged(&host, &guest).await;
    let mut replaced = false;
    while let Ok(ev) = events.try_recv() {
        replaced |= ev == NetEvent::Replaced;
        assert!(
            !matches!(&ev, NetEvent::Role { role, .. } if *role != "guest"),
            "the guest stood for election over a short cut: {ev:?}"
        );
    }
    assert!(!replaced, "caught up by delta, not the whole state");
    let (h, g) = (
        host.status_now().await.unwrap(),
        guest.status_now().await.unwrap(),
    );
    assert_eq!((h.role, g.role, g.host), ("host", "guest", Some(1)));
}

/// Two peers cut for longer than the host timeout: the guest leads alone meanwhile, and when
/// the link returns the host that others followed keeps the room; the guest's edit made alone
/// is decided again by it, and nothing is lost.
#[tokio::test]
async fn a_two_peer_room_after_a_long_cut_keeps_its_host_and_both_sides_edits() {
    let net = MemoryNet::new();
    let host = NetClient::spawn(
        net.join(1, None),
        Config::default(),
        Start::Host(Network::new()),
    );
    let guest = NetClient::spawn(net.join(2, Some(1)), Config::default(), Start::Guest);
    net.link(1, 2);
    bounded(wait_for(&guest, |s| s.synced && !s.read_only))
        .await
        .unwrap();
    guest.submit(add("a")).await.unwrap();
    guest.submit(add("b")).await.unwrap();
    converged(&host, &guest).await;
    net.cut(1, 2);
    bounded(wait_for(&guest, |s| s.role == "host"))
        .await
        .unwrap();
    host.submit(set("a", 1.0)).await.unwrap();
    guest.submit(set("b", 2.0)).await.unwrap();
    net.link(1, 2);
    bounded(wait_for(&guest, |s| s.role == "guest" && s.host == Some(1)))
        .await
        .unwrap();
    converged(&host, &guest).await;
    assert_eq!(host.status_now().await.unwrap().role, "host");
    for peer in [&host, &guest] {
        for (c, v) in [("a", 1.0), ("b", 2.0)] {
            let reply = peer
                .request(Request::GetContact { id: id!(c) })
                .await
                .unwrap()
                .reply;
            let Reply::Contact { contact } = reply else {
                panic!("{reply:?}")
            };
            assert_eq!(contact.value, Value::from(v), "{c}");
        }
    }
}
