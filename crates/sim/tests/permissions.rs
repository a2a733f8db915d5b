//! Permissions and hostile members, on a perfect network: what the host lets each member do,
//! and what a member who misbehaves cannot make the room do.

use std::time::Duration;

use bassline_core::{
    BlendMode, GroupDocument, Id, Network, Placement, Point, Request, StateDocument, Value,
    WireKind,
};
use bassline_protocol::{
    Codec, Command, Envelope, Epoch, Message, OpId, Permission, Permit, Position, Refusal, Refused,
    Sequenced,
};
use bassline_sim::room::Room;
use bassline_sync::{
    Channel, Config, Decision, Error, Event, Identity, Limits, LocalOutcome, Rate, Role,
};
use proptest::prelude::*;

fn id(s: &str) -> Id {
    Id::new(s).expect("valid id")
}

/// Contacts `x` (accept-last) and `y`, a wire `w1` between them, and a group `a` holding
/// `a-inner`.
fn network() -> Network {
    let mut net = Network::new();
    for c in ["x", "y"] {
        net.apply(Request::AddContact {
            id: Some(id(c)),
            group: id("root"),
            name: None,
            blend: BlendMode::AcceptLast,
            value: Value::Number(0.0),
            boundary: None,
        })
        .expect("valid");
    }
    net.apply(Request::Connect {
        id: Some(id("w1")),
        from: id("x"),
        to: id("y"),
        kind: WireKind::Directed,
    })
    .expect("valid");
    net.apply(Request::AddGroup {
        id: Some(id("a")),
        parent: id("root"),
        name: None,
        primitive: None,
    })
    .expect("valid");
    net.apply(Request::AddContact {
        id: Some(id("a-inner")),
        group: id("a"),
        name: None,
        blend: BlendMode::AcceptLast,
        value: Value::Number(1.0),
        boundary: None,
    })
    .expect("valid");
    net
}

fn write(c: &str, v: f64) -> Request {
    Request::UpdateContent {
        contact: id(c),
        value: Value::Number(v),
    }
}

fn empty_group(name: &str) -> GroupDocument {
    GroupDocument {
        id: id(name),
        name: None,
        primitive: None,
        at: None,
        contacts: Vec::new(),
        wires: Vec::new(),
        groups: Vec::new(),
    }
}

/// The request kinds, named; no wildcard, so a new kind fails to compile here until the
/// property below covers it.
fn kind(r: &Request) -> &'static str {
    match r {
        Request::RegisterGroup { .. } => "register-group",
        Request::AddGroup { .. } => "add-group",
        Request::UpdateGroup { .. } => "update-group",
        Request::RemoveGroup { .. } => "remove-group",
        Request::AddContact { .. } => "add-contact",
        Request::UpdateContact { .. } => "update-contact",
        Request::RemoveContact { .. } => "remove-contact",
        Request::UpdateContent { .. } => "update-content",
        Request::Connect { .. } => "connect",
        Request::Disconnect { .. } => "disconnect",
        Request::Place { .. } => "place",
        Request::GetGroupState { .. } => "get-group-state",
        Request::GetContact { .. } => "get-contact",
        Request::GetWire { .. } => "get-wire",
        Request::ExportState => "export-state",
        Request::ImportState { .. } => "import-state",
    }
}

const KINDS: usize = 16;

/// One request of every kind, each valid against [`network`] (so each mutation would change it),
/// with `v` and `name` varying what they write.
fn every_request(v: f64, name: &str) -> Vec<Request> {
    vec![
        Request::RegisterGroup {
            parent: id("root"),
            group: empty_group("reg"),
        },
        Request::AddGroup {
            id: Some(id("g-new")),
            parent: id("root"),
            name: Some(name.to_owned()),
            primitive: None,
        },
        Request::UpdateGroup {
            id: id("a"),
            name: Some(format!("{name}!")),
            parent: None,
        },
        Request::RemoveGroup { id: id("a") },
        Request::AddContact {
            id: Some(id("c-new")),
            group: id("root"),
            name: None,
            blend: BlendMode::Merge,
            value: Value::Number(v),
            boundary: None,
        },
        Request::UpdateContact {
            id: id("x"),
            name: Some(format!("{name}?")),
            blend: None,
        },
        Request::RemoveContact { id: id("y") },
        write("x", v),
        Request::Connect {
            id: Some(id("w-new")),
            from: id("y"),
            to: id("x"),
            kind: WireKind::Bidirectional,
        },
        Request::Disconnect { id: id("w1") },
        Request::Place {
            contacts: vec![Placement {
                id: id("x"),
                at: Some(Point { x: v as i32, y: -3 }),
            }],
            groups: Vec::new(),
        },
        Request::GetGroupState { group: id("root") },
        Request::GetContact { id: id("x") },
        Request::GetWire { id: id("w1") },
        Request::ExportState,
        Request::ImportState {
            document: StateDocument::new(empty_group("root")),
        },
    ]
}

