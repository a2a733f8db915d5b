//! One scenario per finding of the sync engine's review (issue 7), each written as the steps
//! that showed it. Every scenario runs twice: as the engine is now (it must pass) and with the
//! old behaviour planted back as a `Fault` (it must fail, for the reason the finding gives).

use std::time::Duration;

use bassline_core::{BlendMode, Id, Network, Request, Value};
use bassline_protocol::{Envelope, Epoch, Message, OpId, Position, Sequenced};
use bassline_sim::room::Room;
use bassline_sync::{Channel, Codec, Config, Decision, Event, Fault, Identity, Role, Session};

type Outcome = Result<(), String>;

fn id(s: &str) -> Id {
    Id::new(s).expect("valid id")
}

fn config(fault: Option<Fault>) -> Config {
    Config {
        fault,
        ..Config::default()
    }
}

fn contact(c: &str, blend: BlendMode, value: Value) -> Request {
    Request::AddContact {
        id: Some(id(c)),
        group: id("root"),
        name: None,
        blend,
        value,
        boundary: None,
    }
}

fn network(contacts: &[(&str, BlendMode)]) -> Network {
    let mut net = Network::new();
    for (c, blend) in contacts {
        let value = match blend {
            BlendMode::AcceptLast => Value::Number(0.0),
            BlendMode::Merge => Value::Null,
        };
        net.apply(contact(c, *blend, value)).expect("valid contact");
    }
    net
}

fn write(c: &str, v: Value) -> Request {
    Request::UpdateContent {
        contact: id(c),
        value: v,
    }
}

fn n(x: f64) -> Value {
    Value::Number(x)
}

/// Every peer sees `value` in contact `c`.
fn everyone_sees(room: &Room, c: &str, value: &Value) -> Outcome {
    for p in &room.peers {
        let got = p.network().contact(&id(c)).map(|c| c.value.clone());
        if got.as_ref() != Some(value) {
            return Err(format!("peer {} sees {c} = {got:?}, not {value:?}", p.id()));
        }
    }
    Ok(())
}

fn check(scenario: fn(Option<Fault>) -> Outcome, fault: Fault) {
    scenario(None).expect("passes as the engine is");
    let planted = scenario(Some(fault));
    assert!(
        planted.is_err(),
        "{} planted, the scenario should fail",
        fault.name()
    );
}

// ---- merge contacts ---------------------------------------------------------------------

/// Two guests write {1} and {2} to the same merge contact at the same time: every peer ends
/// with {1, 2}. (Found: every peer ended with {2}: last-writer-wins was applied to merge
/// contacts too.)
fn merge_contacts_join_concurrent_writes(fault: Option<Fault>) -> Outcome {
    let net = network(&[("m", BlendMode::Merge), ("x", BlendMode::AcceptLast)]);
    let mut room = Room::with_config(2, net, config(fault));
    // Peer 2's clock runs ahead (three edits of its own), so by last-writer-wins its write
    // would beat peer 3's concurrent one.
    for v in 1..=3 {
        room.edit(2, write("x", n(f64::from(v))));
    }
    room.edit(2, write("m", Value::grow_set([n(1.0)])));
    room.edit(3, write("m", Value::grow_set([n(2.0)])));
    room.settle();
    everyone_sees(&room, "m", &Value::grow_set([n(1.0), n(2.0)]))
}

#[test]
fn concurrent_writes_to_a_merge_contact_are_joined_not_superseded() {
    check(
        merge_contacts_join_concurrent_writes,
        Fault::LwwIgnoresBlend,
    );
}

// ---- ids --------------------------------------------------------------------------------

