//! One whole frame, decoded with default limits. Whatever decodes must re-encode to stable
//! MessagePack bytes, and must survive the JSON debugging format without panicking (JSON has no
//! NaN or infinities, so there it only has to fail cleanly).
#![no_main]

use bassline_protocol::{Codec, Format, Reassembler};
use libfuzzer_sys::fuzz_target;

fn decode(codec: &Codec, frames: &[Vec<u8>]) -> Option<bassline_protocol::Envelope> {
    let mut rx = Reassembler::new(codec.clone());
    let mut out = None;
    for f in frames {
        out = rx.push(f).ok()?;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(Some(env)) = Reassembler::new(Codec::default()).push(data) else {
        return;
    };
    let codec = Codec::default();
    let frames = codec.encode(&env).expect("a decoded message encodes again");
    let again = decode(&codec, &frames).expect("our own MessagePack frames decode");
    assert_eq!(codec.encode(&again).expect("encodes"), frames);

    let json = Codec {
        format: Format::Json,
        ..Codec::default()
    };
    if let Ok(frames) = json.encode(&env) {
        let _ = decode(&json, &frames);
    }
});
