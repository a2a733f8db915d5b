//! The room key and its place in a join link's fragment.
//!
//! The fragment (everything after `#`) never leaves the browser in an HTTP request, so the
//! signaling server that serves or relays the link does not learn the key from it.

use core::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use zeroize::Zeroize;

use crate::Error;

/// Bytes in a room key (256 bits; the issue asks for at least 128).
pub const ROOM_KEY_LEN: usize = 32;

/// Characters of the key in a link: base64url without padding of [`ROOM_KEY_LEN`] bytes.
const ENCODED_LEN: usize = 43;

/// The parameter name in the fragment: `#k=<base64url>`.
const PARAM: &str = "k=";

/// A room's secret: whoever holds it can sign offers and answers for the room.
///
/// `Debug` never shows the bytes, and they are wiped when the key is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct RoomKey([u8; ROOM_KEY_LEN]);

impl RoomKey {
    /// A key from bytes the caller drew from a cryptographic generator (sans-IO callers and
    /// tests); [`RoomKey::generate`] draws them from the OS.
    pub fn from_bytes(bytes: [u8; ROOM_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh key from the operating system's generator (the host does this once per room).
    pub fn generate() -> Result<Self, Error> {
        Ok(Self(crate::os::random()?))
    }

    /// The raw bytes (to seal them for a guest, or to derive keys).
    pub fn as_bytes(&self) -> &[u8; ROOM_KEY_LEN] {
        &self.0
    }

    /// The fragment to append to a join link, `#` included.
    ///
    /// ```
    /// use bassline_trust::RoomKey;
    /// let key = RoomKey::from_bytes([7; 32]);
    /// let link = format!("https://bassline.example/join/A3B7K9{}", key.to_fragment());
    /// assert_eq!(RoomKey::from_fragment(&link).unwrap(), key);
    /// ```
    pub fn to_fragment(&self) -> String {
        format!("#{PARAM}{}", URL_SAFE_NO_PAD.encode(self.0))
    }

    /// Reads the key from a fragment (`#k=...`, `k=...`, or a whole link: the part after its
    /// first `#`). Other `&`-separated parameters are ignored; the first `k=` wins.
    pub fn from_fragment(text: &str) -> Result<Self, Error> {
        let fragment = match text.split_once('#') {
            Some((_, after)) => after,
            None => text,
        };
        let encoded = fragment
            .split('&')
            .find_map(|p| p.trim().strip_prefix(PARAM))
            .ok_or(Error::MissingRoomKey)?;
        if encoded.len() != ENCODED_LEN {
            return Err(Error::BadRoomKey {
                detail: if encoded.len() < ENCODED_LEN {
                    "too short"
                } else {
                    "too long"
                },
            });
        }
        let mut out = [0u8; ROOM_KEY_LEN];
        // The length was checked above, so the only failure left is a character or trailing
        // bits outside base64url.
        let n = URL_SAFE_NO_PAD
            .decode_slice(encoded, &mut out)
            .map_err(|_| Error::BadRoomKey {
                detail: "not base64url",
            })?;
        if n != ROOM_KEY_LEN {
            return Err(Error::BadRoomKey {
                detail: "wrong length",
            });
        }
        Ok(Self(out))
    }
}

impl fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoomKey(<redacted>)")
    }
}

impl Drop for RoomKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_round_trips_and_is_url_safe() {
        for b in [0u8, 0xfb, 0xff, 0x3e] {
            let key = RoomKey::from_bytes([b; 32]);
            let frag = key.to_fragment();
            assert!(frag.starts_with("#k="));
            assert_eq!(frag.len(), 3 + ENCODED_LEN);
            assert!(
                frag[3..]
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
                "{frag}"
            );
            assert_eq!(RoomKey::from_fragment(&frag).unwrap(), key);
            assert_eq!(RoomKey::from_fragment(&frag[1..]).unwrap(), key);
        }
    }

    #[test]
    fn finds_the_key_among_other_parameters() {
        let key = RoomKey::from_bytes([9; 32]);
        let enc = &key.to_fragment()[3..];
        let link = format!("https://x.example/j?code=A3B7K9#v=1&k={enc}&ro=1");
        assert_eq!(RoomKey::from_fragment(&link).unwrap(), key);
    }

    #[test]
    fn bad_fragments_get_their_own_errors() {
        let enc = RoomKey::from_bytes([1; 32]).to_fragment()[3..].to_owned();
        assert_eq!(
            RoomKey::from_fragment("https://x.example/j#v=1"),
            Err(Error::MissingRoomKey)
        );
        assert_eq!(RoomKey::from_fragment(""), Err(Error::MissingRoomKey));
        assert_eq!(
            RoomKey::from_fragment(&format!("#k={}", &enc[..42])),
            Err(Error::BadRoomKey {
                detail: "too short"
            })
        );
        assert_eq!(
            RoomKey::from_fragment(&format!("#k={enc}A")),
            Err(Error::BadRoomKey { detail: "too long" })
        );
        let mut bad = enc.clone();
        bad.replace_range(5..6, "+");
        assert_eq!(
            RoomKey::from_fragment(&format!("#k={bad}")),
            Err(Error::BadRoomKey {
                detail: "not base64url"
            })
        );
        // 43 characters carry 258 bits; the last 2 must be zero in a canonical encoding.
        let mut noncanonical = enc.clone();
        noncanonical.replace_range(42..43, "B");
        assert!(RoomKey::from_fragment(&format!("#k={noncanonical}")).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_text_never_panics(text in ".{0,120}", tail in "[A-Za-z0-9_+/=-]{0,60}") {
            let _ = RoomKey::from_fragment(&text);
            let _ = RoomKey::from_fragment(&format!("#k={tail}"));
            let _ = RoomKey::from_fragment(&format!("{text}#k={tail}"));
        }

        #[test]
        fn any_key_round_trips(bytes in proptest::prelude::any::<[u8; 32]>(), junk in "[^#]{0,40}") {
            let key = RoomKey::from_bytes(bytes);
            let link = format!("https://h.example/{junk}{}", key.to_fragment());
            proptest::prop_assert_eq!(RoomKey::from_fragment(&link), Ok(key));
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let key = RoomKey::from_bytes([0xab; 32]);
        assert_eq!(format!("{key:?}"), "RoomKey(<redacted>)");
    }
}
