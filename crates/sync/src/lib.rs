//! Collaboration sessions without I/O: one [`Session`] per peer, driven by its caller.
//!
//! The session never reads a clock, opens a socket or draws an unseeded random number. The
//! driver feeds it inputs (`handle_*`, each with the current time) and carries out its outputs
//! (`poll_*`): frames to send, events for the UI, and the next time it wants to be woken.
//!
//! ```
//! use std::time::Duration;
//! use bassline_sync::{Config, Session};
//! let mut host = Session::host(1, Config::default(), bassline_core::Network::new());
//! let mut guest = Session::guest(2, Some(1), Config::default());
//! let t = Duration::ZERO;
//! host.handle_connected(t, 2);
//! guest.handle_connected(t, 1);
//! // Shuttle frames until both sides are quiet.
//! for _ in 0..10 {
//!     while let Some(tx) = host.poll_transmit() { guest.handle_receive(t, 1, tx.channel, &tx.frame); }
//!     while let Some(tx) = guest.poll_transmit() { host.handle_receive(t, 2, tx.channel, &tx.frame); }
//! }
//! assert!(guest.is_synced());
//! assert_eq!(guest.network().state_hash(), host.network().state_hash());
//! ```
//!
//! The rules (docs/PROTOCOL.md, "Session rules"): the host gives every edit a place in one
//! sequence and every peer applies that sequence with the same engine; a write to an
//! accept-last contact loses to a later write by `(Lamport time, peer)`; every edit ends with a
//! decision its origin is told; the operations a lineage of hosts decided that another lineage
//! lacks are kept until every member has them, and submitted again when lineages meet.

mod edits;
mod election;
mod guest;
mod host;
mod identity;
mod replica;
mod session;

use std::sync::Arc;
use std::time::Duration;

use bassline_core::{Change, Id, StateHash};
pub use bassline_protocol::{
    Codec, Decision, Epoch, OpId, PeerId, Permission, Permissions, Position, Presence, Refusal,
    Refused,
};
pub use identity::{Ed25519Identity, Identity};
pub use session::{HostSnapshot, LocalOutcome, Role, Session, Stats};

/// Session settings. Every peer of a session must use the same engine settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long the host gathers sequenced operations before broadcasting them when they come
    /// close together (an edit after a quiet window goes out at once).
    pub batch_window: Duration,
    /// How often every peer sends a heartbeat.
    pub heartbeat_interval: Duration,
    /// Silence after which the host is suspected lost; also how long a peer with nobody else
    /// to ask waits for its host's link to come back before standing itself.
    pub host_timeout: Duration,
    /// How long to wait for other peers to say whether they still see the host.
    pub query_timeout: Duration,
    /// How long to wait for the elected peer's announcement before electing again.
    pub election_timeout: Duration,
    /// First delay before re-requesting state; doubles (with jitter) up to `retry_max`. A
    /// request is lost only with its link, which a new request follows anyway, so this is a
    /// safety net: short enough to recover, long enough not to repeat a large state being sent.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Decided operations kept for catch-up once every member has them. Operations some
    /// member may still lack are kept however many there are (see [`Stats::log`]).
    pub log_cap: usize,
    /// Own operations awaiting the host's decision; more are refused.
    pub pending_cap: usize,
    /// Seed for retry jitter.
    pub seed: u64,
    pub codec: Codec,
    /// Whether this peer may become host. Remote mode: the server is `Permanent`, its
    /// clients `Never`.
    pub candidacy: Candidacy,
    /// This peer id may have been used by an earlier session (a restart that kept its id, a
    /// reloaded page that resumed its place). Its edits are then numbered from a random block
    /// of counters, so none can share an id with an edit of the earlier session still on its
    /// way (decided on the far side of a partition), and its epochs start well above any it
    /// sees. Costs a few bytes per edit; leave it off for a fresh id.
    pub reused_id: bool,
    /// What the host takes from each guest (a member who misbehaves cannot make it do
    /// unbounded work). Every peer of a session should use the same limits: a guest checks
    /// its own edits against the size limit before sending them.
    pub limits: Limits,
    /// This peer's signing identity: every operation it makes carries its signature, and as
    /// host it checks every operation's signature against its origin's key before sequencing
    /// it. The default is a fixed key every default config shares (examples and tests only):
    /// real drivers set `Arc::new(Ed25519Identity::from_secret(<32 random bytes>))`, kept for
    /// as long as the peer keeps its id.
    pub identity: Arc<dyn Identity>,
    /// Deliberate bugs, for proving that the simulator catches them. Never set in production.
    #[doc(hidden)]
    pub fault: Option<Fault>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            batch_window: Duration::from_millis(16),
            heartbeat_interval: Duration::from_millis(500),
            host_timeout: Duration::from_millis(2000),
            query_timeout: Duration::from_millis(400),
            election_timeout: Duration::from_millis(1500),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(5),
            log_cap: 10_000,
            pending_cap: 10_000,
            seed: 0,
            codec: Codec::default(),
            candidacy: Candidacy::Stand,
            reused_id: false,
            limits: Limits::default(),
            identity: identity::default_identity(),
            fault: None,
        }
    }
}

