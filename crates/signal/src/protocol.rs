//! Signaling messages (JSON text frames over WebSocket), their decoder, and the small value types
//! they carry. `docs/PROTOCOL.md` documents the same messages with the same examples the tests use.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, ErrorCode};

/// The protocol version this crate speaks; `hello` and `welcome` carry it.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest frame the decoder accepts, in bytes (the server's frame cap defaults to it).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// The longest `auth` an offer or answer may carry, in characters (an attestation for one
/// SHA-256 fingerprint is 122; eight SHA-512 ones stay below 900).
pub const MAX_AUTH_CHARS: usize = 2048;

/// The longest `data` a `pake` message may carry, in characters (the longest PAKE message,
/// the host's reply, is 152 as base64url).
pub const MAX_PAKE_CHARS: usize = 256;

/// Length of a room code.
pub const CODE_LEN: usize = 6;

/// The characters room codes are drawn from.
pub const CODE_ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A message from a client to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ClientMessage {
    /// First message on every connection.
    Hello {
        /// Must equal [`PROTOCOL_VERSION`].
        version: u32,
        /// The token from an earlier `welcome`, to take back one's place after a reconnect.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
    },
    /// Create a room and become its host.
    CreateRoom {
        /// Optional password the server checks guests against (rooms without a room key).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<Password>,
        /// Optional peer limit (2 to the server's maximum).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_peers: Option<u16>,
        /// The room's password is checked by its members by PAKE (`pake` messages), not by the
        /// server: guests learn it from `joined`. Together with `password`, a bad message.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pake: bool,
    },
    /// Join a room by code (matched case-insensitively).
    JoinRoom {
        /// The code as typed.
        code: String,
        /// The password, when the room has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<Password>,
        /// Take back a place held before this connection's peer was new (the server restarted
        /// or the grace period ran out): the same member number, re-creating the room when the
        /// server no longer has it. Sent only by members holding the room key. Together with
        /// `password`, a bad message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reclaim: Option<Reclaim>,
    },
    /// Leave the current room.
    LeaveRoom,
    /// An SDP offer for one member of the same room.
    Offer {
        /// The target peer.
        to: PeerId,
        /// The session description.
        sdp: String,
        /// The sender's signature over its DTLS fingerprints under the room key
        /// (`bassline_trust::Attestation`, base64url); relayed untouched. At most
        /// [`MAX_AUTH_CHARS`] characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<String>,
    },
    /// An SDP answer for one member of the same room.
    Answer {
        /// The target peer.
        to: PeerId,
        /// The session description.
        sdp: String,
        /// The sender's signature over its DTLS fingerprints under the room key
        /// (`bassline_trust::Attestation`, base64url); relayed untouched. At most
        /// [`MAX_AUTH_CHARS`] characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<String>,
    },
    /// An ICE candidate for one member of the same room.
    Candidate {
        /// The target peer.
        to: PeerId,
        /// The candidate line (`candidate:...`), empty for end-of-candidates.
        candidate: String,
        /// The media stream identification tag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
        /// The m-line index.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_m_line_index: Option<u16>,
    },
    /// A PAKE message (`bassline_trust`'s hello, reply, confirm or abort, base64url) for one
    /// member of the same room; relayed untouched. At most [`MAX_PAKE_CHARS`] characters.
    Pake {
        /// The target peer.
        to: PeerId,
        /// The message as base64url text.
        data: String,
    },
    /// (Host only.) A member's PAKE run failed: the server counts a failed join against the
    /// member's address, removes it from the room and tells it why.
    Reject {
        /// The member refused.
        peer: PeerId,
        /// Why.
        reason: RejectReason,
    },
}

/// The largest `next` a reclaim may claim: far above any room's real count of joins, far
/// below where the counter could overflow.
pub const MAX_RECLAIM_NUMBER: MemberNumber = 1 << 32;

/// A member's claim to its old place in a room (`join-room.reclaim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reclaim {
    /// The member number it held, which the sync engine knows it by: it must not change.
    pub number: MemberNumber,
    /// One above the highest member number it knows: a re-created room continues counting
    /// from here, so a newcomer never gets a number an old member still holds.
    pub next: MemberNumber,
    /// The room's password is checked by PAKE (as `joined.pake` said); a re-created room
    /// keeps saying so. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pake: bool,
}

