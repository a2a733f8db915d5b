//! A WebSocket relay that sits between peers and a real signaling server, as a reverse proxy or
//! a TLS-inspecting middlebox would, and can tamper with what it relays: it rewrites the DTLS
//! fingerprints of the offers and/or answers it hands to its clients (every hex digit moved by
//! one, so the SDP still parses), and can play back offers it relayed earlier.
//!
//! Shared by the net and CLI tamper tests (the CLI suite includes this file by path). Binds
//! 127.0.0.1:0; dropping the proxy stops it and every connection it relays.

#![allow(dead_code)]

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use futures_util::{SinkExt, StreamExt};
use tokio::{net::TcpListener, sync::mpsc, task::JoinHandle};
use tokio_tungstenite::tungstenite::Message;

/// What the proxy does to the offers and answers it relays to its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Relays everything untouched.
    Honest,
    /// Swaps the fingerprint in every offer.
    TamperOffers,
    /// Swaps the fingerprint in every answer.
    TamperAnswers,
}

#[derive(Default)]
struct Shared {
    /// Per client connection: where to inject frames, and the offers relayed to it so far.
    clients: Mutex<Vec<(mpsc::UnboundedSender<Message>, Vec<String>)>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    tampered: AtomicUsize,
    /// Every text frame relayed, either way, as it arrived (before any tampering).
    frames: Mutex<Vec<String>>,
}

/// A running proxy.
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy in front of the signaling server at `upstream` (a `ws://` URL).
    pub async fn start(upstream: String, mode: Mode) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("bound");
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let s2 = s.clone();
                let up = upstream.clone();
                let t = tokio::spawn(async move { relay(tcp, up, mode, s2).await });
                s.tasks.lock().unwrap().push(t);
            }
        });
        Proxy {
            addr,
            shared,
            accept,
        }
    }

    /// The URL peers connect to instead of the server's.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// How many offers/answers it has tampered with so far.
    pub fn tampered(&self) -> usize {
        self.shared.tampered.load(Ordering::SeqCst)
    }

    /// Every text frame relayed so far, both ways, in arrival order per direction.
    pub fn frames(&self) -> Vec<String> {
        self.shared.frames.lock().unwrap().clone()
    }

    /// Sends every offer relayed so far once more to the client it went to; returns how many.
    pub fn replay_offers(&self) -> usize {
        let clients = self.shared.clients.lock().unwrap();
        let mut n = 0;
        for (inject, offers) in clients.iter() {
            for o in offers {
                if inject.send(Message::text(o.clone())).is_ok() {
                    n += 1;
                }
            }
        }
        n
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for t in self.shared.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

async fn relay(tcp: tokio::net::TcpStream, upstream: String, mode: Mode, shared: Arc<Shared>) {
    let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let Ok((server, _)) = tokio_tungstenite::connect_async(upstream.as_str()).await else {
        return;
    };
    let (mut to_client, mut from_client) = client.split();
    let (mut to_server, mut from_server) = server.split();
    let (inject, mut injected) = mpsc::unbounded_channel::<Message>();
    let me = {
        let mut clients = shared.clients.lock().unwrap();
        clients.push((inject, Vec::new()));
        clients.len() - 1
    };
    let recorder = shared.clone();
    let up = tokio::spawn(async move {
        while let Some(Ok(m)) = from_client.next().await {
            if let Message::Text(t) = &m {
                recorder.frames.lock().unwrap().push(t.as_str().to_owned());
            }
            if to_server.send(m).await.is_err() {
                return;
            }
        }
        let _ = to_server.close().await;
    });
    loop {
        let m = tokio::select! {
            m = from_server.next() => match m {
                Some(Ok(m)) => m,
                _ => break,
            },
            Some(m) = injected.recv() => m,
        };
        let m = match m {
            Message::Text(t) => {
                shared.frames.lock().unwrap().push(t.as_str().to_owned());
                Message::text(rewrite(t.as_str(), mode, me, &shared))
            }
            other => other,
        };
        if to_client.send(m).await.is_err() {
            break;
        }
    }
    up.abort();
}

/// The frame to hand the client instead of `text`; records offers for replay.
fn rewrite(text: &str, mode: Mode, client: usize, shared: &Shared) -> String {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.to_owned();
    };
    let kind = v["type"].as_str().unwrap_or_default().to_owned();
    if kind == "offer" {
        shared.clients.lock().unwrap()[client]
            .1
            .push(text.to_owned());
    }
    let tamper = matches!(
        (mode, kind.as_str()),
        (Mode::TamperOffers, "offer") | (Mode::TamperAnswers, "answer")
    );
    if !tamper {
        return text.to_owned();
    }
    let Some(sdp) = v["sdp"].as_str() else {
        return text.to_owned();
    };
    v["sdp"] = swap_fingerprints(sdp).into();
    shared.tampered.fetch_add(1, Ordering::SeqCst);
    v.to_string()
}

/// Moves every hex digit of every `a=fingerprint:` line by one (`0`->`1`, ..., `F`->`0`), as a
/// middleman that substitutes its own certificate would change it.
pub fn swap_fingerprints(sdp: &str) -> String {
    sdp.split_inclusive('\n')
        .map(|line| match line.strip_prefix("a=fingerprint:") {
            Some(rest) => {
                let (alg, digest) = rest.split_once(' ').unwrap_or((rest, ""));
                let moved: String = digest
                    .chars()
                    .map(|c| match c.to_digit(16) {
                        Some(d) => {
                            let n = char::from_digit((d + 1) % 16, 16).expect("below 16");
                            if c.is_ascii_uppercase() {
                                n.to_ascii_uppercase()
                            } else {
                                n
                            }
                        }
                        None => c,
                    })
                    .collect();
                format!("a=fingerprint:{alg} {moved}")
            }
            None => line.to_owned(),
        })
        .collect()
}