/// A guest adds a contact without an id and writes to it before the host answers, while the
/// host adds one of its own: every replica creates the same items, and the write lands on the
/// guest's contact. (Found: the origin created `c2`, every other peer `c1`.)
fn ids_are_made_at_the_origin(fault: Option<Fault>) -> Outcome {
    let mut room = Room::with_config(1, network(&[("x", BlendMode::AcceptLast)]), config(fault));
    let before: Vec<Id> = room
        .peer(2)
        .network()
        .contacts()
        .map(|c| c.id.clone())
        .collect();
    room.edit(
        2,
        Request::AddContact {
            id: None,
            group: id("root"),
            name: None,
            blend: BlendMode::AcceptLast,
            value: Value::Null,
            boundary: None,
        },
    );
    let made = room
        .peer(2)
        .network()
        .contacts()
        .map(|c| c.id.clone())
        .find(|c| !before.contains(c))
        .ok_or("the guest shows no new contact")?;
    room.edit(2, write(made.as_str(), n(7.0)));
    room.edit(
        1,
        Request::AddContact {
            id: None,
            group: id("root"),
            name: None,
            blend: BlendMode::AcceptLast,
            value: Value::Null,
            boundary: None,
        },
    );
    room.settle();
    if !room.converged() {
        return Err("the replicas differ".into());
    }
    everyone_sees(&room, made.as_str(), &n(7.0))
}

#[test]
fn ids_left_out_are_made_at_the_origin_so_every_replica_creates_the_same_item() {
    check(ids_are_made_at_the_origin, Fault::NoIdAssignment);
}

// ---- a peer back under its id ---------------------------------------------------------

/// A guest that made edits restarts under the same id (a new session that does not know its
/// old counter) and edits again: the new edits are decided, not taken for re-sends. (Found:
/// the host dropped them without any event.)
fn a_restarted_peer_keeps_its_new_edits(fault: Option<Fault>) -> Outcome {
    let mut room = Room::with_config(2, network(&[("x", BlendMode::AcceptLast)]), config(fault));
    for v in 1..=3 {
        room.edit(2, write("x", n(f64::from(v))));
    }
    room.settle();
    room.crash(2);
    room.run_for(Duration::from_millis(200));
    room.join(Session::guest(2, Some(1), Room::as_peer(2, config(fault))));
    room.settle();
    let op = room.edit(2, write("x", n(9.0)));
    room.run_for(Duration::from_secs(1));
    everyone_sees(&room, "x", &n(9.0))?;
    match room.decision(op) {
        Some(Decision::Applied) => Ok(()),
        other => Err(format!("the restarted peer was told {other:?}")),
    }
}

#[test]
fn a_peer_back_under_its_id_goes_on_with_fresh_counters() {
    check(a_restarted_peer_keeps_its_new_edits, Fault::CounterRestarts);
}

// ---- pending edits across a host change ---------------------------------------------------

/// The host dies before it sequences a guest's edit; another peer takes over: the edit is
/// sent to it and decided. (Planted: a guest that clears its pending edits when it re-sends
/// them to a new host.)
fn pending_edits_reach_the_new_host(fault: Option<Fault>) -> Outcome {
    let mut room = Room::with_config(2, network(&[("x", BlendMode::AcceptLast)]), config(fault));
    // Peer 3 edits; the host dies before anything is delivered. Peer 2 (lower id, same
    // position) wins the election, so peer 3's edit must travel to it.
    let op = room.edit(3, write("x", n(5.0)));
    room.crash(1);
    room.run_for(Duration::from_secs(6));
    if room.hosts() != [2] {
        return Err(format!("hosts {:?}", room.hosts()));
    }
    everyone_sees(&room, "x", &n(5.0))?;
    match room.decision(op) {
        Some(Decision::Applied) => Ok(()),
        other => Err(format!("the guest was told {other:?}")),
    }
}

#[test]
fn a_guest_keeps_its_pending_edits_when_it_resends_them_to_a_new_host() {
    check(pending_edits_reach_the_new_host, Fault::DropPendingOnResend);
}

/// The guest with the pending edit is the one that takes over: it decides its own edit.
/// (Planted: a peer that becomes host and drops its own pending edits.)
fn a_new_host_decides_its_own_edits(fault: Option<Fault>) -> Outcome {
    let mut room = Room::with_config(2, network(&[("x", BlendMode::AcceptLast)]), config(fault));
    let op = room.edit(2, write("x", n(6.0)));
    room.crash(1);
    room.run_for(Duration::from_secs(6));
    if room.hosts() != [2] {
        return Err(format!("hosts {:?}", room.hosts()));
    }
    everyone_sees(&room, "x", &n(6.0))?;
    match room.decision(op) {
        Some(Decision::Applied) => Ok(()),
        other => Err(format!("the new host was told {other:?}")),
    }
}

