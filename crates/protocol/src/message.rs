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
    /// The origin's Lamport time when it made the request. An origin's clock has passed every
    /// operation it had applied, so a write that saw another always has the later time, and
    /// last-writer-wins by `(ts, peer)` never overrides what a writer saw.
    pub ts: u64,
    #[serde(flatten)]
    pub command: Command,
    /// The origin's signature over ([`crate::signed_bytes`]) its id, time and command: the
    /// host checks it against the origin's registered key before sequencing the operation,
    /// however it arrives (submitted by its origin or forwarded by another member).
    pub sig: crate::Signature,
}

/// What a sequenced operation does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Command {
    /// An edit of the network (or a query, which changes nothing).
    Request(Request),
    /// The host changes what a member may do. Only the host of the epoch that sequences it
    /// can: anyone else's is refused, on every peer alike.
    Permit(Permit),
}

impl Command {
    /// The edit, if this is one.
    pub fn request(&self) -> Option<&Request> {
        match self {
            Command::Request(r) => Some(r),
            Command::Permit(_) => None,
        }
    }
}

impl From<Request> for Command {
    fn from(r: Request) -> Self {
        Command::Request(r)
    }
}

/// What a member may do in the room.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Edit, and stand for host when the host is gone.
    #[default]
    ReadWrite,
    /// See everything, change nothing, never host.
    ReadOnly,
    /// Out of the room: served nothing, and its operations are denied.
    Removed,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Permission::ReadWrite => "read-write",
            Permission::ReadOnly => "read-only",
            Permission::Removed => "removed",
        })
    }
}

/// A change of permission: one member's (`peer`), or with no `peer` everyone's who is not
/// named (members who join later included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<PeerId>,
    pub permission: Permission,
}

/// Who may do what: replicated through the sequence like the network, so every peer decides
/// every operation alike and a new host enforces what the old one set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    /// What members not listed may do (never `Removed`: a room cannot turn everyone away).
    #[serde(default, skip_serializing_if = "is_default")]
    pub default: Permission,
    /// Members with a permission of their own, by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<(PeerId, Permission)>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl Permissions {
    /// What `peer` may do.
    pub fn of(&self, peer: PeerId) -> Permission {
        match self.members.binary_search_by_key(&peer, |(p, _)| *p) {
            Ok(i) => self.members[i].1,
            Err(_) => self.default,
        }
    }

    /// Applies a permit (kept sorted by member, and without entries equal to the default).
    pub fn apply(&mut self, permit: Permit) {
        match permit.peer {
            None => {
                self.default = permit.permission;
                self.members.retain(|(_, p)| *p != permit.permission);
            }
            Some(peer) => {
                match self.members.binary_search_by_key(&peer, |(p, _)| *p) {
                    Ok(i) => self.members[i].1 = permit.permission,
                    Err(i) => self.members.insert(i, (peer, permit.permission)),
                }
                let default = self.default;
                self.members.retain(|(_, p)| *p != default);
            }
        }
    }

    /// Whether the table is well formed: members sorted, unique, none equal to the default,
    /// and a default that is not `Removed`.
    pub fn is_well_formed(&self) -> bool {
        self.default != Permission::Removed
            && self.members.windows(2).all(|w| w[0].0 < w[1].0)
            && self.members.iter().all(|(_, p)| *p != self.default)
    }
}

/// How a sequenced operation was decided (the same on every peer, at the same position).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Decision {
    Applied,
    /// A write to an accept-last contact that lost to a later write (`by`, by
    /// `(ts, peer)`) already applied; it has no effect.
    Superseded {
        by: OpId,
    },
    /// The request was invalid against the state at its position (for example its contact was
    /// removed by a concurrent edit).
    Refused {
        reason: String,
    },
    /// Its origin was not allowed to edit at its position (`permission` is what it had).
    Denied {
        permission: Permission,
    },
}

/// A decided operation, as kept in every peer's log and shipped with a full state: enough to
/// serve catch-up, to re-submit it if its lineage loses, and to tell its origin its fate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The epoch of the host that sequenced it.
    pub epoch: Epoch,
    pub op: Sequenced,
    pub decision: Decision,
}

