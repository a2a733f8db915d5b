//! Joining by room code + password: a SPAKE2 exchange between guest and host over the signaling
//! channel that ends with the guest holding the room key.
//!
//! Three messages, each a byte string whose first byte names it:
//!
//! ```text
//! guest -> host   hello    0x11 | SPAKE2 element X (33 bytes: side 'A' + point)
//! host  -> guest  reply    0x12 | SPAKE2 element Y (33) | host confirmation (32) | sealed room key (48)
//! guest -> host   confirm  0x13 | guest confirmation (32)        or   abort 0x14
//! ```
//!
//! Both SPAKE2 identities bind the room code and both peer ids, so a run cannot be replayed into
//! another room or between other peers. From the SPAKE2 key both sides derive (HKDF-SHA256) two
//! confirmation keys and a sealing key; each side MACs the transcript (identities, X, Y) under
//! its confirmation key, so a wrong password shows on both sides as [`Error::WrongPassword`].
//! The host seals the room key with ChaCha20-Poly1305 under the sealing key (used once, hence a
//! zero nonce; the transcript is the associated data).
//!
//! ```
//! use bassline_trust::{GuestPake, HostPake, PakeContext, RoomKey};
//! let ctx = PakeContext { room_code: "A3B7K9", guest: 0x2a, host: 0x07 };
//! let room_key = RoomKey::from_bytes([5; 32]);
//!
//! let (guest, hello) = GuestPake::start(&ctx, "correct horse", [1; 32]);
//! let (host, reply) = HostPake::handle_hello(&ctx, "correct horse", &room_key, &hello, [2; 32]).unwrap();
//! let joined = guest.handle_reply(&reply).unwrap();
//! host.handle_confirm(&joined.confirm).unwrap();
//! assert_eq!(joined.room_key, room_key);
//! ```

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit,
    aead::{Aead, Payload},
};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Identity, Password, Spake2};
use zeroize::Zeroizing;

use crate::{Error, ROOM_KEY_LEN, RoomKey, signal::HKDF_SALT};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the seed a PAKE side draws its secret scalar from (see [`crate::os::random`]).
pub const PAKE_SEED_LEN: usize = 32;

const HELLO: u8 = 0x11;
const REPLY: u8 = 0x12;
const CONFIRM: u8 = 0x13;
const ABORT: u8 = 0x14;

/// SPAKE2 message: side byte + compressed Edwards point.
const ELEMENT_LEN: usize = 33;
const MAC_LEN: usize = 32;
const SEALED_LEN: usize = ROOM_KEY_LEN + 16;

const HELLO_LEN: usize = 1 + ELEMENT_LEN;
const REPLY_LEN: usize = 1 + ELEMENT_LEN + MAC_LEN + SEALED_LEN;
const CONFIRM_LEN: usize = 1 + MAC_LEN;

/// Which room and which two peers a run is for; both sides must build the same one (the guest
/// from the code it typed, its own id and the host id in `joined`; the host from its room, its id
/// and the sender of the hello).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PakeContext<'a> {
    /// The room code (compared without surrounding spaces, case-insensitively).
    pub room_code: &'a str,
    /// The guest's peer id.
    pub guest: u64,
    /// The host's peer id.
    pub host: u64,
}

impl PakeContext<'_> {
    fn identity(&self, role: &[u8], peer: u64) -> Vec<u8> {
        let code = self.room_code.trim().to_ascii_uppercase();
        let mut id = Vec::with_capacity(40);
        id.extend_from_slice(b"bassline-trust v1 pake ");
        id.extend_from_slice(role);
        id.push(0);
        id.extend_from_slice(&(code.len() as u32).to_be_bytes());
        id.extend_from_slice(code.as_bytes());
        id.extend_from_slice(&peer.to_be_bytes());
        id
    }

    pub(crate) fn guest_identity(&self) -> Vec<u8> {
        self.identity(b"guest", self.guest)
    }

    pub(crate) fn host_identity(&self) -> Vec<u8> {
        self.identity(b"host", self.host)
    }
}

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// A PAKE message as text for a JSON signaling message (base64url without padding).
pub fn pake_message_to_text(msg: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(msg)
}

