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
    /// The host refused our password in its PAKE check (the server never saw it).
    #[error(
        "wrong password for room {code} (checked by the host, not the signaling server): ask \
         the host for the password, or for the join link"
    )]
    HostRefusedPassword { code: String },
    /// The room's password is checked by the signaling server (its host has no room key),
    /// and we did not send it there.
    #[error(
        "room {code}'s password is checked by the signaling server, not by its host (the host \
         used --no-room-key), so it was not sent; pass --trust-server to send it to the server, \
         or ask the host for a join link"
    )]
    ServerChecksPassword { code: String },
    /// A PAKE room joined with neither its password nor its key.
    #[error("room {code} needs its password (--password) or the join link the host printed")]
    PasswordRequired { code: String },
    /// The host refuses PAKE runs for now (too many failed ones lately).
    #[error(
        "the host of room {code} refuses password attempts for now, after too many wrong ones; \
         wait a minute and try again"
    )]
    HostTooManyAttempts { code: String },
    /// The host did not answer our PAKE hello in time.
    #[error(
        "the host of room {code} did not answer the password check within {}s; check that the \
         host is still running and try again",
        crate::room_pake::GUEST_WAIT.as_secs()
    )]
    HostNotAnswering { code: String },
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
    /// An offer or answer from `peer` failed its check against the room key: it was dropped
    /// and that link attempt stopped. Not fatal: the session goes on with the other peers, and
    /// the link is tried again.
    #[error(
        "connection to peer {peer} refused: the signaling path was tampered with: {}. Someone \
         between you and the signaling server, or the server itself, tried to intercept the \
         connection{}",
        tamper_detail(reason),
        if *unsigned {
            " (or the peer joined with the bare room code instead of this room's join link: \
             it sent no signature at all)"
        } else {
            ""
        }
    )]
    Tampered {
        /// The peer (member number) whose offer or answer was refused.
        peer: bassline_sync::PeerId,
        /// What the check found.
        reason: bassline_trust::Error,
        /// The offer/answer carried no signature at all.
        unsigned: bool,
    },
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
            Error::WrongPassword { .. }
            | Error::HostRefusedPassword { .. }
            | Error::ServerChecksPassword { .. } => "wrong-password",
            Error::PasswordRequired { .. } => "password-required",
            Error::HostTooManyAttempts { .. } => "too-many-attempts",
            Error::HostNotAnswering { .. } => "host-not-answering",
            Error::Refused { .. } => "refused",
            Error::ReadOnly => "read-only",
            Error::Busy(_) => "busy",
            Error::Request(_) => "refused-request",
            Error::Stopped => "stopped",
            Error::Tampered { .. } => "signaling-tampered",
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
            e @ bassline_sync::Error::NotPermitted(_) => Error::Refused {
                code: "not-permitted".into(),
                message: e.to_string(),
            },
            e @ bassline_sync::Error::NotHost => Error::Refused {
                code: "not-host".into(),
                message: e.to_string(),
            },
            e @ bassline_sync::Error::InvalidPermit => Error::Refused {
                code: "invalid-permit".into(),
                message: e.to_string(),
            },
            // The sync error is non-exhaustive: a later variant is reported by its message.
            other => Error::Refused {
                code: "sync".into(),
                message: other.to_string(),
            },
        }
    }
}

/// The trust error's text without a leading "the signaling path was tampered with: ", which
/// [`Error::Tampered`] says once already.
fn tamper_detail(reason: &bassline_trust::Error) -> String {
    let text = reason.to_string();
    match text.strip_prefix("the signaling path was tampered with: ") {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tampered_offer_says_so_once_and_names_the_peer() {
        let e = Error::Tampered {
            peer: 3,
            reason: bassline_trust::Error::FingerprintMismatch,
            unsigned: false,
        };
        let text = e.to_string();
        assert!(
            text.starts_with(
                "connection to peer 3 refused: the signaling path was tampered with: the offer/answer's DTLS fingerprint"
            ),
            "{text}"
        );
        assert_eq!(text.matches("tampered with").count(), 1, "{text}");
        assert!(text.contains("or the server itself"), "{text}");
        assert_eq!(e.code(), "signaling-tampered");
        let unsigned = Error::Tampered {
            peer: 3,
            reason: bassline_trust::Error::BadMac,
            unsigned: true,
        };
        assert!(
            unsigned
                .to_string()
                .contains("not signed with this room's key")
        );
        assert!(unsigned.to_string().contains("bare room code"));
    }
}