#[test]
fn a_peer_that_becomes_host_decides_its_own_pending_edits() {
    check(a_new_host_decides_its_own_edits, Fault::HostDropsOwnPending);
}

// ---- partitions -----------------------------------------------------------------------

/// The room splits: {1, 2} and {3, 4}. Side {3, 4} elects a host of a newer epoch. On side
/// {1, 2}, peer 2 adds contact `k` and then peer 1 writes to it. When the sides meet, side
/// {1, 2}'s operations are sequenced again on the winner in Lamport order: the add before the
/// write that builds on it. (Suspected: orphans re-sent sorted by (peer, counter), which puts
/// peer 1's write before peer 2's add, so the write is refused.)
fn orphans_keep_their_order(fault: Option<Fault>) -> Outcome {
    let mut room = Room::with_config(3, Network::new(), config(fault));
    room.partition(&[1, 2]);
    room.run_for(Duration::from_secs(4));
    room.edit(2, contact("k", BlendMode::AcceptLast, n(1.0)));
    room.settle();
    room.edit(1, write("k", n(2.0)));
    room.settle();
    room.heal_all();
    room.run_for(Duration::from_secs(4));
    if room.hosts().len() != 1 {
        return Err(format!("hosts {:?}", room.hosts()));
    }
    everyone_sees(&room, "k", &n(2.0))
}

#[test]
fn orphans_are_resubmitted_in_lamport_order_so_a_write_follows_its_add() {
    check(orphans_keep_their_order, Fault::SortOrphans);
}

/// Cuts the host 1 and guest 2 off from 3 and 4, who elect a host of a newer epoch; 2 makes
/// ten edits `k0`..`k9` on its side, which loses when the partition heals.
fn ten_edits_on_the_losing_side(room: &mut Room) {
    room.partition(&[1, 2]);
    room.run_for(Duration::from_secs(4));
    for i in 0..10 {
        room.edit(
            2,
            contact(&format!("k{i}"), BlendMode::AcceptLast, n(f64::from(i))),
        );
        room.settle();
    }
    room.heal_all();
}

/// With a log of two entries, the losing side of a partition makes ten edits: all ten
/// survive the merge. (Suspected: orphans truncated to the log cap drop operations silently.)
fn a_long_partition_loses_nothing(fault: Option<Fault>) -> Outcome {
    let cfg = Config {
        log_cap: 2,
        ..config(fault)
    };
    let mut room = Room::with_config(3, Network::new(), cfg);
    ten_edits_on_the_losing_side(&mut room);
    room.run_for(Duration::from_secs(4));
    for i in 0..10 {
        everyone_sees(&room, &format!("k{i}"), &n(f64::from(i)))?;
    }
    Ok(())
}

#[test]
fn a_partition_longer_than_the_log_loses_no_orphan() {
    check(a_long_partition_loses_nothing, Fault::TruncateOrphans);
}

/// During a partition, a newcomer joins side {1, 2} and gets the whole state, with side
/// {1, 2}'s new operations in it; then 1 and 2 crash. The newcomer is the only one holding
/// those operations, and it brings them to peer 3's lineage. (Suspected: installing a full
/// state emptied the log, so what came with it was never re-sent.)
fn operations_from_a_state_survive(fault: Option<Fault>) -> Outcome {
    let mut room = Room::with_config(2, Network::new(), config(fault));
    room.partition(&[1, 2]);
    room.run_for(Duration::from_secs(4));
    for i in 0..3 {
        room.edit(
            2,
            contact(&format!("q{i}"), BlendMode::AcceptLast, n(f64::from(i))),
        );
        room.settle();
    }
    room.join(Session::guest(4, Some(1), Room::as_peer(4, config(fault))));
    room.cut_link(4, 3);
    room.settle();
    room.crash(1);
    room.crash(2);
    room.heal_all();
    room.run_for(Duration::from_secs(6));
    for i in 0..3 {
        everyone_sees(&room, &format!("q{i}"), &n(f64::from(i)))?;
    }
    Ok(())
}