/// Reads [`pake_message_to_text`]'s text back; refuses anything longer than the longest message.
pub fn pake_message_from_text(text: &str) -> Result<Vec<u8>, Error> {
    // The longest is a reply or a password share (`crate::share`).
    const MAX_CHARS: usize = (max(REPLY_LEN, crate::share::SHARE_MAX_LEN) * 4).div_ceil(3);
    if text.len() > MAX_CHARS {
        return Err(Error::Malformed {
            what: "PAKE message",
            detail: "longer than any PAKE message",
        });
    }
    URL_SAFE_NO_PAD.decode(text).map_err(|_| Error::Malformed {
        what: "PAKE message",
        detail: "not base64url",
    })
}

/// Whether `msg` is a guest's hello (the start of a run) rather than a later message of one,
/// so a host can tell a guest that starts again (after a reconnect) from one that confirms.
pub fn pake_message_is_hello(msg: &[u8]) -> bool {
    msg.first() == Some(&HELLO)
}

/// The message a guest sends instead of its confirmation when the host's did not verify, so the
/// host counts a failed join at once instead of waiting for a timeout.
pub fn abort_message() -> Vec<u8> {
    vec![ABORT]
}

/// The guest's side, between its hello and the host's reply.
pub struct GuestPake {
    spake: Spake2<Ed25519Group>,
    id_guest: Vec<u8>,
    id_host: Vec<u8>,
    element: [u8; ELEMENT_LEN],
}

impl core::fmt::Debug for GuestPake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("GuestPake { .. }")
    }
}

/// What a guest holds after a successful exchange.
#[derive(Debug)]
pub struct Joined {
    /// The room key: sign offers and answers with it.
    pub room_key: RoomKey,
    /// The confirmation to send to the host.
    pub confirm: Vec<u8>,
}

impl GuestPake {
    /// Starts a join: returns the state and the hello to send to the host.
    pub fn start(
        ctx: &PakeContext<'_>,
        password: &str,
        seed: [u8; PAKE_SEED_LEN],
    ) -> (Self, Vec<u8>) {
        let id_guest = ctx.guest_identity();
        let id_host = ctx.host_identity();
        let (spake, msg) = Spake2::<Ed25519Group>::start_a_with_rng(
            &Password::new(password.as_bytes()),
            &Identity::new(&id_guest),
            &Identity::new(&id_host),
            SeedRng::new(seed),
        );
        let element = element(&msg);
        let mut hello = Vec::with_capacity(HELLO_LEN);
        hello.push(HELLO);
        hello.extend_from_slice(&element);
        (
            Self {
                spake,
                id_guest,
                id_host,
                element,
            },
            hello,
        )
    }

    /// Handles the host's reply: checks the host's confirmation and opens the room key.
    ///
    /// On [`Error::WrongPassword`] send [`abort_message`] to the host.
    pub fn handle_reply(self, reply: &[u8]) -> Result<Joined, Error> {
        let body = expect(reply, REPLY, REPLY_LEN, "PAKE reply")?;
        let (host_element, rest) = body.split_at(ELEMENT_LEN);
        let (host_confirm, sealed) = rest.split_at(MAC_LEN);
        let shared = Zeroizing::new(self.spake.finish(host_element).map_err(spake_error)?);
        let keys = Keys::derive(
            &shared[..],
            &self.id_guest,
            &self.id_host,
            &self.element,
            host_element,
        );
        keys.check(&keys.host_confirm, b"host", host_confirm)?;
        let room_key = keys.open(sealed)?;
        let mut confirm = Vec::with_capacity(CONFIRM_LEN);
        confirm.push(CONFIRM);
        confirm.extend_from_slice(&keys.confirmation(&keys.guest_confirm, b"guest"));
        Ok(Joined { room_key, confirm })
    }
}

/// The host's side, between its reply and the guest's confirmation.
pub struct HostPake {
    keys: Keys,
}

impl core::fmt::Debug for HostPake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HostPake { .. }")
    }
}

