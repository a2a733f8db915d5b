//! Room passwords and the TURN secret never reach the logs, even at the most verbose level.

mod common;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use bassline_signal::{ErrorCode, ServerMessage};
use common::{Client, Server, test_config};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn passwords_and_turn_secret_are_never_logged() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let mut cfg = test_config();
    cfg.ice.turn_urls = vec!["turn:127.0.0.1:3478".into()];
    cfg.ice.turn_secret = Some("turn-secret-5f2a".into());
    tracing::info!(?cfg, "config as the server would log it");
    let server = Server::start(cfg).await;
    let mut host = Client::connect(&server).await;
    host.hello().await;
    let code = host
        .create(r#"{"type":"create-room","password":"room-pw-91c3"}"#)
        .await;
    let mut guest = Client::connect(&server).await;
    guest.hello().await;
    guest
        .send(&format!(
            r#"{{"type":"join-room","code":"{code}","password":"wrong-pw-77d0"}}"#
        ))
        .await;
    assert_eq!(guest.error_code().await, ErrorCode::WrongPassword);
    guest
        .send(&format!(
            r#"{{"type":"join-room","code":"{code}","password":"room-pw-91c3"}}"#
        ))
        .await;
    assert!(matches!(guest.recv().await, ServerMessage::Joined { .. }));
    server.stop().await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("refused"),
        "debug logs were captured:\n{text}"
    );
    for secret in ["room-pw-91c3", "wrong-pw-77d0", "turn-secret-5f2a"] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the logs:\n{text}"
        );
    }
}
