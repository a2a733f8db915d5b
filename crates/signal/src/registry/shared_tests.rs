//! Shared registries against an in-memory store with the same compare-and-set contract as the
//! Redis one, stepped by hand so two instances can be made to decide on the same record.

use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

use super::super::*;
use crate::{ClientMessage, ErrorCode, RejectReason};

/// A store: rooms, tokens, failed joins. Commits are held until `commit_all` so a test decides
/// when each one lands.
#[derive(Default)]
struct Store {
    rooms: HashMap<RoomCode, RoomRecord>,
    tokens: HashMap<u128, TokenRecord>,
    failures: HashMap<IpAddr, Vec<Instant>>,
    held: Vec<(usize, Output)>,
    /// Unreachable: loads answer `None`, commits `Unavailable`, writes are lost.
    down: bool,
}

struct World {
    now: Instant,
    regs: Vec<Registry>,
    store: Store,
    /// Messages sent to connections, per registry.
    sent: Vec<Vec<(ConnId, ServerMessage)>>,
}

fn seeded(mut s: u64) -> impl Entropy {
    move |buf: &mut [u8]| {
        for b in buf {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *b = s as u8;
        }
    }
}

impl World {
    fn new(n: usize) -> Self {
        let regs = (0..n)
            .map(|i| {
                Registry::new_shared(
                    Config::default(),
                    seeded(i as u64 * 7919 + 1),
                    InstanceId(i as u64 + 1),
                )
            })
            .collect();
        Self {
            now: Instant::now(),
            regs,
            store: Store::default(),
            sent: vec![Vec::new(); n],
        }
    }

    /// Answers loads and carries until quiet; commits are held.
    fn pump(&mut self) {
        loop {
            let mut any = false;
            for i in 0..self.regs.len() {
                while let Some(out) = self.regs[i].poll_output() {
                    any = true;
                    self.handle(i, out);
                }
            }
            if !any {
                return;
            }
        }
    }

    fn handle(&mut self, i: usize, out: Output) {
        let now = self.now;
        match out {
            Output::Send { to, msg } => self.sent[i].push((to, msg)),
            Output::Close { .. } | Output::HashPassword { .. } | Output::VerifyPassword { .. } => {}
            Output::Load {
                op,
                room,
                failures,
                token,
            } => {
                if self.store.down {
                    return self.regs[i].handle_loaded(now, op, None);
                }
                let token = token.and_then(|t| self.store.tokens.get(&t).copied());
                let room = room.or(token.and_then(|t| t.room));
                let loaded = Loaded {
                    room: room
                        .and_then(|c| self.store.rooms.get(&c).cloned())
                        .map(|r| (r, Duration::from_secs(3600))),
                    failures: failures
                        .and_then(|ip| self.store.failures.get(&ip).cloned())
                        .unwrap_or_default(),
                    token,
                    dead: Vec::new(),
                };
                self.regs[i].handle_loaded(now, op, Some(loaded));
            }
            Output::Commit { op, .. } if self.store.down => {
                self.regs[i].handle_committed(now, op, CommitResult::Unavailable);
            }
            out @ Output::Commit { .. } => self.store.held.push((i, out)),
            _ if self.store.down => {}
            Output::Carry { to, what } => {
                let j = (to.0 - 1) as usize;
                self.regs[j].handle_carried(now, what);
            }
            Output::SaveToken { token, record, .. } => match record {
                Some(r) => {
                    self.store.tokens.insert(token, r);
                }
                None => {
                    self.store.tokens.remove(&token);
                }
            },
            Output::RecordFailure { ip, .. } => {
                self.store.failures.entry(ip).or_default().push(now);
            }
            Output::Touch { .. } => {}
        }
    }

    /// Lands every held commit in order (compare-and-set), then pumps.
    fn commit_all(&mut self) {
        while !self.store.held.is_empty() {
            let held = std::mem::take(&mut self.store.held);
            for (i, out) in held {
                let Output::Commit {
                    op,
                    code,
                    old,
                    new,
                    notify,
                    ..
                } = out
                else {
                    unreachable!("only commits are held")
                };
                let cur = self.store.rooms.get(&code).cloned();
                let same = match (&cur, &old) {
                    (None, None) => true,
                    (Some(c), Some(o)) => (c.generation, c.version) == (o.generation, o.version),
                    _ => false,
                };
                let result = if same {
                    match &new {
                        Some(r) => self.store.rooms.insert(code, r.clone()),
                        None => self.store.rooms.remove(&code),
                    };
                    for to in notify {
                        let j = (to.0 - 1) as usize;
                        self.regs[j].handle_carried(
                            self.now,
                            Carried::Room {
                                code,
                                record: new.clone(),
                            },
                        );
                    }
                    CommitResult::Done
                } else {
                    CommitResult::Conflict(cur)
                };
                self.regs[i].handle_committed(self.now, op, result);
                self.pump();
            }
        }
    }

