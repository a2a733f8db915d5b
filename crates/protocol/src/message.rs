//! The peer-to-peer messages. Every message travels inside an [`Envelope`].
//!
//! Sessions are host-sequenced: guests submit requests, the host gives each one a place in one
//! order (its [`Position`]) and broadcasts the sequenced requests; every peer applies them in that
//! order, so every peer runs the same propagation and reaches the same state (checked by
//! heartbeat hashes).

use bassline_core::{Id, Request, StateDocument, StateHash};
use serde::{Deserialize, Serialize};

/// A peer's id within one session. Small numbers keep frames short.
pub type PeerId = u64;

/// A host's term. A new host takes a higher number; two hosts elected on either side of a
/// partition may pick the same number, so the host id breaks the tie.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Epoch {
    pub number: u64,
    pub host: PeerId,
}

/// Where an operation stands in the sequence. `seq` counts on across epochs within one line of
/// hosts, so within a lineage `seq` alone orders operations.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    pub epoch: Epoch,
    pub seq: u64,
}

/// An operation's id: its origin peer and that peer's counter. Counters start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId {
    pub peer: PeerId,
    pub counter: u64,
}

/// A request the host has placed in the sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sequenced {
    pub seq: u64,
    pub op: OpId,
    /// The origin's Lamport time when it made the request (last-writer-wins order).
    pub ts: u64,
    /// The last sequence number the origin had applied when it made the request: what it had
    /// seen, so the host can tell a concurrent write from a later one.
    pub seen: u64,
    pub request: Request,
}

/// How a sequenced operation was decided (the same on every peer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Decision {
    /// Applied at this sequence number.
    Applied { seq: u64 },
    /// A concurrent write to the same contact won by last-writer-wins; this one has no effect.
    Superseded { seq: u64 },
    /// The request was invalid against the host's state (for example its contact was removed
    /// by a concurrent edit).
    Refused { seq: u64, reason: String },
}

/// The last direct write to one contact, kept by every peer so any of them can take over as
/// host and keep resolving concurrent writes the same way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writer {
    pub contact: Id,
    pub op: OpId,
    pub ts: u64,
    pub seq: u64,
}

/// A full copy of the host's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateSync {
    pub position: Position,
    /// A first part: only the groups the guest asked for first (whole), their ancestors' own
    /// contents, and the other subgroups as stubs with their boundary contacts. The whole state
    /// follows right behind; until it arrives the guest shows this part read-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// The highest counter applied per origin (a vector clock of decided operations).
    pub applied: Vec<(PeerId, u64)>,
    pub writers: Vec<Writer>,
    pub document: StateDocument,
}

/// Presence: who is here and what they look at. Sent on the unreliable channel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    pub name: Option<String>,
    /// The group the peer is looking at.
    pub group: Option<Id>,
    pub cursor: Option<(f32, f32)>,
    pub selection: Vec<Id>,
}

/// Every peer-to-peer message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Message {
    /// Guest to host: send me the state. With `have`, the guest holds the state up to that
    /// position and the host may send only what came after (catch-up).
    StateRequest {
        have: Option<Position>,
        /// Groups to send first (the ones on screen), when the whole state has to be sent.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        first: Vec<Id>,
    },
    /// Host to guest: the whole state.
    StateSync(Box<StateSync>),
    /// Guest to host: state received and applied up to here.
    Ack {
        position: Position,
    },
    /// Guest to host: please sequence this request (the plan's "request").
    Submit {
        op: u64,
        ts: u64,
        seen: u64,
        request: Request,
    },
    /// Host to the origin of an operation: what became of it (the plan's "response").
    Outcome {
        op: u64,
        decision: Decision,
    },
    /// Host to guests: requests in sequence (the plan's "change batch"). Every peer decides
    /// each one the same way the host did (last-writer-wins and validation are deterministic),
    /// so superseded and refused operations need no separate notice.
    Batch {
        epoch: Epoch,
        ops: Vec<Sequenced>,
    },
    /// Every peer to every peer, periodically, on the unreliable channel.
    Heartbeat {
        position: Position,
        hash: StateHash,
        host: Option<PeerId>,
    },
    /// Guest to host: at the same position our hashes differ; here are mine per group.
    HashMismatch {
        position: Position,
        groups: Vec<(Id, StateHash)>,
    },
    /// Host to guest: the groups that differ, as the host has them (whole subtrees), and the
    /// groups the guest should not have.
    Repair {
        position: Position,
        groups: Vec<(Id, bassline_core::GroupDocument)>,
        remove: Vec<Id>,
    },
    /// A peer that found no host proposes itself (the most up-to-date peer it can reach).
    Candidate {
        epoch: Epoch,
        position: Position,
    },
    /// The new host announces its epoch and the position its state starts from.
    HostAnnounce {
        epoch: Epoch,
        base: Position,
    },
    /// A peer that lost its link to the host asks the others whether they still see it.
    HostQuery {
        host: PeerId,
    },
    /// Answer to a query: whether the host is alive as seen from here.
    HostSeen {
        host: PeerId,
        alive: bool,
    },
    Presence(Presence),
}

impl Message {
    /// Whether the message may travel on the unreliable channel.
    pub fn is_unreliable(&self) -> bool {
        matches!(self, Message::Heartbeat { .. } | Message::Presence(_))
    }

    /// The message's kebab-case type name, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::StateRequest { .. } => "state-request",
            Message::StateSync(_) => "state-sync",
            Message::Ack { .. } => "ack",
            Message::Submit { .. } => "submit",
            Message::Outcome { .. } => "outcome",
            Message::Batch { .. } => "batch",
            Message::Heartbeat { .. } => "heartbeat",
            Message::HashMismatch { .. } => "hash-mismatch",
            Message::Repair { .. } => "repair",
            Message::Candidate { .. } => "candidate",
            Message::HostAnnounce { .. } => "host-announce",
            Message::HostQuery { .. } => "host-query",
            Message::HostSeen { .. } => "host-seen",
            Message::Presence(_) => "presence",
        }
    }
}

/// The envelope around every message (the plan's `MessageEnvelope`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Per-sender message counter.
    pub id: u64,
    /// The sender's Lamport time.
    pub ts: u64,
    pub from: PeerId,
    pub message: Message,
}
