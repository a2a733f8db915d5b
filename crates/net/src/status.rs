//! What the driver tells its user: events as they happen, and the status as it is now.

use bassline_core::Change;
use bassline_sync::{Decision, OpId, PeerId, Permission, Position, Role};
use serde::Serialize;

use crate::link::{Path, TransportStatus};

/// The session's status now: own role, each peer's link, and the transport's connection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Status {
    /// This peer's id in the session (its member number), once known.
    pub me: Option<PeerId>,
    /// "host", "guest", "electing", or "starting" before the session exists.
    pub role: &'static str,
    /// The epoch number (grows with every host change).
    pub epoch: u64,
    /// The position of the last sequenced operation applied here (it moves with every
    /// decided edit, even one that changed nothing).
    pub position: Position,
    /// The host this peer follows.
    pub host: Option<PeerId>,
    /// Edits are refused for now: no host leads, or this peer has no state yet.
    pub read_only: bool,
    /// This peer holds its host's state.
    pub synced: bool,
    /// Own edits awaiting the host's decision.
    pub pending: usize,
    /// What the host lets this peer do (a read-only member is read-only for good, not for a
    /// while: `read_only` is true too).
    pub permission: Permission,
    /// The state hash, filled in when asked for (computing it costs a pass over the network).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Every peer this one has had a link to.
    pub peers: Vec<PeerStatus>,
    /// The connection to the signaling or remote server.
    pub connection: TransportStatus,
}

/// One peer as seen from here.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerStatus {
    pub peer: PeerId,
    pub state: LinkState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// What the host lets that peer do.
    pub permission: Permission,
}

/// Whether a link to a peer is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkState {
    Connected,
    Disconnected,
    /// The peer left the room for good.
    Left,
}

/// The name of a role, as printed.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Host => "host",
        Role::Guest => "guest",
        Role::Electing => "electing",
    }
}

/// Something that happened, in the order it happened. Serialized as one JSON object with an
/// `"event"` field (what `bassline host --json` prints).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum NetEvent {
    /// The room this peer is in (P2P).
    Room { code: String },
    /// This peer's role or the epoch changed.
    Role {
        role: &'static str,
        epoch: u64,
        host: Option<PeerId>,
    },
    /// Edits are refused (true) or accepted again (false). `because`: the host made this peer
    /// read-only or removed it (absent while it is only waiting for a host or the state).
    ReadOnly {
        value: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        because: Option<Permission>,
    },
    /// This peer now holds its host's state, with this hash.
    Synced { hash: String },
    /// A link to a peer opened or closed.
    Peer {
        peer: PeerId,
        state: LinkState,
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<Path>,
    },
    /// This peer's state was replaced by a whole copy of the host's (joining, or catching up
    /// from further back than the host's log reaches).
    Replaced,
    /// Changes to the network, in order.
    Changes { changes: Vec<Change> },
    /// One of this peer's own edits was decided, at `position` of the lineage this peer
    /// follows (told again if another lineage decides it after a partition).
    Decided {
        op: OpId,
        position: Position,
        decision: Decision,
    },
    /// The connection to the signaling or remote server changed.
    Connection { status: TransportStatus },
    /// Something went wrong; `message` says what to do. `fatal`: the session has ended.
    Error {
        code: String,
        message: String,
        fatal: bool,
        /// The peer it is about, when it is about one (`signaling-tampered`).
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<PeerId>,
    },
    /// The host changed what `peer` may do (`None`: everyone without a permission of their
    /// own). A state that arrives whole brings its permissions without this event: read the
    /// status's `permission` fields.
    Permission {
        peer: Option<PeerId>,
        permission: Permission,
    },
    /// A peer sent something that made no sense; it was ignored.
    Misbehaved { peer: PeerId, reason: String },
}

impl NetEvent {
    /// The error event for `e`.
    pub fn error(e: &crate::Error, fatal: bool) -> Self {
        let code = match e {
            crate::Error::Refused { code, .. } => code.clone(),
            other => other.code().into(),
        };
        let peer = match e {
            crate::Error::Tampered { peer, .. } => Some(*peer),
            _ => None,
        };
        NetEvent::Error {
            code,
            message: e.to_string(),
            fatal,
            peer,
        }
    }
}
