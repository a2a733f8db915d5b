//! `cargo xtask bench net`: the network figures, side by side in one run, printed as a
//! Markdown table (xtask copies it into docs/BENCHMARKS.md). Everything runs on loopback in
//! this process: webrtc-rs on both ends, release build.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bassline_core::{Change, Network, Request, Value, id};
use bassline_net::{
    NetClient, Start, Transport, TransportEvent, pair::loopback_pair, rtc::RtcConfig, wait_for,
};
use bassline_sync::{Channel, Config};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use webrtc::{
    data_channel::{DataChannel, DataChannelEvent},
    peer_connection::{
        PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceCandidateInit,
        RTCPeerConnectionIceEvent,
    },
};

fn loopback(fast: bool) -> RtcConfig {
    RtcConfig {
        ice_servers: Vec::new(),
        bind: vec!["127.0.0.1:0".into()],
        fast_connect: fast,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

struct Row(String, String, String);

/// Our link: both channels open on both sides. The links are held until both are up:
/// letting go of one closes it.
async fn open_ours(fast: bool) -> Duration {
    let t = Instant::now();
    let (mut a, mut b) = loopback_pair(loopback(fast), 1, 2);
    let mut links = Vec::new();
    for side in [&mut a, &mut b] {
        loop {
            match side.recv().await {
                Some(TransportEvent::Up(link)) => {
                    links.push(link);
                    break;
                }
                Some(TransportEvent::Fatal(e)) => panic!("link failed: {e}"),
                Some(_) => continue,
                None => panic!("link ended before opening"),
            }
        }
    }
    t.elapsed()
}

struct Fwd(mpsc::UnboundedSender<RTCIceCandidateInit>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Fwd {
    async fn on_ice_candidate(&self, e: RTCPeerConnectionIceEvent) {
        if let Ok(c) = e.candidate.to_json() {
            let _ = self.0.send(c);
        }
    }
    async fn on_data_channel(&self, _dc: Arc<dyn DataChannel>) {}
}

/// A bare webrtc-rs channel with its defaults: one in-band channel, offer, answer, trickled
/// candidates; open when the offerer's channel reports open.
async fn open_bare() -> Duration {
    let t = Instant::now();
    let (ta, mut ra) = mpsc::unbounded_channel();
    let (tb, mut rb) = mpsc::unbounded_channel();
    let a: Arc<dyn PeerConnection> = Arc::new(
        PeerConnectionBuilder::new()
            .with_handler(Arc::new(Fwd(ta)))
            .with_udp_addrs(vec!["127.0.0.1:0"])
            .build()
            .await
            .expect("peer connection"),
    );
    let b: Arc<dyn PeerConnection> = Arc::new(
        PeerConnectionBuilder::new()
            .with_handler(Arc::new(Fwd(tb)))
            .with_udp_addrs(vec!["127.0.0.1:0"])
            .build()
            .await
            .expect("peer connection"),
    );
    let dc = a.create_data_channel("bare", None).await.expect("channel");
    let offer = a.create_offer(None).await.expect("offer");
    a.set_local_description(offer.clone()).await.expect("local");
    b.set_remote_description(offer).await.expect("remote");
    let answer = b.create_answer(None).await.expect("answer");
    b.set_local_description(answer.clone())
        .await
        .expect("local");
    a.set_remote_description(answer).await.expect("remote");
    let (a2, b2) = (a.clone(), b.clone());
    let fa = tokio::spawn(async move {
        while let Some(c) = ra.recv().await {
            let _ = b2.add_ice_candidate(c).await;
        }
    });
    let fb = tokio::spawn(async move {
        while let Some(c) = rb.recv().await {
            let _ = a2.add_ice_candidate(c).await;
        }
    });
    while let Some(ev) = dc.poll().await {
        if matches!(ev, DataChannelEvent::OnOpen) {
            break;
        }
    }
    let took = t.elapsed();
    fa.abort();
    fb.abort();
    let _ = a.close().await;
    let _ = b.close().await;
    took
}

/// A host and a guest over one WebRTC link, the guest synced.
async fn session_pair(host_net: Network, config: Config) -> (NetClient, NetClient) {
    let (a, b) = loopback_pair(loopback(true), 1, 2);
    let host = NetClient::spawn(
        Transport::from_receiver(a),
        config.clone(),
        Start::Host(host_net),
    );
    let guest = NetClient::spawn(Transport::from_receiver(b), config, Start::Guest);
    wait_for(&guest, |s| s.synced && !s.read_only)
        .await
        .expect("guest syncs");
    (host, guest)
}

fn update(i: usize) -> Request {
    Request::UpdateContent {
        contact: id!("g0/c0"),
        value: Value::from(i as f64),
    }
}

fn small_network() -> Network {
    Network::import(&bassline_protocol::bench_data::network(100, 0)).expect("bench network")
}

/// Waits on the guest's change stream for contact g0/c0 to hold `want`.
async fn until_value(changes: &mut bassline_core::ChangeStream, want: f64) {
    while let Some(batch) = changes.next().await {
        for c in batch.iter() {
            if let Change::ContactUpdated { id, value, .. } = c
                && id.as_str() == "g0/c0"
                && *value == Value::from(want)
            {
                return;
            }
        }
    }
    panic!("change stream ended");
}

/// Change latency (edits one at a time) and sustained throughput (edits as fast as the host
/// takes them) from host to guest, with the session's batch window set to `window`.
async fn changes(rows: &mut Vec<Row>, window: Duration) {
    let config = Config {
        batch_window: window,
        ..Config::default()
    };
    let (host, guest) = session_pair(small_network(), config).await;
    let mut changes = bassline_core::NetworkClient::subscribe(&guest);
    let mut lat = Vec::new();
    for i in 1..=500 {
        let t = Instant::now();
        host.submit(update(i)).await.expect("host edits");
        until_value(&mut changes, i as f64).await;
        lat.push(t.elapsed());
    }
    lat.sort();
    let w = ms(window);
    rows.push(Row(
        format!("change latency host -> guest, batch window {w} (500 edits, one at a time)"),
        format!(
            "p50 {} / p99 {}",
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99))
        ),
        "p50 < 1 ms".into(),
    ));
    // The same edits 50 ms apart, as a person makes them (typing, dragging at frame rate): each
    // comes after a quiet spell longer than the window, so none waits for a batch.
    let mut lat = Vec::new();
    for i in 501..=600 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = Instant::now();
        host.submit(update(i)).await.expect("host edits");
        until_value(&mut changes, i as f64).await;
        lat.push(t.elapsed());
    }
    lat.sort();
    rows.push(Row(
        format!("change latency host -> guest, batch window {w} (100 edits, 50 ms apart)"),
        format!(
            "p50 {} / p99 {}",
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99))
        ),
        "p50 < 1 ms".into(),
    ));
    let n = 20_000;
    let t = Instant::now();
    for i in 1..=n {
        host.submit(update(1000 + i)).await.expect("host edits");
    }
    until_value(&mut changes, (1000 + n) as f64).await;
    let took = t.elapsed();
    rows.push(Row(
        format!("sustained changes host -> guest, batch window {w} ({n} edits)"),
        format!("{:.0} changes/s", n as f64 / took.as_secs_f64()),
        String::new(),
    ));
}

