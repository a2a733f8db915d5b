//! A host and a guest that meet through a signaling relay, end to end at the crypto level: the
//! guest joins by code + password (SPAKE2 over the relay), then both exchange a signed offer and
//! answer. The relay is honest, or it tampers the way a hostile signaling server would. A peer
//! hands an SDP to its (here: recorded) peer connection only after `verify` passed, so "nothing
//! applied" is checked by looking at what each peer connection received.
//!
//! The real-WebRTC version of the tampering test belongs to the transports (see docs/SECURITY.md).

use bassline_trust::{
    Attestation, Binding, Error, GuessLimiter, GuestPake, HostPake, Kind, PakeContext, ReplayGuard,
    RoomKey, abort_message,
};

const CODE: &str = "A3B7K9";
const HOST: u64 = 0x1f2e_3d4c_5b6a_7980;
const GUEST: u64 = 0x0011_2233_4455_6677;
const PASSWORD: &str = "plinth cobalt mirror lantern";

const FP_HOST: &str = "sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08";
const FP_GUEST: &str = "sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00";
const FP_PROXY: &str = "sha-256 DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF";

fn sdp(fp: &str, setup: &str) -> String {
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
         m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
         a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijklmn\r\n\
         a=fingerprint:{fp}\r\na=setup:{setup}\r\na=mid:0\r\na=sctp-port:5000\r\n"
    )
}

/// What travels through the signaling server for an offer or answer: the server's envelope
/// (`from`) plus the fields the client sent (`sdp`, and `auth` in trusted rooms).
#[derive(Clone, Debug)]
struct SignalMsg {
    from: u64,
    kind: Kind,
    sdp: String,
    auth: Option<String>,
}

/// A peer: its room key (if any), its replay guard, and what its peer connection was given.
struct Peer {
    id: u64,
    key: Option<RoomKey>,
    guard: ReplayGuard,
    own_fp: &'static str,
    remote_sdps: Vec<String>,
    refusals: Vec<Error>,
}

impl Peer {
    fn new(id: u64, key: Option<RoomKey>, own_fp: &'static str) -> Self {
        Self {
            id,
            key,
            guard: ReplayGuard::default(),
            own_fp,
            remote_sdps: Vec::new(),
            refusals: Vec::new(),
        }
    }

    fn send(&self, to: u64, kind: Kind, nonce: u8) -> SignalMsg {
        let sdp = sdp(
            self.own_fp,
            if kind == Kind::Offer {
                "actpass"
            } else {
                "active"
            },
        );
        let auth = self.key.as_ref().map(|k| {
            let b = Binding {
                room_code: CODE,
                from: self.id,
                to,
                kind,
            };
            k.signal_key()
                .attest(&b, &sdp, [nonce; 16])
                .expect("our own SDP has a fingerprint")
                .encode()
        });
        SignalMsg {
            from: self.id,
            kind,
            sdp,
            auth,
        }
    }

    /// A trusted room refuses any offer/answer that does not verify; a legacy room (no key)
    /// takes the SDP as it comes, trusting the server.
    fn receive(&mut self, msg: &SignalMsg) {
        if let Some(key) = &self.key {
            let b = Binding {
                room_code: CODE,
                from: msg.from,
                to: self.id,
                kind: msg.kind,
            };
            let checked = msg
                .auth
                .as_deref()
                .ok_or(Error::BadMac)
                .and_then(Attestation::decode)
                .and_then(|att| key.signal_key().verify(&b, &msg.sdp, &att, &mut self.guard));
            if let Err(e) = checked {
                self.refusals.push(e);
                return;
            }
        }
        self.remote_sdps.push(msg.sdp.clone());
    }
}

/// The signaling relay between the two peers.
enum Relay {
    Honest,
    /// Rewrites every SDP's fingerprint to its own, to terminate DTLS on both sides.
    SwapsFingerprints,
}

impl Relay {
    fn relay(&self, msg: &SignalMsg) -> SignalMsg {
        let mut out = msg.clone();
        if let Relay::SwapsFingerprints = self {
            out.sdp = out
                .sdp
                .replace(FP_HOST, FP_PROXY)
                .replace(FP_GUEST, FP_PROXY);
        }
        out
    }
}

/// The guest joins by code + password through an honest relay; returns the room key it got.
fn join_by_password(host_key: &RoomKey, typed: &str) -> Result<RoomKey, (Error, Error)> {
    let ctx = PakeContext {
        room_code: CODE,
        guest: GUEST,
        host: HOST,
    };
    let (guest, hello) = GuestPake::start(&ctx, typed, [0x61; 32]);
    let (host, reply) =
        HostPake::handle_hello(&ctx, PASSWORD, host_key, &hello, [0x62; 32]).expect("a hello");
    match guest.handle_reply(&reply) {
        Ok(joined) => {
            host.handle_confirm(&joined.confirm).expect("confirmed");
            Ok(joined.room_key)
        }
        Err(guest_err) => {
            let host_err = host.handle_confirm(&abort_message()).unwrap_err();
            Err((guest_err, host_err))
        }
    }
}

fn exchange(relay: &Relay, host: &mut Peer, guest: &mut Peer) {
    let offer = guest.send(host.id, Kind::Offer, 1);
    host.receive(&relay.relay(&offer));
    let answer = host.send(guest.id, Kind::Answer, 2);
    guest.receive(&relay.relay(&answer));
}

