//! A hostile peer: a member of the room that sends validly encoded but malicious frames (and
//! some garbage). Frames that could only be malicious must be refused with `PeerMisbehaved`;
//! the rest must change nothing an honest peer relies on (the oracle checks the outcome).

use bassline_core::{Id, Request, StateHash, Value};
use bassline_protocol::{
    Codec, Command, Envelope, Epoch, Message, OpId, PeerId, Position, PublicKey, Sequenced,
    Signature, Vouch, vouch_bytes,
};
use bassline_sync::{Channel, Identity};

use crate::{Rng, identity::SimIdentity};

/// The hostile member's own signature over an operation (valid only for ops under its id).
fn sign(id: &SimIdentity, op: OpId, ts: u64, command: &Command) -> Signature {
    id.sign(&bassline_protocol::signed_bytes(op, ts, command).expect("hostile ops encode"))
}

const NEAR_MAX: u64 = u64::MAX - 3;

/// Whether a receiver must refuse a malicious frame (report the sender).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refuse {
    Always,
    /// Only a host acts on it (a batch of operations to sequence), and only from a member who
    /// may edit (a read-only member's
    /// forwarded operations are ignored without a report: it may just not know yet).
    IfHostAndWriter,
    /// The first frame of a flood of submits: the receiver, if host, must refuse part of it
    /// by the last one.
    FloodStart,
    FloodEnd,
    /// A claim to lead: the receiver must not follow the sender.
    NotFollowed,
    /// A claim to lead with no follower's word that holds: a receiver settled under a host
    /// (leading with followers, or following a live host) must not follow the sender.
    NotFollowedIfSettled,
    /// It is ignored, or it is a member's plain edit.
    No,
}

/// One malicious message from `me` to `to` (the current host is `host`, as an attacker who
/// watches the room would know): its frames, whether it must be refused, and what it was.
pub fn frame(
    me: PeerId,
    host: Option<PeerId>,
    id: &SimIdentity,
    r: &mut Rng,
) -> (Vec<(Channel, Vec<u8>)>, Refuse, String) {
    let env = |ts: u64, message: Message| Envelope {
        id: r_id(ts),
        ts,
        from: me,
        message,
    };
    let update = |contact: &str| Request::UpdateContent {
        contact: Id::new(contact).expect("valid id"),
        value: Value::from("hostile"),
    };
    let (message, must_refuse, note) = match r.below(9) {
        0 => {
            // A frame header (this version, no flags: not a chunk) over random bytes.
            let mut garbage = vec![bassline_protocol::VERSION, 0];
            garbage.extend((0..r.range(0, 40)).map(|_| r.below(256) as u8));
            return (
                vec![(Channel::Reliable, garbage)],
                Refuse::Always,
                "garbage bytes".into(),
            );
        }
        1 => (
            env(
                NEAR_MAX,
                Message::Submit {
                    op: 1,
                    ts: NEAR_MAX,
                    request: update("hot0"),
                    sig: Signature::NONE,
                },
            ),
            Refuse::Always,
            "an edit stamped near the end of time".into(),
        ),
        2 => (
            env(
                1,
                Message::HostAnnounce {
                    epoch: Epoch {
                        number: NEAR_MAX,
                        host: me,
                    },
                    led: None,
                },
            ),
            Refuse::Always,
            "a host announcement for an epoch near u64::MAX".into(),
        ),
        3 => (
            env(
                1,
                Message::Candidate {
                    epoch: Epoch {
                        number: NEAR_MAX,
                        host: me,
                    },
                },
            ),
            Refuse::Always,
            "a candidate for an epoch near u64::MAX".into(),
        ),
        4 => (
            env(
                1,
                Message::Heartbeat {
                    position: Position::default(),
                    hash: StateHash([0; 32]),
                    host: Some(me),
                    epoch: Epoch {
                        number: NEAR_MAX,
                        host: me,
                    },
                    vouch: None,
                },
            ),
            Refuse::Always,
            "a heartbeat following an epoch near u64::MAX".into(),
        ),
        5 => (
            // Forged operations in a batch to the host: one of the host's own that it never
            // made, and one far beyond its origin's next counter.
            env(
                1,
                Message::Batch {
                    epoch: Epoch::default(),
                    base: Position::default(),
                    ops: vec![Sequenced {
                        seq: 1,
                        op: if r.chance(0.5)
                            && let Some(host) = host
                        {
                            OpId {
                                peer: host,
                                counter: u64::MAX - 1,
                            }
                        } else {
                            OpId {
                                peer: 1,
                                counter: 1 << 41,
                            }
                        },
                        ts: 1,
                        command: update("hot1").into(),
                        sig: Signature::NONE,
                    }],
                    keys: Vec::new(),
                },
            ),
            Refuse::IfHostAndWriter,
            "forged operation ids in a batch".into(),
        ),
        6 => (
            // A repair nobody asked for, from a peer that is not the host: ignored.
            env(
                1,
                Message::Repair {
                    position: Position::default(),
                    groups: Vec::new(),
                    remove: vec![Id::new("sum").expect("valid id")],
                    writers: Vec::new(),
                    permissions: Default::default(),
                    keys: Vec::new(),
                },
            ),
            Refuse::No,
            "a repair nobody asked for".into(),
        ),
        7 => (
            // Claims to be someone else.
            Envelope {
                id: 1,
                ts: 1,
                from: host.unwrap_or(1),
                message: Message::Presence(Default::default()),
            },
            Refuse::Always,
            "an envelope claiming another sender".into(),
        ),
        _ => (
            // A batch "from the host" sent by a peer that is not the host: ignored by guests; a
            // host takes its operation as this member's edit (it is a well-formed one).
            env(
                1,
                Message::Batch {
                    epoch: Epoch {
                        number: 1,
                        host: me,
                    },
                    base: Position::default(),
                    ops: vec![{
                        let (op, ts, request) = plain_edit(me);
                        let command: Command = request.into();
                        Sequenced {
                            seq: 1,
                            op,
                            ts,
                            sig: sign(id, op, ts, &command),
                            command,
                        }
                    }],
                    // Its own key, for a host that has none for it yet.
                    keys: vec![(me, id.public_key())],
                },
            ),
            Refuse::No,
            "a batch from a peer that is not the host".into(),
        ),
    };
    let _ = r.next_u64();
    let frames = Codec::default()
        .encode(&message)
        .expect("hostile messages encode")
        .into_iter()
        .map(|f| (Channel::Reliable, f))
        .collect();
    (frames, must_refuse, note)
}

