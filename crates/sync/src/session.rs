//! The session state machine: its state by concern, inputs, outputs, and message dispatch.
//!
//! State is grouped the way quinn-proto and str0m group theirs: the replicated state
//! ([`Replica`]), this user's own edits ([`Edits`]), what each link knows ([`Link`]), the role
//! with the state only that role has ([`RoleState`]), and the outputs waiting to be polled.

use std::{
    collections::{BTreeMap, VecDeque},
    time::Duration,
};

use bassline_core::{Id, Network, Request, StateHash};
use bassline_protocol::{
    Envelope, Epoch, Message, OpId, PeerId, Permission, Permissions, Position, PublicKey,
    Reassembler, Sequenced, Signature, StateSync, Vouch,
};

use crate::{Candidacy, Channel, Config, Error, Event, Transmit, edits::Edits, replica::Replica};

/// The largest step a peer's Lamport clock or epoch number may take in one message. Honest
/// clocks move by the edits made in between, far less; a claim beyond this is refused, so a
/// hostile peer cannot push a clock to the end of its range.
pub(crate) const MAX_CLOCK_JUMP: u64 = 1 << 40;
pub(crate) const MAX_EPOCH_JUMP: u64 = 1 << 20;

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

/// Sizes of everything the session buffers, to check how each grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Decided operations kept (catch-up, and what some member may lack).
    pub log: usize,
    /// Operations of a lineage that lost, waiting to be decided again.
    pub orphans: usize,
    pub pending: usize,
    pub batch: usize,
    pub reassembly_bytes: usize,
    pub outbox: usize,
    pub writers: usize,
    /// Peers this session keeps state for.
    pub peers: usize,
}

/// The requests a host rate-limits per guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bucket {
    Submit = 0,
    StateRequest = 1,
    HashMismatch = 2,
    Forwarded = 3,
}

/// A token bucket in thousandths of a token, filled by the time the driver passes in.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TokenBucket {
    /// Thousandths of a token; `None` until first used (a full bucket).
    milli: Option<u64>,
    at: Duration,
}

impl TokenBucket {
    /// Takes a token, or says how many milliseconds until one is there.
    pub fn take(&mut self, now: Duration, rate: crate::Rate) -> Option<u64> {
        let cap = u64::from(rate.burst) * 1000;
        let elapsed = now.saturating_sub(self.at).as_millis() as u64;
        let milli = match self.milli {
            None => cap,
            Some(m) => m
                .saturating_add(elapsed.saturating_mul(u64::from(rate.per_second)))
                .min(cap),
        };
        self.at = now.max(self.at);
        if milli >= 1000 {
            self.milli = Some(milli - 1000);
            return None;
        }
        self.milli = Some(milli);
        let per_ms = u64::from(rate.per_second).max(1);
        Some((1000 - milli).div_ceil(per_ms).max(1))
    }
}

/// What this peer knows of one other peer.
pub(crate) struct Link {
    pub connected: bool,
    /// One reassembler per channel: frames of the two channels interleave.
    pub rx: [Reassembler; 2],
    pub last_heard: Option<Duration>,
    /// The latest position it reported (heartbeat or ack): what it holds.
    pub position: Option<Position>,
    /// The host it follows and that host's epoch, from its heartbeats.
    pub follows: Option<(PeerId, Epoch)>,
    /// Host side: it holds our state and receives our batches.
    pub following: bool,
    /// Set while an election waited for this peer in vain.
    pub passed_over: bool,
    /// The newest envelope id received on this link: a heartbeat older than what the peer
    /// already said on the reliable channel is stale (the channels do not keep order between
    /// them) and is dropped.
    pub newest: u64,
    /// Host side: how much of each rate-limited request this guest may still send.
    pub buckets: [TokenBucket; 4],
    /// Bytes of the message being received on each channel, so far.
    pub rx_bytes: [usize; 2],
}

impl Link {
    fn new(codec: &bassline_protocol::Codec) -> Self {
        Link {
            connected: false,
            rx: [
                Reassembler::new(codec.clone()),
                Reassembler::new(codec.clone()),
            ],
            last_heard: None,
            position: None,
            follows: None,
            following: false,
            passed_over: false,
            newest: 0,
            buckets: Default::default(),
            rx_bytes: [0; 2],
        }
    }
}

/// A host's standing when two meet: one with followers outranks one without, then the later
/// epoch wins. A peer cut off alone that elected itself never takes the room over on return.
pub(crate) type Rank = (bool, Epoch);

/// Host state: the batch being gathered, and whether anyone followed it yet.
#[derive(Default)]
pub(crate) struct HostState {
    pub batch: Vec<Sequenced>,
    /// The position before the batch's first operation.
    pub batch_base: Position,
    pub batch_due: Option<Duration>,
    /// When the last batch went out: an edit after a quiet window goes out at once, and
    /// only edits that follow closely wait for the window (latency when idle, batching under
    /// load).
    pub last_flush: Option<Duration>,
    /// A follower's signed word that it follows this host (in this epoch, or in an earlier
    /// one of this host's it moved on from): the standing it claims, and shows as evidence.
    pub led: Option<Vouch>,
    /// Keys learned since the last batch went out: they go with it, so every follower holds
    /// an origin's key before (or with) its first operation.
    pub new_keys: Vec<(PeerId, PublicKey)>,
    /// Hosts this one took an epoch above (their lineage leads members ours demoted).
    pub outranked: std::collections::BTreeSet<PeerId>,
}

