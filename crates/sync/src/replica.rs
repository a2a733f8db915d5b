//! The replicated state: the network as the sequence made it, where it stands, who wrote each
//! accept-last contact last, which operations are decided, and the log of decided operations.
//!
//! Everything here is a function of the sequence applied, so every peer at the same position
//! holds the same replica; deciding an operation depends on nothing else.

use std::collections::{BTreeMap, VecDeque};

use bassline_core::{BlendMode, Change, Id, Network, Request, StateHash};
use bassline_protocol::{
    Command, Decision, Epoch, LogEntry, OpId, PeerId, Permission, Permissions, Permit, Position,
    Sequenced, Writer,
};
use rustc_hash::FxHashMap;

/// A peer's counters come in blocks of 2^32: a peer restarted under its id starts a fresh
/// block above everything its id used before, so an edit of its earlier life that is still on
/// its way (decided on the far side of a partition) can never share an id with a new one.
pub(crate) const COUNTER_BLOCK: u32 = 32;

/// Epochs of its history a replica remembers where they begin.
const LINEAGE_CAP: usize = 256;

/// Which operations are decided: per origin and counter block, the highest decided counter.
/// The host decides each block's operations in counter order (it refuses gaps), so this is
/// the whole set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Clock(BTreeMap<(PeerId, u64), u64>);

impl Clock {
    fn key(op: OpId) -> (PeerId, u64) {
        (op.peer, op.counter >> COUNTER_BLOCK)
    }

    pub fn contains(&self, op: OpId) -> bool {
        self.0
            .get(&Clock::key(op))
            .is_some_and(|&c| c >= op.counter)
    }

    /// Whether `op` is the next counter of its block (a block's first is its start plus one).
    pub fn is_next(&self, op: OpId) -> bool {
        let (peer, block) = Clock::key(op);
        let known = self
            .0
            .get(&(peer, block))
            .copied()
            .unwrap_or(block << COUNTER_BLOCK);
        op.counter == known + 1
    }

    pub fn record(&mut self, op: OpId) {
        let e = self.0.entry(Clock::key(op)).or_insert(0);
        *e = (*e).max(op.counter);
    }

    /// The highest counter decided for `peer` in its latest block.
    pub fn last(&self, peer: PeerId) -> Option<u64> {
        self.0
            .range((peer, 0)..=(peer, u64::MAX))
            .map(|(_, c)| *c)
            .max()
    }

    /// As carried in a state: (origin, highest counter) per block.
    pub fn to_wire(&self) -> Vec<(PeerId, u64)> {
        self.0.iter().map(|((p, _), c)| (*p, *c)).collect()
    }

    pub fn from_wire(entries: &[(PeerId, u64)]) -> Self {
        let mut clock = Clock::default();
        for &(peer, counter) in entries {
            clock.record(OpId { peer, counter });
        }
        clock
    }
}

pub(crate) struct Replica {
    pub net: Network,
    /// Position of the last sequenced operation applied.
    pub position: Position,
    pub applied: Clock,
    /// The last applied write to each accept-last contact.
    pub writers: FxHashMap<Id, Writer>,
    /// Decided operations in sequence order, ending at `position`: consecutive sequence
    /// numbers of this peer's lineage. Entries leave only once every member has them.
    pub log: VecDeque<LogEntry>,
    /// Where each of the latest epochs of this lineage's history begins (epoch, first seq):
    /// tells which positions belong to this history, beyond what the log still holds.
    pub lineage: VecDeque<(Epoch, u64)>,
    /// Who may do what, as the sequence set it.
    pub permissions: Permissions,
    /// Bumped whenever `net` changes, to cache its hash.
    pub generation: u64,
    digest_cache: Option<(u64, StateHash)>,
}

impl Replica {
    pub fn new(net: Network) -> Self {
        Replica {
            net,
            position: Position::default(),
            applied: Clock::default(),
            writers: FxHashMap::default(),
            log: VecDeque::new(),
            lineage: VecDeque::new(),
            permissions: Permissions::default(),
            generation: 0,
            digest_cache: None,
        }
    }