#[test]
fn every_request_kind_is_covered() {
    let kinds: std::collections::BTreeSet<&str> =
        every_request(1.0, "n").iter().map(kind).collect();
    assert_eq!(kinds.len(), KINDS);
}

/// `from`'s submit of its edit `counter`, signed by it.
fn submit(from: u64, counter: u64, ts: u64, request: Request) -> Message {
    let command = Command::Request(request);
    let sig = Room::sign(
        from,
        OpId {
            peer: from,
            counter,
        },
        ts,
        &command,
    );
    let Command::Request(request) = command else {
        unreachable!()
    };
    Message::Submit {
        op: counter,
        ts,
        request,
        sig,
    }
}

fn frame(from: u64, message: Message) -> Vec<u8> {
    let env = Envelope {
        id: 1,
        ts: 1,
        from,
        message,
    };
    let mut frames = Codec::default().encode(&env).expect("encodes");
    frames.pop().expect("one frame")
}

/// Peer `from` sends `message` to `to` as it is (a hostile member bypassing its session).
fn inject(room: &mut Room, from: u64, to: u64, message: Message) {
    let f = frame(from, message);
    let now = room.now;
    room.peer(to)
        .handle_receive(now, from, Channel::Reliable, &f);
}

/// A room whose host (1) made guest 2 read-only; guest 3 may edit.
fn room_with_read_only_guest() -> Room {
    let mut room = Room::new(2, network());
    let now = room.now;
    room.peer(1)
        .set_permission(now, Some(2), Permission::ReadOnly)
        .expect("the host sets permissions");
    room.settle();
    assert_eq!(room.peer(2).permission(2), Permission::ReadOnly);
    room
}

/// Everything a member can send that carries a request, from `from`, as a hostile one would:
/// a submit under its own next counter, its request forwarded under another member's and the
/// host's next counters, and a permit forwarded under its own. Each is signed with the
/// member's own key: a genuine signature on its own operations, a forgery on the others'.
fn attacks(from: u64, counter: u64, request: &Request) -> Vec<Message> {
    let forward = |peer: u64, counter: u64, command: Command| Message::Batch {
        epoch: Epoch::default(),
        base: Position::default(),
        ops: vec![Sequenced {
            seq: 1,
            op: OpId { peer, counter },
            ts: 1,
            sig: Room::sign(from, OpId { peer, counter }, 1, &command),
            command,
        }],
        keys: Vec::new(),
    };
    let other = if from == 2 { 3 } else { 2 };
    vec![
        submit(from, counter, 1, request.clone()),
        forward(other, 1, request.clone().into()),
        forward(1, 2, request.clone().into()),
        forward(
            from,
            counter + 1,
            Command::Permit(Permit {
                peer: Some(from),
                permission: Permission::ReadWrite,
            }),
        ),
        Message::HostAnnounce {
            epoch: Epoch {
                number: 2,
                host: from,
            },
            led: None,
        },
        Message::Candidate {
            epoch: Epoch {
                number: 2,
                host: from,
            },
        },
    ]
}

