//! Permissions end to end over WebRTC: the host of a `bassline host` process makes a guest
//! read-only and back through its standard input, and a `bassline serve --guests read-only`
//! keeps its remote clients from editing.

mod harness;

use harness::{Peer, Serve, converge, temp_dir};

fn editable(p: &mut Peer) {
    p.wait("editable", |v| {
        v["event"] == "read-only" && v["value"] == false
    });
}

#[test]
fn the_host_makes_a_guest_read_only_and_back() {
    let dir = temp_dir("permit");
    let serve = Serve::start(&dir);
    let mut host = Peer::host(&serve, &[]);
    let link = host.wait_event("room")["link"]
        .as_str()
        .expect("a link")
        .to_owned();
    let mut guest = Peer::join("guest", &serve, &link, &[]);
    editable(&mut guest);
    let me = guest.status()["me"].as_u64().expect("the guest's id");

    // Only the host decides.
    guest.send(&format!(
        r#"{{"type":"permit","peer":{me},"permission":"read-write"}}"#
    ));
    guest.wait("a guest's permit refused", |v| {
        v["event"] == "error" && v["code"] == "not-host"
    });

    host.send(&format!(
        r#"{{"type":"permit","peer":{me},"permission":"read-only"}}"#
    ));
    guest.wait("told why it is read-only", |v| {
        v["event"] == "read-only" && v["value"] == true && v["because"] == "read-only"
    });
    assert_eq!(guest.status()["permission"], "read-only");
    guest.send(r#"{"type":"add-contact","id":"while-read-only","group":"root"}"#);
    guest.wait("its edit refused", |v| {
        v["event"] == "error" && v["code"] == "not-permitted"
    });

    host.send(&format!(
        r#"{{"type":"permit","peer":{me},"permission":"read-write"}}"#
    ));
    editable(&mut guest);
    guest.send(r#"{"type":"add-contact","id":"after","group":"root","value":3}"#);
    converge(&mut [&mut host, &mut guest]);
    let seen = host.ask(r#"{"type":"get-contact","id":"after"}"#);
    assert_eq!(seen["reply"]["contact"]["value"], 3, "{seen}");
    let missing = host.ask(r#"{"type":"get-contact","id":"while-read-only"}"#);
    assert!(
        missing["event"] == "error"
            && missing["message"]
                .as_str()
                .is_some_and(|m| m.contains("no contact with id `while-read-only`")),
        "the refused edit must not reach the host: {missing}"
    );

    // A malformed permit says how to write one.
    host.send(r#"{"type":"permit","peer":2,"permission":"admin"}"#);
    host.wait("a bad permit explained", |v| {
        v["event"] == "error"
            && v["code"] == "bad-input"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("read-only"))
    });
}
