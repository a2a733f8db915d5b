//! Bassline's signaling: how peers find each other before they talk over WebRTC.
//!
//! Two layers, one concern each:
//! - [`protocol`] (the JSON messages) and [`registry`] (rooms, peers, lifetimes, limits) are
//!   sans-IO: no sockets, no clock, no OS randomness. They build for wasm32 with
//!   `default-features = false`, so a browser client shares the message types.
//! - `server` (feature `server`, on by default) is the axum WebSocket driver that moves frames
//!   and timers for the registry, runs Argon2 off the event loop, and serves `/healthz` and
//!   `/metrics`; `load` is the benchmark client behind `bassline bench signal`.
//!
//! ```
//! use bassline_signal::{decode_client, ClientMessage, ServerMessage, PeerId};
//! let hello = decode_client(br#"{"type":"hello","version":1}"#).unwrap();
//! assert_eq!(hello, ClientMessage::Hello { version: 1, resume: None });
//! let left = ServerMessage::PeerLeft { peer: PeerId(7) };
//! assert_eq!(left.to_json(), r#"{"type":"peer-left","peer":"0000000000000007"}"#);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod mesh;
pub mod protocol;
pub mod registry;
pub mod room_pake;

#[cfg(feature = "server")]
pub mod ice;
#[cfg(feature = "server")]
pub mod load;
#[cfg(feature = "server")]
pub mod password;
#[cfg(feature = "server")]
pub mod server;

pub use error::{Error, ErrorCode};
pub use protocol::{
    ClientMessage, CloseReason, IceServer, MAX_AUTH_CHARS, MAX_FRAME_BYTES, MAX_PAKE_CHARS,
    MAX_RECLAIM_NUMBER, MemberNumber, PROTOCOL_VERSION, Password, PeerId, Reclaim, RejectReason,
    RoomCode, ServerMessage, decode_client,
};
pub use registry::{
    Carried, CommitResult, Config, ConnId, Entropy, InstanceId, JoinTicket, Loaded, Member,
    Metrics, OpId, Output, PasswordHash, Registry, RoomRecord, TokenRecord,
};
