//! The host's side: sequencing, broadcasting batches, serving state and repairs, and taking
//! in what guests bring back from a lineage that lost.

use std::collections::BTreeMap;

use bassline_core::{Id, Request, StateHash};
use bassline_protocol::{Decision, Epoch, Message, OpId, PeerId, Position, Sequenced, StateSync};

use crate::{
    Fault,
    session::{MAX_CLOCK_JUMP, RoleState, Session},
};

impl Session {
    /// Host: gives an operation the next place in the sequence and applies it. Returns `None`
    /// for an operation already decided (a re-send).
    pub(crate) fn sequence(&mut self, op: OpId, ts: u64, request: Request) -> Option<Decision> {
        if self.already_decided(op) {
            return None;
        }
        let base = self.replica.position;
        let s = Sequenced {
            seq: base.seq + 1,
            op,
            ts,
            request,
        };
        let epoch = self.epoch;
        let changes = self.apply_op(epoch, &s);
        self.events.push_back(crate::Event::Changes(changes));
        let decision = self
            .replica
            .log
            .back()
            .map(|e| e.decision.clone())
            .expect("the operation just applied is in the log");
        let now = self.now;
        let window = self.config.batch_window;
        let mut at_once = false;
        if let RoleState::Host(h) = &mut self.role {
            if h.batch.is_empty() {
                h.batch_base = base;
            }
            h.batch.push(s);
            match h.last_flush {
                Some(t) if now < t + window => {
                    h.batch_due.get_or_insert(t + window);
                }
                _ => at_once = true,
            }
        }
        if at_once {
            self.flush_batch();
        }
        Some(decision)
    }

    /// Exactly once: an operation decided already (a re-send after a reconnection or a host
    /// change, a copy forwarded by several peers) is not sequenced again.
    fn already_decided(&self, op: OpId) -> bool {
        self.config.fault != Some(Fault::SkipDedup) && self.replica.is_decided(op)
    }

    /// Whether `op` can be the next operation of its origin here: origins' operations are
    /// decided in counter order, so a counter beyond the next one would make the ones in
    /// between count as decided without ever being applied. The one jump allowed is a restarted
    /// peer's first edit, at the start of a fresh block of counters.
    fn in_order(&self, op: OpId) -> bool {
        self.replica.applied.is_next(op)
    }

    /// A guest's own edit.
    pub(crate) fn on_submit(&mut self, from: PeerId, counter: u64, ts: u64, request: Request) {
        let op = OpId {
            peer: from,
            counter,
        };
        if ts > self.lamport.saturating_add(MAX_CLOCK_JUMP) {
            self.misbehaved(from, format!("stamped an edit with time {ts}"));
            return;
        }
        if self.already_decided(op) {
            return;
        }
        if !self.in_order(op) && self.config.fault != Some(Fault::SkipDedup) {
            // An edit sent while this peer did not lead yet went unsequenced: its origin sends
            // everything again, in order, once it syncs with us; taking this one now would make
            // the one before it count as decided.
            return;
        }
        self.sequence(op, ts, request);
    }

    /// Operations a guest saw decided in a lineage that lost: sequenced here unless decided,
    /// in the order they come (a guest's own edits that build on them follow them). Each
    /// origin's operations must come in counter order; this peer's own are never taken from
    /// anyone (it holds them itself).
    pub(crate) fn on_orphans(&mut self, from: PeerId, ops: Vec<Sequenced>) {
        for s in ops {
            let origin = s.op.peer;
            if s.ts > self.lamport.saturating_add(MAX_CLOCK_JUMP) {
                self.misbehaved(from, format!("forwarded an edit stamped {}", s.ts));
                return;
            }
            let block = |c: u64| c >> crate::replica::COUNTER_BLOCK;
            if origin == self.me && block(s.op.counter) == block(self.edits.counter) {
                // Ours, from this session: we hold them ourselves (an earlier session under
                // our id used another block, and its edits are taken like anyone's).
                if s.op.counter > self.edits.counter {
                    self.misbehaved(
                        from,
                        format!("forwarded edit {} of ours, made no such edit", s.op.counter),
                    );
                    return;
                }
                continue;
            }
            if self.already_decided(s.op) {
                continue;
            }
            if !self.in_order(s.op) && self.config.fault != Some(Fault::SkipDedup) {
                self.misbehaved(
                    from,
                    format!("forwarded edit {:?} out of its origin's order", s.op),
                );
                return;
            }
            self.sequence(s.op, s.ts, s.request);
        }
    }

