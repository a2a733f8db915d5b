//! The guest's side: asking for state, installing it, following the host's sequence, and
//! finding and repairing a divergence.

use std::collections::BTreeSet;

use bassline_core::{Change, GroupDocument, Id, Request, StateDocument, StateHash};
use bassline_protocol::{
    Epoch, Message, PeerId, Permissions, Position, Refusal, Refused, Sequenced, StateSync, Writer,
};

use crate::{
    Event, Fault,
    replica::{COUNTER_BLOCK, Clock},
    session::{MAX_CLOCK_JUMP, RoleState, Session},
};

/// How far above every epoch number in sight a peer restarted under its id starts its own: a
/// margin plus a random spread, so two restarts that see the same numbers still differ.
const RESTART_EPOCH_MARGIN: u64 = 1 << 10;
const RESTART_EPOCH_SPREAD: u64 = 1 << 16;

/// A repair from the host for a position this guest has not reached yet.
pub(crate) struct PendingRepair {
    pub position: Position,
    pub groups: Vec<(Id, GroupDocument)>,
    pub remove: Vec<Id>,
    pub writers: Vec<Writer>,
    pub permissions: Permissions,
}

impl Session {
    /// Asks the host for its state (catch-up from our position when we hold one), and arms a
    /// retry with exponential backoff and jitter.
    pub(crate) fn request_state(&mut self) {
        let RoleState::Guest(g) = &self.role else {
            return;
        };
        let Some(host) = g.host else { return };
        // Once we hold a state we say where it ends, even at the very start: the host judges
        // from it which log entries we lack, and so which of our edits we were never told of.
        let have = self.ever_synced.then_some(self.replica.position);
        let first = self.focus.clone();
        // Our key goes with every request: the host registers it for this link's peer.
        let key = Some(self.config.identity.public_key());
        self.send(host, Message::StateRequest { have, first, key });
        let jitter = self.jitter();
        let (now, max) = (self.now, self.config.retry_max);
        if let RoleState::Guest(g) = &mut self.role {
            g.retry_due = Some(now + g.retry_delay.mul_f64(jitter));
            g.retry_delay = (g.retry_delay * 2).min(max);
        }
    }

    /// A chunk of a large message came from `from`: if it is the host answering our request,
    /// the answer is under way, so the retry waits.
    pub(crate) fn on_partial_frame(&mut self, from: PeerId) {
        let now = self.now;
        if let RoleState::Guest(g) = &mut self.role
            && g.host == Some(from)
            && !g.synced
            && g.retry_due.is_some()
        {
            g.retry_due = Some(now + g.retry_delay);
        }
    }

    fn synced_now(&mut self) {
        self.ever_synced = true;
        let base = self.config.retry_base;
        let mut first = false;
        if let RoleState::Guest(g) = &mut self.role {
            first = !g.synced;
            g.synced = true;
            g.retry_due = None;
            g.retry_delay = base;
        }
        if first {
            // The host counts as followed once it has our signed word: give it at once rather
            // than at the next heartbeat.
            self.heartbeat_host();
        }
    }

    /// Shows the first part of the host's state, read-only, until the whole arrives. Only a
    /// peer that never held a state shows one: the network shown must stay the one its
    /// position stands for, which a preview is not.
    pub(crate) fn install_partial(&mut self, part: StateSync) {
        if self.ever_synced {
            return;
        }
        let Some(changes) = self.replace_state(part.document) else {
            return;
        };
        self.events.push_back(Event::Changes(changes));
        self.events.push_back(Event::PartialState {
            first: self.focus.clone(),
        });
    }

    /// Replaces the state shown here with a document from the host, tentative edits taken back
    /// first. A document that does not import is reported and changes nothing.
    fn replace_state(&mut self, document: StateDocument) -> Option<Vec<Change>> {
        let had_tentative = self.edits.tentative;
        let mut changes = self.rollback_tentative();
        match self.replica.net.apply(Request::ImportState { document }) {
            Ok(response) => {
                changes.extend(response.changes);
                self.replica.generation += 1;
                Some(changes)
            }
            Err(e) => {
                if had_tentative {
                    changes.extend(self.reapply_tentative());
                }
                self.events.push_back(Event::Changes(changes));
                let host = self.current_host().unwrap_or(self.me);
                self.misbehaved(host, format!("sent a state that does not import: {e}"));
                None
            }
        }
    }

