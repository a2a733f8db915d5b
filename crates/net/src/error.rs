//! The crate's one error type.

/// What went wrong, worded for the person at the keyboard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The signaling or remote server could not be reached.
    #[error("cannot reach {url}: {reason}; check the address and that the server is running")]
    Unreachable { url: String, reason: String },
    /// No room has this code.
    #[error(
        "no room with code {code}: check the code with the host (codes are six letters and \
         digits; a room closes when its last member leaves)"
    )]
    RoomNotFound { code: String },
    /// The room's password was missing or wrong.
    #[error("wrong password for room {code}: ask the host for the password and pass --password")]
    WrongPassword { code: String },
    /// The signaling server refused something else.
    #[error("the signaling server refused: {message}")]
    Refused { code: String, message: String },
    /// The session is read-only for now: no host, or not synced yet.
    #[error("read-only: waiting for a host (edits are possible again once one leads)")]
    ReadOnly,
    /// Too many edits await the host's decision.
    #[error("{0} edits are waiting for the host; wait until some are confirmed")]
    Busy(usize),
    /// The request is invalid against the network.
    #[error(transparent)]
    Request(#[from] bassline_core::Error),
    /// The session's task has stopped.
    #[error("the session has ended; start `bassline host` or `join` again")]
    Stopped,
    /// A WebRTC stack error.
    #[error("WebRTC: {0}")]
    WebRtc(String),
    /// A file or socket error.
    #[error("{0}")]
    Io(String),
}

impl Error {
    /// A short machine-readable name (the `code` of a JSON error event).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unreachable { .. } => "unreachable",
            Error::RoomNotFound { .. } => "room-not-found",
            Error::WrongPassword { .. } => "wrong-password",
            Error::Refused { .. } => "refused",
            Error::ReadOnly => "read-only",
            Error::Busy(_) => "busy",
            Error::Request(_) => "refused-request",
            Error::Stopped => "stopped",
            Error::WebRtc(_) => "webrtc",
            Error::Io(_) => "io",
        }
    }
}

impl From<bassline_sync::Error> for Error {
    fn from(e: bassline_sync::Error) -> Self {
        match e {
            bassline_sync::Error::ReadOnly => Error::ReadOnly,
            bassline_sync::Error::Busy(n) => Error::Busy(n),
            bassline_sync::Error::Request(r) => Error::Request(r),
            // The sync error is non-exhaustive: a later variant is reported by its message.
            other => Error::Refused {
                code: "sync".into(),
                message: other.to_string(),
            },
        }
    }
}
