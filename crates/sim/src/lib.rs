//! A deterministic simulator for Bassline sessions.
//!
//! N peers (one host, up to seven guests) run real [`Session`]s that exchange real encoded
//! frames over a simulated network: per-link latency and jitter, loss on the unreliable
//! channel, link drops, partitions, peer crashes and restarts, and clock skew. Time is virtual
//! and jumps to the next delivery or deadline. A random workload edits the network from every
//! peer, including concurrent writes to the same contacts and removals racing updates. At the
//! end the network heals, goes quiet, and the invariants of the design are checked.
//!
//! ```
//! let report = bassline_sim::run(7, &bassline_sim::SimConfig::default()).expect("seed 7 passes");
//! assert!(report.ops_applied > 0);
//! ```

mod rng;
pub mod room;

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, BinaryHeap},
    fmt,
    time::Duration,
};

use bassline_core::{BlendMode, Id, Network, Request, Value, WireKind};
use bassline_protocol::{OpId, PeerId};
use bassline_sync::{Channel, Config, Event, Fault, LocalOutcome, Role, Session};
pub use rng::Rng;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Peers at the start (host included), 1 to 8.
    pub peers: usize,
    /// Edits attempted during the workload.
    pub ops: usize,
    /// How long the workload (and the faults) last.
    pub workload: Duration,
    /// How long to let the healed network settle before checking.
    pub settle: Duration,
    /// One-way latency range, in milliseconds.
    pub latency_ms: (u64, u64),
    /// Loss on the unreliable channel.
    pub loss: f64,
    /// Faults injected during the workload.
    pub link_drops: usize,
    pub partitions: usize,
    pub crashes: usize,
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
            workload: Duration::from_secs(8),
            settle: Duration::from_secs(12),
            latency_ms: (1, 40),
            loss: 0.1,
            link_drops: 3,
            partitions: 1,
            crashes: 1,
            max_skew: Duration::from_millis(300),
            fault: None,
            max_steps: 2_000_000,
            trace: false,
        }
    }
}

impl SimConfig {
    /// A configuration varied by the seed: peer count, fault mix, latency.
    pub fn for_seed(seed: u64) -> Self {
        let mut r = Rng::new(seed ^ 0x5EED);
        SimConfig {
            peers: r.range(2, 8) as usize,
            ops: r.range(20, 80) as usize,
            latency_ms: (r.range(0, 5), r.range(10, 80)),
            loss: [0.0, 0.05, 0.2][r.below(3) as usize],
            link_drops: r.range(0, 4) as usize,
            partitions: r.range(0, 1) as usize,
            crashes: r.range(0, 1) as usize,
            ..SimConfig::default()
        }
    }
}

/// What a passing run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub ops_submitted: usize,
    pub ops_applied: usize,
    pub frames: usize,
    pub bytes: usize,
    pub host_changes: usize,
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
        let fault = match self.fault {
            Some(Fault::SkipDedup) => " --fault skip-dedup",
            None => "",
        };
        write!(
            f,
            "seed {} failed: {}\n  replay: cargo run -p bassline-sim --release -- --seed {}{fault}",
            self.seed, self.reason, self.seed
        )
    }
}

struct Node {
    session: Session,
    skew: Duration,
    /// Operations applied since the last full state replacement, to catch double application.
    applied_since_reset: BTreeSet<OpId>,
    reset_clock: BTreeMap<PeerId, u64>,
    /// Every operation this peer saw applied.
    seen_ops: BTreeSet<OpId>,
    edits: u64,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Delivery {
    at: Duration,
    seq: u64,
    from: PeerId,
    to: PeerId,
    channel: Channel,
    generation: u64,
    frame: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Edit,
    DropLink,
    Partition,
    Crash,
    Restore,
}

struct Sim {
    cfg: SimConfig,
    rng: Rng,
    now: Duration,
    nodes: BTreeMap<PeerId, Node>,
    next_id: PeerId,
    /// Links currently cut (by drops or partitions), with when they heal.
    cut: BTreeMap<(PeerId, PeerId), Duration>,
    generation: BTreeMap<(PeerId, PeerId), u64>,
    up: BTreeSet<(PeerId, PeerId)>,
    last_reliable: BTreeMap<(PeerId, PeerId), Duration>,
    queue: BinaryHeap<Reverse<Delivery>>,
    seq: u64,
    schedule: BinaryHeap<Reverse<(Duration, Action, u64)>>,
    report: Report,
    violations: Vec<String>,
    /// Peers that crashed: their ops need not survive unless another peer saw them.
    crashed: BTreeSet<PeerId>,
    /// With tracing on: decoders that show what each delivered frame said.
    spy: BTreeMap<(PeerId, PeerId, Channel), bassline_protocol::Reassembler>,
}

fn link(a: PeerId, b: PeerId) -> (PeerId, PeerId) {
    (a.min(b), a.max(b))
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

impl Sim {
    fn new(seed: u64, cfg: SimConfig) -> Self {
        let rng = Rng::new(seed);
        Sim {
            cfg,
            rng,
            now: Duration::ZERO,
            nodes: BTreeMap::new(),
            next_id: 1,
            cut: BTreeMap::new(),
            generation: BTreeMap::new(),
            up: BTreeSet::new(),
            last_reliable: BTreeMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            schedule: BinaryHeap::new(),
            report: Report::default(),
            violations: Vec::new(),
            crashed: BTreeSet::new(),
            spy: BTreeMap::new(),
        }
    }

    fn session_config(&mut self) -> Config {
        Config {
            seed: self.rng.next_u64(),
            fault: self.cfg.fault,
            ..Config::default()
        }
    }

    fn add_node(&mut self, host: bool) -> PeerId {
        let id = self.next_id;
        self.next_id += 1;
        let config = self.session_config();
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
                applied_since_reset: BTreeSet::new(),
                reset_clock: BTreeMap::new(),
                seen_ops: BTreeSet::new(),
                edits: 0,
            },
        );
        id
    }