/// Why a host refused a member's PAKE run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectReason {
    /// The run failed: another password, an abort, garbage or no confirmation in time.
    WrongPassword,
    /// The host has seen too many failed runs lately and refuses new ones for now.
    TooManyAttempts,
}

impl RejectReason {
    /// The error code the refused member receives.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::WrongPassword => ErrorCode::WrongPassword,
            Self::TooManyAttempts => ErrorCode::TooManyAttempts,
        }
    }

    /// The error message the refused member receives: the host refused, not the server.
    pub fn message(self) -> &'static str {
        match self {
            Self::WrongPassword => {
                "the host refused the password (the room's password is checked by its host, not by this server); ask the host for the password and try again"
            }
            Self::TooManyAttempts => {
                "the host refuses password attempts for now after too many wrong ones; wait a minute and try again"
            }
        }
    }
}

/// A message from the server to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage {
    /// Answer to `hello`.
    Welcome {
        /// The server's protocol version.
        version: u32,
        /// The id other peers know this peer by.
        peer_id: PeerId,
        /// Give this in `hello.resume` after a reconnect within the grace period.
        resume_token: String,
        /// Whether this connection took over an earlier one's place.
        resumed: bool,
        /// ICE servers to configure `RTCPeerConnection` with.
        ice_servers: Vec<IceServer>,
    },
    /// A room was created; the sender is its host and only member.
    RoomCreated {
        /// The code guests type.
        code: RoomCode,
        /// The room's peer limit.
        max_peers: u16,
        /// The creator's member number: always 1.
        number: MemberNumber,
    },
    /// The sender is a member of the room (after join-room, or again after resuming).
    Joined {
        /// The room's code.
        code: RoomCode,
        /// Every member, in joining order, the receiver included.
        members: Vec<PeerId>,
        /// Each member's number, in the order of `members`.
        numbers: Vec<MemberNumber>,
        /// Which member is the host.
        host: PeerId,
        /// The receiver's own member number.
        number: MemberNumber,
        /// The room's password is checked by its host by PAKE: a guest without the room key
        /// sends `pake` messages to `host` (absent when false).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pake: bool,
    },
    /// The sender is no longer in the room (after leave-room).
    Left {
        /// The room's code.
        code: RoomCode,
    },
    /// Another peer joined the receiver's room.
    PeerJoined {
        /// The new member.
        peer: PeerId,
        /// Its member number.
        number: MemberNumber,
    },
    /// Another peer left the receiver's room (or its reconnect grace ran out).
    PeerLeft {
        /// The member that left.
        peer: PeerId,
    },
    /// The room has a new host (the previous one left).
    HostChanged {
        /// The new host.
        host: PeerId,
    },
    /// The room was closed by the server; the receiver is no longer in it.
    RoomClosed {
        /// The room's code.
        code: RoomCode,
        /// Why it closed.
        reason: CloseReason,
    },
    /// An SDP offer from a member of the same room.
    Offer {
        /// The sender.
        from: PeerId,
        /// The session description.
        sdp: String,
        /// The sender's signature over its DTLS fingerprints under the room key
        /// (`bassline_trust::Attestation`, base64url); relayed untouched. At most
        /// [`MAX_AUTH_CHARS`] characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<String>,
    },
    /// An SDP answer from a member of the same room.
    Answer {
        /// The sender.
        from: PeerId,
        /// The session description.
        sdp: String,
        /// The sender's signature over its DTLS fingerprints under the room key
        /// (`bassline_trust::Attestation`, base64url); relayed untouched. At most
        /// [`MAX_AUTH_CHARS`] characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<String>,
    },
    /// An ICE candidate from a member of the same room.
    Candidate {
        /// The sender.
        from: PeerId,
        /// The candidate line.
        candidate: String,
        /// The media stream identification tag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
        /// The m-line index.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_m_line_index: Option<u16>,
    },
    /// A PAKE message from a member of the same room.
    Pake {
        /// The sender.
        from: PeerId,
        /// The message as base64url text.
        data: String,
    },
    /// A request was refused.
    Error {
        /// Machine-readable reason.
        code: ErrorCode,
        /// What happened and what to do, for people.
        message: String,
        /// Seconds to wait before retrying, when that matters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_secs: Option<u64>,
    },
    /// The server is shutting down; reconnect later (possibly to another instance).
    Shutdown {
        /// For people.
        message: String,
    },
}

