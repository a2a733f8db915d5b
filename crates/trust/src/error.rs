//! The crate's one error type.

/// Everything that can go wrong while checking what a peer or a link handed us.
///
/// None of these is a bug: each is input we refuse. A driver that gets one from a peer's message
/// drops the message (and the connection attempt it belongs to) and tells the user the `Display`
/// text, which says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The join link's fragment holds no room key (`#k=...`).
    #[error(
        "the join link has no room key (expected `#k=...` at its end); copy the whole link from the host"
    )]
    MissingRoomKey,
    /// The room key in the link is not base64url of the right length.
    #[error("the room key in the join link is damaged ({detail}); copy the whole link again")]
    BadRoomKey {
        /// What is wrong with it.
        detail: &'static str,
    },
    /// The MAC on an offer or answer does not verify: the sender holds another room key, or the
    /// message (its peer ids, room code, kind, nonce or fingerprints) was altered on the way.
    #[error(
        "the offer/answer is not signed with this room's key (wrong room key, or altered on the way); refused"
    )]
    BadMac,
    /// The MAC verifies, but the SDP carries other DTLS fingerprints than the ones the sender
    /// signed: someone between the peers swapped the certificate to stand in the middle.
    #[error(
        "the signaling path was tampered with: the offer/answer's DTLS fingerprint is not the one its sender signed; connection refused"
    )]
    FingerprintMismatch,
    /// An offer or answer whose nonce this peer has already accepted.
    #[error("a replayed offer/answer (its nonce was seen before); ignored")]
    Replayed,
    /// The PAKE's key confirmation failed: the guest typed another password than the host set,
    /// or someone altered the exchange. Both sides see this error.
    #[error(
        "wrong room password (key confirmation failed); check the password with the host and join again"
    )]
    WrongPassword,
    /// The host refuses new password attempts for a while: too many failed ones recently.
    #[error("too many wrong passwords for this room recently; retry in {} s", retry_after_ms.div_ceil(1000))]
    TooManyGuesses {
        /// Milliseconds until the oldest failure ages out.
        retry_after_ms: u64,
    },
    /// A message ended before its last field.
    #[error("truncated {what}: {got} bytes where at least {need} are needed")]
    Truncated {
        /// Which message.
        what: &'static str,
        /// Bytes needed to read the next field.
        need: usize,
        /// Bytes there were.
        got: usize,
    },
    /// A message or SDP that cannot be read.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which message.
        what: &'static str,
        /// What is wrong with it.
        detail: &'static str,
    },
    /// The operating system's random generator failed.
    #[error("the system random generator failed ({0}); retry, or report this platform")]
    Random(String),
}
