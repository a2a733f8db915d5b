//! A signaling server that keeps rooms in memory restarts (an upgrade, a crash) while a
//! peer-to-peer room is live: its members reclaim their places (same code, same member
//! numbers), keep their links, and the room is back on the server for newcomers.

mod harness;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use harness::{Peer, Serve, WAIT, converge, temp_dir};
use serde_json::Value;

fn join_link(host: &mut Peer) -> String {
    host.wait_event("room")["link"]
        .as_str()
        .expect("a link")
        .to_owned()
}

fn editable(p: &mut Peer) {
    p.wait("editable", |v| {
        v["event"] == "read-only" && v["value"] == false
    });
}

/// One value of the server's `/metrics` (plain HTTP/1.0 on loopback).
fn metric(addr: &str, name: &str) -> Option<u64> {
    let mut s = TcpStream::connect(addr).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits (bounded) until the restarted server holds one room with `members` joins into it:
/// what the server says, not what the peers think.
fn wait_for_room_on_server(addr: &str, joins: u64) {
    let started = Instant::now();
    let deadline = started + WAIT;
    while metric(addr, "signal_rooms") != Some(1)
        || metric(addr, "signal_joins_total") < Some(joins)
    {
        assert!(
            Instant::now() < deadline,
            "the room never came back on the restarted server (bounded wait)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A figure, not a check: from the new server's start to the room being back on it
    // (polled every 100 ms; the clients' reconnect backoff dominates).
    eprintln!(
        "room back on the restarted server after {} ms",
        started.elapsed().as_millis()
    );
}

fn value(p: &mut Peer, contact: &str) -> Value {
    let a = p.ask(&format!(r#"{{"type":"get-contact","id":"{contact}"}}"#));
    a["reply"]["contact"]["value"].clone()
}

/// A room with a room key (the default) and a guest that joined by its link, ready to edit;
/// returns the host, the guest and the link.
fn keyed_room(serve: &Serve) -> (Peer, Peer, String) {
    let mut host = Peer::host(serve, &[]);
    let link = join_link(&mut host);
    let mut guest = Peer::join("guest", serve, &link, &[]);
    editable(&mut guest);
    (host, guest, link)
}

/// A room hosted with `--no-room-key` (its password checked by the server) and a guest in it,
/// ready to edit; returns the host, the guest and the room code.
fn keyless_room(serve: &Serve) -> (Peer, Peer, String) {
    let mut host = Peer::host(serve, &["--no-room-key", "--password", "hunter2"]);
    let code = host.wait_event("room")["code"]
        .as_str()
        .expect("a code")
        .to_owned();
    let mut guest = Peer::join(
        "guest",
        serve,
        &code,
        &["--password", "hunter2", "--trust-server"],
    );
    editable(&mut guest);
    (host, guest, code)
}

/// `p` says the server lost the room, in a message with `says` in it, and is still running.
fn lost_but_running(p: &mut Peer, says: &[&str]) {
    let lost = p.wait("room-lost", |v| {
        v["event"] == "connection" && v["status"]["state"] == "room-lost"
    });
    let message = lost["status"]["message"].as_str().unwrap_or_default();
    assert!(says.iter().all(|s| message.contains(s)), "{lost}");
    assert!(
        p.child.try_wait().expect("waitable").is_none(),
        "{} exited",
        p.name
    );
}

/// The links never went through the server: an edit made now reaches the other member, and
/// neither printed an error.
fn links_still_carry_edits(host: &mut Peer, guest: &mut Peer) {
    guest.send(r#"{"type":"add-contact","id":"after","group":"root","value":5}"#);
    converge(&mut [&mut *host, &mut *guest]);
    assert_eq!(value(host, "after"), 5);
    assert!(
        !host
            .seen
            .iter()
            .chain(&guest.seen)
            .any(|v| v["event"] == "error"),
        "no error on the members"
    );
}

/// Waits until each of `peers` will wait seconds before its next signaling reconnect (so what
/// the test does to the restarted server happens before they come back).
fn until_a_long_reconnect_wait(peers: [&mut Peer; 2]) {
    for p in peers {
        p.wait("a long reconnect wait", |v| {
            v["event"] == "connection"
                && v["status"]["state"] == "reconnecting"
                && v["status"]["retry_in_ms"].as_u64() >= Some(3000)
        });
    }
}

#[test]
fn a_room_survives_a_restart_of_its_signaling_server_and_takes_newcomers_again() {
    let data = temp_dir("restart");
    let serve = Serve::start(&data);
    let addr = serve.addr.clone();
    let (mut host, mut guest, link) = keyed_room(&serve);
    host.send(r#"{"type":"add-contact","id":"before","group":"root","value":1}"#);
    converge(&mut [&mut host, &mut guest]);
    let marks = [host.seen.len(), guest.seen.len()];

    serve.stop();
    let serve = Serve::start_at(&data, &addr);
    // Both reconnect and reclaim: the host's re-creates the room, the guest's joins it.
    wait_for_room_on_server(&serve.addr, 2);

    for p in [&mut host, &mut guest] {
        assert!(
            p.child.try_wait().expect("waitable").is_none(),
            "{} exited after the restart: {:?}",
            p.name,
            p.seen
        );
    }
    host.send(r#"{"type":"add-contact","id":"from-host","group":"root","value":2}"#);
    guest.send(r#"{"type":"add-contact","id":"from-guest","group":"root","value":3}"#);
    converge(&mut [&mut host, &mut guest]);

    // A newcomer by the old link: the room is really back on the server.
    let mut newcomer = Peer::join("newcomer", &serve, &link, &[]);
    editable(&mut newcomer);
    newcomer.send(r#"{"type":"add-contact","id":"from-newcomer","group":"root","value":4}"#);
    converge(&mut [&mut host, &mut guest, &mut newcomer]);
    for p in [&mut host, &mut guest, &mut newcomer] {
        for (c, v) in [
            ("before", 1),
            ("from-host", 2),
            ("from-guest", 3),
            ("from-newcomer", 4),
        ] {
            assert_eq!(value(p, c), v, "{}: {c}", p.name);
        }
    }

    // Same member numbers as before the restart, and the newcomer got a new one.
    let mes: Vec<Value> = [&mut host, &mut guest, &mut newcomer]
        .into_iter()
        .map(|p| p.status()["me"].clone())
        .collect();
    assert_eq!(mes, [1, 2, 3], "member numbers after the restart");
    // No fatal error, and the host-guest link never went down.
    for (p, mark) in [(&host, marks[0]), (&guest, marks[1])] {
        let bad: Vec<&Value> = p.seen[mark..]
            .iter()
            .filter(|v| {
                v["event"] == "error"
                    || (v["event"] == "peer" && v["state"] == "disconnected")
                    || v["event"] == "role"
            })
            .collect();
        assert!(bad.is_empty(), "{}: {bad:?}", p.name);
    }
}

#[test]
fn a_room_without_a_key_loses_its_server_place_on_a_restart_but_not_its_links() {
    let data = temp_dir("restart-keyless");
    let serve = Serve::start(&data);
    let addr = serve.addr.clone();
    let (mut host, mut guest, code) = keyless_room(&serve);

    serve.stop();
    let serve = Serve::start_at(&data, &addr);
    // Each says the server lost the room (not a fatal error) and goes on.
    for p in [&mut host, &mut guest] {
        lost_but_running(p, &["new room"]);
    }
    // The server did not re-create an open room under the old code.
    assert_eq!(metric(&serve.addr, "signal_rooms"), Some(0));
    let (ok, out) = Peer::join(
        "late",
        &serve,
        &code,
        &["--password", "hunter2", "--trust-server"],
    )
    .exit();
    assert!(!ok, "no room to join: {out:?}");
    assert!(
        out.iter()
            .any(|v| v["event"] == "error" && v["code"] == "room-not-found"),
        "{out:?}"
    );
    links_still_carry_edits(&mut host, &mut guest);
}

#[test]
fn a_password_room_comes_back_as_one_and_a_newcomer_gets_the_key_by_pake_again() {
    const PASSWORD: &str = "correct horse battery";
    let data = temp_dir("restart-pake");
    let serve = Serve::start(&data);
    let addr = serve.addr.clone();
    let mut host = Peer::host(&serve, &["--password", PASSWORD]);
    let code = host.wait_event("room")["code"]
        .as_str()
        .expect("a code")
        .to_owned();
    // This guest gets the room key from the host by PAKE, so it may reclaim too.
    let mut guest = Peer::join("guest", &serve, &code, &["--password", PASSWORD]);
    editable(&mut guest);

    serve.stop();
    let serve = Serve::start_at(&data, &addr);
    wait_for_room_on_server(&serve.addr, 2);

    // The re-created room still says its password is checked by PAKE, and whichever member
    // the server now names host answers the newcomer's run.
    let mut newcomer = Peer::join("newcomer", &serve, &code, &["--password", PASSWORD]);
    editable(&mut newcomer);
    newcomer.send(r#"{"type":"add-contact","id":"from-newcomer","group":"root","value":6}"#);
    converge(&mut [&mut host, &mut guest, &mut newcomer]);
    assert_eq!(value(&mut host, "from-newcomer"), 6);
    let errors: Vec<&Value> = [&host, &guest, &newcomer]
        .iter()
        .flat_map(|p| p.seen.iter())
        .filter(|v| v["event"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// Spends the failed-join allowance of this machine's address (10 a minute) on the restarted
/// server, with joins to a code that does not exist, over one signaling connection.
fn throttle_this_address(serve: &Serve) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let (mut ws, _) =
            tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(serve.signal()))
                .await
                .expect("bounded")
                .expect("the server accepts the connection");
        let mut send = async |text: &str| {
            ws.send(Message::text(text.to_owned())).await.expect("send");
        };
        send(r#"{"type":"hello","version":1}"#).await;
        for _ in 0..10 {
            send(r#"{"type":"join-room","code":"ZZZZZZ"}"#).await;
        }
        let mut refused = 0;
        while refused < 10 {
            let msg = tokio::time::timeout(WAIT, ws.next())
                .await
                .expect("bounded")
                .expect("open")
                .expect("readable");
            if let Message::Text(t) = msg
                && t.contains(r#""type":"error""#)
            {
                refused += 1;
            }
        }
    });
}

/// After a restart, the members' reclaim is refused by the throttle (other clients behind the
/// same address failed too many joins): they keep their links and editing, say the room is lost
/// for now and when they will ask again, and put the room back after the wait. (Before, a
/// member whose plain rejoin was throttled stopped with a fatal error; a throttled reclaim was
/// asked again only on the next reconnect, which may never come.)
#[test]
fn a_throttled_reclaim_after_a_restart_keeps_the_links_and_is_asked_again_after_the_wait() {
    let data = temp_dir("restart-throttled");
    let serve = Serve::start(&data);
    let addr = serve.addr.clone();
    let (mut host, mut guest, _) = keyed_room(&serve);

    serve.stop();
    // Both wait seconds before their next try, so the throttle is spent before they come.
    until_a_long_reconnect_wait([&mut host, &mut guest]);
    let serve = Serve::start_at(&data, &addr);
    throttle_this_address(&serve);
    for p in [&mut host, &mut guest] {
        lost_but_running(p, &["too-many-attempts", "asked again in"]);
    }
    links_still_carry_edits(&mut host, &mut guest);
    // After the wait the reclaim is asked again and the room is back on the server.
    wait_for_room_on_server(&serve.addr, 1);
}

/// A member of a room without a key rejoins plainly after a restart; refused by the throttle,
/// it keeps its links and goes on (before, that refusal was fatal and the process ended).
#[test]
fn a_keyless_member_whose_rejoin_is_throttled_after_a_restart_keeps_its_links() {
    let data = temp_dir("restart-keyless-throttled");
    let serve = Serve::start(&data);
    let addr = serve.addr.clone();
    let (mut host, mut guest, _) = keyless_room(&serve);

    serve.stop();
    until_a_long_reconnect_wait([&mut host, &mut guest]);
    let serve = Serve::start_at(&data, &addr);
    throttle_this_address(&serve);
    for p in [&mut host, &mut guest] {
        lost_but_running(p, &["too-many-attempts"]);
    }
    links_still_carry_edits(&mut host, &mut guest);
}
