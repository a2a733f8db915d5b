//! Property tests: termination, export/import, order independence, replicas, refusals.

mod common;

use bassline_core::{
    BlendMode, Config, Direction, Network, Placement, Point, Primitive, Request, StateDocument,
    Value, WireKind,
};
use common::*;
use proptest::prelude::*;

/// One random operation over a small id space, so that operations collide often.
#[derive(Clone, Debug)]
enum Op {
    Group {
        g: u8,
        parent: u8,
    },
    Gadget {
        g: u8,
        parent: u8,
        p: usize,
    },
    Contact {
        c: u8,
        g: u8,
        merge: bool,
        boundary: Option<bool>,
    },
    Wire {
        w: u8,
        from: u8,
        to: u8,
        directed: bool,
    },
    Write {
        c: u8,
        v: i8,
        set: bool,
    },
    RemoveContact {
        c: u8,
    },
    RemoveGroup {
        g: u8,
    },
    Disconnect {
        w: u8,
    },
    Move {
        g: u8,
        parent: u8,
    },
    /// Layout: a contact and/or a group placed (or unplaced, with `None`).
    Place {
        c: Option<u8>,
        g: Option<u8>,
        at: Option<(i16, i16)>,
    },
}

fn gname(g: u8) -> String {
    if g == 0 {
        "root".into()
    } else {
        format!("g{g}")
    }
}

/// Contacts are plain ids or a gadget's boundary.
fn cname(c: u8) -> String {
    match c % 4 {
        3 => format!("g{}/a", c % 6 + 1),
        _ => format!("c{c}"),
    }
}