/// Guest state: the host followed and what is under way with it.
pub(crate) struct GuestState {
    pub host: Option<PeerId>,
    /// Whether this peer holds the host's state and follows its sequence.
    pub synced: bool,
    /// Silence from the host until then means it is suspected lost.
    pub host_deadline: Option<Duration>,
    /// When the host last spoke as a host (a guest's own messages do not count).
    pub host_spoke: Option<Duration>,
    /// Asking the other peers whether they still see the host, until then.
    pub query_deadline: Option<Duration>,
    /// When to ask for the state again, and the delay after that.
    pub retry_due: Option<Duration>,
    pub retry_delay: Duration,
    /// The host's hash at a position this peer has not reached yet: compared on arrival.
    pub check: Option<(Position, StateHash)>,
    /// Since when the host's heartbeats show it ahead of this peer: a guest that stays behind
    /// while its batches should have arrived asks to catch up.
    pub behind_since: Option<Duration>,
    /// A divergence was reported (at this time) and a repair is awaited; a report whose answer
    /// never came (its link dropped) is made again after a few heartbeats.
    pub repair_asked: Option<Duration>,
    /// A repair to apply on reaching its position.
    pub repair: Option<crate::guest::PendingRepair>,
    /// The host refused our edits for now: send them again then.
    pub resend_due: Option<Duration>,
    /// The host said it removed this peer (its state may not show it yet).
    pub removed: bool,
}

impl GuestState {
    pub fn new(host: Option<PeerId>, retry_delay: Duration) -> Self {
        GuestState {
            host,
            synced: false,
            host_deadline: None,
            host_spoke: None,
            query_deadline: None,
            retry_due: None,
            retry_delay,
            check: None,
            behind_since: None,
            repair_asked: None,
            repair: None,
            resend_due: None,
            removed: false,
        }
    }
}

/// Election state: the peer expected to announce itself, and until when.
#[derive(Default)]
pub(crate) struct ElectingState {
    /// The host that was lost (not eligible).
    pub lost: Option<PeerId>,
    pub expected: Option<PeerId>,
    pub deadline: Option<Duration>,
    /// The last look found nobody reachable whom this peer's lineage lets lead.
    pub leaderless: bool,
}

// One per session, never in a collection: the size difference costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub(crate) enum RoleState {
    Host(HostState),
    Guest(GuestState),
    Electing(ElectingState),
}

/// One peer's side of a collaboration session.
pub struct Session {
    pub(crate) me: PeerId,
    pub(crate) config: Config,
    pub(crate) now: Duration,
    /// This peer's Lamport clock.
    pub(crate) lamport: u64,
    /// The epoch led or followed (for an electing peer, the last one).
    pub(crate) epoch: Epoch,
    /// The highest epoch number this peer has led or followed: a new epoch it starts must be
    /// above it even after it followed an older host.
    pub(crate) epoch_floor: u64,
    pub(crate) replica: Replica,
    /// Whether this peer ever held a host's state: one that never did has nothing to lead
    /// with and never stands for election.
    pub(crate) ever_synced: bool,
    /// Every member's public key this peer knows, first key wins: what a host checks
    /// operations' signatures against. Learned from a peer itself (its state request, as
    /// host), from the host (its state and batches), and for origins nobody here knew, from
    /// the keys a forwarded batch carries.
    pub(crate) keys: BTreeMap<PeerId, PublicKey>,
    pub(crate) edits: Edits,
    pub(crate) role: RoleState,
    pub(crate) links: BTreeMap<PeerId, Link>,
    pub(crate) next_heartbeat: Duration,
    /// Groups on screen: asked for first when the whole state has to come.
    pub(crate) focus: Vec<Id>,
    pub(crate) outbox: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    msg_id: u64,
    rng: u64,
    read_only: Option<bool>,
    /// This peer's signed word that it follows the host of this epoch (made once per epoch).
    vouch: Option<(Epoch, Signature)>,
    /// Presence taken per person (the peer it is about, not the link it came by: a permanent
    /// host passes everyone's on through one link).
    presence: BTreeMap<PeerId, PresenceAllowance>,
}

/// How many presence updates one person may still send; while they send too many the extra
/// ones are dropped, and they are reported once per flood.
#[derive(Default)]
struct PresenceAllowance {
    bucket: TokenBucket,
    flooding: bool,
}

