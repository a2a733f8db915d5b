//! The registry's public value types: identifiers, configuration, outputs, metrics.

use std::{collections::BTreeMap, fmt, time::Duration};

use crate::{ErrorCode, Password, RoomCode, ServerMessage};

/// A connection, numbered by the driver. Never reused while the registry knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Where the registry gets its random bytes (room codes, peer ids, resume tokens). The server
/// passes the operating system's generator; tests pass a seeded one so runs repeat exactly.
pub trait Entropy: Send {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

impl<F: FnMut(&mut [u8]) + Send> Entropy for F {
    fn fill(&mut self, buf: &mut [u8]) {
        self(buf)
    }
}

/// Limits and lifetimes. `Default` gives the production values.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most live rooms at once.
    pub max_rooms: usize,
    /// Most open connections from one IP address.
    pub max_conns_per_ip: u32,
    /// Peer limit of a room created without `max_peers`.
    pub default_max_peers: u16,
    /// Largest `max_peers` a creator may ask for.
    pub max_room_peers: u16,
    /// Failed joins allowed from one IP address per `failed_join_window`.
    pub failed_join_limit: usize,
    /// The sliding window for `failed_join_limit`.
    pub failed_join_window: Duration,
    /// A room with no message from any member for this long closes.
    pub room_idle: Duration,
    /// How long a disconnected peer keeps its place (and its queued messages).
    pub grace: Duration,
    /// A relayed message not delivered within this long is dropped.
    pub message_ttl: Duration,
    /// Most messages queued for one disconnected peer; older ones are dropped first.
    pub max_queued_per_peer: usize,
    /// Most messages one connection may send per second (fixed one-second windows).
    pub max_msgs_per_sec: u32,
    /// A connection that has not said hello this long after connecting is closed (it would
    /// otherwise hold one of its address's connection slots while answering pings forever).
    pub hello_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_rooms: 10_000,
            max_conns_per_ip: 64,
            default_max_peers: 8,
            max_room_peers: 32,
            failed_join_limit: 10,
            failed_join_window: Duration::from_secs(60),
            room_idle: Duration::from_secs(3600),
            grace: Duration::from_secs(10),
            message_ttl: Duration::from_secs(30),
            max_queued_per_peer: 256,
            max_msgs_per_sec: 100,
            hello_timeout: Duration::from_secs(10),
        }
    }
}

/// An Argon2id hash of a room password and its salt. Only ever compared, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    /// Random salt.
    pub salt: [u8; 16],
    /// Argon2id output.
    pub hash: [u8; 32],
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// Identifies the room a password verification was started for, so a result that comes back
/// after the room closed (and its code was reused) cannot admit anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinTicket {
    /// The room's code.
    pub code: RoomCode,
    /// The room's unique generation number.
    pub generation: u64,
}

/// What the driver must do.
#[derive(Debug)]
pub enum Output {
    /// Send `msg` on connection `to`.
    Send {
        /// Target connection.
        to: ConnId,
        /// The message.
        msg: ServerMessage,
    },
    /// Close connection `conn` (after sending what was queued for it before).
    Close {
        /// The connection.
        conn: ConnId,
        /// For logs and the close frame.
        reason: &'static str,
    },
    /// Hash `password` (Argon2id, fresh salt) off the event loop, then call
    /// [`Registry::handle_password_hashed`].
    HashPassword {
        /// The creating connection.
        conn: ConnId,
        /// The password to hash.
        password: Password,
        /// The room's peer limit, to pass back.
        max_peers: u16,
    },
    /// Verify `password` against `hash` off the event loop, then call
    /// [`Registry::handle_password_verified`].
    VerifyPassword {
        /// The joining connection.
        conn: ConnId,
        /// The room being joined.
        ticket: JoinTicket,
        /// The password given.
        password: Password,
        /// The room's stored hash.
        hash: PasswordHash,
    },
}

/// Counters and gauges for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Open connections.
    pub connections: usize,
    /// Known peers (connected or within their grace period).
    pub peers: usize,
    /// Live rooms.
    pub rooms: usize,
    /// Rooms ever created.
    pub rooms_created: u64,
    /// Rooms closed by inactivity.
    pub rooms_expired: u64,
    /// Successful joins.
    pub joins: u64,
    /// Offers, answers and candidates accepted for relay.
    pub relayed: u64,
    /// Queued messages dropped undelivered (ttl or queue cap).
    pub dropped: u64,
    /// Peers that took back their place after a reconnect.
    pub resumes: u64,
    /// Refused requests by reason.
    pub rejections: BTreeMap<ErrorCode, u64>,
}