#[test]
fn operations_learned_from_a_full_state_are_resubmitted_if_their_lineage_loses() {
    check(operations_from_a_state_survive, Fault::ForgetLogOnInstall);
}

// ---- hosts ------------------------------------------------------------------------------

/// Two sides of a partition each elect a host with followers; when it heals, the link
/// between the two hosts stays broken. Peers linked to both tell each host about the other,
/// and one host remains. (Suspected: a host ignored heartbeats that named another host, so
/// one lasting broken link kept two hosts forever.)
fn one_host_despite_a_broken_link(fault: Option<Fault>) -> Outcome {
    let mut room = Room::with_config(3, Network::new(), config(fault));
    room.partition(&[1, 2]);
    room.run_for(Duration::from_secs(4));
    if room.hosts().len() != 2 {
        return Err(format!("each side should lead itself: {:?}", room.hosts()));
    }
    room.heal_all();
    room.cut_link(1, 3);
    room.run_for(Duration::from_secs(6));
    match room.hosts()[..] {
        [_] => Ok(()),
        ref hosts => Err(format!("hosts {hosts:?}")),
    }
}

#[test]
fn one_lasting_broken_link_between_two_hosts_leaves_one_host() {
    check(one_host_despite_a_broken_link, Fault::IgnoreNamedHosts);
}

/// A guest cut off from everyone elects itself; when it comes back, the host that kept its
/// followers stays host. (Suspected: the lone peer's newer epoch outranked the majority, which
/// then had to fetch the loner's state.)
fn the_loner_does_not_take_over(fault: Option<Fault>) -> Outcome {
    let mut room = Room::with_config(2, network(&[("x", BlendMode::AcceptLast)]), config(fault));
    room.partition(&[3]);
    room.run_for(Duration::from_secs(4));
    if room.peer(3).role() != Role::Host {
        return Err("the lone peer should lead itself meanwhile".into());
    }
    room.edit(3, write("x", n(3.0)));
    room.settle();
    room.heal_all();
    room.run_for(Duration::from_secs(4));
    if room.hosts() != [1] {
        return Err(format!(
            "hosts {:?}, not the majority's host 1",
            room.hosts()
        ));
    }
    // Nothing the loner did is lost either.
    everyone_sees(&room, "x", &n(3.0))
}

#[test]
fn a_guest_cut_off_alone_does_not_take_the_room_over_when_it_returns() {
    check(the_loner_does_not_take_over, Fault::SoloOutranks);
}

// ---- divergence -------------------------------------------------------------------------

/// A guest's state is corrupted while the host edits every 20 ms and batches them over
/// 90 ms (a batch goes out every 100 ms, never in step with the heartbeats here), so the guest
/// is never at the host's position when a heartbeat arrives. The host's
/// hash is compared when the guest reaches that position, and the repair lands. (Suspected:
/// repair answered only at exactly the same position, so it starved under steady edits.)
fn repair_under_steady_edits(fault: Option<Fault>) -> Outcome {
    let net = network(&[("x", BlendMode::AcceptLast), ("y", BlendMode::AcceptLast)]);
    let cfg = Config {
        batch_window: Duration::from_millis(90),
        ..config(fault)
    };
    let mut room = Room::with_config(1, net, cfg);
    room.peer(2)
        .inject_divergence(write("y", Value::from("corrupted")))
        .map_err(|e| e.to_string())?;
    for i in 0..125 {
        room.edit(1, write("x", n(f64::from(i))));
        room.run_for(Duration::from_millis(20));
    }
    let repaired = room
        .peer(2)
        .network()
        .contact(&id("y"))
        .map(|c| c.value.clone());
    if repaired != Some(n(0.0)) {
        return Err(format!(
            "the guest still has y = {repaired:?} after 2.5 s of edits"
        ));
    }
    Ok(())
}

#[test]
fn divergence_is_repaired_while_edits_keep_flowing() {
    check(repair_under_steady_edits, Fault::CompareOnlyWhenQuiet);
}