/// The most people whose presence allowance is kept; beyond it they all start afresh (a host
/// naming ever new peers cannot make this grow without bound).
const PRESENCE_PEOPLE: usize = 4096;

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("me", &self.me)
            .field("role", &self.role())
            .field("host", &self.current_host())
            .field("epoch", &self.epoch)
            .field("position", &self.replica.position)
            .field("pending", &self.edits.pending.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    fn new(me: PeerId, config: Config, net: Network, role: RoleState) -> Self {
        let rng = config.seed ^ me.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let reused = config.reused_id;
        let mut s = Session {
            me,
            config,
            now: Duration::ZERO,
            lamport: 0,
            epoch: Epoch::default(),
            epoch_floor: 0,
            replica: Replica::new(net),
            ever_synced: false,
            keys: BTreeMap::new(),
            edits: Edits::default(),
            role,
            links: BTreeMap::new(),
            next_heartbeat: Duration::ZERO,
            focus: Vec::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            msg_id: 0,
            rng,
            read_only: None,
            vouch: None,
            presence: BTreeMap::new(),
        };
        let mine = s.config.identity.public_key();
        s.keys.insert(me, mine);
        if reused && s.config.fault != Some(crate::Fault::CounterRestarts) {
            // A random block of counters (an incarnation): one of 2^31, above block 0.
            s.jitter();
            let block = 1 + (s.rng >> 33);
            s.edits.counter = block << crate::replica::COUNTER_BLOCK;
        }
        s
    }

    /// A session hosted here, over an existing network.
    pub fn host(me: PeerId, config: Config, network: Network) -> Self {
        let mut s = Session::new(me, config, network, RoleState::Host(HostState::default()));
        s.epoch = Epoch {
            number: 1,
            host: me,
        };
        s.ever_synced = true;
        s
    }

    /// A host that hosted this session before (the remote-mode server, restarted): from the
    /// [`Session::snapshot`] it saved, it knows which edits it already decided (a client that
    /// sends one again is not applied twice) and leads the next epoch.
    pub fn host_from(
        me: PeerId,
        config: Config,
        snapshot: HostSnapshot,
    ) -> Result<Self, bassline_core::Error> {
        let state = snapshot.state;
        let net = Network::import(&state.document)?;
        let mut s = Session::host(me, config, net);
        s.replica.position = state.position;
        s.replica.applied = crate::replica::Clock::from_wire(&state.applied);
        s.replica.writers = state
            .writers
            .into_iter()
            .map(|w| (w.contact.clone(), w))
            .collect();
        s.replica.log = state.log.into();
        s.replica.lineage = state.lineage.into();
        if !state.permissions.is_well_formed() {
            return Err(bassline_core::Error::InvalidDocument {
                reason: "the snapshot's permission table is not well formed".into(),
            });
        }
        s.replica.permissions = state.permissions;
        for (peer, key) in state.keys {
            s.keys.entry(peer).or_insert(key);
        }
        s.lamport = s
            .replica
            .log
            .iter()
            .map(|e| e.op.ts)
            .chain(s.replica.writers.values().map(|w| w.ts))
            .max()
            .unwrap_or(0);
        s.edits.counter = s.replica.applied.last(me).unwrap_or(0);
        s.epoch = Epoch {
            number: snapshot.epoch.number.max(state.position.epoch.number) + 1,
            host: me,
        };
        Ok(s)
    }

    /// What a host needs to host this session again after a restart ([`Session::host_from`]):
    /// the epoch it leads and its whole replicated state, log included.
    pub fn snapshot(&self) -> HostSnapshot {
        HostSnapshot {
            epoch: self.epoch,
            state: StateSync {
                position: self.replica.position,
                partial: false,
                applied: self.replica.applied.to_wire(),
                writers: self.replica.writers.values().cloned().collect(),
                log: self.replica.log.iter().cloned().collect(),
                lineage: self.replica.lineage.iter().copied().collect(),
                permissions: self.replica.permissions.clone(),
                keys: self.key_table(),
                document: self.replica.net.export(),
            },
        }
    }

    /// A guest. `host` is the host to follow if known (from the signaling server); otherwise
    /// the guest learns it from the peers it connects to.
    pub fn guest(me: PeerId, host: Option<PeerId>, config: Config) -> Self {
        let retry = config.retry_base;
        Session::new(
            me,
            config,
            Network::new(),
            RoleState::Guest(GuestState::new(host, retry)),
        )
    }

    // ---- accessors ----

    pub fn id(&self) -> PeerId {
        self.me
    }

    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Host(_) => Role::Host,
            RoleState::Guest(_) => Role::Guest,
            RoleState::Electing(_) => Role::Electing,
        }
    }

    /// The host this peer follows (itself when hosting).
    pub fn current_host(&self) -> Option<PeerId> {
        match &self.role {
            RoleState::Host(_) => Some(self.me),
            RoleState::Guest(g) => g.host,
            RoleState::Electing(_) => None,
        }
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Position of the last sequenced operation applied here.
    pub fn position(&self) -> Position {
        self.replica.position
    }

    /// The network as shown here: the host's state plus this peer's tentative edits.
    pub fn network(&self) -> &Network {
        &self.replica.net
    }

    /// Whether this peer holds the state of the host it follows.
    pub fn is_synced(&self) -> bool {
        match &self.role {
            RoleState::Host(_) => true,
            RoleState::Guest(g) => g.synced,
            RoleState::Electing(_) => false,
        }
    }

    /// What `peer` may do, as the sequence this peer follows says.
    pub fn permission(&self, peer: PeerId) -> Permission {
        self.replica.permissions.of(peer)
    }

    /// The public key this peer knows for `peer` (its own included): what it checks
    /// `peer`'s operations against when it leads.
    pub fn key_of(&self, peer: PeerId) -> Option<PublicKey> {
        self.keys.get(&peer).copied()
    }

    /// Whether this peer is settled under a host: it leads with a follower's word for it, or
    /// follows a host that spoke lately. Only a host with followers (shown by their word)
    /// moves a settled peer; an unsettled one follows any host at least as new as its own.
    pub fn is_settled(&self) -> bool {
        match &self.role {
            RoleState::Host(h) => h.led.is_some(),
            RoleState::Guest(_) => self.host_alive(),
            RoleState::Electing(_) => false,
        }
    }

    /// Who may do what, as the sequence this peer follows says.
    pub fn permissions(&self) -> &Permissions {
        &self.replica.permissions
    }

    /// Whether local edits are refused right now (no host, not synced, or this peer is not
    /// permitted to edit).
    pub fn is_read_only(&self) -> bool {
        if self.permission(self.me) != Permission::ReadWrite {
            return true;
        }
        match &self.role {
            RoleState::Host(_) => false,
            RoleState::Electing(_) => true,
            RoleState::Guest(g) => {
                g.removed || !g.synced || !g.host.is_some_and(|h| self.is_connected(h))
            }
        }
    }

    /// The decided operations: (origin, highest decided counter) per origin and counter block.
    pub fn decided(&self) -> Vec<(PeerId, u64)> {
        self.replica.applied.to_wire()
    }

    /// Own operations still waiting for the host's decision.
    pub fn pending(&self) -> usize {
        self.edits.pending.len()
    }

    /// The own operations waiting for the host's decision, oldest first.
    pub fn pending_ops(&self) -> impl Iterator<Item = (OpId, &Request)> {
        self.edits.pending.iter().map(|p| {
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
        let batch = match &self.role {
            RoleState::Host(h) => h.batch.len(),
            _ => 0,
        };
        Stats {
            log: self.replica.log.len(),
            orphans: self.edits.orphans.len(),
            pending: self.edits.pending.len(),
            batch,
            reassembly_bytes: self
                .links
                .values()
                .flat_map(|l| &l.rx)
                .map(Reassembler::buffered)
                .sum(),
            outbox: self.outbox.len(),
            writers: self.replica.writers.len(),
            peers: self.links.len(),
        }
    }

    /// The hash of the network shown here (tentative edits included while there are any).
    pub fn state_hash(&mut self) -> StateHash {
        self.replica.net.state_hash()
    }

    /// The replicated state's digest as heartbeats carry it (state hash and last writers).
    /// Equal on every peer at the same position with no tentative edits.
    pub fn digest(&mut self) -> StateHash {
        self.replica.digest()
    }

    // ---- inputs ----

    /// A link to `peer` is open (both channels usable).
    pub fn handle_connected(&mut self, now: Duration, peer: PeerId) {
        self.now = now;
        if peer == self.me {
            return;
        }
        let codec = self.config.codec.clone();
        let link = self.link(peer);
        link.connected = true;
        link.rx = [Reassembler::new(codec.clone()), Reassembler::new(codec)];
        link.last_heard = Some(now);
        link.following = false;
        link.passed_over = false;
        link.newest = 0;
        match &mut self.role {
            RoleState::Host(_) => self.announce_to(peer),
            RoleState::Guest(g) if g.host == Some(peer) => {
                g.host_deadline = Some(now + self.config.host_timeout);
                g.synced = false;
                // Whatever was asked on the old link went with it.
                g.repair_asked = None;
                g.repair = None;
                g.check = None;
                self.request_state();
            }
            _ => {}
        }
        self.heartbeat_to(peer);
        self.after_input();
    }

    /// The link to `peer` closed (it may open again).
    pub fn handle_disconnected(&mut self, now: Duration, peer: PeerId) {
        self.now = now;
        let codec = self.config.codec.clone();
        if self.is_connected(peer) {
            self.relay_departure(peer);
        }
        if let Some(l) = self.links.get_mut(&peer) {
            l.connected = false;
            l.following = false;
            l.rx = [Reassembler::new(codec.clone()), Reassembler::new(codec)];
        }
        self.on_link_lost(peer);
        self.after_input();
    }

    /// `peer` left the session for good (the signaling server says so, or it crashed and will
    /// not come back under this id): it no longer holds back the log.
    pub fn handle_left(&mut self, now: Duration, peer: PeerId) {
        self.now = now;
        if self.is_connected(peer) {
            self.relay_departure(peer);
        }
        self.presence.remove(&peer);
        if self.links.remove(&peer).is_some() {
            self.on_link_lost(peer);
        }
        self.prune_log();
        self.after_input();
    }

    /// A frame arrived from `from` on `channel`.
    pub fn handle_receive(&mut self, now: Duration, from: PeerId, channel: Channel, frame: &[u8]) {
        self.now = now;
        if from == self.me {
            return;
        }
        let link = self.link(from);
        link.rx_bytes[channel as usize] += frame.len();
        let decoded = link.rx[channel as usize].push(frame);
        let size = match decoded {
            Ok(Some(_)) | Err(_) => std::mem::take(&mut link.rx_bytes[channel as usize]),
            Ok(None) => 0,
        };
        let env = match decoded {
            Ok(Some(env)) => env,
            Ok(None) => {
                // Part of a large message: a state transfer under way is progress, not
                // silence, so the request is not repeated over it.
                self.on_partial_frame(from);
                return;
            }
            Err(e) => {
                self.misbehaved(from, e.to_string());
                return;
            }
        };
        if env.from != from {
            self.misbehaved(from, format!("claimed to be peer {}", env.from));
            return;
        }
        if env.ts > self.lamport.saturating_add(MAX_CLOCK_JUMP) {
            self.misbehaved(
                from,
                format!("moved its clock from {} to {}", self.lamport, env.ts),
            );
            return;
        }
        let link = self.link(from);
        link.last_heard = Some(now);
        link.passed_over = false;
        let stale = env.id < link.newest;
        link.newest = link.newest.max(env.id);
        if stale && matches!(env.message, Message::Heartbeat { .. }) {
            return;
        }
        if self.config.fault != Some(crate::Fault::StaleLamport) {
            self.lamport = self.lamport.max(env.ts);
        }
        if self.is_following(from) && speaks_as_host(from, &env.message) {
            let due = now + self.config.host_timeout;
            if let RoleState::Guest(g) = &mut self.role {
                g.host_deadline = Some(due);
                g.host_spoke = Some(now);
                // The host spoke: whatever we were asking the others about it is settled.
                g.query_deadline = None;
            }
        }
        self.dispatch(from, env.message, size);
        self.after_input();
    }

    /// A local edit or query. Queries are answered at once from this peer's state; edits are
    /// shown at once and sent to the host. Returns the operation id of an edit.
    pub fn handle_local(&mut self, now: Duration, request: Request) -> Result<LocalOutcome, Error> {
        self.now = now;
        if !request.is_mutation() {
            return Ok(LocalOutcome::Answered(self.replica.net.apply(request)?));
        }
        let permission = self.permission(self.me);
        let result = match self.role {
            _ if permission != Permission::ReadWrite => Err(Error::NotPermitted(permission)),
            RoleState::Host(_) => self.edit_as_host(request),
            RoleState::Guest(_) if !self.is_read_only() => self.submit_local(request),
            _ => Err(Error::ReadOnly),
        };
        self.after_input();
        result
    }

    /// Host: changes what `peer` may do (`None`: every member without a permission of their
    /// own, members who join later included). Sequenced like an edit, so every peer applies
    /// it at the same position; returns its operation id. A read-only member can look but not
    /// edit or lead; a removed one is served nothing more. Its decision comes as
    /// [`Event::Decided`], like an edit's.
    pub fn set_permission(
        &mut self,
        now: Duration,
        peer: Option<PeerId>,
        permission: Permission,
    ) -> Result<LocalOutcome, Error> {
        self.now = now;
        if !matches!(self.role, RoleState::Host(_)) {
            return Err(Error::NotHost);
        }
        let result = self.permit_as_host(peer, permission);
        self.after_input();
        let (op, ts) = result?;
        Ok(LocalOutcome::Submitted {
            op,
            ts,
            reply: bassline_core::Reply::Done,
        })
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
        self.replica.net.apply(request)?;
        self.replica.generation += 1;
        Ok(())
    }

    /// Forgets the last writers here only: the divergence a bug would cause in what decides
    /// future writes. For tests of detection and repair; never call it in an application.
    #[doc(hidden)]
    pub fn inject_divergence_of_writers(&mut self) {
        self.replica.writers.clear();
        self.replica.generation += 1;
    }

    /// Changes a permission here only: the divergence a bug would cause in who may do what.
    /// For tests of detection and repair; never call it in an application.
    #[doc(hidden)]
    pub fn inject_divergence_of_permissions(&mut self, peer: PeerId, permission: Permission) {
        self.replica.permissions.apply(bassline_protocol::Permit {
            peer: Some(peer),
            permission,
        });
        self.replica.generation += 1;
    }

    /// Tells every connected peer where this user is and what they look at (on the unreliable
    /// channel: a lost update is simply replaced by the next one).
    pub fn handle_presence(&mut self, now: Duration, presence: bassline_protocol::Presence) {
        self.now = now;
        for p in self.connected_peers() {
            self.send(p, Message::Presence(presence.clone()));
        }
    }

    /// Timers: call when [`Session::poll_timeout`]'s deadline has passed.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.now = now;
        if let RoleState::Host(h) = &self.role
            && h.batch_due.is_some_and(|t| t <= now)
        {
            self.flush_batch();
        }
        if self.next_heartbeat <= now {
            self.next_heartbeat = now + self.config.heartbeat_interval;
            for p in self.connected_peers() {
                self.heartbeat_to(p);
            }
        }
        match &mut self.role {
            RoleState::Host(_) => {}
            RoleState::Guest(g) => {
                if g.host_deadline.is_some_and(|t| t <= now) {
                    g.host_deadline = None;
                    self.host_lost();
                } else if g.query_deadline.is_some_and(|t| t <= now) {
                    g.query_deadline = None;
                    self.start_election();
                } else if g.retry_due.is_some_and(|t| t <= now) {
                    g.retry_due = None;
                    if !g.synced {
                        self.request_state();
                    }
                } else if g.resend_due.is_some_and(|t| t <= now) {
                    g.resend_due = None;
                    if g.synced {
                        self.resend_pending();
                    }
                }
            }
            RoleState::Electing(e) => {
                if e.deadline.is_some_and(|t| t <= now) {
                    e.deadline = None;
                    if let Some(l) = e.expected.take().and_then(|h| self.links.get_mut(&h)) {
                        l.passed_over = true;
                    }
                    self.start_election();
                }
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
        let role: [Option<Duration>; 3] = match &self.role {
            RoleState::Host(h) => [h.batch_due, None, None],
            RoleState::Guest(g) => [g.host_deadline, g.query_deadline, g.retry_due],
            RoleState::Electing(e) => [e.deadline, None, None],
        };
        let resend = match &self.role {
            RoleState::Guest(g) => g.resend_due,
            _ => None,
        };
        role.into_iter()
            .chain([resend, Some(self.next_heartbeat)])
            .flatten()
            .min()
    }

    // ---- internals ----

    pub(crate) fn link(&mut self, id: PeerId) -> &mut Link {
        let codec = &self.config.codec;
        self.links.entry(id).or_insert_with(|| Link::new(codec))
    }

    pub(crate) fn is_connected(&self, peer: PeerId) -> bool {
        self.links.get(&peer).is_some_and(|l| l.connected)
    }

    pub(crate) fn connected_peers(&self) -> Vec<PeerId> {
        self.links
            .iter()
            .filter(|(_, l)| l.connected)
            .map(|(id, _)| *id)
            .collect()
    }

    pub(crate) fn misbehaved(&mut self, peer: PeerId, reason: String) {
        self.events
            .push_back(Event::PeerMisbehaved { peer, reason });
    }

    pub(crate) fn send(&mut self, to: PeerId, message: Message) {
        if !self.is_connected(to) {
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
        // With tentative edits shown, the network is not the replicated state: a hash of it
        // would only raise false alarms, so the digest is sent only without them.
        let hash = if self.edits.tentative {
            StateHash([0; 32])
        } else {
            self.replica.digest()
        };
        // A guest names its host only once it holds the host's state: only then does the host
        // count as followed, which is what other peers rank it by.
        let host = self.current_host().filter(|_| self.is_synced());
        // To its host only (the others learn of it from the host's announcements): the guest's
        // signed word that it follows.
        let vouch = host
            .filter(|h| *h == peer && *h != self.me && self.epoch.host == *h)
            .map(|_| self.vouch());
        let message = Message::Heartbeat {
            position: self.replica.position,
            hash,
            host,
            epoch: self.epoch,
            vouch,
        };
        self.send(peer, message);
    }

    /// This guest's signature saying it follows its host in this epoch (signed once).
    fn vouch(&mut self) -> Signature {
        match self.vouch {
            Some((epoch, sig)) if epoch == self.epoch => sig,
            _ => {
                let sig = self
                    .config
                    .identity
                    .sign(&bassline_protocol::vouch_bytes(self.me, self.epoch));
                self.vouch = Some((self.epoch, sig));
                sig
            }
        }
    }

    /// Sends the host a heartbeat now: it carries this guest's word that it follows, which
    /// the host needs to claim followers.
    pub(crate) fn heartbeat_host(&mut self) {
        if let Some(h) = self.current_host() {
            self.heartbeat_to(h);
        }
    }

    /// A random fraction in [0.5, 1.5) for jitter.
    pub(crate) fn jitter(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        0.5 + (self.rng % 1000) as f64 / 1000.0
    }

    /// The highest sequence number every member holds, as far as their reports go. A member
    /// not heard from yet may hold another lineage: it holds nothing of ours until it says so.
    /// `requester`, a guest about to receive our whole state, holds what it said it has in its
    /// request (`None`: nothing at all, so nothing of its own to learn the fate of).
    pub(crate) fn stable_seq(&self, requester: Option<(PeerId, Option<Position>)>) -> u64 {
        self.links
            .iter()
            .filter_map(|(id, l)| match requester {
                Some((r, have)) if r == *id => have.map(|p| self.replica.covers(p)),
                _ => Some(l.position.map_or(0, |p| self.replica.covers(p))),
            })
            .min()
            .unwrap_or(self.replica.position.seq)
    }

    pub(crate) fn prune_log(&mut self) {
        let stable = self.stable_seq(None);
        self.replica.prune(self.config.log_cap, stable);
    }

    fn after_input(&mut self) {
        // A guest linked to its host but without its state always has a request under way
        // (the retry timer re-sends it). However it got here (an election called off, a link
        // back while electing), it never just waits.
        if let RoleState::Guest(g) = &self.role
            && !g.synced
            && g.retry_due.is_none()
            && g.host.is_some_and(|h| self.is_connected(h))
        {
            self.request_state();
        }
        let ro = self.is_read_only();
        if self.read_only != Some(ro) {
            self.read_only = Some(ro);
            self.events.push_back(Event::ReadOnly(ro));
        }
    }

    fn dispatch(&mut self, from: PeerId, message: Message, size: usize) {
        match message {
            Message::StateRequest { have, first, key } => {
                if matches!(self.role, RoleState::Host(_)) {
                    self.serve_state(from, have, &first, key);
                }
            }
            Message::StateSync(mut sync) => {
                if self.is_following(from) {
                    for (peer, key) in std::mem::take(&mut sync.keys) {
                        self.keys.entry(peer).or_insert(key);
                    }
                    if sync.partial {
                        self.install_partial(*sync);
                    } else {
                        self.install_state(*sync);
                    }
                }
            }
            Message::Ack { position } => self.on_position(from, position),
            Message::Submit {
                op,
                ts,
                request,
                sig,
            } => {
                if matches!(self.role, RoleState::Host(_)) {
                    self.on_submit(from, op, ts, request, sig, size);
                }
            }
            Message::Batch {
                epoch,
                base,
                ops,
                keys,
            } => match self.role {
                RoleState::Guest(_) if self.is_following(from) => {
                    // The host's keys (first key wins here too): what this peer checks
                    // forwarded operations against if it ever leads.
                    for (peer, key) in keys {
                        self.keys.entry(peer).or_insert(key);
                    }
                    self.apply_batch(from, epoch, base, ops)
                }
                // Another host's own sequence (it still takes us for a guest): not for us; the
                // ranks settle which of us leads.
                RoleState::Host(_) if epoch.host == from => {}
                RoleState::Host(_) => self.on_orphans(from, ops, keys),
                _ => {}
            },
            Message::Heartbeat {
                position,
                hash,
                host,
                epoch,
                vouch,
            } => {
                if let Some(sig) = vouch {
                    self.on_vouch(from, host, epoch, sig);
                }
                self.on_heartbeat(from, position, hash, host, epoch)
            }
            Message::HashMismatch { position, groups } => {
                if matches!(self.role, RoleState::Host(_)) {
                    self.on_hash_mismatch(from, position, groups);
                }
            }
            Message::Repair {
                position,
                groups,
                remove,
                writers,
                permissions,
                // The host's key table adds to what this peer knows (first key wins).
                keys,
            } => {
                if self.is_following(from) {
                    for (peer, key) in keys {
                        self.keys.entry(peer).or_insert(key);
                    }
                }
                self.on_repair(
                    from,
                    crate::guest::PendingRepair {
                        position,
                        groups,
                        remove,
                        writers,
                        permissions,
                    },
                )
            }
            Message::Candidate { epoch } => self.on_candidate(from, epoch),
            Message::HostAnnounce { epoch, led } => self.on_announce(from, epoch, led),
            Message::HostQuery { host } => self.on_host_query(from, host),
            Message::HostSeen { host, alive } => self.on_host_seen(from, host, alive),
            Message::Presence(presence) => self.on_presence(from, presence),
            Message::Refused { request, reason } => {
                if self.is_following(from) {
                    self.on_refused(from, request, reason);
                }
            }
        }
    }

    /// Whether `peer` is the host this guest follows.
    /// Another peer's presence. A permanent host (remote mode: its clients have a link to it
    /// alone) passes each client's presence on to the others, naming whose it is; a peer
    /// believes such a name only from the host it follows, and never about itself.
    fn on_presence(&mut self, from: PeerId, mut presence: bassline_protocol::Presence) {
        let peer = match presence.peer.take() {
            None => from,
            Some(origin) if self.is_following(from) && origin != self.me => origin,
            Some(_) => return,
        };
        if presence.group.is_none() && peer != from {
            // The host says `peer` left: forget its allowance with it.
            self.presence.remove(&peer);
        } else if !self.take_presence(peer, &presence) {
            return;
        }
        if self.config.candidacy == Candidacy::Permanent && peer == from {
            let relayed = bassline_protocol::Presence {
                peer: Some(from),
                ..presence.clone()
            };
            for p in self.connected_peers() {
                if p != from {
                    self.send(p, Message::Presence(relayed.clone()));
                }
            }
        }
        self.events.push_back(Event::Presence { peer, presence });
    }

    /// Whether to take a presence update about `from` (sent by it, or passed on by the host):
    /// within its rate and size limits. A flood is reported once, when it starts; the updates
    /// beyond the rate are dropped (the next one replaces them anyway), so a peer cannot make
    /// the host relay, or anyone redraw, without bound.
    fn take_presence(&mut self, from: PeerId, presence: &bassline_protocol::Presence) -> bool {
        let max = self.config.limits.max_presence_selection;
        if presence.selection.len() > max {
            let n = presence.selection.len();
            self.misbehaved(
                from,
                format!("sent a presence selecting {n} items (at most {max})"),
            );
            return false;
        }
        let (now, rate) = (self.now, self.config.limits.presence);
        if self.presence.len() >= PRESENCE_PEOPLE && !self.presence.contains_key(&from) {
            self.presence.clear();
        }
        let allowance = self.presence.entry(from).or_default();
        if allowance.bucket.take(now, rate).is_none() {
            allowance.flooding = false;
            return true;
        }
        if !std::mem::replace(&mut allowance.flooding, true) {
            self.misbehaved(
                from,
                format!(
                    "sent presence faster than {} a second; the extra updates are dropped",
                    rate.per_second
                ),
            );
        }
        false
    }

    /// A permanent host tells its other clients that `peer`'s link closed, so they stop
    /// drawing its pointer at once (a presence naming it, with no group).
    fn relay_departure(&mut self, peer: PeerId) {
        if self.config.candidacy != Candidacy::Permanent {
            return;
        }
        let gone = bassline_protocol::Presence {
            peer: Some(peer),
            ..Default::default()
        };
        for p in self.connected_peers() {
            if p != peer {
                self.send(p, Message::Presence(gone.clone()));
            }
        }
    }

    pub(crate) fn is_following(&self, peer: PeerId) -> bool {
        matches!(&self.role, RoleState::Guest(g) if g.host == Some(peer))
    }

    /// A peer reported the position it holds.
    pub(crate) fn on_position(&mut self, from: PeerId, position: Position) {
        if position.epoch.number > self.highest_epoch().saturating_add(MAX_EPOCH_JUMP) {
            self.misbehaved(
                from,
                format!(
                    "reported epoch {} of a session at {}",
                    position.epoch.number, self.epoch.number
                ),
            );
            return;
        }
        self.link(from).position = Some(position);
        self.prune_log();
    }

    fn on_heartbeat(
        &mut self,
        from: PeerId,
        position: Position,
        hash: StateHash,
        host: Option<PeerId>,
        epoch: Epoch,
    ) {
        if epoch.number > self.highest_epoch().saturating_add(MAX_EPOCH_JUMP) {
            self.misbehaved(
                from,
                format!("follows an epoch {} out of range", epoch.number),
            );
            return;
        }
        self.on_position(from, position);
        let me = self.me;
        let link = self.link(from);
        link.follows = host.map(|h| (h, epoch));
        // It follows another host: our batches are not for it any more.
        if host.is_some_and(|h| h != me) {
            link.following = false;
        }
        match host {
            Some(h) => self.on_host_named(from, h, epoch),
            // The peer we follow holds nobody's state: it does not lead (a restart under its
            // id, or it stepped down). Ask around at once instead of waiting for silence.
            None if self.is_following(from) => {
                if matches!(&self.role, RoleState::Guest(g) if g.query_deadline.is_none()) {
                    self.host_lost();
                }
            }
            None => {}
        }
        // Only a heartbeat of our host as host tells its state (one that stepped down sends
        // its own, maybe tentative, view).
        if self.is_following(from) && host == Some(from) {
            self.on_host_hash(position, hash);
        }
    }

    /// The highest epoch number this peer has heard of.
    pub(crate) fn highest_epoch(&self) -> u64 {
        self.links
            .values()
            .flat_map(|l| {
                [
                    l.position.map(|p| p.epoch.number),
                    l.follows.map(|(_, e)| e.number),
                ]
            })
            .flatten()
            .chain([
                self.epoch.number,
                self.epoch_floor,
                self.replica.position.epoch.number,
            ])
            .max()
            .unwrap_or(0)
    }

    /// Whether any guest has followed this host in its epoch. Once set it stays for the
    /// epoch, so every peer that hears of the epoch ranks it alike however links come and go.
    pub(crate) fn led(&self) -> bool {
        self.config.fault == Some(crate::Fault::SoloOutranks)
            || matches!(&self.role, RoleState::Host(h) if h.led.is_some())
    }

    pub(crate) fn candidacy(&self) -> Candidacy {
        self.config.candidacy
    }
}

/// Whether a message from `from` shows it acting as host (a guest that still thinks it follows
/// a peer that stepped down must not take that peer's other messages as signs of its host).
fn speaks_as_host(from: PeerId, message: &Message) -> bool {
    match message {
        Message::Heartbeat { host, .. } => *host == Some(from),
        Message::HostAnnounce { .. }
        | Message::Batch { .. }
        | Message::StateSync(_)
        | Message::Repair { .. }
        | Message::Refused { .. } => true,
        _ => false,
    }
}

/// A host's saved session, to host it again after a restart (serde: the server keeps it as
/// JSON in its data directory).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostSnapshot {
    pub epoch: Epoch,
    pub state: StateSync,
}

/// What a local request led to.
#[derive(Clone, Debug, PartialEq)]
pub enum LocalOutcome {
    /// A query, answered from this peer's state.
    Answered(bassline_core::Response),
    /// An edit, shown here and sent for sequencing under this id, stamped with this Lamport
    /// time (which orders it against concurrent writes). `reply` is what the edit answered
    /// where it was shown (`Created` with the id the origin gave a new item); its decision
    /// comes later, as [`Event::Decided`].
    Submitted {
        op: OpId,
        ts: u64,
        reply: bassline_core::Reply,
    },
}
