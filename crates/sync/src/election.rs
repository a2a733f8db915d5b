//! Losing a host, asking around, electing the most up-to-date peer, and following a new host.

use std::cmp::Reverse;

use bassline_protocol::{Epoch, Message, PeerId, Position};

use crate::{
    Candidacy, Event,
    session::{Role, Session},
};

impl Session {
    /// The host went silent or its link closed. Ask the other peers first: a peer that merely
    /// lost its own link must not start an election while the others still see the host.
    pub(crate) fn host_lost(&mut self) {
        let Some(host) = self.host else {
            self.start_election();
            return;
        };
        // Heartbeats travel unreliably, so silence may just be loss: if the link to the host
        // is still open, ask the host itself too (it answers on the reliable channel).
        let ask: Vec<PeerId> = self.connected_peers().collect();
        if ask.is_empty() {
            self.start_election();
            return;
        }
        for p in ask {
            self.send(p, Message::HostQuery { host });
        }
        self.query_deadline = Some(self.now + self.config.query_timeout);
    }

    pub(crate) fn on_host_query(&mut self, from: PeerId, host: PeerId) {
        if self.role == Role::Host && host == self.me {
            self.send(
                from,
                Message::HostAnnounce {
                    epoch: self.epoch,
                    base: self.position,
                },
            );
            return;
        }
        let alive = self.role == Role::Guest && self.host == Some(host) && self.host_alive();
        self.send(from, Message::HostSeen { host, alive });
    }

    pub(crate) fn on_host_seen(&mut self, host: PeerId, alive: bool) {
        let asking = self.query_deadline.is_some() || self.role == Role::Electing;
        if alive && self.host == Some(host) && asking {
            // Others still see the host: no election; wait for our own link to come back.
            self.query_deadline = None;
            self.election_deadline = None;
            self.expected_host = None;
            self.role = Role::Guest;
            self.host_deadline = Some(self.now + self.config.host_timeout);
        }
    }

    fn host_alive(&self) -> bool {
        self.host.and_then(|h| self.peers.get(&h)).is_some_and(|p| {
            p.connected
                && p.last_heard
                    .is_some_and(|t| t + self.config.host_timeout > self.now)
        })
    }

    pub(crate) fn on_candidate(&mut self, from: PeerId, proposed: Epoch) {
        match self.role {
            Role::Host => {
                // The candidate may follow an epoch newer than ours whose host is gone (it was
                // elected on the far side of a partition and then crashed). A live host must be
                // able to win it over, so it moves to a number above what the candidate knows.
                if proposed.number > self.epoch.number {
                    self.flush_batch();
                    self.epoch = Epoch {
                        number: proposed.number,
                        host: self.me,
                    };
                    let peers: Vec<PeerId> = self.connected_peers().collect();
                    for p in peers {
                        self.send(
                            p,
                            Message::HostAnnounce {
                                epoch: self.epoch,
                                base: self.position,
                            },
                        );
                    }
                    self.events.push_back(Event::HostChanged {
                        host: self.me,
                        epoch: self.epoch,
                    });
                } else {
                    self.send(
                        from,
                        Message::HostAnnounce {
                            epoch: self.epoch,
                            base: self.position,
                        },
                    );
                }
            }
            Role::Guest if self.host_alive() => {
                if let Some(host) = self.host {
                    self.send(from, Message::HostSeen { host, alive: true });
                }
            }
            Role::Guest => self.start_election(),
            Role::Electing => {}
        }
    }

    /// Chooses the most up-to-date peer reachable (position, then lowest id) among those heard
    /// from recently; becomes host if that is this peer, otherwise waits for its announcement.
    pub(crate) fn start_election(&mut self) {
        let old_host = self.host;
        self.query_deadline = None;
        if self.role != Role::Electing {
            self.role = Role::Electing;
            let changes = self.rollback_tentative();
            self.events.push_back(Event::Changes(changes));
            // Tentative edits stay pending; they are re-sent to whoever wins.
            let changes = self.reapply_tentative();
            self.events.push_back(Event::Changes(changes));
        }
        let recent = self.now.saturating_sub(self.config.host_timeout);
        let mut best: Option<(Position, Reverse<PeerId>)> = (self.config.candidacy
            == Candidacy::Stand)
            .then_some((self.position, Reverse(self.me)));
        for (id, p) in &self.peers {
            let eligible = p.connected
                && Some(*id) != old_host
                && !p.passed_over
                && p.last_heard.is_some_and(|t| t >= recent);
            if let (true, Some(pos)) = (eligible, p.position) {
                best = best.max(Some((pos, Reverse(*id))));
            }
        }
        let Some((_, Reverse(winner))) = best else {
            // Nobody this peer can reach may lead: wait, read-only, and look again later.
            self.election_deadline = Some(self.now + self.config.election_timeout);
            return;
        };
        let highest = self
            .peers
            .values()
            .filter_map(|p| p.position.map(|pos| pos.epoch.number))
            .chain([self.epoch.number, self.position.epoch.number])
            .max()
            .unwrap_or(0);
        if winner == self.me {
            self.become_host(highest + 1);
        } else {
            self.expected_host = Some(winner);
            self.election_deadline = Some(self.now + self.config.election_timeout);
            let others: Vec<PeerId> = self.connected_peers().collect();
            let proposed = Epoch {
                number: highest + 1,
                host: winner,
            };
            for p in others {
                self.send(
                    p,
                    Message::Candidate {
                        epoch: proposed,
                        position: self.position,
                    },
                );
            }
        }
    }

    /// A peer announces it leads `epoch`. The higher epoch wins; a host that meets a higher
    /// one steps down, fetches the winner's state and re-submits what the winner lacks.
    pub(crate) fn on_announce(&mut self, from: PeerId, epoch: Epoch, _base: Position) {
        if self.config.candidacy == Candidacy::Permanent {
            self.events.push_back(Event::PeerMisbehaved {
                peer: from,
                reason: format!("claimed to lead epoch {} of a permanent host", epoch.number),
            });
            return;
        }
        if epoch.host != from {
            self.events.push_back(Event::PeerMisbehaved {
                peer: from,
                reason: format!("announced an epoch led by peer {}", epoch.host),
            });
            return;
        }
        let newer = epoch > self.epoch;
        // Without a live host, an announcement of the current epoch is welcome too: it may come
        // from the very host this peer lost, whose link is back.
        let hostless = self.role == Role::Electing
            || (self.role == Role::Guest && (self.host.is_none() || !self.host_alive()));
        if newer || (hostless && epoch >= self.epoch) {
            if self.role == Role::Host {
                // Stepping down. What we sequenced but have not broadcast goes out first, under
                // our own epoch, to the peers that still follow us; they and we re-submit it to
                // the new host after syncing.
                self.flush_batch();
                self.role = Role::Guest;
            }
            let changes = self.rollback_tentative();
            self.events.push_back(Event::Changes(changes));
            self.role = Role::Guest;
            self.host = Some(from);
            self.epoch = epoch.max(self.epoch);
            self.synced = false;
            self.query_deadline = None;
            self.election_deadline = None;
            self.expected_host = None;
            self.host_deadline = Some(self.now + self.config.host_timeout);
            self.retry_delay = self.config.retry_base;
            let changes = self.reapply_tentative();
            self.events.push_back(Event::Changes(changes));
            self.events
                .push_back(Event::HostChanged { host: from, epoch });
            self.request_state();
        } else if epoch < self.epoch && self.role == Role::Host {
            self.send(
                from,
                Message::HostAnnounce {
                    epoch: self.epoch,
                    base: self.position,
                },
            );
        }
    }
}
