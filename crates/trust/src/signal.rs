//! Offers and answers signed under the room key, so the signaling path cannot swap the DTLS
//! certificate that WebRTC will trust.
//!
//! The sender reads the fingerprints out of its own SDP and signs them together with the room
//! code, both peer ids, the message kind and a fresh nonce; the result, an [`Attestation`],
//! travels next to the SDP as one base64url string. The receiver checks the MAC, then that the
//! SDP it received carries exactly the fingerprints that were signed, then that the nonce is new.
//!
//! ```
//! use bassline_trust::{Binding, Kind, ReplayGuard, RoomKey, Attestation};
//! let key = RoomKey::from_bytes([42; 32]).signal_key();
//! let sdp = "v=0\r\na=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n";
//! let offer = Binding { room_code: "A3B7K9", from: 1, to: 2, kind: Kind::Offer };
//!
//! // Sender: sign and put `auth` next to the SDP in the signaling message.
//! let auth = key.attest(&offer, sdp, [7; 16]).unwrap().encode();
//!
//! // Receiver: decode, verify, and only then hand the SDP to the peer connection.
//! let mut seen = ReplayGuard::default();
//! let att = Attestation::decode(&auth).unwrap();
//! key.verify(&offer, sdp, &att, &mut seen).unwrap();
//! assert!(key.verify(&offer, sdp, &att, &mut seen).is_err()); // the same offer again: replayed
//! ```

use std::collections::{HashSet, VecDeque};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

use crate::{Error, Fingerprint, RoomKey, fingerprints, sdp::MAX_FINGERPRINTS};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of a nonce: random, so two honest messages never share one.
pub const NONCE_LEN: usize = 16;

/// Bytes of the MAC (HMAC-SHA256, untruncated).
pub const TAG_LEN: usize = 32;

/// First byte of an encoded attestation (STYLE §5: every binary frame starts with its version).
const VERSION: u8 = 1;

/// The HKDF salt for every key derived from the room key; the `info` strings separate uses.
pub(crate) const HKDF_SALT: &[u8] = b"bassline-trust v1";

/// What the MAC's input starts with, so no other MAC under the same key can be confused with it.
const MAC_LABEL: &[u8] = b"bassline-trust v1 signal offer/answer";

/// The largest encoded attestation read, in characters.
const MAX_ENCODED_LEN: usize = 2048;

const WHAT: &str = "offer/answer signature";

/// Which half of the SDP exchange a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An SDP offer.
    Offer,
    /// An SDP answer.
    Answer,
}

impl Kind {
    fn tag(self) -> u8 {
        match self {
            Kind::Offer => 1,
            Kind::Answer => 2,
        }
    }
}

/// Who sends what to whom in which room: everything the MAC binds besides the fingerprints and
/// the nonce. Sender and receiver build it from what they know (the receiver takes `from` from
/// the signaling server's envelope and `to` from its own welcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    /// The room's code (compared without surrounding spaces, case-insensitively).
    pub room_code: &'a str,
    /// The sender's peer id.
    pub from: u64,
    /// The receiver's peer id.
    pub to: u64,
    /// Offer or answer.
    pub kind: Kind,
}

/// The MAC key for offers and answers, derived from the room key with HKDF-SHA256.
#[derive(Clone)]
pub struct SignalKey([u8; 32]);

impl core::fmt::Debug for SignalKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SignalKey(<redacted>)")
    }
}

impl Drop for SignalKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl RoomKey {
    /// The key that signs this room's offers and answers.
    pub fn signal_key(&self) -> SignalKey {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(HKDF_SALT), self.as_bytes());
        let mut out = [0u8; 32];
        hk.expand(b"signal mac key", &mut out)
            .expect("32 bytes is far below HKDF-SHA256's 8160-byte limit");
        SignalKey(out)
    }
}

/// The signature that travels with an offer or answer: the sender's fingerprints, a nonce and
/// the MAC over them and the [`Binding`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    nonce: [u8; NONCE_LEN],
    fingerprints: Vec<Fingerprint>,
    tag: [u8; TAG_LEN],
}

impl SignalKey {
    /// Signs the fingerprints of `sdp` (the sender's own offer or answer) for `binding`.
    /// `nonce` must be fresh random bytes (see [`crate::os::random`]).
    pub fn attest(
        &self,
        binding: &Binding<'_>,
        sdp: &str,
        nonce: [u8; NONCE_LEN],
    ) -> Result<Attestation, Error> {
        let fingerprints = fingerprints(sdp)?;
        let tag = self
            .mac(binding, &nonce, &fingerprints)
            .finalize()
            .into_bytes()
            .into();
        Ok(Attestation {
            nonce,
            fingerprints,
            tag,
        })
    }