    /// Replaces the state with the host's, keeps what this peer saw decided that the host's
    /// lineage lacks (to submit again), and tells the user the fates the state brings.
    pub(crate) fn install_state(&mut self, sync: StateSync) {
        let first_install = !self.ever_synced;
        let from = self.current_host().unwrap_or(self.me);
        if let Some(bad) = sync
            .log
            .iter()
            .map(|e| e.op.ts)
            .chain(sync.writers.iter().map(|w| w.ts))
            .find(|ts| *ts > self.lamport.saturating_add(MAX_CLOCK_JUMP))
        {
            self.misbehaved(from, format!("sent a state stamped {bad}"));
            return;
        }
        if !sync.permissions.is_well_formed() {
            self.misbehaved(from, "sent a malformed permission table".into());
            return;
        }
        let Some(mut changes) = self.replace_state(sync.document) else {
            return;
        };
        let applied = Clock::from_wire(&sync.applied);
        let decided = |s: &Sequenced| applied.contains(s.op);
        // Everything this peer saw decided that the new lineage has not decided: the orphans it
        // already had and its log. They come from several lineages, so they are put in Lamport
        // order: an origin's clock had passed everything it applied when it made an edit, so an
        // update follows the add it builds on, and each origin's edits keep their order.
        let mut seen = BTreeSet::new();
        let old_log = std::mem::take(&mut self.replica.log);
        let mut orphans: Vec<Sequenced> = std::mem::take(&mut self.edits.orphans)
            .into_iter()
            .chain(old_log.into_iter().map(|e| e.op))
            .filter(|s| !decided(s))
            .filter(|s| seen.insert(s.op))
            .collect();
        orphans.sort_by_key(|s| (s.ts, s.op.peer, s.op.counter));
        if self.config.fault == Some(Fault::TruncateOrphans) {
            orphans.truncate(self.config.log_cap);
        }
        self.replica.applied = applied;
        self.replica.writers = if self.config.fault == Some(Fault::GuestForgetsWriters) {
            Default::default()
        } else {
            sync.writers
                .into_iter()
                .map(|w| (w.contact.clone(), w))
                .collect()
        };
        self.replica.position = sync.position;
        self.replica.log = if self.config.fault == Some(Fault::ForgetLogOnInstall) {
            Default::default()
        } else {
            sync.log.into()
        };
        self.replica.lineage = sync.lineage.into();
        self.replica.permissions = sync.permissions;
        self.replica.generation += 1;
        if self.config.fault != Some(Fault::StaleLamport) {
            let newest = self
                .replica
                .log
                .iter()
                .map(|e| e.op.ts)
                .chain(self.replica.writers.values().map(|w| w.ts))
                .max()
                .unwrap_or(0);
            self.lamport = self.lamport.max(newest);
        }
        self.synced_now();
        if let RoleState::Guest(g) = &mut self.role {
            g.removed = false;
            g.check = None;
            g.repair_asked = None;
            g.repair = None;
        }
        self.events.push_back(Event::StateReplaced {
            position: self.replica.position,
        });
        let own: Vec<_> = self
            .replica
            .log
            .iter()
            .filter(|e| e.op.op.peer == self.me)
            .map(|e| {
                (
                    e.op.op.counter,
                    Position {
                        epoch: e.epoch,
                        seq: e.op.seq,
                    },
                    e.decision.clone(),
                )
            })
            .collect();
        let shipped: BTreeSet<u64> = own.iter().map(|(c, _, _)| *c).collect();
        for (counter, position, decision) in own {
            self.tell_fate(counter, position, decision);
        }
        self.recall_fates(&shipped);
        // A peer that comes back under its id (a restart: this session made no edit, yet the
        // lineage knows edits of its id) must never reuse a counter of its earlier life, which
        // may have edits decided only on the far side of a partition, with the counters right
        // after the ones known here. It starts a fresh block of counters above them.
        let known = self.replica.applied.last(self.me).unwrap_or(0);
        let restarted = self.edits.counter == 0
            && known > 0
            && self.config.fault != Some(Fault::CounterRestarts);
        if restarted {
            self.edits.counter = ((known >> COUNTER_BLOCK) + 1) << COUNTER_BLOCK;
        }
        if restarted || (first_install && self.config.reused_id) {
            // Its earlier life may also have led epochs only the far side of a partition knows:
            // its own epochs start well above any number in sight.
            let spread = (self.jitter() * 1000.0) as u64 * RESTART_EPOCH_SPREAD / 1000;
            self.epoch_floor = self.highest_epoch() + RESTART_EPOCH_MARGIN + spread;
        }
        changes.extend(self.reapply_tentative());
        self.events.push_back(Event::Changes(changes));
        self.edits.orphans = orphans;
        self.prune_log();
        if let Some(host) = self.current_host() {
            let position = self.replica.position;
            self.send(host, Message::Ack { position });
            self.resend_pending();
        }
    }

