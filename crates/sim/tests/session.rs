//! Sessions wired back to back, without faults: the behaviours a user sees.

use std::time::Duration;

use bassline_core::{BlendMode, Id, Network, Request, Value};
use bassline_sim::room::Room;
use bassline_sync::{Event, LocalOutcome, Role, Session};

fn id(s: &str) -> Id {
    Id::new(s).expect("valid id")
}

fn network() -> Network {
    let mut net = Network::new();
    net.apply(Request::AddContact {
        id: Some(id("x")),
        group: id("root"),
        name: None,
        blend: BlendMode::AcceptLast,
        value: Value::Number(0.0),
        boundary: None,
    })
    .expect("valid");
    net
}

/// The test network plus groups `a` and `b`, each with one contact (`a-inner`, `b-inner`).
fn two_groups() -> Network {
    let mut net = network();
    for g in ["a", "b"] {
        net.apply(Request::AddGroup {
            id: Some(id(g)),
            parent: id("root"),
            name: None,
            primitive: None,
        })
        .expect("valid");
        net.apply(Request::AddContact {
            id: Some(id(&format!("{g}-inner"))),
            group: id(g),
            name: None,
            blend: BlendMode::AcceptLast,
            value: Value::Number(1.0),
            boundary: None,
        })
        .expect("valid");
    }
    net
}

fn write(c: &str, v: f64) -> Request {
    Request::UpdateContent {
        contact: id(c),
        value: Value::Number(v),
    }
}

#[test]
fn a_guest_sees_its_edit_at_once_and_everyone_converges() {
    let mut room = Room::new(2, network());
    let now = room.now;
    let g = room.index(2);
    let outcome = room.peers[g]
        .handle_local(now, write("x", 5.0))
        .expect("guest can edit");
    assert!(matches!(outcome, LocalOutcome::Submitted { .. }));
    assert_eq!(
        room.value(2, "x"),
        Value::Number(5.0),
        "shown before the host answers"
    );
    assert_eq!(room.value(3, "x"), Value::Number(0.0));
    room.settle();
    for p in [1, 2, 3] {
        assert_eq!(room.value(p, "x"), Value::Number(5.0), "peer {p}");
    }
    let hashes: Vec<_> = room.peers.iter_mut().map(Session::state_hash).collect();
    assert!(hashes.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn concurrent_writes_resolve_by_last_writer_everywhere() {
    let mut room = Room::new(2, network());
    let now = room.now;
    // Both guests write before either sees the other's write: concurrent.
    let (a, b) = (room.index(2), room.index(3));
    room.peers[a]
        .handle_local(now, write("x", 10.0))
        .expect("edit");
    room.peers[b]
        .handle_local(now, write("x", 20.0))
        .expect("edit");
    room.peers[b]
        .handle_local(now, write("x", 21.0))
        .expect("edit");
    // Guest 3's writes reach the host first; guest 2's write (Lamport time 1) arrives after
    // guest 3's second write (time 2) and loses, although the host sequences it last.
    room.deliver_from(b);
    room.deliver_from(a);
    room.settle();
    for p in [1, 2, 3] {
        assert_eq!(room.value(p, "x"), Value::Number(21.0), "peer {p}");
    }
    let superseded: Vec<u64> = room
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                Event::Applied {
                    op: bassline_sync::OpId { peer: 2, .. },
                    decision: bassline_sync::Decision::Superseded { .. },
                    ..
                }
            )
        })
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(
        superseded,
        [1, 2, 3],
        "every peer decided guest 2's write the same way"
    );
}

#[test]
fn a_later_write_that_saw_the_earlier_one_always_applies() {
    let mut room = Room::new(1, network());
    let now = room.now;
    let h = room.index(1);
    room.peers[h]
        .handle_local(now, write("x", 50.0))
        .expect("edit");
    room.settle();
    let g = room.index(2);
    room.peers[g]
        .handle_local(room.now, write("x", 1.0))
        .expect("edit");
    room.settle();
    assert_eq!(room.value(1, "x"), Value::Number(1.0));
    assert_eq!(room.value(2, "x"), Value::Number(1.0));
}