    pub fn is_decided(&self, op: OpId) -> bool {
        self.applied.contains(op)
    }

    /// What the sequence decides for `s` here: the same on every peer, since it depends only
    /// on the replicated state, the last writers and the operation itself. Applies it.
    pub fn apply(
        &mut self,
        epoch: Epoch,
        s: &Sequenced,
        fault: Option<crate::Fault>,
    ) -> (Decision, Vec<Change>) {
        let lww_ignores_blend = fault == Some(crate::Fault::LwwIgnoresBlend);
        let mut changes = Vec::new();
        let decision = match &s.command {
            Command::Permit(permit) => self.permit(epoch, s.op, *permit, fault),
            Command::Request(request) => {
                let permission = self.permissions.of(s.op.peer);
                if permission != Permission::ReadWrite
                    && fault != Some(crate::Fault::IgnorePermissions)
                {
                    Decision::Denied { permission }
                } else {
                    let (decision, c) = self.edit(s, request, lww_ignores_blend);
                    changes = c;
                    decision
                }
            }
        };
        self.applied.record(s.op);
        if self.lineage.back().is_none_or(|(e, _)| *e != epoch) {
            self.lineage.push_back((epoch, s.seq));
            if self.lineage.len() > LINEAGE_CAP {
                self.lineage.pop_front();
            }
        }
        self.position = Position { epoch, seq: s.seq };
        self.generation += 1;
        self.log.push_back(LogEntry {
            epoch,
            op: s.clone(),
            decision: decision.clone(),
        });
        (decision, changes)
    }

    fn edit(
        &mut self,
        s: &Sequenced,
        request: &Request,
        lww_ignores_blend: bool,
    ) -> (Decision, Vec<Change>) {
        if let Some(by) = self.superseded_by(s, request, lww_ignores_blend) {
            return (Decision::Superseded { by }, Vec::new());
        }
        match self.net.apply(request.clone()) {
            Ok(response) => {
                for c in &response.changes {
                    if let Change::ContactRemoved { id } = c {
                        self.writers.remove(id);
                    }
                }
                if let Request::UpdateContent { contact, .. } = request
                    && (lww_ignores_blend || self.blend(contact) == Some(BlendMode::AcceptLast))
                {
                    self.writers.insert(
                        contact.clone(),
                        Writer {
                            contact: contact.clone(),
                            op: s.op,
                            ts: s.ts,
                        },
                    );
                }
                (Decision::Applied, response.changes)
            }
            Err(e) => (
                Decision::Refused {
                    reason: e.to_string(),
                },
                Vec::new(),
            ),
        }
    }

    /// A permit takes effect only when the host of the epoch that sequences it issued it (a
    /// permit forwarded from a lineage that lost is refused unless its issuer leads again),
    /// never about that host itself, and never turning everyone away. A change of the default
    /// keeps the epoch's host read-write.
    fn permit(
        &mut self,
        epoch: Epoch,
        op: OpId,
        permit: Permit,
        fault: Option<crate::Fault>,
    ) -> Decision {
        let reason = if op.peer != epoch.host && fault != Some(crate::Fault::PermitsFromAnyone) {
            Some(format!(
                "only the host (peer {}) may change permissions",
                epoch.host
            ))
        } else if permit.peer == Some(epoch.host) {
            Some("the host's own permission cannot change".to_owned())
        } else if permit.peer.is_none() && permit.permission == Permission::Removed {
            Some("a room cannot remove everyone".to_owned())
        } else {
            None
        };
        if let Some(reason) = reason {
            return Decision::Refused { reason };
        }
        self.permissions.apply(permit);
        if self.permissions.of(epoch.host) != Permission::ReadWrite {
            self.permissions.apply(Permit {
                peer: Some(epoch.host),
                permission: Permission::ReadWrite,
            });
        }
        Decision::Applied
    }

    fn blend(&self, contact: &Id) -> Option<BlendMode> {
        self.net.contact(contact).map(|c| c.blend)
    }

