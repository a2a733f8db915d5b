//! A real server on 127.0.0.1:0 and real WebSocket clients (tokio-tungstenite) for the
//! integration tests. Every wait is bounded so a broken server fails a test instead of hanging
//! it; no test asserts how long anything took.

#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use bassline_signal::{
    PeerId, RoomCode, ServerMessage,
    password::PasswordParams,
    server::{self, Handle, ServerConfig},
};
use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, protocol::CloseFrame},
};

#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub async fn start(cfg: ServerConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let (htx, hrx) = oneshot::channel();
        let task = tokio::spawn(server::serve_with_handle(
            listener,
            cfg,
            async move {
                let _ = stopped.await;
            },
            move |h| {
                let _ = htx.send(h);
            },
        ));
        let handle = hrx.await.unwrap();
        Self {
            addr,
            handle,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Triggers graceful shutdown and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        bounded(&mut self.task).await.unwrap().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A configuration for tests: fast Argon2, a local STUN URL, no internet.
pub fn test_config() -> ServerConfig {
    let mut cfg = ServerConfig {
        password: PasswordParams::for_tests(),
        ..ServerConfig::default()
    };
    cfg.ice.stun_urls = vec!["stun:127.0.0.1:3478".into()];
    cfg
}

/// The `joined` a second member gets in a room `host` created (no PAKE).
pub fn joined_second(code: RoomCode, host: PeerId, guest: PeerId) -> ServerMessage {
    ServerMessage::Joined {
        code,
        members: vec![host, guest],
        numbers: vec![1, 2],
        host,
        number: 2,
        pake: false,
    }
}

pub async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the server did not answer (bounded wait, not a timing assertion)")
}

#[derive(Debug)]
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn connect(server: &Server) -> Self {
        Self::connect_url(&server.url()).await
    }

    pub async fn connect_url(url: &str) -> Self {
        let (ws, _) = bounded(connect_async(url)).await.unwrap();
        Self { ws }
    }

    pub async fn connect_with_origin(server: &Server, origin: &str) -> Result<Self, String> {
        let mut req = server.url().into_client_request().unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        match bounded(connect_async(req)).await {
            Ok((ws, _)) => Ok(Self { ws }),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Connects with one extra request header, e.g. the `X-Forwarded-For` a proxy would add.
    pub async fn connect_with_header(server: &Server, name: &'static str, value: &str) -> Self {
        let mut req = server.url().into_client_request().unwrap();
        req.headers_mut().append(name, value.parse().unwrap());
        let (ws, _) = bounded(connect_async(req)).await.unwrap();
        Self { ws }
    }

    pub async fn send(&mut self, json: &str) {
        bounded(self.ws.send(Message::text(json))).await.unwrap();
    }

    pub async fn send_raw(&mut self, msg: Message) {
        bounded(self.ws.send(msg)).await.unwrap();
    }

    /// The next server message (pings and pongs skipped).
    pub async fn recv(&mut self) -> ServerMessage {
        loop {
            match bounded(self.ws.next()).await {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(&t).unwrap_or_else(|e| panic!("{e}: {t}"));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Waits for the close frame (skipping anything else) and returns it.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            match bounded(self.ws.next()).await {
                Some(Ok(Message::Close(f))) => return f,
                None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    pub async fn hello(&mut self) -> (PeerId, String) {
        self.send(r#"{"type":"hello","version":1}"#).await;
        match self.recv().await {
            ServerMessage::Welcome {
                peer_id,
                resume_token,
                ..
            } => (peer_id, resume_token),
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    pub async fn create(&mut self, json: &str) -> RoomCode {
        self.send(json).await;
        match self.recv().await {
            ServerMessage::RoomCreated { code, .. } => code,
            other => panic!("expected room-created, got {other:?}"),
        }
    }

    pub async fn error_code(&mut self) -> bassline_signal::ErrorCode {
        match self.recv().await {
            ServerMessage::Error { code, .. } => code,
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

/// A plain HTTP/1.1 GET, for /healthz and /metrics. Empty if the server closed the connection
/// without answering (the per-address accept cap does that).
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut out = String::new();
    match bounded(s.read_to_string(&mut out)).await {
        Ok(_) => out,
        Err(_) => String::new(),
    }
}