/// How often a rate-limited request may come: `burst` at once, then `per_second` on average.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// The host's limits on what one guest may ask of it. A request over a rate limit is refused
/// with the time to wait (the guest sends it again then; nothing is lost), one over a size
/// limit for good; either way the host reports the guest ([`Event::PeerMisbehaved`]).
/// The defaults are far above what an honest editor sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Edits submitted (each is sequenced and broadcast).
    pub submits: Rate,
    /// State requests (each may send the whole state).
    pub state_requests: Rate,
    /// Reported divergences (each compares every group and answers with a repair).
    pub hash_mismatches: Rate,
    /// The largest submitted edit, in bytes as received.
    pub max_submit_bytes: usize,
    /// The most groups a state request's `first` or a divergence report may list.
    pub max_listed_groups: usize,
    /// Presence updates taken from one peer (a permanent host passes each on to every other
    /// client, and every receiver redraws). Beyond it they are dropped, not refused: presence
    /// is replaced by the next update anyway. An honest editor sends at most 20 a second.
    pub presence: Rate,
    /// The most ids a presence's selection may name (an honest editor sends at most 200).
    pub max_presence_selection: usize,
    /// Operations forwarded from a lineage that lost: each one the host checks takes a token
    /// (checking costs a signature verification, decided copies included); the rest of a
    /// batch beyond the bucket is refused for now and comes again after the wait.
    pub forwarded: Rate,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            submits: Rate {
                per_second: 500,
                burst: 2_000,
            },
            state_requests: Rate {
                per_second: 4,
                burst: 40,
            },
            hash_mismatches: Rate {
                per_second: 2,
                burst: 20,
            },
            max_submit_bytes: 16 << 20,
            max_listed_groups: 100_000,
            presence: Rate {
                per_second: 40,
                burst: 80,
            },
            max_presence_selection: 1_000,
            forwarded: Rate {
                per_second: 2_000,
                burst: 10_000,
            },
        }
    }
}

impl Limits {
    pub(crate) fn rate(&self, bucket: session::Bucket) -> Rate {
        match bucket {
            session::Bucket::Submit => self.submits,
            session::Bucket::StateRequest => self.state_requests,
            session::Bucket::HashMismatch => self.hash_mismatches,
            session::Bucket::Forwarded => self.forwarded,
        }
    }
}

/// Whether a peer may lead the session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Candidacy {
    /// Stands for election when the host is lost (peer-to-peer rooms).
    #[default]
    Stand,
    /// Never becomes host: when the host is lost it waits, read-only, for a host to return
    /// (a remote-mode client).
    Never,
    /// The host for good: never steps down, and refuses other peers' claims to lead (the
    /// remote-mode server).
    Permanent,
}