#[test]
fn invalid_local_edits_are_refused_with_a_reason_and_change_nothing() {
    let mut room = Room::new(1, network());
    let g = room.index(2);
    let before = room.peers[g].state_hash();
    let err = room.peers[g]
        .handle_local(room.now, write("nope", 1.0))
        .expect_err("unknown contact");
    assert!(err.to_string().contains("nope"), "{err}");
    assert_eq!(room.peers[g].state_hash(), before);
    let h = room.index(1);
    let err = room.peers[h]
        .handle_local(room.now, write("nope", 1.0))
        .expect_err("unknown contact");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn garbage_frames_are_reported_and_change_nothing() {
    let mut room = Room::new(1, network());
    let g = room.index(2);
    let before = room.peers[g].state_hash();
    let garbage: [&[u8]; 5] = [
        b"",
        b"\x01",
        b"\x09\x00junk",
        b"\x01\x00\xff\xff\xff",
        &[1, 0x10, 0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0],
    ];
    for frame in garbage {
        room.peers[g].handle_receive(room.now, 1, bassline_sync::Channel::Reliable, frame);
    }
    let mut reports = 0;
    while let Some(e) = room.peers[g].poll_event() {
        if matches!(e, Event::PeerMisbehaved { peer: 1, .. }) {
            reports += 1;
        }
    }
    assert_eq!(reports, garbage.len());
    assert_eq!(room.peers[g].state_hash(), before);
    // The link still works afterwards.
    room.peers[g]
        .handle_local(room.now, write("x", 3.0))
        .expect("edit");
    room.settle();
    assert_eq!(room.value(1, "x"), Value::Number(3.0));
}

#[test]
fn a_guest_without_a_host_is_read_only_and_a_new_host_takes_over() {
    let mut room = Room::new(2, network());
    // The host goes away.
    let now = room.now;
    room.peers.remove(0);
    for p in &mut room.peers {
        p.handle_disconnected(now, 1);
    }
    let read_only = room.peers.iter_mut().all(|p| p.handle_local_is_refused());
    assert!(read_only, "no edits while no host exists");
    room.now += Duration::from_secs(1);
    room.settle();
    room.settle();
    let hosts: Vec<u64> = room
        .peers
        .iter()
        .filter(|p| p.role() == Role::Host)
        .map(Session::id)
        .collect();
    assert_eq!(hosts.len(), 1, "exactly one new host: {hosts:?}");
    let g = room
        .peers
        .iter()
        .position(|p| p.role() == Role::Guest)
        .expect("a guest remains");
    room.peers[g]
        .handle_local(room.now, write("x", 9.0))
        .expect("editable again");
    room.settle();
    let v: Vec<Value> = room
        .peers
        .iter()
        .map(|p| p.network().contact(&id("x")).expect("x").value.clone())
        .collect();
    assert!(v.iter().all(|x| *x == Value::Number(9.0)), "{v:?}");
}

trait Probe {
    fn handle_local_is_refused(&mut self) -> bool;
}

impl Probe for Session {
    fn handle_local_is_refused(&mut self) -> bool {
        self.is_read_only()
            && matches!(
                self.handle_local(Duration::ZERO, write("x", 1.0)),
                Err(bassline_sync::Error::ReadOnly)
            )
    }
}

#[test]
fn presence_reaches_the_other_peers() {
    let mut room = Room::new(2, network());
    let presence = bassline_sync::Presence {
        name: Some("ada".into()),
        group: Some(id("root")),
        cursor: Some((1.5, 2.0)),
        selection: vec![id("x")],
        peer: None,
    };
    let g = room.index(2);
    room.peers[g].handle_presence(room.now, presence.clone());
    room.settle();
    let mut seen: Vec<u64> = room
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Presence { peer: 2, presence: p } if *p == presence))
        .map(|(at, _)| *at)
        .collect();
    seen.sort();
    assert_eq!(seen, [1, 3]);
}

