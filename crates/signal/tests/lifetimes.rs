//! Grace periods, queued delivery, room expiry and idle timeouts over real sockets.
//!
//! The exact deadlines are tested with explicit time in the registry's unit tests. Here the
//! driver's timers run on the real clock (tokio's paused clock auto-advances while a task waits on
//! a socket, which fires deadlines spuriously), so durations are chosen to make each outcome
//! certain: a grace that must not run out is minutes long, one that must run out is milliseconds
//! long and the test waits for its consequence. Nothing asserts how long anything took.

mod common;

use std::time::Duration;

use bassline_signal::ServerMessage;
use common::{Client, Server, joined_second, test_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config() -> bassline_signal::server::ServerConfig {
    let mut cfg = test_config();
    // Pings far away, so only the behaviour under test moves.
    cfg.ping_interval = Duration::from_secs(100_000);
    cfg.idle_timeout = Duration::from_secs(200_000);
    cfg
}

/// Waits until the server has seen `n` open connections.
async fn connections_become(server: &Server, n: usize) {
    common::bounded(async {
        while server.handle.metrics().connections != n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn reconnect_within_grace_keeps_place_and_receives_queued_messages() {
    let mut cfg = config();
    cfg.registry.grace = Duration::from_secs(600);
    let server = Server::start(cfg).await;
    let mut host = Client::connect(&server).await;
    let (host_id, _) = host.hello().await;
    let code = host.create(r#"{"type":"create-room"}"#).await;
    let mut guest = Client::connect(&server).await;
    let (guest_id, token) = guest.hello().await;
    guest
        .send(&format!(r#"{{"type":"join-room","code":"{code}"}}"#))
        .await;
    guest.recv().await;
    host.recv().await;

    drop(guest); // the guest's network drops
    connections_become(&server, 1).await;
    host.send(&format!(
        r#"{{"type":"offer","to":"{guest_id}","sdp":"while away"}}"#
    ))
    .await;

    let mut back = Client::connect(&server).await;
    back.send(&format!(
        r#"{{"type":"hello","version":1,"resume":"{token}"}}"#
    ))
    .await;
    assert!(matches!(
        back.recv().await,
        ServerMessage::Welcome { peer_id, resumed: true, .. } if peer_id == guest_id
    ));
    assert_eq!(back.recv().await, joined_second(code, host_id, guest_id));
    assert_eq!(
        back.recv().await,
        ServerMessage::Offer {
            from: host_id,
            sdp: "while away".into(),
            auth: None,
        }
    );
    back.send(&format!(
        r#"{{"type":"answer","to":"{host_id}","sdp":"back"}}"#
    ))
    .await;
    assert_eq!(
        host.recv().await,
        ServerMessage::Answer {
            from: guest_id,
            sdp: "back".into(),
            auth: None,
        }
    );
    server.stop().await;
}

#[tokio::test]
async fn after_the_grace_period_the_peer_is_gone_and_the_host_moves() {
    let mut cfg = config();
    cfg.registry.grace = Duration::from_millis(50);
    let server = Server::start(cfg).await;
    let mut host = Client::connect(&server).await;
    let (host_id, token) = host.hello().await;
    let code = host.create(r#"{"type":"create-room"}"#).await;
    let mut guest = Client::connect(&server).await;
    let (guest_id, _) = guest.hello().await;
    guest
        .send(&format!(r#"{{"type":"join-room","code":"{code}"}}"#))
        .await;
    guest.recv().await;
    host.recv().await;

    drop(host);
    assert_eq!(
        guest.recv().await,
        ServerMessage::PeerLeft { peer: host_id }
    );
    assert_eq!(
        guest.recv().await,
        ServerMessage::HostChanged { host: guest_id }
    );

    let mut late = Client::connect(&server).await;
    late.send(&format!(
        r#"{{"type":"hello","version":1,"resume":"{token}"}}"#
    ))
    .await;
    assert!(matches!(
        late.recv().await,
        ServerMessage::Welcome { resumed: false, peer_id, .. } if peer_id != host_id
    ));
    server.stop().await;
}

#[tokio::test]
async fn idle_rooms_expire_and_members_are_told() {
    let mut cfg = config();
    cfg.registry.room_idle = Duration::from_millis(100);
    let server = Server::start(cfg).await;
    let mut host = Client::connect(&server).await;
    host.hello().await;
    let code = host.create(r#"{"type":"create-room"}"#).await;
    assert_eq!(
        host.recv().await,
        ServerMessage::RoomClosed {
            code,
            reason: bassline_signal::CloseReason::Expired
        }
    );
    assert_eq!(server.handle.metrics().rooms, 0);
    server.stop().await;
}

#[tokio::test]
async fn a_silent_connection_is_pinged_then_closed() {
    let mut cfg = test_config();
    // The first keepalive tick (20 ms) must come before the idle limit or the server closes
    // without a ping: with 45 ms, a tick delayed by a loaded machine failed the test. A second
    // leaves room for any scheduling delay and still ends the test quickly.
    cfg.ping_interval = Duration::from_millis(20);
    cfg.idle_timeout = Duration::from_millis(1000);
    let server = Server::start(cfg).await;
    // A raw socket that completes the upgrade and then never reads nor answers pings.
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.addr
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101"));
    // The server writes pings, then a close frame (opcode 0x8) and drops the connection.
    let mut all = buf[..n].to_vec();
    common::bounded(s.read_to_end(&mut all)).await.unwrap();
    assert!(all.contains(&0x89), "a ping frame");
    assert!(all.contains(&0x88), "a close frame");
    connections_become(&server, 0).await;
    server.stop().await;
}
