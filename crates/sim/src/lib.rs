//! A deterministic simulator for Bassline sessions, with an oracle that judges every edit.
//!
//! N peers (one host, up to seven guests) run real [`Session`]s that exchange real encoded
//! frames over a simulated network: per-link latency and jitter, limited bandwidth, loss on
//! the unreliable channel, link drops and resets, partitions, links cut for good, one-way
//! loss, crashes with restarts under the same id or a new one, clock skew, and a hostile peer.
//! Time is virtual and jumps to the next delivery or deadline. A random workload edits the
//! network from every peer. At the end the network heals and goes quiet, and the
//! [`oracle`] rebuilds the history the surviving host stands for and judges every edit
//! against models of its own.
//!
//! ```
//! let report = bassline_sim::run(7, &bassline_sim::SimConfig::default()).expect("seed 7 passes");
//! assert!(report.edits_checked > 0);
//! ```

mod hostile;
mod identity;
mod net;
pub mod oracle;
mod rng;
pub mod room;
mod workload;

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, BinaryHeap},
    fmt,
    time::Duration,
};

use bassline_core::{Id, Request};
use bassline_protocol::{Epoch, PeerId};
use bassline_sync::{Config, Event, Fault, LocalOutcome, Role, Session, Stats};
pub use rng::Rng;
pub use workload::{seed_document, seed_network};

use crate::{net::SimNet, oracle::Oracle};

/// Deliberate bugs the random runs cannot tell from correct behaviour (they cost time, or
/// leave a state that heals by the end), each caught by its scenario in tests/findings.rs.
pub const SCENARIO_ONLY: [Fault; 4] = [
    Fault::IgnoreNamedHosts,
    Fault::SoloOutranks,
    Fault::CompareOnlyWhenQuiet,
    Fault::RepairSkipsWriters,
];

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Peers at the start (host included), 1 to 8.
    pub peers: usize,
    /// Edits attempted during the workload, one at a time.
    pub ops: usize,
    /// Bursts: one peer makes 5 to 30 edits at once (multi-operation batches).
    pub bursts: usize,
    /// How long the workload (and the faults) last.
    pub workload: Duration,
    /// How long to let the healed network settle before checking.
    pub settle: Duration,
    /// One-way latency range, in milliseconds.
    pub latency_ms: (u64, u64),
    /// Loss on the unreliable channel.
    pub loss: f64,
    /// Bytes per second each way on every link (`None`: unlimited).
    pub bandwidth: Option<u64>,
    /// A link cut for 50 ms to 3 s.
    pub link_drops: usize,
    /// A link that closes and opens again at once: frames in flight on it are lost.
    pub link_resets: usize,
    /// The peers split in two for 1 to 5 s.
    pub partitions: usize,
    /// A link cut until the network heals at the end (partial connectivity that lasts).
    pub lasting_cuts: usize,
    /// One direction of a link loses every unreliable frame until the network heals.
    pub one_way_loss: usize,
    /// A peer crashes; a new one starts 0.5 to 2 s later.
    pub crashes: usize,
    /// Chance that the new peer comes back under the crashed peer's id.
    pub same_id_restarts: f64,
    /// Crashes hit the host (otherwise any peer).
    pub crash_host: bool,
    /// A hostile peer joins and sends validly encoded but malicious frames.
    pub hostile: usize,
    /// The host changes a member's permission (or the default): read-write, read-only, removed.
    pub permits: usize,
    /// Guests whose state is corrupted on purpose (heartbeats must find it, a repair fix it).
    pub corrupt: usize,
    /// Imports of a network with this many extra contacts (large states, chunking).
    pub imports: usize,
    pub import_size: usize,
    /// The sessions' log cap (small: partitions outlast the log).
    pub log_cap: usize,
    /// Largest clock offset between peers.
    pub max_skew: Duration,
    /// A deliberate bug in every session, to show that the checks catch it.
    pub fault: Option<Fault>,
    /// Upper bound on simulation steps before declaring a livelock.
    pub max_steps: usize,
    /// Print every event and fault as it happens (for replaying a failure).
    pub trace: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            peers: 4,
            ops: 60,
            bursts: 1,
            workload: Duration::from_secs(8),
            settle: Duration::from_secs(12),
            latency_ms: (1, 40),
            loss: 0.1,
            bandwidth: None,
            link_drops: 2,
            link_resets: 1,
            partitions: 1,
            lasting_cuts: 0,
            one_way_loss: 0,
            crashes: 1,
            same_id_restarts: 0.5,
            crash_host: false,
            hostile: 0,
            permits: 0,
            corrupt: 0,
            imports: 0,
            import_size: 0,
            log_cap: Config::default().log_cap,
            max_skew: Duration::from_millis(300),
            fault: None,
            max_steps: 2_000_000,
            trace: false,
        }
    }
}

impl SimConfig {
    /// Only the host crashes, once, on an otherwise healthy network (latency, 10 % loss on the
    /// unreliable channel): what the read-only window after a host loss is on its own.
    pub fn host_loss(seed: u64) -> Self {
        let mut r = Rng::new(seed ^ 0x4057);
        SimConfig {
            peers: r.range(2, 8) as usize,
            ops: r.range(20, 90) as usize,
            bursts: 0,
            latency_ms: (r.range(0, 5), r.range(10, 80)),
            link_drops: 0,
            link_resets: 0,
            partitions: 0,
            crashes: 1,
            crash_host: true,
            ..SimConfig::default()
        }
    }