#[test]
fn a_guest_sees_its_focused_group_first_then_the_whole() {
    let net = two_groups();
    let mut host = Session::host(1, bassline_sync::Config::default(), net.clone());
    let mut guest = Session::guest(2, Some(1), bassline_sync::Config::default());
    guest.set_focus(vec![id("b")]);
    let t = std::time::Duration::ZERO;
    host.handle_connected(t, 2);
    guest.handle_connected(t, 1);
    let mut partial_seen = None;
    for _ in 0..10 {
        while let Some(tx) = guest.poll_transmit() {
            host.handle_receive(t, 2, tx.channel, &tx.frame);
        }
        while let Some(tx) = host.poll_transmit() {
            guest.handle_receive(t, 1, tx.channel, &tx.frame);
            while let Some(e) = guest.poll_event() {
                if let Event::PartialState { first } = e {
                    // What the guest shows at this moment: b whole, a as a stub.
                    let shown = guest.network();
                    assert!(guest.is_read_only());
                    partial_seen = Some((
                        first,
                        shown.contact(&id("b-inner")).is_some(),
                        shown.contact(&id("a-inner")).is_some(),
                    ));
                }
            }
        }
    }
    assert_eq!(partial_seen, Some((vec![id("b")], true, false)));
    assert!(guest.is_synced());
    assert_eq!(
        guest.network().state_hash(),
        net.state_hash(),
        "the whole state followed"
    );
}

#[test]
fn heartbeats_find_a_diverged_group_and_the_host_repairs_only_it() {
    let net = two_groups();
    let mut room = Room::new(1, net);
    room.settle();
    room.events.clear();
    let g = room.index(2);
    room.peers[g]
        .inject_divergence(write("b-inner", 99.0))
        .expect("applies locally");
    let host_hash = room.peers[0].state_hash();
    assert_ne!(room.peers[g].state_hash(), host_hash);
    // Let heartbeats run.
    for _ in 0..5 {
        room.now += std::time::Duration::from_millis(600);
        let now = room.now;
        for p in &mut room.peers {
            p.handle_timeout(now);
        }
        room.settle();
    }
    assert_eq!(room.peers[g].state_hash(), host_hash, "repaired");
    assert_eq!(room.value(2, "b-inner"), Value::Number(1.0));
    let diverged = room
        .events
        .iter()
        .any(|(p, e)| *p == 2 && matches!(e, Event::Diverged { .. }));
    assert!(diverged, "the guest reported the divergence");
    // Only group b (and nothing else) was resent.
    let repaired: Vec<Vec<String>> = room
        .events
        .iter()
        .filter_map(|(p, e)| match e {
            Event::Changes(c) if *p == 2 && !c.is_empty() => {
                Some(c.iter().map(|c| format!("{c:?}")).collect())
            }
            _ => None,
        })
        .collect();
    let touched_a = repaired.iter().flatten().any(|c| c.contains("a-inner"));
    assert!(!touched_a, "group a was not resent: {repaired:?}");
}

