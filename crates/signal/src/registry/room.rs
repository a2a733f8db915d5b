//! Rooms as records: what instances sharing rooms must agree on, and the pure rules that turn
//! one record into the next. The registry applies the same rules whether the record lives in
//! its own memory or in a shared store.

use serde::{Deserialize, Serialize};

use super::types::{InstanceId, PasswordHash};
use crate::{MemberNumber, PeerId, Reclaim, RejectReason, RoomCode, ServerMessage};

/// One member of a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its peer id.
    pub peer: PeerId,
    /// Its member number.
    pub number: MemberNumber,
    /// The instance holding its connection (or its reconnect grace).
    pub instance: InstanceId,
}

/// A room's shared state. Every change makes a new record with a higher `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRecord {
    /// Grows with every change, so an instance can tell a newer record from an older one.
    pub version: u64,
    /// In joining order.
    pub members: Vec<Member>,
    /// The number the next member gets: numbers only grow, so none is reused while the room
    /// lives.
    pub next_number: MemberNumber,
    /// Which member is the host.
    pub host: PeerId,
    /// The password's hash, if the room has one.
    pub password: Option<PasswordHash>,
    /// The room's peer limit.
    pub max_peers: u16,
    /// Unique per room ever created, so a result about a closed room cannot act on a new room
    /// that reuses its code.
    pub generation: u64,
    /// The room's password is checked by its host by PAKE, not by the server. Absent in
    /// records written before the field existed, which read as `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pake: bool,
}

/// What the store keeps under a resume token, so the token works on any instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The peer the token resumes.
    pub peer: PeerId,
    /// Its room, if any.
    pub room: Option<RoomCode>,
    /// The instance holding it.
    pub instance: InstanceId,
}

/// What one instance's registry hands another's (through the store's messaging).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Carried {
    /// A relayed offer, answer or candidate for a peer held by the receiving instance.
    Relay {
        /// The target peer.
        to: PeerId,
        /// The message as the target receives it.
        msg: ServerMessage,
        /// Already passed on once by an instance the target had left.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        forwarded: bool,
    },
    /// The host of room `code` refused member `peer`'s PAKE run; the receiving instance holds
    /// the peer (and knows its address): it counts the failed join, tells the peer and removes
    /// it from the room.
    Reject {
        /// The refused member.
        peer: PeerId,
        /// Its room.
        code: RoomCode,
        /// Why.
        reason: RejectReason,
    },
    /// A room changed (or closed, `None`): the record as committed.
    Room {
        /// The room.
        code: RoomCode,
        /// Its new record.
        record: Option<RoomRecord>,
    },
    /// A peer of the receiving instance resumed on instance `to`: close its old connection and
    /// pass on what is queued for it.
    Moved {
        /// The peer.
        peer: PeerId,
        /// Where it is now.
        to: InstanceId,
    },
}

impl RoomRecord {
    /// A new room with `host` as its only member (number 1).
    pub(crate) fn new(
        host: PeerId,
        instance: InstanceId,
        password: Option<PasswordHash>,
        max_peers: u16,
        generation: u64,
    ) -> Self {
        Self {
            version: 1,
            members: vec![Member {
                peer: host,
                number: 1,
                instance,
            }],
            next_number: 2,
            host,
            password,
            max_peers,
            generation,
            pake: false,
        }
    }

    /// A room re-created by a member reclaiming its place (the server had lost it): the
    /// reclaimer is its host and only member, under its old number, and numbering continues
    /// from the claim's `next`.
    pub(crate) fn reclaimed(
        host: PeerId,
        instance: InstanceId,
        claim: Reclaim,
        max_peers: u16,
        generation: u64,
    ) -> Self {
        Self {
            version: 1,
            members: vec![Member {
                peer: host,
                number: claim.number,
                instance,
            }],
            next_number: claim.next,
            host,
            password: None,
            max_peers,
            generation,
            pake: claim.pake,
        }
    }

    /// The member entry of `peer`.
    pub fn member(&self, peer: PeerId) -> Option<&Member> {
        self.members.iter().find(|m| m.peer == peer)
    }

    /// Whether another member can join.
    pub(crate) fn is_full(&self) -> bool {
        self.members.len() >= usize::from(self.max_peers)
    }

    /// The record after `peer` joins from `instance`, and the number it got.
    pub(crate) fn admit(&self, peer: PeerId, instance: InstanceId) -> (Self, MemberNumber) {
        let mut next = self.clone();
        let number = next.next_number;
        next.next_number += 1;
        next.members.push(Member {
            peer,
            number,
            instance,
        });
        next.version += 1;
        (next, number)
    }

