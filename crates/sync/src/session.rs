//! The session state machine: inputs, outputs, timers and message dispatch.

use std::{
    collections::{BTreeMap, VecDeque},
    time::Duration,
};

use bassline_core::{Change, Id, Network, Request, StateHash};
use bassline_protocol::{
    Envelope, Epoch, Message, OpId, PeerId, Position, Reassembler, Sequenced, Writer,
};
use rustc_hash::FxHashMap;

use crate::{Channel, Config, Error, Event, Transmit};

/// What this peer does in the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sequences every operation.
    Host,
    /// Follows a host.
    Guest,
    /// Lost its host and is choosing a new one; read-only meanwhile.
    Electing,
}

/// Sizes of everything the session buffers, to check that each stays under its cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub log: usize,
    pub pending: usize,
    pub batch: usize,
    pub reassembly_bytes: usize,
    pub outbox: usize,
    pub writers: usize,
}

pub(crate) struct Peer {
    pub connected: bool,
    /// One reassembler per channel: frames of the two channels interleave.
    pub rx: [Reassembler; 2],
    pub last_heard: Option<Duration>,
    /// Last position it reported in a heartbeat.
    pub position: Option<Position>,
    /// Host side: whether it has our state and receives batches.
    pub synced: bool,
    /// Set while an election waited for this peer in vain.
    pub passed_over: bool,
}

pub(crate) struct Pending {
    pub op: u64,
    pub ts: u64,
    pub seen: u64,
    pub request: Request,
    /// Changes that take the tentative edit back, while it is applied.
    pub undo: Option<Vec<Change>>,
}

/// One peer's side of a collaboration session.
pub struct Session {
    pub(crate) me: PeerId,
    pub(crate) config: Config,
    pub(crate) net: Network,
    pub(crate) role: Role,
    pub(crate) host: Option<PeerId>,
    pub(crate) epoch: Epoch,
    /// Position of the last sequenced operation applied here.
    pub(crate) position: Position,
    /// Whether this peer holds the current host's state.
    pub(crate) synced: bool,
    pub(crate) applied: BTreeMap<PeerId, u64>,
    pub(crate) writers: FxHashMap<Id, Writer>,
    pub(crate) log: VecDeque<(Epoch, Sequenced)>,
    /// Operations sequenced by a host this peer no longer follows that the current host has not
    /// decided yet: re-submitted after every sync until they are.
    pub(crate) orphans: Vec<Sequenced>,
    /// Groups on screen: asked for first when the whole state has to come.
    pub(crate) focus: Vec<Id>,
    pub(crate) lamport: u64,
    pub(crate) counter: u64,
    pub(crate) pending: VecDeque<Pending>,
    pub(crate) tentative: bool,
    pub(crate) peers: BTreeMap<PeerId, Peer>,
    pub(crate) batch: Vec<Sequenced>,
    pub(crate) batch_due: Option<Duration>,
    pub(crate) next_heartbeat: Duration,
    pub(crate) host_deadline: Option<Duration>,
    pub(crate) query_deadline: Option<Duration>,
    pub(crate) election_deadline: Option<Duration>,
    pub(crate) expected_host: Option<PeerId>,
    pub(crate) retry_due: Option<Duration>,
    pub(crate) retry_delay: Duration,
    pub(crate) outbox: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    msg_id: u64,
    rng: u64,
    read_only: Option<bool>,
    hash_cache: Option<(u64, StateHash)>,
    pub(crate) generation: u64,
    pub(crate) now: Duration,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("me", &self.me)
            .field("role", &self.role)
            .field("host", &self.host)
            .field("epoch", &self.epoch)
            .field("position", &self.position)
            .field("synced", &self.synced)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    fn new(me: PeerId, config: Config, net: Network, role: Role, host: Option<PeerId>) -> Self {
        let rng = config.seed ^ me.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let retry_delay = config.retry_base;
        Session {
            me,
            config,
            net,
            role,
            host,
            epoch: Epoch::default(),
            position: Position::default(),
            synced: false,
            applied: BTreeMap::new(),
            writers: FxHashMap::default(),
            log: VecDeque::new(),
            orphans: Vec::new(),
            focus: Vec::new(),
            lamport: 0,
            counter: 0,
            pending: VecDeque::new(),
            tentative: false,
            peers: BTreeMap::new(),
            batch: Vec::new(),
            batch_due: None,
            next_heartbeat: Duration::ZERO,
            host_deadline: None,
            query_deadline: None,
            election_deadline: None,
            expected_host: None,
            retry_due: None,
            retry_delay,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            msg_id: 0,
            rng,
            read_only: None,
            hash_cache: None,
            generation: 0,
            now: Duration::ZERO,
        }
    }