impl ServerMessage {
    /// The error message for `err`.
    pub fn error(err: &Error) -> Self {
        Self::Error {
            code: err.code(),
            message: err.to_string(),
            retry_after_secs: err.retry_after_secs(),
        }
    }

    /// Serializes to the JSON text sent in a frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages hold only strings, numbers and lists")
    }
}

/// Why the server closed a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloseReason {
    /// No member sent anything for the room's idle lifetime (1 hour by default).
    Expired,
}

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:` or `turn:`/`turns:` URLs.
    pub urls: Vec<String>,
    /// TURN username (time-limited), absent for STUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password (time-limited), absent for STUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Decodes one client frame. Never panics; every failure is [`Error::BadMessage`] (or
/// [`Error::FrameTooLarge`] when the frame is over [`MAX_FRAME_BYTES`]). An offer's or answer's
/// `auth` longer than [`MAX_AUTH_CHARS`], a `pake` message's `data` longer than
/// [`MAX_PAKE_CHARS`], a `create-room` with both `pake` and `password`, and a `join-room` whose
/// `reclaim` has numbers out of order or comes with a `password` are bad messages too.
///
/// ```
/// use bassline_signal::{ClientMessage, decode_client};
/// let msg = decode_client(br#"{"type":"join-room","code":"a3b7k9"}"#).unwrap();
/// assert_eq!(msg, ClientMessage::JoinRoom { code: "a3b7k9".into(), password: None, reclaim: None });
/// assert!(decode_client(b"{").is_err());
/// ```
pub fn decode_client(frame: &[u8]) -> Result<ClientMessage, Error> {
    if frame.len() > MAX_FRAME_BYTES {
        return Err(Error::FrameTooLarge {
            limit: MAX_FRAME_BYTES,
        });
    }
    let msg: ClientMessage = serde_json::from_slice(frame).map_err(|e| Error::BadMessage {
        // serde_json's messages name the problem and position, never echo the input.
        detail: e.to_string(),
    })?;
    if let ClientMessage::Offer {
        auth: Some(auth), ..
    }
    | ClientMessage::Answer {
        auth: Some(auth), ..
    } = &msg
        && auth.chars().count() > MAX_AUTH_CHARS
    {
        return Err(Error::BadMessage {
            detail: format!("`auth` is longer than {MAX_AUTH_CHARS} characters"),
        });
    }
    match &msg {
        ClientMessage::Pake { data, .. } if data.chars().count() > MAX_PAKE_CHARS => {
            return Err(Error::BadMessage {
                detail: format!("`data` is longer than {MAX_PAKE_CHARS} characters"),
            });
        }
        ClientMessage::JoinRoom {
            reclaim: Some(r), ..
        } if r.number == 0 || r.next <= r.number || r.next > MAX_RECLAIM_NUMBER => {
            return Err(Error::BadMessage {
                detail: format!("`reclaim` needs 1 <= `number` < `next` <= {MAX_RECLAIM_NUMBER}"),
            });
        }
        ClientMessage::JoinRoom {
            reclaim: Some(_),
            password: Some(_),
            ..
        } => {
            return Err(Error::BadMessage {
                detail: "`reclaim` and `password` exclude each other: only members holding the \
                         room key reclaim, and a re-created room has no server-checked password"
                    .into(),
            });
        }
        ClientMessage::CreateRoom {
            pake: true,
            password: Some(_),
            ..
        } => {
            return Err(Error::BadMessage {
                detail: "`pake` and `password` exclude each other: a PAKE room's password never \
                         reaches the server"
                    .into(),
            });
        }
        _ => {}
    }
    Ok(msg)
}