impl HostPake {
    /// Handles a guest's hello: returns the state and the reply (which carries the room key,
    /// sealed so only a guest who used the same password can open it).
    pub fn handle_hello(
        ctx: &PakeContext<'_>,
        password: &str,
        room_key: &RoomKey,
        hello: &[u8],
        seed: [u8; PAKE_SEED_LEN],
    ) -> Result<(Self, Vec<u8>), Error> {
        let guest_element = expect(hello, HELLO, HELLO_LEN, "PAKE hello")?;
        let id_guest = ctx.guest_identity();
        let id_host = ctx.host_identity();
        let (spake, msg) = Spake2::<Ed25519Group>::start_b_with_rng(
            &Password::new(password.as_bytes()),
            &Identity::new(&id_guest),
            &Identity::new(&id_host),
            SeedRng::new(seed),
        );
        let host_element = element(&msg);
        let shared = Zeroizing::new(spake.finish(guest_element).map_err(spake_error)?);
        let keys = Keys::derive(
            &shared[..],
            &id_guest,
            &id_host,
            guest_element,
            &host_element,
        );
        let mut reply = Vec::with_capacity(REPLY_LEN);
        reply.push(REPLY);
        reply.extend_from_slice(&host_element);
        reply.extend_from_slice(&keys.confirmation(&keys.host_confirm, b"host"));
        reply.extend_from_slice(&keys.seal(room_key));
        Ok((Self { keys }, reply))
    }

    /// Handles the guest's confirmation (or abort). `Ok` means the guest used the right password
    /// and now holds the room key; count an `Err` as a failed join.
    pub fn handle_confirm(self, msg: &[u8]) -> Result<(), Error> {
        if msg == [ABORT] {
            return Err(Error::WrongPassword);
        }
        let mac = expect(msg, CONFIRM, CONFIRM_LEN, "PAKE confirmation")?;
        self.keys.check(&self.keys.guest_confirm, b"guest", mac)
    }
}

/// Keys derived from one run's SPAKE2 output, and the transcript they authenticate.
struct Keys {
    transcript: [u8; 32],
    host_confirm: Zeroizing<[u8; 32]>,
    guest_confirm: Zeroizing<[u8; 32]>,
    seal: Zeroizing<[u8; 32]>,
}

impl Keys {
    fn derive(
        shared: &[u8],
        id_guest: &[u8],
        id_host: &[u8],
        guest_element: &[u8],
        host_element: &[u8],
    ) -> Self {
        let mut h = Sha256::new();
        for part in [id_guest, id_host, guest_element, host_element] {
            h.update((part.len() as u32).to_be_bytes());
            h.update(part);
        }
        let transcript: [u8; 32] = h.finalize().into();
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), shared);
        let key = |info: &[u8]| {
            let mut k = Zeroizing::new([0u8; 32]);
            hk.expand(info, k.as_mut())
                .expect("32 bytes is far below HKDF-SHA256's 8160-byte limit");
            k
        };
        Self {
            transcript,
            host_confirm: key(b"pake host confirmation"),
            guest_confirm: key(b"pake guest confirmation"),
            seal: key(b"pake room key seal"),
        }
    }

    fn mac(&self, key: &[u8; 32], role: &[u8]) -> HmacSha256 {
        let mut m =
            <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
        m.update(b"bassline-trust v1 pake confirm ");
        m.update(role);
        m.update(&self.transcript);
        m
    }

    fn confirmation(&self, key: &[u8; 32], role: &[u8]) -> [u8; MAC_LEN] {
        self.mac(key, role).finalize().into_bytes().into()
    }

    fn check(&self, key: &[u8; 32], role: &[u8], got: &[u8]) -> Result<(), Error> {
        self.mac(key, role)
            .verify_slice(got)
            .map_err(|_| Error::WrongPassword)
    }

    fn aead(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(self.seal.as_ref().into())
    }

    fn seal(&self, room_key: &RoomKey) -> Vec<u8> {
        // The sealing key is fresh per run and seals exactly one message: a fixed nonce is safe.
        self.aead()
            .encrypt(
                &[0u8; 12].into(),
                Payload {
                    msg: room_key.as_bytes(),
                    aad: &self.transcript,
                },
            )
            .expect("ChaCha20-Poly1305 seals 32 bytes without error")
    }

    fn open(&self, sealed: &[u8]) -> Result<RoomKey, Error> {
        let plain = Zeroizing::new(
            self.aead()
                .decrypt(
                    &[0u8; 12].into(),
                    Payload {
                        msg: sealed,
                        aad: &self.transcript,
                    },
                )
                .map_err(|_| Error::BadMac)?,
        );
        let bytes: [u8; ROOM_KEY_LEN] = plain[..].try_into().map_err(|_| Error::Malformed {
            what: "PAKE reply",
            detail: "the sealed room key has the wrong length",
        })?;
        Ok(RoomKey::from_bytes(bytes))
    }
}