fn to_request(op: &Op) -> Request {
    match op {
        Op::Group { g, parent } => group(&gname(*parent), &gname(*g)),
        Op::Gadget { g, parent, p } => gadget(
            &gname(*parent),
            &gname(*g),
            Primitive::ALL[*p % Primitive::ALL.len()],
        ),
        Op::Contact {
            c,
            g,
            merge,
            boundary,
        } => contact_with(
            &gname(*g),
            &format!("c{c}"),
            if *merge {
                BlendMode::Merge
            } else {
                BlendMode::AcceptLast
            },
            boundary.map(|i| {
                if i {
                    Direction::Input
                } else {
                    Direction::Output
                }
            }),
        ),
        Op::Wire {
            w,
            from,
            to,
            directed,
        } => wire_kind(
            &format!("w{w}"),
            &cname(*from),
            &cname(*to),
            if *directed {
                WireKind::Directed
            } else {
                WireKind::Bidirectional
            },
        ),
        Op::Write { c, v, set } => {
            let n = Value::Number(f64::from(*v));
            write(&cname(*c), if *set { Value::grow_set([n]) } else { n })
        }
        Op::RemoveContact { c } => Request::RemoveContact { id: id(&cname(*c)) },
        Op::RemoveGroup { g } => Request::RemoveGroup { id: id(&gname(*g)) },
        Op::Disconnect { w } => Request::Disconnect {
            id: id(&format!("w{w}")),
        },
        Op::Move { g, parent } => Request::UpdateGroup {
            id: id(&gname(*g)),
            name: None,
            parent: Some(id(&gname(*parent))),
        },
        Op::Place { c, g, at } => {
            let at = at.map(|(x, y)| Point {
                x: i32::from(x),
                y: i32::from(y),
            });
            Request::Place {
                contacts: c
                    .iter()
                    .map(|c| Placement {
                        id: id(&cname(*c)),
                        at,
                    })
                    .collect(),
                groups: g
                    .iter()
                    .map(|g| Placement {
                        id: id(&gname(*g)),
                        at,
                    })
                    .collect(),
            }
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (1u8..7, 0u8..7).prop_map(|(g, parent)| Op::Group { g, parent }),
        1 => (1u8..7, 0u8..7, 0usize..13).prop_map(|(g, parent, p)| Op::Gadget { g, parent, p }),
        3 => (0u8..16, 0u8..7, any::<bool>(), prop::option::of(any::<bool>()))
            .prop_map(|(c, g, merge, boundary)| Op::Contact { c, g, merge, boundary }),
        3 => (0u8..24, 0u8..16, 0u8..16, any::<bool>())
            .prop_map(|(w, from, to, directed)| Op::Wire { w, from, to, directed }),
        3 => (0u8..16, -3i8..4, any::<bool>()).prop_map(|(c, v, set)| Op::Write { c, v, set }),
        1 => (0u8..16).prop_map(|c| Op::RemoveContact { c }),
        1 => (1u8..7).prop_map(|g| Op::RemoveGroup { g }),
        1 => (0u8..24).prop_map(|w| Op::Disconnect { w }),
        1 => (1u8..7, 0u8..7).prop_map(|(g, parent)| Op::Move { g, parent }),
        2 => (prop::option::of(0u8..16), prop::option::of(0u8..7),
              prop::option::of((-3i16..3, -3i16..3)))
            .prop_map(|(c, g, at)| Op::Place { c, g, at }),
    ]
}

/// Applies ops to a network and a replica fed only with changes; a refused op must leave the
/// state exactly as it was.
fn run(ops: &[Op]) -> Result<(Network, Network), TestCaseError> {
    let mut net = Network::with_config(Config { max_steps: 20_000 });
    let mut replica = Network::new();
    for op in ops {
        let before = net.state_hash();
        match net.apply(to_request(op)) {
            Ok(resp) => {
                for c in &resp.changes {
                    replica
                        .apply_change(c)
                        .map_err(|e| TestCaseError::fail(format!("{op:?}: {c:?}: {e}")))?;
                }
            }
            Err(_) => prop_assert_eq!(net.state_hash(), before, "refused {:?} changed state", op),
        }
    }
    Ok((net, replica))
}

proptest! {
    #![proptest_config(bassline_testkit::proptest_config(256))]

    #[test]
    fn random_edits_terminate_and_replicas_agree(ops in prop::collection::vec(op(), 1..80)) {
        let (net, replica) = run(&ops)?;
        prop_assert_eq!(replica.state_hash(), net.state_hash());
        prop_assert_eq!(replica.export(), net.export());
    }

    /// Applying a request undoably and then its undo restores the exact state.
    #[test]
    fn undo_restores_the_state(ops in prop::collection::vec(op(), 1..60), split in 0usize..60) {
        let split = split.min(ops.len());
        let (mut net, _) = run(&ops[..split])?;
        for op in &ops[split..] {
            let before = net.state_hash();
            let doc = net.export();
            let mut copy = net.clone();
            match net.apply_undoable(to_request(op)) {
                Ok((_, undo)) => {
                    let mut reverted = net.clone();
                    for c in &undo {
                        reverted
                            .apply_change(c)
                            .map_err(|e| TestCaseError::fail(format!("{op:?}: undo {c:?}: {e}")))?;
                    }
                    prop_assert_eq!(reverted.state_hash(), before, "undo of {:?}", op);
                    prop_assert_eq!(reverted.export(), doc);
                    // The undoable path changes the state exactly as a plain apply does.
                    copy.apply(to_request(op)).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(copy.state_hash(), net.state_hash());
                }
                Err(_) => prop_assert_eq!(net.state_hash(), before),
            }
        }
    }

    /// A replica that diverged (here: built from a different edit sequence) matches again after
    /// a repair of only the groups whose shallow hashes differ.
    #[test]
    fn repair_converges(
        common in prop::collection::vec(op(), 0..40),
        a in prop::collection::vec(op(), 0..30),
        b in prop::collection::vec(op(), 0..30),
    ) {
        let (host, _) = run(&[common.clone(), a].concat())?;
        let (mut guest, _) = run(&[common, b].concat())?;
        let (remove, groups) = host.repair_for(&guest.shallow_hashes());
        let changes = guest
            .repair(&remove, &groups)
            .map_err(|e| TestCaseError::fail(format!("repair failed: {e}")))?;
        prop_assert_eq!(guest.state_hash(), host.state_hash());
        prop_assert_eq!(guest.export(), host.export());
        prop_assert!(groups.len() <= host.counts().0);
        let _ = changes;
    }

    /// A partial document imports, and the groups asked for arrive whole.
    #[test]
    fn partial_documents_import_with_the_wanted_groups_whole(
        ops in prop::collection::vec(op(), 1..80),
        first in prop::collection::vec(1u8..7, 0..3),
    ) {
        let (net, _) = run(&ops)?;
        let first: Vec<bassline_core::Id> = first.iter().map(|g| id(&gname(*g))).collect();
        let doc = net.partial_document(&first);
        let part = Network::import(&doc)
            .map_err(|e| TestCaseError::fail(format!("partial document does not import: {e}")))?;
        for g in &first {
            prop_assert_eq!(part.group_hash(g), net.group_hash(g), "group {} arrives whole", g);
        }
        prop_assert!(part.counts().1 <= net.counts().1);
        if first.is_empty() {
            prop_assert_eq!(part.state_hash(), net.state_hash());
        }
    }

    #[test]
    fn export_then_import_keeps_the_hash(ops in prop::collection::vec(op(), 1..80)) {
        let (net, _) = run(&ops)?;
        let json = net.export().to_json_pretty();
        let doc = StateDocument::from_json(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = Network::import(&doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.state_hash(), net.state_hash());
        prop_assert_eq!(back.group_hashes(), net.group_hashes());
    }

    /// Wires alone (no gadgets) always reach a fixpoint: no contact hits the step budget, and
    /// with only bidirectional accept-last wires the whole component ends with the written value.
    #[test]
    fn wire_cycles_reach_a_fixpoint(
        edges in prop::collection::vec((0u8..12, 0u8..12), 1..40),
        start in 0u8..12,
        v in -100i32..100,
    ) {
        let mut net = Network::with_config(Config { max_steps: 100_000 });
        for c in 0..12 {
            ok(&mut net, contact("root", &format!("c{c}")));
        }
        for (i, (a, b)) in edges.iter().enumerate() {
            if a != b {
                ok(&mut net, wire(&format!("w{i}"), &format!("c{a}"), &format!("c{b}")));
            }
        }
        ok(&mut net, write(&format!("c{start}"), f64::from(v)));
        // Flood fill the component of `start`.
        let mut seen = [false; 12];
        let mut stack = vec![start];
        while let Some(x) = stack.pop() {
            if std::mem::replace(&mut seen[x as usize], true) { continue; }
            for (a, b) in &edges {
                if *a == x && a != b { stack.push(*b); }
                if *b == x && a != b { stack.push(*a); }
            }
        }
        for c in 0..12u8 {
            let contact = net.contact(&id(&format!("c{c}"))).expect("exists");
            prop_assert!(contact.contradiction.is_none());
            let expected = if seen[c as usize] { Value::Number(f64::from(v)) } else { Value::Null };
            prop_assert_eq!(&contact.value, &expected, "c{}", c);
        }
    }

    /// Connecting contacts that already hold different values, in any order, with wires in
    /// both directions and cycles, settles without touching the step budget.
    #[test]
    fn connecting_valued_contacts_settles(
        values in prop::collection::vec(prop::option::of(-3i32..3), 8),
        edges in prop::collection::vec((0u8..8, 0u8..8, any::<bool>()), 1..30),
    ) {
        let mut net = Network::with_config(Config { max_steps: 100_000 });
        for (i, v) in values.iter().enumerate() {
            ok(&mut net, contact("root", &format!("c{i}")));
            if let Some(v) = v {
                ok(&mut net, write(&format!("c{i}"), f64::from(*v)));
            }
        }
        for (i, (a, b, directed)) in edges.iter().enumerate() {
            if a != b {
                let kind = if *directed { WireKind::Directed } else { WireKind::Bidirectional };
                ok(&mut net, wire_kind(&format!("w{i}"), &format!("c{a}"), &format!("c{b}"), kind));
            }
        }
        for c in net.contacts() {
            prop_assert!(c.contradiction.is_none(), "{:?}", c);
        }
    }

    /// Building the same structure in a different order gives the same hash.
    #[test]
    fn build_order_does_not_change_the_hash(
        contacts in prop::collection::btree_map(0u8..20, (any::<bool>(), -5i8..5), 1..20),
        wires in prop::collection::btree_map(0u8..30, (0u8..20, 0u8..20, any::<bool>()), 0..30),
        seed in any::<u64>(),
    ) {
        let mut requests = Vec::new();
        for (c, (merge, v)) in &contacts {
            let mut r = contact_with(
                "root",
                &format!("c{c}"),
                if *merge { BlendMode::Merge } else { BlendMode::AcceptLast },
                None,
            );
            if let Request::AddContact { value, .. } = &mut r {
                *value = Value::Number(f64::from(*v));
            }
            requests.push(r);
        }
        let mut wire_requests = Vec::new();
        for (w, (a, b, directed)) in &wires {
            if a != b && contacts.contains_key(a) && contacts.contains_key(b) {
                let kind = if *directed { WireKind::Directed } else { WireKind::Bidirectional };
                // Wires go in through a document below: connecting would propagate values,
                // and propagation results depend on order by design.
                wire_requests.push((format!("w{w}"), format!("c{a}"), format!("c{b}"), kind));
            }
        }
        let build = |order: &[usize]| -> Network {
            let mut net = Network::new();
            for &i in order {
                ok(&mut net, requests[i].clone());
            }
            let mut doc = net.export();
            for (w, a, b, kind) in &wire_requests {
                doc.root.wires.push(bassline_core::WireDocument {
                    id: id(w), from: id(a), to: id(b), kind: *kind,
                });
            }
            Network::import(&doc).expect("valid document")
        };
        let forward: Vec<usize> = (0..requests.len()).collect();
        let mut shuffled = forward.clone();
        // A seeded Fisher-Yates shuffle.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut wires_reversed = build(&forward).export();
        wires_reversed.root.wires.reverse();
        let a = build(&forward);
        let b = build(&shuffled);
        let c = Network::import(&wires_reversed).expect("valid");
        prop_assert_eq!(a.state_hash(), b.state_hash());
        prop_assert_eq!(a.state_hash(), c.state_hash());
    }

    /// Different states hash differently.
    #[test]
    fn different_values_hash_differently(a in -50i32..50, b in -50i32..50) {
        let mut x = Network::new();
        let mut y = Network::new();
        ok(&mut x, contact("root", "c"));
        ok(&mut y, contact("root", "c"));
        ok(&mut x, write("c", f64::from(a)));
        ok(&mut y, write("c", f64::from(b)));
        prop_assert_eq!(x.state_hash() == y.state_hash(), a == b);
    }
}