/// A guest lost its last writers (which decide future writes): the heartbeat hash covers
/// them, and the repair restores them, so the guest's hash matches the host's again.
/// (Suspected: repair never repaired `writers`.)
fn repair_restores_writers(fault: Option<Fault>) -> Outcome {
    let net = network(&[("x", BlendMode::AcceptLast)]);
    let mut room = Room::with_config(1, net, config(fault));
    room.edit(1, write("x", n(1.0)));
    room.settle();
    // The guest loses its last writers (the divergence a bug would cause).
    room.peer(2).inject_divergence_of_writers();
    room.run_for(Duration::from_secs(3));
    let host = room.peer(1).digest();
    let guest = room.peer(2).digest();
    if host != guest {
        return Err("the guest's state and last writers still differ from the host's".into());
    }
    Ok(())
}

#[test]
fn a_repair_restores_the_last_writers_too() {
    check(repair_restores_writers, Fault::RepairSkipsWriters);
}

// ---- hostile peers ----------------------------------------------------------------------

fn frame(from: u64, message: Message, ts: u64) -> Vec<u8> {
    let env = Envelope {
        id: 1,
        ts,
        from,
        message,
    };
    let mut frames = Codec::default().encode(&env).expect("encodes");
    frames.pop().expect("one frame")
}

/// Validly encoded but malicious frames from a member are refused with `PeerMisbehaved` and
/// change nothing: a batch forging the host's own edits or skipping another peer's order, a
/// clock and epochs near the end of their range, and a lone member's claim to lead.
#[test]
fn a_hostile_member_is_refused_and_changes_nothing() {
    let mut room = Room::new(2, network(&[("x", BlendMode::AcceptLast)]));
    room.edit(2, write("x", n(1.0)));
    room.settle();
    let before = room.peer(1).state_hash();
    // Signed by the sender (3) itself: a forgery under anyone else's id.
    let forged = |op: OpId| {
        let command: bassline_protocol::Command = write("x", Value::from("forged")).into();
        Sequenced {
            seq: 1,
            op,
            ts: 1,
            sig: Room::sign(3, op, 1, &command),
            command,
        }
    };
    let attacks: Vec<(&str, Message, u64)> = vec![
        (
            "the host's own edit it never made",
            Message::Batch {
                epoch: Epoch::default(),
                base: Position::default(),
                ops: vec![forged(OpId {
                    peer: 1,
                    counter: 1_000,
                })],
                keys: Vec::new(),
            },
            1,
        ),
        (
            "another peer's edit out of its order",
            Message::Batch {
                epoch: Epoch::default(),
                base: Position::default(),
                ops: vec![forged(OpId {
                    peer: 2,
                    counter: 50,
                })],
                keys: Vec::new(),
            },
            1,
        ),
        (
            "an edit stamped near the end of time",
            Message::Submit {
                op: 1,
                ts: u64::MAX - 1,
                request: write("x", Value::from("late")),
                sig: bassline_protocol::Signature::NONE,
            },
            u64::MAX - 1,
        ),
        (
            "an announcement of an epoch near u64::MAX",
            Message::HostAnnounce {
                epoch: Epoch {
                    number: u64::MAX - 1,
                    host: 3,
                },
                led: None,
            },
            1,
        ),
        (
            "a candidate near u64::MAX",
            Message::Candidate {
                epoch: Epoch {
                    number: u64::MAX,
                    host: 3,
                },
            },
            1,
        ),
    ];
    for (what, message, ts) in attacks {
        let f = frame(3, message, ts);
        let now = room.now;
        room.peer(1).handle_receive(now, 3, Channel::Reliable, &f);
        room.settle();
        let reported = room
            .events
            .iter()
            .any(|(p, e)| *p == 1 && matches!(e, Event::PeerMisbehaved { peer: 3, .. }));
        assert!(reported, "{what}: the host reports peer 3");
        room.events.clear();
        assert_eq!(room.peer(1).state_hash(), before, "{what}: nothing changed");
        assert_eq!(room.hosts(), [1], "{what}: the host still leads");
    }
    // A member nobody follows announcing a newer epoch does not take a led room over, whatever
    // it shows as its followers' word: none, its own, peer 2's signed with another key under
    // that key, or peer 2's signed with another key under peer 2's (reported as a forgery).
    let next = Epoch { number: 2, host: 3 };
    let other = bassline_sync::Ed25519Identity::from_secret([9; 32]);
    let forged = |by: u64, key| bassline_protocol::Vouch {
        by,
        number: next.number,
        key,
        sig: other.sign(&bassline_protocol::vouch_bytes(by, next)),
    };
    let known = room
        .peer(1)
        .key_of(2)
        .expect("the host knows its guest's key");
    let claims = [
        ("no follower's word", None, false),
        ("its own word", Some(forged(3, other.public_key())), false),
        (
            "peer 2's word under another key",
            Some(forged(2, other.public_key())),
            false,
        ),
        ("peer 2's word forged", Some(forged(2, known)), true),
    ];
    for (what, led, reported) in claims {
        let claim = frame(3, Message::HostAnnounce { epoch: next, led }, 1);
        for target in [1, 2] {
            let now = room.now;
            room.peer(target)
                .handle_receive(now, 3, Channel::Reliable, &claim);
        }
        room.settle();
        assert_eq!(
            room.peer(2).current_host(),
            Some(1),
            "{what}: the guest stays with its host"
        );
        assert_eq!(room.peer(1).role(), Role::Host, "{what}: the host leads on");
        let reports = room
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::PeerMisbehaved { peer: 3, .. }))
            .count();
        assert_eq!(reports > 0, reported, "{what}: reported as a forgery");
        room.events.clear();
    }
}