    /// Checks a received offer or answer before it reaches the peer connection: the MAC
    /// ([`Error::BadMac`]), then that `sdp` carries exactly the signed fingerprints
    /// ([`Error::FingerprintMismatch`]), then that the nonce is new ([`Error::Replayed`]). Only a
    /// message that passes all three is remembered by `guard`.
    pub fn verify(
        &self,
        binding: &Binding<'_>,
        sdp: &str,
        attestation: &Attestation,
        guard: &mut ReplayGuard,
    ) -> Result<(), Error> {
        self.mac(binding, &attestation.nonce, &attestation.fingerprints)
            .verify_slice(&attestation.tag)
            .map_err(|_| Error::BadMac)?;
        // A proxy that rewrites the SDP may also leave it unreadable: that is tampering too.
        let in_sdp = fingerprints(sdp).map_err(|_| Error::FingerprintMismatch)?;
        if in_sdp != attestation.fingerprints {
            return Err(Error::FingerprintMismatch);
        }
        guard.check_and_insert(&attestation.nonce)
    }

    fn mac(
        &self,
        binding: &Binding<'_>,
        nonce: &[u8; NONCE_LEN],
        fingerprints: &[Fingerprint],
    ) -> HmacSha256 {
        let mut m =
            <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        // Every variable-length field is length-prefixed, so no two different inputs share an
        // encoding. Lengths are bounded by the parsers (code: trimmed, fingerprints: <= 16 + 64
        // bytes each, at most 8), but are written as u32 so no bound is assumed here.
        m.update(MAC_LABEL);
        m.update(&[binding.kind.tag()]);
        let code = binding.room_code.trim().to_ascii_uppercase();
        put(&mut m, code.as_bytes());
        m.update(&binding.from.to_be_bytes());
        m.update(&binding.to.to_be_bytes());
        m.update(nonce);
        m.update(&(fingerprints.len() as u32).to_be_bytes());
        for fp in fingerprints {
            put(&mut m, fp.algorithm().as_bytes());
            put(&mut m, fp.digest());
        }
        m
    }
}

fn put(m: &mut HmacSha256, bytes: &[u8]) {
    m.update(&(bytes.len() as u32).to_be_bytes());
    m.update(bytes);
}

impl Attestation {
    /// The nonce.
    pub fn nonce(&self) -> &[u8; NONCE_LEN] {
        &self.nonce
    }

    /// The fingerprints the sender signed (sorted, distinct).
    pub fn fingerprints(&self) -> &[Fingerprint] {
        &self.fingerprints
    }

