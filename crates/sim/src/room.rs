//! A room on a perfect network, moved by hand: sessions wired back to back, frames delivered
//! instantly and in order unless their link is cut, timers advanced explicitly. For scenario
//! tests (each a finding written down as the steps that show it) and benchmarks.

use std::{collections::BTreeSet, time::Duration};

use bassline_core::{Id, Network, Request, Value};
use bassline_protocol::{Command, Signature};
use bassline_sync::{
    Candidacy, Config, Ed25519Identity, Event, Identity, LocalOutcome, OpId, Session,
};

/// A host and guests on a perfect network.
#[derive(Debug)]
pub struct Room {
    pub peers: Vec<Session>,
    pub now: Duration,
    /// Every event every peer reported, with the peer's id.
    pub events: Vec<(u64, Event)>,
    /// Links that carry nothing (lower id first).
    pub cut: BTreeSet<(u64, u64)>,
}

fn link(a: u64, b: u64) -> (u64, u64) {
    (a.min(b), a.max(b))
}

impl Room {
    /// Peer `peer`'s Ed25519 identity in every room: rooms sign with real Ed25519, each
    /// peer with its own key, so tests can forge (sign with the wrong key) and can sign as a
    /// peer would when they play it.
    pub fn identity(peer: u64) -> Ed25519Identity {
        let mut secret = [0x5a; 32];
        secret[..8].copy_from_slice(&peer.to_le_bytes());
        Ed25519Identity::from_secret(secret)
    }

    /// `signer`'s signature over an operation (`signer` = the op's origin: a genuine one).
    pub fn sign(signer: u64, op: OpId, ts: u64, command: &Command) -> Signature {
        Room::identity(signer)
            .sign(&bassline_protocol::signed_bytes(op, ts, command).expect("test commands encode"))
    }

    /// `config` with peer `peer`'s identity (a peer that comes back keeps its key).
    pub fn as_peer(peer: u64, config: Config) -> Config {
        Config {
            identity: std::sync::Arc::new(Room::identity(peer)),
            ..config
        }
    }

    /// A host (peer 1) over `network` and `guests` guests (peers 2, 3, ...), all connected
    /// and synced.
    pub fn new(guests: u64, network: Network) -> Room {
        Room::with_configs(guests, network, Config::default(), Config::default(), true)
    }

    /// Like [`Room::new`], every session with `config`.
    pub fn with_config(guests: u64, network: Network, config: Config) -> Room {
        Room::with_configs(guests, network, config.clone(), config, true)
    }

    /// Remote mode: a permanent host and clients that never stand for election, each linked
    /// only to the host.
    pub fn remote(clients: u64, network: Network) -> Room {
        let host = Config {
            candidacy: Candidacy::Permanent,
            ..Config::default()
        };
        let client = Config {
            candidacy: Candidacy::Never,
            ..Config::default()
        };
        Room::with_configs(clients, network, host, client, false)
    }

    /// A host (peer 1, with `host`) and one guest per config (peers 2, 3, ...), all linked.
    pub fn custom(network: Network, host: Config, guests: Vec<Config>) -> Room {
        let mut peers = vec![Session::host(1, Room::as_peer(1, host), network)];
        for (g, config) in guests.into_iter().enumerate() {
            let id = 2 + g as u64;
            peers.push(Session::guest(id, Some(1), Room::as_peer(id, config)));
        }
        Room::wire(peers, true)
    }

    fn with_configs(
        guests: u64,
        network: Network,
        host: Config,
        guest: Config,
        mesh: bool,
    ) -> Room {
        let mut peers = vec![Session::host(1, Room::as_peer(1, host), network)];
        for g in 0..guests {
            let id = 2 + g;
            peers.push(Session::guest(
                id,
                Some(1),
                Room::as_peer(id, guest.clone()),
            ));
        }
        Room::wire(peers, mesh)
    }

    /// Links the sessions (all pairs, or only to the host) and lets them sync.
    fn wire(peers: Vec<Session>, mesh: bool) -> Room {
        let mut room = Room {
            peers,
            now: Duration::ZERO,
            events: Vec::new(),
            cut: BTreeSet::new(),
        };
        let ids: Vec<u64> = room.peers.iter().map(Session::id).collect();
        for &a in &ids {
            for &b in &ids {
                if a < b && !(mesh || a == 1) {
                    room.cut.insert((a, b));
                }
            }
        }
        for a in 0..room.peers.len() {
            for &b in &ids {
                let now = room.now;
                if room.peers[a].id() != b && !room.cut.contains(&link(room.peers[a].id(), b)) {
                    room.peers[a].handle_connected(now, b);
                }
            }
        }
        room.settle();
        room
    }

    pub fn index(&self, id: u64) -> usize {
        self.position_of(id).expect("peer exists")
    }

    pub fn position_of(&self, id: u64) -> Option<usize> {
        self.peers.iter().position(|p| p.id() == id)
    }

    pub fn peer(&mut self, id: u64) -> &mut Session {
        let i = self.index(id);
        &mut self.peers[i]
    }

    /// Delivers frames (in order, instantly) until nobody has anything to send, letting
    /// batch timers fire.
    pub fn settle(&mut self) {
        for _ in 0..50 {
            let moved = self.deliver_all();
            if !moved {
                self.tick(Duration::from_millis(20));
                if self.peers.iter().all(|p| p.pending() == 0) && !self.deliver_all() {
                    return;
                }
            }
        }
    }