/// A member who joined while the room was quiet: the host passes its key on at once (a batch of
/// keys alone), so another member cannot show the guests a vouch in the newcomer's name under a
/// key of its own. (Found in review: keys went out only with the next edit, and until then a
/// guest checked a vouch naming the newcomer under whatever key the vouch named.)
#[test]
fn a_newcomers_key_reaches_the_guests_before_any_edit() {
    let mut room = Room::new(2, network(&[("x", BlendMode::AcceptLast)]));
    room.edit(2, write("x", n(1.0)));
    room.settle();
    room.join(Session::guest(
        4,
        Some(1),
        Room::as_peer(4, Config::default()),
    ));
    room.settle();
    assert_eq!(
        room.peer(2).key_of(4),
        Some(Room::identity(4).public_key()),
        "guest 2 holds the newcomer's key with no edit in between"
    );
    let attacker = Room::identity(3);
    let next = Epoch {
        number: room.peer(2).epoch().number + 1,
        host: 3,
    };
    let led = bassline_protocol::Vouch {
        by: 4,
        number: next.number,
        key: attacker.public_key(),
        sig: attacker.sign(&bassline_protocol::vouch_bytes(4, next)),
    };
    let claim = frame(
        3,
        Message::HostAnnounce {
            epoch: next,
            led: Some(led),
        },
        1,
    );
    let now = room.now;
    room.peer(2)
        .handle_receive(now, 3, Channel::Reliable, &claim);
    room.settle();
    assert_eq!(
        room.peer(2).current_host(),
        Some(1),
        "the guest stays with its host"
    );
    assert_eq!(room.hosts(), [1]);
}

/// The losing side of a partition made more edits than the new host takes forwarded at once:
/// the host refuses the rest for now (`refused`: forwarded, rate-limited), the forwarders send
/// them again after the wait, and all of them end up decided. (Found: orphan batches had no
/// limit; an honest one reached 2,100 operations in the simulator.)
#[test]
fn forwarded_operations_beyond_the_limit_come_again_after_the_wait() {
    let cfg = Config {
        limits: bassline_sync::Limits {
            forwarded: bassline_sync::Rate {
                per_second: 4,
                burst: 3,
            },
            ..Default::default()
        },
        ..Config::default()
    };
    let mut room = Room::with_config(3, Network::new(), cfg);
    ten_edits_on_the_losing_side(&mut room);
    room.run_for(Duration::from_secs(8));
    assert!(
        room.events.iter().any(|(_, e)| matches!(
            e,
            Event::Refused {
                request: bassline_protocol::Refused::Forwarded,
                reason: bassline_protocol::Refusal::RateLimited { .. },
                ..
            }
        )),
        "the host refused part of the forwarded operations"
    );
    for i in 0..10 {
        everyone_sees(&room, &format!("k{i}"), &n(f64::from(i))).expect("nothing lost");
    }
    assert!(room.converged());
}
