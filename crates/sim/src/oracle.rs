//! The oracle: follows every edit from the moment a peer accepted it and every decision any
//! peer reported, rebuilds the one history the surviving host's state stands for, and judges
//! the run against it with models of its own. It never asks a session what is right.
//!
//! The checks (each proved able to fail by a planted fault, crates/sim/tests/seeds.rs):
//! - **agreement**: every report of a position (epoch, seq) names the same operation, time and
//!   decision;
//! - **exactly once**: no operation is decided twice in the final history;
//! - **serial replay**: the final history, replayed on a fresh engine, gives every peer's state;
//! - **nothing seen is lost**: every operation a surviving peer applied or held, in any epoch,
//!   is decided in the final history;
//! - **fate**: every edit a surviving peer accepted is decided in the final history, and the
//!   last decision its origin was told is that one;
//! - **order**: an edit comes after everything its origin had applied when it was made, and
//!   each origin's edits keep their order;
//! - **permissions**: a permit applies exactly when the host of the epoch that sequenced it
//!   issued it, not about itself, and it does not remove everyone; an edit is denied exactly
//!   when its origin was not read-write at its position (the oracle's own table, from the
//!   history); the surviving host's table is the oracle's. Permits are exempt from the fate and
//!   nothing-lost checks (a permission change lives only in its lineage);
//! - **semantics**: accept-last contacts hold their last writer by `(ts, peer)` and each write's
//!   decision follows that rule; merge contacts hold the join of every write; an update is
//!   refused exactly when its contact does not exist at its position.

use std::collections::{BTreeMap, BTreeSet};

use bassline_core::{BlendMode, Id, Network, Request, StateDocument, Value};
use bassline_protocol::{Command, Decision, Epoch, OpId, Permission, Permit, Position};

/// A peer incarnation: its id and how many times a peer with that id started before.
pub type Node = (u64, u32);

/// One report of an operation at a position.
#[derive(Clone, Debug, PartialEq)]
struct Report {
    op: OpId,
    ts: u64,
    decision: Decision,
}

/// An edit a peer accepted from its user.
#[derive(Clone, Debug)]
struct Accepted {
    node: Node,
    command: Command,
    ts: u64,
    /// The position the origin's replica stood at when it accepted the edit.
    at: Position,
}

/// Everything recorded during a run.
#[derive(Debug, Default)]
pub struct Oracle {
    reports: BTreeMap<(Epoch, u64), Report>,
    /// Where each epoch's sequence starts: its host's position when it took over.
    bases: BTreeMap<Epoch, Position>,
    /// Edits by id. A peer restarted under the same id may hand out an id its earlier life
    /// used (harmless if that edit went nowhere): the time tells them apart.
    accepted: BTreeMap<OpId, Vec<Accepted>>,
    /// Per node: operations it applied from a sequence, and positions of states it installed.
    applied: BTreeMap<Node, BTreeSet<OpId>>,
    installed: BTreeMap<Node, Vec<Position>>,
    /// Decisions told to each origin, in order: (op, position, decision).
    told: BTreeMap<Node, Vec<(OpId, Position, Decision)>>,
    pub violations: Vec<String>,
    /// How many accepted edits the final checks judged.
    pub edits_checked: usize,
    /// Who may do what at the end of the final history, by the oracle's own rules.
    pub permissions: Table,
    /// Nodes that were, at some point, not allowed to edit in the lineage they followed:
    /// they drop other members' operations they cannot forward, so they hold none for the
    /// nothing-lost check.
    pub restricted: BTreeSet<Node>,
}

/// The oracle's own permission table: a default and the members with their own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub default: Permission,
    pub members: BTreeMap<u64, Permission>,
}

impl Table {
    pub fn of(&self, peer: u64) -> Permission {
        self.members.get(&peer).copied().unwrap_or(self.default)
    }

    /// What a permit sequenced in `epoch` by `issuer` does: `Err` with why it is refused.
    fn permit(&mut self, epoch: Epoch, issuer: u64, p: Permit) -> Result<(), &'static str> {
        if issuer != epoch.host {
            return Err("not issued by the epoch's host");
        }
        if p.peer == Some(epoch.host) {
            return Err("about the host itself");
        }
        match p.peer {
            None if p.permission == Permission::Removed => return Err("removes everyone"),
            None => {
                self.default = p.permission;
                self.members.clear_equal(p.permission);
            }
            // A member set to the default follows the default from then on.
            Some(peer) if p.permission == self.default => {
                self.members.remove(&peer);
            }
            Some(peer) => {
                self.members.insert(peer, p.permission);
            }
        }
        // The host stays read-write whatever the default.
        if self.of(epoch.host) != Permission::ReadWrite {
            self.members.insert(epoch.host, Permission::ReadWrite);
        }
        Ok(())
    }
}