/// The raw round trip of one link, for comparison: frames echoed by a bare link pair.
async fn bare_rtt(rows: &mut Vec<Row>) {
    let (mut a, mut b) = loopback_pair(loopback(true), 1, 2);
    let la = loop {
        if let Some(TransportEvent::Up(l)) = a.recv().await {
            break l;
        }
    };
    let lb = loop {
        if let Some(TransportEvent::Up(l)) = b.recv().await {
            break l;
        }
    };
    let mut rtt = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        la.send(Channel::Reliable, vec![0; 28]).expect("send");
        loop {
            if let Some(TransportEvent::Frame { frame, .. }) = b.recv().await {
                lb.send(Channel::Reliable, frame).expect("echo");
                break;
            }
        }
        loop {
            if let Some(TransportEvent::Frame { .. }) = a.recv().await {
                break;
            }
        }
        rtt.push(t.elapsed());
    }
    rtt.sort();
    rows.push(Row(
        "bare data channel round trip (28-byte frame echoed)".into(),
        format!(
            "p50 {} / p99 {}",
            ms(percentile(&rtt, 0.5)),
            ms(percentile(&rtt, 0.99))
        ),
        "reference".into(),
    ));
}

async fn join_to_synced(rows: &mut Vec<Row>, contacts: usize, target: &str) {
    // The codec benchmarks' generated network; its random wires include a few from a contact to
    // itself, which a network refuses, so those are left out (about 1 %).
    let mut doc = bassline_protocol::bench_data::network(contacts, contacts);
    for g in &mut doc.root.groups {
        g.wires.retain(|w| w.from != w.to);
    }
    let net = Network::import(&doc).expect("bench network");
    let mut took = Vec::new();
    for _ in 0..3 {
        let (a, b) = loopback_pair(loopback(true), 1, 2);
        let host = NetClient::spawn(
            Transport::from_receiver(a),
            Config::default(),
            Start::Host(net.clone()),
        );
        // Timed from the moment the guest exists until it holds the host's state; the link
        // set-up is part of joining.
        let t = Instant::now();
        let guest = NetClient::spawn(Transport::from_receiver(b), Config::default(), Start::Guest);
        wait_for(&guest, |s| s.synced && !s.read_only)
            .await
            .expect("guest syncs");
        took.push(t.elapsed());
        drop((host, guest));
    }
    took.sort();
    rows.push(Row(
        format!("join to synced, {contacts} contacts + ~{contacts} wires (link set-up included; median of 3)"),
        ms(took[1]),
        target.into(),
    ));
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let runs: usize = std::env::var("BASSLINE_BENCH_OPENS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let mut rows = Vec::new();
    rt.block_on(async {
        for (name, which) in [
            ("bare webrtc-rs channel, defaults (in-band channel)", 0),
            ("our link, webrtc-rs default ICE timing", 1),
            ("our link, fast connect (ICE checks every 2 ms)", 2),
        ] {
            let mut v = Vec::new();
            for _ in 0..runs {
                v.push(match which {
                    0 => open_bare().await,
                    1 => open_ours(false).await,
                    _ => open_ours(true).await,
                });
            }
            v.sort();
            rows.push(Row(
                format!("data channel open: {name} ({runs} runs)"),
                format!(
                    "median {} / p99 {}",
                    ms(percentile(&v, 0.5)),
                    ms(percentile(&v, 0.99))
                ),
                if which == 2 {
                    "median < 100 ms".into()
                } else {
                    "reference".into()
                },
            ));
        }
        bare_rtt(&mut rows).await;
        changes(&mut rows, Config::default().batch_window).await;
        changes(&mut rows, Duration::ZERO).await;
        join_to_synced(&mut rows, 10_000, "< 150 ms").await;
        join_to_synced(&mut rows, 100_000, "< 1 s").await;
    });
    println!("| benchmark | figure | target |\n|---|---|---|");
    for Row(a, b, c) in rows {
        println!("| {a} | {b} | {c} |");
    }
}