/// The last write applied to one accept-last contact, kept by every peer so any of them can
/// take over as host and keep resolving concurrent writes the same way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writer {
    pub contact: Id,
    pub op: OpId,
    pub ts: u64,
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
    /// The decided operations not yet known to every member of the room, oldest first: the
    /// receiver keeps them to re-submit if this lineage loses a partition, and reads its own
    /// operations' fates from them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<LogEntry>,
    /// Where each of the latest epochs of this lineage's history begins: (epoch, the sequence
    /// number of its first operation), oldest first. A position (epoch, seq) belongs to this
    /// history if its epoch is listed and seq falls in that epoch's stretch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<(Epoch, u64)>,
    /// Who may do what at `position`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub permissions: Permissions,
    /// Every member's registered public key at `position`, by peer id (sorted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<(PeerId, crate::PublicKey)>,
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
    /// Whose presence this is when a host passes it on for a peer the receiver has no link to
    /// (remote mode, where clients reach each other only through the server); `None`: the
    /// sender's own. A relayed presence with no group says that peer left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<PeerId>,
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
        /// The guest's public key, which the host registers for the sender of this request
        /// (only for the peer on this link, and only if it has none yet).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<crate::PublicKey>,
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
        request: Request,
        /// The sender's signature over the operation (see [`crate::signed_bytes`]).
        sig: crate::Signature,
    },
    /// Host to guests: requests in sequence (the plan's "change batch"), going on from `base`
    /// (the host's position before the first of them). Every peer decides each one the same
    /// way the host did (last-writer-wins and validation are deterministic), so the decisions
    /// need no separate notice (the plan's "response"). A guest applies a batch only where its
    /// own position is `base` or a position of the same lineage past it: positions name a
    /// lineage's history, so a batch of another lineage is never mixed in. Guest to host: the
    /// operations it saw sequenced in a lineage that lost, to sequence again (`base` unused).
    Batch {
        epoch: Epoch,
        base: Position,
        ops: Vec<Sequenced>,
        /// Guest to host only: the public keys of the operations' origins, as the forwarder's
        /// lineage registered them. The host uses one only for an origin it has no key for
        /// (an origin its own lineage never met); a known origin's key never changes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        keys: Vec<(PeerId, crate::PublicKey)>,
    },
    /// Every peer to every peer, periodically, on the unreliable channel.
    Heartbeat {
        position: Position,
        /// The state hash at `position`, combined with the last writers (which decide future
        /// writes, so a difference there is a divergence too).
        hash: StateHash,
        /// The host the sender follows and holds the state of (itself when hosting), and that
        /// host's epoch.
        host: Option<PeerId>,
        epoch: Epoch,
        /// A guest's signature over [`crate::vouch_bytes`] of itself and `epoch`: its host
        /// shows it as evidence of being followed. Absent from a host's own heartbeat.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vouch: Option<crate::Signature>,
    },
    /// Guest to host: at the same position our hashes differ; here are mine per group.
    HashMismatch {
        position: Position,
        groups: Vec<(Id, StateHash)>,
    },
    /// Host to guest: the groups that differ at `position`, as the host has them there (each
    /// group's own contents, parents first), the groups the guest should not have, every last
    /// writer, and the permissions.
    Repair {
        position: Position,
        groups: Vec<(Id, bassline_core::GroupDocument)>,
        remove: Vec<Id>,
        writers: Vec<Writer>,
        #[serde(default, skip_serializing_if = "is_default")]
        permissions: Permissions,
        /// Every registered key (the key table is replicated state, like the permissions).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        keys: Vec<(PeerId, crate::PublicKey)>,
    },
    /// A peer that found no host proposes `epoch.host` (the most up-to-date peer it can reach)
    /// to lead `epoch`.
    Candidate {
        epoch: Epoch,
    },
    /// A host announces the epoch it leads, and whether any guest follows it (a host with
    /// followers outranks one without, whatever their epochs: a peer cut off alone never takes
    /// the room over when it comes back). `led` is one follower's signed word for it, not the
    /// host's own: a member who claims followers it does not have ranks as having none.
    HostAnnounce {
        epoch: Epoch,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        led: Option<crate::Vouch>,
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
    /// Host to guest: a request the host will not act on, and why. A guest that is told to
    /// wait sends it again after `retry_ms` (nothing is lost); the others are final.
    Refused {
        request: Refused,
        reason: Refusal,
    },
}

/// The request a [`Message::Refused`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Refused {
    /// A submit, and every one after it (the host takes each origin's edits in order).
    Submit {
        op: u64,
    },
    StateRequest,
    HashMismatch,
    /// Operations a guest forwarded from a lineage that lost (a batch to the host): the ones
    /// the host did not sequence come again after the wait.
    Forwarded,
}

/// Why the host refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Refusal {
    /// Too many such requests too quickly: send it again after `retry_ms` milliseconds.
    RateLimited { retry_ms: u64 },
    /// The request is larger than the host takes (`size` units of `max`: bytes for a submit,
    /// groups for a state request's or a mismatch's list).
    TooLarge { size: u64, max: u64 },
    /// The sender was removed from the room.
    Removed,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::RateLimited { retry_ms } => {
                write!(f, "too many requests: try again in {retry_ms} ms")
            }
            Refusal::TooLarge { size, max } => {
                write!(f, "the request is too large ({size}, at most {max})")
            }
            Refusal::Removed => f.write_str("the host removed this peer from the room"),
        }
    }
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
            Message::Batch { .. } => "batch",
            Message::Heartbeat { .. } => "heartbeat",
            Message::HashMismatch { .. } => "hash-mismatch",
            Message::Repair { .. } => "repair",
            Message::Candidate { .. } => "candidate",
            Message::HostAnnounce { .. } => "host-announce",
            Message::HostQuery { .. } => "host-query",
            Message::HostSeen { .. } => "host-seen",
            Message::Presence(_) => "presence",
            Message::Refused { .. } => "refused",
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