trait ClearEqual {
    fn clear_equal(&mut self, p: Permission);
}

impl ClearEqual for BTreeMap<u64, Permission> {
    fn clear_equal(&mut self, p: Permission) {
        self.retain(|_, q| *q != p);
    }
}

/// Contacts whose outcome the oracle computes itself: written directly, never wired into,
/// removed or switched between modes by the workload.
#[derive(Clone, Debug)]
pub struct Watched {
    pub contact: Id,
    pub blend: BlendMode,
}

impl Oracle {
    pub fn new(first_epoch: Epoch) -> Self {
        let mut o = Oracle::default();
        o.bases.insert(first_epoch, Position::default());
        o
    }

    fn violation(&mut self, v: String) {
        if self.violations.len() < 20 {
            self.violations.push(v);
        }
    }

    pub fn accepted(&mut self, node: Node, op: OpId, ts: u64, request: Request, at: Position) {
        self.accepted_command(node, op, ts, Command::Request(request), at);
    }

    /// A permission change the host made (`set_permission` accepted it).
    pub fn accepted_permit(&mut self, node: Node, op: OpId, ts: u64, permit: Permit, at: Position) {
        self.accepted_command(node, op, ts, Command::Permit(permit), at);
    }

    fn accepted_command(&mut self, node: Node, op: OpId, ts: u64, command: Command, at: Position) {
        let earlier = self.accepted.entry(op).or_default();
        let twice = earlier.iter().any(|a| a.node == node);
        earlier.push(Accepted {
            node,
            command,
            ts,
            at,
        });
        if twice {
            self.violation(format!(
                "operation id {op:?} was handed out twice by {node:?}"
            ));
        }
    }

    pub fn applied(
        &mut self,
        node: Node,
        op: OpId,
        ts: u64,
        position: Position,
        decision: Decision,
    ) {
        self.applied.entry(node).or_default().insert(op);
        let report = Report { op, ts, decision };
        match self.reports.get(&(position.epoch, position.seq)) {
            Some(r) if *r != report => self.violation(format!(
                "agreement: at {position:?} node {node:?} reports {report:?}, another {r:?}"
            )),
            Some(_) => {}
            None => {
                self.reports.insert((position.epoch, position.seq), report);
            }
        }
    }

    pub fn became_host(&mut self, node: Node, epoch: Epoch, base: Position) {
        if let Some(b) = self.bases.insert(epoch, base)
            && b != base
        {
            self.violation(format!(
                "epoch {epoch:?} started twice (node {node:?}): at {b:?} and {base:?}"
            ));
        }
    }

    pub fn installed(&mut self, node: Node, position: Position) {
        self.installed.entry(node).or_default().push(position);
    }

    pub fn told(&mut self, node: Node, op: OpId, position: Position, decision: Decision) {
        if op.peer != node.0 {
            self.violation(format!(
                "node {node:?} was told the fate of {op:?}, not its own"
            ));
        }
        // Told again only when the lineage it follows decided it elsewhere: never the same
        // position twice in a row.
        let told = self.told.entry(node).or_default();
        let again = told
            .iter()
            .rev()
            .find(|(o, _, _)| *o == op)
            .is_some_and(|(_, p, _)| *p == position);
        told.push((op, position, decision));
        if again {
            self.violation(format!(
                "node {node:?} was told the fate of {op:?} at {position:?} twice in a row"
            ));
        }
    }

    /// The operations of the lineage that reached `p`, in sequence order, as reported.
    fn chain(&self, p: Position) -> Result<Vec<(u64, Epoch, Report)>, String> {
        let mut out = Vec::new();
        let (mut e, mut n) = (p.epoch, p.seq);
        while n > 0 {
            let base = *self
                .bases
                .get(&e)
                .ok_or_else(|| format!("epoch {e:?} has no recorded start"))?;
            if base.seq >= n {
                return Err(format!("epoch {e:?} reached {n} below its start {base:?}"));
            }
            for k in (base.seq + 1..=n).rev() {
                let r = self
                    .reports
                    .get(&(e, k))
                    .ok_or_else(|| format!("no peer reported position ({e:?}, {k})"))?;
                out.push((k, e, r.clone()));
            }
            (e, n) = (base.epoch, base.seq);
        }
        out.reverse();
        Ok(out)
    }

