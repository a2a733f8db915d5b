//! The driver over the in-memory transport: real sessions, real frames, no sockets.

use std::time::Duration;

use bassline_core::{Network, Request, Value, id};
use bassline_net::{MemoryNet, NetClient, NetEvent, Start, wait_for};
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
async fn a_guest_too_far_behind_gets_the_whole_state() {
    // The same cut with a log too short to reach back: shows the check above can fail.
    let net = MemoryNet::new();
    let cfg = Config {
        log_cap: 2,
        ..Config::default()
    };
    let peers = trio(&net, cfg).await;
    assert!(cut_edit_relink(&net, &peers).await);
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
