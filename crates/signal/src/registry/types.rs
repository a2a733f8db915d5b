//! The registry's public value types: identifiers, configuration, outputs, metrics.

use std::{
    collections::BTreeMap,
    fmt,
    net::IpAddr,
    time::{Duration, Instant},
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::room::{Carried, RoomRecord, TokenRecord};
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

impl Serialize for PasswordHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut hex = String::with_capacity(96);
        for b in self.salt.iter().chain(&self.hash) {
            hex.push_str(&format!("{b:02x}"));
        }
        s.serialize_str(&hex)
    }
}

impl<'de> Deserialize<'de> for PasswordHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hex = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bad = || serde::de::Error::custom("a password hash is 96 hex digits");
        if hex.len() != 96 || !hex.is_ascii() {
            return Err(bad());
        }
        let mut bytes = [0u8; 48];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        let mut out = PasswordHash {
            salt: [0; 16],
            hash: [0; 32],
        };
        out.salt.copy_from_slice(&bytes[..16]);
        out.hash.copy_from_slice(&bytes[16..]);
        Ok(out)
    }
}

/// One server process among several that share rooms through a store (`--redis`). Drawn at
/// random when the process starts, so a restarted process is a new instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InstanceId(pub u64);

/// Names one store request of a shared registry, so its answer finds its way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpId(pub u64);

/// What a [`Output::Load`] found in the store.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The room asked for (or named by the token's record), and how long until it expires.
    pub room: Option<(RoomRecord, Duration)>,
    /// Failed joins recorded for the address asked for, oldest first.
    pub failures: Vec<Instant>,
    /// The resume token's record.
    pub token: Option<TokenRecord>,
    /// Instances named in `room` or `token` that are gone: they stopped renewing their
    /// liveness in the store more than a grace period ago.
    pub dead: Vec<InstanceId>,
}

/// The answer to an [`Output::Commit`].
#[derive(Debug, Clone)]
pub enum CommitResult {
    /// The store held `old` and now holds `new`; the notified instances were told in the same
    /// step.
    Done,
    /// The store held something else (another instance changed the room first): this.
    Conflict(Option<RoomRecord>),
    /// The store could not be reached.
    Unavailable,
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
    /// (Shared registries only.) Read from the store the room `room` (or, with a `token`, the
    /// token's record and the room it names) and the failed joins of `failures`, and which
    /// instances they name are dead, then call [`Registry::handle_loaded`] (with `None` if the
    /// store could not be reached).
    Load {
        /// Pass back.
        op: OpId,
        /// A room to read.
        room: Option<RoomCode>,
        /// An address whose failed joins to read.
        failures: Option<IpAddr>,
        /// A resume token whose record to read.
        token: Option<u128>,
    },
    /// (Shared registries only.) If the store holds exactly `old` for room `code`, replace it
    /// with `new` (delete it when `None`) with a lifetime of `ttl`, and in the same atomic step
    /// carry [`Carried::Room`] with `new` to each of `notify`; then call
    /// [`Registry::handle_committed`].
    Commit {
        /// Pass back.
        op: OpId,
        /// The room.
        code: RoomCode,
        /// What the registry read.
        old: Option<RoomRecord>,
        /// What it decided.
        new: Option<RoomRecord>,
        /// The record's lifetime in the store.
        ttl: Duration,
        /// Other instances with members in the room, before or after.
        notify: Vec<InstanceId>,
    },
    /// (Shared registries only.) Carry `what` to instance `to`, whose driver hands it to
    /// [`Registry::handle_carried`]. Best effort: lost if `to` is gone.
    Carry {
        /// The instance.
        to: InstanceId,
        /// The message.
        what: Carried,
    },
    /// (Shared registries only.) Store `record` under resume token `token` for `ttl` (delete
    /// it when `None`).
    SaveToken {
        /// The token.
        token: u128,
        /// The record.
        record: Option<TokenRecord>,
        /// Its lifetime.
        ttl: Duration,
    },
    /// (Shared registries only.) Append a failed join from `ip` at the present time to the
    /// store, keep the newest `keep`, and let the list live `window`.
    RecordFailure {
        /// The address (already reduced to its limit key).
        ip: IpAddr,
        /// Entries to keep.
        keep: usize,
        /// How long the list lives after this failure.
        window: Duration,
    },
    /// (Shared registries only.) A member was active in room `code`: extend its lifetime in the
    /// store to `ttl` from now.
    Touch {
        /// The room.
        code: RoomCode,
        /// The new lifetime.
        ttl: Duration,
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
    /// Relayed messages handed to another instance.
    pub carried: u64,
    /// Store requests that failed because the store could not be reached.
    pub store_errors: u64,
    /// Refused requests by reason.
    pub rejections: BTreeMap<ErrorCode, u64>,
}
