//! The room-key check on the signaling path, without I/O (shared by the native transport in
//! `bassline-net` and the browser's in `bassline-web`, so both bind the same fields): our own offers and answers get an
//! `auth` ([`bassline_trust::Attestation`]), and a peer's are verified before their SDP may reach
//! a peer connection.
//!
//! The [`Binding`] names both ends by their **signaling peer ids** (the 64-bit ids of the
//! signaling server's `welcome`, the `to` and `from` of every relayed message): the sender knows
//! its own from its welcome and the receiver's from the room listing, and the receiver reads the
//! sender's from the relay envelope and its own from its welcome. Member numbers would do as well,
//! but the ids are what the messages themselves carry, so a message moved to another pair of
//! peers fails the MAC without any lookup. The room code is the one the server confirmed
//! (`room-created` / `joined`).
//!
//! ```
//! use bassline_trust::{Kind, RoomKey, room_auth::RoomAuth};
//! let key = RoomKey::from_bytes([7; 32]);
//! let sdp = "v=0\r\na=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n";
//! let (alice, mut bob) = (RoomAuth::new(&key), RoomAuth::new(&key));
//! let auth = alice.sign("A3B7K9", 1, 2, Kind::Offer, sdp, [9; 16]).unwrap();
//! assert!(bob.check("A3B7K9", 1, 2, Kind::Offer, sdp, Some(&auth)).is_ok());
//! assert!(bob.check("A3B7K9", 1, 2, Kind::Offer, sdp, Some(&auth)).is_err()); // replayed
//! ```

use crate::{Attestation, Binding, Error, Kind, NONCE_LEN, ReplayGuard, RoomKey, SignalKey};

/// Signs our offers and answers and checks the peers'. One per transport, kept across
/// signaling reconnects, so its replay memory spans them.
#[derive(Debug)]
pub struct RoomAuth {
    key: SignalKey,
    seen: ReplayGuard,
}

impl RoomAuth {
    /// The checker for the room whose key is `key`.
    pub fn new(key: &RoomKey) -> Self {
        RoomAuth {
            key: key.signal_key(),
            seen: ReplayGuard::default(),
        }
    }

    /// The `auth` for our own `sdp` (`me` sends it to `to`); `nonce` must be fresh random bytes.
    pub fn sign(
        &self,
        code: &str,
        me: u64,
        to: u64,
        kind: Kind,
        sdp: &str,
        nonce: [u8; NONCE_LEN],
    ) -> Result<String, Error> {
        let binding = Binding {
            room_code: code,
            from: me,
            to,
            kind,
        };
        Ok(self.key.attest(&binding, sdp, nonce)?.encode())
    }

    /// Checks an offer or answer `from` sent to us (`me`). A missing `auth` is
    /// [`Error::BadMac`]: a peer of this room always signs, so an unsigned message was sent by
    /// someone without the key, or stripped on the way.
    pub fn check(
        &mut self,
        code: &str,
        from: u64,
        me: u64,
        kind: Kind,
        sdp: &str,
        auth: Option<&str>,
    ) -> Result<(), Error> {
        let attestation = Attestation::decode(auth.ok_or(Error::BadMac)?)?;
        let binding = Binding {
            room_code: code,
            from,
            to: me,
            kind,
        };
        self.key.verify(&binding, sdp, &attestation, &mut self.seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99";

    fn sdp(fp: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\na=fingerprint:{fp}\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
        )
    }

    fn pair() -> (RoomAuth, RoomAuth) {
        let key = RoomKey::from_bytes([3; 32]);
        (RoomAuth::new(&key), RoomAuth::new(&key))
    }

    #[test]
    fn what_one_side_signs_the_other_accepts_once() {
        let (a, mut b) = pair();
        let s = sdp(FP);
        let auth = a.sign("A3B7K9", 10, 20, Kind::Answer, &s, [1; 16]).unwrap();
        // The code is compared as the server spells it, whatever the case typed.
        assert_eq!(
            b.check("a3b7k9", 10, 20, Kind::Answer, &s, Some(&auth)),
            Ok(())
        );
        assert_eq!(
            b.check("A3B7K9", 10, 20, Kind::Answer, &s, Some(&auth)),
            Err(Error::Replayed)
        );
    }

    #[test]
    fn a_swapped_fingerprint_a_missing_auth_and_moved_messages_are_refused() {
        let (a, mut b) = pair();
        let s = sdp(FP);
        let auth = a.sign("A3B7K9", 10, 20, Kind::Offer, &s, [2; 16]).unwrap();
        let swapped = sdp(&FP.replace("AA:BB", "AB:BA"));
        assert_eq!(
            b.check("A3B7K9", 10, 20, Kind::Offer, &swapped, Some(&auth)),
            Err(Error::FingerprintMismatch)
        );
        assert_eq!(
            b.check("A3B7K9", 10, 20, Kind::Offer, &s, None),
            Err(Error::BadMac)
        );
        for (code, from, to, kind) in [
            ("ZZZZZZ", 10, 20, Kind::Offer),
            ("A3B7K9", 11, 20, Kind::Offer),
            ("A3B7K9", 10, 21, Kind::Offer),
            ("A3B7K9", 10, 20, Kind::Answer),
        ] {
            assert_eq!(
                b.check(code, from, to, kind, &s, Some(&auth)),
                Err(Error::BadMac),
                "{code} {from} {to} {kind:?}"
            );
        }
        // None of the refusals used up the nonce: the genuine message still passes.
        assert_eq!(
            b.check("A3B7K9", 10, 20, Kind::Offer, &s, Some(&auth)),
            Ok(())
        );
    }

    #[test]
    fn another_room_key_and_garbage_are_refused_without_panicking() {
        let (a, _) = pair();
        let mut other = RoomAuth::new(&RoomKey::from_bytes([4; 32]));
        let s = sdp(FP);
        let auth = a.sign("A3B7K9", 10, 20, Kind::Offer, &s, [3; 16]).unwrap();
        assert_eq!(
            other.check("A3B7K9", 10, 20, Kind::Offer, &s, Some(&auth)),
            Err(Error::BadMac)
        );
        for junk in ["", "!!", "AQ", &"A".repeat(5000)] {
            assert!(
                other
                    .check("A3B7K9", 10, 20, Kind::Offer, &s, Some(junk))
                    .is_err()
            );
        }
    }
}
