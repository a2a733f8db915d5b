//! The in-memory transport: peers in one process, linked and cut at will (tests, benchmarks).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use bassline_net::{MemoryNet, TransportEvent};
//! let net = MemoryNet::new();
//! let mut a = net.join(1, None);
//! let mut b = net.join(2, Some(1));
//! net.link(1, 2);
//! assert!(matches!(a.next_event().await, Some(TransportEvent::Identity { me: 1, .. })));
//! assert!(matches!(a.next_event().await, Some(TransportEvent::Up(l)) if l.peer == 2));
//! # });
//! ```

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use bassline_sync::{Channel, PeerId};
use tokio::sync::mpsc;

use crate::{
    link::{EVENT_QUEUE, Events, Link, LinkEnds, LinkId, LinkInfo, Path, TransportEvent, deliver},
    transport::Transport,
};

/// A set of peers in one process and the links between them.
#[derive(Clone, Debug, Default)]
pub struct MemoryNet {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    peers: HashMap<PeerId, Events>,
    /// Close signals of live links, by unordered pair.
    links: HashMap<(PeerId, PeerId), [Arc<tokio::sync::Notify>; 2]>,
}

fn pair(a: PeerId, b: PeerId) -> (PeerId, PeerId) {
    (a.min(b), a.max(b))
}

impl MemoryNet {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update is a single insert or remove, so a poisoned lock holds consistent data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A peer's transport. `host` is handed to the driver with its identity.
    pub fn join(&self, me: PeerId, host: Option<PeerId>) -> Transport {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let _ = tx.try_send(TransportEvent::Identity { me, host });
        self.lock().peers.insert(me, tx);
        Transport::from_receiver(rx)
    }

    /// Opens a link between two joined peers (replacing any link they had).
    pub fn link(&self, a: PeerId, b: PeerId) {
        self.cut(a, b);
        let mut inner = self.lock();
        let (Some(ea), Some(eb)) = (inner.peers.get(&a).cloned(), inner.peers.get(&b).cloned())
        else {
            return;
        };
        let info = LinkInfo {
            path: Path::Direct,
            rtt: None,
        };
        let (la, ends_a) = Link::new(b, LinkId::fresh(), info);
        let (lb, ends_b) = Link::new(a, LinkId::fresh(), info);
        inner
            .links
            .insert(pair(a, b), [ends_a.close.clone(), ends_b.close.clone()]);
        drop(inner);
        let (ida, idb) = (la.id, lb.id);
        let (ca, cb) = (ends_a.close.clone(), ends_b.close.clone());
        let _ = ea.try_send(TransportEvent::Up(la));
        let _ = eb.try_send(TransportEvent::Up(lb));
        tokio::spawn(carry(
            ends_a,
            cb,
            (b, ida, ea.clone()),
            (a, idb, eb.clone()),
        ));
        tokio::spawn(carry(ends_b, ca, (a, idb, eb), (b, ida, ea)));
    }

    /// Closes the link between two peers, as a network failure would: both sides see it go.
    pub fn cut(&self, a: PeerId, b: PeerId) {
        if let Some(closes) = self.lock().links.remove(&pair(a, b)) {
            for c in closes {
                c.notify_one();
            }
        }
    }

    /// Removes a peer, as if its process died: every link of it goes down.
    pub fn crash(&self, me: PeerId) {
        let others: Vec<PeerId> = self
            .lock()
            .links
            .keys()
            .filter_map(|&(x, y)| (x == me).then_some(y).or((y == me).then_some(x)))
            .collect();
        for o in others {
            self.cut(me, o);
        }
        self.lock().peers.remove(&me);
    }
}

impl MemoryNet {
    /// Removes a peer for good, as leaving the room does: its links go down and every other
    /// peer is told it left (as the signaling server's `peer-left`).
    pub fn leave(&self, me: PeerId) {
        self.crash(me);
        let others: Vec<Events> = self.lock().peers.values().cloned().collect();
        for o in others {
            let _ = o.try_send(TransportEvent::Left { peer: me });
        }
    }
}

/// Moves one side's frames to the other until either side closes, then tells its own side
/// the link is down and closes the other half too.
async fn carry(
    mut ends: LinkEnds,
    other_close: Arc<tokio::sync::Notify>,
    (peer, link, own): (PeerId, LinkId, Events),
    (me, their_link, theirs): (PeerId, LinkId, Events),
) {
    loop {
        let (channel, frame) = tokio::select! {
            () = ends.close.notified() => break,
            f = ends.reliable.recv() => match f { Some(f) => (Channel::Reliable, f), None => break },
            f = ends.unreliable.recv() => match f { Some(f) => (Channel::Unreliable, f), None => break },
        };
        if !deliver(&theirs, me, their_link, channel, frame).await {
            break;
        }
    }
    other_close.notify_one();
    let _ = own.send(TransportEvent::Down { peer, link }).await;
}