    /// Last writer wins on accept-last contacts: a write loses to the applied write with the
    /// later `(ts, peer)`. An origin's Lamport time has passed everything it applied, so a
    /// write that saw another is always later: only concurrent writes are ever superseded.
    /// Merge contacts join every write instead.
    fn superseded_by(
        &self,
        s: &Sequenced,
        request: &Request,
        lww_ignores_blend: bool,
    ) -> Option<OpId> {
        let Request::UpdateContent { contact, .. } = request else {
            return None;
        };
        if !lww_ignores_blend && self.blend(contact) != Some(BlendMode::AcceptLast) {
            return None;
        }
        let w = self.writers.get(contact)?;
        ((s.ts, s.op.peer) < (w.ts, w.op.peer)).then_some(w.op)
    }

    /// The state hash combined with the last writers: two replicas that agree on both decide
    /// every future operation alike.
    pub fn digest(&mut self) -> StateHash {
        if let Some((g, h)) = self.digest_cache
            && g == self.generation
        {
            return h;
        }
        let mut h = blake3::Hasher::new();
        h.update(&self.net.state_hash().0);
        let mut writers: Vec<&Writer> = self.writers.values().collect();
        writers.sort_by(|a, b| a.contact.cmp(&b.contact));
        for w in writers {
            h.update(&(w.contact.as_str().len() as u64).to_le_bytes());
            h.update(w.contact.as_str().as_bytes());
            h.update(&w.op.peer.to_le_bytes());
            h.update(&w.op.counter.to_le_bytes());
            h.update(&w.ts.to_le_bytes());
        }
        // Permissions decide future operations too (and a peer that missed one would deny or
        // apply differently), so they are part of what must agree.
        let ps = &self.permissions;
        h.update(&[ps.default as u8]);
        h.update(&(ps.members.len() as u64).to_le_bytes());
        for (peer, p) in &ps.members {
            h.update(&peer.to_le_bytes());
            h.update(&[*p as u8]);
        }
        let digest = StateHash(*h.finalize().as_bytes());
        self.digest_cache = Some((self.generation, digest));
        digest
    }

    /// The log entry at sequence number `seq`, if the log holds it.
    pub fn entry(&self, seq: u64) -> Option<&LogEntry> {
        let front = self.log.front()?.op.seq;
        let i = usize::try_from(seq.checked_sub(front)?).ok()?;
        self.log.get(i)
    }

    /// Whether this replica's history passes through `p` (`None`: too old to tell).
    pub fn contains(&self, p: Position) -> Option<bool> {
        if p.seq > self.position.seq {
            return Some(false);
        }
        if p == self.position || p == Position::default() {
            return Some(true);
        }
        if let Some(e) = self.entry(p.seq) {
            return Some(e.epoch == p.epoch);
        }
        // Each epoch holds one stretch of the history: from where it begins to where the next
        // one begins (or to our position).
        let i = self.lineage.iter().position(|(e, _)| *e == p.epoch);
        match i {
            Some(i) => {
                let first = self.lineage[i].1;
                let end = self
                    .lineage
                    .get(i + 1)
                    .map_or(self.position.seq, |(_, next)| next - 1);
                Some(first <= p.seq && p.seq <= end)
            }
            None if self
                .lineage
                .front()
                .is_some_and(|(_, first)| p.seq >= *first) =>
            {
                Some(false)
            }
            None => None,
        }
    }

    /// How much of this replica's history a peer that reported `p` holds: everything up to `p`
    /// if `p` is on it (all of ours if it is ahead of us in our host's epoch), else nothing.
    /// A position too old to tell holds nothing the log still has, which is all that matters.
    pub fn covers(&self, p: Position) -> u64 {
        if p.seq > self.position.seq {
            return if p.epoch == self.position.epoch {
                self.position.seq
            } else {
                0
            };
        }
        match self.contains(p) {
            Some(true) | None => p.seq,
            Some(false) => 0,
        }
    }

    /// Drops the oldest entries that every member holds, beyond `cap`.
    pub fn prune(&mut self, cap: usize, stable: u64) {
        while self.log.len() > cap && self.log.front().is_some_and(|e| e.op.seq <= stable) {
            self.log.pop_front();
        }
    }
}