/// Checks a message's kind byte and exact length; returns the body.
fn expect<'m>(msg: &'m [u8], kind: u8, len: usize, what: &'static str) -> Result<&'m [u8], Error> {
    match msg.first() {
        None => Err(Error::Truncated {
            what,
            need: len,
            got: 0,
        }),
        Some(&k) if k != kind => Err(Error::Malformed {
            what,
            detail: "unexpected message kind (is the other side a different Bassline version?)",
        }),
        Some(_) if msg.len() < len => Err(Error::Truncated {
            what,
            need: len,
            got: msg.len(),
        }),
        Some(_) if msg.len() > len => Err(Error::Malformed {
            what,
            detail: "longer than this message kind",
        }),
        Some(_) => Ok(&msg[1..]),
    }
}

fn element(msg: &[u8]) -> [u8; ELEMENT_LEN] {
    msg.try_into()
        .expect("spake2's Ed25519 message is a side byte and a 32-byte point")
}

fn spake_error(e: spake2::Error) -> Error {
    Error::Malformed {
        what: "PAKE element",
        detail: match e {
            spake2::Error::BadSide => "sent by the wrong side (both peers think they are guests?)",
            spake2::Error::WrongLength => "wrong length",
            spake2::Error::CorruptMessage => "not a curve point",
        },
    }
}

/// A deterministic generator over a caller's random seed (HMAC-SHA256 in counter mode), so the
/// PAKE takes its randomness as an argument like everything sans-IO.
struct SeedRng {
    seed: Zeroizing<[u8; 32]>,
    counter: u64,
}

impl SeedRng {
    fn new(seed: [u8; PAKE_SEED_LEN]) -> Self {
        Self {
            seed: Zeroizing::new(seed),
            counter: 0,
        }
    }
}

impl rand_core::RngCore for SeedRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(32) {
            let mut m = <HmacSha256 as Mac>::new_from_slice(self.seed.as_ref())
                .expect("HMAC accepts keys of any length");
            m.update(b"bassline-trust v1 pake scalar");
            m.update(&self.counter.to_be_bytes());
            self.counter += 1;
            let block = m.finalize().into_bytes();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// The seed is secret random bytes from the caller, expanded by a PRF.
impl rand_core::CryptoRng for SeedRng {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CTX: PakeContext<'static> = PakeContext {
        room_code: "A3B7K9",
        guest: 0x2a2a,
        host: 0x0707,
    };

    fn room_key() -> RoomKey {
        RoomKey::from_bytes([0x5a; 32])
    }

    /// Runs the host's side of a join with `password` against a guest who typed `typed`.
    fn run(typed: &str, password: &str) -> (Result<Joined, Error>, Option<Result<(), Error>>) {
        let (guest, hello) = GuestPake::start(&CTX, typed, [1; 32]);
        let (host, reply) =
            HostPake::handle_hello(&CTX, password, &room_key(), &hello, [2; 32]).unwrap();
        match guest.handle_reply(&reply) {
            Ok(joined) => {
                let host_says = host.handle_confirm(&joined.confirm);
                (Ok(joined), Some(host_says))
            }
            Err(e) => (Err(e), Some(host.handle_confirm(&abort_message()))),
        }
    }

    #[test]
    fn the_right_password_hands_over_the_room_key() {
        // docs/SECURITY.md quotes these sizes.
        let (guest, hello) = GuestPake::start(&CTX, "pw", [1; 32]);
        let (_, reply) = HostPake::handle_hello(&CTX, "pw", &room_key(), &hello, [2; 32]).unwrap();
        let confirm = guest.handle_reply(&reply).unwrap().confirm;
        assert_eq!((hello.len(), reply.len(), confirm.len()), (34, 114, 33));
        let (guest, host) = run("correct horse", "correct horse");
        assert_eq!(guest.unwrap().room_key, room_key());
        assert_eq!(host, Some(Ok(())));
    }

    #[test]
    fn a_wrong_password_fails_on_both_sides_with_a_typed_error() {
        let (guest, host) = run("correct horse", "battery staple");
        assert_eq!(guest.unwrap_err(), Error::WrongPassword);
        assert_eq!(host, Some(Err(Error::WrongPassword)));
    }

