//! Everything `bassline-trust` reads from the signaling path or a link: a link fragment, an
//! attestation (as bytes and as text) verified against an SDP, and PAKE messages at each step of
//! both sides. Nothing may panic, and nothing forged may verify.
#![no_main]

use bassline_trust::{
    Attestation, Binding, GuestPake, HostPake, Kind, PakeContext, ReplayGuard, RoomKey,
    fingerprints, pake_message_from_text,
};
use libfuzzer_sys::fuzz_target;

const CTX: PakeContext<'static> = PakeContext {
    room_code: "A3B7K9",
    guest: 2,
    host: 1,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = RoomKey::from_fragment(&text);
    let _ = fingerprints(&text);
    let _ = pake_message_from_text(&text);

    // Split the input: an attestation, then an SDP.
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (att_bytes, sdp) = data.split_at(cut);
    let sdp = String::from_utf8_lossy(sdp);
    let key = RoomKey::from_bytes([7; 32]).signal_key();
    let offer = Binding {
        room_code: "A3B7K9",
        from: 2,
        to: 1,
        kind: Kind::Offer,
    };
    for att in [
        Attestation::from_bytes(att_bytes),
        Attestation::decode(&String::from_utf8_lossy(att_bytes)),
    ]
    .into_iter()
    .flatten()
    {
        assert_eq!(Attestation::from_bytes(&att.to_bytes()), Ok(att.clone()));
        assert!(
            key.verify(&offer, &sdp, &att, &mut ReplayGuard::default())
                .is_err(),
            "a forged attestation verified"
        );
    }

    let room_key = RoomKey::from_bytes([5; 32]);
    let _ = HostPake::handle_hello(&CTX, "pw", &room_key, data, [2; 32]);
    let (guest, hello) = GuestPake::start(&CTX, "pw", [1; 32]);
    assert!(guest.handle_reply(data).is_err(), "a forged reply was accepted");
    let (host, _) = HostPake::handle_hello(&CTX, "pw", &room_key, &hello, [2; 32])
        .expect("an honest hello");
    assert!(host.handle_confirm(data).is_err(), "a forged confirmation was accepted");
});
