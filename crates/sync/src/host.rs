//! The host's side: sequencing, broadcasting batches, serving state and repairs, and taking
//! in what guests bring back from a lineage that lost.

use std::collections::BTreeMap;

use bassline_core::{Id, Request, StateHash};
use bassline_protocol::{
    Command, Decision, Epoch, Message, OpId, PeerId, Permission, Position, PublicKey, Refusal,
    Refused, Sequenced, Signature, StateSync,
};

use crate::{
    Fault,
    session::{Bucket, MAX_CLOCK_JUMP, RoleState, Session},
};

impl Session {
    /// Host: gives an operation the next place in the sequence and applies it. Returns `None`
    /// for an operation already decided (a re-send).
    pub(crate) fn sequence(
        &mut self,
        op: OpId,
        ts: u64,
        command: Command,
        sig: Signature,
    ) -> Option<Decision> {
        if self.already_decided(op) {
            return None;
        }
        let base = self.replica.position;
        let s = Sequenced {
            seq: base.seq + 1,
            op,
            ts,
            command,
            sig,
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

    /// This peer's signature over one of its own operations.
    pub(crate) fn sign(&self, op: OpId, ts: u64, command: &Command) -> Signature {
        self.config
            .identity
            .sign(&crate::identity::signed(op, ts, command))
    }

    /// Whether `sig` is `key`'s signature over the operation.
    fn signed_by(
        &self,
        key: &PublicKey,
        op: OpId,
        ts: u64,
        command: &Command,
        sig: &Signature,
    ) -> bool {
        self.config.fault == Some(Fault::SkipSignatureCheck)
            || self
                .config
                .identity
                .verify(key, &crate::identity::signed(op, ts, command), sig)
    }

    /// Records `peer`'s key unless one is known already (first key wins: a member's identity
    /// is never replaced). Returns the key now on record. A host passes a new key on to its
    /// followers with its next batch, which goes at once (a batch of keys alone if no edit is
    /// waiting): until a follower knows a member's key, another member could show it a vouch
    /// in that member's name under a key of its own.
    pub(crate) fn learn_key(&mut self, peer: PeerId, key: PublicKey) -> PublicKey {
        if let Some(known) = self.keys.get(&peer) {
            return *known;
        }
        self.keys.insert(peer, key);
        let now = self.now;
        if let RoleState::Host(h) = &mut self.role {
            h.new_keys.push((peer, key));
            h.batch_due = Some(h.batch_due.map_or(now, |t| t.min(now)));
        }
        key
    }

    /// Every key known here, sorted by peer (as a state carries them).
    pub(crate) fn key_table(&self) -> Vec<(PeerId, PublicKey)> {
        self.keys.iter().map(|(p, k)| (*p, *k)).collect()
    }

    /// A guest's own edit.
    pub(crate) fn on_submit(
        &mut self,
        from: PeerId,
        counter: u64,
        ts: u64,
        request: Request,
        sig: Signature,
        size: usize,
    ) {
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
            // the one before it count as decided. (The same holds for the edits after one that
            // was refused below: its origin sends them all again after it.)
            return;
        }
        let max = self.config.limits.max_submit_bytes;
        if size > max {
            self.refuse(
                from,
                Refused::Submit { op: counter },
                Refusal::TooLarge {
                    size: size as u64,
                    max: max as u64,
                },
            );
            return;
        }
        let command = Command::Request(request);
        let Some(key) = self.keys.get(&from).copied() else {
            // An honest guest presents its key with its state request, before any edit.
            self.misbehaved(
                from,
                format!("submitted edit {counter} without presenting a key"),
            );
            return;
        };
        if !self.signed_by(&key, op, ts, &command, &sig) {
            self.misbehaved(
                from,
                format!("submitted edit {counter} without a valid signature of its own"),
            );
            return;
        }
        if self.config.fault != Some(Fault::NoSubmitLimit)
            && !self.take_token(from, Refused::Submit { op: counter })
        {
            return;
        }
        self.sequence(op, ts, command, sig);
    }

    /// Takes one token of `from`'s `bucket`; without one, refuses the request (the sender is
    /// told when to send it again) and reports the sender.
    pub(crate) fn take_token(&mut self, from: PeerId, request: Refused) -> bool {
        let bucket = match request {
            Refused::Submit { .. } => Bucket::Submit,
            Refused::StateRequest => Bucket::StateRequest,
            Refused::HashMismatch => Bucket::HashMismatch,
            Refused::Forwarded => Bucket::Forwarded,
        };
        let (now, rate) = (self.now, self.config.limits.rate(bucket));
        let wait = self.link(from).buckets[bucket as usize].take(now, rate);
        let Some(retry_ms) = wait else {
            return true;
        };
        self.refuse(from, request, Refusal::RateLimited { retry_ms });
        false
    }

    /// Tells `to` that its request is refused, and why; reports it as misbehaving unless it
    /// was simply removed (it may not know yet).
    pub(crate) fn refuse(&mut self, to: PeerId, request: Refused, reason: Refusal) {
        if reason != Refusal::Removed {
            self.misbehaved(to, format!("{request:?} refused: {reason}"));
        }
        self.send(to, Message::Refused { request, reason });
    }

    /// Host: changes what `peer` (or with `None`, every member not named) may do, as the next
    /// operation of the sequence.
    pub(crate) fn permit_as_host(
        &mut self,
        peer: Option<PeerId>,
        permission: Permission,
    ) -> Result<(OpId, u64), crate::Error> {
        if peer == Some(self.me) || (peer.is_none() && permission == Permission::Removed) {
            return Err(crate::Error::InvalidPermit);
        }
        let op = OpId {
            peer: self.me,
            counter: self.edits.counter + 1,
        };
        self.edits.counter = op.counter;
        self.lamport += 1;
        let ts = self.lamport;
        let command = Command::Permit(bassline_protocol::Permit { peer, permission });
        let sig = self.sign(op, ts, &command);
        self.sequence(op, ts, command, sig);
        Ok((op, ts))
    }

    /// Operations a guest saw decided in a lineage that lost: sequenced here unless decided,
    /// in the order they come (a guest's own edits that build on them follow them). Each
    /// origin's operations must come in counter order; this peer's own are never taken from
    /// anyone (it holds them itself).
    pub(crate) fn on_orphans(
        &mut self,
        from: PeerId,
        mut ops: Vec<Sequenced>,
        carried: Vec<(PeerId, PublicKey)>,
    ) {
        // Forwarded operations carry other peers' ids: only a member who may edit forwards
        // others' (a read-only member's would be edits in a writer's name); any member its own.
        // An honest member demoted in a race may still send others'; the members who may edit
        // hold them too, so they are dropped without a report.
        // (Since operations are signed this is defence in depth: a read-only member holds no
        // other member's key, so it could only forward their genuine operations.)
        let writer = self.replica.permissions.of(from) == Permission::ReadWrite;
        let taken = |s: &Sequenced| writer || s.op.peer == from;
        // Every operation must be its origin's: signed with the key this peer knows for it, or
        // for an origin it knows no key of (one its lineage never met), the key the batch
        // carries. One forgery and nothing of the batch is taken: its forwarder lied.
        let carried: BTreeMap<PeerId, PublicKey> = carried.into_iter().collect();
        let mut learned = BTreeMap::new();
        // How many of the batch's operations this host looks at now: each one it checks takes
        // a token (a check costs a signature verification), and the rest of the batch is
        // refused for now; its forwarder sends the undecided ones again after the wait.
        let mut looked_at = ops.len();
        for (i, s) in ops.iter().enumerate() {
            if !taken(s) {
                continue;
            }
            let origin = s.op.peer;
            let block = |c: u64| c >> crate::replica::COUNTER_BLOCK;
            let ours = origin == self.me && block(s.op.counter) == block(self.edits.counter);
            if ours {
                // Never taken from anyone (checked below). A copy of an operation decided
                // here already is checked too: a forger is reported whether or not its
                // forgery would have been taken.
                continue;
            }
            if !self.take_token(from, Refused::Forwarded) {
                looked_at = i;
                break;
            }
            let key = self
                .keys
                .get(&origin)
                .or_else(|| carried.get(&origin))
                .copied();
            let Some(key) = key else {
                self.misbehaved(
                    from,
                    format!("forwarded edit {:?} without its origin's key", s.op),
                );
                return;
            };
            if !self.signed_by(&key, s.op, s.ts, &s.command, &s.sig) {
                self.misbehaved(
                    from,
                    format!("forwarded edit {:?} not signed by its origin", s.op),
                );
                return;
            }
            if !self.keys.contains_key(&origin) {
                learned.insert(origin, key);
            }
        }
        ops.truncate(looked_at);
        for (peer, key) in learned {
            self.learn_key(peer, key);
        }
        for s in ops {
            if !taken(&s) {
                continue;
            }
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
            self.sequence(s.op, s.ts, s.command, s.sig);
        }
    }

    pub(crate) fn flush_batch(&mut self) {
        let RoleState::Host(h) = &mut self.role else {
            return;
        };
        h.batch_due = None;
        if h.batch.is_empty() && h.new_keys.is_empty() {
            return;
        }
        let ops = std::mem::take(&mut h.batch);
        // Keys alone go as an empty batch at the host's position (it continues every
        // follower's history without changing it).
        let base = if ops.is_empty() {
            self.replica.position
        } else {
            h.last_flush = Some(self.now);
            h.batch_base
        };
        let guests: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(_, l)| l.connected && l.following)
            .map(|(id, _)| *id)
            .collect();
        let epoch = self.epoch;
        let mut keys = std::mem::take(&mut h.new_keys);
        keys.sort_unstable_by_key(|(p, _)| *p);
        for g in guests {
            self.send(
                g,
                Message::Batch {
                    epoch,
                    base,
                    ops: ops.clone(),
                    keys: keys.clone(),
                },
            );
            // A removed member gets the batch that removes it (so it knows), then nothing.
            if self.replica.permissions.of(g) == Permission::Removed {
                self.link(g).following = false;
            }
        }
    }

