//! The signaling decoder on arbitrary bytes: it must never panic, and whatever it accepts must
//! survive an encode/decode round trip unchanged.
#![no_main]

use bassline_signal::{ClientMessage, RoomCode, decode_client};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode_client(data) {
        let json = serde_json::to_vec(&msg).expect("decoded messages re-encode");
        let again: ClientMessage = decode_client(&json).expect("re-encoded messages decode");
        assert_eq!(again, msg);
        if let ClientMessage::JoinRoom { code, .. } = &msg
            && let Ok(parsed) = RoomCode::parse(code)
        {
            assert_eq!(RoomCode::parse(parsed.as_str()), Ok(parsed));
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = RoomCode::parse(s);
    }
});
