//! Joining by room code + password, end to end: real `bassline serve`, `host` and `join`
//! processes over webrtc-rs on loopback. The host checks the password by PAKE and hands over the
//! room key; the signaling server only relays `pake` messages and never sees the password (a
//! recording proxy in front of it proves that); wrong passwords and guessing are refused by the
//! host, which stays unharmed.

mod harness;
#[path = "../../net/tests/common/proxy.rs"]
mod proxy;

use harness::{Peer, Serve, converge, temp_dir};
use proxy::{Mode, Proxy};
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";

fn code_of(host: &mut Peer) -> String {
    let room = host.wait_event("room");
    room["code"].as_str().expect("a code").to_owned()
}

fn editable(p: &mut Peer) {
    p.wait("editable", |v| {
        v["event"] == "read-only" && v["value"] == false
    });
}

/// The first error event of a peer that exited, after asserting it exited with a failure.
fn failed_with(peer: Peer) -> Value {
    let name = peer.name.clone();
    let (ok, out) = peer.exit();
    assert!(!ok, "{name} must exit with an error");
    out.into_iter()
        .find(|v| v["event"] == "error")
        .unwrap_or_else(|| panic!("{name}: no error event"))
}

#[test]
fn guests_join_by_code_and_password_and_converge_with_the_host() {
    let dir = temp_dir("pake-converge");
    let serve = Serve::start(&dir);
    let mut host = Peer::host(&serve, &["--password", PASSWORD]);
    let code = code_of(&mut host);
    host.send(r#"{"type":"add-contact","id":"from-host","group":"root","value":1}"#);
    // Two guests at once: two PAKE runs in flight at the host.
    let mut a = Peer::join("a", &serve, &code, &["--password", PASSWORD]);
    let mut b = Peer::join("b", &serve, &code, &["--password", PASSWORD]);
    editable(&mut a);
    editable(&mut b);
    a.send(r#"{"type":"add-contact","id":"from-a","group":"root","value":2}"#);
    b.send(r#"{"type":"add-contact","id":"from-b","group":"root","value":3}"#);
    let hash = converge(&mut [&mut host, &mut a, &mut b]);
    assert!(!hash.is_empty());
    // No guest offered before it held the key: nothing unsigned reached the host.
    let errors: Vec<&Value> = host.seen.iter().filter(|v| v["event"] == "error").collect();
    assert!(errors.is_empty(), "the host refused something: {errors:#?}");
    for p in [&mut host, &mut a, &mut b] {
        for c in ["from-host", "from-a", "from-b"] {
            let got = p.ask(&format!(r#"{{"type":"get-contact","id":"{c}"}}"#));
            assert_eq!(got["event"], "answer", "{}: {c}: {got}", p.name);
        }
    }
}

#[test]
fn a_wrong_password_is_refused_by_the_host_and_the_host_is_unharmed() {
    let dir = temp_dir("pake-wrong");
    let serve = Serve::start(&dir);
    let mut host = Peer::host(&serve, &["--password", PASSWORD]);
    let code = code_of(&mut host);

    let err = failed_with(Peer::join(
        "wrong",
        &serve,
        &code,
        &["--password", "hunter3"],
    ));
    assert_eq!(err["code"], "wrong-password", "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains(&format!("room {code}")), "{err}");
    assert!(message.contains("checked by the host"), "{err}");

    // Neither password nor link: the guest is told what the room needs.
    let err = failed_with(Peer::join("bare", &serve, &code, &[]));
    assert_eq!(err["code"], "password-required", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("join link"),
        "{err}"
    );

    // The host is unharmed: the right password still gets in, and the room converges.
    let mut guest = Peer::join("right", &serve, &code, &["--password", PASSWORD]);
    editable(&mut guest);
    guest.send(r#"{"type":"add-contact","id":"after","group":"root","value":5}"#);
    converge(&mut [&mut host, &mut guest]);
}

#[test]
fn the_signaling_server_never_sees_the_password() {
    let dir = temp_dir("pake-wire");
    let serve = Serve::start(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let proxy = rt.block_on(Proxy::start(serve.signal(), Mode::Honest));
    let mut host = Peer::host_via(&proxy.url(), &["--password", PASSWORD]);
    let code = code_of(&mut host);
    let wrong = "tr0ub4dor&3";
    let err = failed_with(Peer::join_via(
        "wrong",
        &proxy.url(),
        &code,
        &["--password", wrong],
    ));
    assert_eq!(err["code"], "wrong-password", "{err}");
    let mut guest = Peer::join_via("guest", &proxy.url(), &code, &["--password", PASSWORD]);
    editable(&mut guest);
    converge(&mut [&mut host, &mut guest]);

    let frames = proxy.frames();
    for secret in [PASSWORD, wrong, "correct horse"] {
        let leaks: Vec<&String> = frames.iter().filter(|f| f.contains(secret)).collect();
        assert!(leaks.is_empty(), "{secret:?} crossed the wire: {leaks:#?}");
    }
    let kinds: Vec<Value> = frames
        .iter()
        .map(|f| serde_json::from_str(f).expect("signaling frames are JSON"))
        .collect();
    let count = |pred: &dyn Fn(&Value) -> bool| kinds.iter().filter(|v| pred(v)).count();
    assert!(
        kinds.iter().any(|v| v["type"] == "create-room"
            && v["pake"] == true
            && v.get("password").is_none()),
        "the host asks for a PAKE room without its password"
    );
    assert!(
        kinds
            .iter()
            .filter(|v| v["type"] == "join-room")
            .all(|v| v.get("password").is_none()),
        "no join carries a password"
    );
    // Both runs crossed: a hello, a reply and a confirm or abort each, both ways through the
    // proxy (client to server, then server to client).
    let pake = count(&|v| v["type"] == "pake");
    assert!(pake >= 12, "{pake} pake frames");
    assert_eq!(
        count(&|v| v["type"] == "reject" && v["reason"] == "wrong-password"),
        1,
        "the host rejected the wrong guest once"
    );
    assert!(count(&|v| v["type"] == "joined" && v["pake"] == true) >= 2);
}

#[test]
fn after_the_hosts_guess_limit_even_the_right_password_is_refused_for_now() {
    let dir = temp_dir("pake-limit");
    let serve = Serve::start(&dir);
    let mut host = Peer::host(
        &serve,
        &["--password", PASSWORD, "--max-password-failures", "2"],
    );
    let code = code_of(&mut host);
    let first = failed_with(Peer::join("g1", &serve, &code, &["--password", "guess1"]));
    assert_eq!(first["code"], "wrong-password", "{first}");
    // The second guess still gets its run (and fails); it fills the host's window.
    let second = failed_with(Peer::join("g2", &serve, &code, &["--password", "guess2"]));
    assert_eq!(second["code"], "wrong-password", "{second}");
    // Now the host answers no run at all, whatever the password.
    let third = failed_with(Peer::join("g3", &serve, &code, &["--password", PASSWORD]));
    assert_eq!(third["code"], "too-many-attempts", "{third}");
    // The host's refusal, not the server's own throttle (10 a minute, not reached).
    assert!(
        third["message"]
            .as_str()
            .unwrap()
            .contains("the host of room"),
        "{third}"
    );
    // The host itself carries on.
    host.send(r#"{"type":"add-contact","id":"still-here","group":"root","value":1}"#);
    let got = host.ask(r#"{"type":"get-contact","id":"still-here"}"#);
    assert_eq!(got["event"], "answer", "{got}");
}

#[test]
fn a_guest_that_joined_by_link_answers_password_joins_once_it_hosts() {
    let dir = temp_dir("pake-handover");
    let serve = Serve::start(&dir);
    let mut host = Peer::host(&serve, &["--password", PASSWORD]);
    let room = host.wait_event("room");
    let (code, link) = (
        room["code"].as_str().expect("a code").to_owned(),
        room["link"].as_str().expect("a link").to_owned(),
    );
    // This guest never typed the password: it came in by the link.
    let mut by_link = Peer::join("by-link", &serve, &link, &[]);
    editable(&mut by_link);
    by_link.send(r#"{"type":"add-contact","id":"kept","group":"root","value":7}"#);
    converge(&mut [&mut host, &mut by_link]);

    // The host leaves for good; the guest takes over, and the server names it host.
    host.terminate();
    by_link.wait("leading a new epoch", |v| {
        v["event"] == "role" && v["role"] == "host" && v["epoch"].as_u64() > Some(1)
    });

    // A newcomer with code + password: the new host answers the PAKE (the old host handed it
    // the password, sealed under the room key) and the newcomer gets the state.
    let mut newcomer = Peer::join("newcomer", &serve, &code, &["--password", PASSWORD]);
    editable(&mut newcomer);
    converge(&mut [&mut by_link, &mut newcomer]);
    let got = newcomer.ask(r#"{"type":"get-contact","id":"kept"}"#);
    assert_eq!(got["reply"]["contact"]["value"], 7, "{got}");

    // And a wrong password is still refused by it.
    let wrong = failed_with(Peer::join("wrong", &serve, &code, &["--password", "guess"]));
    assert_eq!(wrong["code"], "wrong-password", "{wrong}");
}