fn read_only_guest_changes_nothing(request: Request) -> Result<(), TestCaseError> {
    let what = kind(&request);
    let mut room = room_with_read_only_guest();
    let before = room.peer(1).state_hash();
    let epoch = room.peer(1).epoch();
    // Through its own session: refused at once.
    let now = room.now;
    match room.peer(2).handle_local(now, request.clone()) {
        Err(Error::NotPermitted(Permission::ReadOnly)) => {
            prop_assert!(request.is_mutation(), "{what}: a query is answered")
        }
        Ok(LocalOutcome::Answered(_)) => {
            prop_assert!(!request.is_mutation(), "{what}: an edit is refused")
        }
        other => prop_assert!(false, "{what}: {other:?}"),
    }
    // Around it: every message that carries a request, to the host and to the other guest.
    for message in attacks(2, 1, &request) {
        for to in [1, 3] {
            inject(&mut room, 2, to, message.clone());
        }
        room.settle();
    }
    room.run_for(Duration::from_secs(3));
    prop_assert_eq!(room.hosts(), vec![1], "{}: the host still leads", what);
    prop_assert_eq!(room.peer(1).epoch(), epoch, "{}: the same epoch", what);
    prop_assert_eq!(
        room.peer(1).state_hash(),
        before,
        "{}: the network is unchanged",
        what
    );
    prop_assert_eq!(
        room.peer(1).permission(2),
        Permission::ReadOnly,
        "{}: still read-only",
        what
    );
    // The only trace is the denied submit.
    let denied = room.events.iter().any(|(p, e)| {
        *p == 1
            && matches!(e, Event::Applied { op, decision: Decision::Denied { permission: Permission::ReadOnly }, .. } if op.peer == 2)
    });
    prop_assert!(denied, "{}: the host denied the submit", what);
    prop_assert!(room.converged(), "{}: the room converged", what);
    Ok(())
}

/// The control: the same messages from a member who may edit do change the network (so the
/// property above would see a change).
#[test]
fn the_same_requests_from_a_writer_change_the_network() {
    for request in every_request(5.0, "n") {
        if !request.is_mutation() {
            continue;
        }
        let what = kind(&request);
        let mut room = room_with_read_only_guest();
        let before = room.peer(1).state_hash();
        inject(&mut room, 3, 1, submit(3, 1, 1, request));
        room.settle();
        assert_ne!(room.peer(1).state_hash(), before, "{what}");
    }
}

proptest! {
    #![proptest_config(bassline_testkit::proptest_config(64))]

    /// A read-only member cannot change the network through any request kind, whether it asks
    /// its own session, submits it, forwards it under another member's or the host's id, or
    /// forwards a permit of its own (with a claim to lead for good measure).
    #[test]
    fn a_read_only_guest_cannot_change_the_network_through_any_request(
        which in 0..KINDS,
        v in -1000.0f64..1000.0,
        name in "[a-z]{1,6}",
    ) {
        let request = every_request(v.round(), &name).swap_remove(which);
        read_only_guest_changes_nothing(request)?;
    }
}

#[test]
fn a_demoted_guest_is_read_only_and_its_edit_in_flight_is_denied() {
    let mut room = Room::new(2, network());
    let op = room.edit(2, write("x", 5.0));
    // The permit goes first: the host decides it before the edit arrives.
    let now = room.now;
    room.peer(1)
        .set_permission(now, Some(2), Permission::ReadOnly)
        .expect("host");
    room.settle();
    assert_eq!(
        room.decision(op),
        Some(Decision::Denied {
            permission: Permission::ReadOnly
        })
    );
    for p in [1, 2, 3] {
        assert_eq!(room.value(p, "x"), Value::Number(0.0), "peer {p}");
    }
    assert!(room.peer(2).is_read_only());
    let now = room.now;
    assert_eq!(
        room.peer(2).handle_local(now, write("x", 6.0)),
        Err(Error::NotPermitted(Permission::ReadOnly))
    );
    assert!(room.events.iter().any(|(p, e)| *p == 3
        && *e
            == Event::PermissionChanged {
                peer: Some(2),
                permission: Permission::ReadOnly
            }));
    // Read-write again: it edits.
    let now = room.now;
    room.peer(1)
        .set_permission(now, Some(2), Permission::ReadWrite)
        .expect("host");
    room.settle();
    assert!(!room.peer(2).is_read_only());
    let op = room.edit(2, write("x", 7.0));
    room.settle();
    assert_eq!(room.decision(op), Some(Decision::Applied));
    assert!(room.converged());
}