    /// A configuration varied by the seed: peer count, fault mix, latency, bandwidth.
    pub fn for_seed(seed: u64) -> Self {
        let mut r = Rng::new(seed ^ 0x5EED);
        let big = r.chance(0.05);
        SimConfig {
            peers: r.range(2, 8) as usize,
            ops: r.range(20, 90) as usize,
            bursts: r.range(0, 2) as usize,
            latency_ms: (r.range(0, 5), r.range(10, 80)),
            loss: [0.0, 0.05, 0.2][r.below(3) as usize],
            bandwidth: [None, None, Some(2_000_000), Some(200_000)][r.below(4) as usize],
            link_drops: r.range(0, 4) as usize,
            link_resets: r.range(0, 2) as usize,
            partitions: r.range(0, 2) as usize,
            lasting_cuts: usize::from(r.chance(0.15)),
            one_way_loss: usize::from(r.chance(0.1)),
            crashes: r.range(0, 2) as usize,
            hostile: usize::from(r.chance(0.1)),
            corrupt: usize::from(r.chance(0.05)),
            imports: usize::from(big),
            import_size: if big { 2_500 } else { 0 },
            log_cap: if r.chance(0.25) {
                r.range(2, 24) as usize
            } else {
                Config::default().log_cap
            },
            // From a stream of its own, so the rest of every seed's configuration stays as it
            // was before permissions existed.
            permits: [0, 0, 1, 3][Rng::new(seed ^ 0x9E44).below(4) as usize],
            ..SimConfig::default()
        }
    }
}

/// What a passing run did, and the bounds it measured.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub ops_submitted: usize,
    pub ops_applied: usize,
    /// Edits the oracle judged (accepted by a peer that survived).
    pub edits_checked: usize,
    pub frames: usize,
    pub bytes: usize,
    pub host_changes: usize,
    pub partitions: usize,
    pub crashes: usize,
    pub restarts_same_id: usize,
    pub hostile_frames: usize,
    /// Permission changes the host made, and edits denied for want of permission.
    pub permits: usize,
    pub denied: usize,
    /// Runs where every peer holding the network crashed (nothing to check at the end).
    pub rooms_lost: usize,
    /// Runs where nobody left holding the network may edit, so nobody may lead.
    pub rooms_without_writer: usize,
    /// Read-only time after a host loss, per peer that could edit before it.
    pub read_only_windows: Vec<Duration>,
    /// The largest buffers any peer held at any time.
    pub max: Stats,
    pub steps: usize,
    pub virtual_time: Duration,
    pub final_peers: usize,
}

/// A failed run: which invariant broke, and how to replay it.
#[derive(Clone, Debug)]
pub struct Failure {
    pub seed: u64,
    pub reason: String,
    /// The deliberate bug the run had, if any (part of the replay command).
    pub fault: Option<Fault>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fault = self
            .fault
            .map(|x| format!(" --fault {}", x.name()))
            .unwrap_or_default();
        write!(
            f,
            "seed {} failed: {}\n  replay: cargo run -p bassline-sim --release -- --seed {}{fault} --trace",
            self.seed, self.reason, self.seed
        )
    }
}

/// Runs one seeded simulation and checks every invariant.
pub fn run(seed: u64, cfg: &SimConfig) -> Result<Report, Failure> {
    let mut sim = Sim::new(seed, cfg.clone());
    sim.run().map_err(|reason| Failure {
        seed,
        reason,
        fault: cfg.fault,
    })
}

struct Node {
    session: Session,
    skew: Duration,
    incarnation: u32,
    edits: u64,
    /// Whether it ever held a host's state.
    held_state: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Edit,
    Burst,
    Import,
    DropLink,
    ResetLink,
    Partition,
    LastingCut,
    OneWayLoss,
    Crash,
    Restore,
    /// A crashed peer that did not come back under its id is gone for good.
    Left(PeerId),
    Corrupt,
    Hostile,
    Permit,
}

struct Sim {
    cfg: SimConfig,
    rng: Rng,
    now: Duration,
    nodes: BTreeMap<PeerId, Node>,
    next_id: PeerId,
    incarnations: BTreeMap<PeerId, u32>,
    net: SimNet,
    schedule: BinaryHeap<Reverse<(Duration, Action, u64)>>,
    report: Report,
    oracle: Oracle,
    violations: Vec<String>,
    /// Crashed peers that may come back under their id.
    crashed: Vec<PeerId>,
    hostile: Option<PeerId>,
    /// The run's seed: peers' stand-in keys are made from it (and their ids).
    run_seed: u64,
    hostile_edit_known: bool,
    /// The host made the hostile peer read-only at the start.
    hostile_read_only: bool,
    /// The hostile peer flooded the host with submits already (once per run).
    flooded: bool,
    /// Per peer, how many times it reported the hostile peer.
    reported_hostile: BTreeMap<PeerId, usize>,
    /// A flood under way: its receiver, whether it was host, and its reports at the start.
    flood_start: Option<(PeerId, bool, usize)>,
    /// Peers that could edit when their host was lost, and since when.
    waiting: BTreeMap<PeerId, Duration>,
}

impl Sim {
    fn new(seed: u64, cfg: SimConfig) -> Self {
        let net = SimNet::new(&cfg, seed);
        Sim {
            rng: Rng::new(seed),
            now: Duration::ZERO,
            nodes: BTreeMap::new(),
            next_id: 1,
            incarnations: BTreeMap::new(),
            net,
            schedule: BinaryHeap::new(),
            report: Report::default(),
            oracle: Oracle::new(Epoch { number: 1, host: 1 }),
            violations: Vec::new(),
            crashed: Vec::new(),
            hostile: None,
            run_seed: seed,
            hostile_edit_known: false,
            hostile_read_only: false,
            flooded: false,
            reported_hostile: BTreeMap::new(),
            flood_start: None,
            waiting: BTreeMap::new(),
            cfg,
        }
    }