/// Remote mode: the server is a permanent host and its clients never stand. A client that
/// loses the server waits read-only instead of electing itself, and follows the server again
/// when the link returns; a client's claim to lead is refused.
#[test]
fn a_remote_client_waits_for_its_permanent_host_and_never_leads() {
    let mut room = Room::remote(2, network());
    let now = room.now;
    let c = room.index(2);
    room.peers[c].handle_disconnected(now, 1);
    room.peers[0].handle_disconnected(now, 2);
    for _ in 0..20 {
        room.now += Duration::from_secs(1);
        let now = room.now;
        room.peers[c].handle_timeout(now);
        room.settle();
    }
    assert_ne!(room.peers[c].role(), Role::Host, "a client never leads");
    assert!(
        room.peers[c].handle_local_is_refused(),
        "read-only meanwhile"
    );
    let now = room.now;
    room.peers[c].handle_connected(now, 1);
    room.peers[0].handle_connected(now, 2);
    room.settle();
    room.settle();
    assert_eq!(room.peers[c].current_host(), Some(1));
    assert_eq!(room.peers[0].role(), Role::Host);
    room.peers[c]
        .handle_local(room.now, write("x", 4.0))
        .expect("editable again once the server is back");
    room.settle();
    assert_eq!(room.value(1, "x"), Value::Number(4.0));
    assert_eq!(room.value(3, "x"), Value::Number(4.0));

    // A client claiming to lead: the permanent host refuses it and stays host.
    let claim = bassline_protocol::Envelope {
        id: 1,
        ts: 1,
        from: 3,
        message: bassline_protocol::Message::HostAnnounce {
            epoch: bassline_protocol::Epoch {
                number: 99,
                host: 3,
            },
            led: None,
        },
    };
    let frame = bassline_sync::Codec::default()
        .encode(&claim)
        .expect("encodes");
    let now = room.now;
    room.peers[0].handle_receive(now, 3, bassline_sync::Channel::Reliable, &frame[0]);
    room.settle();
    assert_eq!(room.peers[0].role(), Role::Host);
    assert!(
        room.events
            .iter()
            .any(|(p, e)| *p == 1 && matches!(e, Event::PeerMisbehaved { peer: 3, .. })),
        "the claim is reported"
    );
}

/// An edit that creates an item without naming it answers with the id its origin gave it,
/// at once (the editor selects the new item before the host has answered).
#[test]
fn an_edit_answers_with_the_id_it_made() {
    let mut room = Room::new(1, network());
    let now = room.now;
    let outcome = room.peers[1]
        .handle_local(
            now,
            Request::AddContact {
                id: None,
                group: id("root"),
                name: None,
                blend: BlendMode::AcceptLast,
                value: Value::Null,
                boundary: None,
            },
        )
        .expect("guest can edit");
    let LocalOutcome::Submitted { op, reply, .. } = outcome else {
        panic!("an edit is submitted: {outcome:?}");
    };
    let expected = format!("c{}-{}", op.peer, op.counter);
    assert!(
        matches!(&reply, bassline_core::Reply::Created { id } if id.as_str() == expected),
        "{reply:?}"
    );
    room.settle();
    assert!(room.peers[0].network().contact(&id(&expected)).is_some());
}

/// A lone edit goes out at once; edits that follow it closely wait for the batch window.
#[test]
fn a_lone_edit_is_broadcast_at_once_and_a_burst_is_batched() {
    let mut room = Room::new(1, network());
    room.run_for(Duration::from_secs(1));
    let now = room.now;
    room.peers[0]
        .handle_local(now, write("x", 1.0))
        .expect("host edits");
    room.deliver_from(0);
    assert_eq!(room.value(2, "x"), Value::Number(1.0), "no wait when idle");
    for v in 2..5 {
        room.peers[0]
            .handle_local(now, write("x", f64::from(v)))
            .expect("host edits");
    }
    room.deliver_from(0);
    assert_eq!(
        room.value(2, "x"),
        Value::Number(1.0),
        "a burst right after waits for the window"
    );
    room.run_for(Duration::from_millis(40));
    assert_eq!(room.value(2, "x"), Value::Number(4.0));
}

