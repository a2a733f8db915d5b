//! Presence: where the other people in the session are and what they look at (their pointer,
//! group and selection, under a name and a colour each), and when to tell them about us.
//!
//! Plain Rust, tested natively; `ui/presence.rs` draws it. Presence travels on the session's
//! unreliable channel ([`crate::backend::Backend::send_presence`]), so a lost update is simply
//! replaced by the next one: we send when something changed (at most [`MIN_GAP`] apart) and
//! again every [`KEEPALIVE`] while nothing does, and forget a peer after [`SILENCE`] without
//! a word, or at once when the server says its link closed (a presence with no group).

use std::{collections::BTreeMap, time::Duration};

use bassline_core::Id;
use bassline_protocol::Presence;
use bassline_sync::PeerId;

/// At most 20 presence updates a second.
pub const MIN_GAP: Duration = Duration::from_millis(50);
/// A peer that has nothing new still says so this often, so silence means it is gone.
pub const KEEPALIVE: Duration = Duration::from_secs(2);
/// A peer not heard from for this long is no longer shown.
pub const SILENCE: Duration = Duration::from_secs(6);
/// Names are cut to this many characters (they are shown in a small tag).
pub const MAX_NAME: usize = 32;

/// The colour of a peer, from its id alone, so every page paints the same peer the same:
/// hues spread by the golden angle, so consecutive ids differ clearly.
pub fn colour(peer: PeerId) -> String {
    let hue = (peer as f64 * 137.508).rem_euclid(360.0);
    format!("hsl({hue:.0}, 70%, 42%)")
}

/// The name a browser starts with: `guest-` and four hex digits from `seed` (random).
pub fn default_name(seed: u64) -> String {
    format!("guest-{:04x}", seed & 0xffff)
}

/// A name as we show and send it: trimmed, at most [`MAX_NAME`] characters; empty means
/// "use the default".
pub fn clean_name(name: &str) -> Option<String> {
    let name: String = name.trim().chars().take(MAX_NAME).collect();
    (!name.is_empty()).then_some(name)
}

/// What another peer last told us.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    pub id: PeerId,
    pub name: String,
    pub colour: String,
    pub group: Id,
    /// Pointer position in canvas units of `group`.
    pub cursor: Option<(f64, f64)>,
    pub selection: Vec<Id>,
    /// When we last heard from it (the page's clock).
    pub seen: Duration,
}

/// Everyone else's presence, by peer id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Peers {
    peers: BTreeMap<PeerId, Peer>,
}

impl Peers {
    /// Takes in a presence from `peer`. One with no group means the peer left (or looks at
    /// nothing); one about ourselves (`me`) is ignored. Returns whether anything shown changed.
    pub fn receive(
        &mut self,
        me: Option<PeerId>,
        peer: PeerId,
        p: Presence,
        now: Duration,
    ) -> bool {
        if Some(peer) == me {
            return false;
        }
        let Some(group) = p.group else {
            return self.peers.remove(&peer).is_some();
        };
        let name = p
            .name
            .as_deref()
            .and_then(clean_name)
            .unwrap_or_else(|| format!("peer {peer}"));
        let cursor = p
            .cursor
            .map(|(x, y)| (f64::from(x), f64::from(y)))
            .filter(|(x, y)| x.is_finite() && y.is_finite());
        let next = Peer {
            id: peer,
            name,
            colour: colour(peer),
            group,
            cursor,
            selection: p.selection,
            seen: now,
        };
        let changed = self.peers.get(&peer).is_none_or(|old| {
            Peer {
                seen: now,
                ..old.clone()
            } != next
        });
        self.peers.insert(peer, next);
        changed
    }

    /// Forgets peers silent for [`SILENCE`]. Returns whether any went.
    pub fn expire(&mut self, now: Duration) -> bool {
        let before = self.peers.len();
        self.peers
            .retain(|_, p| now.saturating_sub(p.seen) < SILENCE);
        self.peers.len() != before
    }

    /// Forgets everyone (the link or the session changed).
    pub fn clear(&mut self) -> bool {
        let had = !self.peers.is_empty();
        self.peers.clear();
        had
    }

    pub fn iter(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values()
    }

    /// The peers looking at `group`.
    pub fn in_group<'a>(&'a self, group: &'a Id) -> impl Iterator<Item = &'a Peer> + 'a {
        self.peers.values().filter(move |p| &p.group == group)
    }
}

