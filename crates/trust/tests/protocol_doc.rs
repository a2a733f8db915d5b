//! The example in docs/PROTOCOL.md ("Room cryptography") is what the code produces: a link
//! fragment and an offer's attestation from fixed inputs, so other implementations (and the
//! document) cannot drift from this crate.

use std::collections::HashMap;

use bassline_trust::{Attestation, Binding, Kind, ReplayGuard, RoomKey};

fn vector() -> HashMap<String, String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/PROTOCOL.md"
    ))
    .expect("docs/PROTOCOL.md exists");
    let mut out = HashMap::new();
    let mut inside = false;
    for line in doc.lines() {
        if line.trim() == "```text trust-vector" {
            inside = true;
        } else if inside && line.trim() == "```" {
            break;
        } else if inside && let Some((k, v)) = line.split_once(':') {
            out.insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    out
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex in the vector"))
        .collect()
}

#[test]
fn the_documented_vector_is_what_the_code_produces() {
    let v = vector();
    assert!(
        v.len() >= 9,
        "the trust-vector block is in docs/PROTOCOL.md"
    );
    let key = RoomKey::from_bytes(hex(&v["room key"]).try_into().expect("32 bytes"));
    assert_eq!(key.to_fragment(), v["fragment"]);
    let binding = Binding {
        room_code: &v["room code"],
        from: u64::from_str_radix(&v["from"], 16).unwrap(),
        to: u64::from_str_radix(&v["to"], 16).unwrap(),
        kind: match v["kind"].as_str() {
            "offer" => Kind::Offer,
            _ => Kind::Answer,
        },
    };
    let sdp = format!("v=0\r\na=fingerprint:{}\r\n", v["fingerprint"]);
    let nonce: [u8; 16] = hex(&v["nonce"]).try_into().expect("16 bytes");
    let att = key.signal_key().attest(&binding, &sdp, nonce).unwrap();
    assert_eq!(att.encode(), v["auth"], "computed {}", att.encode());
    let decoded = Attestation::decode(&v["auth"]).unwrap();
    key.signal_key()
        .verify(&binding, &sdp, &decoded, &mut ReplayGuard::default())
        .unwrap();
}
