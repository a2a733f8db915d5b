//! Losing a host, asking around, electing the most up-to-date peer, and settling which host
//! leads when two meet.

use std::cmp::Reverse;

use bassline_protocol::{Command, Epoch, Message, PeerId, Permission, Position, Signature, Vouch};

use crate::{
    Candidacy, Event, Fault,
    session::{ElectingState, GuestState, HostState, MAX_EPOCH_JUMP, Rank, RoleState, Session},
};

impl Session {
    /// The link to `peer` closed or it left.
    pub(crate) fn on_link_lost(&mut self, peer: PeerId) {
        let now = self.now;
        let wait = self.config.host_timeout;
        let anyone_else = !self.connected_peers().is_empty();
        match &mut self.role {
            RoleState::Guest(g) if g.host == Some(peer) => {
                // Whatever was in flight to or from the host is gone: after reconnecting, the
                // host's answer re-establishes the state and pending edits are sent again.
                g.synced = false;
                if anyone_else {
                    self.host_lost();
                } else {
                    // Nobody to ask: the link may just be resetting. Give it the host timeout
                    // to come back before standing alone.
                    g.host_deadline = Some(now + wait);
                    g.query_deadline = None;
                }
            }
            RoleState::Electing(e) if e.expected == Some(peer) => self.start_election(),
            _ => {}
        }
    }

    /// The host went silent or its link closed. Ask the other peers first: a peer that merely
    /// lost its own link must not start an election while the others still see the host.
    pub(crate) fn host_lost(&mut self) {
        let RoleState::Guest(g) = &self.role else {
            return;
        };
        let Some(host) = g.host else {
            self.start_election();
            return;
        };
        // Heartbeats travel unreliably, so silence may just be loss: if the link to the host
        // is still open, ask the host itself too (it answers on the reliable channel).
        let ask = self.connected_peers();
        if ask.is_empty() {
            self.start_election();
            return;
        }
        for p in ask {
            self.send(p, Message::HostQuery { host });
        }
        let due = self.now + self.config.query_timeout;
        if let RoleState::Guest(g) = &mut self.role {
            g.query_deadline = Some(due);
        }
    }

    pub(crate) fn on_host_query(&mut self, from: PeerId, host: PeerId) {
        if matches!(self.role, RoleState::Host(_)) && host == self.me {
            self.announce_to(from);
            return;
        }
        let alive = self.is_following(host) && self.host_alive();
        self.send(from, Message::HostSeen { host, alive });
    }

    pub(crate) fn on_host_seen(&mut self, from: PeerId, host: PeerId, alive: bool) {
        if !alive {
            // The host itself says it does not lead (it stepped down): no need to wait.
            if from == host && self.is_following(host) {
                self.start_election();
            }
            return;
        }
        let due = self.now + self.config.host_timeout;
        let outside_lineage = host != self.me
            && self.may_lead(from)
            && !self.may_lead(host)
            && self.is_connected(host);
        match &mut self.role {
            RoleState::Guest(g) if g.host == Some(host) && g.query_deadline.is_some() => {
                // Others still see the host: no election; wait for our own link to come back.
                g.query_deadline = None;
                g.host_deadline = Some(due);
            }
            RoleState::Electing(e) if e.lost == Some(host) => {
                let mut g = GuestState::new(Some(host), self.config.retry_base);
                g.host_deadline = Some(due);
                self.role = RoleState::Guest(g);
            }
            // A member our lineage lets lead follows a live host it does not (one that led the
            // other side of a partition, where the change never happened): that lineage goes
            // on, so this peer follows it too rather than wait for a host nobody will elect.
            RoleState::Electing(_) if outside_lineage => {
                let mut g = GuestState::new(Some(host), self.config.retry_base);
                g.host_deadline = Some(due);
                self.role = RoleState::Guest(g);
            }
            _ => {}
        }
    }

    /// Whether the host this guest follows is linked and has acted as host lately.
    pub(crate) fn host_alive(&self) -> bool {
        let RoleState::Guest(g) = &self.role else {
            return false;
        };
        g.host.is_some_and(|h| self.is_connected(h))
            && g.host_spoke
                .is_some_and(|t| t + self.config.host_timeout > self.now)
    }