fn encode(message: Envelope) -> Vec<(Channel, Vec<u8>)> {
    Codec::default()
        .encode(&message)
        .expect("hostile messages encode")
        .into_iter()
        .map(|f| (Channel::Reliable, f))
        .collect()
}

/// A claim to lead the epoch after the receiver's (`epoch`), with followers, by a member no
/// election chose and nobody follows. Its evidence of followers is missing, its own word, a
/// member's word signed with its own key, or a member's word that does not hold (`victim`: a
/// member whose key the receiver knows). It must move no peer that is settled under a host; a
/// read-only member's claim moves nobody but a peer with nobody else to follow.
pub fn false_announce(
    me: PeerId,
    id: &SimIdentity,
    epoch: Epoch,
    writer: bool,
    victim: Option<(PeerId, PublicKey)>,
    r: &mut Rng,
) -> (Vec<(Channel, Vec<u8>)>, Refuse, String) {
    let claimed = Epoch {
        number: epoch.number + 1,
        host: me,
    };
    let (led, evidence) = match (r.below(4), victim) {
        (0, _) => (None, "no word of any follower"),
        (1, _) | (_, None) => (
            Some(Vouch {
                by: me,
                number: claimed.number,
                key: id.public_key(),
                sig: id.sign(&vouch_bytes(me, claimed)),
            }),
            "its own word as a follower",
        ),
        (2, Some((v, _))) => (
            Some(Vouch {
                by: v,
                number: claimed.number,
                key: id.public_key(),
                sig: id.sign(&vouch_bytes(v, claimed)),
            }),
            "a member's word signed with its own key",
        ),
        (_, Some((v, key))) => (
            Some(Vouch {
                by: v,
                number: claimed.number,
                key,
                sig: id.sign(&vouch_bytes(v, claimed)),
            }),
            "a member's word it forged",
        ),
    };
    let message = Envelope {
        id: 1,
        ts: 1,
        from: me,
        message: Message::HostAnnounce {
            epoch: claimed,
            led,
        },
    };
    let who = if writer {
        "a member who may edit"
    } else {
        "a read-only member"
    };
    (
        encode(message),
        if writer {
            Refuse::NotFollowedIfSettled
        } else {
            Refuse::NotFollowed
        },
        format!("a claim to lead the next epoch by {who} nobody follows, with {evidence}"),
    )
}

