//! What every transport hands the driver: links to peers, frames from them, and news.
//!
//! A transport's background tasks open links; each live link is a [`Link`] whose `send` never
//! blocks and never queues without bound. Frames wait in a small per-channel queue in front of
//! the link's writer task; when the reliable queue is full the peer is not reading fast enough
//! and the link is given up (the session catches the peer up when it comes back), and when the
//! unreliable queue is full the frame is dropped (heartbeats and presence are replaced by the
//! next ones anyway).

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bassline_sync::{Channel, PeerId};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

/// Frames that may wait for one link's reliable channel before the link counts as stalled:
/// with 64 KiB frames at most 16 MiB, far more than a whole 100,000-contact state (2.3 MB).
pub const RELIABLE_QUEUE: usize = 256;
/// Frames that may wait for the unreliable channel; past that they are dropped.
pub const UNRELIABLE_QUEUE: usize = 64;

/// Identifies one link, so news about a link that was already replaced is recognised as stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u64);

impl LinkId {
    /// A link id no other link of this process has.
    pub fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        LinkId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// How a link reaches its peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Path {
    /// Straight to the peer (host or server-reflexive candidates, a WebSocket, memory).
    Direct,
    /// Through a TURN relay.
    Relayed,
}

/// Measurements a transport updates while a link lives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkInfo {
    pub path: Path,
    /// Round-trip time of the link, when the transport measures it.
    pub rtt: Option<Duration>,
}

/// Why a frame was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The peer does not read fast enough: give the link up.
    Stalled,
    /// The link is closed.
    Closed,
}

/// A live link to one peer: both channels are open.
pub struct Link {
    pub peer: PeerId,
    pub id: LinkId,
    queues: [mpsc::Sender<Vec<u8>>; 2],
    info: watch::Receiver<LinkInfo>,
    /// Dropping or signalling this closes the link's tasks.
    close: Arc<tokio::sync::Notify>,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("peer", &self.peer)
            .field("id", &self.id)
            .field("info", &*self.info.borrow())
            .finish_non_exhaustive()
    }
}

/// The transport's half of a link: where its writer task takes frames from, and its
/// measurements and close signal.
#[derive(Debug)]
pub struct LinkEnds {
    /// Frames for the reliable and the unreliable channel, in order.
    pub reliable: mpsc::Receiver<Vec<u8>>,
    pub unreliable: mpsc::Receiver<Vec<u8>>,
    pub info: watch::Sender<LinkInfo>,
    pub close: Arc<tokio::sync::Notify>,
}

impl Link {
    /// A link and the ends its transport serves.
    pub fn new(peer: PeerId, id: LinkId, info: LinkInfo) -> (Link, LinkEnds) {
        let (rtx, rrx) = mpsc::channel(RELIABLE_QUEUE);
        let (utx, urx) = mpsc::channel(UNRELIABLE_QUEUE);
        let (itx, irx) = watch::channel(info);
        let close = Arc::new(tokio::sync::Notify::new());
        (
            Link {
                peer,
                id,
                queues: [rtx, utx],
                info: irx,
                close: close.clone(),
            },
            LinkEnds {
                reliable: rrx,
                unreliable: urx,
                info: itx,
                close,
            },
        )
    }

    /// Queues a frame without waiting. A full reliable queue means the link has stalled; a full
    /// unreliable queue drops the frame and reports success, as an unreliable channel would.
    pub fn send(&self, channel: Channel, frame: Vec<u8>) -> Result<(), SendError> {
        match self.queues[channel as usize].try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) if channel == Channel::Unreliable => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(SendError::Stalled),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Closed),
        }
    }

    /// The link's latest measurements.
    pub fn info(&self) -> LinkInfo {
        *self.info.borrow()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // The transport's tasks for this link stop when the driver lets go of it.
        self.close.notify_waiters();
        self.close.notify_one();
    }
}

/// What a transport reports to the driver.
#[derive(Debug)]
pub enum TransportEvent {
    /// This process's peer id in the session, and the host to follow if one is known. Comes
    /// before anything else; a later one with another id means the transport had to start
    /// over under a new id (its old place was lost).
    Identity { me: PeerId, host: Option<PeerId> },
    /// A link to a peer is open on both channels.
    Up(Link),
    /// The link closed (or could not be kept up).
    Down { peer: PeerId, link: LinkId },
    /// A frame arrived.
    Frame {
        peer: PeerId,
        link: LinkId,
        channel: Channel,
        frame: Vec<u8>,
    },
    /// The room this peer is in (P2P: its code).
    Room { code: String },
    /// A peer left the room for good (not merely lost its link).
    Left { peer: PeerId },
    /// The state of the transport's own connections (signaling, server) changed.
    Status(TransportStatus),
    /// An offer or answer from `peer` failed the room-key check and was dropped (the link
    /// attempt it belonged to was stopped). Not fatal.
    Tampered {
        peer: PeerId,
        error: bassline_trust::Error,
        /// It carried no signature at all.
        unsigned: bool,
    },
    /// Something that ends the session: wrong password, unknown room, ...
    Fatal(crate::Error),
}

/// The transport's own connection to a server (signaling or remote server).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum TransportStatus {
    /// Connected.
    Connected,
    /// Lost; the next attempt is this far in the future.
    Reconnecting {
        #[serde(rename = "retry_in_ms", serialize_with = "as_millis")]
        retry_in: Duration,
        attempt: u32,
    },
    /// (P2P.) Connected, but the signaling server lost the room (it restarted) and could not
    /// give it back; links to the members already here stay up, new members cannot join.
    RoomLost { code: String, message: String },
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Where a transport delivers what it has to say: a bounded queue, so a driver that falls
/// behind slows the transport's readers down instead of growing memory.
pub type Events = mpsc::Sender<TransportEvent>;

/// Size of a transport's event queue.
pub const EVENT_QUEUE: usize = 1024;

/// Carries one link's received frames to the driver; returns when the driver is gone.
pub async fn deliver(
    events: &Events,
    peer: PeerId,
    link: LinkId,
    channel: Channel,
    frame: Vec<u8>,
) -> bool {
    events
        .send(TransportEvent::Frame {
            peer,
            link,
            channel,
            frame,
        })
        .await
        .is_ok()
}
