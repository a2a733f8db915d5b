//! Registry tests: explicit `now`, seeded entropy, no sockets.

use std::{net::IpAddr, time::Duration};

use super::*;
use crate::CloseReason;

/// A seeded xorshift generator: the same seed gives the same codes, ids and tokens.
fn seeded(mut s: u64) -> impl Entropy {
    move |buf: &mut [u8]| {
        for b in buf {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *b = (s >> 24) as u8;
        }
    }
}

/// Stand-in for Argon2 (which lives in the `server` feature): a "hash" that is the password's
/// bytes. The registry only stores and hands it back, so this exercises the same paths.
fn fake_hash(p: &Password) -> PasswordHash {
    let mut hash = [0u8; 32];
    for (h, b) in hash.iter_mut().zip(p.0.bytes()) {
        *h = b;
    }
    PasswordHash {
        salt: [0; 16],
        hash,
    }
}

struct H {
    reg: Registry,
    now: Instant,
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

impl H {
    fn new() -> Self {
        Self::with(Config::default())
    }

    fn with(config: Config) -> Self {
        Self {
            reg: Registry::new(config, seeded(0x9e37_79b9_7f4a_7c15)),
            now: Instant::now(),
        }
    }

    /// Runs the password requests the way the driver would, and returns what is to be sent.
    fn drain(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        while let Some(o) = self.reg.poll_output() {
            match o {
                Output::HashPassword {
                    conn,
                    password,
                    max_peers,
                } => {
                    let h = fake_hash(&password);
                    self.reg
                        .handle_password_hashed(self.now, conn, h, max_peers);
                }
                Output::VerifyPassword {
                    conn,
                    ticket,
                    password,
                    hash,
                } => {
                    let ok = fake_hash(&password) == hash;
                    self.reg
                        .handle_password_verified(self.now, conn, ticket, ok);
                }
                other => out.push(other),
            }
        }
        out
    }

    fn connect(&mut self, conn: u64, from: &str) -> Vec<Output> {
        self.reg.handle_connect(self.now, ConnId(conn), ip(from));
        self.drain()
    }

    fn msg(&mut self, conn: u64, m: ClientMessage) -> Vec<Output> {
        self.reg.handle_message(self.now, ConnId(conn), m);
        self.drain()
    }

    fn json(&mut self, conn: u64, json: &str) -> Vec<Output> {
        let m = crate::decode_client(json.as_bytes()).unwrap();
        self.msg(conn, m)
    }

    fn advance(&mut self, d: Duration) -> Vec<Output> {
        self.now += d;
        self.reg.handle_timeout(self.now);
        self.drain()
    }

    fn disconnect(&mut self, conn: u64) -> Vec<Output> {
        self.reg.handle_disconnect(self.now, ConnId(conn));
        self.drain()
    }