    fn session_config(&mut self, id: PeerId, reused_id: bool) -> Config {
        Config {
            seed: self.rng.next_u64(),
            fault: self.cfg.fault,
            log_cap: self.cfg.log_cap,
            reused_id,
            identity: std::sync::Arc::new(identity::SimIdentity::new(id, self.run_seed)),
            ..Config::default()
        }
    }

    fn add_node(&mut self, host: bool, reuse: Option<PeerId>) -> PeerId {
        let id = reuse.unwrap_or_else(|| {
            self.next_id += 1;
            self.next_id - 1
        });
        let incarnation = {
            let n = self.incarnations.entry(id).or_insert(0);
            *n += 1;
            *n
        };
        let config = self.session_config(id, incarnation > 1);
        let session = if host {
            Session::host(id, config, seed_network())
        } else {
            let known_host = self
                .nodes
                .values()
                .find(|n| n.session.role() == Role::Host)
                .map(|n| n.session.id());
            let mut guest = Session::guest(id, known_host, config);
            // Half the guests ask for a group first, so the partial transfer runs too.
            if self.rng.chance(0.5) {
                guest.set_focus(vec![Id::new("sum").expect("valid id")]);
            }
            guest
        };
        let skew = Duration::from_millis(self.rng.below(self.cfg.max_skew.as_millis() as u64 + 1));
        self.nodes.insert(
            id,
            Node {
                session,
                skew,
                incarnation,
                edits: 0,
                held_state: host,
            },
        );
        id
    }

    fn local_now(&self, id: PeerId) -> Duration {
        self.now + self.nodes.get(&id).map_or(Duration::ZERO, |n| n.skew)
    }

    fn trace(&self, what: impl FnOnce() -> String) {
        if self.cfg.trace {
            eprintln!("{:>8.3}s {}", self.now.as_secs_f64(), what());
        }
    }

    fn run(&mut self) -> Result<Report, String> {
        self.add_node(true, None);
        for _ in 1..self.cfg.peers {
            self.add_node(false, None);
        }
        if self.cfg.hostile > 0 {
            let h = self.next_id;
            self.hostile = Some(h);
            self.next_id += 1;
            // Half the time the host made the hostile member read-only before anything else:
            // then nothing it sends may change the network.
            if Rng::new(self.rng.next_u64()).chance(0.5) {
                self.hostile_read_only = true;
                self.permit(Some(h), bassline_protocol::Permission::ReadOnly);
            }
        }
        self.plan();
        self.refresh_links();
        let end_of_work = self.cfg.workload;
        let end = end_of_work + self.cfg.settle;
        let mut healed = false;
        while self.now < end {
            self.report.steps += 1;
            if self.report.steps > self.cfg.max_steps {
                return Err(format!("livelock: more than {} steps", self.cfg.max_steps));
            }
            if !healed && self.now >= end_of_work {
                healed = true;
                self.trace(|| "the network heals".into());
                self.schedule
                    .retain(|Reverse((_, a, _))| matches!(a, Action::Left(_)));
                self.net.heal();
                self.refresh_links();
                self.waiting.clear();
            }
            self.step(end)?;
        }
        self.check()?;
        self.report.virtual_time = self.now;
        self.report.final_peers = self.nodes.len();
        self.report.frames = self.net.frames;
        self.report.bytes = self.net.bytes;
        Ok(std::mem::take(&mut self.report))
    }

    /// Lays out the workload and the faults in time.
    fn plan(&mut self) {
        let work = self.cfg.workload.as_millis() as u64;
        let add = |s: &mut Self, action: Action, n: usize| {
            for _ in 0..n {
                let at = Duration::from_millis(s.rng.range(200, work.saturating_sub(500).max(201)));
                let salt = s.rng.next_u64();
                s.schedule.push(Reverse((at, action, salt)));
            }
        };
        add(self, Action::Edit, self.cfg.ops);
        add(self, Action::Burst, self.cfg.bursts);
        add(self, Action::Import, self.cfg.imports);
        add(self, Action::DropLink, self.cfg.link_drops);
        add(self, Action::ResetLink, self.cfg.link_resets);
        add(self, Action::Partition, self.cfg.partitions);
        add(self, Action::LastingCut, self.cfg.lasting_cuts);
        add(self, Action::OneWayLoss, self.cfg.one_way_loss);
        add(self, Action::Crash, self.cfg.crashes);
        add(self, Action::Corrupt, self.cfg.corrupt);
        add(self, Action::Hostile, self.cfg.hostile * 12);
        add(self, Action::Permit, self.cfg.permits);
    }