    #[test]
    fn the_host_detects_a_wrong_password_without_the_guests_help() {
        // A guest with the wrong password that does not abort but sends some confirmation: the
        // host's own check refuses it (a random MAC, and an honest guest's MAC from another run).
        let (_, hello) = GuestPake::start(&CTX, "wrong", [1; 32]);
        let (host, _) =
            HostPake::handle_hello(&CTX, "right", &room_key(), &hello, [2; 32]).unwrap();
        let mut forged = vec![CONFIRM];
        forged.extend_from_slice(&[0x42; 32]);
        assert_eq!(host.handle_confirm(&forged), Err(Error::WrongPassword));

        let (good_guest, good_hello) = GuestPake::start(&CTX, "right", [3; 32]);
        let (_, good_reply) =
            HostPake::handle_hello(&CTX, "right", &room_key(), &good_hello, [4; 32]).unwrap();
        let other_runs_confirm = good_guest.handle_reply(&good_reply).unwrap().confirm;
        let (host, _) =
            HostPake::handle_hello(&CTX, "right", &room_key(), &hello, [2; 32]).unwrap();
        assert_eq!(
            host.handle_confirm(&other_runs_confirm),
            Err(Error::WrongPassword)
        );
    }

    #[test]
    fn the_room_code_and_both_peer_ids_are_bound() {
        let others = [
            PakeContext {
                room_code: "A3B7K8",
                ..CTX
            },
            PakeContext {
                guest: 0x2a2b,
                ..CTX
            },
            PakeContext {
                host: 0x0708,
                ..CTX
            },
            PakeContext {
                guest: CTX.host,
                host: CTX.guest,
                ..CTX
            },
        ];
        for other in others {
            let (guest, hello) = GuestPake::start(&CTX, "pw", [1; 32]);
            let (host, reply) =
                HostPake::handle_hello(&other, "pw", &room_key(), &hello, [2; 32]).unwrap();
            assert_eq!(
                guest.handle_reply(&reply).unwrap_err(),
                Error::WrongPassword
            );
            assert_eq!(
                host.handle_confirm(&abort_message()),
                Err(Error::WrongPassword)
            );
        }
        // The code is compared as people type it.
        let typed = PakeContext {
            room_code: " a3b7k9",
            ..CTX
        };
        let (guest, hello) = GuestPake::start(&typed, "pw", [1; 32]);
        let (_, reply) = HostPake::handle_hello(&CTX, "pw", &room_key(), &hello, [2; 32]).unwrap();
        assert!(guest.handle_reply(&reply).is_ok());
    }

    #[test]
    fn key_confirmation_catches_an_altered_exchange() {
        let (_, hello) = GuestPake::start(&CTX, "pw", [1; 32]);
        let (_, reply) = HostPake::handle_hello(&CTX, "pw", &room_key(), &hello, [2; 32]).unwrap();
        let confirm_at = 1 + ELEMENT_LEN;
        let sealed_at = confirm_at + MAC_LEN;
        for i in 1..reply.len() {
            let (guest, _) = GuestPake::start(&CTX, "pw", [1; 32]);
            let mut bad = reply.clone();
            bad[i] ^= 0x01;
            let got = guest.handle_reply(&bad);
            let err = got.expect_err("an altered reply must not hand over a key");
            if i < confirm_at {
                // The element: another point (wrong keys) or none at all.
                assert!(
                    matches!(err, Error::WrongPassword | Error::Malformed { .. }),
                    "byte {i}: {err:?}"
                );
            } else if i < sealed_at {
                assert_eq!(err, Error::WrongPassword, "byte {i}");
            } else {
                assert_eq!(err, Error::BadMac, "byte {i}");
            }
        }
        // An altered hello: the host answers, but nobody gets the key.
        let (guest, mut hello) = GuestPake::start(&CTX, "pw", [1; 32]);
        hello[5] ^= 0x10;
        if let Ok((host, reply)) = HostPake::handle_hello(&CTX, "pw", &room_key(), &hello, [2; 32])
        {
            assert_eq!(
                guest.handle_reply(&reply).unwrap_err(),
                Error::WrongPassword
            );
            assert_eq!(
                host.handle_confirm(&abort_message()),
                Err(Error::WrongPassword)
            );
        }
    }