#[test]
fn only_the_host_changes_permissions_and_never_its_own() {
    let mut room = Room::new(2, network());
    let now = room.now;
    assert_eq!(
        room.peer(2)
            .set_permission(now, Some(3), Permission::ReadOnly),
        Err(Error::NotHost)
    );
    assert_eq!(
        room.peer(1)
            .set_permission(now, Some(1), Permission::ReadOnly),
        Err(Error::InvalidPermit)
    );
    assert_eq!(
        room.peer(1).set_permission(now, None, Permission::Removed),
        Err(Error::InvalidPermit)
    );
    // Everyone read-only by default: the host still edits.
    room.peer(1)
        .set_permission(now, None, Permission::ReadOnly)
        .expect("host");
    room.settle();
    assert_eq!(room.peer(3).permission(1), Permission::ReadWrite);
    assert_eq!(room.peer(3).permission(2), Permission::ReadOnly);
    assert_eq!(room.peer(3).permission(99), Permission::ReadOnly);
    room.edit(1, write("x", 3.0));
    room.settle();
    assert_eq!(room.value(3, "x"), Value::Number(3.0));
    // A permit forwarded under a guest's id is refused by every peer alike.
    inject(
        &mut room,
        2,
        1,
        Message::Batch {
            epoch: Epoch::default(),
            base: Position::default(),
            ops: vec![Sequenced {
                seq: 1,
                op: OpId {
                    peer: 3,
                    counter: 1,
                },
                ts: 1,
                command: Command::Permit(Permit {
                    peer: None,
                    permission: Permission::ReadWrite,
                }),
                sig: bassline_protocol::Signature::NONE,
            }],
            keys: Vec::new(),
        },
    );
    room.settle();
    assert_eq!(room.peer(1).permission(2), Permission::ReadOnly);
    assert!(room.converged());
}

#[test]
fn a_read_only_member_never_leads() {
    let mut room = Room::new(3, network());
    let now = room.now;
    // Peer 2 would win the election (lowest id at the same position).
    room.peer(1)
        .set_permission(now, Some(2), Permission::ReadOnly)
        .expect("host");
    // Heartbeats tell everyone where the others stand.
    room.run_for(Duration::from_secs(1));
    room.crash(1);
    room.run_for(Duration::from_secs(10));
    assert_eq!(room.hosts(), vec![3]);
    assert_eq!(room.peer(2).current_host(), Some(3));
    assert_eq!(
        room.peer(3).permission(2),
        Permission::ReadOnly,
        "the table survives"
    );
    let now = room.now;
    assert!(room.peer(2).handle_local(now, write("x", 1.0)).is_err());
}

#[test]
fn nobody_leads_when_only_read_only_members_are_left() {
    let mut room = Room::new(2, network());
    let now = room.now;
    room.peer(1)
        .set_permission(now, None, Permission::ReadOnly)
        .expect("host");
    room.settle();
    room.crash(1);
    room.run_for(Duration::from_secs(10));
    assert!(room.hosts().is_empty());
}

#[test]
fn a_removed_member_is_served_nothing_until_taken_back() {
    let mut room = Room::new(2, network());
    let now = room.now;
    room.peer(1)
        .set_permission(now, Some(3), Permission::Removed)
        .expect("host");
    room.settle();
    room.edit(1, write("x", 4.0));
    room.settle();
    assert_eq!(room.value(3, "x"), Value::Number(0.0), "no more batches");
    // It asks again (a new link): refused.
    room.cut_link(1, 3);
    room.heal_link(1, 3);
    room.settle();
    assert!(room.events.iter().any(|(p, e)| *p == 3
        && matches!(
            e,
            Event::Refused {
                request: Refused::StateRequest,
                reason: Refusal::Removed,
                ..
            }
        )));
    assert!(!room.peer(3).is_synced());
    assert!(
        !room
            .events
            .iter()
            .any(|(p, e)| *p == 1 && matches!(e, Event::PeerMisbehaved { .. })),
        "a removed member asking is not misbehaving"
    );
    // Taken back: served at its next try.
    let now = room.now;
    room.peer(1)
        .set_permission(now, Some(3), Permission::ReadWrite)
        .expect("host");
    room.run_for(Duration::from_secs(8));
    assert!(room.peer(3).is_synced());
    assert_eq!(room.value(3, "x"), Value::Number(4.0));
    assert!(room.converged());
}

fn limited(limits: Limits) -> Config {
    Config {
        limits,
        ..Config::default()
    }
}