/// A deliberate bug to inject, each one a way the engine could lose or garble a user's edit.
/// The simulator must catch every one, for the right reason (crates/sim/tests/seeds.rs).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// The host sequences a re-sent operation again instead of recognising it.
    SkipDedup,
    /// A guest forgets its pending edits when it re-sends them to a new host.
    DropPendingOnResend,
    /// A peer that becomes host forgets its own pending edits.
    HostDropsOwnPending,
    /// Orphans are re-submitted sorted by (peer, counter) instead of in Lamport order.
    SortOrphans,
    /// Installing a full state empties the log, so what came with it is never re-submitted.
    ForgetLogOnInstall,
    /// Writes to merge contacts are decided by last-writer-wins like accept-last ones.
    LwwIgnoresBlend,
    /// Requests without ids travel as they are, so every replica makes up its own.
    NoIdAssignment,
    /// A peer does not move its Lamport clock past the operations it applies.
    StaleLamport,
    /// Guests decide last-writer-wins without the last writers they were sent.
    GuestForgetsWriters,
    /// Orphans beyond the log cap are dropped.
    TruncateOrphans,
    /// A peer that comes back under its id starts its counter afresh.
    CounterRestarts,
    /// A host ignores heartbeats that name another host.
    IgnoreNamedHosts,
    /// A host cut off alone ranks like one with followers.
    SoloOutranks,
    /// Hashes are compared only when a guest is at the host's very position.
    CompareOnlyWhenQuiet,
    /// A repair leaves the last writers as they are.
    RepairSkipsWriters,
    /// Edits of members who may not edit are applied anyway.
    IgnorePermissions,
    /// A permit is applied whoever issued it.
    PermitsFromAnyone,
    /// The host takes every submit, however many.
    NoSubmitLimit,
    /// A member who may not edit is followed when it claims to lead.
    FollowReadOnly,
    /// The host sequences operations without checking their origins' signatures.
    SkipSignatureCheck,
    /// A host's claim to have followers is believed without a follower's word that holds.
    TrustClaimedFollowers,
}

impl Fault {
    pub const ALL: [Fault; 21] = [
        Fault::SkipDedup,
        Fault::DropPendingOnResend,
        Fault::HostDropsOwnPending,
        Fault::SortOrphans,
        Fault::ForgetLogOnInstall,
        Fault::LwwIgnoresBlend,
        Fault::NoIdAssignment,
        Fault::StaleLamport,
        Fault::GuestForgetsWriters,
        Fault::TruncateOrphans,
        Fault::CounterRestarts,
        Fault::IgnoreNamedHosts,
        Fault::SoloOutranks,
        Fault::CompareOnlyWhenQuiet,
        Fault::RepairSkipsWriters,
        Fault::IgnorePermissions,
        Fault::PermitsFromAnyone,
        Fault::NoSubmitLimit,
        Fault::FollowReadOnly,
        Fault::SkipSignatureCheck,
        Fault::TrustClaimedFollowers,
    ];

    /// The kebab-case name used on the simulator's command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::SkipDedup => "skip-dedup",
            Fault::DropPendingOnResend => "drop-pending-on-resend",
            Fault::HostDropsOwnPending => "host-drops-own-pending",
            Fault::SortOrphans => "sort-orphans",
            Fault::ForgetLogOnInstall => "forget-log-on-install",
            Fault::LwwIgnoresBlend => "lww-ignores-blend",
            Fault::NoIdAssignment => "no-id-assignment",
            Fault::StaleLamport => "stale-lamport",
            Fault::GuestForgetsWriters => "guest-forgets-writers",
            Fault::TruncateOrphans => "truncate-orphans",
            Fault::CounterRestarts => "counter-restarts",
            Fault::IgnoreNamedHosts => "ignore-named-hosts",
            Fault::SoloOutranks => "solo-outranks",
            Fault::CompareOnlyWhenQuiet => "compare-only-when-quiet",
            Fault::RepairSkipsWriters => "repair-skips-writers",
            Fault::IgnorePermissions => "ignore-permissions",
            Fault::PermitsFromAnyone => "permits-from-anyone",
            Fault::NoSubmitLimit => "no-submit-limit",
            Fault::FollowReadOnly => "follow-read-only",
            Fault::SkipSignatureCheck => "skip-signature-check",
            Fault::TrustClaimedFollowers => "trust-claimed-followers",
        }
    }

    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Which data channel a frame goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// Ordered and reliable: state, operations, elections.
    Reliable = 0,
    /// Unordered, no retransmits: heartbeats and presence.
    Unreliable = 1,
}

