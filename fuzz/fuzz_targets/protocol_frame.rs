//! Frames from a hostile peer: several in a row through one reassembler, with small limits so
//! chunking, compression and the size checks are all reachable. Nothing may panic, and a
//! message that decodes must encode again and decode to the same bytes (compared as bytes, not
//! with `==`, since a NaN cursor is never equal to itself).
#![no_main]

use bassline_protocol::{Codec, Reassembler};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let codec = Codec {
        max_frame: 256,
        max_message: 1 << 20,
        ..Codec::default()
    };
    let mut rx = Reassembler::new(codec.clone());
    // Frames are separated by a length byte, so the fuzzer can build sequences of chunks.
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        rest = tail;
        if let Ok(Some(env)) = rx.push(frame) {
            let frames = codec.encode(&env).expect("a decoded message encodes again");
            let mut again = Reassembler::new(codec.clone());
            let mut out = None;
            for f in &frames {
                out = again.push(f).expect("our own frames decode");
            }
            let out = out.expect("the last frame completes the message");
            assert_eq!(codec.encode(&out).expect("encodes"), frames);
        }
        assert!(rx.buffered() <= 1 << 20);
    }
});