    fn settle(&mut self) {
        self.pump();
        self.commit_all();
    }

    fn greet(&mut self, i: usize, conn: u64) -> PeerId {
        let now = self.now;
        let c = ConnId(conn);
        self.regs[i].handle_connect(now, c, "10.0.0.1".parse().unwrap());
        self.regs[i].handle_message(
            now,
            c,
            ClientMessage::Hello {
                version: 1,
                resume: None,
            },
        );
        self.settle();
        self.sent[i]
            .iter()
            .find_map(|(to, m)| match m {
                ServerMessage::Welcome { peer_id, .. } if *to == c => Some(*peer_id),
                _ => None,
            })
            .expect("welcome")
    }

    /// Instance `i`'s connection `conn` creates a room (at most `max_peers`, PAKE or not);
    /// returns its code.
    fn create_room(&mut self, i: usize, conn: u64, max_peers: Option<u16>, pake: bool) -> RoomCode {
        let now = self.now;
        self.regs[i].handle_message(
            now,
            ConnId(conn),
            ClientMessage::CreateRoom {
                password: None,
                max_peers,
                pake,
            },
        );
        self.settle();
        let ServerMessage::RoomCreated { code, .. } = *self.last_to(i, conn) else {
            panic!("expected room-created")
        };
        code
    }

    /// Instance `i`'s connection `conn` asks to join `code` (no password, no reclaim); the
    /// caller settles.
    fn ask_to_join(&mut self, i: usize, conn: u64, code: RoomCode) {
        let now = self.now;
        self.regs[i].handle_message(
            now,
            ConnId(conn),
            ClientMessage::JoinRoom {
                code: code.to_string(),
                password: None,
                reclaim: None,
            },
        );
    }

    fn last_to(&self, i: usize, conn: u64) -> &ServerMessage {
        &self.sent[i]
            .iter()
            .rev()
            .find(|(to, _)| *to == ConnId(conn))
            .expect("something was sent")
            .1
    }
}

#[test]
fn two_instances_taking_the_last_place_at_once_admit_exactly_one() {
    let mut w = World::new(3);
    let host = w.greet(0, 1);
    let code = w.create_room(0, 1, Some(2), false);
    let a = w.greet(1, 1);
    let b = w.greet(2, 1);
    // Both read the room with one free place before either writes.
    for i in [1, 2] {
        w.ask_to_join(i, 1, code);
    }
    w.pump();
    assert_eq!(
        w.store.held.len(),
        2,
        "both decided to admit on the same record"
    );
    w.commit_all();
    assert!(matches!(w.last_to(1, 1), ServerMessage::Joined { .. }));
    assert!(matches!(
        w.last_to(2, 1),
        ServerMessage::Error {
            code: ErrorCode::RoomFull,
            ..
        }
    ));
    let rec = &w.store.rooms[&code];
    assert_eq!(
        rec.members.iter().map(|m| m.peer).collect::<Vec<_>>(),
        vec![host, a]
    );
    assert!(rec.member(b).is_none());
    // The host, on the first instance, was told about the one who got in.
    assert_eq!(
        *w.last_to(0, 1),
        ServerMessage::PeerJoined { peer: a, number: 2 }
    );
}

#[test]
fn a_leave_written_while_the_store_is_unreachable_is_written_when_it_is_back() {
    let mut w = World::new(2);
    let host = w.greet(0, 1);
    let now = w.now;
    let code = w.create_room(0, 1, None, false);
    let guest = w.greet(1, 1);
    w.ask_to_join(1, 1, code);
    w.settle();
    assert!(matches!(w.last_to(1, 1), ServerMessage::Joined { .. }));

    w.store.down = true;
    w.regs[1].handle_message(now, ConnId(1), ClientMessage::LeaveRoom);
    w.settle();
    assert_eq!(*w.last_to(1, 1), ServerMessage::Left { code });
    assert!(
        w.store.rooms[&code].member(guest).is_some(),
        "not written yet"
    );

    w.store.down = false;
    w.now += Duration::from_secs(3);
    let now = w.now;
    w.regs[1].handle_timeout(now);
    w.settle();
    assert!(w.store.rooms[&code].member(guest).is_none());
    assert_eq!(*w.last_to(0, 1), ServerMessage::PeerLeft { peer: guest });
    let _ = host;
}