    /// Whether `peer` may edit, and so stand for host, as this peer's lineage says.
    pub(crate) fn may_lead(&self, peer: PeerId) -> bool {
        self.replica.permissions.of(peer) == Permission::ReadWrite
    }

    /// Whether this peer leads and nobody has followed it in its epoch (no follower's word).
    fn unfollowed_host(&self) -> bool {
        matches!(self.role, RoleState::Host(_)) && !self.led()
    }

    /// Whether this peer is electing and found nobody reachable its lineage lets lead.
    fn leaderless(&self) -> bool {
        matches!(&self.role, RoleState::Electing(e) if e.leaderless)
    }

    /// Whether this peer stands for election: it may, it ever held the state, and its lineage
    /// lets it edit.
    fn stands(&self) -> bool {
        self.candidacy() == Candidacy::Stand && self.ever_synced && self.may_lead(self.me)
    }

    pub(crate) fn on_candidate(&mut self, from: PeerId, proposed: Epoch) {
        if proposed.number > self.highest_epoch().saturating_add(MAX_EPOCH_JUMP) {
            self.misbehaved(from, format!("proposed epoch {}", proposed.number));
            return;
        }
        // Only members who may edit take part in choosing a host: another's candidate is
        // answered (a host announces itself, a guest names its live host) but starts nothing.
        // (Not reported: a member demoted in a lineage it has not seen yet elects in good faith.)
        if !self.may_lead(from) || !self.may_lead(proposed.host) {
            match &self.role {
                RoleState::Host(_) => self.announce_to(from),
                RoleState::Guest(g) if self.host_alive() => {
                    if let Some(host) = g.host {
                        self.send(from, Message::HostSeen { host, alive: true });
                    }
                }
                _ => {}
            }
            return;
        }
        match &self.role {
            // A live host answers with its announcement; an electing peer follows a host with
            // followers whatever its epoch (the candidate may have known a newer epoch whose host
            // is gone).
            RoleState::Host(_) => self.announce_to(from),
            RoleState::Guest(g) if self.host_alive() => {
                if let Some(host) = g.host {
                    self.send(from, Message::HostSeen { host, alive: true });
                }
            }
            RoleState::Guest(_) => self.start_election(),
            RoleState::Electing(_) => {
                // Proposed by a peer that sees this one as the most up-to-date: agree.
                if proposed.host == self.me && self.stands() {
                    let number = proposed.number.max(self.highest_epoch() + 1);
                    self.become_host(number);
                }
            }
        }
    }

    /// Chooses the most up-to-date peer reachable (position, then lowest id) among those heard
    /// from recently; becomes host if that is this peer, otherwise waits for its announcement.
    pub(crate) fn start_election(&mut self) {
        let lost = match &self.role {
            RoleState::Guest(g) => g.host,
            RoleState::Electing(e) => e.lost,
            RoleState::Host(_) => return,
        };
        if !matches!(self.role, RoleState::Electing(_)) {
            self.role = RoleState::Electing(ElectingState {
                lost,
                ..ElectingState::default()
            });
        }
        let recent = self.now.saturating_sub(self.config.host_timeout);
        let stands = self.stands();
        let mut best: Option<(Position, Reverse<PeerId>)> =
            stands.then_some((self.replica.position, Reverse(self.me)));
        for (id, l) in &self.links {
            let eligible = l.connected
                && Some(*id) != lost
                && self.replica.permissions.of(*id) == Permission::ReadWrite
                && !l.passed_over
                && l.last_heard.is_some_and(|t| t >= recent);
            if let (true, Some(pos)) = (eligible, l.position) {
                best = best.max(Some((pos, Reverse(*id))));
            }
        }
        let number = self.highest_epoch() + 1;
        let due = self.now + self.config.election_timeout;
        if let RoleState::Electing(e) = &mut self.role {
            e.leaderless = best.is_none();
        }
        let Some((_, Reverse(winner))) = best else {
            // Nobody this peer can reach may lead: wait, read-only, and look again later.
            if let RoleState::Electing(e) = &mut self.role {
                e.deadline = Some(due);
            }
            return;
        };
        if winner == self.me {
            self.become_host(number);
            return;
        }
        if let RoleState::Electing(e) = &mut self.role {
            e.expected = Some(winner);
            e.deadline = Some(due);
        }
        let epoch = Epoch {
            number,
            host: winner,
        };
        for p in self.connected_peers() {
            self.send(p, Message::Candidate { epoch });
        }
    }

