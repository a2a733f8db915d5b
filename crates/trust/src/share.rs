//! Handing the room password to a member who joined by link, so that whoever is elected host
//! later can answer password joins (the PAKE needs the password on the host's side).
//!
//! ```text
//! member -> member   share   0x15 | nonce (12) | ChaCha20-Poly1305(password) (len + 16)
//! ```
//!
//! It travels through the signaling server as a `pake` message, sealed under a key derived
//! from the room key (HKDF-SHA256), with the room code and both peer ids as associated data:
//! the server, which never holds the room key, can neither read it nor move it to another pair
//! of peers or another room. Only a member holding the room key (which grants everything the
//! password does, and more) can open it.
//!
//! ```
//! use bassline_trust::{PakeContext, RoomKey, open_password_share, seal_password_share};
//! let key = RoomKey::from_bytes([5; 32]);
//! let ctx = PakeContext { room_code: "A3B7K9", guest: 0x2a, host: 0x07 };
//! let share = seal_password_share(&ctx, &key, "correct horse", [9; 12]).unwrap();
//! assert_eq!(open_password_share(&ctx, &key, &share).unwrap(), "correct horse");
//! ```

use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit,
    aead::{Aead, Payload},
};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{Error, PakeContext, RoomKey, signal::HKDF_SALT};

const SHARE: u8 = 0x15;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// The longest password, in bytes, that is shared. A `pake` message carries at most 256
/// characters of base64url (192 bytes); a longer password stays with the members who typed it.
pub const MAX_SHARED_PASSWORD: usize = 128;

/// The longest share, in bytes.
pub(crate) const SHARE_MAX_LEN: usize = 1 + NONCE_LEN + MAX_SHARED_PASSWORD + TAG_LEN;

/// Whether `msg` is a password share rather than a message of a PAKE run.
pub fn pake_message_is_share(msg: &[u8]) -> bool {
    msg.first() == Some(&SHARE)
}

/// Seals `password` for the member `ctx.guest`, from `ctx.host` (the member sharing it, host
/// or not). `nonce` must be fresh random bytes.
pub fn seal_password_share(
    ctx: &PakeContext<'_>,
    room_key: &RoomKey,
    password: &str,
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, Error> {
    if password.len() > MAX_SHARED_PASSWORD {
        return Err(Error::Malformed {
            what: "password share",
            detail: "the password is longer than 128 bytes, too long to share",
        });
    }
    let sealed = aead(room_key)
        .encrypt(
            &nonce.into(),
            Payload {
                msg: password.as_bytes(),
                aad: &associated(ctx),
            },
        )
        .expect("ChaCha20-Poly1305 seals any message this short");
    let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    out.push(SHARE);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens a share sealed for `ctx.guest` by `ctx.host`. Refused (as [`Error::BadMac`]) if it was
/// sealed under another room key, for other peers or another room, or altered.
pub fn open_password_share(
    ctx: &PakeContext<'_>,
    room_key: &RoomKey,
    msg: &[u8],
) -> Result<String, Error> {
    const WHAT: &str = "password share";
    match msg.first() {
        Some(&SHARE) => {}
        Some(_) => {
            return Err(Error::Malformed {
                what: WHAT,
                detail: "unexpected message kind",
            });
        }
        None => {
            return Err(Error::Truncated {
                what: WHAT,
                need: 1 + NONCE_LEN + TAG_LEN,
                got: 0,
            });
        }
    }
    if msg.len() < 1 + NONCE_LEN + TAG_LEN {
        return Err(Error::Truncated {
            what: WHAT,
            need: 1 + NONCE_LEN + TAG_LEN,
            got: msg.len(),
        });
    }
    if msg.len() > SHARE_MAX_LEN {
        return Err(Error::Malformed {
            what: WHAT,
            detail: "longer than any share",
        });
    }
    let (nonce, sealed) = msg[1..].split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce's length");
    let opened = Zeroizing::new(
        aead(room_key)
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: sealed,
                    aad: &associated(ctx),
                },
            )
            .map_err(|_| Error::BadMac)?,
    );
    String::from_utf8(opened.to_vec()).map_err(|_| Error::Malformed {
        what: WHAT,
        detail: "the password is not UTF-8",
    })
}

