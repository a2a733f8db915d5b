//! Remote mode end to end: a `bassline serve` process is the permanent host; clients in this
//! test process connect over WebSocket (as the browser editor will).

mod harness;

use std::time::Duration;

use bassline_core::{NetworkClient, Reply, Request, Value, id};
use bassline_net::{NetClient, Start, wait_for, ws::remote};
use bassline_sync::{Candidacy, Config};
use harness::{Serve, temp_dir};

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(harness::WAIT, f)
        .await
        .expect("bounded wait (not a timing assertion)")
}

fn client(serve: &Serve) -> NetClient {
    let cfg = Config {
        candidacy: Candidacy::Never,
        ..Config::default()
    };
    NetClient::spawn(remote(serve.remote()), cfg, Start::Guest)
}

async fn editable(c: &NetClient) {
    bounded(wait_for(c, |s| s.synced && !s.read_only))
        .await
        .expect("client runs");
}

async fn settled_hash(c: &NetClient) -> String {
    bounded(async {
        loop {
            let s = c.status_now().await.expect("client runs");
            if s.synced && s.pending == 0 {
                return s.hash.expect("asked for");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

async fn value(c: &NetClient, contact: &str) -> Value {
    match c
        .request(Request::GetContact { id: id!(contact) })
        .await
        .expect("contact exists")
        .reply
    {
        Reply::Contact { contact } => contact.value,
        other => panic!("unexpected reply {other:?}"),
    }
}

fn add(c: &str, v: f64) -> Request {
    Request::AddContact {
        id: Some(id!(c)),
        group: id!("root"),
        name: None,
        blend: Default::default(),
        value: Value::from(v),
        boundary: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_remote_clients_edit_one_network_on_the_server() {
    let dir = temp_dir("remote");
    let serve = Serve::start(&dir);
    let a = client(&serve);
    let b = client(&serve);
    editable(&a).await;
    editable(&b).await;
    a.submit(add("from-a", 1.0)).await.unwrap();
    b.submit(add("from-b", 2.0)).await.unwrap();
    bounded(async {
        loop {
            let (ha, hb) = (settled_hash(&a).await, settled_hash(&b).await);
            if ha == hb
                && a.request(Request::GetContact { id: id!("from-b") })
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(value(&a, "from-b").await, Value::from(2.0));
    assert_eq!(value(&b, "from-a").await, Value::from(1.0));
    // A remote client never leads: the server is the host.
    assert_eq!(a.status_now().await.unwrap().role, "guest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_restart_keeps_the_network() {
    let data = temp_dir("restart");
    let serve = Serve::start(&data);
    let a = client(&serve);
    editable(&a).await;
    for i in 0..5 {
        a.submit(add(&format!("c{i}"), f64::from(i))).await.unwrap();
    }
    let before = settled_hash(&a).await;
    drop(a);
    serve.stop();

    let serve = Serve::start(&data);
    let b = client(&serve);
    editable(&b).await;
    assert_eq!(
        settled_hash(&b).await,
        before,
        "the restarted server has the same network"
    );
    assert_eq!(value(&b, "c4").await, Value::from(4.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_follows_a_restarted_server_and_keeps_its_id() {
    let data = temp_dir("follow");
    let serve = Serve::start(&data);
    let a = client(&serve);
    editable(&a).await;
    let me = a.status_now().await.unwrap().me;
    a.submit(add("kept", 7.0)).await.unwrap();
    settled_hash(&a).await;
    // Restart on the same port, as a redeploy would.
    let addr = serve.addr.clone();
    serve.stop();
    let serve = harness::Serve::start_at(&data, &addr);
    // The client reconnects by itself, read-only meanwhile, and follows the new process.
    bounded(wait_for(&a, |s| s.read_only)).await.unwrap();
    editable(&a).await;
    assert_eq!(
        a.status_now().await.unwrap().me,
        me,
        "the resume token kept the id"
    );
    a.submit(add("after", 8.0)).await.unwrap();
    settled_hash(&a).await;
    assert_eq!(value(&a, "kept").await, Value::from(7.0));
    drop(serve);
}

/// Opens `/remote` with `query` and reads the welcome: (peer, token, resumed) and the socket.
async fn welcome(
    serve: &Serve,
    query: &str,
) -> (
    (u64, String, bool),
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) {
    use futures_util::StreamExt;
    let (mut ws, _) = bounded(tokio_tungstenite::connect_async(format!(
        "{}{query}",
        serve.remote()
    )))
    .await
    .expect("serve accepts the connection");
    let text = match bounded(ws.next()).await {
        Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => t,
        other => panic!("expected the welcome, got {other:?}"),
    };
    let w: serde_json::Value = serde_json::from_str(&text).expect("the welcome is JSON");
    let fields = (
        w["peer"].as_u64().expect("peer"),
        w["token"].as_str().expect("token").to_owned(),
        w["resumed"].as_bool().expect("resumed"),
    );
    (fields, ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_token_gets_its_own_id_while_the_original_is_connected() {
    let data = temp_dir("copied-token");
    let serve = Serve::start(&data);
    let ((me, token, resumed), first) = welcome(&serve, "?instance=tab-a").await;
    assert!(!resumed, "a first connection is new");

    // A duplicated tab: the same token, another page instance, the original still connected.
    let ((copy, _, resumed), copy_ws) =
        welcome(&serve, &format!("?resume={token}&instance=tab-b")).await;
    assert_ne!(copy, me, "the copy must not share the original's id");
    assert!(!resumed, "the copy is a new client");

    // The original page reconnecting (same instance) takes its id back at once.
    let ((again, _, resumed), again_ws) =
        welcome(&serve, &format!("?resume={token}&instance=tab-a")).await;
    assert_eq!(
        (again, resumed),
        (me, true),
        "the same page reconnecting keeps its id"
    );

    // Once every connection of the id is closed, a reload (a new instance) gets it back.
    drop((first, again_ws, copy_ws));
    let reload = async {
        loop {
            let ((id, _, resumed), ws) =
                welcome(&serve, &format!("?resume={token}&instance=tab-c")).await;
            if (id, resumed) == (me, true) {
                return ws;
            }
            // The server has not yet seen the closes; this connection is dropped and retried.
            drop(ws);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let _kept = bounded(reload).await;
    drop(serve);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_read_only_guests_shows_the_network_and_refuses_edits() {
    let data = temp_dir("read-only-guests");
    // A first run fills the network; the next one serves it to read-only clients.
    let serve = Serve::start(&data);
    let writer = client(&serve);
    editable(&writer).await;
    writer.submit(add("shown", 4.0)).await.unwrap();
    settled_hash(&writer).await;
    drop(writer);
    serve.stop();

    let serve = Serve::start_with(
        &data,
        "127.0.0.1:0",
        &["--guests".as_ref(), "read-only".as_ref()],
    );
    let viewer = client(&serve);
    let status = bounded(wait_for(&viewer, |s| {
        s.synced && s.permission == bassline_sync::Permission::ReadOnly
    }))
    .await
    .expect("the viewer gets the state and its permission");
    assert!(status.read_only, "a read-only member is read-only");
    assert_eq!(value(&viewer, "shown").await, Value::from(4.0));
    let refused = viewer.submit(add("not-allowed", 1.0)).await;
    match refused {
        Err(e) => assert!(
            matches!(&e, bassline_net::Error::Refused { code, .. } if code == "not-permitted"),
            "{e}"
        ),
        Ok(r) => panic!("a read-only client's edit was taken: {r:?}"),
    }
    drop(serve);
}
