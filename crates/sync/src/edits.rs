//! This user's edits: shown at once, sent to the host, taken back and shown again around every
//! state the host sends, and told their fate; and applying each sequenced operation with what
//! it means for the edits waiting on it.

use std::collections::{BTreeMap, VecDeque};

use bassline_core::{Change, Id, Reply, Request};
use bassline_protocol::{
    Command, Decision, Envelope, Epoch, Message, OpId, Permission, Position, Sequenced,
};

use crate::{
    Error, Event, Fault,
    session::{LocalOutcome, RoleState, Session},
};

/// An own edit the host has not decided yet.
pub(crate) struct Pending {
    pub op: u64,
    pub ts: u64,
    pub request: Request,
    /// This peer's signature over it (sent with every re-send).
    pub sig: bassline_protocol::Signature,
    /// Changes that take the tentative edit back, while it is shown.
    pub undo: Option<Vec<Change>>,
}

/// Operations this peer must see decided: its own pending edits, and the operations a lineage
/// that lost had decided ("orphans", anyone's), submitted again until a lineage decides them.
#[derive(Default)]
pub(crate) struct Edits {
    /// The last operation counter used. Counters are contiguous: the host refuses a gap.
    pub counter: u64,
    pub pending: VecDeque<Pending>,
    /// Whether the pending edits are applied to the network shown.
    pub tentative: bool,
    pub orphans: Vec<Sequenced>,
    /// Where and how each own operation was told decided, latest last (a few per edit): a
    /// lineage that decides it again elsewhere tells the user again, never the same position
    /// twice in a row; and a lineage met again brings back the decision it made.
    pub told: BTreeMap<u64, Vec<(Position, Decision)>>,
}

/// Decisions remembered per own edit (each from another lineage).
const TOLD_PER_EDIT: usize = 4;

/// The id an edit's new item gets when its request names none: made from the operation's id,
/// so every replica creates the same item and the origin can address it at once.
fn assign_ids(request: Request, op: OpId) -> Request {
    let fresh = |kind: char| {
        Some(
            Id::new(&format!("{kind}{}-{}", op.peer, op.counter))
                .expect("digits and a dash are a valid id"),
        )
    };
    match request {
        Request::AddContact {
            id: None,
            group,
            name,
            blend,
            value,
            boundary,
        } => Request::AddContact {
            id: fresh('c'),
            group,
            name,
            blend,
            value,
            boundary,
        },
        Request::AddGroup {
            id: None,
            parent,
            name,
            primitive,
        } => Request::AddGroup {
            id: fresh('g'),
            parent,
            name,
            primitive,
        },
        Request::Connect {
            id: None,
            from,
            to,
            kind,
        } => Request::Connect {
            id: fresh('w'),
            from,
            to,
            kind,
        },
        other => other,
    }
}

impl Session {
    fn next_op(&self, request: Request) -> (OpId, Request) {
        let op = OpId {
            peer: self.me,
            counter: self.edits.counter + 1,
        };
        if self.config.fault == Some(Fault::NoIdAssignment) {
            return (op, request);
        }
        (op, assign_ids(request, op))
    }

    /// Host: an own edit is checked against the state (so an invalid one is refused here, with
    /// its reason, rather than sequenced as refused for everyone), then sequenced.
    pub(crate) fn edit_as_host(&mut self, request: Request) -> Result<LocalOutcome, Error> {
        let (op, request) = self.next_op(request);
        let reply = match self.replica.net.apply_undoable(request.clone()) {
            Ok((response, undo)) => {
                for c in &undo {
                    self.replica
                        .net
                        .apply_change(c)
                        .expect("an undo journal always applies");
                }
                response.reply
            }
            Err(bassline_core::Error::NotUndoable) => Reply::Done,
            Err(e) => return Err(e.into()),
        };
        self.edits.counter = op.counter;
        self.lamport += 1;
        let ts = self.lamport;
        let command = Command::Request(request);
        let sig = self.sign(op, ts, &command);
        self.sequence(op, ts, command, sig);
        Ok(LocalOutcome::Submitted { op, ts, reply })
    }

