//! Sequencing and applying operations; serving and installing state; tentative edits.

use bassline_core::{Change, Id, Request, StateDocument};
use bassline_protocol::{
    Decision, Epoch, Message, OpId, PeerId, Position, Sequenced, StateSync, Writer,
};

use crate::{
    Error, Event, Fault,
    session::{LocalOutcome, Pending, Role, Session},
};

impl Session {
    /// Host: gives an operation the next place in the sequence and applies it. Returns `None`
    /// for an operation already decided (a re-send).
    pub(crate) fn sequence(
        &mut self,
        op: OpId,
        ts: u64,
        seen: u64,
        request: Request,
    ) -> Option<Decision> {
        let skip_dedup = self.config.fault == Some(Fault::SkipDedup);
        if !skip_dedup && self.is_decided(op) {
            return None;
        }
        let s = Sequenced {
            seq: self.position.seq + 1,
            op,
            ts,
            seen,
            request,
        };
        let epoch = self.epoch;
        let (decision, changes) = self.apply_sequenced(epoch, &s, skip_dedup);
        self.events.push_back(Event::Changes(changes));
        if op.peer != self.me {
            self.send(
                op.peer,
                Message::Outcome {
                    op: op.counter,
                    decision: decision.clone(),
                },
            );
        }
        self.batch.push(s);
        if self.batch_due.is_none() {
            self.batch_due = Some(self.now + self.config.batch_window);
        }
        Some(decision)
    }

    pub(crate) fn is_decided(&self, op: OpId) -> bool {
        self.applied.get(&op.peer).is_some_and(|&c| c >= op.counter)
    }

    /// Applies one sequenced operation: the same decision on every peer, since it depends only
    /// on the replicated state, the last writers and the operation itself.
    pub(crate) fn apply_sequenced(
        &mut self,
        epoch: Epoch,
        s: &Sequenced,
        force: bool,
    ) -> (Decision, Vec<Change>) {
        let mut changes = Vec::new();
        let decision = if !force && self.is_decided(s.op) {
            // Cannot come from a correct host; keep the state as it is.
            Decision::Superseded { seq: s.seq }
        } else if self.superseded(s) {
            Decision::Superseded { seq: s.seq }
        } else {
            match self.net.apply(s.request.clone()) {
                Ok(response) => {
                    if let Request::UpdateContent { contact, .. } = &s.request {
                        let w = Writer {
                            contact: contact.clone(),
                            op: s.op,
                            ts: s.ts,
                            seq: s.seq,
                        };
                        self.writers.insert(contact.clone(), w);
                    }
                    for c in &response.changes {
                        if let Change::ContactRemoved { id } = c {
                            self.writers.remove(id);
                        }
                    }
                    changes = response.changes;
                    Decision::Applied { seq: s.seq }
                }
                Err(e) => Decision::Refused {
                    seq: s.seq,
                    reason: e.to_string(),
                },
            }
        };
        let entry = self.applied.entry(s.op.peer).or_insert(0);
        *entry = (*entry).max(s.op.counter);
        self.position = Position { epoch, seq: s.seq };
        self.lamport = self.lamport.max(s.ts);
        self.generation += 1;
        self.log.push_back((epoch, s.clone()));
        while self.log.len() > self.config.log_cap {
            self.log.pop_front();
        }
        if s.op.peer == self.me {
            self.pending.retain(|p| p.op != s.op.counter);
        }
        if !self.orphans.is_empty() {
            let applied = &self.applied;
            self.orphans
                .retain(|o| applied.get(&o.op.peer).is_none_or(|&c| c < o.op.counter));
        }
        self.events.push_back(Event::Applied {
            op: s.op,
            seq: s.seq,
            decision: decision.clone(),
        });
        (decision, changes)
    }

    /// Last writer wins: a direct write loses to a concurrent write (one its origin had not
    /// seen) with a later Lamport time, or the same time and a higher peer id.
    fn superseded(&self, s: &Sequenced) -> bool {
        let Request::UpdateContent { contact, .. } = &s.request else {
            return false;
        };
        let Some(w) = self.writers.get(contact) else {
            return false;
        };
        let concurrent = w.op.peer != s.op.peer && w.seq > s.seen;
        concurrent && (s.ts, s.op.peer) < (w.ts, w.op.peer)
    }