    /// Own edits this state decides that its log no longer lists (every member held them when
    /// it was trimmed) were decided in a lineage this peer followed before: a decision told at a
    /// position this history passes through stands. If the last decision told is another one,
    /// tell that one again.
    fn recall_fates(&mut self, shipped: &BTreeSet<u64>) {
        let me = self.me;
        let recalled: Vec<(u64, Position, bassline_protocol::Decision)> = self
            .edits
            .told
            .iter()
            .filter(|(c, _)| !shipped.contains(c))
            .filter(|(c, _)| {
                self.replica.is_decided(bassline_protocol::OpId {
                    peer: me,
                    counter: **c,
                })
            })
            .filter_map(|(c, told)| {
                let (p, d) = told
                    .iter()
                    .rev()
                    .find(|(p, _)| self.replica.contains(*p) == Some(true))?;
                (told.last().map(|(last, _)| last) != Some(p)).then(|| (*c, *p, d.clone()))
            })
            .collect();
        for (counter, position, decision) in recalled {
            self.tell_fate(counter, position, decision);
        }
    }

    /// Applies the host's sequenced operations.
    pub(crate) fn apply_batch(
        &mut self,
        from: PeerId,
        epoch: Epoch,
        base: Position,
        ops: Vec<Sequenced>,
    ) {
        if epoch.number
            > self
                .highest_epoch()
                .saturating_add(crate::session::MAX_EPOCH_JUMP)
        {
            self.misbehaved(from, format!("sent a batch of epoch {}", epoch.number));
            return;
        }
        // Our host leads this epoch (it moved up when a candidate knew a higher one).
        self.epoch = self.epoch.max(epoch);
        if let Some(s) = ops
            .iter()
            .find(|s| s.ts > self.lamport.saturating_add(MAX_CLOCK_JUMP))
        {
            self.misbehaved(from, format!("sequenced an edit stamped {}", s.ts));
            return;
        }
        // The batch covers the positions `base`, then (epoch, seq) of each operation. It
        // continues this peer's history only if its position is one of them.
        let at = self.replica.position;
        let skip = if base == at {
            Some(0)
        } else {
            ops.iter()
                .position(|s| Position { epoch, seq: s.seq } == at)
                .map(|i| i + 1)
        };
        let Some(skip) = skip else {
            if base.seq > at.seq && self.is_synced() {
                // Batches went missing in between: catch up from where we are.
                self.request_state();
            } else if self.is_synced() {
                // Another lineage's: this peer's state is not the host's.
                self.lose_state();
            }
            return;
        };
        if !self.ever_synced {
            // A batch goes on from a state this peer never held (its network is empty or a
            // preview): the whole state has to come first.
            return;
        }
        let first_answer = !self.is_synced();
        self.synced_now();
        let mut changes = self.rollback_tentative();
        for s in &ops[skip..] {
            if s.seq != self.replica.position.seq + 1 {
                // A gap: something was lost in between; start over from the whole state.
                changes.extend(self.reapply_tentative());
                self.events.push_back(Event::Changes(changes));
                self.lose_state();
                return;
            }
            changes.extend(self.apply_op(epoch, s));
            changes.extend(self.check_and_repair());
        }
        changes.extend(self.reapply_tentative());
        self.events.push_back(Event::Changes(changes));
        if first_answer {
            self.resend_pending();
        }
    }

    /// The host's hash at `position` (from its heartbeat): compared now if this peer is there
    /// with nothing tentative shown, or on arrival if it is still behind.
    pub(crate) fn on_host_hash(&mut self, position: Position, hash: StateHash) {
        let at = self.replica.position;
        let tentative = self.edits.tentative;
        let (now, patience) = (self.now, self.config.heartbeat_interval * 3);
        let RoleState::Guest(g) = &mut self.role else {
            return;
        };
        if !g.synced {
            return;
        }
        // Batches travel reliably and in order, so lagging behind the host's heartbeats for
        // more than a few of them means they are not coming: ask to catch up.
        if position.seq > at.seq {
            match g.behind_since {
                None => g.behind_since = Some(now),
                Some(t) if now.saturating_sub(t) > patience => {
                    g.behind_since = None;
                    self.request_state();
                    return;
                }
                Some(_) => {}
            }
        } else {
            g.behind_since = None;
        }
        let RoleState::Guest(g) = &mut self.role else {
            return;
        };
        if g.repair_asked
            .is_some_and(|t| now.saturating_sub(t) < patience * 2)
        {
            return;
        }
        let quiet_only = self.config.fault == Some(Fault::CompareOnlyWhenQuiet);
        if position.seq > at.seq && !quiet_only {
            g.check = Some((position, hash));
        } else if position == at && !tentative {
            g.check = Some((position, hash));
            let changes = self.check_and_repair();
            self.events.push_back(Event::Changes(changes));
        }
    }