#[test]
fn a_flood_of_submits_is_refused_and_the_edits_go_again_after_the_wait() {
    let config = limited(Limits {
        submits: Rate {
            per_second: 10,
            burst: 5,
        },
        ..Limits::default()
    });
    let mut room = Room::with_config(1, network(), config);
    let ops: Vec<OpId> = (0..20)
        .map(|i| room.edit(2, write("x", i as f64)))
        .collect();
    room.run_for(Duration::from_secs(5));
    assert!(
        room.events
            .iter()
            .any(|(p, e)| *p == 1 && matches!(e, Event::PeerMisbehaved { peer: 2, .. }))
    );
    assert!(room.events.iter().any(|(p, e)| *p == 2
        && matches!(
            e,
            Event::Refused {
                reason: Refusal::RateLimited { .. },
                ..
            }
        )));
    for op in ops {
        assert_eq!(
            room.decision(op),
            Some(Decision::Applied),
            "{op:?}: nothing lost"
        );
    }
    assert_eq!(room.value(1, "x"), Value::Number(19.0));
    assert!(room.converged());
}

#[test]
fn state_requests_and_divergence_reports_beyond_the_limit_are_refused() {
    let config = limited(Limits {
        state_requests: Rate {
            per_second: 1,
            burst: 2,
        },
        hash_mismatches: Rate {
            per_second: 1,
            burst: 2,
        },
        ..Limits::default()
    });
    let mut room = Room::with_config(1, network(), config);
    room.events.clear();
    for _ in 0..5 {
        inject(
            &mut room,
            2,
            1,
            Message::StateRequest {
                have: None,
                first: Vec::new(),
                key: None,
            },
        );
        inject(
            &mut room,
            2,
            1,
            Message::HashMismatch {
                position: Position::default(),
                groups: Vec::new(),
            },
        );
    }
    let refused = |room: &mut Room| {
        let mut kinds = Vec::new();
        while let Some(tx) = room.peer(1).poll_transmit() {
            let env = bassline_protocol::Reassembler::new(Codec::default())
                .push(&tx.frame)
                .expect("decodes");
            if let Some(Envelope {
                message: Message::Refused { request, reason },
                ..
            }) = env
            {
                kinds.push((request, reason));
            }
        }
        kinds
    };
    let got = refused(&mut room);
    let count = |r: Refused| got.iter().filter(|(q, _)| *q == r).count();
    // Joining took a state request already.
    assert!(count(Refused::StateRequest) >= 3, "{got:?}");
    assert_eq!(count(Refused::HashMismatch), 3, "{got:?}");
    assert!(
        got.iter().all(
            |(_, reason)| matches!(reason, Refusal::RateLimited { retry_ms } if *retry_ms > 0)
        )
    );
    // A second later there is a token again.
    room.now += Duration::from_secs(1);
    inject(
        &mut room,
        2,
        1,
        Message::StateRequest {
            have: None,
            first: Vec::new(),
            key: None,
        },
    );
    assert!(refused(&mut room).is_empty());
}

#[test]
fn an_edit_over_the_size_limit_is_refused_before_it_is_shown_and_by_the_host() {
    let config = limited(Limits {
        max_submit_bytes: 130,
        ..Limits::default()
    });
    let mut room = Room::with_config(1, network(), config);
    let big = Request::UpdateContent {
        contact: id("x"),
        value: Value::from("z".repeat(200)),
    };
    let now = room.now;
    assert!(matches!(
        room.peer(2).handle_local(now, big.clone()),
        Err(Error::TooLarge { max: 130, .. })
    ));
    assert_eq!(room.value(2, "x"), Value::Number(0.0), "not shown");
    let before = room.peer(1).state_hash();
    inject(&mut room, 2, 1, submit(2, 1, 1, big));
    room.settle();
    assert_eq!(room.peer(1).state_hash(), before);
    assert!(room.events.iter().any(|(p, e)| *p == 2
        && matches!(
            e,
            Event::Refused {
                request: Refused::Submit { op: 1 },
                reason: Refusal::TooLarge { max: 130, .. },
                ..
            }
        )));
    // The guest's next edit, within the limit, still goes through.
    let op = room.edit(2, write("x", 2.0));
    room.settle();
    assert_eq!(room.decision(op), Some(Decision::Applied));
}