    /// The record after `peer` takes back member number `claim.number` (which the caller
    /// checked is free); the counter rises to `claim.next` if it is below, so no newcomer gets
    /// a number the reclaimer knows to be held.
    pub(crate) fn admit_reclaimed(
        &self,
        peer: PeerId,
        instance: InstanceId,
        claim: Reclaim,
    ) -> Self {
        let mut next = self.clone();
        next.next_number = next.next_number.max(claim.next);
        next.members.push(Member {
            peer,
            number: claim.number,
            instance,
        });
        next.version += 1;
        next
    }

    /// Whether a current member holds `number`.
    pub(crate) fn number_held(&self, number: MemberNumber) -> bool {
        self.members.iter().any(|m| m.number == number)
    }

    /// The record after `peer` left: `None` when it was the last member. The oldest remaining
    /// member becomes host when the host leaves.
    pub(crate) fn without(&self, peer: PeerId) -> Option<Self> {
        let mut next = self.clone();
        next.members.retain(|m| m.peer != peer);
        let first = next.members.first()?;
        if next.host == peer {
            next.host = first.peer;
        }
        next.version += 1;
        Some(next)
    }

    /// The record after `peer` moved to `instance` (it resumed there).
    pub(crate) fn moved(&self, peer: PeerId, instance: InstanceId) -> Self {
        let mut next = self.clone();
        for m in &mut next.members {
            if m.peer == peer {
                m.instance = instance;
            }
        }
        next.version += 1;
        next
    }

    /// The `joined` message telling `to` who is in the room now.
    pub(crate) fn joined(&self, code: RoomCode, to: PeerId) -> ServerMessage {
        ServerMessage::Joined {
            code,
            members: self.members.iter().map(|m| m.peer).collect(),
            numbers: self.members.iter().map(|m| m.number).collect(),
            host: self.host,
            number: self.member(to).map_or(0, |m| m.number),
            pake: self.pake,
        }
    }

    /// What members who were in both `self` and `next` are told about the change, in order.
    pub(crate) fn notices(&self, next: &Self) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        for m in &next.members {
            if self.member(m.peer).is_none() {
                out.push(ServerMessage::PeerJoined {
                    peer: m.peer,
                    number: m.number,
                });
            }
        }
        for m in &self.members {
            if next.member(m.peer).is_none() {
                out.push(ServerMessage::PeerLeft { peer: m.peer });
            }
        }
        if next.host != self.host {
            out.push(ServerMessage::HostChanged { host: next.host });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_json_with_the_password_hash() {
        let rec = RoomRecord::new(
            PeerId(7),
            InstanceId(3),
            Some(PasswordHash {
                salt: [1; 16],
                hash: [0xab; 32],
            }),
            4,
            99,
        );
        let json = serde_json::to_string(&rec).unwrap();
        assert_eq!(serde_json::from_str::<RoomRecord>(&json).unwrap(), rec);
        let carried = Carried::Room {
            code: RoomCode::parse("ABC123").unwrap(),
            record: Some(rec),
        };
        let json = serde_json::to_string(&carried).unwrap();
        assert_eq!(serde_json::from_str::<Carried>(&json).unwrap(), carried);
    }

    #[test]
    fn the_pake_flag_round_trips_and_old_records_read_as_false() {
        let mut rec = RoomRecord::new(PeerId(7), InstanceId(3), None, 4, 99);
        let plain = serde_json::to_string(&rec).unwrap();
        assert!(!plain.contains("pake"), "{plain}");
        assert!(!serde_json::from_str::<RoomRecord>(&plain).unwrap().pake);
        rec.pake = true;
        let json = serde_json::to_string(&rec).unwrap();
        assert_eq!(serde_json::from_str::<RoomRecord>(&json).unwrap(), rec);
        let code = RoomCode::parse("ABC123").unwrap();
        assert!(matches!(
            rec.joined(code, PeerId(7)),
            ServerMessage::Joined { pake: true, .. }
        ));
        let carried = Carried::Reject {
            peer: PeerId(7),
            code,
            reason: RejectReason::TooManyAttempts,
        };
        let json = serde_json::to_string(&carried).unwrap();
        assert_eq!(serde_json::from_str::<Carried>(&json).unwrap(), carried);
    }

    #[test]
    fn notices_name_joins_leaves_and_the_new_host() {
        let a = RoomRecord::new(PeerId(1), InstanceId(0), None, 8, 1);
        let (b, _) = a.admit(PeerId(2), InstanceId(1));
        assert_eq!(
            a.notices(&b),
            vec![ServerMessage::PeerJoined {
                peer: PeerId(2),
                number: 2
            }]
        );
        let c = b.without(PeerId(1)).unwrap();
        assert_eq!(
            b.notices(&c),
            vec![
                ServerMessage::PeerLeft { peer: PeerId(1) },
                ServerMessage::HostChanged { host: PeerId(2) }
            ]
        );
        assert!(c.without(PeerId(2)).is_none());
        assert!(b.notices(&b.moved(PeerId(2), InstanceId(5))).is_empty());
    }
}
