//! Instances sharing rooms through a real Redis: a `redis-server` on a free port and three
//! `bassline-signal` processes, with peers on different instances. Debian's `redis-server` is
//! installed with apt-get when it is missing; a test that cannot get one fails, loudly.
//! Every process started here is killed when its guard drops, a failing test included.

mod common;

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use bassline_signal::{ErrorCode, PeerId, RoomCode, ServerMessage};
use common::{Client, joined_second};

/// The `redis-server` binary, installed through apt-get when missing.
fn redis_server_binary() -> PathBuf {
    let found = |p: &str| std::path::Path::new(p).exists().then(|| PathBuf::from(p));
    if let Some(p) = found("/usr/bin/redis-server") {
        return p;
    }
    eprintln!("redis-server is missing: apt-get install -y redis-server (about half a minute)");
    let ok = |mut c: Command| c.status().is_ok_and(|s| s.success());
    let mut update = Command::new("apt-get");
    update.arg("update");
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "--no-install-recommends", "redis-server"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    assert!(
        ok(update) && ok(install),
        "these tests need Debian's redis-server and `apt-get install -y redis-server` failed; \
         install it by hand (as root) and run them again"
    );
    found("/usr/bin/redis-server").expect("apt-get installed redis-server into /usr/bin")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `ready` every 20 ms for at most 20 s (a bound on a wait, not a timing assertion).
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not happen within 20 s");
}

fn redis_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// One command in RESP, answered by its first line (`:4`, `+OK`, ...).
fn redis_command(port: u16, args: &[&str]) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    if s.write_all(req.as_bytes()).is_err() {
        return String::new();
    }
    let mut line = String::new();
    let _ = BufReader::new(s).read_line(&mut line);
    line.trim().to_string()
}