    /// The final checks, against the surviving host's position and every surviving peer's
    /// state hash. `survivors` are the nodes alive at the end; `initial` the network every
    /// run starts from.
    /// With `corrupted`, some peer's state was corrupted on purpose: it may have led with it,
    /// so the history alone no longer gives the final state and the replay is not compared.
    pub fn check(
        &mut self,
        final_position: Position,
        final_hash: bassline_core::StateHash,
        survivors: &BTreeSet<Node>,
        initial: &Network,
        watched: &[Watched],
        corrupted: bool,
    ) {
        let history = match self.chain(final_position) {
            Ok(h) => h,
            Err(e) => {
                self.violation(format!("the final history cannot be rebuilt: {e}"));
                return;
            }
        };
        // Exactly once.
        let mut at: BTreeMap<OpId, usize> = BTreeMap::new();
        for (i, (_, _, r)) in history.iter().enumerate() {
            if let Some(prev) = at.insert(r.op, i) {
                self.violation(format!(
                    "exactly once: {:?} decided at seq {} and again at seq {}",
                    r.op, history[prev].0, history[i].0
                ));
            }
        }
        let replayed = self.replay(&history, (!corrupted).then_some(final_hash), initial);
        // Nothing seen is lost: by any surviving member that was always allowed to edit (only
        // those forward other members' operations).
        let writers: BTreeSet<Node> = survivors
            .iter()
            .copied()
            .filter(|n| !self.restricted.contains(n))
            .collect();
        let survivors_all = survivors;
        let survivors = &writers;
        let mut seen: BTreeMap<OpId, Node> = BTreeMap::new();
        for (node, ops) in &self.applied {
            if survivors.contains(node) {
                for op in ops {
                    seen.entry(*op).or_insert(*node);
                }
            }
        }
        let installs: Vec<(Node, Position)> = self
            .installed
            .iter()
            .filter(|(n, _)| survivors.contains(*n))
            .flat_map(|(n, ps)| ps.iter().map(move |p| (*n, *p)))
            .collect();
        for (node, p) in installs {
            match self.chain(p) {
                Ok(c) => {
                    for (_, _, r) in c {
                        seen.entry(r.op).or_insert(node);
                    }
                }
                Err(e) => self.violation(format!("node {node:?} installed {p:?}: {e}")),
            }
        }
        let permits: BTreeSet<OpId> = self
            .accepted
            .iter()
            .filter(|(_, v)| v.iter().any(|a| matches!(a.command, Command::Permit(_))))
            .map(|(op, _)| *op)
            .collect();
        for (op, node) in &seen {
            if !at.contains_key(op) && !permits.contains(op) {
                self.violation(format!(
                    "nothing seen is lost: {op:?}, held by surviving node {node:?}, is not in the final history"
                ));
            }
        }
        self.fates(&history, &at, survivors_all);
        self.order(&history, &at);
        self.causality();
        if !corrupted {
            self.semantics(&history, initial, &replayed, watched);
        }
    }