/// A member's number within its room: 1 for the creator, then 2, 3, ... in joining order. Every
/// member of the room sees the same number for the same member, and a number is never given to
/// anyone else while the room lives (a resumed connection keeps its number; a new `hello` that
/// joins again gets a new one). Small, so it serves as the compact peer id of a collaboration
/// session without making its frames bigger.
pub type MemberNumber = u64;

/// A peer's id: 64 random bits, written as 16 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

impl std::str::FromStr for PeerId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(());
        }
        u64::from_str_radix(s, 16).map(PeerId).map_err(|_| ())
    }
}

impl Serialize for PeerId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PeerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse()
            .map_err(|()| serde::de::Error::custom("a peer id is 16 hex digits"))
    }
}

/// A room code: six characters from `A-Z0-9`, stored upper-case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomCode([u8; CODE_LEN]);

impl RoomCode {
    /// Parses a code as a person typed it: surrounding spaces are ignored and letters may be in
    /// either case.
    ///
    /// ```
    /// use bassline_signal::RoomCode;
    /// assert_eq!(RoomCode::parse(" a3b7k9 ").unwrap().as_str(), "A3B7K9");
    /// assert!(RoomCode::parse("A3B7K").is_err());
    /// assert!(RoomCode::parse("A3B7K!").is_err());
    /// ```
    pub fn parse(typed: &str) -> Result<Self, Error> {
        let t = typed.trim().as_bytes();
        if t.len() != CODE_LEN {
            return Err(Error::BadCode);
        }
        let mut out = [0u8; CODE_LEN];
        for (o, &b) in out.iter_mut().zip(t) {
            let up = b.to_ascii_uppercase();
            if !CODE_ALPHABET.contains(&up) {
                return Err(Error::BadCode);
            }
            *o = up;
        }
        Ok(Self(out))
    }

    /// Builds a code from six random bytes each below 252 (so `% 36` is uniform); callers
    /// reject larger bytes before calling.
    pub(crate) fn from_uniform_bytes(bytes: [u8; CODE_LEN]) -> Self {
        Self(bytes.map(|b| CODE_ALPHABET[usize::from(b) % CODE_ALPHABET.len()]))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("codes hold only ASCII letters and digits")
    }
}

impl fmt::Display for RoomCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RoomCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomCode({self})")
    }
}