    /// Guest: shows an edit at once and sends it to the host.
    pub(crate) fn submit_local(&mut self, request: Request) -> Result<LocalOutcome, Error> {
        if self.edits.pending.len() >= self.config.pending_cap {
            return Err(Error::Busy(self.edits.pending.len()));
        }
        let (op, request) = self.next_op(request);
        self.check_size(op, &request)?;
        let (changes, undo, reply) = match self.replica.net.apply_undoable(request.clone()) {
            Ok((response, undo)) => (response.changes, Some(undo), response.reply),
            Err(bassline_core::Error::NotUndoable) => (Vec::new(), None, Reply::Done),
            Err(e) => return Err(e.into()),
        };
        self.replica.generation += 1;
        self.edits.tentative = true;
        self.edits.counter = op.counter;
        self.lamport += 1;
        let ts = self.lamport;
        let command = Command::Request(request);
        let sig = self.sign(op, ts, &command);
        let Command::Request(request) = command else {
            unreachable!("made a request just above")
        };
        self.edits.pending.push_back(Pending {
            op: op.counter,
            ts,
            request: request.clone(),
            sig,
            undo,
        });
        self.events.push_back(Event::Changes(changes));
        if let Some(host) = self.current_host() {
            self.send(
                host,
                Message::Submit {
                    op: op.counter,
                    ts,
                    request,
                    sig,
                },
            );
        }
        Ok(LocalOutcome::Submitted { op, ts, reply })
    }

    /// An edit the host would refuse as too large is refused here, before it is shown: its
    /// counter would otherwise never be decided, and hold back every edit after it.
    fn check_size(&self, op: OpId, request: &Request) -> Result<(), Error> {
        let max = self.config.limits.max_submit_bytes;
        let env = Envelope {
            id: u64::MAX,
            ts: self.lamport + 1,
            from: self.me,
            message: Message::Submit {
                op: op.counter,
                ts: self.lamport + 1,
                request: request.clone(),
                sig: bassline_protocol::Signature::NONE,
            },
        };
        let size: usize = match self.config.codec.encode(&env) {
            Ok(frames) => frames.iter().map(Vec::len).sum(),
            Err(_) => usize::MAX,
        };
        if size > max {
            return Err(Error::TooLarge { size, max });
        }
        Ok(())
    }

    /// Applies one sequenced operation to the replica and settles what waited on it: the
    /// origin's pending edit (told its fate), and any orphan copy of it.
    pub(crate) fn apply_op(&mut self, epoch: Epoch, s: &Sequenced) -> Vec<Change> {
        let (decision, changes) = self.replica.apply(epoch, s, self.config.fault);
        if self.config.fault != Some(Fault::StaleLamport) {
            self.lamport = self.lamport.max(s.ts);
        }
        let position = self.replica.position;
        self.events.push_back(Event::Applied {
            op: s.op,
            ts: s.ts,
            position,
            decision: decision.clone(),
        });
        if let (Command::Permit(p), Decision::Applied) = (&s.command, &decision) {
            self.events.push_back(Event::PermissionChanged {
                peer: p.peer,
                permission: p.permission,
            });
        }
        if s.op.peer == self.me {
            self.edits.pending.retain(|p| p.op != s.op.counter);
            self.tell_fate(s.op.counter, position, decision);
        }
        if !self.edits.orphans.is_empty() {
            let replica = &self.replica;
            self.edits.orphans.retain(|o| !replica.is_decided(o.op));
        }
        self.prune_log();
        changes
    }

    /// Tells the user what became of an own edit, once per position that decides it.
    pub(crate) fn tell_fate(&mut self, counter: u64, position: Position, decision: Decision) {
        let told = self.edits.told.entry(counter).or_default();
        if told.last().is_some_and(|(p, _)| *p == position) {
            return;
        }
        told.retain(|(p, _)| *p != position);
        told.push((position, decision.clone()));
        if told.len() > TOLD_PER_EDIT {
            told.remove(0);
        }
        // Only recent edits can be decided again (by a lineage met later); the oldest are
        // forgotten beyond what the log and the pending edits can hold.
        while self.edits.told.len() > self.config.log_cap + self.config.pending_cap {
            self.edits.told.pop_first();
        }
        self.events.push_back(Event::Decided {
            op: OpId {
                peer: self.me,
                counter,
            },
            position,
            decision,
        });
    }

