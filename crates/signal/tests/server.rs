//! The server over real loopback WebSockets: the whole flow, every refusal, hardening.

mod common;

use std::time::Duration;

use bassline_signal::{ErrorCode, ServerMessage};
use common::{Client, Server, bounded, http_get, joined_second, test_config};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn whole_flow_with_password_ice_and_host_change() {
    let mut cfg = test_config();
    cfg.ice.turn_urls = vec!["turn:127.0.0.1:3478".into()];
    cfg.ice.turn_secret = Some("shared-with-coturn".into());
    cfg.ice.turn_ttl = Duration::from_secs(600);
    let server = Server::start(cfg).await;

    let mut host = Client::connect(&server).await;
    host.send(r#"{"type":"hello","version":1}"#).await;
    let ServerMessage::Welcome {
        version,
        peer_id: host_id,
        ice_servers,
        resumed,
        ..
    } = host.recv().await
    else {
        panic!("expected welcome")
    };
    assert_eq!((version, resumed), (1, false));
    assert_eq!(ice_servers[0].urls, vec!["stun:127.0.0.1:3478".to_string()]);
    let user = ice_servers[1].username.clone().unwrap();
    let (expiry, peer) = user.split_once(':').unwrap();
    assert_eq!(peer, host_id.to_string());
    assert!(expiry.parse::<u64>().is_ok());
    let expected = bassline_signal::ice::turn_credentials(
        b"shared-with-coturn",
        expiry.parse().unwrap(),
        peer,
    )
    .1;
    assert_eq!(
        ice_servers[1].credential.as_deref(),
        Some(expected.as_str())
    );

    let code = host
        .create(r#"{"type":"create-room","password":"hunter2","max_peers":3}"#)
        .await;

    let mut guest = Client::connect(&server).await;
    let (guest_id, _) = guest.hello().await;
    let lower = code.as_str().to_ascii_lowercase();
    guest
        .send(&format!(
            r#"{{"type":"join-room","code":"{lower}","password":"hunter2"}}"#
        ))
        .await;
    assert_eq!(guest.recv().await, joined_second(code, host_id, guest_id));
    assert_eq!(
        host.recv().await,
        ServerMessage::PeerJoined {
            peer: guest_id,
            number: 2
        }
    );

    guest
        .send(&format!(
            r#"{{"type":"offer","to":"{host_id}","sdp":"v=0 o"}}"#
        ))
        .await;
    assert_eq!(
        host.recv().await,
        ServerMessage::Offer {
            from: guest_id,
            sdp: "v=0 o".into(),
            auth: None,
        }
    );
    host.send(&format!(
        r#"{{"type":"answer","to":"{guest_id}","sdp":"v=0 a"}}"#
    ))
    .await;
    assert_eq!(
        guest.recv().await,
        ServerMessage::Answer {
            from: host_id,
            sdp: "v=0 a".into(),
            auth: None,
        }
    );
    host.send(&format!(
        r#"{{"type":"candidate","to":"{guest_id}","candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdp_mid":"0","sdp_m_line_index":0}}"#
    ))
    .await;
    assert!(matches!(guest.recv().await, ServerMessage::Candidate { from, .. } if from == host_id));

    let mut third = Client::connect(&server).await;
    let (third_id, _) = third.hello().await;
    third
        .send(&format!(
            r#"{{"type":"join-room","code":"{code}","password":"hunter2"}}"#
        ))
        .await;
    assert!(matches!(third.recv().await, ServerMessage::Joined { .. }));
    host.recv().await; // peer-joined
    guest.recv().await; // peer-joined

    host.send(r#"{"type":"leave-room"}"#).await;
    assert_eq!(host.recv().await, ServerMessage::Left { code });
    for c in [&mut guest, &mut third] {
        assert_eq!(c.recv().await, ServerMessage::PeerLeft { peer: host_id });
        assert_eq!(
            c.recv().await,
            ServerMessage::HostChanged { host: guest_id }
        );
    }
    let _ = third_id;
    let m = server.handle.metrics();
    assert_eq!((m.rooms, m.joins, m.relayed), (1, 2, 3));
    server.stop().await;
}

/// Each row: what a misbehaving client sends and the error it gets. Meanwhile a room of two
/// well-behaved peers keeps relaying.
#[tokio::test]
async fn bad_input_table_gets_typed_errors_and_other_rooms_keep_working() {
    let mut cfg = test_config();
    cfg.registry.max_msgs_per_sec = 10_000;
    let server = Server::start(cfg).await;

    let mut a = Client::connect(&server).await;
    let (a_id, _) = a.hello().await;
    let good = a.create(r#"{"type":"create-room"}"#).await;
    let mut b = Client::connect(&server).await;
    let (b_id, _) = b.hello().await;
    b.send(&format!(r#"{{"type":"join-room","code":"{good}"}}"#))
        .await;
    assert!(matches!(b.recv().await, ServerMessage::Joined { .. }));
    a.recv().await; // peer-joined

    let mut other_host = Client::connect(&server).await;
    other_host.hello().await;
    let locked = other_host
        .create(r#"{"type":"create-room","password":"right"}"#)
        .await;

    async fn still_relays(a: &mut Client, b: &mut Client, b_id: bassline_signal::PeerId) {
        a.send(&format!(
            r#"{{"type":"offer","to":"{b_id}","sdp":"still here"}}"#
        ))
        .await;
        assert!(matches!(b.recv().await, ServerMessage::Offer { sdp, .. } if sdp == "still here"));
    }

    let mut bad = Client::connect(&server).await;
    let rows: Vec<(&str, Message, ErrorCode)> = vec![
        (
            "invalid JSON",
            Message::text("{\"type\":"),
            ErrorCode::BadMessage,
        ),
        (
            "not an object",
            Message::text("[1,2,3]"),
            ErrorCode::BadMessage,
        ),
        (
            "unknown type",
            Message::text(r#"{"type":"teleport"}"#),
            ErrorCode::BadMessage,
        ),
        (
            "before hello",
            Message::text(r#"{"type":"leave-room"}"#),
            ErrorCode::HelloRequired,
        ),
        (
            "binary frame",
            Message::binary(vec![0u8, 1, 2]),
            ErrorCode::BinaryFrame,
        ),
    ];
    for (what, msg, expected) in rows {
        bad.send_raw(msg).await;
        assert_eq!(bad.error_code().await, expected, "{what}");
        still_relays(&mut a, &mut b, b_id).await;
    }
    bad.hello().await;
    let rows: Vec<(&str, String, ErrorCode)> = vec![
        (
            "bad code format",
            r#"{"type":"join-room","code":"12"}"#.into(),
            ErrorCode::BadCode,
        ),
        (
            "wrong room",
            r#"{"type":"join-room","code":"ZZZZZZ"}"#.into(),
            ErrorCode::RoomNotFound,
        ),
        (
            "wrong password",
            format!(r#"{{"type":"join-room","code":"{locked}","password":"wrong"}}"#),
            ErrorCode::WrongPassword,
        ),
        (
            "relay outside a room",
            format!(r#"{{"type":"offer","to":"{a_id}","sdp":"x"}}"#),
            ErrorCode::NotInRoom,
        ),
    ];
    for (what, json, expected) in rows {
        bad.send(&json).await;
        assert_eq!(bad.error_code().await, expected, "{what}");
        still_relays(&mut a, &mut b, b_id).await;
    }
    // Relay to a member of another room, and to nobody.
    let mut c = Client::connect(&server).await;
    c.hello().await;
    c.create(r#"{"type":"create-room"}"#).await;
    for target in [a_id.to_string(), "00000000000000ff".to_string()] {
        c.send(&format!(r#"{{"type":"offer","to":"{target}","sdp":"x"}}"#))
            .await;
        assert_eq!(c.error_code().await, ErrorCode::UnknownPeer);
    }
    // A flood of joins: after ten failures the address is told to wait.
    let mut flood_errors = Vec::new();
    for i in 0..30 {
        bad.send(&format!(r#"{{"type":"join-room","code":"QQQQ{:02}"}}"#, i))
            .await;
        match bad.recv().await {
            ServerMessage::Error {
                code,
                message,
                retry_after_secs,
            } => flood_errors.push((code, message, retry_after_secs)),
            other => panic!("{other:?}"),
        }
    }
    let throttled: Vec<_> = flood_errors
        .iter()
        .filter(|(c, ..)| *c == ErrorCode::TooManyAttempts)
        .collect();
    // Three failures above (bad code, wrong room, wrong password) plus seven here make ten.
    assert_eq!(throttled.len(), 30 - 7);
    assert!(throttled[0].1.starts_with("too many attempts, retry in "));
    assert!(throttled[0].2.is_some());
    still_relays(&mut a, &mut b, b_id).await;

    // Oversized frame: error, then close 1009.
    let mut big = Client::connect(&server).await;
    big.hello().await;
    let huge = format!(
        r#"{{"type":"offer","to":"{a_id}","sdp":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    big.send(&huge).await;
    assert_eq!(big.error_code().await, ErrorCode::FrameTooLarge);
    // Then the server closes with 1009. The client may see the close frame or, because the rest
    // of its frame was never read, a TCP reset; either way the connection ends.
    if let Some(close) = big.closed().await {
        assert_eq!(u16::from(close.code), 1009);
    }
    still_relays(&mut a, &mut b, b_id).await;

    let metrics = http_get(server.addr, "/metrics").await;
    for line in [
        "signal_rejections_total{reason=\"bad-message\"} 3",
        "signal_rejections_total{reason=\"binary-frame\"} 1",
        "signal_rejections_total{reason=\"frame-too-large\"} 1",
        "signal_rejections_total{reason=\"too-many-attempts\"} 23",
        "signal_rejections_total{reason=\"unknown-peer\"} 2",
        "signal_rooms 3",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    server.stop().await;
}

#[tokio::test]
async fn thousands_of_wrong_codes_from_one_address_are_throttled() {
    let mut cfg = test_config();
    cfg.registry.max_msgs_per_sec = 100_000;
    let server = Server::start(cfg).await;
    let mut host = Client::connect(&server).await;
    host.hello().await;
    let real = host.create(r#"{"type":"create-room"}"#).await;

    // Several connections from 127.0.0.1, guessing in parallel, 3000 guesses in all.
    let mut tasks = Vec::new();
    for worker in 0..4u32 {
        let mut c = Client::connect(&server).await;
        c.hello().await;
        let real = real.as_str().to_string();
        tasks.push(tokio::spawn(async move {
            let mut evaluated = 0u32;
            let mut throttled = 0u32;
            for i in 0..750u32 {
                let guess = format!("{worker}{i:05}");
                assert_ne!(guess, real);
                c.send(&format!(r#"{{"type":"join-room","code":"{guess}"}}"#))
                    .await;
                match c.error_code().await {
                    ErrorCode::RoomNotFound => evaluated += 1,
                    ErrorCode::TooManyAttempts => throttled += 1,
                    other => panic!("{other:?}"),
                }
            }
            (evaluated, throttled)
        }));
    }
    let mut evaluated = 0;
    let mut throttled = 0;
    for t in tasks {
        let (e, t) = bounded(t).await.unwrap();
        evaluated += e;
        throttled += t;
    }
    // The run takes far less than the one-minute window, so exactly ten guesses were looked up.
    assert_eq!(evaluated, 10);
    assert_eq!(throttled, 2990);
    server.stop().await;
}

#[tokio::test]
async fn per_address_connection_cap_and_origin_list() {
    let mut cfg = test_config();
    cfg.registry.max_conns_per_ip = 2;
    cfg.allowed_origins = vec!["https://bassline.example".into()];
    let server = Server::start(cfg).await;

    let refused = Client::connect_with_origin(&server, "https://evil.example").await;
    assert!(refused.unwrap_err().contains("403"));

    let mut one = Client::connect_with_origin(&server, "https://bassline.example")
        .await
        .unwrap();
    let mut two = Client::connect_with_origin(&server, "https://bassline.example")
        .await
        .unwrap();
    let mut three = Client::connect_with_origin(&server, "https://bassline.example")
        .await
        .unwrap();
    assert_eq!(three.error_code().await, ErrorCode::TooManyConnections);
    assert_eq!(u16::from(three.closed().await.unwrap().code), 1008);
    one.hello().await;
    two.hello().await;
    let metrics = http_get(server.addr, "/metrics").await;
    assert!(metrics.contains("signal_rejections_total{reason=\"origin-not-allowed\"} 1"));
    assert!(metrics.contains("signal_rejections_total{reason=\"too-many-connections\"} 1"));
    server.stop().await;
}

/// Behind a trusted proxy every client gets its own allowance: the cap counts the address the
/// proxy forwards for, at the registry and at accept (here five sockets from one proxy address,
/// past the accept cap of twice two).
#[tokio::test]
async fn behind_a_trusted_proxy_limits_count_each_forwarded_client() {
    let mut cfg = test_config();
    cfg.registry.max_conns_per_ip = 2;
    cfg.trusted_proxies.networks = vec!["127.0.0.0/8".parse().unwrap()];
    let server = Server::start(cfg).await;
    let xff = "x-forwarded-for";
    let mut a1 = Client::connect_with_header(&server, xff, "6.6.6.6, 198.51.100.1").await;
    let mut a2 = Client::connect_with_header(&server, xff, "198.51.100.1").await;
    a1.hello().await;
    a2.hello().await;
    let mut a3 = Client::connect_with_header(&server, xff, "198.51.100.1").await;
    assert_eq!(a3.error_code().await, ErrorCode::TooManyConnections);
    // Other clients of the same proxy are not held to the first one's allowance, and a client
    // cannot claim someone else's address by writing it first: the proxy appended its own.
    let mut others = Vec::new();
    for n in 2..5 {
        let forged = format!("198.51.100.1, 198.51.100.{n}");
        let mut c = Client::connect_with_header(&server, xff, &forged).await;
        c.hello().await;
        others.push(c);
    }
    server.stop().await;
}

/// Without `--trusted-proxies`, a forwarding header is a client's own claim and changes nothing.
#[tokio::test]
async fn a_forwarding_header_from_an_untrusted_peer_is_ignored() {
    let mut cfg = test_config();
    cfg.registry.max_conns_per_ip = 2;
    let server = Server::start(cfg).await;
    let xff = "x-forwarded-for";
    let mut one = Client::connect_with_header(&server, xff, "198.51.100.1").await;
    let mut two = Client::connect_with_header(&server, xff, "198.51.100.2").await;
    one.hello().await;
    two.hello().await;
    let mut three = Client::connect_with_header(&server, xff, "198.51.100.3").await;
    assert_eq!(three.error_code().await, ErrorCode::TooManyConnections);
    server.stop().await;
}

#[tokio::test]
async fn healthz_and_metrics() {
    let server = Server::start(test_config()).await;
    let health = http_get(server.addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"));
    assert!(health.ends_with("ok\n"));
    let mut c = Client::connect(&server).await;
    c.hello().await;
    c.create(r#"{"type":"create-room"}"#).await;
    let metrics = http_get(server.addr, "/metrics").await;
    assert!(metrics.contains("text/plain; version=0.0.4"));
    for line in [
        "# TYPE signal_rooms gauge",
        "signal_rooms 1",
        "signal_peers 1",
        "signal_connections 1",
        "signal_messages_relayed_total 0",
        "signal_rejections_total{reason=\"wrong-password\"} 0",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_tells_every_peer() {
    let server = Server::start(test_config()).await;
    let mut a = Client::connect(&server).await;
    a.hello().await;
    let mut b = Client::connect(&server).await;
    let stop = tokio::spawn(server.stop());
    for c in [&mut a, &mut b] {
        assert!(matches!(c.recv().await, ServerMessage::Shutdown { .. }));
        assert_eq!(u16::from(c.closed().await.unwrap().code), 1001);
    }
    bounded(stop).await.unwrap();
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_disconnected_not_buffered_forever() {
    let mut cfg = test_config();
    cfg.registry.max_msgs_per_sec = 100_000;
    // The outbox cap is what this test is about; the write timeout is only the backstop. At
    // 300 ms a loaded machine let the timeout end the stalled connection before 1 MiB had
    // queued (no message dropped, the check below red 3 runs in 4); 3 s leaves the cap to trip.
    cfg.write_timeout = Duration::from_secs(3);
    let server = Server::start(cfg).await;
    let mut host = Client::connect(&server).await;
    let (host_id, _) = host.hello().await;
    let code = host.create(r#"{"type":"create-room"}"#).await;
    let mut lazy = Client::connect(&server).await;
    let (lazy_id, _) = lazy.hello().await;
    lazy.send(&format!(r#"{{"type":"join-room","code":"{code}"}}"#))
        .await;
    assert!(matches!(lazy.recv().await, ServerMessage::Joined { .. }));
    host.recv().await; // peer-joined
    // From here on `lazy` reads nothing. 60 KB offers until the server gives up on it: the
    // kernel's socket buffers absorb a few MB, then a write stalls past the write timeout (and
    // the 1 MiB outbox cap bounds what waits meanwhile).
    let sdp = "x".repeat(60 * 1024);
    let offer = format!(r#"{{"type":"offer","to":"{lazy_id}","sdp":"{sdp}"}}"#);
    bounded(async {
        loop {
            host.send(&offer).await;
            if server.handle.metrics().connections == 1 {
                break;
            }
        }
    })
    .await;
    // The host's own connection is unaffected: it can still be answered by a new member.
    let mut fresh = Client::connect(&server).await;
    let (fresh_id, _) = fresh.hello().await;
    fresh
        .send(&format!(r#"{{"type":"join-room","code":"{code}"}}"#))
        .await;
    assert!(matches!(fresh.recv().await, ServerMessage::Joined { .. }));
    fresh
        .send(&format!(
            r#"{{"type":"answer","to":"{host_id}","sdp":"hi"}}"#
        ))
        .await;
    loop {
        match host.recv().await {
            ServerMessage::Answer { from, .. } => {
                assert_eq!(from, fresh_id);
                break;
            }
            _ => continue,
        }
    }
    let metrics = http_get(server.addr, "/metrics").await;
    assert!(!metrics.contains("signal_messages_dropped_total 0\n"));
    drop(lazy);
    server.stop().await;
}

#[tokio::test]
async fn sockets_that_never_finish_a_handshake_are_capped_per_address() {
    use tokio::io::AsyncReadExt;
    let mut cfg = test_config();
    cfg.registry.max_conns_per_ip = 2; // hard cap at accept: twice that
    let server = Server::start(cfg).await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    // The fifth is closed by the server without a byte: read sees EOF (or a reset).
    let mut fifth = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = bounded(fifth.read(&mut buf)).await.unwrap_or(0);
    assert_eq!(n, 0);
    // Closing a silent socket frees its slot for a real client.
    silent.pop();
    let mut ok = bounded(async {
        loop {
            match tokio_tungstenite::connect_async(server.url()).await {
                Ok((ws, _)) => break Client { ws },
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    })
    .await;
    ok.hello().await;
    drop(silent); // the metrics request below is one more connection from this address
    let metrics = bounded(async {
        loop {
            let m = http_get(server.addr, "/metrics").await;
            if !m.is_empty() {
                break m;
            }
        }
    })
    .await;
    assert!(!metrics.contains("signal_rejections_total{reason=\"too-many-connections\"} 0"));
    server.stop().await;
}