#[test]
fn an_honest_relay_connects_a_guest_who_joined_by_password() {
    let room_key = RoomKey::from_bytes([0x33; 32]);
    let guest_key = join_by_password(&room_key, PASSWORD).expect("the right password");
    let mut host = Peer::new(HOST, Some(room_key), FP_HOST);
    let mut guest = Peer::new(GUEST, Some(guest_key), FP_GUEST);
    exchange(&Relay::Honest, &mut host, &mut guest);
    assert_eq!(host.refusals, vec![]);
    assert_eq!(guest.refusals, vec![]);
    assert_eq!(host.remote_sdps, vec![sdp(FP_GUEST, "actpass")]);
    assert_eq!(guest.remote_sdps, vec![sdp(FP_HOST, "active")]);
}

#[test]
fn a_fingerprint_swapping_relay_is_refused_on_both_sides_and_nothing_is_applied() {
    let room_key = RoomKey::from_bytes([0x33; 32]);
    let link = format!(
        "https://bassline.example/join/{CODE}{}",
        room_key.to_fragment()
    );
    let guest_key = RoomKey::from_fragment(&link).expect("the link carries the key");
    let mut host = Peer::new(HOST, Some(room_key), FP_HOST);
    let mut guest = Peer::new(GUEST, Some(guest_key), FP_GUEST);
    exchange(&Relay::SwapsFingerprints, &mut host, &mut guest);
    assert_eq!(host.refusals, vec![Error::FingerprintMismatch]);
    assert_eq!(guest.refusals, vec![Error::FingerprintMismatch]);
    assert!(host.remote_sdps.is_empty() && guest.remote_sdps.is_empty());
    assert!(
        host.refusals[0]
            .to_string()
            .contains("the signaling path was tampered with")
    );
}

#[test]
fn without_a_room_key_the_relay_is_trusted_and_the_swap_goes_through() {
    // The legacy mode docs/SECURITY.md describes: nothing can tell the proxy's certificate from
    // the peer's, so DTLS would complete with the proxy on both sides.
    let mut host = Peer::new(HOST, None, FP_HOST);
    let mut guest = Peer::new(GUEST, None, FP_GUEST);
    exchange(&Relay::SwapsFingerprints, &mut host, &mut guest);
    assert_eq!(host.remote_sdps, vec![sdp(FP_PROXY, "actpass")]);
    assert_eq!(guest.remote_sdps, vec![sdp(FP_PROXY, "active")]);
}

#[test]
fn a_replayed_offer_and_a_wrong_key_are_refused_and_nothing_is_applied() {
    let room_key = RoomKey::from_bytes([0x33; 32]);
    let mut host = Peer::new(HOST, Some(room_key.clone()), FP_HOST);
    let guest = Peer::new(GUEST, Some(room_key), FP_GUEST);
    let offer = guest.send(HOST, Kind::Offer, 1);
    host.receive(&offer);
    host.receive(&offer);
    let stranger = Peer::new(GUEST, Some(RoomKey::from_bytes([0x44; 32])), FP_GUEST);
    host.receive(&stranger.send(HOST, Kind::Offer, 9));
    let unsigned = SignalMsg {
        auth: None,
        ..guest.send(HOST, Kind::Offer, 3)
    };
    host.receive(&unsigned);
    assert_eq!(
        host.remote_sdps.len(),
        1,
        "only the first offer reached the peer connection"
    );
    assert_eq!(
        host.refusals,
        vec![Error::Replayed, Error::BadMac, Error::BadMac]
    );
}

#[test]
fn a_signaling_server_in_the_middle_of_the_pake_gets_one_guess_per_run_and_no_key() {
    let room_key = RoomKey::from_bytes([0x33; 32]);
    let ctx = PakeContext {
        room_code: CODE,
        guest: GUEST,
        host: HOST,
    };
    let mut limiter = GuessLimiter::default();
    let mut now_ms = 0;
    // The server answers the real guest itself, posing as the host with a guessed password...
    let (guest, hello) = GuestPake::start(&ctx, PASSWORD, [1; 32]);
    let (_, fake_reply) = HostPake::handle_hello(
        &ctx,
        "guess-1",
        &RoomKey::from_bytes([0; 32]),
        &hello,
        [2; 32],
    )
    .expect("a hello");
    assert_eq!(
        guest.handle_reply(&fake_reply).unwrap_err(),
        Error::WrongPassword
    );
    // ...and runs guest after guest against the real host. Each run tests one guess; the host
    // refuses runs once its window is full.
    let mut runs = 0;
    while limiter.check(now_ms).is_ok() {
        let guess = format!("guess-{runs}");
        let (attacker, hello) = GuestPake::start(&ctx, &guess, [3; 32]);
        let (host, reply) =
            HostPake::handle_hello(&ctx, PASSWORD, &room_key, &hello, [4; 32]).expect("a hello");
        assert_eq!(
            attacker.handle_reply(&reply).unwrap_err(),
            Error::WrongPassword
        );
        assert_eq!(
            host.handle_confirm(&abort_message()),
            Err(Error::WrongPassword)
        );
        limiter.record_failure(now_ms);
        runs += 1;
        now_ms += 100;
    }
    assert_eq!(runs, 10);
    assert!(matches!(
        limiter.check(now_ms),
        Err(Error::TooManyGuesses { .. })
    ));
}

#[test]
fn a_wrong_password_gets_no_key_and_both_sides_say_so() {
    let room_key = RoomKey::from_bytes([0x33; 32]);
    assert_eq!(
        join_by_password(&room_key, "plinth cobalt mirror lanterns").unwrap_err(),
        (Error::WrongPassword, Error::WrongPassword)
    );
}