    /// Becomes the host of a new epoch, starting from this peer's state, and decides what was
    /// waiting: the orphans first, then its own edits, each in order.
    pub(crate) fn become_host(&mut self, number: u64) {
        let changes = self.rollback_tentative();
        self.events.push_back(Event::Changes(changes));
        self.role = RoleState::Host(HostState::default());
        self.epoch = Epoch {
            number,
            host: self.me,
        };
        for l in self.links.values_mut() {
            l.following = false;
        }
        let base = self.replica.position;
        self.events.push_back(Event::BecameHost {
            epoch: self.epoch,
            base,
        });
        self.events.push_back(Event::HostChanged {
            host: self.me,
            epoch: self.epoch,
        });
        for p in self.connected_peers() {
            self.announce_to(p);
        }
        for o in std::mem::take(&mut self.edits.orphans) {
            self.sequence(o.op, o.ts, o.command, o.sig);
        }
        let pending: Vec<_> = self.edits.pending.drain(..).collect();
        if self.config.fault == Some(Fault::HostDropsOwnPending) {
            return;
        }
        for p in pending {
            let op = bassline_protocol::OpId {
                peer: self.me,
                counter: p.op,
            };
            self.sequence(op, p.ts, Command::Request(p.request), p.sig);
        }
    }

    /// Follows `host`, whose standing is `rank`: a host steps down (what it sequenced but has
    /// not broadcast goes out first, under its own epoch, to the peers that still follow it;
    /// they and it submit it again to the new host after syncing).
    fn follow(&mut self, host: PeerId, rank: Rank) {
        self.flush_batch();
        let mut g = GuestState::new(Some(host), self.config.retry_base);
        g.host_deadline = Some(self.now + self.config.host_timeout);
        self.role = RoleState::Guest(g);
        self.epoch_floor = self.epoch_floor.max(self.epoch.number);
        self.epoch = rank.1;
        for l in self.links.values_mut() {
            l.following = false;
        }
        self.events.push_back(Event::HostChanged {
            host,
            epoch: rank.1,
        });
        if self.is_connected(host) {
            self.request_state();
        }
    }

