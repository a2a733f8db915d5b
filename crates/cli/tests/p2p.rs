//! End to end over WebRTC: a `bassline serve` (signaling) process and `bassline host`/`join`
//! processes on loopback.

mod harness;

use harness::{Peer, Serve, converge, temp_dir};

/// The join link the host printed (its `room` event): code and room key.
fn join_link(host: &mut Peer) -> String {
    let room = host.wait_event("room");
    let link = room["link"].as_str().expect("a link").to_owned();
    let code = room["code"].as_str().expect("a code");
    assert!(link.contains(&format!("/#join={code}&k=")), "{link}");
    link
}

fn editable(p: &mut Peer) {
    p.wait("editable", |v| {
        v["event"] == "read-only" && v["value"] == false
    });
}

#[test]
fn a_host_and_three_guests_edit_concurrently_and_converge() {
    let dir = temp_dir("converge");
    let serve = Serve::start(&dir);
    let mut host = Peer::host(&serve, &[]);
    let link = join_link(&mut host);
    host.send(r#"{"type":"add-contact","id":"shared","group":"root"}"#);
    host.send(r#"{"type":"add-contact","id":"set","group":"root","blend":"merge"}"#);
    let mut guests: Vec<Peer> = (1..=3)
        .map(|i| Peer::join(&format!("guest{i}"), &serve, &link, &[]))
        .collect();
    for g in &mut guests {
        editable(g);
    }
    // Everyone writes at once: the shared contact (last writer wins), the merge contact
    // (joined), and a contact of their own.
    for round in 0..5 {
        for (i, p) in std::iter::once(&mut host)
            .chain(guests.iter_mut())
            .enumerate()
        {
            if round == 0 {
                p.send(&format!(
                    r#"{{"type":"add-contact","id":"own{i}","group":"root"}}"#
                ));
            }
            p.send(&format!(
                r#"{{"type":"update-content","contact":"shared","value":{}}}"#,
                i * 100 + round
            ));
            p.send(&format!(
                r#"{{"type":"update-content","contact":"set","value":{{"$grow-set":[{}]}}}}"#,
                i * 100 + round
            ));
            p.send(&format!(
                r#"{{"type":"update-content","contact":"own{i}","value":{round}}}"#
            ));
        }
    }
    let [g1, g2, g3] = &mut guests[..] else {
        unreachable!("three guests")
    };
    let hash = converge(&mut [&mut host, g1, g2, g3]);
    assert_eq!(hash.len(), 64);
    // Every peer's own contact holds its last write, everywhere.
    for p in [&mut host, g1, g2, g3] {
        for i in 0..4 {
            let a = p.ask(&format!(r#"{{"type":"get-contact","id":"own{i}"}}"#));
            assert_eq!(a["reply"]["contact"]["value"], 4, "{}: own{i}: {a}", p.name);
        }
    }
}

#[test]
fn when_the_host_is_killed_a_guest_takes_over_and_nothing_seen_is_lost() {
    let dir = temp_dir("takeover");
    let serve = Serve::start(&dir);
    let mut host = Peer::host(&serve, &[]);
    let link = join_link(&mut host);
    let mut g1 = Peer::join("guest1", &serve, &link, &[]);
    let mut g2 = Peer::join("guest2", &serve, &link, &[]);
    editable(&mut g1);
    editable(&mut g2);
    host.send(r#"{"type":"add-contact","id":"from-host","group":"root","value":1}"#);
    g1.send(r#"{"type":"add-contact","id":"from-g1","group":"root","value":2}"#);
    g2.send(r#"{"type":"add-contact","id":"from-g2","group":"root","value":3}"#);
    let before = converge(&mut [&mut host, &mut g1, &mut g2]);

    let marks = [g1.seen.len(), g2.seen.len()];
    host.kill();
    // A new host leads a new epoch. The survivor that follows it reports the read-only window
    // (from losing the host until the new one's state is in); the one that takes over goes
    // straight from guest to host, so it may report none.
    for g in [&mut g1, &mut g2] {
        g.wait("a new epoch", |v| {
            v["event"] == "role" && v["epoch"].as_u64() > Some(1)
        });
    }
    let roles: Vec<String> = [&mut g1, &mut g2]
        .into_iter()
        .map(|g| g.status()["role"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        roles.iter().filter(|r| *r == "host").count(),
        1,
        "exactly one survivor leads: {roles:?}"
    );
    let (follower, mark) = if roles[0] == "host" {
        (&mut g2, marks[1])
    } else {
        (&mut g1, marks[0])
    };
    let read_only_since_kill = |p: &Peer| {
        p.seen[mark..]
            .iter()
            .any(|v| v["event"] == "read-only" && v["value"] == true)
    };
    if !read_only_since_kill(follower) {
        follower.wait("the read-only window", |v| {
            v["event"] == "read-only" && v["value"] == true
        });
    }
    let after = converge(&mut [&mut g1, &mut g2]);
    assert_eq!(before, after, "the state everyone had seen is intact");
    // And the session goes on.
    g2.send(r#"{"type":"update-content","contact":"from-host","value":10}"#);
    converge(&mut [&mut g1, &mut g2]);
    for g in [&mut g1, &mut g2] {
        for (c, v) in [("from-host", 10), ("from-g1", 2), ("from-g2", 3)] {
            let a = g.ask(&format!(r#"{{"type":"get-contact","id":"{c}"}}"#));
            assert_eq!(a["reply"]["contact"]["value"], v, "{}: {c}: {a}", g.name);
        }
    }
}

#[test]
fn a_wrong_password_and_an_unknown_code_fail_with_clear_messages() {
    // A room without a key: the signaling server checks its password (PAKE rooms are in
    // tests/pake.rs).
    let dir = temp_dir("refusals");
    let serve = Serve::start(&dir);
    let mut host = Peer::host(&serve, &["--no-room-key", "--password", "hunter2"]);
    let code = host.wait_event("room")["code"]
        .as_str()
        .expect("a code")
        .to_owned();

    let (ok, out) = Peer::join(
        "wrong",
        &serve,
        &code,
        &["--password", "hunter3", "--trust-server"],
    )
    .exit();
    assert!(!ok, "a wrong password exits with an error");
    let err = out
        .iter()
        .find(|v| v["event"] == "error")
        .expect("an error event");
    assert_eq!(err["code"], "wrong-password", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("--password"),
        "{err}"
    );

    // Without --trust-server the password is not sent: the guest says why it failed.
    let (ok, out) = Peer::join("untrusting", &serve, &code, &["--password", "hunter2"]).exit();
    assert!(!ok);
    let err = out
        .iter()
        .find(|v| v["event"] == "error")
        .expect("an error event");
    assert_eq!(err["code"], "wrong-password", "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("checked by the signaling server"), "{err}");
    assert!(message.contains("--trust-server"), "{err}");

    let (ok, out) = Peer::join("unknown", &serve, "ZZZZZ9", &[]).exit();
    assert!(!ok);
    let err = out
        .iter()
        .find(|v| v["event"] == "error")
        .expect("an error");
    assert_eq!(err["code"], "room-not-found", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("check the code"),
        "{err}"
    );

    // The right password, sent to the server on purpose, gets in.
    let mut guest = Peer::join(
        "right",
        &serve,
        &code,
        &["--password", "hunter2", "--trust-server"],
    );
    editable(&mut guest);
}

#[test]
fn a_host_without_a_room_key_is_joined_by_its_bare_code() {
    let dir = temp_dir("bare-code");
    let serve = Serve::start(&dir);
    let mut host = Peer::host(&serve, &["--no-room-key"]);
    let room = host.wait_event("room");
    let code = room["code"].as_str().expect("a code").to_owned();
    // No key: the link carries the code alone.
    assert!(
        room["link"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/#join={code}")),
        "no key in the link: {room}"
    );
    let mut guest = Peer::join("guest", &serve, &code, &[]);
    editable(&mut guest);
    guest.send(r#"{"type":"add-contact","id":"from-guest","group":"root","value":7}"#);
    converge(&mut [&mut host, &mut guest]);
}
