//! A room on a perfect network: sessions wired back to back, frames delivered instantly and in
//! order, timers advanced by hand. For tests and benchmarks of behaviour without faults.

use std::time::Duration;

use bassline_core::{Id, Network, Value};
use bassline_sync::{Candidacy, Config, Event, Session};

/// A host and guests on a perfect network, moved by hand.
#[derive(Debug)]
pub struct Room {
    pub peers: Vec<Session>,
    pub now: Duration,
    /// Every event every peer reported, with the peer's id.
    pub events: Vec<(u64, Event)>,
}

impl Room {
    /// A host (peer 1) over `network` and `guests` guests (peers 2, 3, ...), all connected
    /// and synced.
    pub fn new(guests: u64, network: Network) -> Room {
        Room::with_configs(guests, network, Config::default(), Config::default(), true)
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

    fn with_configs(
        guests: u64,
        network: Network,
        host: Config,
        guest: Config,
        mesh: bool,
    ) -> Room {
        let mut peers = vec![Session::host(1, host, network)];
        for g in 0..guests {
            peers.push(Session::guest(2 + g, Some(1), guest.clone()));
        }
        let mut room = Room {
            peers,
            now: Duration::ZERO,
            events: Vec::new(),
        };
        let ids: Vec<u64> = room.peers.iter().map(Session::id).collect();
        for a in 0..room.peers.len() {
            for &b in &ids {
                let now = room.now;
                let linked = mesh || a == 0 || b == 1;
                if room.peers[a].id() != b && linked {
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

    /// Delivers frames (in order, instantly) until nobody has anything to send, letting
    /// batch timers fire.
    pub fn settle(&mut self) {
        for _ in 0..50 {
            let mut moved = false;
            for i in 0..self.peers.len() {
                let from = self.peers[i].id();
                while let Some(tx) = self.peers[i].poll_transmit() {
                    moved = true;
                    // Frames to a peer that has gone are lost.
                    let Some(to) = self.position_of(tx.to) else {
                        continue;
                    };
                    let now = self.now;
                    self.peers[to].handle_receive(now, from, tx.channel, &tx.frame);
                }
                while let Some(e) = self.peers[i].poll_event() {
                    self.events.push((from, e));
                }
            }
            if !moved {
                self.now += Duration::from_millis(20);
                let now = self.now;
                for p in &mut self.peers {
                    p.handle_timeout(now);
                }
                if self.peers.iter().all(|p| p.pending() == 0) {
                    return;
                }
            }
        }
    }

    /// Delivers everything peer `i` has to send, now.
    pub fn deliver_from(&mut self, i: usize) {
        let from = self.peers[i].id();
        while let Some(tx) = self.peers[i].poll_transmit() {
            let to = self.index(tx.to);
            let now = self.now;
            self.peers[to].handle_receive(now, from, tx.channel, &tx.frame);
        }
    }

    /// A contact's value as peer `peer` sees it.
    pub fn value(&self, peer: u64, c: &str) -> Value {
        let id = Id::new(c).expect("valid id");
        let contact = self.peers[self.index(peer)].network().contact(&id);
        contact.expect("contact exists").value.clone()
    }
}
