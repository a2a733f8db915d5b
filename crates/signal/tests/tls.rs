//! `--tls-cert`/`--tls-key`: the server speaks wss:// itself. A self-signed certificate made
//! with rcgen, a client that trusts exactly that certificate, the whole hello over TLS; and a
//! plain ws:// client is not served by a TLS port.

mod common;

use std::sync::Arc;

use bassline_signal::{ServerMessage, server::TlsFiles};
use common::{Server, bounded, test_config};
use futures_util::{SinkExt as _, StreamExt as _};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn wss_with_a_self_signed_certificate() {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = TempDir(std::env::temp_dir().join(format!("bassline-tls-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let (cert, key) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();

    let mut cfg = test_config();
    cfg.tls = Some(TlsFiles { cert, key });
    let server = Server::start(cfg).await;

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(made.cert.der().to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let tls = bounded(
        tokio_rustls::TlsConnector::from(Arc::new(client_cfg))
            .connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .expect("the TLS handshake succeeds with the server's own certificate");
    let url = format!("wss://localhost:{}/", server.addr.port());
    let (mut ws, _) = bounded(tokio_tungstenite::client_async(url, tls))
        .await
        .unwrap();
    ws.send(Message::text(r#"{"type":"hello","version":1}"#))
        .await
        .unwrap();
    let Some(Ok(Message::Text(t))) = bounded(ws.next()).await else {
        panic!("expected a text frame")
    };
    let msg: ServerMessage = serde_json::from_str(&t).unwrap();
    assert!(
        matches!(msg, ServerMessage::Welcome { version: 1, .. }),
        "{msg:?}"
    );

    // Plain WebSocket to the TLS port: no upgrade (the handshake fails), and nothing panics.
    let plain = bounded(tokio_tungstenite::connect_async(format!(
        "ws://{}/",
        server.addr
    )))
    .await;
    assert!(plain.is_err());
    server.stop().await;
}