    #[test]
    fn truncated_and_mistyped_messages_get_their_errors() {
        let (guest, hello) = GuestPake::start(&CTX, "pw", [1; 32]);
        let (host, reply) =
            HostPake::handle_hello(&CTX, "pw", &room_key(), &hello, [2; 32]).unwrap();
        for cut in 0..hello.len() {
            assert!(matches!(
                HostPake::handle_hello(&CTX, "pw", &room_key(), &hello[..cut], [2; 32]),
                Err(Error::Truncated { .. })
            ));
        }
        let joined = guest.handle_reply(&reply).unwrap();
        for cut in 0..reply.len() {
            let (g, _) = GuestPake::start(&CTX, "pw", [1; 32]);
            assert!(matches!(
                g.handle_reply(&reply[..cut]),
                Err(Error::Truncated { .. })
            ));
        }
        let (g, _) = GuestPake::start(&CTX, "pw", [1; 32]);
        assert!(matches!(
            g.handle_reply(&hello),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(
            HostPake::handle_hello(&CTX, "pw", &room_key(), &reply, [2; 32]),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(
            host.handle_confirm(&joined.confirm[..20]),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn messages_survive_the_text_encoding() {
        let (guest, hello) = GuestPake::start(&CTX, "pw", [1; 32]);
        let hello_text = pake_message_to_text(&hello);
        let (host, reply) = HostPake::handle_hello(
            &CTX,
            "pw",
            &room_key(),
            &pake_message_from_text(&hello_text).unwrap(),
            [2; 32],
        )
        .unwrap();
        let reply_text = pake_message_to_text(&reply);
        assert_eq!(reply_text.len(), 152);
        let joined = guest
            .handle_reply(&pake_message_from_text(&reply_text).unwrap())
            .unwrap();
        let confirm = pake_message_from_text(&pake_message_to_text(&joined.confirm)).unwrap();
        assert_eq!(host.handle_confirm(&confirm), Ok(()));
        assert!(pake_message_from_text(&"A".repeat(153)).is_err());
        assert!(pake_message_from_text("a+b").is_err());
    }

    #[test]
    fn two_guests_cannot_complete_with_each_other() {
        let (a, _) = GuestPake::start(&CTX, "pw", [1; 32]);
        let (_, other_hello) = GuestPake::start(&CTX, "pw", [2; 32]);
        // A "reply" built around a guest's element: SPAKE2 sees the wrong side.
        let mut fake = vec![REPLY];
        fake.extend_from_slice(&other_hello[1..]);
        fake.extend_from_slice(&[0; MAC_LEN + SEALED_LEN]);
        assert!(matches!(
            a.handle_reply(&fake),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn only_a_hello_is_a_hello() {
        let (guest, hello) = GuestPake::start(&CTX, "pw", [1; 32]);
        assert!(pake_message_is_hello(&hello));
        let (_, reply) = HostPake::handle_hello(&CTX, "pw", &room_key(), &hello, [2; 32]).unwrap();
        let confirm = guest.handle_reply(&reply).unwrap().confirm;
        for other in [&reply[..], &confirm, &abort_message(), &[]] {
            assert!(!pake_message_is_hello(other));
        }
    }

    #[test]
    fn runs_are_deterministic_in_their_seeds_and_fresh_across_seeds() {
        let (_, h1) = GuestPake::start(&CTX, "pw", [1; 32]);
        let (_, h2) = GuestPake::start(&CTX, "pw", [1; 32]);
        let (_, h3) = GuestPake::start(&CTX, "pw", [9; 32]);
        assert_eq!(h1, h2);
        assert_ne!(h1, h3);
    }

    #[test]
    fn seed_rng_fills_any_length() {
        use rand_core::RngCore;
        let mut r = SeedRng::new([3; 32]);
        let mut a = [0u8; 100];
        r.fill_bytes(&mut a);
        assert!(a[64..].iter().any(|&b| b != 0));
        assert_ne!(a[..32], a[32..64]);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            kind in 0x10u8..0x15,
        ) {
            let mut msg = bytes.clone();
            if let Some(first) = msg.first_mut() {
                *first = kind;
            }
            for m in [&bytes, &msg] {
                let _ = HostPake::handle_hello(&CTX, "pw", &room_key(), m, [2; 32]);
                let (g, hello) = GuestPake::start(&CTX, "pw", [1; 32]);
                let _ = g.handle_reply(m);
                let (h, _) =
                    HostPake::handle_hello(&CTX, "pw", &room_key(), &hello, [2; 32]).unwrap();
                prop_assert!(h.handle_confirm(m).is_err());
            }
            let _ = pake_message_from_text(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn any_two_different_passwords_fail(a in ".{0,24}", b in ".{0,24}") {
            prop_assume!(a != b);
            let (guest, host) = run(&a, &b);
            prop_assert_eq!(guest.unwrap_err(), Error::WrongPassword);
            prop_assert_eq!(host, Some(Err(Error::WrongPassword)));
        }
    }
}
