//! The registry's shared mode: the same rules, applied to room records read from and written
//! to a store other instances share (Redis, in the server).
//!
//! Every change to a room is an optimistic transaction: read the record ([`Output::Load`]),
//! decide with the rules in `registry.rs` and `room.rs`, and write the next record only if the
//! store still holds the one read ([`Output::Commit`]). On a conflict the decision is made
//! again from the record the store holds, so two instances admitting into the same room at
//! once can never both take the last place. The store tells the other instances holding
//! members of the room in the same step, and they tell their members what changed, the same
//! notices a single registry sends.
//!
//! An instance keeps a copy of each room it holds a member of: relays are decided on that
//! copy without asking the store, so rooms that are open keep relaying while the store is
//! unreachable. Creating, joining, and resuming on another instance need the store and are
//! refused with [`Error::Unavailable`] meanwhile.

use std::{
    cmp::Reverse,
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

use super::{
    Carried, CommitResult, ConnId, InstanceId, JoinStep, JoinTicket, Loaded, OpId, Output,
    Registry, RoomRecord, Timer, TokenRecord,
};
use crate::{Error, PROTOCOL_VERSION, Password, PeerId, RoomCode, ServerMessage};

/// How long the store keeps a resume token. A token is only honoured while the instance named
/// in it is alive or within a grace period of its death (its liveness key, kept by the driver),
/// so this is only a bound on leftovers of instances that died.
pub const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// How many times a create draws another code after finding its code taken in the store.
const CREATE_TRIES: u8 = 8;

/// Requests in flight to the store.
#[derive(Debug, Default)]
pub(super) struct SharedState {
    next_op: u64,
    ops: HashMap<OpId, Op>,
}

#[derive(Debug)]
enum Op {
    /// A hello with a token this instance does not know.
    Hello { conn: ConnId, token: u128 },
    /// A room written for the first time.
    Create {
        conn: ConnId,
        pid: PeerId,
        code: RoomCode,
        record: RoomRecord,
        tries: u8,
    },
    /// A join read its room.
    JoinLoad {
        conn: ConnId,
        pid: PeerId,
        typed: String,
        password: Option<Password>,
    },
    /// A join writes the room with its peer admitted.
    Join {
        conn: ConnId,
        pid: PeerId,
        code: RoomCode,
        next: RoomRecord,
    },
    /// A member held here leaves (or its grace ended).
    Leave {
        pid: PeerId,
        code: RoomCode,
        next: Option<RoomRecord>,
    },
    /// A peer resumed here from instance `from`.
    Resume {
        pid: PeerId,
        code: RoomCode,
        next: RoomRecord,
        from: InstanceId,
    },
    /// A periodic look at a room held here: expired, or members whose instance died?
    Check { code: RoomCode },
    /// A leave to write again: is the peer still listed here?
    Releave { pid: PeerId, code: RoomCode },
    /// A room written again after the store lost it.
    Restore { code: RoomCode },
    /// Removal of members whose instance died (those of `dead`).
    Reap {
        code: RoomCode,
        next: Option<RoomRecord>,
        dead: Vec<InstanceId>,
    },
}

/// `rec` without the members held by instances in `dead`, by the ordinary leave rule.
fn without_dead(rec: &RoomRecord, dead: &[InstanceId]) -> Option<RoomRecord> {
    let mut next = rec.clone();
    for m in rec.members.iter().filter(|m| dead.contains(&m.instance)) {
        next = next.without(m.peer)?;
    }
    Some(next)
}

impl Registry {
    fn start(&mut self, op: Op) -> OpId {
        let sh = self
            .shared
            .as_mut()
            .expect("store requests are made by shared registries only");
        sh.next_op += 1;
        let id = OpId(sh.next_op);
        sh.ops.insert(id, op);
        id
    }

    fn commit(&mut self, op: Op, code: RoomCode, old: Option<RoomRecord>, new: Option<RoomRecord>) {
        let mut notify: Vec<InstanceId> = old
            .iter()
            .chain(new.iter())
            .flat_map(|r| r.members.iter().map(|m| m.instance))
            .filter(|&i| i != self.me)
            .collect();
        notify.sort();
        notify.dedup();
        let op = self.start(op);
        self.out.push_back(Output::Commit {
            op,
            code,
            old,
            new,
            ttl: self.config.room_idle,
            notify,
        });
    }

    /// Tells the store where `pid` is (shared registries only).
    pub(super) fn save_token(&mut self, pid: PeerId) {
        if self.shared.is_none() {
            return;
        }
        let Some(peer) = self.peers.get(&pid) else {
            return;
        };
        self.out.push_back(Output::SaveToken {
            token: peer.token,
            record: Some(TokenRecord {
                peer: pid,
                room: peer.room,
                instance: self.me,
            }),
            ttl: TOKEN_TTL,
        });
    }

    pub(super) fn shared_hello(&mut self, conn: ConnId, token: u128) {
        self.set_pending(conn);
        let op = self.start(Op::Hello { conn, token });
        self.out.push_back(Output::Load {
            op,
            room: None,
            failures: None,
            token: Some(token),
        });
    }

    pub(super) fn shared_create(
        &mut self,
        conn: ConnId,
        pid: PeerId,
        code: RoomCode,
        record: RoomRecord,
        tries: u8,
    ) {
        self.set_pending(conn);
        let new = Some(record.clone());
        self.commit(
            Op::Create {
                conn,
                pid,
                code,
                record,
                tries,
            },
            code,
            None,
            new,
        );
    }

    pub(super) fn shared_join(
        &mut self,
        conn: ConnId,
        pid: PeerId,
        typed: &str,
        password: Option<Password>,
    ) {
        let Some(ip) = self.conns.get(&conn).map(|c| c.ip) else {
            return;
        };
        self.set_pending(conn);
        let op = self.start(Op::JoinLoad {
            conn,
            pid,
            typed: typed.to_owned(),
            password,
        });
        self.out.push_back(Output::Load {
            op,
            room: RoomCode::parse(typed).ok(),
            failures: Some(ip),
            token: None,
        });
    }

    pub(super) fn shared_leave(
        &mut self,
        _now: Instant,
        pid: PeerId,
        code: RoomCode,
        old: RoomRecord,
        next: Option<RoomRecord>,
    ) {
        self.commit(
            Op::Leave {
                pid,
                code,
                next: next.clone(),
            },
            code,
            Some(old),
            next,
        );
    }

    fn releave_later(&mut self, now: Instant, code: RoomCode, pid: PeerId) {
        let at = now + (self.config.grace / 4).max(Duration::from_secs(1));
        self.timers.push(Reverse((at, Timer::Releave(code, pid))));
    }

    pub(super) fn shared_releave(&mut self, code: RoomCode, pid: PeerId) {
        let op = self.start(Op::Releave { pid, code });
        self.out.push_back(Output::Load {
            op,
            room: Some(code),
            failures: None,
            token: None,
        });
    }

    pub(super) fn shared_check(&mut self, code: RoomCode) {
        let op = self.start(Op::Check { code });
        self.out.push_back(Output::Load {
            op,
            room: Some(code),
            failures: None,
            token: None,
        });
    }

    pub(super) fn shared_password_verified(
        &mut self,
        now: Instant,
        conn: ConnId,
        pid: PeerId,
        ip: IpAddr,
        ticket: JoinTicket,
        ok: bool,
    ) {
        let record = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.joining.take())
            .filter(|r| r.generation == ticket.generation);
        let Some(record) = record else {
            return self.reject(conn, &Error::RoomNotFound);
        };
        if !ok {
            self.record_failure(now, ip);
            return self.reject(conn, &Error::WrongPassword);
        }
        self.shared_admit(conn, pid, ticket.code, record, &[]);
    }

    /// Writes `old` (as read from the store) with `pid` admitted, members of dead instances
    /// removed first.
    fn shared_admit(
        &mut self,
        conn: ConnId,
        pid: PeerId,
        code: RoomCode,
        old: RoomRecord,
        dead: &[InstanceId],
    ) {
        let Some(live) = without_dead(&old, dead) else {
            return self.reject(conn, &Error::RoomNotFound);
        };
        if live.is_full() {
            return self.reject(
                conn,
                &Error::RoomFull {
                    max: live.max_peers,
                },
            );
        }
        let (next, _) = live.admit(pid, self.me);
        self.set_pending(conn);
        self.commit(
            Op::Join {
                conn,
                pid,
                code,
                next: next.clone(),
            },
            code,
            Some(old),
            Some(next),
        );
    }

    /// What the store held for an [`Output::Load`]; `None` when it could not be reached.
    pub fn handle_loaded(&mut self, now: Instant, op: OpId, loaded: Option<Loaded>) {
        let Some(op) = self.shared.as_mut().and_then(|sh| sh.ops.remove(&op)) else {
            return;
        };
        if loaded.is_none() {
            self.metrics.store_errors += 1;
        }
        match op {
            Op::Hello { conn, token } => self.loaded_hello(now, conn, token, loaded),
            Op::JoinLoad {
                conn,
                pid,
                typed,
                password,
            } => self.loaded_join(now, conn, pid, &typed, password, loaded),
            Op::Check { code } => self.loaded_check(now, code, loaded),
            Op::Releave { pid, code } => match loaded {
                None => self.releave_later(now, code, pid),
                Some(l) => {
                    let listed = l
                        .room
                        .as_ref()
                        .is_some_and(|(r, _)| r.member(pid).is_some_and(|m| m.instance == self.me));
                    let here = self.peers.get(&pid).is_some_and(|p| p.room == Some(code));
                    if let (true, false, Some((rec, _))) = (listed, here, l.room) {
                        let next = rec.without(pid);
                        self.shared_leave(now, pid, code, rec, next);
                    }
                }
            },
            // Only loads are answered here.
            _ => {}
        }
    }

    fn loaded_hello(&mut self, now: Instant, conn: ConnId, token: u128, loaded: Option<Loaded>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.pending = false;
        if c.peer.is_some() {
            return;
        }
        let Some(loaded) = loaded else {
            // Greeting it as a new peer would silently take it out of its room; it retries.
            self.reject(conn, &Error::Unavailable);
            self.out.push_back(Output::Close {
                conn,
                reason: "room store unreachable",
            });
            return;
        };
        let valid = loaded.token.filter(|t| {
            t.instance != self.me
                && !loaded.dead.contains(&t.instance)
                && !self.peers.contains_key(&t.peer)
                && !self.tokens.contains_key(&token)
        });
        let Some(rec) = valid else {
            return self.new_peer(conn);
        };
        let pid = rec.peer;
        self.attach_peer(conn, pid, token);
        self.metrics.resumes += 1;
        tracing::debug!(peer = %pid, from = rec.instance.0, "resumed from another instance");
        self.send(
            conn,
            ServerMessage::Welcome {
                version: PROTOCOL_VERSION,
                peer_id: pid,
                resume_token: format!("{token:032x}"),
                resumed: true,
                ice_servers: Vec::new(),
            },
        );
        let room = rec.room.zip(loaded.room).and_then(|(code, (old, _))| {
            old.member(pid)?;
            // Moved first: its old instance being dead must not remove it, it is right here.
            let moved = old.moved(pid, self.me);
            let next = without_dead(&moved, &loaded.dead).unwrap_or(moved);
            Some((code, old, next))
        });
        if let Some((code, old, next)) = room {
            // `joined` waits for the commit: once the peer hears it, every instance holding a
            // member of the room has been told where the peer is now.
            if let Some(p) = self.peers.get_mut(&pid) {
                p.room = Some(code);
            }
            self.replace_record(now, code, Some(next.clone()));
            self.commit(
                Op::Resume {
                    pid,
                    code,
                    next: next.clone(),
                    from: rec.instance,
                },
                code,
                Some(old),
                Some(next),
            );
        } else {
            self.moved_here(pid, rec.instance);
        }
        self.save_token(pid);
    }

    fn loaded_join(
        &mut self,
        now: Instant,
        conn: ConnId,
        pid: PeerId,
        typed: &str,
        password: Option<Password>,
        loaded: Option<Loaded>,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.pending = false;
        let ip = c.ip;
        if self.peers.get(&pid).is_none_or(|p| p.room.is_some()) {
            return;
        }
        let Some(loaded) = loaded else {
            return self.reject(conn, &Error::Unavailable);
        };
        // The failures every instance recorded for this address are the ones that count.
        self.ips.entry(ip).or_default().failures = loaded.failures.into_iter().collect();
        let room = loaded.room.map(|(r, _)| r);
        let live = room.as_ref().and_then(|r| without_dead(r, &loaded.dead));
        match self.decide_join(now, conn, typed, password, live.as_ref()) {
            Err(e) => self.reject(conn, &e),
            Ok(JoinStep::Admit(code)) => {
                let old = room.expect("a join is admitted only into a room that was found");
                self.shared_admit(conn, pid, code, old, &loaded.dead);
            }
            Ok(JoinStep::Verify(out)) => {
                self.set_pending(conn);
                if let Some(c) = self.conns.get_mut(&conn) {
                    // Committed against what was read, so the dead members go in the same write.
                    c.joining = room;
                }
                self.out.push_back(*out);
            }
        }
    }

    fn loaded_check(&mut self, now: Instant, code: RoomCode, loaded: Option<Loaded>) {
        let Some(mine) = self.rooms.get(&code) else {
            return;
        };
        let generation = mine.record.generation;
        let version = mine.record.version;
        let again = now + self.room_check_after();
        let Some(loaded) = loaded else {
            self.timers.push(Reverse((again, Timer::RoomIdle(code))));
            return;
        };
        let Some((rec, ttl)) = loaded.room.filter(|(r, _)| r.generation == generation) else {
            let recent = mine.last_activity + self.config.room_idle > now;
            if recent {
                // Active here within its lifetime, so it did not expire: the store lost it
                // (Redis restarted empty). Write it again.
                let record = mine.record.clone();
                self.commit(Op::Restore { code }, code, None, Some(record));
                self.timers.push(Reverse((again, Timer::RoomIdle(code))));
                return;
            }
            return self.close_expired(now, code);
        };
        // Members the store says are held here but are not (a leave whose write was lost
        // while the store was unreachable) go the same way as those of dead instances.
        let me = self.me;
        let in_flight = |pid: PeerId| {
            self.shared.as_ref().is_some_and(|sh| {
                sh.ops.values().any(|op| {
                    matches!(op, Op::Join { pid: p, .. } | Op::Resume { pid: p, .. } if *p == pid)
                })
            })
        };
        let stale: Vec<PeerId> = rec
            .members
            .iter()
            .filter(|m| m.instance == me && !in_flight(m.peer))
            .filter(|m| self.peers.get(&m.peer).is_none_or(|p| p.room != Some(code)))
            .map(|m| m.peer)
            .collect();
        if !stale.is_empty()
            || rec
                .members
                .iter()
                .any(|m| loaded.dead.contains(&m.instance))
        {
            let mut next = without_dead(&rec, &loaded.dead);
            for pid in stale {
                next = next.and_then(|n| n.without(pid));
            }
            self.commit(
                Op::Reap {
                    code,
                    next: next.clone(),
                    dead: loaded.dead.clone(),
                },
                code,
                Some(rec),
                next,
            );
        } else if rec.version > version {
            // A change whose message was lost (the store's messaging is best effort).
            self.replace_record(now, code, Some(rec));
        }
        if self.rooms.contains_key(&code) {
            let at = now + ttl.min(self.room_check_after());
            self.timers.push(Reverse((at, Timer::RoomIdle(code))));
        }
    }

    /// The store's answer to an [`Output::Commit`].
    pub fn handle_committed(&mut self, now: Instant, op: OpId, result: CommitResult) {
        let Some(op) = self.shared.as_mut().and_then(|sh| sh.ops.remove(&op)) else {
            return;
        };
        if matches!(result, CommitResult::Unavailable) {
            self.metrics.store_errors += 1;
        }
        match op {
            Op::Create {
                conn,
                pid,
                code,
                record,
                tries,
            } => self.committed_create(now, conn, pid, code, record, tries, result),
            Op::Join {
                conn,
                pid,
                code,
                next,
            } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.pending = false;
                }
                match result {
                    CommitResult::Done => self.enter(now, pid, code, next),
                    CommitResult::Conflict(Some(rec)) if rec.generation == next.generation => {
                        // Someone else changed the room first: decide again on what it is now.
                        self.shared_admit(conn, pid, code, rec, &[]);
                    }
                    CommitResult::Conflict(_) => self.reject(conn, &Error::RoomNotFound),
                    CommitResult::Unavailable => self.reject(conn, &Error::Unavailable),
                }
            }
            Op::Leave { pid, code, next } => match result {
                CommitResult::Done => self.replace_record(now, code, next),
                CommitResult::Unavailable => {
                    // The members here see the change now; the store gets it when it is back.
                    self.replace_record(now, code, next);
                    self.releave_later(now, code, pid);
                }
                CommitResult::Conflict(Some(rec)) => {
                    if rec.member(pid).is_some_and(|m| m.instance == self.me) {
                        let next = rec.without(pid);
                        self.shared_leave(now, pid, code, rec, next);
                    } else {
                        self.replace_record(now, code, Some(rec));
                    }
                }
                CommitResult::Conflict(None) => self.close_expired(now, code),
            },
            Op::Resume {
                pid,
                code,
                next,
                from,
            } => match result {
                CommitResult::Done | CommitResult::Unavailable => {
                    if let Some(conn) = self.peers.get(&pid).and_then(|p| p.conn) {
                        self.send(conn, next.joined(code, pid));
                    }
                    // After `joined`, so what the old instance queued arrives after it.
                    self.moved_here(pid, from);
                }
                CommitResult::Conflict(Some(rec)) if rec.member(pid).is_some() => {
                    let again = rec.moved(pid, self.me);
                    self.replace_record(now, code, Some(again.clone()));
                    self.commit(
                        Op::Resume {
                            pid,
                            code,
                            next: again.clone(),
                            from,
                        },
                        code,
                        Some(rec),
                        Some(again),
                    );
                }
                CommitResult::Conflict(Some(rec)) => {
                    // It was removed from the room meanwhile (its grace ran out elsewhere).
                    if let Some(p) = self.peers.get_mut(&pid) {
                        p.room = None;
                    }
                    if let Some(conn) = self.peers.get(&pid).and_then(|p| p.conn) {
                        self.send(conn, ServerMessage::Left { code });
                    }
                    self.save_token(pid);
                    self.replace_record(now, code, Some(rec));
                    self.moved_here(pid, from);
                }
                CommitResult::Conflict(None) => {
                    self.close_expired(now, code);
                    self.moved_here(pid, from);
                }
            },
            Op::Restore { code } => {
                if let CommitResult::Conflict(Some(rec)) = result {
                    let newer = self.rooms.get(&code).is_some_and(|r| {
                        r.record.generation == rec.generation && rec.version > r.record.version
                    });
                    if newer {
                        self.replace_record(now, code, Some(rec));
                    }
                }
            }
            Op::Reap { code, next, dead } => match result {
                CommitResult::Done => self.replace_record(now, code, next),
                CommitResult::Conflict(Some(rec)) => {
                    // Changed meanwhile (maybe another instance reaped first): reap what is left.
                    if rec.members.iter().any(|m| dead.contains(&m.instance)) {
                        let next = without_dead(&rec, &dead);
                        self.commit(
                            Op::Reap {
                                code,
                                next: next.clone(),
                                dead,
                            },
                            code,
                            Some(rec),
                            next,
                        );
                    } else {
                        let newer = self.rooms.get(&code).is_some_and(|r| {
                            r.record.generation == rec.generation && rec.version > r.record.version
                        });
                        if newer {
                            self.replace_record(now, code, Some(rec));
                        }
                    }
                }
                CommitResult::Conflict(None) | CommitResult::Unavailable => {}
            },
            // Only commits are answered here.
            Op::Hello { .. } | Op::JoinLoad { .. } | Op::Check { .. } | Op::Releave { .. } => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn committed_create(
        &mut self,
        now: Instant,
        conn: ConnId,
        pid: PeerId,
        code: RoomCode,
        record: RoomRecord,
        tries: u8,
        result: CommitResult,
    ) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.pending = false;
        }
        match result {
            CommitResult::Done => {
                if self.peers.get(&pid).is_some_and(|p| p.room.is_none()) {
                    self.open_room(now, pid, code, record);
                } else {
                    // The creator left meanwhile: nobody is in the room.
                    self.commit(
                        Op::Reap {
                            code,
                            next: None,
                            dead: Vec::new(),
                        },
                        code,
                        Some(record),
                        None,
                    );
                }
            }
            CommitResult::Conflict(_) if tries + 1 < CREATE_TRIES => {
                // Another instance holds a room under this code.
                match self.fresh_code() {
                    Some(code) => self.shared_create(conn, pid, code, record, tries + 1),
                    None => self.reject(conn, &Error::TooManyRooms),
                }
            }
            CommitResult::Conflict(_) => self.reject(conn, &Error::TooManyRooms),
            CommitResult::Unavailable => self.reject(conn, &Error::Unavailable),
        }
    }

    /// The other instances holding members of rooms held here: the driver watches their
    /// liveness and reports the dead through [`Registry::handle_dead_instances`].
    pub fn peer_instances(&self) -> Vec<InstanceId> {
        let mut out: Vec<InstanceId> = self
            .rooms
            .values()
            .flat_map(|r| r.record.members.iter().map(|m| m.instance))
            .filter(|&i| i != self.me)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Instances in `dead` stopped renewing their liveness a grace period ago: their members are
    /// removed from the rooms held here, by the ordinary leave rule (host moves, others told).
    /// One check per instance instead of one per room keeps this cheap with thousands of rooms.
    pub fn handle_dead_instances(&mut self, _now: Instant, dead: &[InstanceId]) {
        if self.shared.is_none() || dead.is_empty() {
            return;
        }
        let mut codes: Vec<RoomCode> = self
            .rooms
            .iter()
            .filter(|(_, r)| r.record.members.iter().any(|m| dead.contains(&m.instance)))
            .map(|(c, _)| *c)
            .collect();
        codes.sort();
        for code in codes {
            let old = self.rooms[&code].record.clone();
            let next = without_dead(&old, dead);
            self.commit(
                Op::Reap {
                    code,
                    next: next.clone(),
                    dead: dead.to_vec(),
                },
                code,
                Some(old),
                next,
            );
        }
    }

    /// The store lost what this instance wrote (it restarted empty): write every room held
    /// here and every peer's token again, so resumes and joins across instances work again.
    pub fn handle_store_lost(&mut self, _now: Instant) {
        if self.shared.is_none() {
            return;
        }
        let mut codes: Vec<RoomCode> = self.rooms.keys().copied().collect();
        codes.sort();
        for code in codes {
            let record = self.rooms[&code].record.clone();
            self.commit(Op::Restore { code }, code, None, Some(record));
        }
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for pid in peers {
            self.save_token(pid);
        }
    }

    /// Tells instance `from` that `pid` now lives here: it closes the old connection and passes
    /// on what it queued.
    fn moved_here(&mut self, pid: PeerId, from: InstanceId) {
        self.out.push_back(Output::Carry {
            to: from,
            what: Carried::Moved {
                peer: pid,
                to: self.me,
            },
        });
    }

    /// Something another instance sent this one through the store.
    pub fn handle_carried(&mut self, now: Instant, what: Carried) {
        match what {
            Carried::Relay { to, msg, .. } => {
                if self.peers.contains_key(&to) {
                    self.deliver(now, to, msg);
                } else {
                    self.metrics.dropped += 1;
                }
            }
            Carried::Room { code, record } => {
                let newer = self.rooms.get(&code).is_some_and(|r| {
                    record.as_ref().is_none_or(|n| {
                        n.generation == r.record.generation && n.version > r.record.version
                    })
                });
                if newer {
                    self.replace_record(now, code, record);
                }
            }
            Carried::Moved { peer, to } => self.moved_away(now, peer, to),
            Carried::Reject { peer, code, reason } => self.refuse_member(now, peer, code, reason),
        }
    }

    /// `pid`, held here, resumed on instance `to`: let go of it, passing on its queue.
    fn moved_away(&mut self, now: Instant, pid: PeerId, to: InstanceId) {
        if to == self.me {
            return;
        }
        let Some(peer) = self.peers.remove(&pid) else {
            return;
        };
        self.tokens.remove(&peer.token);
        if let Some(conn) = peer.conn {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.peer = None;
            }
            self.out.push_back(Output::Close {
                conn,
                reason: "resumed on another server",
            });
        }
        for (deadline, msg) in peer.queue {
            if deadline > now {
                self.out.push_back(Output::Carry {
                    to,
                    what: Carried::Relay {
                        to: pid,
                        msg,
                        forwarded: true,
                    },
                });
            } else {
                self.metrics.dropped += 1;
            }
        }
        if let Some(code) = peer.room
            && let Some(room) = self.rooms.get_mut(&code)
        {
            // Not a new version: the record the new instance commits says the same and more.
            for m in &mut room.record.members {
                if m.peer == pid {
                    m.instance = to;
                }
            }
            if room.record.members.iter().all(|m| m.instance != self.me) {
                self.rooms.remove(&code);
            }
        }
    }
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;