    /// Advances to the next delivery, deadline, scheduled action or heal, and handles it.
    fn step(&mut self, end: Duration) -> Result<(), String> {
        let next_delivery = self.net.next_delivery();
        let next_action = self.schedule.peek().map(|Reverse((t, _, _))| *t);
        let next_heal = self.net.next_heal();
        let next_timer = self
            .nodes
            .iter()
            .filter_map(|(id, n)| {
                n.session
                    .poll_timeout()
                    .map(|t| t.saturating_sub(n.skew).max(self.now))
                    .map(|t| (t, *id))
            })
            .min();
        let t = [
            next_delivery,
            next_action,
            next_heal,
            next_timer.map(|(t, _)| t),
            Some(end),
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("end is always a candidate");
        self.now = self.now.max(t);
        if next_heal == Some(t) {
            self.net.heal_due(self.now);
            self.refresh_links();
            return Ok(());
        }
        if next_delivery == Some(t) {
            if let Some(d) = self.net.pop_delivery() {
                self.deliver(d);
            }
            return Ok(());
        }
        if next_action == Some(t) {
            let Reverse((_, action, salt)) = self.schedule.pop().expect("peeked");
            self.act(action, salt);
            return Ok(());
        }
        if let Some((tt, id)) = next_timer
            && tt == t
        {
            let now = self.local_now(id);
            if let Some(n) = self.nodes.get_mut(&id) {
                n.session.handle_timeout(now);
            }
            self.drain(id);
        }
        Ok(())
    }

    fn deliver(&mut self, d: net::Delivery) {
        if Some(d.to) == self.hostile {
            return;
        }
        if self.cfg.trace
            && let Some(text) = self.net.spy(&d)
        {
            self.trace(|| format!("{} -> {}: {text}", d.from, d.to));
        }
        let now = self.local_now(d.to);
        let Some(n) = self.nodes.get_mut(&d.to) else {
            return;
        };
        let is_host = n.session.role() == Role::Host;
        // (A peer electing with nobody its lineage lets lead follows whoever leads others.)
        let role_before = n.session.role();
        let electing = role_before == Role::Electing;
        let settled = n.session.is_settled();
        let host_before = n.session.current_host();
        let writer = self
            .hostile
            .is_some_and(|h| n.session.permission(h) == bassline_protocol::Permission::ReadWrite);
        let must_refuse = match d.refuse {
            hostile::Refuse::Always => true,
            hostile::Refuse::IfHostAndWriter => is_host && writer,
            hostile::Refuse::FloodStart => {
                let reports = self.reported_hostile.get(&d.to).copied().unwrap_or(0);
                self.flood_start = Some((d.to, is_host, reports));
                false
            }
            hostile::Refuse::FloodEnd
            | hostile::Refuse::NotFollowed
            | hostile::Refuse::NotFollowedIfSettled
            | hostile::Refuse::No => false,
        };
        n.session.handle_receive(now, d.from, d.channel, &d.frame);
        let events = self.drain(d.to);
        // (A peer whose lineage does not know the member is read-only, one back from a crash
        // without state, may follow it in good faith.)
        if d.refuse == hostile::Refuse::NotFollowed
            && !electing
            && !writer
            && self.nodes.get(&d.to).is_some_and(|n| {
                (n.session.current_host() == Some(d.from) && host_before != Some(d.from))
                    || (is_host && n.session.role() != Role::Host)
            })
        {
            self.violations.push(format!(
                "hostile frames ignored: peer {} ({role_before:?} of {host_before:?}) moved on a read-only member's claim to lead: {}",
                d.to, d.note
            ));
        }
        if d.refuse == hostile::Refuse::NotFollowedIfSettled
            && settled
            && self
                .nodes
                .get(&d.to)
                .is_some_and(|n| n.session.current_host() != host_before)
        {
            self.violations.push(format!(
                "hostile frames ignored: peer {} (settled under host {host_before:?}) moved on a claim to lead: {}",
                d.to, d.note
            ));
        }
        if d.refuse == hostile::Refuse::FloodEnd
            && let Some((to, was_host, before)) = self.flood_start.take()
            && to == d.to
            && was_host
            && self
                .nodes
                .get(&to)
                .is_some_and(|n| n.session.role() == Role::Host)
            && self.reported_hostile.get(&to).copied().unwrap_or(0) == before
        {
            self.violations.push(format!(
                "hostile frames refused: host {to} took a flood of submits from peer {} without refusing any",
                d.from
            ));
        }
        if must_refuse {
            let reported = events.iter().any(
                |e| matches!(e, Event::PeerMisbehaved { peer, .. } if Some(*peer) == self.hostile),
            );
            if !reported {
                self.violations.push(format!(
                    "hostile frames refused: peer {} took a malicious frame from peer {} without refusing it: {}",
                    d.to,
                    d.from,
                    d.note
                ));
            }
        }
    }

    /// Carries out a session's outputs: frames into the network, events into the oracle.
    /// Returns the events.
    fn drain(&mut self, id: PeerId) -> Vec<Event> {
        let Some(node) = self.nodes.get_mut(&id) else {
            return Vec::new();
        };
        let mut frames = Vec::new();
        while let Some(tx) = node.session.poll_transmit() {
            frames.push(tx);
        }
        let mut events = Vec::new();
        while let Some(e) = node.session.poll_event() {
            events.push(e);
        }
        let stats = node.session.stats();
        if node.session.permission(id) != bassline_protocol::Permission::ReadWrite {
            self.oracle.restricted.insert((id, node.incarnation));
        }
        let m = &mut self.report.max;
        m.log = m.log.max(stats.log);
        m.orphans = m.orphans.max(stats.orphans);
        m.pending = m.pending.max(stats.pending);
        m.batch = m.batch.max(stats.batch);
        m.outbox = m.outbox.max(frames.len());
        m.writers = m.writers.max(stats.writers);
        m.peers = m.peers.max(stats.peers);
        m.reassembly_bytes = m.reassembly_bytes.max(stats.reassembly_bytes);
        for e in &events {
            self.observe(id, e);
        }
        for tx in frames {
            self.net.send(
                self.now,
                id,
                tx.to,
                tx.channel,
                tx.frame,
                hostile::Refuse::No,
                String::new(),
            );
        }
        events
    }

    fn node_key(&self, id: PeerId) -> oracle::Node {
        (id, self.nodes.get(&id).map_or(0, |n| n.incarnation))
    }

    fn observe(&mut self, id: PeerId, event: &Event) {
        if self.cfg.trace && !matches!(event, Event::Changes(_)) {
            self.trace(|| format!("peer {id}: {event:?}"));
        }
        let node = self.node_key(id);
        match event {
            Event::Applied {
                op,
                ts,
                position,
                decision,
            } => {
                self.report.ops_applied += 1;
                self.oracle
                    .applied(node, *op, *ts, *position, decision.clone());
            }
            Event::Decided {
                op,
                position,
                decision,
            } => {
                if matches!(decision, bassline_protocol::Decision::Denied { .. }) {
                    self.report.denied += 1;
                }
                self.oracle.told(node, *op, *position, decision.clone());
            }
            Event::BecameHost { epoch, base } => self.oracle.became_host(node, *epoch, *base),
            Event::StateReplaced { position } => {
                self.oracle.installed(node, *position);
                if let Some(n) = self.nodes.get_mut(&id) {
                    n.held_state = true;
                }
            }
            Event::HostChanged { .. } => self.report.host_changes += 1,
            Event::PeerMisbehaved { peer, reason } => {
                if Some(*peer) == self.hostile {
                    *self.reported_hostile.entry(id).or_default() += 1;
                } else {
                    self.violations.push(format!(
                        "honest peers trusted: peer {id} reports peer {peer} misbehaved: {reason}"
                    ));
                }
            }
            Event::Diverged { position, .. } => {
                if self.cfg.corrupt == 0 {
                    self.violations.push(format!(
                        "no repair needed: peer {id} diverged from its host at {position:?} though no state was corrupted"
                    ));
                }
            }
            Event::ReadOnly(false) => {
                if let Some(since) = self.waiting.remove(&id) {
                    self.report.read_only_windows.push(self.now - since);
                }
            }
            Event::Refused { host, reason, .. } => {
                if *reason != bassline_protocol::Refusal::Removed {
                    self.violations.push(format!(
                        "limits: host {host} refused honest peer {id}: {reason}"
                    ));
                }
            }
            Event::ReadOnly(true)
            | Event::PermissionChanged { .. }
            | Event::PartialState { .. }
            | Event::Changes(_)
            | Event::Presence { .. } => {}
        }
    }

    fn ids(&self) -> Vec<PeerId> {
        let mut ids: Vec<PeerId> = self.nodes.keys().copied().collect();
        ids.extend(self.hostile);
        ids
    }

    /// Brings links up or down to match who is alive and which links are cut.
    fn refresh_links(&mut self) {
        let ids = self.ids();
        let (up, down) = self.net.plan_links(&ids);
        for (a, b) in down {
            self.take_down(a, b);
        }
        for (a, b) in up {
            self.net.set_up(a, b);
            for (x, y) in [(a, b), (b, a)] {
                let now = self.local_now(x);
                if let Some(n) = self.nodes.get_mut(&x) {
                    n.session.handle_connected(now, y);
                }
            }
            self.drain(a);
            self.drain(b);
        }
    }

    fn take_down(&mut self, a: PeerId, b: PeerId) {
        if !self.net.set_down(a, b) {
            return;
        }
        for (x, y) in [(a, b), (b, a)] {
            let now = self.local_now(x);
            if let Some(n) = self.nodes.get_mut(&x) {
                n.session.handle_disconnected(now, y);
            }
            self.drain(x);
        }
    }

    fn act(&mut self, action: Action, salt: u64) {
        let ids: Vec<PeerId> = self.nodes.keys().copied().collect();
        if !matches!(action, Action::Edit) {
            self.trace(|| format!("{action:?} among {ids:?}"));
        }
        let mut r = Rng::new(salt);
        match action {
            Action::Edit => {
                if let Some(&id) = r.pick(&ids) {
                    self.edit(id, &mut r, None);
                }
            }
            Action::Burst => {
                if let Some(&id) = r.pick(&ids) {
                    for _ in 0..r.range(5, 30) {
                        self.edit(id, &mut r, None);
                    }
                }
            }
            Action::Import => {
                if let Some(&id) = r.pick(&ids) {
                    let document = seed_document(self.cfg.import_size);
                    self.edit(id, &mut r, Some(Request::ImportState { document }));
                }
            }
            Action::DropLink | Action::LastingCut => {
                let all = self.ids();
                if let (Some(&a), Some(&b)) = (r.pick(&all), r.pick(&all))
                    && a != b
                {
                    let until = (action == Action::DropLink)
                        .then(|| self.now + Duration::from_millis(r.range(50, 3000)));
                    self.net.cut(a, b, until);
                    self.refresh_links();
                }
            }
            Action::ResetLink => {
                let all = self.ids();
                if let (Some(&a), Some(&b)) = (r.pick(&all), r.pick(&all))
                    && a != b
                {
                    self.take_down(a, b);
                    self.refresh_links();
                }
            }
            Action::OneWayLoss => {
                if let (Some(&a), Some(&b)) = (r.pick(&ids), r.pick(&ids))
                    && a != b
                {
                    self.net.lose_one_way(a, b);
                }
            }
            Action::Partition => {
                self.report.partitions += 1;
                let until = self.now + Duration::from_millis(r.range(1000, 5000));
                let all = self.ids();
                let side: BTreeSet<PeerId> =
                    all.iter().copied().filter(|_| r.chance(0.5)).collect();
                for &a in &all {
                    for &b in &all {
                        if a < b && side.contains(&a) != side.contains(&b) {
                            self.net.cut(a, b, Some(until));
                        }
                    }
                }
                self.refresh_links();
            }
            Action::Crash => {
                let host = self
                    .nodes
                    .values()
                    .find(|n| n.session.role() == Role::Host)
                    .map(|n| n.session.id());
                let victim = if self.cfg.crash_host {
                    host
                } else {
                    r.pick(&ids).copied()
                };
                if let Some(id) = victim {
                    self.crash(id, &mut r);
                }
            }
            Action::Restore => {
                let same = r.chance(self.cfg.same_id_restarts);
                let reuse = if same { self.crashed.pop() } else { None };
                if reuse.is_some() {
                    self.report.restarts_same_id += 1;
                } else if let Some(gone) = self.crashed.pop() {
                    self.schedule.push(Reverse((
                        self.now + Duration::from_secs(3),
                        Action::Left(gone),
                        0,
                    )));
                }
                self.add_node(false, reuse);
                self.refresh_links();
            }
            Action::Left(gone) => {
                if self.nodes.contains_key(&gone) {
                    return;
                }
                for id in ids {
                    let now = self.local_now(id);
                    if let Some(n) = self.nodes.get_mut(&id) {
                        n.session.handle_left(now, gone);
                    }
                    self.drain(id);
                }
            }
            Action::Corrupt => {
                let guests: Vec<PeerId> = ids
                    .iter()
                    .copied()
                    .filter(|id| self.nodes[id].session.role() == Role::Guest)
                    .collect();
                if let Some(&g) = r.pick(&guests)
                    && let Some(n) = self.nodes.get_mut(&g)
                {
                    let _ = n.session.inject_divergence(Request::UpdateContent {
                        contact: Id::new("hot2").expect("valid id"),
                        value: bassline_core::Value::from("corrupted"),
                    });
                }
            }
            Action::Permit => {
                use bassline_protocol::Permission::*;
                let Some(host) = self.host() else { return };
                // Members by id, not the hostile one (its permission is the seed's); the
                // default only in rooms without it (a default change would reach it too).
                let mut targets: Vec<Option<PeerId>> = ids
                    .iter()
                    .filter(|id| **id != host)
                    .map(|id| Some(*id))
                    .collect();
                if self.hostile.is_none() {
                    targets.push(None);
                }
                let Some(&target) = r.pick(&targets) else {
                    return;
                };
                let permission = match (r.below(5), target) {
                    (0 | 1, _) => ReadWrite,
                    (4, Some(_)) => Removed,
                    _ => ReadOnly,
                };
                self.permit(target, permission);
            }
            Action::Hostile => {
                if let Some(h) = self.hostile {
                    let host = self
                        .nodes
                        .values()
                        .find(|n| n.session.role() == Role::Host)
                        .map(|n| n.session.id());
                    if !self.hostile_edit_known {
                        // The one well-formed edit it sends (as a batch): a member's edit, which
                        // a host may sequence; the oracle needs its request to replay it.
                        self.hostile_edit_known = true;
                        let (op, ts, request) = hostile::plain_edit(h);
                        self.oracle
                            .accepted((h, 0), op, ts, request, Default::default());
                    }
                    if let Some(&to) = r.pick(&ids)
                        && self.net.is_up(h, to)
                    {
                        if !self.flooded && Some(to) == host && r.chance(0.2) {
                            self.flooded = true;
                            self.flood(h, to);
                            return;
                        }
                        let epoch = self.nodes.get(&to).map(|n| n.session.epoch());
                        // Outside an election: to a peer that follows a live host or leads.
                        let settled = self.nodes.get(&to).is_some_and(|n| {
                            n.session.role() == Role::Host || !n.session.is_read_only()
                        });
                        let me = identity::SimIdentity::new(h, self.run_seed);
                        // A member the receiver knows the key of, whose word the claim forges.
                        let victim = self.nodes.get(&to).and_then(|n| {
                            let s = &n.session;
                            let v = ids
                                .iter()
                                .copied()
                                .find(|id| *id != to && s.key_of(*id).is_some())?;
                            Some((v, s.key_of(v)?))
                        });
                        let (frames, refuse, note) =
                            if (settled || self.hostile_read_only) && r.chance(0.2) {
                                // A claim to lead the next epoch by a member that was never
                                // elected and that nobody follows: it moves nobody settled, and
                                // a read-only member's moves nobody but a peer with nobody else
                                // to follow (so it goes to unsettled peers too).
                                hostile::false_announce(
                                    h,
                                    &me,
                                    epoch.unwrap_or_default(),
                                    !self.hostile_read_only,
                                    victim,
                                    &mut r,
                                )
                            } else if r.chance(0.2) {
                                // Another member's next edit, forwarded (signed with the
                                // hostile member's own key) by a read-only member or one who
                                // may edit. The victim is one whose key the receiver knows:
                                // an id a lineage never met can be claimed first by anyone (a
                                // documented limit, docs/SECURITY.md).
                                let next = self.nodes.get(&to).and_then(|n| {
                                    let s = &n.session;
                                    let v = ids.iter().copied().find(|id| {
                                        Some(*id) != host && *id != to && s.key_of(*id).is_some()
                                    })?;
                                    let last = s
                                        .decided()
                                        .into_iter()
                                        .filter(|(p, _)| *p == v)
                                        .map(|(_, c)| c)
                                        .max();
                                    Some((v, last.unwrap_or(0) + 1))
                                });
                                match next {
                                    Some((v, counter)) => hostile::forged_forward(
                                        h,
                                        &me,
                                        v,
                                        counter,
                                        !self.hostile_read_only,
                                    ),
                                    None => hostile::frame(h, host, &me, &mut r),
                                }
                            } else {
                                hostile::frame(h, host, &me, &mut r)
                            };
                        self.report.hostile_frames += 1;
                        for (channel, frame) in frames {
                            self.net
                                .send(self.now, h, to, channel, frame, refuse, note.clone());
                        }
                    }
                }
            }
        }
    }

    /// The current host, if any.
    fn host(&self) -> Option<PeerId> {
        self.nodes
            .values()
            .find(|n| n.session.role() == Role::Host)
            .map(|n| n.session.id())
    }

    /// The host changes `peer`'s permission (or the default); the oracle learns of it.
    fn permit(&mut self, peer: Option<PeerId>, permission: bassline_protocol::Permission) {
        let Some(host) = self.host() else { return };
        let now = self.local_now(host);
        let node = self.nodes.get_mut(&host).expect("the host is a node");
        let at = node.session.position();
        let key = (host, node.incarnation);
        if let Ok(LocalOutcome::Submitted { op, ts, .. }) =
            node.session.set_permission(now, peer, permission)
        {
            self.report.permits += 1;
            self.trace(|| format!("host {host} sets {peer:?} {permission}"));
            self.oracle.accepted_permit(
                key,
                op,
                ts,
                bassline_protocol::Permit { peer, permission },
                at,
            );
        }
        self.drain(host);
    }

    /// The hostile member sends the host more submits than its limit allows, all at once:
    /// the host must refuse some (and may sequence the rest, as the member's own edits).
    fn flood(&mut self, h: PeerId, to: PeerId) {
        // Past the burst by more than the bucket refills while the flood crosses the
        // simulated link (signed submits are ~100 bytes: about 1.5 s for 3,500 of them).
        let n = bassline_sync::Limits::default().submits.burst as u64 + 1_500;
        let me = identity::SimIdentity::new(h, self.run_seed);
        // Like any member, it presents its key before editing (its submits are signed).
        self.net.send(
            self.now,
            h,
            to,
            bassline_sync::Channel::Reliable,
            hostile::present_key(h, &me),
            hostile::Refuse::No,
            "the hostile member's key".into(),
        );
        for (i, (op, ts, request)) in hostile::flood(h, n).into_iter().enumerate() {
            self.oracle
                .accepted((h, 0), op, ts, request.clone(), Default::default());
            let frame = hostile::submit_frame(h, &me, op, ts, request);
            let refuse = match i {
                0 => hostile::Refuse::FloodStart,
                _ if i as u64 == n - 1 => hostile::Refuse::FloodEnd,
                _ => hostile::Refuse::No,
            };
            self.report.hostile_frames += 1;
            self.net.send(
                self.now,
                h,
                to,
                bassline_sync::Channel::Reliable,
                frame,
                refuse,
                "a flood of submits".into(),
            );
        }
    }

    fn crash(&mut self, id: PeerId, r: &mut Rng) {
        self.report.crashes += 1;
        if self
            .nodes
            .get(&id)
            .is_some_and(|n| n.session.role() == Role::Host)
        {
            // Everyone who could edit now waits for a new host: measure how long.
            for (other, n) in &self.nodes {
                if *other != id && !n.session.is_read_only() {
                    self.waiting.insert(*other, self.now);
                }
            }
        }
        self.nodes.remove(&id);
        self.waiting.remove(&id);
        self.crashed.push(id);
        let ids = self.ids();
        for other in ids {
            self.take_down(id, other);
        }
        self.net.forget(id);
        let restart = self.now + Duration::from_millis(r.range(500, 2000));
        self.schedule
            .push(Reverse((restart, Action::Restore, r.next_u64())));
    }

    /// One edit from peer `id`: `request`, or a random one chosen against what that peer
    /// currently sees. Accepted edits go to the oracle.
    fn edit(&mut self, id: PeerId, r: &mut Rng, request: Option<Request>) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        node.edits += 1;
        let request = match request {
            Some(q) => q,
            None => match workload::edit(id, node.edits, node.session.network(), r) {
                Some(q) => q,
                None => return,
            },
        };
        let now = self.local_now(id);
        let node = self.nodes.get_mut(&id).expect("checked above");
        let at = node.session.position();
        let key = (id, node.incarnation);
        if let Ok(LocalOutcome::Submitted { op, ts, .. }) =
            node.session.handle_local(now, request.clone())
        {
            self.report.ops_submitted += 1;
            // The documented rule, applied by the oracle itself: a missing id is made from
            // the operation's id.
            self.oracle
                .accepted(key, op, ts, oracle::assign_ids(request, op), at);
        }
        self.drain(id);
    }

