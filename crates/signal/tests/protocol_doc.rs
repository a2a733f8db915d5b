//! Every example message in docs/PROTOCOL.md decodes as the type its block says, and encodes
//! back to the same JSON value: the document and the code cannot drift apart.

use bassline_signal::{ClientMessage, ServerMessage, decode_client};

fn blocks(tag: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/PROTOCOL.md"
    ))
    .expect("docs/PROTOCOL.md exists");
    let mut out = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        if line.trim() == format!("```json {tag}") {
            inside = true;
        } else if inside && line.trim() == "```" {
            inside = false;
        } else if inside && !line.trim().is_empty() {
            out.push(line.to_string());
        }
    }
    out
}

#[test]
fn client_examples_decode_and_round_trip() {
    let lines = blocks("client");
    assert!(lines.len() >= 10);
    for line in lines {
        let msg = decode_client(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
        let back: serde_json::Value = serde_json::to_value(&msg).unwrap();
        let mut original: serde_json::Value = serde_json::from_str(&line).unwrap();
        // Codes are kept as typed by the client; nothing else may change.
        assert_eq!(back, original.take(), "{line}");
        let _: ClientMessage = msg;
    }
}

#[test]
fn server_examples_decode_and_round_trip() {
    let lines = blocks("server");
    assert!(lines.len() >= 14);
    for line in lines {
        let msg: ServerMessage =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let back: serde_json::Value = serde_json::from_str(&msg.to_json()).unwrap();
        let original: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, original, "{line}");
    }
}

#[cfg(feature = "server")]
#[test]
fn the_documented_turn_credential_is_what_the_server_issues() {
    let (user, credential) = bassline_signal::ice::turn_credentials(
        b"northern-lights",
        1_767_225_600,
        "1f2e3d4c5b6a7980",
    );
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/PROTOCOL.md"
    ))
    .unwrap();
    assert!(doc.contains(&format!(
        r#""username":"{user}","credential":"{credential}""#
    )));
}