    /// Replays the final history on a fresh engine: applied operations must apply, refused
    /// ones must fail, superseded ones are skipped. Returns the network it ends with.
    fn replay(
        &mut self,
        history: &[(u64, Epoch, Report)],
        final_hash: Option<bassline_core::StateHash>,
        initial: &Network,
    ) -> Network {
        let mut net = initial.clone();
        let mut table = Table::default();
        for (seq, epoch, r) in history {
            let Some(command) = self.accepted_for(r).map(|a| a.command.clone()) else {
                self.violation(format!(
                    "serial replay: {:?} at seq {seq} (time {}) was never accepted by any peer (forged)",
                    r.op, r.ts
                ));
                continue;
            };
            let request = match command {
                Command::Permit(p) => {
                    let outcome = table.permit(*epoch, r.op.peer, p);
                    let ok = matches!(r.decision, Decision::Applied);
                    let refused = matches!(r.decision, Decision::Refused { .. });
                    if (outcome.is_ok() && !ok) || (outcome.is_err() && !refused) {
                        self.violation(format!(
                            "permissions: permit {:?} ({p:?}) at seq {seq} of {epoch:?} was decided {:?}; by the rules it is {outcome:?}",
                            r.op, r.decision
                        ));
                    }
                    continue;
                }
                Command::Request(request) => request,
            };
            let permission = table.of(r.op.peer);
            let denied = permission != Permission::ReadWrite;
            match &r.decision {
                Decision::Denied { permission: p } if denied && *p == permission => continue,
                d if denied || matches!(d, Decision::Denied { .. }) => {
                    self.violation(format!(
                        "permissions: {:?} at seq {seq} was decided {d:?}; its origin was {permission} there",
                        r.op
                    ));
                    continue;
                }
                _ => {}
            }
            let outcome = match r.decision {
                Decision::Superseded { .. } => continue,
                _ => net.apply(request),
            };
            if matches!(r.decision, Decision::Applied) != outcome.is_ok() {
                self.violation(format!(
                    "serial replay: {:?} at seq {seq} was decided {:?} but replays as {:?}",
                    r.op,
                    r.decision,
                    outcome.map(|_| ()).map_err(|e| e.to_string())
                ));
            }
        }
        if final_hash.is_some_and(|h| net.state_hash() != h) {
            self.violation(
                "serial replay: the final history replayed on a fresh engine does not give the peers' state"
                    .into(),
            );
        }
        self.permissions = table;
        net
    }

    /// The edit a report is about: every operation is accepted by some peer first.
    fn accepted_for(&self, r: &Report) -> Option<&Accepted> {
        self.accepted.get(&r.op)?.iter().find(|a| a.ts == r.ts)
    }

    /// The edit a report is about (`None` for a permit, or a forged operation).
    fn request_of(&self, r: &Report) -> Option<Request> {
        match &self.accepted_for(r)?.command {
            Command::Request(q) => Some(q.clone()),
            Command::Permit(_) => None,
        }
    }