    /// The invariants, after the network healed and went quiet.
    fn check(&mut self) -> Result<(), String> {
        if let Some(v) = self.violations.first() {
            return Err(v.clone());
        }
        let hosts: Vec<PeerId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.session.role() == Role::Host)
            .map(|(id, _)| *id)
            .collect();
        if hosts.is_empty() && !self.nodes.values().any(|n| n.held_state) {
            // Every peer that held the network crashed: nothing is left to lead with, and the
            // newcomers rightly wait. (Persisting the state is the driver's job.)
            self.report.rooms_lost += 1;
            return Ok(());
        }
        if hosts.is_empty()
            && self.nodes.values().all(|n| {
                !n.held_state
                    || n.session.permission(n.session.id())
                        != bassline_protocol::Permission::ReadWrite
            })
        {
            // The host made every member still holding the network read-only or removed them,
            // then left: nobody may lead (rightly).
            self.report.rooms_without_writer += 1;
            return Ok(());
        }
        // A member demoted or removed on one side of a partition while it led the other is
        // not followed by the members who know of it: left alone, it may go on leading itself.
        let outcast = |h: &PeerId| {
            hosts.iter().any(|o| {
                o != h
                    && self.nodes[o].session.permission(*h)
                        != bassline_protocol::Permission::ReadWrite
            })
        };
        let leaders: Vec<PeerId> = hosts.iter().copied().filter(|h| !outcast(h)).collect();
        let [host] = leaders[..] else {
            return Err(format!(
                "convergence: expected exactly one host after healing, found {hosts:?}"
            ));
        };
        let host_position = self.nodes[&host].session.position();
        let host_hash = self
            .nodes
            .get_mut(&host)
            .expect("host is alive")
            .session
            .state_hash();
        let removed: BTreeSet<PeerId> = self
            .nodes
            .keys()
            .copied()
            .filter(|id| {
                self.nodes[&host].session.permission(*id) == bassline_protocol::Permission::Removed
                    || (*id != host && hosts.contains(id))
            })
            .collect();
        for (id, node) in self.nodes.iter_mut() {
            if removed.contains(id) {
                // Served nothing more: it keeps what it had.
                continue;
            }
            let s = &mut node.session;
            if s.current_host() != Some(host) {
                return Err(format!(
                    "convergence: peer {id} follows {:?}, not host {host}",
                    s.current_host()
                ));
            }
            if !s.is_synced() || s.pending() > 0 || s.stats().orphans > 0 {
                return Err(format!(
                    "convergence: peer {id} not settled: synced {}, pending {:?}, orphans {}",
                    s.is_synced(),
                    s.pending_ops().map(|(op, _)| op).collect::<Vec<_>>(),
                    s.stats().orphans
                ));
            }
            if s.position() != host_position {
                return Err(format!(
                    "convergence: peer {id} at {:?}, host {host} at {host_position:?}",
                    s.position()
                ));
            }
            if s.state_hash() != host_hash {
                return Err(format!(
                    "convergence: peer {id} state hash differs from host {host}'s"
                ));
            }
            if s.stats().reassembly_bytes > 0 {
                return Err(format!(
                    "convergence: peer {id} holds half a message: {:?}",
                    s.stats()
                ));
            }
        }
        let survivors: BTreeSet<oracle::Node> = self
            .nodes
            .iter()
            .filter(|(id, _)| !removed.contains(id))
            .map(|(id, n)| (*id, n.incarnation))
            .collect();
        self.oracle.check(
            host_position,
            host_hash,
            &survivors,
            &seed_network(),
            &workload::watched(),
            self.cfg.corrupt > 0,
        );
        self.report.edits_checked = self.oracle.edits_checked;
        let table = &self.oracle.permissions;
        let theirs = self.nodes[&host].session.permissions();
        let mine = bassline_protocol::Permissions {
            default: table.default,
            members: table
                .members
                .iter()
                .filter(|(_, p)| **p != table.default)
                .map(|(id, p)| (*id, *p))
                .collect(),
        };
        if self.oracle.violations.is_empty() && *theirs != mine {
            return Err(format!(
                "permissions: host {host} ends with {theirs:?}; the history gives {mine:?}"
            ));
        }
        match self.oracle.violations.first() {
            Some(v) => Err(v.clone()),
            None => Ok(()),
        }
    }
}

