//! The simulated network: links that come and go, per-link latency, bandwidth and loss.
//!
//! A link carries two channels like a WebRTC peer connection: the reliable one delivers in
//! order (nothing overtakes an earlier frame), the unreliable one may lose frames. Bytes take
//! time to leave a link with limited bandwidth. When a link goes down everything in flight on
//! it is lost; a link that comes back is a new one.

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, BinaryHeap},
    time::Duration,
};

use bassline_protocol::{Codec, PeerId, Reassembler};
use bassline_sync::Channel;

use crate::{Rng, SimConfig, hostile::Refuse};

/// A link between two peers, the lower id first.
pub type Link = (PeerId, PeerId);

fn link(a: PeerId, b: PeerId) -> Link {
    (a.min(b), a.max(b))
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
pub struct Delivery {
    pub at: Duration,
    seq: u64,
    pub from: PeerId,
    pub to: PeerId,
    pub channel: Channel,
    generation: u64,
    pub frame: Vec<u8>,
    /// For a malicious frame: whether its receiver must refuse it (report the sender), and
    /// what it was.
    pub refuse: Refuse,
    pub note: String,
}

pub struct SimNet {
    rng: Rng,
    latency_ms: (u64, u64),
    loss: f64,
    bandwidth: Option<u64>,
    /// Links cut, until when (`None`: until the network heals).
    cut: BTreeMap<(PeerId, PeerId), Option<Duration>>,
    /// Directions that lose every unreliable frame until the network heals.
    one_way_loss: BTreeSet<(PeerId, PeerId)>,
    up: BTreeSet<(PeerId, PeerId)>,
    generation: BTreeMap<(PeerId, PeerId), u64>,
    /// Per direction: when the last reliable frame arrives (nothing overtakes it), and when
    /// the link has finished sending what it was given.
    last_reliable: BTreeMap<(PeerId, PeerId), Duration>,
    busy_until: BTreeMap<(PeerId, PeerId), Duration>,
    queue: BinaryHeap<Reverse<Delivery>>,
    seq: u64,
    pub frames: usize,
    pub bytes: usize,
    /// With tracing on: decoders that show what each delivered frame said.
    spies: BTreeMap<(PeerId, PeerId, Channel), Reassembler>,
}

impl SimNet {
    pub fn new(cfg: &SimConfig, seed: u64) -> Self {
        SimNet {
            rng: Rng::new(seed ^ 0x0E7),
            latency_ms: cfg.latency_ms,
            loss: cfg.loss,
            bandwidth: cfg.bandwidth,
            cut: BTreeMap::new(),
            one_way_loss: BTreeSet::new(),
            up: BTreeSet::new(),
            generation: BTreeMap::new(),
            last_reliable: BTreeMap::new(),
            busy_until: BTreeMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            frames: 0,
            bytes: 0,
            spies: BTreeMap::new(),
        }
    }

    pub fn next_delivery(&self) -> Option<Duration> {
        self.queue.peek().map(|Reverse(d)| d.at)
    }

    /// The next frame due, if its link is still the one it was sent on.
    pub fn pop_delivery(&mut self) -> Option<Delivery> {
        let Reverse(d) = self.queue.pop()?;
        let l = link(d.from, d.to);
        (self.generation.get(&l) == Some(&d.generation) && self.up.contains(&l)).then_some(d)
    }

    pub fn next_heal(&self) -> Option<Duration> {
        self.cut.values().flatten().min().copied()
    }

    pub fn heal_due(&mut self, now: Duration) {
        self.cut.retain(|_, until| until.is_none_or(|t| t > now));
    }

    /// The end of the workload: every cut and one-way loss is over.
    pub fn heal(&mut self) {
        self.cut.clear();
        self.one_way_loss.clear();
    }

    pub fn cut(&mut self, a: PeerId, b: PeerId, until: Option<Duration>) {
        self.cut.insert(link(a, b), until);
    }

    pub fn lose_one_way(&mut self, from: PeerId, to: PeerId) {
        self.one_way_loss.insert((from, to));
    }

    pub fn forget(&mut self, id: PeerId) {
        self.cut.retain(|(a, b), _| *a != id && *b != id);
        self.one_way_loss.retain(|(a, b)| *a != id && *b != id);
    }

    pub fn is_up(&self, a: PeerId, b: PeerId) -> bool {
        self.up.contains(&link(a, b))
    }

    /// Which links among `ids` must come up and which go down.
    pub fn plan_links(&self, ids: &[PeerId]) -> (Vec<Link>, Vec<Link>) {
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for (i, &a) in ids.iter().enumerate() {
            for &b in &ids[i + 1..] {
                let l = link(a, b);
                match (!self.cut.contains_key(&l), self.up.contains(&l)) {
                    (true, false) => up.push(l),
                    (false, true) => down.push(l),
                    _ => {}
                }
            }
        }
        (up, down)
    }

    pub fn set_up(&mut self, a: PeerId, b: PeerId) {
        let l = link(a, b);
        self.up.insert(l);
        *self.generation.entry(l).or_default() += 1;
    }

    /// Takes a link down; returns whether it was up.
    pub fn set_down(&mut self, a: PeerId, b: PeerId) -> bool {
        let l = link(a, b);
        if !self.up.remove(&l) {
            return false;
        }
        *self.generation.entry(l).or_default() += 1;
        for d in [(a, b), (b, a)] {
            self.last_reliable.remove(&d);
            self.busy_until.remove(&d);
        }
        true
    }

    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &mut self,
        now: Duration,
        from: PeerId,
        to: PeerId,
        channel: Channel,
        frame: Vec<u8>,
        refuse: Refuse,
        note: String,
    ) {
        let l = link(from, to);
        if !self.up.contains(&l) {
            return;
        }
        self.frames += 1;
        self.bytes += frame.len();
        let mut start = now;
        if let Some(bps) = self.bandwidth {
            let busy = self.busy_until.entry((from, to)).or_default();
            start = start.max(*busy);
            *busy = start + Duration::from_secs_f64(frame.len() as f64 / bps as f64);
            start = *busy;
        }
        let (lo, hi) = self.latency_ms;
        let mut at = start + Duration::from_millis(self.rng.range(lo, hi.max(lo)));
        match channel {
            Channel::Reliable => {
                let last = self.last_reliable.entry((from, to)).or_default();
                at = at.max(*last);
                *last = at;
            }
            Channel::Unreliable => {
                if self.one_way_loss.contains(&(from, to)) || self.rng.chance(self.loss) {
                    return;
                }
            }
        }
        self.seq += 1;
        let generation = *self.generation.get(&l).unwrap_or(&0);
        self.queue.push(Reverse(Delivery {
            at,
            seq: self.seq,
            from,
            to,
            channel,
            generation,
            frame,
            refuse,
            note,
        }));
    }

    /// What a delivered frame said, for tracing (heartbeats left out).
    pub fn spy(&mut self, d: &Delivery) -> Option<String> {
        let spy = self
            .spies
            .entry((d.from, d.to, d.channel))
            .or_insert_with(|| Reassembler::new(Codec::default()));
        match spy.push(&d.frame) {
            Ok(Some(env))
                if !matches!(env.message, bassline_protocol::Message::Heartbeat { .. }) =>
            {
                let mut text = format!("{:?}", env.message);
                text.truncate(if std::env::var_os("BASSLINE_SIM_FULL_TRACE").is_some() {
                    usize::MAX
                } else {
                    200
                });
                Some(text)
            }
            Ok(_) => None,
            Err(e) => Some(format!("undecodable: {e}")),
        }
    }
}