    /// Connects from 127.0.0.1, says hello, returns the peer id and resume token.
    fn peer(&mut self, conn: u64) -> (PeerId, String) {
        self.connect(conn, "127.0.0.1");
        let out = self.json(conn, r#"{"type":"hello","version":1}"#);
        match &out[..] {
            [
                Output::Send {
                    msg:
                        ServerMessage::Welcome {
                            peer_id,
                            resume_token,
                            resumed: false,
                            ..
                        },
                    ..
                },
            ] => (*peer_id, resume_token.clone()),
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    fn create(&mut self, conn: u64, json: &str) -> RoomCode {
        match &self.json(conn, json)[..] {
            [
                Output::Send {
                    msg: ServerMessage::RoomCreated { code, .. },
                    ..
                },
            ] => *code,
            other => panic!("expected room-created, got {other:?}"),
        }
    }
}

/// The messages sent to `conn`, in order.
fn to(out: &[Output], conn: u64) -> Vec<ServerMessage> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { to, msg } if *to == ConnId(conn) => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

fn err_code(out: &[Output], conn: u64) -> ErrorCode {
    match &to(out, conn)[..] {
        [ServerMessage::Error { code, .. }] => *code,
        other => panic!("expected one error for conn {conn}, got {other:?}"),
    }
}

fn closed(out: &[Output], conn: u64) -> bool {
    out.iter()
        .any(|o| matches!(o, Output::Close { conn: c, .. } if *c == ConnId(conn)))
}

fn join(code: RoomCode) -> String {
    format!(r#"{{"type":"join-room","code":"{code}"}}"#)
}

#[test]
fn whole_flow_create_join_relay_leave() {
    let mut h = H::new();
    let (host, _) = h.peer(1);
    let (guest, _) = h.peer(2);
    let code = h.create(1, r#"{"type":"create-room"}"#);

    // Typed in lower case: codes match case-insensitively.
    let lower = code.as_str().to_ascii_lowercase();
    let out = h.json(2, &format!(r#"{{"type":"join-room","code":"{lower}"}}"#));
    assert_eq!(
        to(&out, 2),
        vec![ServerMessage::Joined {
            code,
            members: vec![host, guest],
            numbers: vec![1, 2],
            host,
            number: 2,
            pake: false,
        }]
    );
    assert_eq!(
        to(&out, 1),
        vec![ServerMessage::PeerJoined {
            peer: guest,
            number: 2
        }]
    );

    let out = h.msg(
        2,
        ClientMessage::Offer {
            to: host,
            sdp: "v=0 offer".into(),
            // Relayed untouched: only the peers can check it.
            auth: Some("AQEC-offer_auth".into()),
        },
    );
    assert_eq!(
        to(&out, 1),
        vec![ServerMessage::Offer {
            from: guest,
            sdp: "v=0 offer".into(),
            auth: Some("AQEC-offer_auth".into()),
        }]
    );
    let out = h.msg(
        1,
        ClientMessage::Answer {
            to: guest,
            sdp: "v=0 answer".into(),
            // Relayed untouched: only the peers can check it.
            auth: Some("AQEC-answer_auth".into()),
        },
    );
    assert_eq!(
        to(&out, 2),
        vec![ServerMessage::Answer {
            from: host,
            sdp: "v=0 answer".into(),
            auth: Some("AQEC-answer_auth".into()),
        }]
    );
    let out = h.msg(
        1,
        ClientMessage::Candidate {
            to: guest,
            candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
        },
    );
    assert!(matches!(&to(&out, 2)[..], [ServerMessage::Candidate { from, .. }] if *from == host));
    assert_eq!(h.reg.metrics().relayed, 3);

    // A third peer joins; the host leaves: the oldest remaining member becomes host.
    let (third, _) = h.peer(3);
    h.json(3, &join(code));
    let out = h.json(1, r#"{"type":"leave-room"}"#);
    assert_eq!(to(&out, 1), vec![ServerMessage::Left { code }]);
    for conn in [2, 3] {
        assert_eq!(
            to(&out, conn),
            vec![
                ServerMessage::PeerLeft { peer: host },
                ServerMessage::HostChanged { host: guest }
            ]
        );
    }
    // The last two leave; the room is gone.
    h.json(2, r#"{"type":"leave-room"}"#);
    let out = h.json(3, r#"{"type":"leave-room"}"#);
    assert_eq!(to(&out, 3), vec![ServerMessage::Left { code }]);
    assert_eq!(h.reg.metrics().rooms, 0);
    let _ = third;
    assert_eq!(
        err_code(&h.json(1, &join(code)), 1),
        ErrorCode::RoomNotFound
    );
}

#[test]
fn every_refusal_is_a_typed_error() {
    let mut h = H::with(Config {
        max_rooms: 2,
        ..Config::default()
    });
    h.connect(1, "10.0.0.1");
    // Anything before hello.
    assert_eq!(
        err_code(&h.json(1, r#"{"type":"leave-room"}"#), 1),
        ErrorCode::HelloRequired
    );
    // Wrong version: error, then the connection is closed.
    let out = h.json(1, r#"{"type":"hello","version":2}"#);
    assert_eq!(err_code(&out, 1), ErrorCode::UnsupportedVersion);
    assert!(closed(&out, 1));

    let (a, _) = h.peer(2);
    let (b, _) = h.peer(3);
    assert_eq!(
        err_code(&h.json(2, r#"{"type":"hello","version":1}"#), 2),
        ErrorCode::AlreadyGreeted
    );
    assert_eq!(
        err_code(&h.json(2, r#"{"type":"leave-room"}"#), 2),
        ErrorCode::NotInRoom
    );
    assert_eq!(
        err_code(
            &h.msg(
                2,
                ClientMessage::Offer {
                    to: b,
                    sdp: "x".into(),
                    auth: None,
                }
            ),
            2
        ),
        ErrorCode::NotInRoom
    );
    for bad in [0, 1, 33, 1000] {
        let out = h.json(2, &format!(r#"{{"type":"create-room","max_peers":{bad}}}"#));
        assert_eq!(err_code(&out, 2), ErrorCode::InvalidMaxPeers, "{bad}");
    }
    let code = h.create(2, r#"{"type":"create-room","max_peers":2}"#);
    assert_eq!(
        err_code(&h.json(2, r#"{"type":"create-room"}"#), 2),
        ErrorCode::AlreadyInRoom
    );
    assert_eq!(
        err_code(&h.json(2, &join(code)), 2),
        ErrorCode::AlreadyInRoom
    );
    // Relay to self, to a peer outside the room, to nobody.
    for target in [a, b, PeerId(12345)] {
        let out = h.msg(
            2,
            ClientMessage::Offer {
                to: target,
                sdp: "x".into(),
                auth: None,
            },
        );
        assert_eq!(err_code(&out, 2), ErrorCode::UnknownPeer);
    }
    assert_eq!(
        err_code(&h.json(3, r#"{"type":"join-room","code":"AB-12"}"#), 3),
        ErrorCode::BadCode
    );
    h.json(3, &join(code));
    let (_, _) = h.peer(4);
    assert_eq!(err_code(&h.json(4, &join(code)), 4), ErrorCode::RoomFull);
    // Room cap.
    let (_, _) = h.peer(5);
    h.create(5, r#"{"type":"create-room"}"#);
    assert_eq!(
        err_code(&h.json(4, r#"{"type":"create-room"}"#), 4),
        ErrorCode::TooManyRooms
    );
    let m = h.reg.metrics();
    assert_eq!(m.rejections[&ErrorCode::InvalidMaxPeers], 4);
    assert_eq!(m.rejections[&ErrorCode::TooManyRooms], 1);
}

#[test]
fn passwords_gate_joins() {
    let mut h = H::new();
    let (host, _) = h.peer(1);
    let (guest, _) = h.peer(2);
    let code = h.create(1, r#"{"type":"create-room","password":"hunter2"}"#);
    assert_eq!(
        err_code(&h.json(2, &join(code)), 2),
        ErrorCode::WrongPassword
    );
    let wrong = format!(r#"{{"type":"join-room","code":"{code}","password":"hunter3"}}"#);
    assert_eq!(err_code(&h.json(2, &wrong), 2), ErrorCode::WrongPassword);
    let right = format!(r#"{{"type":"join-room","code":"{code}","password":"hunter2"}}"#);
    let out = h.json(2, &right);
    assert_eq!(
        to(&out, 2),
        vec![ServerMessage::Joined {
            code,
            members: vec![host, guest],
            numbers: vec![1, 2],
            host,
            number: 2,
            pake: false,
        }]
    );
}

#[test]
fn a_verification_that_returns_after_the_room_closed_admits_nobody() {
    let mut h = H::new();
    h.peer(1);
    h.peer(2);
    let code = h.create(1, r#"{"type":"create-room","password":"pw"}"#);
    let right = format!(r#"{{"type":"join-room","code":"{code}","password":"pw"}}"#);
    h.reg.handle_message(
        h.now,
        ConnId(2),
        crate::decode_client(right.as_bytes()).unwrap(),
    );
    let Some(Output::VerifyPassword { ticket, .. }) = h.reg.poll_output() else {
        panic!("expected a verification request");
    };
    // While the hash is being checked the joiner may not start another join.
    assert_eq!(err_code(&h.json(2, &right), 2), ErrorCode::Busy);
    h.json(1, r#"{"type":"leave-room"}"#);
    h.reg
        .handle_password_verified(h.now, ConnId(2), ticket, true);
    assert_eq!(err_code(&h.drain(), 2), ErrorCode::RoomNotFound);
}

#[test]
fn codes_are_well_formed_unique_and_deterministic_with_a_seed() {
    let mut h = H::with(Config {
        max_rooms: 3000,
        max_conns_per_ip: 3000,
        ..Config::default()
    });
    let mut seen = std::collections::HashSet::new();
    for conn in 0..2000 {
        h.peer(conn);
        let code = h.create(conn, r#"{"type":"create-room"}"#);
        assert!(
            code.as_str()
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        assert!(seen.insert(code), "duplicate live code {code}");
    }
    let mut again = H::new();
    again.peer(0);
    let first = again.create(0, r#"{"type":"create-room"}"#);
    let mut h2 = H::new();
    h2.peer(0);
    assert_eq!(h2.create(0, r#"{"type":"create-room"}"#), first);
}

#[test]
fn reconnect_within_grace_keeps_place_and_gets_queued_messages() {
    let mut h = H::new();
    let (host, _) = h.peer(1);
    let (guest, token) = h.peer(2);
    let code = h.create(1, r#"{"type":"create-room"}"#);
    h.json(2, &join(code));

    h.disconnect(2);
    let out = h.msg(
        1,
        ClientMessage::Offer {
            to: guest,
            sdp: "queued".into(),
            auth: None,
        },
    );
    assert!(
        out.is_empty(),
        "nothing is sent while the guest is away: {out:?}"
    );
    let out = h.advance(Duration::from_secs(9));
    assert!(
        out.is_empty(),
        "no peer-left within the grace period: {out:?}"
    );

    h.connect(3, "127.0.0.1");
    let out = h.json(
        3,
        &format!(r#"{{"type":"hello","version":1,"resume":"{token}"}}"#),
    );
    let msgs = to(&out, 3);
    assert!(matches!(
        &msgs[0],
        ServerMessage::Welcome { peer_id, resumed: true, .. } if *peer_id == guest
    ));
    assert_eq!(
        msgs[1],
        ServerMessage::Joined {
            code,
            members: vec![host, guest],
            numbers: vec![1, 2],
            host,
            number: 2,
            pake: false,
        }
    );
    assert_eq!(
        msgs[2],
        ServerMessage::Offer {
            from: host,
            sdp: "queued".into(),
            auth: None,
        }
    );
    // The grace timer that was armed before the resume does nothing now.
    assert!(h.advance(Duration::from_secs(5)).is_empty());
    assert_eq!(h.reg.metrics().resumes, 1);
}

#[test]
fn grace_expiry_removes_the_peer_and_moves_the_host() {
    let mut h = H::new();
    let (host, token) = h.peer(1);
    let (guest, _) = h.peer(2);
    let code = h.create(1, r#"{"type":"create-room"}"#);
    h.json(2, &join(code));
    h.disconnect(1);
    let out = h.advance(Duration::from_secs(10));
    assert_eq!(
        to(&out, 2),
        vec![
            ServerMessage::PeerLeft { peer: host },
            ServerMessage::HostChanged { host: guest }
        ]
    );
    // The token no longer resumes: a fresh peer id.
    h.connect(3, "127.0.0.1");
    let out = h.json(
        3,
        &format!(r#"{{"type":"hello","version":1,"resume":"{token}"}}"#),
    );
    assert!(matches!(
        &to(&out, 3)[..],
        [ServerMessage::Welcome { resumed: false, peer_id, .. }] if *peer_id != host
    ));
}

#[test]
fn undelivered_messages_are_dropped_after_their_ttl() {
    // A grace longer than the message ttl, so the ttl is what drops the message.
    let mut h = H::with(Config {
        grace: Duration::from_secs(120),
        ..Config::default()
    });
    h.peer(1);
    let (guest, token) = h.peer(2);
    let code = h.create(1, r#"{"type":"create-room"}"#);
    h.json(2, &join(code));
    h.disconnect(2);
    h.msg(
        1,
        ClientMessage::Offer {
            to: guest,
            sdp: "old".into(),
            auth: None,
        },
    );
    h.advance(Duration::from_secs(20));
    h.msg(
        1,
        ClientMessage::Offer {
            to: guest,
            sdp: "new".into(),
            auth: None,
        },
    );
    h.advance(Duration::from_secs(15)); // "old" is 35 s old now, "new" 15 s.
    h.connect(3, "127.0.0.1");
    let out = h.json(
        3,
        &format!(r#"{{"type":"hello","version":1,"resume":"{token}"}}"#),
    );
    let offers: Vec<_> = to(&out, 3)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::Offer { sdp, .. } => Some(sdp),
            _ => None,
        })
        .collect();
    assert_eq!(offers, vec!["new".to_string()]);
    assert_eq!(h.reg.metrics().dropped, 1);
}

#[test]
fn idle_rooms_expire_after_an_hour_and_activity_postpones_it() {
    let mut h = H::new();
    h.peer(1);
    let (guest, _) = h.peer(2);
    let code = h.create(1, r#"{"type":"create-room"}"#);
    h.json(2, &join(code));
    h.advance(Duration::from_secs(3000));
    h.msg(
        1,
        ClientMessage::Offer {
            to: guest,
            sdp: "keepalive".into(),
            auth: None,
        },
    );
    let out = h.advance(Duration::from_secs(3000)); // 100 min after creation, 50 after activity.
    assert!(to(&out, 1).is_empty());
    let out = h.advance(Duration::from_secs(600));
    for conn in [1, 2] {
        assert_eq!(
            to(&out, conn),
            vec![ServerMessage::RoomClosed {
                code,
                reason: CloseReason::Expired
            }]
        );
    }
    assert_eq!(
        err_code(&h.json(2, &join(code)), 2),
        ErrorCode::RoomNotFound
    );
    assert_eq!(h.reg.metrics().rooms_expired, 1);
}

#[test]
fn brute_force_of_codes_is_throttled_per_address() {
    let mut h = H::new();
    let (_, _) = h.peer(1);
    let real = h.create(1, r#"{"type":"create-room"}"#);
    h.connect(2, "203.0.113.9");
    h.json(2, r#"{"type":"hello","version":1}"#);

    let mut evaluated = 0;
    let mut throttled = 0;
    let mut last_retry = None;
    for i in 0..5000u32 {
        // Not the real code: a plain counter in base 36 never hits the seeded code by chance
        // here, and the test checks that below.
        let guess = format!("{:0>6}", radix36(i));
        assert_ne!(guess, real.as_str());
        let out = h.json(2, &format!(r#"{{"type":"join-room","code":"{guess}"}}"#));
        match &to(&out, 2)[..] {
            [
                ServerMessage::Error {
                    code: ErrorCode::RoomNotFound,
                    ..
                },
            ] => evaluated += 1,
            [
                ServerMessage::Error {
                    code: ErrorCode::TooManyAttempts,
                    message,
                    retry_after_secs,
                },
            ] => {
                throttled += 1;
                assert!(message.starts_with("too many attempts, retry in "));
                last_retry = *retry_after_secs;
            }
            // The per-connection rate limit also bites; it counts as neither.
            [
                ServerMessage::Error {
                    code: ErrorCode::RateLimited,
                    ..
                },
            ]
            | [] => {}
            other => panic!("unexpected {other:?}"),
        }
        if i % 50 == 49 {
            h.advance(Duration::from_millis(500));
        }
    }
    // 5000 guesses over 50 s of virtual time: only the first 10 reached a lookup.
    assert_eq!(evaluated, 10);
    assert!(throttled > 1000, "throttled {throttled}");
    assert!(last_retry.is_some_and(|s| (1..=60).contains(&s)));

    // Even the right code is refused while throttled: guessing gets no signal.
    let out = h.json(2, &join(real));
    assert_eq!(err_code(&out, 2), ErrorCode::TooManyAttempts);
    // Another address is unaffected.
    h.connect(3, "198.51.100.7");
    h.json(3, r#"{"type":"hello","version":1}"#);
    assert!(matches!(
        &to(&h.json(3, &join(real)), 3)[..],
        [ServerMessage::Joined { .. }]
    ));
    // After the window the address may try again.
    h.advance(Duration::from_secs(61));
    assert_eq!(
        err_code(&h.json(2, r#"{"type":"join-room","code":"ZZZZZZ"}"#), 2),
        ErrorCode::RoomNotFound
    );
}

fn radix36(mut n: u32) -> String {
    let mut s = Vec::new();
    loop {
        s.push(crate::protocol::CODE_ALPHABET[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).unwrap()
}

#[test]
fn per_address_connection_cap() {
    let mut h = H::with(Config {
        max_conns_per_ip: 2,
        ..Config::default()
    });
    assert!(h.connect(1, "10.1.1.1").is_empty());
    assert!(h.connect(2, "10.1.1.1").is_empty());
    let out = h.connect(3, "10.1.1.1");
    assert_eq!(err_code(&out, 3), ErrorCode::TooManyConnections);
    assert!(closed(&out, 3));
    assert!(h.connect(4, "10.1.1.2").is_empty());
    h.disconnect(1);
    assert!(h.connect(5, "10.1.1.1").is_empty());
}

#[test]
fn a_resume_on_a_new_connection_closes_the_old_one() {
    let mut h = H::new();
    let (p, token) = h.peer(1);
    h.connect(2, "127.0.0.1");
    let out = h.json(
        2,
        &format!(r#"{{"type":"hello","version":1,"resume":"{token}"}}"#),
    );
    assert!(closed(&out, 1));
    assert!(
        matches!(&to(&out, 2)[..], [ServerMessage::Welcome { peer_id, resumed: true, .. }] if *peer_id == p)
    );
    // The old connection's close does not start a grace period for the peer.
    h.disconnect(1);
    assert!(h.advance(Duration::from_secs(60)).is_empty());
    assert_eq!(h.reg.metrics().peers, 1);
}

#[test]
fn floods_are_rate_limited_per_connection() {
    let mut h = H::with(Config {
        max_msgs_per_sec: 5,
        ..Config::default()
    });
    h.peer(1);
    let mut errors = Vec::new();
    for _ in 0..20 {
        let out = h.json(1, r#"{"type":"leave-room"}"#);
        errors.extend(to(&out, 1));
    }
    // 4 not-in-room answers (hello used one of the 5), one rate-limited notice, then silence.
    assert_eq!(errors.len(), 5);
    assert!(matches!(
        &errors[4],
        ServerMessage::Error {
            code: ErrorCode::RateLimited,
            ..
        }
    ));
    h.advance(Duration::from_secs(1));
    assert_eq!(
        err_code(&h.json(1, r#"{"type":"leave-room"}"#), 1),
        ErrorCode::NotInRoom
    );
}

#[test]
fn shutdown_tells_everyone() {
    let mut h = H::new();
    h.peer(1);
    h.connect(2, "127.0.0.1");
    h.reg.handle_shutdown();
    let out = h.drain();
    for conn in [1, 2] {
        assert!(matches!(
            &to(&out, conn)[..],
            [ServerMessage::Shutdown { .. }]
        ));
        assert!(closed(&out, conn));
    }
}

#[test]
fn a_connection_that_never_says_hello_is_closed() {
    let mut h = H::new();
    h.connect(1, "127.0.0.1");
    h.peer(2);
    let out = h.advance(Duration::from_secs(10));
    assert_eq!(err_code(&out, 1), ErrorCode::HelloRequired);
    assert!(closed(&out, 1));
    assert!(!closed(&out, 2), "a greeted connection stays");
}

/// The number in the `joined` a connection received.
fn joined_number(out: &[Output], conn: u64) -> (crate::MemberNumber, Vec<crate::MemberNumber>) {
    to(out, conn)
        .into_iter()
        .find_map(|m| match m {
            ServerMessage::Joined {
                number, numbers, ..
            } => Some((number, numbers)),
            _ => None,
        })
        .expect("a joined message")
}

#[test]
fn member_numbers_are_agreed_kept_on_resume_and_never_reused() {
    let mut h = H::new();
    h.peer(1);
    let (b, _) = h.peer(2);
    let (_, c_token) = h.peer(3);
    let code = h.create(1, r#"{"type":"create-room"}"#);
    let out = h.json(2, &join(code));
    assert_eq!(joined_number(&out, 2), (2, vec![1, 2]));
    assert!(to(&out, 1).contains(&ServerMessage::PeerJoined { peer: b, number: 2 }));
    let out = h.json(3, &join(code));
    assert_eq!(joined_number(&out, 3), (3, vec![1, 2, 3]));

    // Member 2 leaves; a newcomer gets 4, never 2 again.
    h.json(2, r#"{"type":"leave-room"}"#);
    h.peer(4);
    let out = h.json(4, &join(code));
    assert_eq!(joined_number(&out, 4), (4, vec![1, 3, 4]));

    // Member 3's connection drops and resumes: it keeps its number.
    h.disconnect(3);
    h.connect(5, "127.0.0.1");
    let out = h.json(
        5,
        &format!(r#"{{"type":"hello","version":1,"resume":"{c_token}"}}"#),
    );
    assert_eq!(joined_number(&out, 5), (3, vec![1, 3, 4]));

    // The same connection joining again after leaving is a new member with a new number.
    h.json(4, r#"{"type":"leave-room"}"#);
    let out = h.json(4, &join(code));
    assert_eq!(joined_number(&out, 4), (5, vec![1, 3, 5]));
}

/// A PAKE room with a host (conn 1), two guests (conns 2 and 3, the third from another
/// address); returns the room and the three peer ids.
fn pake_room(h: &mut H) -> (RoomCode, PeerId, PeerId, PeerId) {
    let (host, _) = h.peer(1);
    let (guest, _) = h.peer(2);
    h.connect(3, "10.9.9.9");
    let third = match &to(&h.json(3, r#"{"type":"hello","version":1}"#), 3)[..] {
        [ServerMessage::Welcome { peer_id, .. }] => *peer_id,
        other => panic!("expected welcome, got {other:?}"),
    };
    let code = h.create(1, r#"{"type":"create-room","pake":true}"#);
    for conn in [2, 3] {
        let out = h.json(conn, &join(code));
        assert!(
            matches!(
                &to(&out, conn)[..],
                [ServerMessage::Joined { pake: true, .. }]
            ),
            "{out:?}"
        );
    }
    (code, host, guest, third)
}

#[test]
fn a_pake_room_says_so_in_joined_and_relays_pake_messages_both_ways() {
    let mut h = H::new();
    let (code, host, guest, _) = pake_room(&mut h);
    // The server checks no password in a PAKE room: a join without one gets in (above), and
    // the room record says who checks it.
    assert!(h.reg.rooms[&code].record.pake);
    assert!(h.reg.rooms[&code].record.password.is_none());
    let hello = format!(r#"{{"type":"pake","to":"{host}","data":"EQAB"}}"#);
    let out = h.json(2, &hello);
    assert_eq!(
        to(&out, 1),
        vec![ServerMessage::Pake {
            from: guest,
            data: "EQAB".into()
        }]
    );
    let reply = format!(r#"{{"type":"pake","to":"{guest}","data":"EgAB"}}"#);
    let out = h.json(1, &reply);
    assert_eq!(
        to(&out, 2),
        vec![ServerMessage::Pake {
            from: host,
            data: "EgAB".into()
        }]
    );
    assert_eq!(h.reg.metrics().relayed, 2);
    // A room created without the flag does not carry it.
    let mut plain = H::new();
    plain.peer(1);
    plain.peer(2);
    let code = plain.create(1, r#"{"type":"create-room"}"#);
    let out = plain.json(2, &join(code));
    assert!(matches!(
        &to(&out, 2)[..],
        [ServerMessage::Joined { pake: false, .. }]
    ));
}

#[test]
fn the_hosts_reject_counts_a_failed_join_removes_the_peer_and_tells_it() {
    let mut h = H::new();
    let (code, host, guest, third) = pake_room(&mut h);
    let reject = format!(r#"{{"type":"reject","peer":"{third}","reason":"wrong-password"}}"#);
    let out = h.json(1, &reject);
    match &to(&out, 3)[..] {
        [ServerMessage::Error { code, message, .. }] => {
            assert_eq!(*code, ErrorCode::WrongPassword);
            assert!(message.contains("host refused the password"), "{message}");
        }
        other => panic!("expected the error, got {other:?}"),
    }
    assert_eq!(to(&out, 1), vec![ServerMessage::PeerLeft { peer: third }]);
    assert_eq!(to(&out, 2), vec![ServerMessage::PeerLeft { peer: third }]);
    let members: Vec<PeerId> = h.reg.rooms[&code]
        .record
        .members
        .iter()
        .map(|m| m.peer)
        .collect();
    assert_eq!(members, vec![host, guest]);
    // One failed join against the rejected peer's address, none against the host's.
    assert_eq!(h.reg.ips[&ip("10.9.9.9")].failures.len(), 1);
    assert!(h.reg.ips[&ip("127.0.0.1")].failures.is_empty());
    // The refused peer may try again (it is out of the room, not disconnected)...
    let out = h.json(3, &join(code));
    assert!(matches!(&to(&out, 3)[..], [ServerMessage::Joined { .. }]));
    // ...until its address has used up the failed-join limit, as with a wrong server password.
    let limit = h.reg.config().failed_join_limit;
    let too_many = format!(r#"{{"type":"reject","peer":"{third}","reason":"too-many-attempts"}}"#);
    let out = h.json(1, &too_many);
    assert!(matches!(
        &to(&out, 3)[..],
        [ServerMessage::Error {
            code: ErrorCode::TooManyAttempts,
            ..
        }]
    ));
    for _ in 2..limit {
        h.json(3, &join(code));
        h.json(1, &reject);
    }
    assert_eq!(h.reg.ips[&ip("10.9.9.9")].failures.len(), limit);
    assert_eq!(
        err_code(&h.json(3, &join(code)), 3),
        ErrorCode::TooManyAttempts
    );
}

#[test]
fn bad_pake_and_reject_requests_are_typed_errors_and_change_nothing() {
    let mut h = H::new();
    let (code, host, guest, third) = pake_room(&mut h);
    let before = h.reg.rooms[&code].record.clone();
    // Only the host may reject; not another member, not about itself, not a stranger.
    let by_guest = format!(r#"{{"type":"reject","peer":"{third}","reason":"wrong-password"}}"#);
    assert_eq!(err_code(&h.json(2, &by_guest), 2), ErrorCode::NotHost);
    let of_host = format!(r#"{{"type":"reject","peer":"{host}","reason":"wrong-password"}}"#);
    assert_eq!(err_code(&h.json(1, &of_host), 1), ErrorCode::UnknownPeer);
    let stranger = r#"{"type":"reject","peer":"00000000000000ff","reason":"wrong-password"}"#;
    assert_eq!(err_code(&h.json(1, stranger), 1), ErrorCode::UnknownPeer);
    let to_stranger = r#"{"type":"pake","to":"00000000000000ff","data":"EQ"}"#;
    assert_eq!(err_code(&h.json(2, to_stranger), 2), ErrorCode::UnknownPeer);
    // Outside a room.
    h.peer(4);
    assert_eq!(err_code(&h.json(4, &by_guest), 4), ErrorCode::NotInRoom);
    let pake_out = format!(r#"{{"type":"pake","to":"{guest}","data":"EQ"}}"#);
    assert_eq!(err_code(&h.json(4, &pake_out), 4), ErrorCode::NotInRoom);
    assert_eq!(h.reg.rooms[&code].record, before);
    assert!(h.reg.ips.values().all(|s| s.failures.is_empty()));
    // The decoder refuses what the protocol forbids before the registry sees it.
    for bad in [
        r#"{"type":"create-room","pake":true,"password":"hunter2"}"#.to_owned(),
        format!(
            r#"{{"type":"pake","to":"{host}","data":"{}"}}"#,
            "A".repeat(crate::MAX_PAKE_CHARS + 1)
        ),
    ] {
        assert_eq!(
            crate::decode_client(bad.as_bytes()).unwrap_err().code(),
            ErrorCode::BadMessage
        );
    }
}

#[test]
fn after_a_host_change_the_new_host_may_reject_and_the_old_one_may_not() {
    let mut h = H::new();
    let (code, host, guest, third) = pake_room(&mut h);
    h.json(1, r#"{"type":"leave-room"}"#);
    assert_eq!(h.reg.rooms[&code].record.host, guest);
    let _ = host;
    let reject = format!(r#"{{"type":"reject","peer":"{third}","reason":"wrong-password"}}"#);
    assert_eq!(err_code(&h.json(1, &reject), 1), ErrorCode::NotInRoom);
    let out = h.json(2, &reject);
    assert!(matches!(
        &to(&out, 3)[..],
        [ServerMessage::Error {
            code: ErrorCode::WrongPassword,
            ..
        }]
    ));
    assert!(h.reg.rooms[&code].record.member(third).is_none());
}

#[path = "registry/reclaim_tests.rs"]
mod reclaim;
