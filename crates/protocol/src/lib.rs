//! Bassline's wire protocol: the envelope, every message, the frame codec, and remote mode's
//! framing over WebSocket ([`remote`]).
//!
//! This crate has no I/O and builds for wasm32. The wire format is described, with examples the
//! tests decode, in `docs/PROTOCOL.md`.
//!
//! ```
//! use bassline_core::{Request, Value, id};
//! use bassline_protocol::{Codec, Envelope, Message, Reassembler};
//! let edit = Envelope { id: 3, ts: 62, from: 3, message: Message::Submit {
//!     op: 13, ts: 62,
//!     request: Request::UpdateContent { contact: id!("c12"), value: Value::from(42.0) },
//!     sig: bassline_protocol::Signature([7; 64]),
//! }};
//! let frames = Codec::default().encode(&edit).unwrap();
//! assert_eq!(frames.len(), 1);
//! // 66 bytes of those are the origin's signature.
//! assert!(frames[0].len() < 32 + 66, "a single content update is small on the wire");
//! let mut rx = Reassembler::new(Codec::default());
//! assert_eq!(rx.push(&frames[0]).unwrap(), Some(edit));
//! ```

#![forbid(unsafe_code)]

/// Not part of the API: generated data for the benchmarks.
#[doc(hidden)]
pub mod bench_data;
mod codec;
mod identity;
mod message;
mod msgpack;
pub mod remote;

pub use codec::{COMPRESS_ABOVE, Codec, Format, MAX_FRAME, Reassembler, VERSION};
pub use identity::{PublicKey, Signature, Vouch, signed_bytes, vouch_bytes};
pub use message::{
    Command, Decision, Envelope, Epoch, LogEntry, Message, OpId, PeerId, Permission, Permissions,
    Permit, Position, Presence, Refusal, Refused, Sequenced, StateSync, Writer,
};

/// Why bytes from a peer could not be decoded (or a message could not be encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The frame ended before its header or body did.
    #[error("frame truncated")]
    Truncated,
    /// A frame from a newer or older protocol version.
    #[error(
        "protocol version {found} is not supported (this peer speaks {supported}); update Bassline on both sides"
    )]
    UnsupportedVersion { found: u8, supported: u8 },
    /// A frame kind this build does not know.
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    /// A message larger than the configured limit.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// The frame's contents do not decode.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// Chunks arrived out of order, interleaved with another message, or inconsistent with
    /// their first chunk; the partial message was dropped.
    #[error("bad chunk sequence: {0}; the partial message was dropped")]
    BadChunk(String),
    /// The message could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(String),
}