    /// A peer announces it leads `epoch`. The higher rank wins: a host outranked steps down,
    /// a guest moves to the higher-ranked host, an electing peer follows any host at least as
    /// new as the one it lost.
    pub(crate) fn on_announce(&mut self, from: PeerId, epoch: Epoch, led: Option<Vouch>) {
        if self.candidacy() == Candidacy::Permanent {
            self.misbehaved(
                from,
                format!("claimed to lead epoch {} of a permanent host", epoch.number),
            );
            return;
        }
        if epoch.host != from {
            self.misbehaved(
                from,
                format!("announced an epoch led by peer {}", epoch.host),
            );
            return;
        }
        if epoch.number > self.highest_epoch().saturating_add(MAX_EPOCH_JUMP) {
            self.misbehaved(from, format!("announced epoch {}", epoch.number));
            return;
        }
        // Followers count only by a follower's own signed word: a member's claim to be
        // followed, unbacked, ranks as a host nobody follows.
        // (An electing peer has no host to keep and follows any host at least as new anyway;
        // it may not know the follower's key at all, being new: it takes the claim.)
        let trusting = self.config.fault == Some(Fault::TrustClaimedFollowers)
            || matches!(self.role, RoleState::Electing(_));
        let led = led.is_some_and(|v| trusting || self.vouch_holds(from, epoch, v))
            || self.config.fault == Some(Fault::SoloOutranks);
        let theirs: Rank = (led, epoch);
        // A host nobody follows has no standing to hold against one others follow.
        let conceding = led && self.unfollowed_host();
        if !self.may_lead(from)
            && !self.leaderless()
            && !conceding
            && self.config.fault != Some(Fault::FollowReadOnly)
        {
            // Our lineage made it read-only or removed it: it does not lead us. (A host it
            // outranks hears of it from its followers, see `on_host_named`.) Only a peer left
            // with nobody else who may lead, or a host nobody follows meeting one that others
            // do, follows it: its lineage then loses, change and all.
            return;
        }
        match &mut self.role {
            RoleState::Host(_) => {
                let mine: Rank = (self.led(), self.epoch);
                if theirs > mine {
                    self.follow(from, theirs);
                } else if theirs < mine {
                    self.announce_to(from);
                }
            }
            RoleState::Guest(g) if g.host == Some(from) => {
                if epoch != self.epoch {
                    // Our host leads a new epoch: it may have stepped down and been elected
                    // again in between, dropping what we sent meanwhile. Sync again (a catch-up
                    // when nothing changed), which sends our pending edits again.
                    self.follow(from, theirs);
                }
            }
            RoleState::Guest(g) => {
                // Our host has a follower (us): it ranks (true, its epoch).
                let hostless = g.host.is_none() || !self.host_alive();
                if (hostless && epoch >= self.epoch) || theirs > (true, self.epoch) {
                    self.follow(from, theirs);
                }
            }
            RoleState::Electing(_) => {
                if led || epoch >= self.epoch {
                    self.follow(from, theirs);
                }
            }
        }
    }

    /// A heartbeat says `from` follows `host` at `epoch`. A guest's host has followers, so its
    /// standing is known: a host it outranks steps down, a guest whose own host now follows
    /// another moves along. Two hosts that hear of each other announce themselves to each
    /// other, so one lasting broken link between them never keeps two hosts. Only news is acted
    /// on (an epoch above the one this peer knows): heartbeats arrive out of order.
    pub(crate) fn on_host_named(&mut self, from: PeerId, host: PeerId, epoch: Epoch) {
        if !self.may_lead(host) && !self.leaderless() {
            // Not a host of ours (see `on_announce`).
            // A third peer's report that it follows it is evidence it leads (its own claim is
            // not): a host with followers it outranks takes a newer epoch; a host nobody
            // follows has nothing to show for its lineage, and follows it (the change that
            // made it read-only is lost with that lineage).
            if let RoleState::Host(h) = &self.role
                && host != self.me
                && host != from
            {
                // Two hosts whose lineages each demoted the other would take epochs above each
                // other for ever: the second time it has to, the one with the higher id gives
                // way instead (both apply the same rule, so exactly one does).
                let again = h.outranked.contains(&host) && self.me > host;
                if !self.unfollowed_host() && !again {
                    self.outrank(host, (true, epoch));
                } else if self.is_connected(host) && (true, epoch) > (self.led(), self.epoch) {
                    self.follow(host, (true, epoch));
                }
            }
            return;
        }
        if host == from {
            // A host: if we lead too, let the ranks settle it.
            if matches!(self.role, RoleState::Host(_)) && epoch != self.epoch {
                self.announce_to(from);
            }
            return;
        }
        let theirs: Rank = (true, epoch);
        match &self.role {
            RoleState::Host(_) if self.config.fault == Some(Fault::IgnoreNamedHosts) => {}
            RoleState::Host(_) => {
                if host != self.me && theirs > (self.led(), self.epoch) {
                    self.follow(host, theirs);
                }
            }
            RoleState::Guest(g) => {
                if epoch <= self.epoch || g.host == Some(host) {
                    return;
                }
                if host == self.me {
                    // Our host follows us, but we do not lead: nobody does. Elect.
                    if g.host == Some(from) {
                        self.host_lost();
                    }
                } else if g.host == Some(from) || self.is_connected(host) {
                    // Our host stepped down to it, or it outranks ours and we can reach it.
                    self.follow(host, theirs);
                }
            }
            RoleState::Electing(_) => {
                // A peer left with nobody its lineage lets lead follows whoever leads the
                // others, whatever its epoch.
                if host != self.me
                    && (epoch >= self.epoch || self.leaderless())
                    && self.is_connected(host)
                {
                    self.follow(host, theirs);
                }
            }
        }
    }

