//! What the room cryptography costs: a whole SPAKE2 join (both sides, three messages, the room
//! key sealed and opened), and signing + verifying one offer (fingerprint parsing, HMAC, replay
//! check), which every WebRTC connection pays twice (offer and answer). And what signed
//! operations cost per edit: the origin signs once (Ed25519 over the canonical bytes of one
//! content update), the host verifies once.
//!
//! Run: `cargo bench -p bassline-trust` (or `cargo xtask bench trust`).

use std::hint::black_box;

use bassline_trust::{
    Attestation, Binding, GuestPake, HostPake, Kind, PakeContext, ReplayGuard, RoomKey,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A data-channel offer the way Chromium writes it.
const SDP: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:Xq4f\r\na=ice-pwd:Qm0VZc2u2+Wm1bZJtq6n0ZgU\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n\
a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n";

fn pake(c: &mut Criterion) {
    let ctx = PakeContext {
        room_code: "A3B7K9",
        guest: 0x2a,
        host: 0x07,
    };
    let room_key = RoomKey::from_bytes([5; 32]);
    let mut g = c.benchmark_group("trust");
    g.throughput(Throughput::Elements(1));
    let mut n = 0u8;
    g.bench_function("pake full exchange (guest + host)", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let (guest, hello) = GuestPake::start(&ctx, "correct horse", [n; 32]);
            let (host, reply) =
                HostPake::handle_hello(&ctx, "correct horse", &room_key, &hello, [!n; 32])
                    .expect("the same password on both sides");
            let joined = guest.handle_reply(&reply).expect("the host confirms");
            host.handle_confirm(&joined.confirm)
                .expect("the guest confirms");
            black_box(joined.room_key)
        })
    });

    let key = room_key.signal_key();
    let offer = Binding {
        room_code: "A3B7K9",
        from: 1,
        to: 2,
        kind: Kind::Offer,
    };
    let mut guard = ReplayGuard::default();
    let mut counter = 0u128;
    g.bench_function("offer sign + verify (encode, decode, replay check)", |b| {
        b.iter(|| {
            counter += 1;
            let auth = key
                .attest(&offer, black_box(SDP), counter.to_be_bytes())
                .expect("the SDP has a fingerprint")
                .encode();
            let att = Attestation::decode(black_box(&auth)).expect("our own encoding");
            key.verify(&offer, black_box(SDP), &att, &mut guard)
                .expect("an honest offer")
        })
    });
    g.finish();
}

/// One content update, signed by its origin and verified by the host, as the sync engine does
/// (the canonical encoding is part of each side's cost).
fn signed_operations(c: &mut Criterion) {
    use bassline_core::{Request, Value, id};
    use bassline_protocol::{Command, OpId, signed_bytes};
    use bassline_sync::{Ed25519Identity, Identity};
    let origin = Ed25519Identity::from_secret([3; 32]);
    let host = Ed25519Identity::from_secret([1; 32]);
    let key = origin.public_key();
    let command = Command::Request(Request::UpdateContent {
        contact: id!("c12"),
        value: Value::Number(42.0),
    });
    let op = OpId {
        peer: 3,
        counter: 405,
    };
    let mut g = c.benchmark_group("trust");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign one operation (origin)", |b| {
        b.iter(|| origin.sign(&signed_bytes(black_box(op), 977, &command).expect("encodes")))
    });
    let sig = origin.sign(&signed_bytes(op, 977, &command).expect("encodes"));
    g.bench_function("verify one operation (host)", |b| {
        b.iter(|| {
            let bytes = signed_bytes(black_box(op), 977, &command).expect("encodes");
            assert!(host.verify(&key, &bytes, black_box(&sig)));
        })
    });
    g.finish();
}

criterion_group!(benches, pake, signed_operations);
criterion_main!(benches);