    fn local_now(&self, id: PeerId) -> Duration {
        self.now + self.nodes.get(&id).map_or(Duration::ZERO, |n| n.skew)
    }

    fn run(&mut self) -> Result<Report, String> {
        self.add_node(true);
        for _ in 1..self.cfg.peers {
            self.add_node(false);
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
                self.schedule.clear();
                self.cut.clear();
                self.refresh_links();
            }
            self.step(end)?;
        }
        self.check()?;
        self.report.virtual_time = self.now;
        self.report.final_peers = self.nodes.len();
        Ok(std::mem::take(&mut self.report))
    }

    /// Lays out the workload and the faults in time.
    fn plan(&mut self) {
        let work = self.cfg.workload.as_millis() as u64;
        let add = |s: &mut Self, action: Action| {
            let at = Duration::from_millis(s.rng.range(200, work.saturating_sub(500).max(201)));
            let salt = s.rng.next_u64();
            s.schedule.push(Reverse((at, action, salt)));
        };
        for _ in 0..self.cfg.ops {
            add(self, Action::Edit);
        }
        for _ in 0..self.cfg.link_drops {
            add(self, Action::DropLink);
        }
        for _ in 0..self.cfg.partitions {
            add(self, Action::Partition);
        }
        for _ in 0..self.cfg.crashes {
            add(self, Action::Crash);
        }
    }

    /// Advances to the next delivery, deadline, scheduled action or heal, and handles it.
    fn step(&mut self, end: Duration) -> Result<(), String> {
        let next_delivery = self.queue.peek().map(|Reverse(d)| d.at);
        let next_action = self.schedule.peek().map(|Reverse((t, _, _))| *t);
        let next_heal = self.cut.values().min().copied();
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
        let candidates = [
            next_delivery,
            next_action,
            next_heal,
            next_timer.map(|(t, _)| t),
            Some(end),
        ];
        let t = candidates
            .into_iter()
            .flatten()
            .min()
            .expect("end is always a candidate");
        self.now = self.now.max(t);
        if next_heal == Some(t) {
            let now = self.now;
            self.cut.retain(|_, until| *until > now);
            self.refresh_links();
            return Ok(());
        }
        if next_delivery == Some(t) {
            let Reverse(d) = self.queue.pop().expect("peeked");
            if self.generation.get(&link(d.from, d.to)) == Some(&d.generation)
                && self.up.contains(&link(d.from, d.to))
            {
                if self.cfg.trace {
                    let spy = self
                        .spy
                        .entry((d.from, d.to, d.channel))
                        .or_insert_with(|| {
                            bassline_protocol::Reassembler::new(bassline_protocol::Codec::default())
                        });
                    if let Ok(Some(env)) = spy.push(&d.frame)
                        && !matches!(env.message, bassline_protocol::Message::Heartbeat { .. })
                    {
                        let mut text = format!("{:?}", env.message);
                        text.truncate(160);
                        eprintln!(
                            "{:>8.3}s {} -> {}: {text}",
                            self.now.as_secs_f64(),
                            d.from,
                            d.to
                        );
                    }
                }
                let now = self.local_now(d.to);
                if let Some(n) = self.nodes.get_mut(&d.to) {
                    n.session.handle_receive(now, d.from, d.channel, &d.frame);
                }
                self.drain(d.to)?;
            }
            return Ok(());
        }
        if next_action == Some(t) {
            let Reverse((_, action, salt)) = self.schedule.pop().expect("peeked");
            self.act(action, salt)?;
            return Ok(());
        }
        if let Some((tt, id)) = next_timer
            && tt == t
        {
            let now = self.local_now(id);
            if let Some(n) = self.nodes.get_mut(&id) {
                n.session.handle_timeout(now);
            }
            self.drain(id)?;
        }
        Ok(())
    }

    /// Carries out a session's outputs: frames into the network, events into the checks.
    fn drain(&mut self, id: PeerId) -> Result<(), String> {
        let Some(node) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        let mut frames = Vec::new();
        while let Some(tx) = node.session.poll_transmit() {
            frames.push(tx);
        }
        let mut events = Vec::new();
        while let Some(e) = node.session.poll_event() {
            events.push(e);
        }
        for e in events {
            self.observe(id, e);
        }
        for tx in frames {
            let l = link(id, tx.to);
            if !self.up.contains(&l) {
                continue;
            }
            self.report.frames += 1;
            self.report.bytes += tx.frame.len();
            let (lo, hi) = self.cfg.latency_ms;
            let mut at = self.now + Duration::from_millis(self.rng.range(lo, hi.max(lo)));
            match tx.channel {
                Channel::Reliable => {
                    let last = self.last_reliable.entry((id, tx.to)).or_default();
                    at = at.max(*last);
                    *last = at;
                }
                Channel::Unreliable => {
                    if self.rng.chance(self.cfg.loss) {
                        continue;
                    }
                }
            }
            self.seq += 1;
            let generation = *self.generation.get(&l).unwrap_or(&0);
            self.queue.push(Reverse(Delivery {
                at,
                seq: self.seq,
                from: id,
                to: tx.to,
                channel: tx.channel,
                generation,
                frame: tx.frame,
            }));
        }
        Ok(())
    }

    fn observe(&mut self, id: PeerId, event: Event) {
        if self.cfg.trace && !matches!(event, Event::Changes(_)) {
            eprintln!("{:>8.3}s peer {id}: {event:?}", self.now.as_secs_f64());
        }
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        match event {
            Event::Applied { op, .. } => {
                let again = !node.applied_since_reset.insert(op)
                    || node
                        .reset_clock
                        .get(&op.peer)
                        .is_some_and(|&c| c >= op.counter);
                if again {
                    self.violations
                        .push(format!("peer {id} applied operation {op:?} twice"));
                }
                node.seen_ops.insert(op);
                self.report.ops_applied += 1;
            }
            Event::StateReplaced { applied, .. } => {
                node.applied_since_reset.clear();
                node.reset_clock = applied.into_iter().collect();
            }
            Event::HostChanged { .. } => self.report.host_changes += 1,
            Event::PeerMisbehaved { peer, reason } => {
                self.violations.push(format!(
                    "peer {id} reports peer {peer} misbehaved: {reason}"
                ));
            }
            Event::PartialState { .. }
            | Event::Changes(_)
            | Event::ReadOnly(_)
            | Event::Diverged { .. }
            | Event::Presence { .. } => {}
        }
    }

    /// Brings links up or down to match who is alive and which links are cut.
    fn refresh_links(&mut self) {
        let ids: Vec<PeerId> = self.nodes.keys().copied().collect();
        for (i, &a) in ids.iter().enumerate() {
            for &b in &ids[i + 1..] {
                let l = link(a, b);
                let want = !self.cut.contains_key(&l);
                let is = self.up.contains(&l);
                if want && !is {
                    self.up.insert(l);
                    *self.generation.entry(l).or_default() += 1;
                    for (x, y) in [(a, b), (b, a)] {
                        let now = self.local_now(x);
                        if let Some(n) = self.nodes.get_mut(&x) {
                            n.session.handle_connected(now, y);
                        }
                    }
                    let _ = self.drain(a);
                    let _ = self.drain(b);
                } else if !want && is {
                    self.take_down(l);
                }
            }
        }
    }

    fn take_down(&mut self, l: (PeerId, PeerId)) {
        if !self.up.remove(&l) {
            return;
        }
        *self.generation.entry(l).or_default() += 1;
        self.last_reliable.remove(&(l.0, l.1));
        self.last_reliable.remove(&(l.1, l.0));
        for (x, y) in [(l.0, l.1), (l.1, l.0)] {
            let now = self.local_now(x);
            if let Some(n) = self.nodes.get_mut(&x) {
                n.session.handle_disconnected(now, y);
            }
            let _ = self.drain(x);
        }
    }

    fn act(&mut self, action: Action, salt: u64) -> Result<(), String> {
        let ids: Vec<PeerId> = self.nodes.keys().copied().collect();
        if self.cfg.trace && action != Action::Edit {
            eprintln!("{:>8.3}s {action:?} among {ids:?}", self.now.as_secs_f64());
        }
        let mut r = Rng::new(salt);
        match action {
            Action::Edit => {
                if let Some(&id) = r.pick(&ids) {
                    self.edit(id, &mut r)?;
                }
            }
            Action::DropLink => {
                if ids.len() >= 2 {
                    let a = *r.pick(&ids).expect("non-empty");
                    let b = *r.pick(&ids).expect("non-empty");
                    if a != b {
                        let until = self.now + Duration::from_millis(r.range(50, 3000));
                        self.cut.insert(link(a, b), until);
                        self.refresh_links();
                    }
                }
            }
            Action::Partition => {
                let until = self.now + Duration::from_millis(r.range(1000, 5000));
                let side: BTreeSet<PeerId> =
                    ids.iter().copied().filter(|_| r.chance(0.5)).collect();
                for &a in &ids {
                    for &b in &ids {
                        if a < b && side.contains(&a) != side.contains(&b) {
                            self.cut.insert(link(a, b), until);
                        }
                    }
                }
                self.refresh_links();
            }
            Action::Crash => {
                if let Some(&id) = r.pick(&ids) {
                    self.crash(id);
                    let restart = self.now + Duration::from_millis(r.range(500, 2000));
                    self.schedule
                        .push(Reverse((restart, Action::Restore, r.next_u64())));
                }
            }
            Action::Restore => {
                self.add_node(false);
                self.refresh_links();
            }
        }
        Ok(())
    }

    fn crash(&mut self, id: PeerId) {
        let links: Vec<(PeerId, PeerId)> = self
            .up
            .iter()
            .copied()
            .filter(|(a, b)| *a == id || *b == id)
            .collect();
        self.nodes.remove(&id);
        self.crashed.insert(id);
        for l in links {
            self.take_down(l);
        }
        self.cut.retain(|(a, b), _| *a != id && *b != id);
    }

    /// One random edit from peer `id`, chosen against what that peer currently sees.
    fn edit(&mut self, id: PeerId, r: &mut Rng) -> Result<(), String> {
        let Some(node) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        node.edits += 1;
        let n = node.edits;
        let net = node.session.network();
        let mut contacts: Vec<(Id, Id)> = net
            .contacts()
            .map(|c| (c.id.clone(), c.group.clone()))
            .collect();
        contacts.sort();
        let mut groups: Vec<Id> = net
            .groups()
            .filter(|g| g.primitive.is_none())
            .map(|g| g.id.clone())
            .collect();
        groups.sort();
        let mut wires: Vec<Id> = net.wires().map(|w| w.id.clone()).collect();
        wires.sort();
        let fresh = |kind: &str| Id::new(&format!("p{id}-{kind}{n}")).expect("valid id");
        let hot: Vec<(Id, Id)> = contacts
            .iter()
            .filter(|(c, _)| c.as_str().starts_with("hot"))
            .cloned()
            .collect();
        let request = match r.below(10) {
            0..=3 => match r.pick(&hot).or_else(|| r.pick(&contacts)) {
                Some((c, _)) => Request::UpdateContent {
                    contact: c.clone(),
                    value: Value::Number(r.range(0, 100) as f64),
                },
                None => return Ok(()),
            },
            4 => Request::AddContact {
                id: Some(fresh("c")),
                group: r
                    .pick(&groups)
                    .cloned()
                    .unwrap_or_else(|| Id::new("root").expect("valid")),
                name: None,
                blend: if r.chance(0.3) {
                    BlendMode::Merge
                } else {
                    BlendMode::AcceptLast
                },
                value: Value::Number(r.below(10) as f64),
                boundary: None,
            },
            5 => Request::AddGroup {
                id: Some(fresh("g")),
                parent: r
                    .pick(&groups)
                    .cloned()
                    .unwrap_or_else(|| Id::new("root").expect("valid")),
                name: None,
                primitive: None,
            },
            6 => {
                // Wires stay away from the gadget and its feeds: a wire from its output back
                // to an input makes a loop that runs to the step budget on every write, which
                // is correct but slow, and the budget is tested in the core crate.
                let free: Vec<(Id, Id)> = contacts
                    .iter()
                    .filter(|(c, _)| {
                        !c.as_str().starts_with("hot") && !c.as_str().starts_with("sum/")
                    })
                    .cloned()
                    .collect();
                let (Some(a), Some(b)) = (r.pick(&free).cloned(), r.pick(&free).cloned()) else {
                    return Ok(());
                };
                Request::Connect {
                    id: Some(fresh("w")),
                    from: a.0,
                    to: b.0,
                    kind: if r.chance(0.5) {
                        WireKind::Directed
                    } else {
                        WireKind::Bidirectional
                    },
                }
            }
            7 => match r.pick(&wires) {
                Some(w) => Request::Disconnect { id: w.clone() },
                None => return Ok(()),
            },
            8 => match r.pick(&contacts) {
                Some((c, _)) if !c.as_str().starts_with("hot") => {
                    Request::RemoveContact { id: c.clone() }
                }
                _ => return Ok(()),
            },
            _ => match groups
                .iter()
                .filter(|g| g.as_str() != "root")
                .cloned()
                .collect::<Vec<_>>()
                .as_slice()
            {
                [] => return Ok(()),
                gs => Request::RemoveGroup {
                    id: r.pick(gs).expect("non-empty").clone(),
                },
            },
        };
        let now = self.local_now(id);
        let node = self.nodes.get_mut(&id).expect("checked above");
        if let Ok(LocalOutcome::Submitted(_)) = node.session.handle_local(now, request) {
            self.report.ops_submitted += 1;
        }
        self.drain(id)
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
        let [host] = hosts[..] else {
            return Err(format!(
                "expected exactly one host after healing, found {hosts:?}"
            ));
        };
        let host_position = self.nodes[&host].session.position();
        let host_hash = self
            .nodes
            .get_mut(&host)
            .expect("host is alive")
            .session
            .state_hash();
        let host_applied = self.nodes[&host].session.applied().clone();
        for (id, node) in self.nodes.iter_mut() {
            let s = &mut node.session;
            if s.current_host() != Some(host) {
                return Err(format!(
                    "peer {id} follows {:?}, not host {host}",
                    s.current_host()
                ));
            }
            if !s.is_synced() || s.pending() > 0 {
                return Err(format!(
                    "peer {id} not settled: synced {}, pending {:?}",
                    s.is_synced(),
                    s.pending_ops().map(|(op, _)| op).collect::<Vec<_>>()
                ));
            }
            if s.position() != host_position {
                return Err(format!(
                    "peer {id} at {:?}, host {host} at {host_position:?}",
                    s.position()
                ));
            }
            if s.state_hash() != host_hash {
                return Err(format!("peer {id} state hash differs from host {host}'s"));
            }
            for op in &node.seen_ops {
                if host_applied.get(&op.peer).is_none_or(|&c| c < op.counter) {
                    return Err(format!(
                        "operation {op:?} seen by surviving peer {id} was lost (host {host} has {:?})",
                        host_applied.get(&op.peer)
                    ));
                }
            }
            let stats = s.stats();
            let caps = Config::default();
            if stats.log > caps.log_cap
                || stats.pending > caps.pending_cap
                || stats.reassembly_bytes > 0
            {
                return Err(format!("peer {id} buffers over their caps: {stats:?}"));
            }
        }
        Ok(())
    }
}