    /// Takes back every tentative edit; returns the changes that did so.
    pub(crate) fn rollback_tentative(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        if !self.edits.tentative {
            return changes;
        }
        self.edits.tentative = false;
        let mut broken = false;
        for p in self.edits.pending.iter_mut().rev() {
            for c in p.undo.take().unwrap_or_default() {
                if self.replica.net.apply_change(&c).is_err() {
                    broken = true;
                }
                changes.push(c);
            }
        }
        self.replica.generation += 1;
        if broken {
            // Cannot happen with a correct journal; recover by fetching the whole state.
            self.lose_state();
        }
        changes
    }

    /// Applies every undecided own edit again on top of the host's state.
    pub(crate) fn reapply_tentative(&mut self) -> Vec<Change> {
        let (me, applied) = (self.me, &self.replica.applied);
        self.edits.pending.retain(|p| {
            !applied.contains(OpId {
                peer: me,
                counter: p.op,
            })
        });
        let mut changes = Vec::new();
        if self.edits.pending.is_empty() {
            return changes;
        }
        for p in self.edits.pending.iter_mut() {
            match self.replica.net.apply_undoable(p.request.clone()) {
                Ok((response, undo)) => {
                    changes.extend(response.changes);
                    p.undo = Some(undo);
                }
                Err(_) => p.undo = None,
            }
        }
        self.edits.tentative = true;
        self.replica.generation += 1;
        changes
    }

    /// Sends every undecided orphan and own edit to the host (again), orphans first and each
    /// in its original order: an edit may build on one before it. The host ignores those it
    /// has already decided, so each is decided once.
    pub(crate) fn resend_pending(&mut self) {
        let Some(host) = self.current_host() else {
            return;
        };
        // Only a member who may edit forwards other peers' operations (the host takes them
        // from nobody else; the members who may edit hold them too): one who may not keeps
        // only its own.
        if self.permission(self.me) != Permission::ReadWrite {
            let me = self.me;
            self.edits.orphans.retain(|o| o.op.peer == me);
        }
        if !self.edits.orphans.is_empty() {
            let mut ops = self.edits.orphans.clone();
            if self.config.fault == Some(Fault::SortOrphans) {
                ops.sort_by_key(|s| s.op);
            }
            let epoch = self.epoch;
            let base = Position::default();
            // The origins' keys go along, for a host whose lineage never met an origin.
            let origins: std::collections::BTreeSet<_> = ops.iter().map(|s| s.op.peer).collect();
            let keys = origins
                .into_iter()
                .filter_map(|p| Some((p, *self.keys.get(&p)?)))
                .collect();
            self.send(
                host,
                Message::Batch {
                    epoch,
                    base,
                    ops,
                    keys,
                },
            );
        }
        let msgs: Vec<Message> = self
            .edits
            .pending
            .iter()
            .map(|p| Message::Submit {
                op: p.op,
                ts: p.ts,
                request: p.request.clone(),
                sig: p.sig,
            })
            .collect();
        if self.config.fault == Some(Fault::DropPendingOnResend) && !msgs.is_empty() {
            let changes = self.rollback_tentative();
            self.events.push_back(Event::Changes(changes));
            self.edits.pending.clear();
            return;
        }
        for m in msgs {
            self.send(host, m);
        }
    }

    /// The state held here can no longer be trusted (a broken journal, a gap, a repair that
    /// did not fit): forget where it stands and fetch the whole state.
    pub(crate) fn lose_state(&mut self) {
        if let RoleState::Guest(g) = &mut self.role {
            g.synced = false;
        }
        self.replica.position = Position::default();
        self.request_state();
    }
}

#[cfg(test)]
mod tests {
    use bassline_core::{Request, id};
    use bassline_protocol::OpId;

    #[test]
    fn ids_come_from_the_operation_id() {
        let op = OpId {
            peer: 7,
            counter: 12,
        };
        let r = super::assign_ids(
            Request::AddGroup {
                id: None,
                parent: id!("root"),
                name: None,
                primitive: None,
            },
            op,
        );
        assert!(matches!(r, Request::AddGroup { id: Some(i), .. } if i.as_str() == "g7-12"));
        // A chosen id stays.
        let r = super::assign_ids(
            Request::Connect {
                id: Some(id!("mine")),
                from: id!("a"),
                to: id!("b"),
                kind: Default::default(),
            },
            op,
        );
        assert!(matches!(r, Request::Connect { id: Some(i), .. } if i.as_str() == "mine"));
    }
}