    pub(crate) fn flush_batch(&mut self) {
        self.batch_due = None;
        if self.batch.is_empty() || self.role != Role::Host {
            self.batch.clear();
            return;
        }
        let ops = std::mem::take(&mut self.batch);
        let guests: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.connected && p.synced)
            .map(|(id, _)| *id)
            .collect();
        for g in guests {
            self.send(
                g,
                Message::Batch {
                    epoch: self.epoch,
                    ops: ops.clone(),
                },
            );
        }
    }

    /// Host: answers a state request with the operations after `have` when the log still holds
    /// them, or with the whole state.
    pub(crate) fn serve_state(&mut self, to: PeerId, have: Option<Position>, first: &[Id]) {
        // Anything sequenced but not yet broadcast goes out first, so the answer and later
        // batches line up.
        self.flush_batch();
        let from_log = have.and_then(|h| {
            if h == self.position {
                return Some(Vec::new());
            }
            let at = self.log.iter().position(|(e, s)| {
                Position {
                    epoch: *e,
                    seq: s.seq,
                } == h
            })?;
            Some(self.log.iter().skip(at + 1).cloned().collect::<Vec<_>>())
        });
        match from_log {
            Some(entries) => {
                // One batch per epoch, so the guest records each operation's true position.
                let mut runs: Vec<(Epoch, Vec<Sequenced>)> = Vec::new();
                for (e, s) in entries {
                    match runs.last_mut() {
                        Some((le, ops)) if *le == e => ops.push(s),
                        _ => runs.push((e, vec![s])),
                    }
                }
                if runs.is_empty() {
                    runs.push((self.epoch, Vec::new()));
                }
                for (epoch, ops) in runs {
                    self.send(to, Message::Batch { epoch, ops });
                }
            }
            None => {
                if !first.is_empty() {
                    let part = StateSync {
                        position: self.position,
                        partial: true,
                        applied: Vec::new(),
                        writers: Vec::new(),
                        document: self.net.partial_document(first),
                    };
                    self.send(to, Message::StateSync(Box::new(part)));
                }
                let sync = StateSync {
                    position: self.position,
                    partial: false,
                    applied: self.applied.iter().map(|(p, c)| (*p, *c)).collect(),
                    writers: self.writers.values().cloned().collect(),
                    document: self.net.export(),
                };
                self.send(to, Message::StateSync(Box::new(sync)));
            }
        }
        self.peer(to).synced = true;
    }

    /// Guest: shows the first part of the host's state, read-only, until the whole arrives.
    pub(crate) fn install_partial(&mut self, part: StateSync) {
        if self.synced {
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
        let had_tentative = self.tentative;
        let mut changes = self.rollback_tentative();
        match self.net.apply(Request::ImportState { document }) {
            Ok(response) => {
                changes.extend(response.changes);
                self.generation += 1;
                Some(changes)
            }
            Err(e) => {
                if had_tentative {
                    changes.extend(self.reapply_tentative());
                }
                self.events.push_back(Event::Changes(changes));
                let host = self.host.unwrap_or(self.me);
                self.events.push_back(Event::PeerMisbehaved {
                    peer: host,
                    reason: format!("sent a state that does not import: {e}"),
                });
                None
            }
        }
    }

    /// Guest: replaces the state with the host's, then re-submits what the host lacks.
    pub(crate) fn install_state(&mut self, sync: StateSync) {
        let applied: std::collections::BTreeMap<PeerId, u64> =
            sync.applied.iter().copied().collect();
        let Some(mut changes) = self.replace_state(sync.document) else {
            return;
        };
        // Operations this peer saw sequenced that the host has not decided: they were
        // sequenced by a host the new one never heard from, so they go to the new host again
        // (and again after any later sync, until some host decides them).
        let mut seen = std::collections::BTreeSet::new();
        let mut orphans: Vec<Sequenced> = std::mem::take(&mut self.orphans)
            .into_iter()
            .chain(self.log.drain(..).map(|(_, s)| s))
            .filter(|s| applied.get(&s.op.peer).is_none_or(|&c| c < s.op.counter))
            .filter(|s| seen.insert(s.op))
            .collect();
        orphans.sort_by_key(|s| (s.op.peer, s.op.counter));
        orphans.truncate(self.config.log_cap);
        self.applied = applied;
        self.writers = sync
            .writers
            .into_iter()
            .map(|w| (w.contact.clone(), w))
            .collect();
        self.position = sync.position;
        self.synced = true;
        self.retry_due = None;
        self.retry_delay = self.config.retry_base;
        self.generation += 1;
        self.events.push_back(Event::StateReplaced {
            position: self.position,
            applied: self.applied.iter().map(|(p, c)| (*p, *c)).collect(),
        });
        changes.extend(self.reapply_tentative());
        self.events.push_back(Event::Changes(changes));
        self.orphans = orphans;
        if let Some(host) = self.host {
            self.send(
                host,
                Message::Ack {
                    position: self.position,
                },
            );
            self.resend_pending();
        }
    }

    /// Guest: applies the host's sequenced operations.
    pub(crate) fn apply_batch(&mut self, epoch: Epoch, ops: Vec<Sequenced>) {
        let first_answer = !self.synced;
        self.synced = true;
        self.retry_due = None;
        self.retry_delay = self.config.retry_base;
        let mut changes = self.rollback_tentative();
        for s in &ops {
            if s.seq <= self.position.seq {
                continue;
            }
            if s.seq != self.position.seq + 1 {
                // A gap: something was lost in between; start over from the whole state.
                self.synced = false;
                self.position = Position::default();
                changes.extend(self.reapply_tentative());
                self.events.push_back(Event::Changes(changes));
                self.request_state();
                return;
            }
            let (_, c) = self.apply_sequenced(epoch, s, false);
            changes.extend(c);
        }
        changes.extend(self.reapply_tentative());
        self.events.push_back(Event::Changes(changes));
        if first_answer {
            self.resend_pending();
        }
    }

    /// Sends every undecided orphan and own operation to the host (again). The host ignores
    /// those it has already decided, so each is applied exactly once.
    pub(crate) fn resend_pending(&mut self) {
        let Some(host) = self.host else { return };
        if !self.orphans.is_empty() {
            let ops = self.orphans.clone();
            self.send(
                host,
                Message::Batch {
                    epoch: self.epoch,
                    ops,
                },
            );
        }
        let msgs: Vec<Message> = self
            .pending
            .iter()
            .map(|p| Message::Submit {
                op: p.op,
                ts: p.ts,
                seen: p.seen,
                request: p.request.clone(),
            })
            .collect();
        for m in msgs {
            self.send(host, m);
        }
    }

    /// Takes back every tentative edit; returns the changes that did so.
    pub(crate) fn rollback_tentative(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        if !self.tentative {
            return changes;
        }
        self.tentative = false;
        let mut broken = false;
        for p in self.pending.iter_mut().rev() {
            for c in p.undo.take().unwrap_or_default() {
                if self.net.apply_change(&c).is_err() {
                    broken = true;
                }
                changes.push(c);
            }
        }
        self.generation += 1;
        if broken {
            // Cannot happen with a correct journal; recover by fetching the whole state.
            self.synced = false;
            self.position = Position::default();
        }
        changes
    }

    /// Applies every undecided own edit again on top of the host's state.
    pub(crate) fn reapply_tentative(&mut self) -> Vec<Change> {
        let me = self.me;
        let done = self.applied.get(&me).copied().unwrap_or(0);
        self.pending.retain(|p| p.op > done);
        let mut changes = Vec::new();
        for p in self.pending.iter_mut() {
            match self.net.apply_undoable(p.request.clone()) {
                Ok((response, undo)) => {
                    changes.extend(response.changes);
                    p.undo = Some(undo);
                }
                Err(_) => p.undo = None,
            }
        }
        self.tentative = true;
        self.generation += 1;
        changes
    }

    /// Guest: shows an edit at once and sends it to the host.
    pub(crate) fn submit_local(&mut self, request: Request) -> Result<LocalOutcome, Error> {
        if self.pending.len() >= self.config.pending_cap {
            return Err(Error::Busy(self.pending.len()));
        }
        let (changes, undo) = match self.net.apply_undoable(request.clone()) {
            Ok((response, undo)) => (response.changes, Some(undo)),
            Err(bassline_core::Error::NotUndoable) => (Vec::new(), None),
            Err(e) => return Err(e.into()),
        };
        self.generation += 1;
        self.tentative = true;
        self.counter += 1;
        self.lamport += 1;
        let op = self.counter;
        let (ts, seen) = (self.lamport, self.position.seq);
        self.pending.push_back(Pending {
            op,
            ts,
            seen,
            request: request.clone(),
            undo,
        });
        self.events.push_back(Event::Changes(changes));
        if let Some(host) = self.host {
            self.send(
                host,
                Message::Submit {
                    op,
                    ts,
                    seen,
                    request,
                },
            );
        }
        Ok(LocalOutcome::Submitted(OpId {
            peer: self.me,
            counter: op,
        }))
    }

    /// Becomes the host of a new epoch, starting from this peer's state.
    pub(crate) fn become_host(&mut self, number: u64) {
        let changes = self.rollback_tentative();
        self.events.push_back(Event::Changes(changes));
        self.role = Role::Host;
        self.host = Some(self.me);
        self.epoch = Epoch {
            number,
            host: self.me,
        };
        self.synced = true;
        self.query_deadline = None;
        self.election_deadline = None;
        self.expected_host = None;
        self.retry_due = None;
        for p in self.peers.values_mut() {
            p.synced = false;
        }
        let base = self.position;
        let peers: Vec<PeerId> = self.connected_peers().collect();
        for p in peers {
            self.send(
                p,
                Message::HostAnnounce {
                    epoch: self.epoch,
                    base,
                },
            );
        }
        self.events.push_back(Event::HostChanged {
            host: self.me,
            epoch: self.epoch,
        });
        // Orphans and own edits still waiting for a decision: this peer decides them now.
        for o in std::mem::take(&mut self.orphans) {
            self.sequence(o.op, o.ts, o.seen, o.request);
        }
        let pending: Vec<Pending> = self.pending.drain(..).collect();
        for p in pending {
            let op = OpId {
                peer: self.me,
                counter: p.op,
            };
            self.sequence(op, p.ts, p.seen, p.request);
        }
    }
}