/// What many passing runs covered, for the README and the command line.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub seeds: usize,
    pub edits_checked: usize,
    pub ops_applied: usize,
    pub host_changes: usize,
    pub partitions: usize,
    pub crashes: usize,
    pub restarts_same_id: usize,
    pub hostile_frames: usize,
    pub permits: usize,
    pub denied: usize,
    pub rooms_lost: usize,
    pub rooms_without_writer: usize,
    /// Runs in which some peer held orphans (operations of a lineage that lost).
    pub runs_with_orphans: usize,
    pub read_only_windows: Vec<Duration>,
    pub max: Stats,
}

impl Summary {
    pub fn add(&mut self, r: &Report) {
        self.seeds += 1;
        self.edits_checked += r.edits_checked;
        self.ops_applied += r.ops_applied;
        self.host_changes += r.host_changes;
        self.partitions += r.partitions;
        self.crashes += r.crashes;
        self.restarts_same_id += r.restarts_same_id;
        self.hostile_frames += r.hostile_frames;
        self.permits += r.permits;
        self.denied += r.denied;
        self.rooms_lost += r.rooms_lost;
        self.rooms_without_writer += r.rooms_without_writer;
        self.runs_with_orphans += usize::from(r.max.orphans > 0);
        self.read_only_windows
            .extend_from_slice(&r.read_only_windows);
        let m = &mut self.max;
        m.log = m.log.max(r.max.log);
        m.orphans = m.orphans.max(r.max.orphans);
        m.pending = m.pending.max(r.max.pending);
        m.batch = m.batch.max(r.max.batch);
        m.outbox = m.outbox.max(r.max.outbox);
        m.writers = m.writers.max(r.max.writers);
        m.peers = m.peers.max(r.max.peers);
        m.reassembly_bytes = m.reassembly_bytes.max(r.max.reassembly_bytes);
    }