#[test]
fn a_peer_that_reconnects_to_another_live_instance_moves_with_its_queue() {
    let mut w = World::new(3);
    let host = w.greet(0, 1);
    let now = w.now;
    let code = w.create_room(0, 1, None, false);
    let guest = w.greet(1, 1);
    let ServerMessage::Welcome { resume_token, .. } = w.sent[1][0].1.clone() else {
        panic!("expected welcome first")
    };
    w.ask_to_join(1, 1, code);
    w.settle();

    // The guest's connection drops; the host's offer waits in its old instance's queue.
    w.regs[1].handle_disconnect(now, ConnId(1));
    w.regs[0].handle_message(
        now,
        ConnId(1),
        ClientMessage::Offer {
            to: guest,
            sdp: "v=0 queued".into(),
            auth: Some("signed-by-the-room-key".into()),
        },
    );
    w.settle();

    // It comes back through another instance, which has never seen it.
    w.regs[2].handle_connect(now, ConnId(9), "10.0.0.2".parse().unwrap());
    w.regs[2].handle_message(
        now,
        ConnId(9),
        ClientMessage::Hello {
            version: 1,
            resume: Some(resume_token),
        },
    );
    w.settle();
    let to_guest: Vec<&ServerMessage> = w.sent[2]
        .iter()
        .filter(|(c, _)| *c == ConnId(9))
        .map(|(_, m)| m)
        .collect();
    assert!(
        matches!(to_guest[0], ServerMessage::Welcome { peer_id, resumed: true, .. } if *peer_id == guest)
    );
    assert!(
        matches!(to_guest[1], ServerMessage::Joined { members, host: h, .. } if *members == vec![host, guest] && *h == host)
    );
    assert_eq!(
        *to_guest[2],
        ServerMessage::Offer {
            from: host,
            sdp: "v=0 queued".into(),
            auth: Some("signed-by-the-room-key".into()),
        }
    );
    // The store and the host's instance know where it is now; the old instance let go.
    let rec = &w.store.rooms[&code];
    assert_eq!(rec.member(guest).map(|m| m.instance), Some(InstanceId(3)));
    assert_eq!(w.regs[1].metrics().peers, 0);
    w.regs[0].handle_message(
        now,
        ConnId(1),
        ClientMessage::Offer {
            to: guest,
            sdp: "v=0 after".into(),
            auth: None,
        },
    );
    w.settle();
    assert_eq!(
        *w.last_to(2, 9),
        ServerMessage::Offer {
            from: host,
            sdp: "v=0 after".into(),
            auth: None,
        }
    );
}

#[test]
fn a_pake_room_across_instances_relays_pake_and_a_reject_reaches_the_guests_instance() {
    let mut w = World::new(2);
    let host = w.greet(0, 1);
    let now = w.now;
    let code = w.create_room(0, 1, None, true);
    assert!(
        w.store.rooms[&code].pake,
        "the store's record carries the flag"
    );
    let guest = w.greet(1, 1);
    w.ask_to_join(1, 1, code);
    w.settle();
    assert!(matches!(
        w.last_to(1, 1),
        ServerMessage::Joined { pake: true, .. }
    ));
    w.regs[1].handle_message(
        now,
        ConnId(1),
        ClientMessage::Pake {
            to: host,
            data: "EQAB".into(),
        },
    );
    w.settle();
    assert_eq!(
        *w.last_to(0, 1),
        ServerMessage::Pake {
            from: guest,
            data: "EQAB".into()
        }
    );
    // The host refuses the guest: its instance counts the failure against the guest's
    // address in the store, tells the guest, and takes it out of the room everywhere.
    w.regs[0].handle_message(
        now,
        ConnId(1),
        ClientMessage::Reject {
            peer: guest,
            reason: RejectReason::WrongPassword,
        },
    );
    w.settle();
    assert!(matches!(
        w.last_to(1, 1),
        ServerMessage::Error {
            code: ErrorCode::WrongPassword,
            ..
        }
    ));
    assert_eq!(*w.last_to(0, 1), ServerMessage::PeerLeft { peer: guest });
    assert_eq!(
        w.store.failures[&"10.0.0.1".parse::<IpAddr>().unwrap()].len(),
        1
    );
    assert!(w.store.rooms[&code].member(guest).is_none());
    // A reject from the guest's side (not the host) is refused and changes nothing.
    w.ask_to_join(1, 1, code);
    w.settle();
    let rec = w.store.rooms[&code].clone();
    w.regs[1].handle_message(
        now,
        ConnId(1),
        ClientMessage::Reject {
            peer: host,
            reason: RejectReason::WrongPassword,
        },
    );
    w.settle();
    assert!(matches!(
        w.last_to(1, 1),
        ServerMessage::Error {
            code: ErrorCode::NotHost,
            ..
        }
    ));
    assert_eq!(w.store.rooms[&code], rec);
}
