//! The crate's one error type, and the stable machine-readable codes sent on the wire.

use serde::{Deserialize, Serialize};

/// Everything that can go wrong between a client and the signaling server.
///
/// Each variant is something a client did or asked for; the server answers it with an
/// [`ServerMessage::Error`](crate::ServerMessage::Error) carrying [`Error::code`] and the
/// `Display` text, which says what to do. None of them is a bug in the server, and none ends the
/// server or another room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The frame was not valid JSON or not a known message.
    #[error(
        "could not read the message ({detail}); send one JSON object with a known \"type\", see docs/PROTOCOL.md"
    )]
    BadMessage {
        /// What the decoder said, without the frame itself.
        detail: String,
    },
    /// A binary WebSocket frame arrived; the protocol is JSON text frames only.
    #[error("binary frames are not part of this protocol; send JSON as a text frame")]
    BinaryFrame,
    /// A frame larger than the configured cap.
    #[error(
        "frame too large (limit {limit} bytes); SDP and candidates fit well below it, split nothing and send less"
    )]
    FrameTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The client speaks a protocol version this server does not.
    #[error(
        "protocol version {got} is not supported; this server speaks version {supported}, update the client"
    )]
    UnsupportedVersion {
        /// The version the client announced.
        got: u32,
        /// The version this server speaks.
        supported: u32,
    },
    /// Something other than `hello` came first.
    #[error("say hello first: the first message must be {{\"type\":\"hello\",\"version\":1}}")]
    HelloRequired,
    /// A second `hello` on the same connection.
    #[error("hello was already received on this connection; open a new connection to start over")]
    AlreadyGreeted,
    /// The code is not six characters from `A-Z` and `0-9`.
    #[error(
        "room codes are 6 letters or digits (A-Z, 0-9), like A3B7K9; check the code and try again"
    )]
    BadCode,
    /// No live room has this code (never existed, closed, or expired after inactivity).
    #[error(
        "no room with this code: it may have expired after an hour of inactivity or been closed; ask the host for a new code"
    )]
    RoomNotFound,
    /// The room has a password and the given one does not match (or none was given).
    #[error("wrong password for this room; ask the host for the password and try again")]
    WrongPassword,
    /// The room already holds its maximum number of peers.
    #[error("the room is full ({max} peers); ask the host to raise the limit or make room")]
    RoomFull {
        /// The room's peer limit.
        max: u16,
    },
    /// Too many failed joins from this address recently.
    #[error("too many attempts, retry in {retry_after_secs} s")]
    TooManyAttempts {
        /// Seconds until the next attempt is considered.
        retry_after_secs: u64,
    },
    /// The server holds as many rooms as it is configured to.
    #[error("the server is at its room limit; try again later or use another server")]
    TooManyRooms,
    /// This address holds as many connections as it is allowed to.
    #[error("too many connections from your address; close some and try again")]
    TooManyConnections,
    /// `max_peers` outside the allowed range.
    #[error("max_peers must be between 2 and {max}")]
    InvalidMaxPeers {
        /// The largest room this server allows.
        max: u16,
    },
    /// The peer is already a member of a room.
    #[error("you are already in a room; send leave-room first")]
    AlreadyInRoom,
    /// The request needs room membership and the peer has none.
    #[error("you are not in a room; create or join one first")]
    NotInRoom,
    /// The named target is not a member of the sender's room (or is the sender).
    #[error("peer {peer} is not in your room; relay only to members listed in joined/peer-joined")]
    UnknownPeer {
        /// The target as given.
        peer: String,
    },
    /// A join or create is still being processed for this connection.
    #[error("a previous create-room or join-room is still in progress; wait for its answer")]
    Busy,
    /// The WebSocket upgrade came from a page whose origin is not on the allowed list.
    #[error("this signaling server does not accept connections from your page's origin")]
    OriginNotAllowed,
    /// The connection sent frames faster than the server accepts.
    #[error("too many messages; slow down (limit {per_sec} per second)")]
    RateLimited {
        /// The sustained rate the server accepts.
        per_sec: u32,
    },
    /// (Servers sharing rooms through Redis.) The shared store cannot be reached, so no room
    /// can be created or joined; rooms already open keep relaying.
    #[error(
        "the signaling service cannot create or join rooms right now (its room store is unreachable); try again in a few seconds"
    )]
    Unavailable,
    /// Only the room's host may do this (refuse a member's PAKE run).
    #[error("only the room's host may reject a member; you are not the host")]
    NotHost,
    /// A reclaim named a member number another member of the room holds now.
    #[error(
        "member number {number} is held by another member of this room; join without reclaiming to get a new number"
    )]
    NumberTaken {
        /// The number claimed.
        number: u64,
    },
}