/// Another member's next edit, forwarded as if from a lineage that lost: signed with the
/// hostile member's own key (it has no other), which the batch claims is the victim's.
/// `refuse`: what the receiver must do (a host that knows the victim's key refuses it when
/// the forwarder may edit; a read-only forwarder's is dropped without a report).
pub fn forged_forward(
    me: PeerId,
    id: &SimIdentity,
    victim: PeerId,
    counter: u64,
    writer: bool,
) -> (Vec<(Channel, Vec<u8>)>, Refuse, String) {
    let op = OpId {
        peer: victim,
        counter,
    };
    let command: Command = Request::UpdateContent {
        contact: Id::new("hot1").expect("valid id"),
        value: Value::from("forged"),
    }
    .into();
    let message = Envelope {
        id: 1,
        ts: 1,
        from: me,
        message: Message::Batch {
            epoch: Epoch::default(),
            base: Position::default(),
            ops: vec![Sequenced {
                seq: 1,
                op,
                ts: 1,
                sig: sign(id, op, 1, &command),
                command,
            }],
            keys: vec![(victim, id.public_key())],
        },
    };
    let who = if writer {
        "a member who may edit"
    } else {
        "a read-only member"
    };
    (
        encode(message),
        if writer {
            Refuse::IfHostAndWriter
        } else {
            Refuse::No
        },
        format!("peer {victim}'s next edit ({counter}) forged by {who}"),
    )
}

/// The hostile member's state request, presenting its own key (as any member does before
/// editing), so the host takes its signed submits.
pub fn present_key(me: PeerId, id: &SimIdentity) -> Vec<u8> {
    let message = Envelope {
        id: 1,
        ts: 1,
        from: me,
        message: Message::StateRequest {
            have: None,
            first: Vec::new(),
            key: Some(id.public_key()),
        },
    };
    let mut frames = Codec::default()
        .encode(&message)
        .expect("hostile messages encode");
    frames.pop().expect("a state request is one frame")
}

/// `n` edits of the hostile member's own, in order, in a counter block nothing else uses.
pub fn flood(me: PeerId, n: u64) -> Vec<(OpId, u64, Request)> {
    (1..=n)
        .map(|i| {
            (
                OpId {
                    peer: me,
                    counter: (1 << 32) + i,
                },
                1 + i,
                Request::UpdateContent {
                    contact: Id::new("hot3").expect("valid id"),
                    value: Value::Number(i as f64),
                },
            )
        })
        .collect()
}

/// One submit of the hostile member's (one whole frame).
pub fn submit_frame(me: PeerId, id: &SimIdentity, op: OpId, ts: u64, request: Request) -> Vec<u8> {
    let command: Command = request.into();
    let sig = sign(id, op, ts, &command);
    let Command::Request(request) = command else {
        unreachable!("made from a request")
    };
    let message = Envelope {
        // Low ids, so the member's later heartbeats are not taken for stale ones.
        id: 1,
        ts,
        from: me,
        message: Message::Submit {
            op: op.counter,
            ts,
            request,
            sig,
        },
    };
    let mut frames = Codec::default()
        .encode(&message)
        .expect("hostile messages encode");
    frames.pop().expect("a small submit is one frame")
}

/// The hostile member's one well-formed edit.
pub fn plain_edit(me: PeerId) -> (OpId, u64, Request) {
    (
        OpId {
            peer: me,
            counter: 1,
        },
        1,
        Request::UpdateContent {
            contact: Id::new("hot3").expect("valid id"),
            value: Value::from("hostile"),
        },
    )
}

fn r_id(ts: u64) -> u64 {
    ts % 1000 + 1
}
