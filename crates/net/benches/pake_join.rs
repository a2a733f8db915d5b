//! `cargo bench -p bassline-net --bench pake_join`: what joining by room code + password costs
//! beside joining by link. A real signaling server and webrtc-rs peers on loopback, in this
//! process: a host holding the room key and a password, and a guest that either has the key
//! (the join link) or runs the PAKE with the host first. The figure is from the guest's start
//! (connect, hello, join-room) to its link to the host being up, median of N runs
//! (`BASSLINE_BENCH_JOINS`, default 9), runs of both kinds interleaved.

use std::time::{Duration, Instant};

use bassline_net::{
    TransportEvent,
    p2p::{P2pConfig, Room, p2p},
    rtc::RtcConfig,
};
use bassline_signal::server::{self, ServerConfig};
use bassline_trust::RoomKey;

const PASSWORD: &str = "correct horse battery";

fn config(url: &str, room: Room, key: Option<RoomKey>) -> P2pConfig {
    P2pConfig {
        signal_url: url.to_owned(),
        room,
        rtc: RtcConfig {
            ice_servers: Vec::new(),
            bind: vec!["127.0.0.1:0".into()],
            fast_connect: true,
        },
        room_key: key,
        guess_limiter: Default::default(),
    }
}

/// One join into a fresh room: time from the guest's start to its first link up.
async fn join(url: &str, by_link: bool) -> Duration {
    let key = RoomKey::generate().expect("a room key");
    let mut host = p2p(config(
        url,
        Room::Create {
            password: Some(PASSWORD.into()),
            max_peers: None,
        },
        Some(key.clone()),
    ));
    let code = loop {
        match host.next_event().await.expect("the host runs") {
            TransportEvent::Room { code } => break code,
            TransportEvent::Fatal(e) => panic!("host: {e}"),
            _ => {}
        }
    };
    // The host must keep reading its events while the guest joins.
    let host_task = tokio::spawn(async move {
        let mut links = Vec::new();
        while let Some(ev) = host.next_event().await {
            if let TransportEvent::Up(link) = ev {
                links.push(link);
            }
        }
    });
    let started = Instant::now();
    let mut guest = p2p(config(
        url,
        Room::Join {
            code,
            password: (!by_link).then(|| PASSWORD.to_owned()),
            trust_server: false,
        },
        by_link.then_some(key),
    ));
    let took = loop {
        match guest.next_event().await.expect("the guest runs") {
            TransportEvent::Up(_) => break started.elapsed(),
            TransportEvent::Fatal(e) => panic!("guest: {e}"),
            _ => {}
        }
    };
    drop(guest);
    host_task.abort();
    took
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let runs: usize = std::env::var("BASSLINE_BENCH_JOINS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(9);
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let mut cfg = ServerConfig::default();
        cfg.ice.stun_urls = Vec::new();
        tokio::spawn(server::serve(listener, cfg, std::future::pending()));
        let (mut link, mut pake) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            link.push(join(&url, true).await);
            pake.push(join(&url, false).await);
        }
        link.sort();
        pake.sort();
        let median = |v: &[Duration]| v[v.len() / 2];
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
        println!("| join (start to link up, loopback, median of {runs}) | figure |\n|---|---|");
        println!("| by link (room key in hand) | {} |", ms(median(&link)));
        println!(
            "| by code + password (PAKE with the host first) | {} |",
            ms(median(&pake))
        );
        println!(
            "| PAKE's share | +{} |",
            ms(median(&pake).saturating_sub(median(&link)))
        );
    });
}
