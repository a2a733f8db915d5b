//! Bassline's room cryptography: what keeps the signaling server (or whoever sits in front of
//! it) from standing in the middle of a WebRTC connection.
//!
//! - [`RoomKey`]: 256 random bits the host makes per room, carried in the join link's fragment
//!   (`#k=...`), which browsers never send to a server.
//! - [`GuestPake`] / [`HostPake`]: a guest who typed code + password instead runs SPAKE2 with the
//!   host over the signaling channel and ends up with the room key; neither the signaling server
//!   nor an eavesdropper can test passwords offline.
//! - [`SignalKey`]: every offer and answer carries an [`Attestation`], a MAC under a key derived
//!   from the room key over the sender's DTLS fingerprints (read by [`fingerprints`]), both peer
//!   ids, the room code, the kind and a nonce. The receiver refuses an SDP whose fingerprint is
//!   not the one signed ([`Error::FingerprintMismatch`]) and a replay ([`ReplayGuard`]).
//!
//! Sans-IO: nothing here touches a socket or a clock, and randomness (room keys, PAKE seeds,
//! nonces) comes in as arguments; [`os::random`] is the one helper that reads the OS generator,
//! for drivers. Builds for wasm32 (`crypto.getRandomValues` there). `docs/SECURITY.md` is the
//! threat model.
//!
//! ```
//! use bassline_trust::{os, Attestation, Binding, Kind, ReplayGuard, RoomKey};
//! let key = RoomKey::generate().unwrap();
//! let link = format!("https://bassline.example/join/A3B7K9{}", key.to_fragment());
//! let guest_key = RoomKey::from_fragment(&link).unwrap();
//!
//! let sdp = "v=0\r\na=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n";
//! let answer = Binding { room_code: "A3B7K9", from: 2, to: 1, kind: Kind::Answer };
//! let auth = guest_key.signal_key().attest(&answer, sdp, os::random().unwrap()).unwrap().encode();
//! key.signal_key()
//!     .verify(&answer, sdp, &Attestation::decode(&auth).unwrap(), &mut ReplayGuard::default())
//!     .unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod key;
mod limit;
pub mod os;
mod pake;
pub mod room_auth;
mod sdp;
mod share;
mod signal;

pub use error::Error;
pub use key::{ROOM_KEY_LEN, RoomKey};
pub use limit::{DEFAULT_MAX_FAILURES, DEFAULT_WINDOW_MS, GuessLimiter};
pub use pake::{
    GuestPake, HostPake, Joined, PAKE_SEED_LEN, PakeContext, abort_message, pake_message_from_text,
    pake_message_is_hello, pake_message_to_text,
};
pub use sdp::{Fingerprint, MAX_FINGERPRINTS, MAX_SDP_BYTES, fingerprints};
pub use share::{
    MAX_SHARED_PASSWORD, open_password_share, pake_message_is_share, seal_password_share,
};
pub use signal::{Attestation, Binding, Kind, NONCE_LEN, ReplayGuard, SignalKey, TAG_LEN};