    /// Lets `d` of time pass in steps of 20 ms, delivering everything and firing timers.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            while self.deliver_all() {}
            self.tick(Duration::from_millis(20));
        }
        while self.deliver_all() {}
    }

    fn tick(&mut self, d: Duration) {
        self.now += d;
        let now = self.now;
        for p in &mut self.peers {
            p.handle_timeout(now);
        }
    }

    /// Delivers every frame waiting to be sent; returns whether any moved.
    fn deliver_all(&mut self) -> bool {
        let mut moved = false;
        for i in 0..self.peers.len() {
            let from = self.peers[i].id();
            while let Some(tx) = self.peers[i].poll_transmit() {
                moved = true;
                // Frames to a peer that has gone, or over a cut link, are lost.
                let Some(to) = self.position_of(tx.to) else {
                    continue;
                };
                if self.cut.contains(&link(from, tx.to)) {
                    continue;
                }
                let now = self.now;
                self.peers[to].handle_receive(now, from, tx.channel, &tx.frame);
            }
            while let Some(e) = self.peers[i].poll_event() {
                self.events.push((from, e));
            }
        }
        moved
    }

    /// Delivers everything peer `i` has to send, now.
    pub fn deliver_from(&mut self, i: usize) {
        let from = self.peers[i].id();
        while let Some(tx) = self.peers[i].poll_transmit() {
            if self.cut.contains(&link(from, tx.to)) {
                continue;
            }
            let Some(to) = self.position_of(tx.to) else {
                continue;
            };
            let now = self.now;
            self.peers[to].handle_receive(now, from, tx.channel, &tx.frame);
        }
    }

    /// Cuts the link between `a` and `b`: both see it close.
    pub fn cut_link(&mut self, a: u64, b: u64) {
        if self.cut.insert(link(a, b)) {
            let now = self.now;
            for (x, y) in [(a, b), (b, a)] {
                if let Some(i) = self.position_of(x) {
                    self.peers[i].handle_disconnected(now, y);
                }
            }
        }
    }

    /// Brings the link between `a` and `b` back.
    pub fn heal_link(&mut self, a: u64, b: u64) {
        if self.cut.remove(&link(a, b)) {
            let now = self.now;
            for (x, y) in [(a, b), (b, a)] {
                if let Some(i) = self.position_of(x) {
                    self.peers[i].handle_connected(now, y);
                }
            }
        }
    }

    /// Splits the room: every link between `side` and the others is cut.
    pub fn partition(&mut self, side: &[u64]) {
        let ids: Vec<u64> = self.peers.iter().map(Session::id).collect();
        for &a in side {
            for &b in &ids {
                if !side.contains(&b) {
                    self.cut_link(a, b);
                }
            }
        }
    }

    /// Heals every cut link.
    pub fn heal_all(&mut self) {
        let links: Vec<(u64, u64)> = self.cut.iter().copied().collect();
        for (a, b) in links {
            self.heal_link(a, b);
        }
    }

    /// Peer `id` stops at once; the others see its links close.
    pub fn crash(&mut self, id: u64) {
        let i = self.index(id);
        self.peers.remove(i);
        let now = self.now;
        for p in &mut self.peers {
            p.handle_disconnected(now, id);
        }
        self.cut.retain(|(a, b)| *a != id && *b != id);
    }

    /// A new session joins, linked to everyone.
    pub fn join(&mut self, session: Session) {
        let id = session.id();
        let now = self.now;
        let others: Vec<u64> = self.peers.iter().map(Session::id).collect();
        self.peers.push(session);
        for other in others {
            self.peer(id).handle_connected(now, other);
            self.peer(other).handle_connected(now, id);
        }
    }

    /// Peer `id` makes an edit; returns its operation id (or panics with the refusal).
    pub fn edit(&mut self, id: u64, request: Request) -> OpId {
        let now = self.now;
        match self.peer(id).handle_local(now, request) {
            Ok(LocalOutcome::Submitted { op, .. }) => op,
            other => panic!("peer {id} could not edit: {other:?}"),
        }
    }

    /// A contact's value as peer `peer` sees it.
    pub fn value(&self, peer: u64, c: &str) -> Value {
        let id = Id::new(c).expect("valid id");
        let contact = self.peers[self.index(peer)].network().contact(&id);
        contact.expect("contact exists").value.clone()
    }

    /// The peers that lead (a settled room has one).
    pub fn hosts(&self) -> Vec<u64> {
        self.peers
            .iter()
            .filter(|p| p.role() == bassline_sync::Role::Host)
            .map(Session::id)
            .collect()
    }

    /// The last decision each peer was told of operation `op` (its origin's `Decided`).
    pub fn decision(&self, op: OpId) -> Option<bassline_sync::Decision> {
        self.events.iter().rev().find_map(|(p, e)| match e {
            Event::Decided {
                op: o, decision, ..
            } if *o == op && *p == op.peer => Some(decision.clone()),
            _ => None,
        })
    }

    /// Whether every peer holds the same state (hash) and position.
    pub fn converged(&mut self) -> bool {
        let hashes: Vec<_> = self.peers.iter_mut().map(Session::state_hash).collect();
        let positions: Vec<_> = self.peers.iter().map(Session::position).collect();
        hashes.windows(2).all(|w| w[0] == w[1]) && positions.windows(2).all(|w| w[0] == w[1])
    }
}
