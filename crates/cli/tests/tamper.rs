//! `bassline host` and `join` processes whose signaling goes through a proxy that swaps the DTLS
//! fingerprints in what it relays (the proxy of crates/net/tests/common). With the join link the
//! connection is refused and the CLI says so, in text and in JSON; a damaged link is refused
//! before anything starts.

mod harness;
#[path = "../../net/tests/common/proxy.rs"]
mod proxy;

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    sync::mpsc,
};

use harness::{Peer, Serve, WAIT, bassline, temp_dir};
use proxy::{Mode, Proxy};

/// A runtime for the proxy, alive as long as the test holds it.
fn proxy(serve: &Serve, mode: Mode) -> (tokio::runtime::Runtime, Proxy) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let p = rt.block_on(Proxy::start(serve.signal(), mode));
    (rt, p)
}

fn lines(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

fn wait_line(rx: &mpsc::Receiver<String>, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if pred(&l) => return l,
            Ok(l) => seen.push(l),
            Err(_) => panic!("no {what} (bounded wait); saw:\n{}", seen.join("\n")),
        }
    }
}

#[test]
fn the_host_prints_that_the_signaling_path_was_tampered_with() {
    let dir = temp_dir("tamper-text");
    let serve = Serve::start(&dir);
    let (_rt, proxy) = proxy(&serve, Mode::TamperOffers);
    // The host in text mode, as a person runs it.
    let mut host = Killed(
        bassline()
            .args(["host", "--signal", &proxy.url(), "--bind", "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bassline host starts"),
    );
    let _stdin = host.0.stdin.take();
    let out = lines(host.0.stdout.take().unwrap());
    let err = lines(host.0.stderr.take().unwrap());
    let join = wait_line(&out, "the join command", |l| l.contains("bassline join '"));
    let link = join
        .split('\'')
        .nth(1)
        .expect("the link is quoted")
        .to_owned();
    assert!(link.contains("#join=") && link.contains("&k="), "{join}");
    let mut guest = Peer::join_via("guest", &proxy.url(), &link, &[]);
    let line = wait_line(&err, "the tamper error", |l| l.starts_with("error: "));
    assert!(
        line.starts_with(
            "error: connection to peer 2 refused: the signaling path was tampered with: the \
             offer/answer's DTLS fingerprint is not the one its sender signed"
        ),
        "{line}"
    );
    assert!(
        line.contains(
            "Someone between you and the signaling server, or the server itself, tried to \
             intercept the connection"
        ),
        "{line}"
    );
    // Nothing crossed: the guest never got the host's state.
    let status = guest.status();
    assert_eq!(status["synced"], false, "{status}");
    assert!(
        !guest
            .seen
            .iter()
            .any(|v| v["event"] == "peer" && v["state"] == "connected"),
        "{:?}",
        guest.seen
    );
}

/// A child process killed when dropped, also when the test fails.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_guest_reports_a_tampered_answer_as_a_json_error() {
    let dir = temp_dir("tamper-json");
    let serve = Serve::start(&dir);
    let (_rt, proxy) = proxy(&serve, Mode::TamperAnswers);
    let mut host = Peer::host_via(&proxy.url(), &[]);
    let link = host.wait_event("room")["link"]
        .as_str()
        .expect("a link")
        .to_owned();
    let mut guest = Peer::join_via("guest", &proxy.url(), &link, &[]);
    let err = guest.wait("a tamper error", |v| v["event"] == "error");
    assert_eq!(err["code"], "signaling-tampered", "{err}");
    assert_eq!(err["peer"], 1, "{err}");
    assert_eq!(err["fatal"], false, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("connection to peer 1 refused: the signaling path was tampered with:"),
        "{err}"
    );
    assert_eq!(guest.status()["synced"], false);
}

#[test]
fn a_damaged_join_link_is_refused_and_says_what_is_wrong() {
    let dir = temp_dir("bad-link");
    let serve = Serve::start(&dir);
    let mut host = Peer::host(&serve, &[]);
    let link = host.wait_event("room")["link"]
        .as_str()
        .expect("a link")
        .to_owned();
    for (bad, want) in [
        (link[..link.len() - 3].to_owned(), "damaged (too short)"),
        (
            link.split("&k=").next().unwrap().to_owned(),
            "has no room key",
        ),
    ] {
        let out = bassline()
            .args(["join", &bad, "--signal", &serve.signal(), "--json"])
            .stdin(Stdio::null())
            .output()
            .expect("bassline join runs");
        assert!(!out.status.success(), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(want), "{bad}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