fn aead(room_key: &RoomKey) -> ChaCha20Poly1305 {
    let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), room_key.as_bytes());
    let mut k = Zeroizing::new([0u8; 32]);
    hk.expand(b"password share", k.as_mut())
        .expect("32 bytes is far below HKDF-SHA256's limit");
    ChaCha20Poly1305::new(k.as_ref().into())
}

/// What a share is bound to: the room code and both peers, in their roles.
fn associated(ctx: &PakeContext<'_>) -> Vec<u8> {
    let mut aad = b"bassline-trust v1 password share ".to_vec();
    for part in [ctx.host_identity(), ctx.guest_identity()] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(&part);
    }
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> RoomKey {
        RoomKey::from_bytes([5; 32])
    }

    fn ctx(code: &str, from: u64, to: u64) -> PakeContext<'_> {
        PakeContext {
            room_code: code,
            guest: to,
            host: from,
        }
    }

    #[test]
    fn a_share_opens_only_for_its_room_peers_and_key() {
        let share = seal_password_share(&ctx("A3B7K9", 1, 2), &key(), "pässword", [3; 12]).unwrap();
        assert!(pake_message_is_share(&share));
        assert_eq!(
            open_password_share(&ctx("A3B7K9", 1, 2), &key(), &share).unwrap(),
            "pässword"
        );
        // The code is compared as the PAKE compares it (trimmed, any case).
        assert!(open_password_share(&ctx(" a3b7k9", 1, 2), &key(), &share).is_ok());
        for (other, why) in [
            (ctx("A3B7K8", 1, 2), "another room"),
            (ctx("A3B7K9", 3, 2), "another sender"),
            (ctx("A3B7K9", 1, 3), "another receiver"),
            (ctx("A3B7K9", 2, 1), "the two peers swapped"),
        ] {
            assert_eq!(
                open_password_share(&other, &key(), &share),
                Err(Error::BadMac),
                "{why}"
            );
        }
        assert_eq!(
            open_password_share(&ctx("A3B7K9", 1, 2), &RoomKey::from_bytes([6; 32]), &share),
            Err(Error::BadMac),
            "another room key"
        );
    }

    #[test]
    fn every_bit_flip_and_truncation_is_refused() {
        let c = ctx("A3B7K9", 1, 2);
        let share = seal_password_share(&c, &key(), "pw", [3; 12]).unwrap();
        for i in 0..share.len() {
            for bit in 0..8 {
                let mut bad = share.clone();
                bad[i] ^= 1 << bit;
                assert!(
                    open_password_share(&c, &key(), &bad).is_err(),
                    "byte {i} bit {bit}"
                );
            }
        }
        for n in 0..share.len() {
            assert!(
                open_password_share(&c, &key(), &share[..n]).is_err(),
                "{n} bytes"
            );
        }
    }

    #[test]
    fn the_longest_shared_password_fits_a_pake_message_and_a_longer_one_is_not_shared() {
        let c = ctx("A3B7K9", 1, 2);
        let longest = "p".repeat(MAX_SHARED_PASSWORD);
        let share = seal_password_share(&c, &key(), &longest, [3; 12]).unwrap();
        let text = crate::pake_message_to_text(&share);
        assert!(text.len() <= 256, "{} characters", text.len());
        assert_eq!(crate::pake_message_from_text(&text).unwrap(), share);
        assert!(seal_password_share(&c, &key(), &format!("{longest}p"), [3; 12]).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_open_or_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert!(open_password_share(&ctx("A3B7K9", 1, 2), &key(), &bytes).is_err());
        }
    }
}