/// A host restarted from its snapshot knows what it decided: a client that sends an edit
/// again (it never saw the decision) does not get it applied twice, and its next edits go on.
#[test]
fn a_host_back_from_its_snapshot_does_not_apply_an_edit_twice() {
    let mut room = Room::new(1, network());
    let count = Request::AddContact {
        id: Some(id("once")),
        group: id("root"),
        name: None,
        blend: BlendMode::Merge,
        value: Value::Null,
        boundary: None,
    };
    let op = room.edit(2, count);
    // The host sequences it (and saves), but the guest never hears the decision.
    room.deliver_from(1);
    let saved = room.peers[0].snapshot();
    // The snapshot survives its JSON form (the server keeps it on disk).
    let json = serde_json::to_string(&saved).expect("serializes");
    let saved: bassline_sync::HostSnapshot = serde_json::from_str(&json).expect("reads back");
    let epoch_before = room.peers[0].epoch();
    room.crash(1);
    assert_eq!(
        room.peers[0].pending(),
        1,
        "the guest still waits for its edit"
    );
    let host = Session::host_from(1, Default::default(), saved).expect("the snapshot imports");
    assert!(host.epoch() > epoch_before, "a new epoch");
    let seen = room.events.len();
    room.join(host);
    room.run_for(Duration::from_secs(3));
    assert_eq!(room.hosts(), [1]);
    let guest = room.index(2);
    room.peers[guest]
        .handle_local(room.now, write("x", 8.0))
        .expect("editable again");
    room.settle();
    let contacts = room.peers[0]
        .network()
        .contacts()
        .filter(|c| c.id.as_str() == "once")
        .count();
    assert_eq!(contacts, 1);
    assert_eq!(room.value(1, "x"), Value::Number(8.0));
    assert!(room.converged());
    let twice = room.events[seen..]
        .iter()
        .filter(|(p, e)| *p == 1 && matches!(e, Event::Applied { op: o, .. } if *o == op))
        .count();
    assert_eq!(
        twice, 0,
        "the restarted host never applied the guest's edit again"
    );
    assert_eq!(
        room.decision(op),
        Some(bassline_sync::Decision::Applied),
        "the guest learns its fate"
    );
}

/// A local edit is stamped after every operation this peer has applied, even one whose
/// envelope carried an older clock than the operation itself (a host that is behind, or lies).
#[test]
fn an_edit_is_stamped_after_every_operation_it_saw() {
    use bassline_protocol::{Envelope, Message, Sequenced};
    use bassline_sync::{Channel, Codec, OpId};
    let mut room = Room::new(1, network());
    let g = room.index(2);
    let (epoch, base) = (room.peers[g].epoch(), room.peers[g].position());
    let seen = 1_000;
    let batch = Envelope {
        id: 1_000_000,
        ts: 1,
        from: 1,
        message: Message::Batch {
            epoch,
            base,
            ops: vec![Sequenced {
                seq: base.seq + 1,
                op: OpId {
                    peer: 7,
                    counter: 1,
                },
                ts: seen,
                command: write("x", 9.0).into(),
                // Guests do not check the host's batches (a legitimately elected host is
                // trusted with what it sequences).
                sig: bassline_protocol::Signature::NONE,
            }],
            keys: Vec::new(),
        },
    };
    for frame in Codec::default().encode(&batch).expect("encodes") {
        room.peers[g].handle_receive(room.now, 1, Channel::Reliable, &frame);
    }
    assert_eq!(room.value(2, "x"), Value::Number(9.0), "the batch applied");
    let outcome = room.peers[g]
        .handle_local(room.now, write("x", 1.0))
        .expect("guest can edit");
    let LocalOutcome::Submitted { ts, .. } = outcome else {
        panic!("an edit is submitted: {outcome:?}");
    };
    assert!(ts > seen, "stamped {ts}, after an operation stamped {seen}");
}

/// The digest heartbeats carry follows a local edit at once (it is cached between changes).
#[test]
fn the_digest_follows_a_local_edit() {
    let mut room = Room::new(1, network());
    let g = room.index(2);
    let before = room.peers[g].digest();
    room.peers[g]
        .handle_local(room.now, write("x", 4.0))
        .expect("guest can edit");
    let after = room.peers[g].digest();
    assert_ne!(before, after, "the edit changed the network");
    // The same network and writers reached from scratch on the host give the same digest.
    room.settle();
    assert_eq!(room.peers[g].digest(), room.peers[0].digest());
}