/// The network every simulation starts from: a few shared "hot" contacts that every peer
/// writes to concurrently, wired into a gadget.
fn seed_network() -> Network {
    let mut net = Network::new();
    let id = |s: &str| Id::new(s).expect("valid id");
    let mut apply = |r: Request| {
        net.apply(r).expect("seed network is valid");
    };
    for i in 0..4 {
        apply(Request::AddContact {
            id: Some(id(&format!("hot{i}"))),
            group: id("root"),
            name: None,
            blend: if i == 3 {
                BlendMode::Merge
            } else {
                BlendMode::AcceptLast
            },
            value: Value::Number(0.0),
            boundary: None,
        });
    }
    apply(Request::AddGroup {
        id: Some(id("sum")),
        parent: id("root"),
        name: None,
        primitive: Some(bassline_core::Primitive::Add),
    });
    apply(Request::Connect {
        id: Some(id("w-a")),
        from: id("hot0"),
        to: id("sum/a"),
        kind: WireKind::Directed,
    });
    apply(Request::Connect {
        id: Some(id("w-b")),
        from: id("hot1"),
        to: id("sum/b"),
        kind: WireKind::Directed,
    });
    apply(Request::Connect {
        id: Some(id("w-out")),
        from: id("sum/out"),
        to: id("hot2"),
        kind: WireKind::Directed,
    });
    net
}