    /// The `q` quantile (0 to 1) of the read-only windows after a host loss.
    pub fn read_only_quantile(&self, q: f64) -> Option<Duration> {
        let mut w = self.read_only_windows.clone();
        w.sort();
        let i = ((w.len() as f64 - 1.0) * q).round() as usize;
        w.get(i).copied()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{} ms", d.as_millis()));
        writeln!(
            f,
            "covered: {} edits judged by the oracle, {} operations applied, {} host changes, \
             {} partitions, {} crashes ({} restarted under the same id), {} hostile frames, \
             {} permission changes ({} times a member was told its edit was denied), \
             {} runs re-submitting orphans, {} rooms where every peer holding the network \
             crashed, {} where nobody left may edit",
            self.edits_checked,
            self.ops_applied,
            self.host_changes,
            self.partitions,
            self.crashes,
            self.restarts_same_id,
            self.hostile_frames,
            self.permits,
            self.denied,
            self.runs_with_orphans,
            self.rooms_lost,
            self.rooms_without_writer
        )?;
        writeln!(
            f,
            "read-only after a host loss: p50 {}, p99 {}, max {} ({} windows)",
            ms(self.read_only_quantile(0.5)),
            ms(self.read_only_quantile(0.99)),
            ms(self.read_only_quantile(1.0)),
            self.read_only_windows.len()
        )?;
        let m = &self.max;
        write!(
            f,
            "largest buffers of any peer: log {}, orphans {}, pending {}, batch {}, outbox {}, \
             writers {}, peers {}, reassembly {} B",
            m.log, m.orphans, m.pending, m.batch, m.outbox, m.writers, m.peers, m.reassembly_bytes
        )
    }
}
