//! Reclaims (`join-room.reclaim`): a member takes back its code and member number after the
//! server lost its peer, or the whole room (a restart). A restart is a fresh registry.

use super::*;

/// A `join-room` reclaiming `number` in room `code`, knowing numbers below `next`.
fn reclaim(code: RoomCode, number: u64, next: u64) -> String {
    format!(
        r#"{{"type":"join-room","code":"{code}","reclaim":{{"number":{number},"next":{next}}}}}"#
    )
}

/// The one `joined` sent to `conn`: (members, numbers, host, own number, pake).
fn joined(out: &[Output], conn: u64) -> (Vec<PeerId>, Vec<u64>, PeerId, u64, bool) {
    match &to(out, conn)[..] {
        [
            ServerMessage::Joined {
                members,
                numbers,
                host,
                number,
                pake,
                ..
            },
        ] => (members.clone(), numbers.clone(), *host, *number, *pake),
        other => panic!("expected joined for conn {conn}, got {other:?}"),
    }
}

/// A room made by conn 1 (number 1) with conn 2 joined (number 2), on a registry that is then
/// thrown away: the code the survivors know.
fn room_before_restart() -> RoomCode {
    let mut old = H::new();
    old.peer(1);
    old.peer(2);
    let code = old.create(1, r#"{"type":"create-room"}"#);
    let (_, numbers, _, number, _) = joined(&old.json(2, &join(code)), 2);
    assert_eq!((numbers, number), (vec![1, 2], 2));
    code
}

#[test]
fn after_a_restart_the_first_reclaim_recreates_the_room_and_numbering_continues() {
    let code = room_before_restart();
    // A new registry: another seed, so new peer ids, and nothing about the room.
    let mut h = H {
        reg: Registry::new(Config::default(), seeded(0x1234_5678)),
        now: Instant::now(),
    };
    let (host, _) = h.peer(11);
    let (guest, _) = h.peer(12);
    let (newcomer, _) = h.peer(13);

    // The host knew of members 1 to 3 (3 had left already): numbering goes on from 4.
    let out = h.json(11, &reclaim(code, 1, 4));
    assert_eq!(joined(&out, 11), (vec![host], vec![1], host, 1, false));

    let out = h.json(12, &reclaim(code, 2, 3));
    assert_eq!(
        joined(&out, 12),
        (vec![host, guest], vec![1, 2], host, 2, false)
    );
    assert_eq!(
        to(&out, 11),
        vec![ServerMessage::PeerJoined {
            peer: guest,
            number: 2
        }]
    );

    // A newcomer by the old link: the room is really there again, and 2 and 3 stay unused.
    let out = h.json(13, &join(code));
    assert_eq!(
        joined(&out, 13),
        (vec![host, guest, newcomer], vec![1, 2, 4], host, 4, false)
    );
    assert_eq!(h.reg.metrics().rooms, 1);
}

#[test]
fn a_recreated_room_keeps_the_pake_flag_the_reclaimer_gives() {
    let code = room_before_restart();
    let mut h = H::new();
    h.peer(1);
    h.peer(2);
    let json = format!(
        r#"{{"type":"join-room","code":"{code}","reclaim":{{"number":2,"next":3,"pake":true}}}}"#
    );
    let (_, _, _, number, pake) = joined(&h.json(1, &json), 1);
    assert_eq!((number, pake), (2, true));
    // Later plain joiners are told the room checks its password by PAKE.
    let (_, numbers, _, _, pake) = joined(&h.json(2, &join(code)), 2);
    assert_eq!((numbers, pake), (vec![2, 3], true));
}

#[test]
fn a_reclaim_into_a_live_room_takes_the_claimed_number_and_raises_the_counter() {
    let mut h = H::new();
    let (host, _) = h.peer(1);
    let (back, _) = h.peer(2);
    h.peer(3);
    let code = h.create(1, r#"{"type":"create-room"}"#);
    // A member whose grace ran out while the room lived on: it knew members up to 8.
    let out = h.json(2, &reclaim(code, 7, 9));
    assert_eq!(
        joined(&out, 2),
        (vec![host, back], vec![1, 7], host, 7, false)
    );
    assert_eq!(
        to(&out, 1),
        vec![ServerMessage::PeerJoined {
            peer: back,
            number: 7
        }]
    );
    let (_, numbers, _, number, _) = joined(&h.json(3, &join(code)), 3);
    assert_eq!((numbers, number), (vec![1, 7, 9], 9));
}

#[test]
fn a_reclaim_of_a_number_another_member_holds_is_refused_and_admits_nothing() {
    let mut h = H::new();
    h.peer(1);
    h.peer(2);
    let code = h.create(1, r#"{"type":"create-room"}"#);
    let out = h.json(2, &reclaim(code, 1, 2));
    assert_eq!(err_code(&out, 2), ErrorCode::NumberTaken);
    assert!(to(&out, 1).is_empty(), "the host hears of no one");
    // Not in the room: a plain join still works and gets a new number.
    assert_eq!(
        err_code(&h.json(2, r#"{"type":"leave-room"}"#), 2),
        ErrorCode::NotInRoom
    );
    let (_, _, _, number, _) = joined(&h.json(2, &join(code)), 2);
    assert_eq!(number, 2);
}

#[test]
fn a_reclaim_respects_full_rooms_and_server_checked_passwords() {
    let mut h = H::new();
    for c in 1..=4 {
        h.peer(c);
    }
    let code = h.create(1, r#"{"type":"create-room","max_peers":2}"#);
    h.json(2, &join(code));
    assert_eq!(
        err_code(&h.json(3, &reclaim(code, 5, 6)), 3),
        ErrorCode::RoomFull
    );
    let locked = h.create(4, r#"{"type":"create-room","password":"pw"}"#);
    assert_eq!(
        err_code(&h.json(3, &reclaim(locked, 2, 3)), 3),
        ErrorCode::WrongPassword
    );
}

#[test]
fn recreating_reclaims_count_against_the_room_cap_and_the_failed_join_budget() {
    let mut h = H::with(Config {
        max_rooms: 2,
        failed_join_limit: 2,
        ..Config::default()
    });
    h.peer(1);
    h.peer(2);
    h.peer(3);
    let live = h.create(1, r#"{"type":"create-room"}"#);
    let codes: Vec<RoomCode> = ["AAAAAA", "BBBBBB", "CCCCCC"]
        .iter()
        .map(|c| RoomCode::parse(c).unwrap())
        .collect();
    // Re-creating one: fine, but it is one of the address's two misses a minute.
    let (_, _, _, number, _) = joined(&h.json(2, &reclaim(codes[0], 1, 2)), 2);
    assert_eq!(number, 1);
    // The room cap holds (two rooms live now), and refusing costs no miss.
    assert_eq!(
        err_code(&h.json(3, &reclaim(codes[1], 1, 2)), 3),
        ErrorCode::TooManyRooms
    );
    h.json(2, r#"{"type":"leave-room"}"#);
    let (_, _, _, number, _) = joined(&h.json(2, &reclaim(codes[1], 3, 4)), 2);
    assert_eq!(number, 3);
    h.json(2, r#"{"type":"leave-room"}"#);
    // Two misses in the window: probing codes by reclaiming stops here, even for a code
    // that exists.
    assert_eq!(
        err_code(&h.json(3, &reclaim(codes[2], 1, 2)), 3),
        ErrorCode::TooManyAttempts
    );
    assert_eq!(
        err_code(&h.json(3, &reclaim(live, 2, 3)), 3),
        ErrorCode::TooManyAttempts
    );
    h.advance(Duration::from_secs(61));
    let (_, numbers, _, _, _) = joined(&h.json(3, &reclaim(live, 2, 3)), 3);
    assert_eq!(numbers, vec![1, 2]);
}