    /// A session hosted here, over an existing network.
    pub fn host(me: PeerId, config: Config, network: Network) -> Self {
        let mut s = Session::new(me, config, network, Role::Host, Some(me));
        s.epoch = Epoch {
            number: 1,
            host: me,
        };
        s.synced = true;
        s
    }

    /// A guest. `host` is the host to follow if known (from the signaling server); otherwise
    /// the guest learns it from the peers it connects to.
    pub fn guest(me: PeerId, host: Option<PeerId>, config: Config) -> Self {
        Session::new(me, config, Network::new(), Role::Guest, host)
    }

    // ---- accessors ----

    pub fn id(&self) -> PeerId {
        self.me
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The host this peer follows (itself when hosting).
    pub fn current_host(&self) -> Option<PeerId> {
        self.host
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Position of the last sequenced operation applied here.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The network as shown here: the host's state plus this peer's tentative edits.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// Whether this peer holds the state of the host it follows.
    pub fn is_synced(&self) -> bool {
        self.synced && matches!(self.role, Role::Host | Role::Guest)
    }

    /// Whether local edits are refused right now.
    pub fn is_read_only(&self) -> bool {
        match self.role {
            Role::Host => false,
            Role::Electing => true,
            Role::Guest => {
                !self.synced
                    || !self
                        .host
                        .is_some_and(|h| self.peers.get(&h).is_some_and(|p| p.connected))
            }
        }
    }

    /// Highest applied counter per origin.
    pub fn applied(&self) -> &BTreeMap<PeerId, u64> {
        &self.applied
    }

    /// Own operations still waiting for the host's decision.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The own operations waiting for the host's decision, oldest first.
    pub fn pending_ops(&self) -> impl Iterator<Item = (OpId, &Request)> {
        self.pending.iter().map(|p| {
            (
                OpId {
                    peer: self.me,
                    counter: p.op,
                },
                &p.request,
            )
        })
    }

    pub fn stats(&self) -> Stats {
        Stats {
            log: self.log.len() + self.orphans.len(),
            pending: self.pending.len(),
            batch: self.batch.len(),
            reassembly_bytes: self
                .peers
                .values()
                .flat_map(|p| &p.rx)
                .map(Reassembler::buffered)
                .sum(),
            outbox: self.outbox.len(),
            writers: self.writers.len(),
        }
    }

    /// The state hash of the confirmed state (tentative edits excluded when there are none
    /// pending; with pending edits it includes them).
    pub fn state_hash(&mut self) -> StateHash {
        if let Some((g, h)) = self.hash_cache
            && g == self.generation
        {
            return h;
        }
        let h = self.net.state_hash();
        self.hash_cache = Some((self.generation, h));
        h
    }

    // ---- inputs ----

    /// A link to `peer` is open (both channels usable).
    pub fn handle_connected(&mut self, now: Duration, peer: PeerId) {
        self.now = now;
        if peer == self.me {
            return;
        }
        let codec = self.config.codec.clone();
        let p = self.peer(peer);
        p.connected = true;
        p.rx = [Reassembler::new(codec.clone()), Reassembler::new(codec)];
        p.last_heard = Some(now);
        p.synced = false;
        p.passed_over = false;
        match self.role {
            Role::Host => {
                let base = self.position;
                self.send(
                    peer,
                    Message::HostAnnounce {
                        epoch: self.epoch,
                        base,
                    },
                );
            }
            Role::Guest if self.host == Some(peer) => {
                self.host_deadline = Some(now + self.config.host_timeout);
                self.request_state();
            }
            _ => {}
        }
        self.heartbeat_to(peer);
        self.after_input();
    }

    /// The link to `peer` closed.
    pub fn handle_disconnected(&mut self, now: Duration, peer: PeerId) {
        self.now = now;
        let codec = self.config.codec.clone();
        if let Some(p) = self.peers.get_mut(&peer) {
            p.connected = false;
            p.synced = false;
            p.rx = [Reassembler::new(codec.clone()), Reassembler::new(codec)];
        }
        if self.role == Role::Guest && self.host == Some(peer) {
            // Whatever was in flight to or from the host is gone: after reconnecting, the
            // host's answer re-establishes the state and pending edits are sent again.
            self.synced = false;
            self.host_lost();
        }
        if self.role == Role::Electing && self.expected_host == Some(peer) {
            self.start_election();
        }
        self.after_input();
    }

    /// A frame arrived from `from` on `channel`.
    pub fn handle_receive(&mut self, now: Duration, from: PeerId, channel: Channel, frame: &[u8]) {
        self.now = now;
        let decoded = self.peer(from).rx[channel as usize].push(frame);
        let env = match decoded {
            Ok(Some(env)) => env,
            Ok(None) => return,
            Err(e) => {
                self.events.push_back(Event::PeerMisbehaved {
                    peer: from,
                    reason: e.to_string(),
                });
                return;
            }
        };
        if env.from != from {
            self.events.push_back(Event::PeerMisbehaved {
                peer: from,
                reason: format!("claimed to be peer {}", env.from),
            });
            return;
        }
        let p = self.peer(from);
        p.last_heard = Some(now);
        p.passed_over = false;
        self.lamport = self.lamport.max(env.ts);
        if self.host == Some(from) && self.role == Role::Guest {
            self.host_deadline = Some(now + self.config.host_timeout);
            // The host spoke: whatever we were asking the others about it is settled.
            self.query_deadline = None;
        }
        self.dispatch(from, env.message);
        self.after_input();
    }

    /// A local edit or query. Queries are answered at once from this peer's state; edits are
    /// shown at once and sent to the host. Returns the operation id of an edit.
    pub fn handle_local(&mut self, now: Duration, request: Request) -> Result<LocalOutcome, Error> {
        self.now = now;
        if !request.is_mutation() {
            return Ok(LocalOutcome::Answered(self.net.apply(request)?));
        }
        let result = match self.role {
            Role::Host => {
                // Check the edit first so an invalid one is refused here, with its reason,
                // rather than sequenced as refused for every peer.
                let (_, undo) = self.net.apply_undoable(request.clone())?;
                for c in &undo {
                    self.net
                        .apply_change(c)
                        .expect("an undo journal always applies");
                }
                self.counter += 1;
                self.lamport += 1;
                let op = OpId {
                    peer: self.me,
                    counter: self.counter,
                };
                let (ts, seen) = (self.lamport, self.position.seq);
                self.sequence(op, ts, seen, request);
                Ok(LocalOutcome::Submitted(op))
            }
            Role::Guest if !self.is_read_only() => self.submit_local(request),
            _ => Err(Error::ReadOnly),
        };
        self.after_input();
        result
    }

    /// The groups this user looks at. When this peer next needs the whole state, the host sends
    /// these groups first (so they can be shown at once, read-only) and the rest right behind.
    pub fn set_focus(&mut self, groups: Vec<Id>) {
        self.focus = groups;
    }

    /// Applies a request here only, bypassing the host: the divergence a bug would cause.
    /// For tests of detection and repair; never call it in an application.
    #[doc(hidden)]
    pub fn inject_divergence(&mut self, request: Request) -> Result<(), Error> {
        self.net.apply(request)?;
        self.generation += 1;
        Ok(())
    }

    /// Tells every connected peer where this user is and what they look at (on the unreliable
    /// channel: a lost update is simply replaced by the next one).
    pub fn handle_presence(&mut self, now: Duration, presence: bassline_protocol::Presence) {
        self.now = now;
        let peers: Vec<PeerId> = self.connected_peers().collect();
        for p in peers {
            self.send(p, Message::Presence(presence.clone()));
        }
    }

    /// Timers: call when [`Session::poll_timeout`]'s deadline has passed.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.now = now;
        if self.batch_due.is_some_and(|t| t <= now) {
            self.flush_batch();
        }
        if self.next_heartbeat <= now {
            self.next_heartbeat = now + self.config.heartbeat_interval;
            let peers: Vec<PeerId> = self.connected_peers().collect();
            for p in peers {
                self.heartbeat_to(p);
            }
        }
        if self.role == Role::Guest && self.host_deadline.is_some_and(|t| t <= now) {
            self.host_deadline = None;
            self.host_lost();
        }
        if self.query_deadline.is_some_and(|t| t <= now) {
            self.query_deadline = None;
            self.start_election();
        }
        if self.election_deadline.is_some_and(|t| t <= now) {
            self.election_deadline = None;
            if let Some(p) = self
                .expected_host
                .take()
                .and_then(|h| self.peers.get_mut(&h))
            {
                p.passed_over = true;
            }
            self.start_election();
        }
        if self.retry_due.is_some_and(|t| t <= now) {
            self.retry_due = None;
            if self.role == Role::Guest && !self.synced {
                self.request_state();
            }
        }
        self.after_input();
    }

    // ---- outputs ----

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest time [`Session::handle_timeout`] should be called.
    pub fn poll_timeout(&self) -> Option<Duration> {
        [
            self.batch_due,
            Some(self.next_heartbeat),
            if self.role == Role::Guest {
                self.host_deadline
            } else {
                None
            },
            self.query_deadline,
            self.election_deadline,
            self.retry_due,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- internals ----

    pub(crate) fn peer(&mut self, id: PeerId) -> &mut Peer {
        let codec = self.config.codec.clone();
        self.peers.entry(id).or_insert_with(|| Peer {
            connected: false,
            rx: [Reassembler::new(codec.clone()), Reassembler::new(codec)],
            last_heard: None,
            position: None,
            synced: false,
            passed_over: false,
        })
    }

    pub(crate) fn connected_peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers
            .iter()
            .filter(|(_, p)| p.connected)
            .map(|(id, _)| *id)
    }

    pub(crate) fn send(&mut self, to: PeerId, message: Message) {
        if !self.peers.get(&to).is_some_and(|p| p.connected) {
            return;
        }
        self.msg_id += 1;
        let channel = if message.is_unreliable() {
            Channel::Unreliable
        } else {
            Channel::Reliable
        };
        let env = Envelope {
            id: self.msg_id,
            ts: self.lamport,
            from: self.me,
            message,
        };
        match self.config.codec.encode(&env) {
            Ok(frames) => {
                for frame in frames {
                    self.outbox.push_back(Transmit { to, channel, frame });
                }
            }
            Err(e) => self.events.push_back(Event::PeerMisbehaved {
                peer: self.me,
                reason: format!("could not encode {} for peer {to}: {e}", env.message.kind()),
            }),
        }
    }

    fn heartbeat_to(&mut self, peer: PeerId) {
        let hash = self.state_hash();
        let message = Message::Heartbeat {
            position: self.position,
            hash,
            host: self.host,
        };
        self.send(peer, message);
    }

    /// A random fraction in [0.5, 1.5) for jitter.
    pub(crate) fn jitter(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        0.5 + (self.rng % 1000) as f64 / 1000.0
    }

    /// Asks the host for its state (catch-up from our position when we hold one), and arms a
    /// retry with exponential backoff and jitter.
    pub(crate) fn request_state(&mut self) {
        let Some(host) = self.host else { return };
        let have = (self.position.seq > 0 || self.synced).then_some(self.position);
        let first = self.focus.clone();
        self.send(host, Message::StateRequest { have, first });
        let delay = self.retry_delay.mul_f64(self.jitter());
        self.retry_due = Some(self.now + delay);
        self.retry_delay = (self.retry_delay * 2).min(self.config.retry_max);
    }

    fn after_input(&mut self) {
        // A guest linked to its host but without its state always has a request under way
        // (the retry timer re-sends it). However it got here (an election called off, a link
        // back while electing), it never just waits.
        let host_linked = self
            .host
            .is_some_and(|h| self.peers.get(&h).is_some_and(|p| p.connected));
        if self.role == Role::Guest && !self.synced && host_linked && self.retry_due.is_none() {
            self.request_state();
        }
        let ro = self.is_read_only();
        if self.read_only != Some(ro) {
            self.read_only = Some(ro);
            self.events.push_back(Event::ReadOnly(ro));
        }
    }

    fn dispatch(&mut self, from: PeerId, message: Message) {
        match message {
            Message::StateRequest { have, first } => {
                if self.role == Role::Host {
                    self.serve_state(from, have, &first);
                }
            }
            Message::StateSync(sync) if sync.partial => {
                if self.role == Role::Guest && self.host == Some(from) {
                    self.install_partial(*sync);
                }
            }
            Message::StateSync(sync) => {
                if self.role == Role::Guest && self.host == Some(from) {
                    self.install_state(*sync);
                }
            }
            Message::Ack { position } => {
                self.peer(from).position = Some(position);
            }
            Message::Submit {
                op,
                ts,
                seen,
                request,
            } => {
                if self.role == Role::Host {
                    self.sequence(
                        OpId {
                            peer: from,
                            counter: op,
                        },
                        ts,
                        seen,
                        request,
                    );
                }
            }
            Message::Outcome { .. } => {
                // Informational: the batch carrying the operation tells every peer, this one
                // included, the same decision.
            }
            Message::Batch { epoch, ops } => match self.role {
                Role::Guest if self.host == Some(from) => self.apply_batch(epoch, ops),
                // Operations a guest saw sequenced under another host: sequence them here
                // unless they are already decided.
                Role::Host => {
                    for s in ops {
                        self.sequence(s.op, s.ts, s.seen, s.request);
                    }
                }
                _ => {}
            },
            Message::Heartbeat {
                position,
                hash,
                host,
            } => {
                self.peer(from).position = Some(position);
                self.on_heartbeat(from, position, hash, host);
            }
            Message::HashMismatch { position, groups } => {
                if self.role == Role::Host && position == self.position {
                    let theirs = groups.into_iter().collect();
                    let (remove, groups) = self.net.repair_for(&theirs);
                    self.send(
                        from,
                        Message::Repair {
                            position,
                            groups,
                            remove,
                        },
                    );
                }
            }
            Message::Repair {
                position,
                groups,
                remove,
            } => {
                if self.role == Role::Guest && self.host == Some(from) {
                    self.apply_repair(position, &remove, &groups);
                }
            }
            Message::Candidate { epoch, .. } => self.on_candidate(from, epoch),
            Message::HostAnnounce { epoch, base } => self.on_announce(from, epoch, base),
            Message::HostQuery { host } => self.on_host_query(from, host),
            Message::HostSeen { host, alive } => self.on_host_seen(host, alive),
            Message::Presence(presence) => {
                self.events.push_back(Event::Presence {
                    peer: from,
                    presence,
                });
            }
        }
    }

    fn on_heartbeat(
        &mut self,
        from: PeerId,
        position: Position,
        hash: StateHash,
        host: Option<PeerId>,
    ) {
        // Our host follows someone else now (it stepped down when it met a newer epoch): ask
        // that peer, which answers a host-query about itself with its announcement.
        if self.role == Role::Guest
            && self.host == Some(from)
            && let Some(h) = host.filter(|h| *h != from && *h != self.me)
        {
            self.send(h, Message::HostQuery { host: h });
        }
        if self.role == Role::Guest && self.host.is_none() && host.is_some() {
            self.host = host;
            if host.is_some_and(|h| self.peers.get(&h).is_some_and(|p| p.connected)) {
                self.request_state();
            }
        }
        if self.role == Role::Guest
            && self.host == Some(from)
            && self.synced
            && position == self.position
            && self.pending.is_empty()
            && self.state_hash() != hash
        {
            let groups: Vec<(Id, StateHash)> = self.net.shallow_hashes().into_iter().collect();
            let diverged = groups.iter().map(|(id, _)| id.clone()).collect();
            self.events.push_back(Event::Diverged {
                groups: diverged,
                host_hash: hash,
            });
            self.send(from, Message::HashMismatch { position, groups });
        }
    }

    fn apply_repair(
        &mut self,
        position: Position,
        remove: &[Id],
        groups: &[(Id, bassline_core::GroupDocument)],
    ) {
        if position != self.position || !self.pending.is_empty() {
            return;
        }
        match self.net.repair(remove, groups) {
            Ok(changes) => {
                self.generation += 1;
                self.events.push_back(Event::Changes(changes));
            }
            Err(_) => {
                // A repair that does not fit: fetch the whole state instead.
                self.synced = false;
                self.position = Position::default();
                self.request_state();
            }
        }
    }
}

/// What a local request led to.
#[derive(Clone, Debug, PartialEq)]
pub enum LocalOutcome {
    /// A query, answered from this peer's state.
    Answered(bassline_core::Response),
    /// An edit, shown here and sent for sequencing under this id.
    Submitted(OpId),
}