    pub(crate) fn flush_batch(&mut self) {
        let RoleState::Host(h) = &mut self.role else {
            return;
        };
        h.batch_due = None;
        if h.batch.is_empty() {
            return;
        }
        h.last_flush = Some(self.now);
        let ops = std::mem::take(&mut h.batch);
        let base = h.batch_base;
        let guests: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(_, l)| l.connected && l.following)
            .map(|(id, _)| *id)
            .collect();
        let epoch = self.epoch;
        for g in guests {
            self.send(
                g,
                Message::Batch {
                    epoch,
                    base,
                    ops: ops.clone(),
                },
            );
        }
    }

    /// Answers a state request with the operations after `have` when the log still holds them
    /// (this lineage's), or with the whole state. Either way the guest then follows.
    pub(crate) fn serve_state(&mut self, to: PeerId, have: Option<Position>, first: &[Id]) {
        // Anything sequenced but not yet broadcast goes out first, so the answer and later
        // batches line up.
        self.flush_batch();
        let position = self.replica.position;
        let from_log = have.and_then(|h| {
            if h == position {
                return Some(Vec::new());
            }
            let e = self.replica.entry(h.seq)?;
            (e.epoch == h.epoch).then(|| {
                self.replica
                    .log
                    .iter()
                    .filter(|e| e.op.seq > h.seq)
                    .map(|e| (e.epoch, e.op.clone()))
                    .collect::<Vec<_>>()
            })
        });
        match (from_log, have) {
            (Some(entries), Some(have)) => {
                // One batch per epoch, so the guest records each operation's true position;
                // each goes on from where the one before it ended.
                let mut runs: Vec<(Epoch, Position, Vec<Sequenced>)> = Vec::new();
                let mut at = have;
                for (e, s) in entries {
                    let next = Position {
                        epoch: e,
                        seq: s.seq,
                    };
                    match runs.last_mut() {
                        Some((le, _, ops)) if *le == e => ops.push(s),
                        _ => runs.push((e, at, vec![s])),
                    }
                    at = next;
                }
                if runs.is_empty() {
                    runs.push((self.epoch, have, Vec::new()));
                }
                for (epoch, base, ops) in runs {
                    self.send(to, Message::Batch { epoch, base, ops });
                }
            }
            _ => {
                if !first.is_empty() {
                    let part = StateSync {
                        position,
                        partial: true,
                        applied: Vec::new(),
                        writers: Vec::new(),
                        log: Vec::new(),
                        lineage: Vec::new(),
                        document: self.replica.net.partial_document(first),
                    };
                    self.send(to, Message::StateSync(Box::new(part)));
                }
                // What some member may still lack goes along, so the guest can submit it again
                // if this lineage loses, and read its own edits' fates from it. (The guest
                // itself gets everything up to our position now.)
                let stable = self.stable_seq(Some((to, have)));
                let sync = StateSync {
                    position,
                    partial: false,
                    applied: self.replica.applied.to_wire(),
                    writers: self.replica.writers.values().cloned().collect(),
                    log: self
                        .replica
                        .log
                        .iter()
                        .filter(|e| e.op.seq > stable)
                        .cloned()
                        .collect(),
                    lineage: self.replica.lineage.iter().copied().collect(),
                    document: self.replica.net.export(),
                };
                self.send(to, Message::StateSync(Box::new(sync)));
            }
        }
        self.link(to).following = true;
        if let RoleState::Host(h) = &mut self.role {
            h.led = true;
        }
    }

    /// A guest's hash differed from ours at `position`: send the groups that differ from its
    /// (as they are here now, at our position; it applies them when it gets there) and every
    /// last writer.
    pub(crate) fn on_hash_mismatch(
        &mut self,
        from: PeerId,
        _position: Position,
        groups: Vec<(Id, StateHash)>,
    ) {
        self.flush_batch();
        let theirs: BTreeMap<Id, StateHash> = groups.into_iter().collect();
        let (remove, groups) = self.replica.net.repair_for(&theirs);
        let writers = self.replica.writers.values().cloned().collect();
        let position = self.replica.position;
        self.send(
            from,
            Message::Repair {
                position,
                groups,
                remove,
                writers,
            },
        );
    }

    /// Tells `peer` which epoch this host leads.
    pub(crate) fn announce_to(&mut self, peer: PeerId) {
        let (epoch, led) = (self.epoch, self.led());
        self.send(peer, Message::HostAnnounce { epoch, led });
    }
}