    fn fates(
        &mut self,
        history: &[(u64, Epoch, Report)],
        at: &BTreeMap<OpId, usize>,
        survivors: &BTreeSet<Node>,
    ) {
        let accepted: Vec<(OpId, Node, u64)> = self
            .accepted
            .iter()
            .flat_map(|(op, v)| {
                v.iter()
                    .filter(|a| matches!(a.command, Command::Request(_)))
                    .map(move |a| (*op, a.node, a.ts))
            })
            .filter(|(_, node, _)| survivors.contains(node))
            .collect();
        for (op, node, ts) in accepted {
            self.edits_checked += 1;
            let Some(&i) = at.get(&op).filter(|&&i| history[i].2.ts == ts) else {
                self.violation(format!(
                    "fate: edit {op:?} (time {ts}) accepted by surviving node {node:?} was never decided in the final history"
                ));
                continue;
            };
            let (seq, epoch, r) = &history[i];
            let told: Vec<(Position, Decision)> = self
                .told
                .get(&node)
                .map(|t| {
                    t.iter()
                        .filter(|(o, _, _)| *o == op)
                        .map(|(_, p, d)| (*p, d.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let position = Position {
                epoch: *epoch,
                seq: *seq,
            };
            // The last decision told is the final one, at its position.
            match told.last() {
                None => self.violation(format!(
                    "fate: node {node:?} was never told what became of its edit {op:?} (decided {:?} at {position:?})",
                    r.decision
                )),
                Some((p, d)) if *d != r.decision || *p != position => {
                    self.violation(format!(
                        "fate: node {node:?} was last told {d:?} at {p:?} for {op:?}, the history says {:?} at {position:?}",
                        r.decision
                    ))
                }
                Some(_) => {}
            }
        }
    }

    /// Lamport time: an edit's time is later than that of every operation its origin had
    /// applied when it made it, so a write that saw another can never lose to it.
    fn causality(&mut self) {
        let mut latest: BTreeMap<Position, u64> = BTreeMap::new();
        let edits: Vec<(OpId, u64, Position)> = self
            .accepted
            .iter()
            .flat_map(|(op, v)| v.iter().map(move |a| (*op, a.ts, a.at)))
            .collect();
        for (op, ts, at) in edits {
            let seen = match latest.get(&at) {
                Some(t) => *t,
                None => {
                    let Ok(chain) = self.chain(at) else { continue };
                    let t = chain.iter().map(|(_, _, r)| r.ts).max().unwrap_or(0);
                    latest.insert(at, t);
                    t
                }
            };
            if ts <= seen {
                self.violation(format!(
                    "causality: {op:?} was stamped {ts}, not after the time {seen} of what its origin had applied"
                ));
                return;
            }
        }
    }

    /// An edit comes after what its origin had applied when it was made, and each origin's
    /// edits keep their order.
    fn order(&mut self, history: &[(u64, Epoch, Report)], at: &BTreeMap<OpId, usize>) {
        // Per origin and counter block (a peer restarted under its id starts a fresh block).
        let mut last_counter: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        for (seq, _, r) in history {
            if let Some(prev) = last_counter.insert((r.op.peer, r.op.counter >> 32), r.op.counter)
                && prev >= r.op.counter
            {
                self.violation(format!(
                    "order: {:?} at seq {seq} comes after counter {prev} of the same origin",
                    r.op
                ));
            }
        }
        let final_chain: BTreeSet<(Epoch, u64)> =
            history.iter().map(|(s, e, _)| (*e, *s)).collect();
        let checks: Vec<(OpId, Position)> = at
            .iter()
            .filter_map(|(op, &i)| self.accepted_for(&history[i].2).map(|a| (*op, a.at)))
            .collect();
        for (op, seen_at) in checks {
            let k = history[at[&op]].0;
            // Walk back from what the origin had until the final lineage: everything above the
            // fork must come before the edit (or not be in the final history at all), and the
            // fork itself too.
            let (mut e, mut n) = (seen_at.epoch, seen_at.seq);
            let mut steps = 0;
            // A denied edit has no effect, wherever it stands; a permit's place matters only in
            // its issuer's epoch. A member not allowed to edit forwards only its own operations
            // from a lineage that lost, so they may come before ones they saw (others forward
            // those).
            let denied = |d: &Decision| matches!(d, Decision::Denied { .. });
            let restricted = self.restricted.iter().any(|n| n.0 == op.peer);
            let permit = self
                .accepted
                .get(&op)
                .is_some_and(|v| v.iter().any(|a| matches!(a.command, Command::Permit(_))));
            if denied(&history[at[&op]].2.decision) || restricted || permit {
                continue;
            }
            while n > 0 && !final_chain.contains(&(e, n)) && steps < 100_000 {
                steps += 1;
                if let Some(r) = self.reports.get(&(e, n))
                    && let Some(&i) = at.get(&r.op)
                    && history[i].0 >= k
                    && !denied(&history[i].2.decision)
                {
                    self.violation(format!(
                        "order: {op:?} at seq {k} was made after {:?}, which the final history puts at seq {}",
                        r.op, history[i].0
                    ));
                    return;
                }
                match self.bases.get(&e) {
                    Some(b) if n == b.seq + 1 => (e, n) = (b.epoch, b.seq),
                    Some(_) => n -= 1,
                    None => break,
                }
            }
            if n >= k && final_chain.contains(&(e, n)) {
                self.violation(format!(
                    "order: {op:?} at seq {k} was made after position {n} of the same lineage"
                ));
            }
        }
    }

    fn semantics(
        &mut self,
        history: &[(u64, Epoch, Report)],
        initial: &Network,
        final_net: &Network,
        watched: &[Watched],
    ) {
        let mut model = Existence::from_network(initial);
        // Per watched contact: its value and writes since it was (re)created.
        let mut lww: BTreeMap<Id, Option<(u64, u64, OpId, Value)>> = BTreeMap::new();
        let mut merged: BTreeMap<Id, Value> = BTreeMap::new();
        let reset = |lww: &mut BTreeMap<Id, Option<(u64, u64, OpId, Value)>>,
                     merged: &mut BTreeMap<Id, Value>,
                     net: &dyn Fn(&Id) -> Option<Value>| {
            lww.clear();
            merged.clear();
            for w in watched {
                if let Some(v) = net(&w.contact) {
                    match w.blend {
                        BlendMode::AcceptLast => {
                            lww.insert(w.contact.clone(), None);
                        }
                        BlendMode::Merge => {
                            merged.insert(w.contact.clone(), v);
                        }
                    }
                }
            }
        };
        reset(&mut lww, &mut merged, &|c| {
            initial.contact(c).map(|c| c.value.clone())
        });
        let mut initial_lww: BTreeMap<Id, Value> = watched
            .iter()
            .filter_map(|w| {
                initial
                    .contact(&w.contact)
                    .map(|c| (w.contact.clone(), c.value.clone()))
            })
            .collect();
        for (seq, _, r) in history {
            let Some(request) = self.request_of(r) else {
                continue;
            };
            if matches!(r.decision, Decision::Denied { .. }) {
                // Never reached the engine (judged by the replay).
                continue;
            }
            let applied = matches!(r.decision, Decision::Applied);
            match &request {
                Request::UpdateContent { contact, value } => {
                    if let Some(exists) = model.exists(contact) {
                        let refused = matches!(r.decision, Decision::Refused { .. });
                        if exists == refused {
                            self.violation(format!(
                                "semantics: update of {contact} at seq {seq} was {:?} though the contact {}",
                                r.decision,
                                if exists { "exists" } else { "does not exist" }
                            ));
                        }
                    }
                    let refused = matches!(r.decision, Decision::Refused { .. });
                    if let Some(slot) = lww.get_mut(contact)
                        && !refused
                    {
                        let mine = (r.ts, r.op.peer);
                        let expected = match slot {
                            Some((ts, peer, by, _)) if (*ts, *peer) > mine => {
                                Decision::Superseded { by: *by }
                            }
                            _ => Decision::Applied,
                        };
                        if r.decision != expected {
                            self.violation(format!(
                                "semantics: write {:?} to accept-last {contact} at seq {seq} was {:?}; by (ts, peer) it is {expected:?}",
                                r.op, r.decision
                            ));
                        }
                        if expected == Decision::Applied {
                            *slot = Some((r.ts, r.op.peer, r.op, value.clone()));
                        }
                    }
                    if let Some(v) = merged.get_mut(contact) {
                        if matches!(r.decision, Decision::Superseded { .. }) {
                            self.violation(format!(
                                "semantics: write {:?} to merge contact {contact} at seq {seq} was superseded; merge joins every write",
                                r.op
                            ));
                        } else if applied && let Some(j) = join(v, value) {
                            // A clash keeps the old value (and records a contradiction).
                            *v = j;
                        }
                    }
                }
                Request::ImportState { document } if applied => {
                    model = Existence::from_document(document);
                    let doc_net = Network::import(document).ok();
                    let lookup = |c: &Id| {
                        doc_net
                            .as_ref()
                            .and_then(|n| n.contact(c).map(|c| c.value.clone()))
                    };
                    reset(&mut lww, &mut merged, &lookup);
                    initial_lww = watched
                        .iter()
                        .filter_map(|w| lookup(&w.contact).map(|v| (w.contact.clone(), v)))
                        .collect();
                }
                other if applied => model.apply(other),
                _ => {}
            }
        }
        for (contact, slot) in &lww {
            let expected = match slot {
                Some((_, _, _, v)) => v.clone(),
                None => initial_lww.get(contact).cloned().unwrap_or_default(),
            };
            let actual = final_net.contact(contact).map(|c| c.value.clone());
            if actual.as_ref() != Some(&expected) {
                self.violation(format!(
                    "semantics: accept-last {contact} ends as {actual:?}; its last writer by (ts, peer) wrote {expected:?}"
                ));
            }
        }
        for (contact, expected) in &merged {
            let actual = final_net.contact(contact).map(|c| c.value.clone());
            if actual.as_ref() != Some(expected) {
                self.violation(format!(
                    "semantics: merge contact {contact} ends as {actual:?}; the join of its writes is {expected:?}"
                ));
            }
        }
    }
}

/// The documented rule, written here on its own: an edit that creates an item without naming
/// it gets the id `c`, `g` or `w` (contact, group, wire), its origin's peer id, a dash and the
/// operation's counter.
pub fn assign_ids(request: Request, op: OpId) -> Request {
    let name = |kind: &str| Id::new(&format!("{kind}{}-{}", op.peer, op.counter)).ok();
    match request {
        Request::AddContact {
            id: None,
            group,
            name: n,
            blend,
            value,
            boundary,
        } => Request::AddContact {
            id: name("c"),
            group,
            name: n,
            blend,
            value,
            boundary,
        },
        Request::AddGroup {
            id: None,
            parent,
            name: n,
            primitive,
        } => Request::AddGroup {
            id: name("g"),
            parent,
            name: n,
            primitive,
        },
        Request::Connect {
            id: None,
            from,
            to,
            kind,
        } => Request::Connect {
            id: name("w"),
            from,
            to,
            kind,
        },
        other => other,
    }
}

/// The oracle's own lattice join for the values the workload writes to merge contacts:
/// numbers take the maximum, grow-sets the union, equal values stay; anything else clashes.
fn join(a: &Value, b: &Value) -> Option<Value> {
    match (a, b) {
        (Value::Null, v) | (v, Value::Null) => Some(v.clone()),
        (Value::Number(x), Value::Number(y)) => Some(Value::Number(x.max(*y))),
        (Value::GrowSet(x), Value::GrowSet(y)) => {
            Some(Value::GrowSet(x.union(y).cloned().collect()))
        }
        (Value::GrowMap(x), Value::GrowMap(y)) => {
            let mut out = x.clone();
            for (k, v) in y {
                let j = match x.get(k) {
                    Some(u) => join(u, v)?,
                    None => v.clone(),
                };
                out.insert(k.clone(), j);
            }
            Some(Value::GrowMap(out))
        }
        (x, y) if x == y => Some(x.clone()),
        _ => None,
    }
}

/// Which groups and contacts exist, followed from the history's structural requests: the
/// oracle's own model of "an update of a removed contact is refused".
struct Existence {
    /// group -> parent (the root has none).
    groups: BTreeMap<Id, Option<Id>>,
    /// contact -> group; `None` for contacts this model does not follow (gadget ports).
    contacts: BTreeMap<Id, Id>,
    followed: bool,
}

impl Existence {
    fn from_network(net: &Network) -> Self {
        Existence::from_document(&net.export())
    }

    fn from_document(doc: &StateDocument) -> Self {
        let mut e = Existence {
            groups: BTreeMap::new(),
            contacts: BTreeMap::new(),
            followed: true,
        };
        let mut stack = vec![(doc.root.clone(), None)];
        while let Some((g, parent)) = stack.pop() {
            e.groups.insert(g.id.clone(), parent);
            for c in &g.contacts {
                e.contacts.insert(c.id.clone(), g.id.clone());
            }
            for s in &g.groups {
                stack.push((s.clone(), Some(g.id.clone())));
            }
        }
        e
    }

    /// Whether the contact exists, if this model follows it.
    fn exists(&self, contact: &Id) -> Option<bool> {
        if !self.followed {
            return None;
        }
        // Gadget ports ("gadget/a") come from the gadget's kind, which the model leaves to
        // the engine: it judges only contacts it saw created.
        if contact.as_str().contains('/') {
            return None;
        }
        Some(self.contacts.contains_key(contact))
    }

    fn apply(&mut self, request: &Request) {
        match request {
            Request::AddGroup {
                id: Some(id),
                parent,
                ..
            } => {
                self.groups.insert(id.clone(), Some(parent.clone()));
            }
            Request::AddContact {
                id: Some(id),
                group,
                ..
            } => {
                self.contacts.insert(id.clone(), group.clone());
            }
            Request::RemoveContact { id } => {
                self.contacts.remove(id);
            }
            Request::RemoveGroup { id } => {
                let doomed = self.subtree(id);
                self.groups.retain(|g, _| !doomed.contains(g));
                self.contacts.retain(|_, g| !doomed.contains(g));
            }
            Request::UpdateGroup {
                id,
                parent: Some(p),
                ..
            } => {
                self.groups.insert(id.clone(), Some(p.clone()));
            }
            Request::RegisterGroup { parent, group } => {
                let mut stack = vec![(group.clone(), parent.clone())];
                while let Some((g, parent)) = stack.pop() {
                    self.groups.insert(g.id.clone(), Some(parent));
                    for c in &g.contacts {
                        self.contacts.insert(c.id.clone(), g.id.clone());
                    }
                    for s in &g.groups {
                        stack.push((s.clone(), g.id.clone()));
                    }
                }
            }
            // Requests without ids cannot be followed: stop judging existence.
            Request::AddContact { id: None, .. } | Request::AddGroup { id: None, .. } => {
                self.followed = false;
            }
            _ => {}
        }
    }

    fn subtree(&self, root: &Id) -> BTreeSet<Id> {
        let mut out = BTreeSet::from([root.clone()]);
        loop {
            let more: Vec<Id> = self
                .groups
                .iter()
                .filter(|(g, p)| !out.contains(*g) && p.as_ref().is_some_and(|p| out.contains(p)))
                .map(|(g, _)| g.clone())
                .collect();
            if more.is_empty() {
                return out;
            }
            out.extend(more);
        }
    }
}