/// When to send our own presence: what we sent last and when.
#[derive(Debug, Default)]
pub struct Outbox {
    last: Option<(Presence, Duration)>,
}

impl Outbox {
    /// Whether `current` should go out now: it differs from what we sent and [`MIN_GAP`]
    /// has passed, or [`KEEPALIVE`] has passed. Records it as sent when so.
    pub fn due(&mut self, current: &Presence, now: Duration) -> bool {
        let send = match &self.last {
            None => true,
            Some((sent, at)) => {
                let since = now.saturating_sub(*at);
                (sent != current && since >= MIN_GAP) || since >= KEEPALIVE
            }
        };
        if send {
            self.last = Some((current.clone(), now));
        }
        send
    }

    /// Forget what was sent (a new link: the other side knows nothing of us).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bassline_core::id;

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn here(x: f32) -> Presence {
        Presence {
            name: Some("  ada  ".into()),
            group: Some(id!("root")),
            cursor: Some((x, 5.0)),
            selection: vec![id!("c1")],
            peer: None,
        }
    }

    #[test]
    fn peers_appear_change_and_leave() {
        let mut peers = Peers::default();
        assert!(peers.receive(Some(1), 2, here(1.0), at(0)));
        let p = peers.iter().next().expect("peer 2 shown");
        assert_eq!((p.id, p.name.as_str()), (2, "ada"));
        assert_eq!(p.cursor, Some((1.0, 5.0)));
        assert_eq!(peers.in_group(&id!("root")).count(), 1);
        assert_eq!(peers.in_group(&id!("g1")).count(), 0);
        assert!(!peers.receive(Some(1), 2, here(1.0), at(10)), "nothing new");
        assert!(peers.receive(Some(1), 2, here(2.0), at(20)), "moved");
        assert!(
            !peers.receive(Some(1), 1, here(3.0), at(20)),
            "ourselves, as relayed"
        );
        assert_eq!(peers.iter().count(), 1);
        // Gone: a presence with no group.
        assert!(peers.receive(Some(1), 2, Presence::default(), at(30)));
        assert_eq!(peers.iter().count(), 0);
    }

    #[test]
    fn a_silent_peer_is_forgotten_and_a_talking_one_kept() {
        let mut peers = Peers::default();
        peers.receive(None, 2, here(1.0), at(0));
        peers.receive(None, 3, here(1.0), at(0));
        peers.receive(None, 3, here(1.0), KEEPALIVE);
        assert!(!peers.expire(SILENCE - at(1)));
        assert!(peers.expire(SILENCE));
        let left: Vec<PeerId> = peers.iter().map(|p| p.id).collect();
        assert_eq!(left, [3]);
    }

    #[test]
    fn bad_presence_from_a_peer_is_tamed() {
        let mut peers = Peers::default();
        let long = "x".repeat(500);
        peers.receive(
            None,
            2,
            Presence {
                name: Some(long),
                cursor: Some((f32::NAN, 1.0)),
                ..here(0.0)
            },
            at(0),
        );
        let p = peers.iter().next().expect("shown");
        assert_eq!(p.name.chars().count(), MAX_NAME);
        assert_eq!(p.cursor, None, "a NaN pointer is not drawn");
        peers.receive(
            None,
            3,
            Presence {
                name: Some("   ".into()),
                ..here(0.0)
            },
            at(0),
        );
        assert!(peers.iter().any(|p| p.name == "peer 3"));
    }

    #[test]
    fn the_outbox_sends_changes_at_most_every_gap_and_keeps_alive() {
        let mut out = Outbox::default();
        assert!(out.due(&here(1.0), at(0)), "first one goes");
        assert!(!out.due(&here(1.0), at(10)), "unchanged");
        assert!(!out.due(&here(2.0), at(20)), "changed, but too soon");
        assert!(out.due(&here(2.0), at(60)), "changed, gap passed");
        assert!(!out.due(&here(2.0), at(60) + KEEPALIVE - at(1)));
        assert!(out.due(&here(2.0), at(60) + KEEPALIVE), "keepalive");
        out.reset();
        assert!(out.due(&here(2.0), at(60) + KEEPALIVE + at(1)));
    }

    #[test]
    fn colours_and_names() {
        assert_eq!(colour(7), colour(7));
        assert_ne!(colour(2), colour(3));
        assert_eq!(default_name(0x1234_abcd), "guest-abcd");
        assert_eq!(clean_name("  bo "), Some("bo".into()));
        assert_eq!(clean_name(" "), None);
    }
}