    /// A host that hears of a higher-ranked host its lineage does not let lead takes an epoch
    /// above it (keeping its standing), and tells everyone: the peers of the other lineage,
    /// which let both lead, then follow this one.
    fn outrank(&mut self, other: PeerId, theirs: Rank) {
        // (Above it already: without followers' word yet, it must not climb again at each
        // report of the other host.)
        if theirs <= (self.led(), self.epoch) || self.epoch > theirs.1 {
            return;
        }
        self.flush_batch();
        let number = theirs.1.number.max(self.highest_epoch()) + 1;
        self.epoch = Epoch {
            number,
            host: self.me,
        };
        if let RoleState::Host(h) = &mut self.role {
            h.outranked.insert(other);
        }
        // Its followers' word (for its earlier epoch) still stands; until one of them follows
        // in the new one, it claims no more than it has.
        for l in self.links.values_mut() {
            l.following = false;
        }
        let base = self.replica.position;
        self.events.push_back(Event::BecameHost {
            epoch: self.epoch,
            base,
        });
        self.events.push_back(Event::HostChanged {
            host: self.me,
            epoch: self.epoch,
        });
        for p in self.connected_peers() {
            self.announce_to(p);
        }
    }

    /// A heartbeat from `from` carries its signed word that it follows `host` in `epoch`. A host
    /// keeps the first such word about itself in its current epoch: with it, it counts as
    /// followed, and tells everyone (the peers that ranked it as a host nobody follows).
    pub(crate) fn on_vouch(
        &mut self,
        from: PeerId,
        host: Option<PeerId>,
        epoch: Epoch,
        sig: Signature,
    ) {
        if host != Some(self.me) || epoch != self.epoch || from == self.me {
            return;
        }
        let Some(&key) = self.keys.get(&from) else {
            return;
        };
        let RoleState::Host(h) = &self.role else {
            return;
        };
        if h.led.is_some() {
            return;
        }
        let message = bassline_protocol::vouch_bytes(from, epoch);
        if !self.config.identity.verify(&key, &message, &sig) {
            self.misbehaved(
                from,
                format!(
                    "signed that it follows epoch {} with a signature that does not hold",
                    epoch.number
                ),
            );
            return;
        }
        if let RoleState::Host(h) = &mut self.role {
            h.led = Some(Vouch {
                by: from,
                number: epoch.number,
                key,
                sig,
            });
        }
        for p in self.connected_peers() {
            if p != from {
                self.announce_to(p);
            }
        }
    }

    /// Whether `vouch` shows that someone other than `from` follows it: signed by a peer this
    /// peer knows the key of (or, for a peer it has met whose key its lineage never learned,
    /// by the key the vouch names), for an epoch of `from`'s no newer than the one announced.
    /// A signature that does not hold under a key that matches ours is reported.
    fn vouch_holds(&mut self, from: PeerId, epoch: Epoch, vouch: Vouch) -> bool {
        if vouch.by == from || vouch.number > epoch.number {
            return false;
        }
        let key = match self.keys.get(&vouch.by) {
            Some(known) if *known != vouch.key => return false,
            Some(known) => *known,
            None if self.links.contains_key(&vouch.by) => vouch.key,
            None => return false,
        };
        let followed = Epoch {
            number: vouch.number,
            host: from,
        };
        let message = bassline_protocol::vouch_bytes(vouch.by, followed);
        if self.config.identity.verify(&key, &message, &vouch.sig) {
            return true;
        }
        self.misbehaved(
            from,
            format!(
                "showed peer {}'s word that it follows, which does not hold",
                vouch.by
            ),
        );
        false
    }
}