#[test]
fn the_digest_covers_permissions() {
    let mut room = Room::new(1, network());
    let before = room.peer(2).digest();
    let now = room.now;
    room.peer(1)
        .set_permission(now, Some(2), Permission::ReadOnly)
        .expect("host");
    room.settle();
    let after = room.peer(2).digest();
    assert_ne!(before, after);
    assert_eq!(room.peer(1).digest(), after);
}

/// Host 1 and guests 2..4, split into {1, 2} and {3, 4}, long enough for 3 to lead its side.
fn split_with_a_host_on_each_side() -> Room {
    let mut room = Room::new(3, network());
    room.partition(&[3, 4]);
    room.run_for(Duration::from_secs(8));
    assert_eq!(room.peer(3).role(), Role::Host, "3 leads the other side");
    room
}

/// Across a partition, the host of one side made a member read-only while that member led the
/// other side. When they meet, the member's side ranks higher, but the host's lineage does not
/// let it lead: the host takes a newer epoch and everyone follows it.
#[test]
fn a_host_outranked_by_a_member_it_demoted_takes_a_newer_epoch() {
    let mut room = split_with_a_host_on_each_side();
    let now = room.now;
    room.peer(1)
        .set_permission(now, Some(3), Permission::ReadOnly)
        .expect("host");
    room.settle();
    room.heal_all();
    room.run_for(Duration::from_secs(10));
    assert_eq!(room.hosts(), vec![1]);
    for p in [2, 3, 4] {
        assert_eq!(room.peer(p).current_host(), Some(1), "peer {p}");
        assert_eq!(room.peer(p).permission(3), Permission::ReadOnly, "peer {p}");
    }
    assert!(room.converged());
}

/// Across a partition each side's host made the other side's host read-only. When they meet,
/// each lineage refuses the other's host, so each would take an epoch above the other for ever
/// (found by seed 6077 of the long simulator run): the second time, the host with the higher id
/// follows the other, and the room ends with one host and one state.
#[test]
fn two_hosts_that_demoted_each_other_end_with_one_host() {
    let mut room = split_with_a_host_on_each_side();
    let now = room.now;
    room.peer(1)
        .set_permission(now, Some(3), Permission::ReadOnly)
        .expect("host");
    room.peer(3)
        .set_permission(now, Some(1), Permission::ReadOnly)
        .expect("host");
    room.settle();
    room.heal_all();
    room.run_for(Duration::from_secs(20));
    let hosts = room.hosts();
    assert_eq!(hosts.len(), 1, "one host: {hosts:?}");
    let host = hosts[0];
    for p in [1, 2, 3, 4] {
        assert_eq!(room.peer(p).current_host(), Some(host), "peer {p}");
    }
    assert!(room.converged());
}

#[test]
fn a_member_who_joins_later_gets_the_permissions_with_the_state() {
    let mut room = Room::new(1, network());
    let now = room.now;
    room.peer(1)
        .set_permission(now, None, Permission::ReadOnly)
        .expect("host");
    room.peer(1)
        .set_permission(now, Some(2), Permission::ReadWrite)
        .expect("host");
    room.settle();
    room.join(bassline_sync::Session::guest(
        3,
        Some(1),
        Room::as_peer(3, Config::default()),
    ));
    room.settle();
    assert!(room.peer(3).is_synced());
    let host_table = room.peer(1).permissions().clone();
    assert_eq!(*room.peer(3).permissions(), host_table);
    assert_eq!(room.peer(3).permission(3), Permission::ReadOnly);
    assert_eq!(room.peer(3).permission(2), Permission::ReadWrite);
    assert!(room.peer(3).is_read_only());
    let host_digest = room.peer(1).digest();
    assert_eq!(room.peer(3).digest(), host_digest);
}

#[test]
fn a_repair_restores_the_permissions() {
    let mut room = Room::new(2, network());
    room.peer(2)
        .inject_divergence_of_permissions(3, Permission::ReadOnly);
    room.run_for(Duration::from_secs(4));
    assert!(
        room.events
            .iter()
            .any(|(p, e)| *p == 2 && matches!(e, Event::Diverged { .. }))
    );
    assert_eq!(room.peer(2).permission(3), Permission::ReadWrite);
    let host_digest = room.peer(1).digest();
    assert_eq!(room.peer(2).digest(), host_digest);
}

