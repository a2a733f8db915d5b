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

mod election;
mod sequencing;
mod session;

use std::time::Duration;

use bassline_core::{Change, Id, StateHash};
pub use bassline_protocol::{Codec, Decision, Epoch, OpId, PeerId, Position, Presence};
pub use session::{LocalOutcome, Role, Session, Stats};

/// Session settings. Every peer of a session must use the same engine settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long the host gathers sequenced operations before broadcasting them.
    pub batch_window: Duration,
    /// How often every peer sends a heartbeat.
    pub heartbeat_interval: Duration,
    /// Silence after which the host is suspected lost.
    pub host_timeout: Duration,
    /// How long to wait for other peers to say whether they still see the host.
    pub query_timeout: Duration,
    /// How long to wait for the elected peer's announcement before electing again.
    pub election_timeout: Duration,
    /// First delay before re-requesting state; doubles (with jitter) up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Sequenced operations kept for catch-up and re-submission.
    pub log_cap: usize,
    /// Own operations awaiting the host's decision; more are refused.
    pub pending_cap: usize,
    /// Seed for retry jitter.
    pub seed: u64,
    pub codec: Codec,
    /// Whether this peer may become host. Remote mode: the server is `Permanent`, its
    /// clients `Never`.
    pub candidacy: Candidacy,
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
            retry_base: Duration::from_millis(200),
            retry_max: Duration::from_secs(5),
            log_cap: 10_000,
            pending_cap: 10_000,
            seed: 0,
            codec: Codec::default(),
            candidacy: Candidacy::Stand,
            fault: None,
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

/// A deliberate bug to inject.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The host applies a re-sent operation again instead of recognising it.
    SkipDedup,
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
    /// A (new) host leads the session.
    HostChanged { host: PeerId, epoch: Epoch },
    /// Part of the host's state is shown (the focused groups whole, the rest as stubs); the
    /// whole follows. Read-only until then.
    PartialState { first: Vec<Id> },
    /// This peer's state was replaced by a full copy of the host's.
    StateReplaced {
        position: Position,
        applied: Vec<(PeerId, u64)>,
    },
    /// A sequenced operation was applied here (every peer reports every operation once).
    Applied {
        op: OpId,
        seq: u64,
        decision: Decision,
    },
    /// Heartbeats showed this peer's state differs from the host's in these groups.
    Diverged {
        groups: Vec<Id>,
        host_hash: StateHash,
    },
    /// Another peer's presence (name, group in view, cursor, selection).
    Presence {
        peer: PeerId,
        presence: bassline_protocol::Presence,
    },
    /// A peer sent something that could not be decoded or made no sense; it was dropped.
    PeerMisbehaved { peer: PeerId, reason: String },
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
}
