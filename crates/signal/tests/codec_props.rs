//! Property tests for the JSON codec: every message survives encode/decode unchanged, and the
//! decoder never panics on arbitrary bytes or on arbitrary mutations of valid frames.

use bassline_signal::{
    ClientMessage, Password, PeerId, RejectReason, ServerMessage, decode_client,
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Quotes, backslashes, control characters and non-ASCII, which JSON must escape.
    prop::collection::vec(any::<char>(), 0..40).prop_map(|v| v.into_iter().collect())
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (any::<u32>(), prop::option::of(text()))
            .prop_map(|(version, resume)| ClientMessage::Hello { version, resume }),
        (prop::option::of(text()), prop::option::of(any::<u16>())).prop_map(|(p, max_peers)| {
            ClientMessage::CreateRoom {
                password: p.map(Password),
                max_peers,
                pake: false,
            }
        }),
        prop::option::of(any::<u16>()).prop_map(|max_peers| ClientMessage::CreateRoom {
            password: None,
            max_peers,
            pake: true,
        }),
        (any::<u64>(), "[A-Za-z0-9_-]{0,256}").prop_map(|(to, data)| ClientMessage::Pake {
            to: PeerId(to),
            data,
        }),
        (any::<u64>(), any::<bool>()).prop_map(|(peer, wrong)| ClientMessage::Reject {
            peer: PeerId(peer),
            reason: if wrong {
                RejectReason::WrongPassword
            } else {
                RejectReason::TooManyAttempts
            },
        }),
        (text(), prop::option::of(text())).prop_map(|(code, p)| ClientMessage::JoinRoom {
            code,
            password: p.map(Password),
            reclaim: None,
        }),
        Just(ClientMessage::LeaveRoom),
        (any::<u64>(), text(), prop::option::of(text())).prop_map(|(to, sdp, auth)| {
            ClientMessage::Offer {
                to: PeerId(to),
                sdp,
                auth,
            }
        }),
        (any::<u64>(), text(), prop::option::of(text())).prop_map(|(to, sdp, auth)| {
            ClientMessage::Answer {
                to: PeerId(to),
                sdp,
                auth,
            }
        }),
        (
            any::<u64>(),
            text(),
            prop::option::of(text()),
            prop::option::of(any::<u16>())
        )
            .prop_map(|(to, candidate, sdp_mid, sdp_m_line_index)| {
                ClientMessage::Candidate {
                    to: PeerId(to),
                    candidate,
                    sdp_mid,
                    sdp_m_line_index,
                }
            }),
    ]
}

proptest! {
    #![proptest_config(bassline_testkit::proptest_config(256))]

    #[test]
    fn client_messages_round_trip(msg in client_message()) {
        let json = serde_json::to_vec(&msg).unwrap();
        prop_assert_eq!(decode_client(&json).unwrap(), msg);
    }

    #[test]
    fn server_relays_round_trip(
        from in any::<u64>(),
        sdp in text(),
        auth in prop::option::of(text()),
        peer in any::<u64>(),
    ) {
        for msg in [
            ServerMessage::Offer { from: PeerId(from), sdp: sdp.clone(), auth: auth.clone() },
            ServerMessage::Answer { from: PeerId(from), sdp: sdp.clone(), auth: auth.clone() },
            ServerMessage::PeerJoined { peer: PeerId(peer), number: from },
            ServerMessage::HostChanged { host: PeerId(peer) },
        ] {
            let back: ServerMessage = serde_json::from_str(&msg.to_json()).unwrap();
            prop_assert_eq!(back, msg);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_client(&bytes);
    }

    #[test]
    fn mutated_valid_frames_never_panic(
        msg in client_message(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut json = serde_json::to_vec(&msg).unwrap();
        for (i, b) in flips {
            let i = i.index(json.len());
            json[i] = b;
        }
        let _ = decode_client(&json);
    }
}