/// A `redis-server` without persistence on a free loopback port; killed on drop.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Self {
        let mut r = Self {
            port: free_port(),
            child: None,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let child = Command::new(redis_server_binary())
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let port = self.port;
        wait_until("redis-server answering PING", || redis_ping(port));
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `bassline-signal` process sharing rooms through `redis`; killed (-9) on drop.
struct Instance {
    url: String,
    child: Child,
}

impl Instance {
    fn start(redis: &Redis, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bassline-signal"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--stun",
                "",
                "--redis",
                &redis.url(),
            ])
            .args(["--argon2-m-kib", "8", "--argon2-t", "1", "--log", "warn"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("bassline-signal starts");
        let mut line = String::new();
        let read =
            BufReader::new(child.stdout.take().expect("stdout is piped")).read_line(&mut line);
        let url = line
            .trim()
            .strip_prefix("bassline signal listening on ")
            .map(str::to_owned);
        let Some(url) = url.filter(|_| read.is_ok()) else {
            let _ = child.kill();
            panic!("bassline-signal did not start (its log is above): {line:?}");
        };
        Self { url, child }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill9();
    }
}

async fn greeted(inst: &Instance) -> (Client, PeerId, String) {
    let mut c = Client::connect_url(&inst.url).await;
    let (id, token) = c.hello().await;
    (c, id, token)
}

fn join(code: RoomCode, password: Option<&str>) -> String {
    match password {
        Some(p) => format!(r#"{{"type":"join-room","code":"{code}","password":"{p}"}}"#),
        None => format!(r#"{{"type":"join-room","code":"{code}"}}"#),
    }
}

fn offer(to: PeerId, sdp: &str) -> String {
    format!(r#"{{"type":"offer","to":"{to}","sdp":"{sdp}"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_rooms_passwords_relays_and_failed_join_limits() {
    let redis = Redis::start();
    let limit = ["--failed-joins-per-min", "4"];
    let (a, b, c) = (
        Instance::start(&redis, &limit),
        Instance::start(&redis, &limit),
        Instance::start(&redis, &limit),
    );

    let (mut host, host_id, _) = greeted(&a).await;
    let code = host
        .create(r#"{"type":"create-room","password":"hunter2","max_peers":3}"#)
        .await;

    // A guest on another instance: the password is checked against the hash in Redis.
    let (mut guest, guest_id, _) = greeted(&b).await;
    guest.send(&join(code, Some("wrong"))).await;
    assert_eq!(guest.error_code().await, ErrorCode::WrongPassword);
    guest.send(&join(code, Some("hunter2"))).await;
    assert_eq!(guest.recv().await, joined_second(code, host_id, guest_id));
    assert_eq!(
        host.recv().await,
        ServerMessage::PeerJoined {
            peer: guest_id,
            number: 2
        }
    );

    // Relays cross instances both ways, in order.
    guest.send(&offer(host_id, "v=0 one")).await;
    guest.send(&offer(host_id, "v=0 two")).await;
    for sdp in ["v=0 one", "v=0 two"] {
        assert_eq!(
            host.recv().await,
            ServerMessage::Offer {
                from: guest_id,
                sdp: sdp.into(),
                auth: None,
            }
        );
    }
    host.send(&format!(
        r#"{{"type":"answer","to":"{guest_id}","sdp":"v=0 back","auth":"mac-1"}}"#
    ))
    .await;
    assert_eq!(
        guest.recv().await,
        ServerMessage::Answer {
            from: host_id,
            sdp: "v=0 back".into(),
            auth: Some("mac-1".into()),
        }
    );

    // A third peer on the third instance fills the room; a fourth is refused on any instance.
    let (mut third, third_id, _) = greeted(&c).await;
    third.send(&join(code, Some("hunter2"))).await;
    assert!(matches!(
        third.recv().await,
        ServerMessage::Joined { number: 3, .. }
    ));
    for peer in [&mut host, &mut guest] {
        assert_eq!(
            peer.recv().await,
            ServerMessage::PeerJoined {
                peer: third_id,
                number: 3
            }
        );
    }
    let (mut fourth, _, _) = greeted(&a).await;
    fourth.send(&join(code, Some("hunter2"))).await;
    assert_eq!(fourth.error_code().await, ErrorCode::RoomFull);

    // The host leaves: everyone, on every instance, hears it and who hosts now.
    host.send(r#"{"type":"leave-room"}"#).await;
    assert_eq!(host.recv().await, ServerMessage::Left { code });
    for peer in [&mut guest, &mut third] {
        assert_eq!(peer.recv().await, ServerMessage::PeerLeft { peer: host_id });
        assert_eq!(
            peer.recv().await,
            ServerMessage::HostChanged { host: guest_id }
        );
    }

    // Failed joins from one address count on every instance: 4 allowed per minute in all, and
    // the guest's wrong password above was the first.
    let (mut probe_a, _, _) = greeted(&a).await;
    let (mut probe_b, _, _) = greeted(&b).await;
    let (mut probe_c, _, _) = greeted(&c).await;
    probe_a.send(&join(code, Some("nope"))).await;
    assert_eq!(probe_a.error_code().await, ErrorCode::WrongPassword);
    probe_b
        .send(r#"{"type":"join-room","code":"ZZZZZZ"}"#)
        .await;
    let second = probe_b.error_code().await;
    assert!(
        second == ErrorCode::RoomNotFound,
        "ZZZZZZ is not a room: {second:?}"
    );
    probe_c.send(&join(code, Some("nope"))).await;
    assert_eq!(probe_c.error_code().await, ErrorCode::WrongPassword);
    // The failures are written after the refusals are sent; wait until all four landed.
    let port = redis.port;
    wait_until("four failed joins stored", || {
        redis_command(port, &["LLEN", "bassline:fail:127.0.0.1"]) == ":4"
    });
    // Now even the right password is refused on the instance that saw one failure itself.
    probe_a.send(&join(code, Some("hunter2"))).await;
    assert_eq!(probe_a.error_code().await, ErrorCode::TooManyAttempts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_whose_instance_is_killed_resumes_on_another() {
    let redis = Redis::start();
    // A grace long enough that the host resumes well within it, short enough that the peer
    // who never comes back is noticed while the test waits.
    let grace = ["--grace-secs", "4"];
    let mut a = Instance::start(&redis, &grace);
    let b = Instance::start(&redis, &grace);
    let c = Instance::start(&redis, &grace);

    let (mut host, host_id, host_token) = greeted(&a).await;
    let code = host.create(r#"{"type":"create-room"}"#).await;
    let (mut guest, guest_id, _) = greeted(&b).await;
    guest.send(&join(code, None)).await;
    assert!(matches!(guest.recv().await, ServerMessage::Joined { .. }));
    let (mut lost, lost_id, _) = greeted(&a).await;
    lost.send(&join(code, None)).await;
    assert!(matches!(lost.recv().await, ServerMessage::Joined { .. }));
    assert!(matches!(
        guest.recv().await,
        ServerMessage::PeerJoined { .. }
    ));

    a.kill9();
    drop(host);
    drop(lost);

    let mut back = Client::connect_url(&c.url).await;
    back.send(&format!(
        r#"{{"type":"hello","version":1,"resume":"{host_token}"}}"#
    ))
    .await;
    match back.recv().await {
        ServerMessage::Welcome {
            peer_id, resumed, ..
        } => assert_eq!((peer_id, resumed), (host_id, true)),
        other => panic!("expected welcome, got {other:?}"),
    }
    match back.recv().await {
        ServerMessage::Joined {
            code: c2,
            members,
            host,
            number,
            ..
        } => {
            assert_eq!((c2, host, number), (code, host_id, 1));
            assert!(members.contains(&guest_id));
        }
        other => panic!("expected joined, got {other:?}"),
    }
    // Relays leave the resumed host on its new instance and reach it there.
    back.send(&offer(guest_id, "v=0 again")).await;
    assert_eq!(
        guest.recv().await,
        ServerMessage::Offer {
            from: host_id,
            sdp: "v=0 again".into(),
            auth: None,
        }
    );
    guest.send(&offer(host_id, "v=0 reply")).await;
    assert_eq!(
        back.recv().await,
        ServerMessage::Offer {
            from: guest_id,
            sdp: "v=0 reply".into(),
            auth: None,
        }
    );
    // The member that never came back is removed once its instance is presumed dead.
    assert_eq!(
        guest.recv().await,
        ServerMessage::PeerLeft { peer: lost_id }
    );
    assert_eq!(back.recv().await, ServerMessage::PeerLeft { peer: lost_id });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_new_rooms_are_refused_local_relays_go_on_and_it_recovers() {
    let mut redis = Redis::start();
    // Joins refused while Redis recovers must not lock the test's address out.
    let grace = ["--grace-secs", "2", "--failed-joins-per-min", "10000"];
    let a = Instance::start(&redis, &grace);
    let b = Instance::start(&redis, &grace);

    let (mut host, host_id, _) = greeted(&a).await;
    let code = host.create(r#"{"type":"create-room"}"#).await;
    let (mut local, local_id, _) = greeted(&a).await;
    local.send(&join(code, None)).await;
    assert!(matches!(local.recv().await, ServerMessage::Joined { .. }));
    assert!(matches!(
        host.recv().await,
        ServerMessage::PeerJoined { .. }
    ));
    let (mut other, _, _) = greeted(&b).await;

    redis.stop();

    // New rooms and joins need the store: a clear error, on every instance.
    let (mut creator, _, _) = greeted(&a).await;
    creator.send(r#"{"type":"create-room"}"#).await;
    assert_eq!(creator.error_code().await, ErrorCode::Unavailable);
    other.send(&join(code, None)).await;
    assert_eq!(other.error_code().await, ErrorCode::Unavailable);
    // A room whose members share an instance keeps relaying.
    host.send(&offer(local_id, "v=0 still")).await;
    assert_eq!(
        local.recv().await,
        ServerMessage::Offer {
            from: host_id,
            sdp: "v=0 still".into(),
            auth: None,
        }
    );

    redis.spawn();

    // Back: rooms can be created again, and the room that lived through the outage (Redis
    // came back empty) is written again by its instance, so a peer elsewhere can join it.
    let mut joined = false;
    for _ in 0..500 {
        other.send(&join(code, None)).await;
        match other.recv().await {
            ServerMessage::Joined { members, .. } => {
                assert_eq!(members[..2], [host_id, local_id]);
                joined = true;
                break;
            }
            ServerMessage::Error {
                code: ErrorCode::Unavailable | ErrorCode::RoomNotFound,
                ..
            } => tokio::time::sleep(Duration::from_millis(40)).await,
            other => panic!("expected joined or a refusal while recovering, got {other:?}"),
        }
    }
    assert!(joined, "the room was not restored after Redis came back");
    let (mut fresh, _, _) = greeted(&b).await;
    let _ = fresh.create(r#"{"type":"create-room"}"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pake_room_across_instances_relays_pake_and_the_hosts_reject_counts_in_redis() {
    let redis = Redis::start();
    let (a, b) = (Instance::start(&redis, &[]), Instance::start(&redis, &[]));
    let (mut host, host_id, _) = greeted(&a).await;
    let code = host.create(r#"{"type":"create-room","pake":true}"#).await;
    // The flag is in the shared record, so the other instance says it in `joined`.
    let (mut guest, guest_id, _) = greeted(&b).await;
    guest.send(&join(code, None)).await;
    assert!(matches!(
        guest.recv().await,
        ServerMessage::Joined { pake: true, .. }
    ));
    assert!(matches!(
        host.recv().await,
        ServerMessage::PeerJoined { .. }
    ));
    guest
        .send(&format!(
            r#"{{"type":"pake","to":"{host_id}","data":"EQAB"}}"#
        ))
        .await;
    assert_eq!(
        host.recv().await,
        ServerMessage::Pake {
            from: guest_id,
            data: "EQAB".into()
        }
    );
    // Only the host may reject.
    guest
        .send(&format!(
            r#"{{"type":"reject","peer":"{host_id}","reason":"wrong-password"}}"#
        ))
        .await;
    assert_eq!(guest.error_code().await, ErrorCode::NotHost);
    host.send(&format!(
        r#"{{"type":"reject","peer":"{guest_id}","reason":"wrong-password"}}"#
    ))
    .await;
    assert_eq!(guest.error_code().await, ErrorCode::WrongPassword);
    assert_eq!(
        host.recv().await,
        ServerMessage::PeerLeft { peer: guest_id }
    );
    // The failed join was counted in Redis, against the guest's address.
    let port = redis.port;
    wait_until("the failed join stored", || {
        redis_command(port, &["LLEN", "bassline:fail:127.0.0.1"]) == ":1"
    });
}