    /// The bytes: version, nonce, fingerprint count, each fingerprint as (name length, name,
    /// digest length, digest), then the MAC.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + NONCE_LEN + 1 + 40 * self.fingerprints.len() + 32);
        out.push(VERSION);
        out.extend_from_slice(&self.nonce);
        out.push(self.fingerprints.len() as u8);
        for fp in &self.fingerprints {
            out.push(fp.algorithm().len() as u8);
            out.extend_from_slice(fp.algorithm().as_bytes());
            out.push(fp.digest().len() as u8);
            out.extend_from_slice(fp.digest());
        }
        out.extend_from_slice(&self.tag);
        out
    }

    /// The text for a JSON signaling message: base64url of [`Attestation::to_bytes`].
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.to_bytes())
    }

    /// Reads [`Attestation::encode`]'s text; never panics.
    pub fn decode(text: &str) -> Result<Self, Error> {
        if text.len() > MAX_ENCODED_LEN {
            return Err(Error::Malformed {
                what: WHAT,
                detail: "longer than 2048 characters",
            });
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| Error::Malformed {
                what: WHAT,
                detail: "not base64url",
            })?;
        Self::from_bytes(&bytes)
    }

    /// Reads [`Attestation::to_bytes`]'s bytes; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(1)? != [VERSION] {
            return Err(Error::Malformed {
                what: WHAT,
                detail: "unknown version (update Bassline)",
            });
        }
        let nonce = r.array::<NONCE_LEN>()?;
        let count = usize::from(r.take(1)?[0]);
        if count == 0 || count > MAX_FINGERPRINTS {
            return Err(Error::Malformed {
                what: WHAT,
                detail: "it must carry 1 to 8 fingerprints",
            });
        }
        let mut fingerprints: Vec<Fingerprint> = Vec::with_capacity(count);
        for _ in 0..count {
            let n = usize::from(r.take(1)?[0]);
            let algorithm = core::str::from_utf8(r.take(n)?).map_err(|_| Error::Malformed {
                what: WHAT,
                detail: "a hash function name is not text",
            })?;
            // Names are written lower-case: one encoding per attestation, no malleable bits.
            if algorithm.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(Error::Malformed {
                    what: WHAT,
                    detail: "a hash function name is not lower-case",
                });
            }
            let n = usize::from(r.take(1)?[0]);
            let fp = Fingerprint::new(algorithm, r.take(n)?)?;
            // The sender writes them sorted and distinct; any other order is not canonical.
            if fingerprints.last().is_some_and(|last| *last >= fp) {
                return Err(Error::Malformed {
                    what: WHAT,
                    detail: "fingerprints not sorted and distinct",
                });
            }
            fingerprints.push(fp);
        }
        let tag = r.array::<TAG_LEN>()?;
        if r.pos != bytes.len() {
            return Err(Error::Malformed {
                what: WHAT,
                detail: "bytes after the MAC",
            });
        }
        Ok(Self {
            nonce,
            fingerprints,
            tag,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.saturating_add(n);
        let got = self.bytes.get(self.pos..end).ok_or(Error::Truncated {
            what: WHAT,
            need: end,
            got: self.bytes.len(),
        })?;
        self.pos = end;
        Ok(got)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

/// Remembers the nonces of the offers and answers this peer accepted, so a recorded one cannot
/// be played back to restart a connection.
///
/// Memory is bounded: it keeps the last `capacity` nonces (16 bytes each) and forgets the oldest
/// first. Only messages whose MAC verified are remembered, so a forger cannot flush it; a replay
/// older than `capacity` accepted messages would pass, which a room of a few peers exchanging a
/// handful of offers each never reaches with the default 4096. A peer that restarts gets a new
/// peer id from the signaling server, so old messages no longer match its [`Binding`].
#[derive(Debug, Clone)]
pub struct ReplayGuard {
    seen: HashSet<[u8; NONCE_LEN]>,
    order: VecDeque<[u8; NONCE_LEN]>,
    capacity: usize,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl ReplayGuard {
    /// A guard that remembers up to `capacity` nonces (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// How many nonces it remembers now.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether it remembers none.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn check_and_insert(&mut self, nonce: &[u8; NONCE_LEN]) -> Result<(), Error> {
        if self.seen.contains(nonce) {
            return Err(Error::Replayed);
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(*nonce);
        self.order.push_back(*nonce);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::tests::{FP_A, FP_B, browser_sdp};
    use proptest::prelude::*;

    const CODE: &str = "A3B7K9";
    const ALICE: u64 = 0x1111;
    const BOB: u64 = 0x2222;

    fn key(b: u8) -> SignalKey {
        RoomKey::from_bytes([b; 32]).signal_key()
    }

    fn offer() -> Binding<'static> {
        Binding {
            room_code: CODE,
            from: ALICE,
            to: BOB,
            kind: Kind::Offer,
        }
    }

    /// What Alice sends: her SDP and the encoded attestation.
    fn alice_sends(nonce: u8) -> (String, String) {
        let sdp = browser_sdp(FP_A);
        let auth = key(1).attest(&offer(), &sdp, [nonce; 16]).unwrap().encode();
        (sdp, auth)
    }

    fn bob_checks(sdp: &str, auth: &str, guard: &mut ReplayGuard) -> Result<(), Error> {
        key(1).verify(&offer(), sdp, &Attestation::decode(auth)?, guard)
    }

    #[test]
    fn an_honest_offer_and_answer_pass() {
        let mut guard = ReplayGuard::default();
        let (sdp, auth) = alice_sends(1);
        // docs/SECURITY.md quotes this size.
        assert_eq!(auth.len(), 122);
        assert_eq!(bob_checks(&sdp, &auth, &mut guard), Ok(()));
        let answer = Binding {
            room_code: CODE,
            from: BOB,
            to: ALICE,
            kind: Kind::Answer,
        };
        let sdp_b = browser_sdp(FP_B);
        let att = key(1).attest(&answer, &sdp_b, [2; 16]).unwrap();
        assert_eq!(
            key(1).verify(&answer, &sdp_b, &att, &mut ReplayGuard::default()),
            Ok(())
        );
        assert_eq!(guard.len(), 1);
    }

    #[test]
    fn the_room_code_is_read_as_people_type_it() {
        let (sdp, auth) = alice_sends(1);
        let typed = Binding {
            room_code: " a3b7k9 ",
            ..offer()
        };
        let att = Attestation::decode(&auth).unwrap();
        assert_eq!(
            key(1).verify(&typed, &sdp, &att, &mut ReplayGuard::default()),
            Ok(())
        );
    }

    #[test]
    fn another_room_key_is_refused() {
        let (sdp, auth) = alice_sends(1);
        let att = Attestation::decode(&auth).unwrap();
        let mut guard = ReplayGuard::default();
        assert_eq!(
            key(2).verify(&offer(), &sdp, &att, &mut guard),
            Err(Error::BadMac)
        );
        assert!(guard.is_empty(), "a refused message is not remembered");
    }

    #[test]
    fn every_bound_field_is_bound() {
        let (sdp, auth) = alice_sends(1);
        let att = Attestation::decode(&auth).unwrap();
        let others = [
            Binding {
                room_code: "A3B7K8",
                ..offer()
            },
            Binding {
                from: BOB,
                to: ALICE,
                ..offer()
            },
            Binding {
                from: 0x3333,
                ..offer()
            },
            Binding {
                to: 0x3333,
                ..offer()
            },
            Binding {
                kind: Kind::Answer,
                ..offer()
            },
        ];
        for b in others {
            assert_eq!(
                key(1).verify(&b, &sdp, &att, &mut ReplayGuard::default()),
                Err(Error::BadMac),
                "{b:?}"
            );
        }
    }

    #[test]
    fn a_replayed_offer_is_refused_and_a_fresh_one_passes() {
        let mut guard = ReplayGuard::default();
        let (sdp, auth) = alice_sends(1);
        assert_eq!(bob_checks(&sdp, &auth, &mut guard), Ok(()));
        assert_eq!(bob_checks(&sdp, &auth, &mut guard), Err(Error::Replayed));
        let (sdp2, auth2) = alice_sends(2);
        assert_eq!(bob_checks(&sdp2, &auth2, &mut guard), Ok(()));
        assert_eq!(bob_checks(&sdp, &auth, &mut guard), Err(Error::Replayed));
    }

    #[test]
    fn the_replay_guard_is_bounded() {
        let mut guard = ReplayGuard::new(3);
        for n in 0..10u8 {
            let (sdp, auth) = alice_sends(n);
            assert_eq!(bob_checks(&sdp, &auth, &mut guard), Ok(()));
            assert!(guard.len() <= 3);
        }
        // The last three are still refused; the oldest were forgotten (the documented bound).
        for n in 7..10u8 {
            let (sdp, auth) = alice_sends(n);
            assert_eq!(bob_checks(&sdp, &auth, &mut guard), Err(Error::Replayed));
        }
        let (sdp, auth) = alice_sends(0);
        assert_eq!(bob_checks(&sdp, &auth, &mut guard), Ok(()));
    }

    #[test]
    fn every_truncation_is_refused_as_truncated() {
        let (sdp, auth) = alice_sends(1);
        let bytes = Attestation::decode(&auth).unwrap().to_bytes();
        for cut in 0..bytes.len() {
            let short = URL_SAFE_NO_PAD.encode(&bytes[..cut]);
            let got = bob_checks(&sdp, &short, &mut ReplayGuard::default());
            assert!(
                matches!(got, Err(Error::Truncated { .. })),
                "cut {cut}: {got:?}"
            );
        }
    }

    #[test]
    fn every_bit_flip_is_refused() {
        let (sdp, auth) = alice_sends(1);
        let bytes = Attestation::decode(&auth).unwrap().to_bytes();
        let tag_at = bytes.len() - TAG_LEN;
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            let got = bob_checks(
                &sdp,
                &URL_SAFE_NO_PAD.encode(&b),
                &mut ReplayGuard::default(),
            );
            assert!(got.is_err(), "bit {i} flipped and still accepted");
            if i / 8 >= tag_at || (1..1 + NONCE_LEN).contains(&(i / 8)) {
                assert_eq!(got, Err(Error::BadMac), "bit {i}");
            }
        }
    }

    /// A signaling proxy that replaces the sender's DTLS fingerprint with its own, to terminate
    /// DTLS on both sides and read everything.
    struct TamperingProxy {
        own: &'static str,
    }

    impl TamperingProxy {
        fn rewrite_sdp(&self, sdp: &str) -> String {
            sdp.replace(FP_A, self.own)
        }

        /// The proxy also rewrites the signed fingerprint list (it cannot redo the MAC).
        fn rewrite_attestation(&self, auth: &str) -> String {
            let mut att = Attestation::decode(auth).unwrap();
            att.fingerprints = fingerprints(&browser_sdp(self.own)).unwrap();
            att.encode()
        }
    }

    #[test]
    fn a_proxy_that_swaps_the_fingerprint_is_caught() {
        let proxy = TamperingProxy { own: FP_B };
        let (sdp, auth) = alice_sends(1);
        let forged_sdp = proxy.rewrite_sdp(&sdp);
        assert_ne!(forged_sdp, sdp);
        let mut guard = ReplayGuard::default();
        assert_eq!(
            bob_checks(&forged_sdp, &auth, &mut guard),
            Err(Error::FingerprintMismatch)
        );
        assert!(
            Error::FingerprintMismatch
                .to_string()
                .contains("the signaling path was tampered with")
        );
        assert_eq!(
            bob_checks(&forged_sdp, &proxy.rewrite_attestation(&auth), &mut guard),
            Err(Error::BadMac)
        );
        // Nothing the proxy sent was remembered: the genuine offer still passes afterwards.
        assert_eq!(bob_checks(&sdp, &auth, &mut guard), Ok(()));
    }

    #[test]
    fn a_proxy_that_adds_or_strips_fingerprints_is_caught() {
        let (sdp, auth) = alice_sends(1);
        let added = sdp.replace(
            "a=setup:actpass",
            &format!("a=fingerprint:{FP_B}\r\na=setup:actpass"),
        );
        let stripped = sdp.replace(&format!("a=fingerprint:{FP_A}\r\n"), "");
        let smuggled = sdp.replace("a=setup:actpass", "a=setup:actpass\ra=fingerprint;x");
        for forged in [added, stripped, smuggled] {
            assert_eq!(
                bob_checks(&forged, &auth, &mut ReplayGuard::default()),
                Err(Error::FingerprintMismatch)
            );
        }
    }

    #[test]
    fn signing_an_sdp_without_a_fingerprint_fails() {
        assert!(matches!(
            key(1).attest(&offer(), "v=0\r\n", [0; 16]),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn decoding_refuses_non_canonical_and_oversized_input() {
        let (_, auth) = alice_sends(1);
        let mut b = Attestation::decode(&auth).unwrap().to_bytes();
        b.push(0);
        assert!(matches!(
            Attestation::from_bytes(&b),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(
            Attestation::decode(&"A".repeat(3000)),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(
            Attestation::decode("not base64!"),
            Err(Error::Malformed { .. })
        ));
        // Two fingerprints in the wrong order.
        let att = Attestation {
            nonce: [0; 16],
            fingerprints: vec![
                Fingerprint::parse(FP_A).unwrap(),
                Fingerprint::parse(FP_B).unwrap(),
            ],
            tag: [0; 32],
        };
        assert!(matches!(
            Attestation::from_bytes(&att.to_bytes()),
            Err(Error::Malformed { .. })
        ));
    }

    fn arb_fingerprints() -> impl Strategy<Value = Vec<Fingerprint>> {
        proptest::collection::btree_set(
            (
                "[a-z0-9-]{1,16}",
                proptest::collection::vec(any::<u8>(), 1..=64),
            )
                .prop_filter_map("valid", |(a, d)| Fingerprint::new(&a, &d).ok()),
            1..=MAX_FINGERPRINTS,
        )
        .prop_map(|s| s.into_iter().collect())
    }

    proptest! {
        #[test]
        fn encoding_round_trips(
            nonce in any::<[u8; 16]>(),
            tag in any::<[u8; 32]>(),
            fingerprints in arb_fingerprints(),
        ) {
            let att = Attestation { nonce, fingerprints, tag };
            prop_assert_eq!(Attestation::decode(&att.encode()), Ok(att));
        }

        #[test]
        fn arbitrary_bytes_and_text_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            text in ".{0,300}",
            sdp in ".{0,300}",
        ) {
            let _ = Attestation::from_bytes(&bytes);
            let _ = Attestation::decode(&text);
            let _ = Attestation::decode(&URL_SAFE_NO_PAD.encode(&bytes));
            let (_, auth) = alice_sends(1);
            let att = Attestation::decode(&auth).unwrap();
            let got = key(1).verify(&offer(), &sdp, &att, &mut ReplayGuard::default());
            prop_assert_eq!(got, Err(Error::FingerprintMismatch));
        }

        #[test]
        fn a_random_tag_is_refused(tag in any::<[u8; 32]>()) {
            let (sdp, auth) = alice_sends(1);
            let mut att = Attestation::decode(&auth).unwrap();
            prop_assume!(att.tag != tag);
            att.tag = tag;
            prop_assert_eq!(
                key(1).verify(&offer(), &sdp, &att, &mut ReplayGuard::default()),
                Err(Error::BadMac)
            );
        }
    }
}