impl Serialize for RoomCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RoomCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        RoomCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A room password as sent by a client. Its `Debug` never shows it, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip_client(json: &str, msg: ClientMessage) {
        assert_eq!(decode_client(json.as_bytes()).unwrap(), msg);
        let back = serde_json::to_string(&msg).unwrap();
        assert_eq!(decode_client(back.as_bytes()).unwrap(), msg);
    }

    #[test]
    fn documented_client_examples_decode() {
        let p = PeerId(0x1f2e3d4c5b6a7980);
        round_trip_client(
            r#"{"type":"hello","version":1}"#,
            ClientMessage::Hello {
                version: 1,
                resume: None,
            },
        );
        round_trip_client(
            r#"{"type":"create-room","password":"hunter2","max_peers":4}"#,
            ClientMessage::CreateRoom {
                password: Some(Password("hunter2".into())),
                max_peers: Some(4),
                pake: false,
            },
        );
        round_trip_client(
            r#"{"type":"create-room","pake":true}"#,
            ClientMessage::CreateRoom {
                password: None,
                max_peers: None,
                pake: true,
            },
        );
        round_trip_client(
            r#"{"type":"pake","to":"1f2e3d4c5b6a7980","data":"EbVdMfrWkhN1y2OyYwL8hPTcjpOgJ1CgZdUN1Sl4NUXA"}"#,
            ClientMessage::Pake {
                to: p,
                data: "EbVdMfrWkhN1y2OyYwL8hPTcjpOgJ1CgZdUN1Sl4NUXA".into(),
            },
        );
        round_trip_client(
            r#"{"type":"reject","peer":"1f2e3d4c5b6a7980","reason":"wrong-password"}"#,
            ClientMessage::Reject {
                peer: p,
                reason: RejectReason::WrongPassword,
            },
        );
        round_trip_client(
            r#"{"type":"reject","peer":"1f2e3d4c5b6a7980","reason":"too-many-attempts"}"#,
            ClientMessage::Reject {
                peer: p,
                reason: RejectReason::TooManyAttempts,
            },
        );
        round_trip_client(r#"{"type":"leave-room"}"#, ClientMessage::LeaveRoom);
        round_trip_client(
            r#"{"type":"offer","to":"1f2e3d4c5b6a7980","sdp":"v=0"}"#,
            ClientMessage::Offer {
                to: p,
                sdp: "v=0".into(),
                auth: None,
            },
        );
        round_trip_client(
            r#"{"type":"answer","to":"1f2e3d4c5b6a7980","sdp":"v=0","auth":"AQAB"}"#,
            ClientMessage::Answer {
                to: p,
                sdp: "v=0".into(),
                auth: Some("AQAB".into()),
            },
        );
        round_trip_client(
            r#"{"type":"candidate","to":"1f2e3d4c5b6a7980","candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdp_mid":"0","sdp_m_line_index":0}"#,
            ClientMessage::Candidate {
                to: p,
                candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
            },
        );
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"null",
            b"[]",
            b"{}",
            b"{\"type\":\"nope\"}",
            b"{\"type\":\"hello\"}",
            b"{\"type\":\"hello\",\"version\":-1}",
            b"{\"type\":\"offer\",\"to\":\"zz\",\"sdp\":\"\"}",
            b"\xff\xfe",
        ] {
            let err = decode_client(bad).unwrap_err();
            assert_eq!(err.code(), ErrorCode::BadMessage, "{bad:?}");
        }
        let big = vec![b' '; MAX_FRAME_BYTES + 1];
        assert_eq!(
            decode_client(&big).unwrap_err().code(),
            ErrorCode::FrameTooLarge
        );
    }

    #[test]
    fn an_auth_over_the_limit_is_a_bad_message() {
        let frame = |n: usize| {
            format!(
                r#"{{"type":"offer","to":"1f2e3d4c5b6a7980","sdp":"v=0","auth":"{}"}}"#,
                "A".repeat(n)
            )
        };
        assert!(decode_client(frame(MAX_AUTH_CHARS).as_bytes()).is_ok());
        let err = decode_client(frame(MAX_AUTH_CHARS + 1).as_bytes()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadMessage);
        assert!(err.to_string().contains("auth"), "{err}");
        let answer = frame(MAX_AUTH_CHARS + 1).replace("offer", "answer");
        assert_eq!(
            decode_client(answer.as_bytes()).unwrap_err().code(),
            ErrorCode::BadMessage
        );
        // Characters, not bytes: 2048 two-byte characters are within the limit.
        let wide = frame(0).replace(
            r#""auth":"""#,
            &format!(r#""auth":"{}""#, "é".repeat(MAX_AUTH_CHARS)),
        );
        assert!(decode_client(wide.as_bytes()).is_ok());
    }

    #[test]
    fn pake_inputs_over_the_limits_or_mixed_with_a_password_are_bad_messages() {
        let frame = |n: usize| {
            format!(
                r#"{{"type":"pake","to":"1f2e3d4c5b6a7980","data":"{}"}}"#,
                "A".repeat(n)
            )
        };
        assert!(decode_client(frame(MAX_PAKE_CHARS).as_bytes()).is_ok());
        let err = decode_client(frame(MAX_PAKE_CHARS + 1).as_bytes()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadMessage);
        assert!(err.to_string().contains("data"), "{err}");
        let both =
            decode_client(br#"{"type":"create-room","pake":true,"password":"pw"}"#).unwrap_err();
        assert_eq!(both.code(), ErrorCode::BadMessage);
        // The password must not be echoed back in the error.
        assert!(!both.to_string().contains("\"pw\""), "{both}");
        assert!(decode_client(br#"{"type":"create-room","pake":false,"password":"pw"}"#).is_ok());
        for bad in [
            r#"{"type":"reject","peer":"1f2e3d4c5b6a7980","reason":"bored"}"#,
            r#"{"type":"reject","peer":"1f2e3d4c5b6a7980"}"#,
            r#"{"type":"pake","to":"1f2e3d4c5b6a7980"}"#,
            r#"{"type":"pake","to":"zz","data":"AA"}"#,
        ] {
            assert_eq!(
                decode_client(bad.as_bytes()).unwrap_err().code(),
                ErrorCode::BadMessage,
                "{bad}"
            );
        }
    }

    #[test]
    fn reclaims_decode_and_out_of_order_or_passworded_ones_are_bad_messages() {
        round_trip_client(
            r#"{"type":"join-room","code":"A3B7K9","reclaim":{"number":2,"next":4}}"#,
            ClientMessage::JoinRoom {
                code: "A3B7K9".into(),
                password: None,
                reclaim: Some(Reclaim {
                    number: 2,
                    next: 4,
                    pake: false,
                }),
            },
        );
        let top = MAX_RECLAIM_NUMBER;
        assert!(
            decode_client(
                format!(
                    r#"{{"type":"join-room","code":"A","reclaim":{{"number":1,"next":{top}}}}}"#
                )
                .as_bytes()
            )
            .is_ok()
        );
        for bad in [
            r#"{"type":"join-room","code":"A","reclaim":{"number":0,"next":2}}"#.to_owned(),
            r#"{"type":"join-room","code":"A","reclaim":{"number":3,"next":3}}"#.to_owned(),
            r#"{"type":"join-room","code":"A","reclaim":{"number":4,"next":3}}"#.to_owned(),
            format!(
                r#"{{"type":"join-room","code":"A","reclaim":{{"number":1,"next":{}}}}}"#,
                top + 1
            ),
            r#"{"type":"join-room","code":"A","reclaim":{"number":1}}"#.to_owned(),
            r#"{"type":"join-room","code":"A","password":"pw","reclaim":{"number":1,"next":2}}"#
                .to_owned(),
        ] {
            let err = decode_client(bad.as_bytes()).unwrap_err();
            assert_eq!(err.code(), ErrorCode::BadMessage, "{bad}");
            assert!(!err.to_string().contains("\"pw\""), "{err}");
        }
    }

    #[test]
    fn joined_says_pake_only_when_true() {
        let joined = |pake| ServerMessage::Joined {
            code: RoomCode::parse("A3B7K9").unwrap(),
            members: vec![PeerId(1)],
            numbers: vec![1],
            host: PeerId(1),
            number: 1,
            pake,
        };
        assert!(!joined(false).to_json().contains("pake"));
        assert!(joined(true).to_json().contains(r#""pake":true"#));
        let old: ServerMessage = serde_json::from_str(
            r#"{"type":"joined","code":"A3B7K9","members":["0000000000000001"],"numbers":[1],"host":"0000000000000001","number":1}"#,
        )
        .unwrap();
        assert_eq!(old, joined(false));
    }

    #[test]
    fn unknown_fields_are_ignored_for_forward_compatibility() {
        let msg = decode_client(br#"{"type":"leave-room","added_in_v1_1":true}"#).unwrap();
        assert_eq!(msg, ClientMessage::LeaveRoom);
    }

    #[test]
    fn password_debug_is_redacted() {
        let msg = ClientMessage::JoinRoom {
            code: "AAAAAA".into(),
            password: Some(Password("secret-pw".into())),
            reclaim: None,
        };
        assert!(!format!("{msg:?}").contains("secret-pw"));
    }

    #[test]
    fn codes_parse_case_insensitively_and_reject_junk() {
        assert_eq!(RoomCode::parse("abc123").unwrap().as_str(), "ABC123");
        for bad in ["", "ABC12", "ABC1234", "ABC 12", "ÄBC123", "abc-12"] {
            assert_eq!(RoomCode::parse(bad), Err(Error::BadCode), "{bad}");
        }
    }

    #[test]
    fn peer_ids_are_sixteen_hex_digits() {
        let p = PeerId(42);
        assert_eq!(p.to_string(), "000000000000002a");
        assert_eq!("000000000000002a".parse::<PeerId>(), Ok(p));
        assert!("2a".parse::<PeerId>().is_err());
        assert!("+00000000000002a".parse::<PeerId>().is_err());
    }
}