    /// At the position of a pending hash check or repair: compares, or repairs.
    fn check_and_repair(&mut self) -> Vec<Change> {
        let (at, now) = (self.replica.position, self.now);
        let RoleState::Guest(g) = &mut self.role else {
            return Vec::new();
        };
        let mut changes = Vec::new();
        if g.repair.as_ref().is_some_and(|r| r.position == at) {
            let r = g.repair.take().expect("checked above");
            g.repair_asked = None;
            changes = self.apply_repair(r);
        }
        let RoleState::Guest(g) = &mut self.role else {
            return changes;
        };
        if let Some((p, host_hash)) = g.check
            && p == at
        {
            g.check = None;
            if self.replica.digest() != host_hash {
                self.events.push_back(Event::Diverged {
                    position: at,
                    host_hash,
                });
                let groups: Vec<(Id, StateHash)> =
                    self.replica.net.shallow_hashes().into_iter().collect();
                if let RoleState::Guest(g) = &mut self.role {
                    g.repair_asked = Some(now);
                    if let Some(host) = g.host {
                        self.send(
                            host,
                            Message::HashMismatch {
                                position: at,
                                groups,
                            },
                        );
                    }
                }
            }
        }
        changes
    }

    /// The host's answer to a reported divergence. Only an answer to a report of ours is taken.
    pub(crate) fn on_repair(&mut self, from: PeerId, repair: PendingRepair) {
        let position = repair.position;
        let at = self.replica.position;
        let RoleState::Guest(g) = &mut self.role else {
            return;
        };
        if g.host != Some(from) {
            return;
        }
        if g.repair_asked.is_none() {
            self.misbehaved(from, "sent a repair nobody asked for".into());
            return;
        }
        if position.seq < at.seq {
            return;
        }
        if !repair.permissions.is_well_formed() {
            self.misbehaved(from, "sent a malformed permission table".into());
            return;
        }
        g.repair = Some(repair);
        if position == at {
            let mut changes = self.rollback_tentative();
            changes.extend(self.check_and_repair());
            changes.extend(self.reapply_tentative());
            self.events.push_back(Event::Changes(changes));
        }
    }

    fn apply_repair(&mut self, r: PendingRepair) -> Vec<Change> {
        match self.replica.net.repair(&r.remove, &r.groups) {
            Ok(changes) => {
                if self.config.fault != Some(Fault::RepairSkipsWriters) {
                    self.replica.writers = r
                        .writers
                        .into_iter()
                        .map(|w| (w.contact.clone(), w))
                        .collect();
                }
                self.replica.permissions = r.permissions;
                self.replica.generation += 1;
                changes
            }
            Err(_) => {
                // A repair that does not fit: fetch the whole state instead.
                self.lose_state();
                Vec::new()
            }
        }
    }

    /// The host refused a request of ours. A rate-limited one goes again after the wait; a
    /// removed peer keeps asking at the slowest retry (the host may take it back).
    pub(crate) fn on_refused(&mut self, host: PeerId, request: Refused, reason: Refusal) {
        self.events.push_back(Event::Refused {
            host,
            request,
            reason,
        });
        let now = self.now;
        let max = self.config.retry_max;
        let RoleState::Guest(g) = &mut self.role else {
            return;
        };
        match (request, reason) {
            (Refused::Submit { .. } | Refused::Forwarded, Refusal::RateLimited { retry_ms }) => {
                let due = now + std::time::Duration::from_millis(retry_ms);
                g.resend_due = Some(g.resend_due.map_or(due, |t| t.max(due)));
            }
            (Refused::StateRequest, Refusal::RateLimited { retry_ms }) if !g.synced => {
                g.retry_due = Some(now + std::time::Duration::from_millis(retry_ms));
            }
            (_, Refusal::Removed) => {
                g.removed = true;
                g.retry_delay = max;
                g.retry_due = Some(now + max);
            }
            // A divergence report is made again after a few heartbeats anyway; an edit over
            // the size limit was checked before it was sent (the peers' limits differ).
            _ => {}
        }
    }
}