// ---- signed operations ---------------------------------------------------------------------

/// Every message that claims another member's operation, from a member who may edit (what a
/// read-only one cannot do either, see above): forwarded under another guest's next counter
/// and under the host's, a permit under the other guest's id, and a submit signed with a key
/// that is not the sender's. Each is refused with `PeerMisbehaved`, nothing changes, and the
/// victim's own next edit (the counter the forgery claimed) is applied.
#[test]
fn a_writer_cannot_forge_another_members_operations() {
    let mut room = Room::new(2, network());
    let before = room.peer(1).state_hash();
    let forged = |peer: u64, counter: u64, command: Command| Message::Batch {
        epoch: Epoch::default(),
        base: Position::default(),
        ops: vec![Sequenced {
            seq: 1,
            op: OpId { peer, counter },
            ts: 1,
            // Signed by 3, the sender: the only key it holds.
            sig: Room::sign(3, OpId { peer, counter }, 1, &command),
            command,
        }],
        // And it claims that key is the victim's.
        keys: vec![(peer, Room::identity(3).public_key())],
    };
    let mut not_own = submit(3, 1, 1, write("x", 6.0));
    if let Message::Submit { sig, .. } = &mut not_own {
        // Guest 2's key over guest 3's edit.
        *sig = Room::sign(
            2,
            OpId {
                peer: 3,
                counter: 1,
            },
            1,
            &Command::Request(write("x", 6.0)),
        );
    }
    let attacks = [
        forged(2, 1, write("x", 7.0).into()),
        forged(1, 1, write("x", 8.0).into()),
        forged(
            2,
            1,
            Command::Permit(Permit {
                peer: Some(2),
                permission: Permission::Removed,
            }),
        ),
        not_own,
    ];
    for (i, attack) in attacks.into_iter().enumerate() {
        room.events.clear();
        inject(&mut room, 3, 1, attack);
        room.settle();
        assert!(
            room.events
                .iter()
                .any(|(p, e)| *p == 1 && matches!(e, Event::PeerMisbehaved { peer: 3, .. })),
            "attack {i}: the host reports the forger"
        );
        assert_eq!(
            room.peer(1).state_hash(),
            before,
            "attack {i}: nothing changed"
        );
    }
    let op = room.edit(2, write("x", 9.0));
    room.settle();
    assert_eq!(op.counter, 1, "the victim's counter the forgeries claimed");
    assert_eq!(room.decision(op), Some(Decision::Applied));
    assert_eq!(room.value(3, "x"), Value::Number(9.0));
    assert!(room.converged());
}

/// A member's key is the first one the host learned for it: presenting another key later
/// (a peer that would take over a member's id) is reported, and edits signed with it are not
/// taken, while the member's own edits still are.
#[test]
fn a_members_key_is_never_replaced() {
    let mut room = Room::new(2, network());
    room.events.clear();
    let other = Room::identity(99).public_key();
    inject(
        &mut room,
        2,
        1,
        Message::StateRequest {
            have: None,
            first: Vec::new(),
            key: Some(other),
        },
    );
    room.settle();
    assert!(
        room.events
            .iter()
            .any(|(p, e)| *p == 1 && matches!(e, Event::PeerMisbehaved { peer: 2, .. }))
    );
    assert_eq!(room.peer(1).key_of(2), Some(Room::identity(2).public_key()));
    assert_eq!(room.peer(3).key_of(2), Some(Room::identity(2).public_key()));
    // An edit signed by the would-be key is not taken; the member's own is.
    let before = room.peer(1).state_hash();
    let op = OpId {
        peer: 2,
        counter: 1,
    };
    let command = Command::Request(write("x", 5.0));
    inject(
        &mut room,
        2,
        1,
        Message::Submit {
            op: 1,
            ts: 1,
            request: write("x", 5.0),
            sig: Room::sign(99, op, 1, &command),
        },
    );
    room.settle();
    assert_eq!(room.peer(1).state_hash(), before);
    let op = room.edit(2, write("x", 4.0));
    room.settle();
    assert_eq!(room.decision(op), Some(Decision::Applied));
    assert!(room.converged());
}
