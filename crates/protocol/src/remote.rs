//! Remote mode's framing: how session frames travel over the one WebSocket between a client
//! (the browser editor, or any `bassline-net` client) and `bassline serve` at `/remote`.
//!
//! The server speaks first, one text message: a [`Welcome`] naming the client's peer id, the
//! server's, and a token that gets the same id back on reconnecting (`/remote?resume=TOKEN`).
//! After that every message, both ways, is binary: one byte naming the channel the frame
//! belongs to ([`RELIABLE`] or [`UNRELIABLE`]), then one frame as the codec writes it. Both
//! channels share the one ordered connection; the tag keeps their frames apart, since each
//! channel has its own reassembly. `docs/PROTOCOL.md` ("Remote mode") has examples that
//! `tests/examples.rs` decodes.
//!
//! ```
//! use bassline_protocol::remote::{RELIABLE, tag, untag};
//! let message = tag(RELIABLE, b"\x02\x00frame");
//! assert_eq!(message[0], RELIABLE);
//! assert_eq!(untag(&message), Some((RELIABLE, &b"\x02\x00frame"[..])));
//! assert_eq!(untag(b"\x07junk"), None);
//! ```

use serde::{Deserialize, Serialize};

use crate::PeerId;

/// The tag of a frame of the reliable, ordered channel (state, operations, elections).
pub const RELIABLE: u8 = 0;
/// The tag of a frame of the unreliable channel (heartbeats, presence).
pub const UNRELIABLE: u8 = 1;

/// The server's first message on a remote-mode connection (text, JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "welcome")]
pub struct Welcome {
    /// The client's peer id in the session.
    pub peer: PeerId,
    /// The server's peer id: the session's permanent host.
    pub host: PeerId,
    /// Give it back as `?resume=` to keep the same peer id after reconnecting.
    pub token: String,
    /// The token given was known, and `peer` is the id it was issued with. A client that goes
    /// on with the same session simply carries on; one that starts a new session under that
    /// id (a reloaded page, a restarted process) must say so to its engine
    /// (`Config::reused_id`), since an earlier session may have used it.
    #[serde(default)]
    pub resumed: bool,
}

/// A binary message: the channel tag, then the frame.
pub fn tag(channel: u8, frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len() + 1);
    out.push(channel);
    out.extend_from_slice(frame);
    out
}

/// The channel tag and frame of a binary message; `None` for an empty message or an unknown
/// tag (a peer that sends one ends its connection).
pub fn untag(message: &[u8]) -> Option<(u8, &[u8])> {
    match message.split_first()? {
        (&c @ (RELIABLE | UNRELIABLE), rest) => Some((c, rest)),
        _ => None,
    }
}