/// A frame to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: PeerId,
    pub channel: Channel,
    pub frame: Vec<u8>,
}

/// What the session tells its UI and driver.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Changes to show, in order (including taking back and re-applying tentative edits).
    Changes(Vec<Change>),
    /// Whether edits are refused for now (no host, or not yet synced).
    ReadOnly(bool),
    /// A (new) host leads the session (this peer included, when it takes over).
    HostChanged { host: PeerId, epoch: Epoch },
    /// This peer now leads `epoch`, its sequence going on from `base` (its position when it
    /// took over).
    BecameHost { epoch: Epoch, base: Position },
    /// Part of the host's state is shown (the focused groups whole, the rest as stubs); the
    /// whole follows. Read-only until then.
    PartialState { first: Vec<Id> },
    /// This peer's state was replaced by a full copy of the host's, at `position`.
    StateReplaced { position: Position },
    /// A sequenced operation was applied here (every peer reports every operation it applies
    /// from the sequence, once per position).
    Applied {
        op: OpId,
        ts: u64,
        position: Position,
        decision: Decision,
    },
    /// What became of one of this peer's own edits, at the position where the lineage this
    /// peer follows decided it. Told once per lineage: an edit decided on the losing side of a
    /// partition is decided again (maybe differently) when the sides meet.
    Decided {
        op: OpId,
        position: Position,
        decision: Decision,
    },
    /// At `position` this peer's state differed from the host's; a repair was asked for.
    /// Never happens without a bug or a corrupted state.
    Diverged {
        position: Position,
        host_hash: StateHash,
    },
    /// Another peer's presence (name, group in view, cursor, selection).
    Presence {
        peer: PeerId,
        presence: bassline_protocol::Presence,
    },
    /// A peer sent something that could not be decoded or made no sense, or asked more of
    /// the host than its limits allow; it was dropped or refused.
    PeerMisbehaved { peer: PeerId, reason: String },
    /// What `peer` may do changed (`None`: every member without a permission of their own),
    /// by a permit the sequence applied here. This peer's own permission is
    /// [`Session::permission`] of its id. (A state installed from the host brings its table
    /// without these events: read [`Session::permissions`] on [`Event::StateReplaced`].)
    PermissionChanged {
        peer: Option<PeerId>,
        permission: Permission,
    },
    /// The host refused a request of this peer's (not an edit's decision: that comes as
    /// [`Event::Decided`]). A rate-limited request is sent again by itself after the wait.
    Refused {
        host: PeerId,
        request: Refused,
        reason: Refusal,
    },
}

/// Why a local edit was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No host is reachable, or this peer has not received the state yet.
    #[error("read-only: waiting for a host (edits are possible again once one is connected)")]
    ReadOnly,
    /// Too many edits are waiting for the host's decision.
    #[error("{0} edits are waiting for the host; wait until some are confirmed")]
    Busy(usize),
    /// The request is invalid against this peer's state.
    #[error(transparent)]
    Request(#[from] bassline_core::Error),
    /// The host made this peer read-only or removed it: it may look, not edit.
    #[error("this peer is {0}: the host decides who may edit")]
    NotPermitted(Permission),
    /// Only the host changes permissions.
    #[error("only the host can change permissions; ask the host")]
    NotHost,
    /// A permit that would change the host's own permission or remove everyone.
    #[error("the host's own permission cannot change, and a room cannot remove everyone")]
    InvalidPermit,
    /// The edit is larger than the host takes ([`Limits::max_submit_bytes`]).
    #[error("the edit takes {size} bytes, more than the {max} the host takes; split it")]
    TooLarge { size: usize, max: usize },
}