    /// Answers a state request with the operations after `have` when the log still holds them
    /// (this lineage's), or with the whole state. Either way the guest then follows.
    pub(crate) fn serve_state(
        &mut self,
        to: PeerId,
        have: Option<Position>,
        first: &[Id],
        key: Option<PublicKey>,
    ) {
        // The key a peer presents over its own link is its identity from now on, unless it
        // has one already (a peer that comes back keeps its key; another key is a lie).
        if let Some(key) = key
            && self.learn_key(to, key) != key
        {
            self.misbehaved(
                to,
                "presented a key other than the one registered for it".into(),
            );
        }
        if self.replica.permissions.of(to) == Permission::Removed {
            self.link(to).following = false;
            self.refuse(to, Refused::StateRequest, Refusal::Removed);
            return;
        }
        let max = self.config.limits.max_listed_groups;
        if first.len() > max {
            self.refuse(
                to,
                Refused::StateRequest,
                Refusal::TooLarge {
                    size: first.len() as u64,
                    max: max as u64,
                },
            );
            return;
        }
        if !self.take_token(to, Refused::StateRequest) {
            return;
        }
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
                // The first batch brings every key known here (the guest may have missed some
                // while it was away).
                let mut keys = self.key_table();
                for (epoch, base, ops) in runs {
                    let keys = std::mem::take(&mut keys);
                    self.send(
                        to,
                        Message::Batch {
                            epoch,
                            base,
                            ops,
                            keys,
                        },
                    );
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
                        permissions: Default::default(),
                        keys: Vec::new(),
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
                    permissions: self.replica.permissions.clone(),
                    keys: self.key_table(),
                    document: self.replica.net.export(),
                };
                self.send(to, Message::StateSync(Box::new(sync)));
            }
        }
        self.link(to).following = true;
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
        if self.replica.permissions.of(from) == Permission::Removed {
            return;
        }
        let max = self.config.limits.max_listed_groups;
        if groups.len() > max {
            self.refuse(
                from,
                Refused::HashMismatch,
                Refusal::TooLarge {
                    size: groups.len() as u64,
                    max: max as u64,
                },
            );
            return;
        }
        if !self.take_token(from, Refused::HashMismatch) {
            return;
        }
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
                permissions: self.replica.permissions.clone(),
                keys: self.key_table(),
            },
        );
    }

    /// Tells `peer` which epoch this host leads.
    pub(crate) fn announce_to(&mut self, peer: PeerId) {
        let led = match &self.role {
            RoleState::Host(h) => h.led,
            _ => None,
        };
        let epoch = self.epoch;
        self.send(peer, Message::HostAnnounce { epoch, led });
    }
}
