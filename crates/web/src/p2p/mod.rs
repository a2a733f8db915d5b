//! Peer-to-peer mode: the editor's pages talk to each other over WebRTC data channels, the
//! signaling server only introducing them.
//!
//! - [`link`]: join links (`<origin>/#join=CODE&k=KEY`) and typed codes.
//! - [`room`]: the signaling client without I/O (native-testable), mirroring
//!   `bassline_net::p2p` so browsers and native peers share rooms.
//! - `rtc` (wasm32): the one module holding the browser's closures and promises
//!   (RTCPeerConnection, RTCDataChannel, WebSocket).
//! - `driver` (wasm32): the mesh: a signaling WebSocket, one peer connection per member,
//!   reconnection with backoff, ICE restart and redial; it reports links, frames and status
//!   to the UI, which feeds them to the session through [`crate::backend::Backend`].
//! - `trace` (wasm32): timestamps of each step of a link's set-up, collected only when a
//!   benchmark asks (`window.__basslineP2pTrace`).

pub mod link;
pub mod room;

#[cfg(target_arch = "wasm32")]
pub(crate) mod driver;
#[cfg(target_arch = "wasm32")]
pub(crate) mod rtc;
#[cfg(target_arch = "wasm32")]
pub(crate) mod trace;
