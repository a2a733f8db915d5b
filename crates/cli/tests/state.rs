//! `bassline host --state FILE`: the network is loaded from FILE and saved back to it.

mod harness;

use harness::{Peer, Serve, temp_dir};

#[test]
fn host_state_is_saved_on_exit_and_loaded_again() {
    let dir = temp_dir("state");
    let file = dir.join("net.json");
    let serve = Serve::start(&dir.join("serve"));
    let file_arg = file.to_str().expect("utf-8 path");

    let mut host = Peer::host(&serve, &["--state", file_arg]);
    host.wait_event("room");
    host.send(r#"{"type":"add-contact","id":"kept","group":"root","value":42}"#);
    let a = host.ask(r#"{"type":"get-contact","id":"kept"}"#);
    assert_eq!(a["reply"]["contact"]["value"], 42, "{a}");
    let before = host.status()["hash"].clone();
    host.terminate();
    let text = std::fs::read_to_string(&file).expect("the state file was written on exit");
    assert!(text.contains("\"kept\""), "{text}");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary files left: {leftovers:?}"
    );

    let mut again = Peer::host(&serve, &["--state", file_arg]);
    again.wait_event("room");
    assert_eq!(
        again.status()["hash"],
        before,
        "the same network, loaded from the file"
    );
}