/// The stable, machine-readable reason carried by an error message and by the
/// `signal_rejections_total{reason}` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum ErrorCode {
    BadMessage,
    BinaryFrame,
    FrameTooLarge,
    UnsupportedVersion,
    HelloRequired,
    AlreadyGreeted,
    BadCode,
    RoomNotFound,
    WrongPassword,
    RoomFull,
    TooManyAttempts,
    TooManyRooms,
    TooManyConnections,
    InvalidMaxPeers,
    AlreadyInRoom,
    NotInRoom,
    UnknownPeer,
    Busy,
    RateLimited,
    OriginNotAllowed,
    Unavailable,
    NotHost,
    NumberTaken,
}

impl ErrorCode {
    /// Every code, for metrics that list all reasons (zeros included).
    pub const ALL: [ErrorCode; 23] = [
        Self::BadMessage,
        Self::BinaryFrame,
        Self::FrameTooLarge,
        Self::UnsupportedVersion,
        Self::HelloRequired,
        Self::AlreadyGreeted,
        Self::BadCode,
        Self::RoomNotFound,
        Self::WrongPassword,
        Self::RoomFull,
        Self::TooManyAttempts,
        Self::TooManyRooms,
        Self::TooManyConnections,
        Self::InvalidMaxPeers,
        Self::AlreadyInRoom,
        Self::NotInRoom,
        Self::UnknownPeer,
        Self::Busy,
        Self::RateLimited,
        Self::OriginNotAllowed,
        Self::Unavailable,
        Self::NotHost,
        Self::NumberTaken,
    ];

    /// The kebab-case name used on the wire and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadMessage => "bad-message",
            Self::BinaryFrame => "binary-frame",
            Self::FrameTooLarge => "frame-too-large",
            Self::UnsupportedVersion => "unsupported-version",
            Self::HelloRequired => "hello-required",
            Self::AlreadyGreeted => "already-greeted",
            Self::BadCode => "bad-code",
            Self::RoomNotFound => "room-not-found",
            Self::WrongPassword => "wrong-password",
            Self::RoomFull => "room-full",
            Self::TooManyAttempts => "too-many-attempts",
            Self::TooManyRooms => "too-many-rooms",
            Self::TooManyConnections => "too-many-connections",
            Self::InvalidMaxPeers => "invalid-max-peers",
            Self::AlreadyInRoom => "already-in-room",
            Self::NotInRoom => "not-in-room",
            Self::UnknownPeer => "unknown-peer",
            Self::Busy => "busy",
            Self::RateLimited => "rate-limited",
            Self::OriginNotAllowed => "origin-not-allowed",
            Self::Unavailable => "unavailable",
            Self::NotHost => "not-host",
            Self::NumberTaken => "number-taken",
        }
    }
}

impl Error {
    /// The wire code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadMessage { .. } => ErrorCode::BadMessage,
            Self::BinaryFrame => ErrorCode::BinaryFrame,
            Self::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            Self::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            Self::HelloRequired => ErrorCode::HelloRequired,
            Self::AlreadyGreeted => ErrorCode::AlreadyGreeted,
            Self::BadCode => ErrorCode::BadCode,
            Self::RoomNotFound => ErrorCode::RoomNotFound,
            Self::WrongPassword => ErrorCode::WrongPassword,
            Self::RoomFull { .. } => ErrorCode::RoomFull,
            Self::TooManyAttempts { .. } => ErrorCode::TooManyAttempts,
            Self::TooManyRooms => ErrorCode::TooManyRooms,
            Self::TooManyConnections => ErrorCode::TooManyConnections,
            Self::InvalidMaxPeers { .. } => ErrorCode::InvalidMaxPeers,
            Self::AlreadyInRoom => ErrorCode::AlreadyInRoom,
            Self::NotInRoom => ErrorCode::NotInRoom,
            Self::UnknownPeer { .. } => ErrorCode::UnknownPeer,
            Self::Busy => ErrorCode::Busy,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::OriginNotAllowed => ErrorCode::OriginNotAllowed,
            Self::Unavailable => ErrorCode::Unavailable,
            Self::NotHost => ErrorCode::NotHost,
            Self::NumberTaken { .. } => ErrorCode::NumberTaken,
        }
    }

    /// Seconds the client should wait before retrying, when the error says so.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::TooManyAttempts { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// Whether the server closes the connection after sending this error.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::UnsupportedVersion { .. } | Self::TooManyConnections | Self::FrameTooLarge { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
