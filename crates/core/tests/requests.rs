//! Every request, every refusal, and propagation through wires, boundaries and gadgets.

mod common;

use bassline_core::{
    BlendMode, Change, Direction, Error, Network, Placement, Point, Primitive, Reply, Request,
    StateDocument, Value, WireKind,
};
use common::*;

fn n(x: f64) -> Value {
    Value::Number(x)
}

#[test]
fn add_contact_generates_ids_and_reports_changes() {
    let mut net = Network::new();
    let r = ok(
        &mut net,
        Request::AddContact {
            id: None,
            group: id("root"),
            name: Some("x".into()),
            blend: BlendMode::Merge,
            value: n(1.0),
            boundary: None,
        },
    );
    let c = created(&r);
    assert!(matches!(&r.changes[..], [Change::ContactAdded { contact }] if contact.id == c));
    assert_eq!(value(&net, c.as_str()), n(1.0));
    let r2 = ok(&mut net, contact("root", "c-explicit"));
    assert_eq!(created(&r2), id("c-explicit"));
    assert_ne!(
        created(&ok(
            &mut net,
            Request::AddContact {
                id: None,
                group: id("root"),
                name: None,
                blend: BlendMode::AcceptLast,
                value: Value::Null,
                boundary: None
            }
        )),
        c
    );
}

#[test]
fn bad_requests_are_refused_without_changing_state() {
    let mut net = Network::new();
    ok(&mut net, contact("root", "a"));
    ok(&mut net, group("root", "g"));
    ok(&mut net, contact("g", "inner"));
    ok(&mut net, group("g", "h"));
    ok(&mut net, gadget("root", "plus", Primitive::Add));

    // `inner` is a plain contact of g, so the root cannot see it; h lies inside g.
    let table: Vec<(Request, Error)> = vec![
        (contact("nope", "x"), Error::UnknownGroup { id: id("nope") }),
        (contact("root", "a"), Error::DuplicateId { id: id("a") }),
        (group("root", "g"), Error::DuplicateId { id: id("g") }),
        (write("zz", 1.0), Error::UnknownContact { id: id("zz") }),
        (
            Request::RemoveContact { id: id("zz") },
            Error::UnknownContact { id: id("zz") },
        ),
        (
            Request::Disconnect { id: id("w") },
            Error::UnknownWire { id: id("w") },
        ),
        (
            Request::GetWire { id: id("w") },
            Error::UnknownWire { id: id("w") },
        ),
        (
            Request::GetContact { id: id("q") },
            Error::UnknownContact { id: id("q") },
        ),
        (
            Request::GetGroupState { group: id("q") },
            Error::UnknownGroup { id: id("q") },
        ),
        (
            Request::RemoveGroup { id: id("q") },
            Error::UnknownGroup { id: id("q") },
        ),
        (Request::RemoveGroup { id: id("root") }, Error::RootGroup),
        (
            wire("w", "a", "inner"),
            Error::OutOfScope {
                from: id("a"),
                to: id("inner"),
            },
        ),
        (wire("w", "a", "a"), Error::SelfWire { id: id("a") }),
        (wire("w", "a", "zz"), Error::UnknownContact { id: id("zz") }),
        (
            contact("plus", "extra"),
            Error::PrimitiveGroup { id: id("plus") },
        ),
        (
            Request::RemoveContact { id: id("plus/a") },
            Error::PrimitiveGroup { id: id("plus") },
        ),
        (
            group("plus", "inside"),
            Error::PrimitiveGroup { id: id("plus") },
        ),
    ];
    for (request, expected) in table {
        let shown = format!("{request:?}");
        assert_eq!(refused(&mut net, request), expected, "{shown}");
    }
}

#[test]
fn errors_tell_the_user_what_to_do() {
    let e = Error::UnknownContact { id: id("c1") };
    assert!(e.to_string().contains("c1") && e.to_string().contains("refresh"));
    assert!(Error::RootGroup.to_string().contains("remove its contents"));
}

#[test]
fn propagation_follows_wires_both_ways_and_directed_one_way() {
    let mut net = Network::new();
    for c in ["a", "b", "c", "d"] {
        ok(&mut net, contact("root", c));
    }
    ok(&mut net, wire("ab", "a", "b"));
    ok(&mut net, wire_kind("bc", "b", "c", WireKind::Directed));
    ok(&mut net, wire("cd", "c", "d"));
    let r = ok(&mut net, write("a", 1.0));
    for c in ["a", "b", "c", "d"] {
        assert_eq!(value(&net, c), n(1.0), "{c}");
    }
    assert_eq!(
        r.changes.len(),
        4,
        "one ContactUpdated per changed contact: {:?}",
        r.changes
    );
    ok(&mut net, write("d", 2.0));
    assert_eq!(value(&net, "c"), n(2.0));
    assert_eq!(
        value(&net, "b"),
        n(1.0),
        "directed wire b->c carries nothing back"
    );
    assert_eq!(value(&net, "a"), n(1.0));
}

#[test]
fn writing_the_same_value_changes_nothing() {
    let mut net = Network::new();
    ok(&mut net, contact("root", "a"));
    ok(&mut net, write("a", 1.0));
    assert!(ok(&mut net, write("a", 1.0)).changes.is_empty());
}

#[test]
fn cycles_of_wires_terminate() {
    let mut net = Network::new();
    for c in ["a", "b", "c"] {
        ok(&mut net, contact("root", c));
    }
    ok(&mut net, wire("1", "a", "b"));
    ok(&mut net, wire("2", "b", "c"));
    ok(&mut net, wire("3", "c", "a"));
    ok(&mut net, write("b", "hi"));
    assert_eq!(value(&net, "a"), Value::from("hi"));
}

#[test]
fn a_runaway_gadget_loop_stops_with_a_contradiction() {
    let mut net = Network::with_config(bassline_core::Config { max_steps: 1_000 });
    ok(&mut net, gadget("root", "inc", Primitive::Add));
    ok(&mut net, contact("root", "one"));
    ok(&mut net, write("one", 1.0));
    ok(&mut net, wire("w1", "one", "inc/b"));
    ok(
        &mut net,
        wire_kind("loop", "inc/out", "inc/a", WireKind::Directed),
    );
    assert_eq!(
        net.wire(&id("loop")).expect("exists").group,
        id("root"),
        "outside the gadget"
    );
    ok(&mut net, write("inc/a", 0.0));
    let stuck = net
        .contact(&id("inc/a"))
        .and_then(|c| c.contradiction.clone())
        .or_else(|| {
            net.contact(&id("inc/out"))
                .and_then(|c| c.contradiction.clone())
        })
        .or_else(|| {
            net.contact(&id("inc/b"))
                .and_then(|c| c.contradiction.clone())
        });
    assert!(
        stuck
            .expect("a contradiction is recorded")
            .reason
            .contains("did not settle")
    );
}

#[test]
fn merge_mode_joins_and_records_contradictions() {
    let mut net = Network::new();
    ok(&mut net, contact_with("root", "s", BlendMode::Merge, None));
    ok(&mut net, write("s", Value::grow_set([n(1.0)])));
    ok(&mut net, write("s", Value::grow_set([n(2.0)])));
    assert_eq!(value(&net, "s"), Value::grow_set([n(1.0), n(2.0)]));
    let r = ok(&mut net, write("s", "oops"));
    let c = net.contact(&id("s")).expect("exists");
    assert_eq!(
        c.value,
        Value::grow_set([n(1.0), n(2.0)]),
        "the old value stays"
    );
    let k = c.contradiction.as_ref().expect("contradiction recorded");
    assert_eq!(k.incoming, Value::from("oops"));
    assert_eq!(k.existing, Value::grow_set([n(1.0), n(2.0)]));
    assert!(matches!(
        &r.changes[..],
        [Change::ContactUpdated {
            contradiction: Some(_),
            ..
        }]
    ));
    // An accepted direct write clears the contradiction.
    ok(&mut net, write("s", Value::grow_set([n(3.0)])));
    assert!(
        net.contact(&id("s"))
            .expect("exists")
            .contradiction
            .is_none()
    );
}

#[test]
fn accept_last_replaces() {
    let mut net = Network::new();
    ok(&mut net, contact("root", "a"));
    ok(&mut net, write("a", 5.0));
    ok(&mut net, write("a", "now a string"));
    assert_eq!(value(&net, "a"), Value::from("now a string"));
}

#[test]
fn boundary_contacts_cross_into_the_parent() {
    let mut net = Network::new();
    ok(&mut net, group("root", "g"));
    ok(
        &mut net,
        contact_with("g", "g-in", BlendMode::AcceptLast, Some(Direction::Input)),
    );
    ok(&mut net, contact("g", "g-inner"));
    ok(&mut net, contact("root", "outside"));
    ok(&mut net, wire("outer", "outside", "g-in"));
    ok(&mut net, wire("inner", "g-in", "g-inner"));
    assert_eq!(net.wire(&id("outer")).expect("exists").group, id("root"));
    assert_eq!(net.wire(&id("inner")).expect("exists").group, id("g"));
    ok(&mut net, write("outside", 9.0));
    assert_eq!(value(&net, "g-inner"), n(9.0));
}

#[test]
fn gadgets_fire_when_inputs_are_present_and_feed_wires() {
    let mut net = Network::new();
    ok(&mut net, gadget("root", "div", Primitive::Divide));
    ok(&mut net, contact("root", "result"));
    ok(&mut net, wire("w", "div/out", "result"));
    ok(&mut net, write("div/a", 6.0));
    assert_eq!(
        value(&net, "result"),
        Value::Null,
        "inactive until b is present"
    );
    ok(&mut net, write("div/b", 3.0));
    assert_eq!(value(&net, "result"), n(2.0));
    ok(&mut net, write("div/b", 0.0));
    let out = net.contact(&id("div/out")).expect("exists");
    assert!(
        out.contradiction
            .as_ref()
            .expect("recorded")
            .reason
            .contains("division by zero")
    );
    assert_eq!(out.value, n(2.0), "the last good value stays");
}

#[test]
fn every_gadget_runs_inside_a_network() {
    let cases: Vec<(Primitive, Vec<Value>, Value)> = vec![
        (Primitive::Add, vec![n(2.0), n(3.0)], n(5.0)),
        (Primitive::Subtract, vec![n(2.0), n(3.0)], n(-1.0)),
        (Primitive::Multiply, vec![n(2.0), n(3.0)], n(6.0)),
        (Primitive::Divide, vec![n(3.0), n(2.0)], n(1.5)),
        (Primitive::Min, vec![n(2.0), n(3.0)], n(2.0)),
        (Primitive::Max, vec![n(2.0), n(3.0)], n(3.0)),
        (Primitive::Equals, vec![n(2.0), n(2.0)], true.into()),
        (
            Primitive::And,
            vec![true.into(), false.into()],
            false.into(),
        ),
        (Primitive::Or, vec![true.into(), false.into()], true.into()),
        (Primitive::Not, vec![true.into()], false.into()),
        (
            Primitive::Concat,
            vec!["ab".into(), "cd".into()],
            "abcd".into(),
        ),
        (Primitive::Length, vec!["abc".into()], n(3.0)),
        (Primitive::Gate, vec![n(7.0), true.into()], n(7.0)),
    ];
    assert_eq!(cases.len(), Primitive::ALL.len());
    for (p, inputs, expected) in cases {
        let mut net = Network::new();
        ok(&mut net, gadget("root", "g", p));
        for (name, v) in p.inputs().iter().zip(inputs) {
            ok(&mut net, write(&format!("g/{name}"), v));
        }
        assert_eq!(value(&net, "g/out"), expected, "{p:?}");
    }
}

#[test]
fn gate_passes_only_while_open() {
    let mut net = Network::new();
    ok(&mut net, gadget("root", "g", Primitive::Gate));
    ok(&mut net, write("g/value", 1.0));
    ok(&mut net, write("g/condition", false));
    assert_eq!(value(&net, "g/out"), Value::Null);
    ok(&mut net, write("g/condition", true));
    assert_eq!(value(&net, "g/out"), n(1.0));
}

#[test]
fn connecting_carries_existing_values() {
    let mut net = Network::new();
    ok(&mut net, contact("root", "a"));
    ok(&mut net, contact("root", "b"));
    ok(&mut net, write("a", 4.0));
    let r = ok(&mut net, wire("w", "a", "b"));
    assert_eq!(value(&net, "b"), n(4.0));
    assert!(matches!(
        &r.changes[..],
        [Change::WireAdded { .. }, Change::ContactUpdated { .. }]
    ));
}

#[test]
fn removing_a_group_removes_contents_and_boundary_wires() {
    let mut net = Network::new();
    ok(&mut net, group("root", "g"));
    ok(
        &mut net,
        contact_with("g", "port", BlendMode::AcceptLast, Some(Direction::Output)),
    );
    ok(&mut net, contact("g", "x"));
    ok(&mut net, group("g", "sub"));
    ok(&mut net, contact("sub", "y"));
    ok(&mut net, wire("in", "x", "port"));
    ok(&mut net, contact("root", "outside"));
    ok(&mut net, wire("out", "port", "outside"));
    let r = ok(&mut net, Request::RemoveGroup { id: id("g") });
    assert_eq!(net.counts(), (1, 1, 0));
    assert!(net.wire(&id("out")).is_none());
    let removed_groups: Vec<_> = r
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::GroupRemoved { id } => Some(id.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(removed_groups, ["sub", "g"], "innermost first");
    assert!(
        r.changes
            .iter()
            .any(|c| *c == Change::WireRemoved { id: id("out") })
    );
}

#[test]
fn update_and_remove_contact_and_disconnect() {
    let mut net = Network::new();
    ok(&mut net, contact("root", "a"));
    ok(&mut net, contact("root", "b"));
    ok(&mut net, wire("w", "a", "b"));
    ok(
        &mut net,
        Request::UpdateContact {
            id: id("a"),
            name: Some("alpha".into()),
            blend: Some(BlendMode::Merge),
        },
    );
    let a = net.contact(&id("a")).expect("exists");
    assert_eq!(
        (a.name.as_deref(), a.blend),
        (Some("alpha"), BlendMode::Merge)
    );
    ok(&mut net, Request::Disconnect { id: id("w") });
    ok(&mut net, write("a", 1.0));
    assert_eq!(value(&net, "b"), Value::Null);
    ok(&mut net, wire("w2", "a", "b"));
    let r = ok(&mut net, Request::RemoveContact { id: id("b") });
    assert_eq!(
        r.changes,
        vec![
            Change::WireRemoved { id: id("w2") },
            Change::ContactRemoved { id: id("b") }
        ]
    );
}

#[test]
fn moving_a_group_drops_wires_left_behind() {
    let mut net = Network::new();
    ok(&mut net, group("root", "a"));
    ok(&mut net, group("root", "b"));
    ok(
        &mut net,
        contact_with("a", "port", BlendMode::AcceptLast, Some(Direction::Input)),
    );
    ok(&mut net, contact("root", "x"));
    ok(&mut net, wire("w", "x", "port"));
    ok(
        &mut net,
        Request::UpdateGroup {
            id: id("a"),
            name: Some("A".into()),
            parent: Some(id("b")),
        },
    );
    assert!(net.wire(&id("w")).is_none());
    let info = net.group(&id("a")).expect("exists");
    assert_eq!(
        (info.parent.clone(), info.name.as_deref()),
        (Some(id("b")), Some("A"))
    );
}

#[test]
fn queries_answer_without_changes() {
    let mut net = Network::new();
    ok(&mut net, group("root", "g"));
    ok(
        &mut net,
        contact_with("g", "p", BlendMode::AcceptLast, Some(Direction::Input)),
    );
    ok(&mut net, contact("root", "a"));
    ok(&mut net, wire("w", "a", "p"));
    let r = ok(&mut net, Request::GetGroupState { group: id("root") });
    assert!(r.changes.is_empty());
    let Reply::Group { state } = r.reply else {
        panic!("expected group state")
    };
    assert_eq!(state.contacts.len(), 1);
    assert_eq!(state.wires.len(), 1);
    assert_eq!(state.subgroups.len(), 1);
    assert_eq!(state.subgroups[0].boundary[0].id, id("p"));
    let Reply::Contact { contact } = ok(&mut net, Request::GetContact { id: id("a") }).reply else {
        panic!("expected contact")
    };
    assert_eq!(contact.id, id("a"));
    let Reply::Wire { wire } = ok(&mut net, Request::GetWire { id: id("w") }).reply else {
        panic!("expected wire")
    };
    assert_eq!(wire.group, id("root"));
    let Reply::State { document } = ok(&mut net, Request::ExportState).reply else {
        panic!("expected state")
    };
    assert_eq!(
        Network::import(&document).expect("imports").state_hash(),
        net.state_hash()
    );
}

#[test]
fn import_replaces_the_state_and_register_adds_a_subtree() {
    let mut source = Network::new();
    ok(&mut source, group("root", "g"));
    ok(&mut source, contact("g", "x"));
    ok(&mut source, gadget("g", "plus", Primitive::Add));
    ok(&mut source, wire("w", "x", "plus/a"));
    ok(&mut source, write("x", 2.0));
    let doc = source.export();

    let mut target = Network::new();
    ok(&mut target, contact("root", "old"));
    let r = ok(
        &mut target,
        Request::ImportState {
            document: doc.clone(),
        },
    );
    assert_eq!(target.state_hash(), source.state_hash());
    assert!(
        r.changes
            .contains(&Change::ContactRemoved { id: id("old") })
    );

    // A replica that applies the changes ends in the same state.
    let mut replica = Network::new();
    ok(&mut replica, contact("root", "old"));
    for c in &r.changes {
        replica.apply_change(c).expect("change applies");
    }
    assert_eq!(replica.state_hash(), target.state_hash());

    // Register the same subtree again under a fresh group: ids clash, so nothing is added.
    let sub = doc.root.groups[0].clone();
    let e = refused(
        &mut target,
        Request::RegisterGroup {
            parent: id("root"),
            group: sub.clone(),
        },
    );
    assert_eq!(e, Error::DuplicateId { id: id("g") });
    let mut other = Network::new();
    ok(
        &mut other,
        Request::RegisterGroup {
            parent: id("root"),
            group: sub,
        },
    );
    assert_eq!(other.state_hash(), source.state_hash());
}

#[test]
fn register_rolls_back_a_bad_subtree() {
    let mut net = Network::new();
    ok(&mut net, contact("root", "taken"));
    let json = r#"{"id":"new","contacts":[{"id":"fine"},{"id":"taken"}]}"#;
    let group = serde_json::from_str(json).expect("parses");
    let e = refused(
        &mut net,
        Request::RegisterGroup {
            parent: id("root"),
            group,
        },
    );
    assert_eq!(e, Error::DuplicateId { id: id("taken") });
    assert!(net.contact(&id("fine")).is_none());
}

#[test]
fn import_rejects_invalid_documents() {
    let mut net = Network::new();
    let bad_wire = r#"{"format":"bassline-state","version":1,"root":{"id":"root",
        "contacts":[{"id":"a"}],"groups":[{"id":"g","contacts":[{"id":"b"}]}],
        "wires":[{"id":"w","from":"a","to":"b"}]}}"#;
    let doc = StateDocument::from_json(bad_wire).expect("well-formed");
    assert!(matches!(
        refused(&mut net, Request::ImportState { document: doc }),
        Error::InvalidDocument { .. }
    ));
    let bad_gadget = r#"{"format":"bassline-state","version":1,"root":{"id":"root",
        "groups":[{"id":"p","primitive":"add","contacts":[{"id":"p/a"}]}]}}"#;
    let doc = StateDocument::from_json(bad_gadget).expect("well-formed");
    assert!(matches!(
        Network::import(&doc),
        Err(Error::InvalidDocument { .. })
    ));
    let mut future = net.export();
    future.version = bassline_core::VERSION + 1;
    assert_eq!(
        refused(&mut net, Request::ImportState { document: future }),
        Error::UnsupportedVersion {
            found: bassline_core::VERSION + 1,
            supported: bassline_core::VERSION
        }
    );
}

#[test]
fn replicas_follow_every_kind_of_change() {
    let mut host = Network::new();
    let mut replica = Network::new();
    let script = vec![
        group("root", "g"),
        contact_with("g", "port", BlendMode::Merge, Some(Direction::Input)),
        contact("g", "x"),
        gadget("root", "m", Primitive::Max),
        contact("root", "a"),
        wire("w1", "a", "port"),
        wire("w2", "port", "x"),
        wire("w3", "a", "m/a"),
        write("a", 3.0),
        write("m/b", 10.0),
        Request::UpdateContact {
            id: id("x"),
            name: Some("ex".into()),
            blend: None,
        },
        Request::UpdateGroup {
            id: id("g"),
            name: Some("G".into()),
            parent: None,
        },
        group("root", "h"),
        Request::UpdateGroup {
            id: id("g"),
            name: None,
            parent: Some(id("h")),
        },
        Request::Disconnect { id: id("w3") },
        place(&[("x", Some((10, 20)))], &[("h", Some((-5, 7)))]),
        place(&[("x", None)], &[]),
        Request::RemoveContact { id: id("a") },
        Request::RemoveGroup { id: id("m") },
    ];
    for r in script {
        let resp = ok(&mut host, r);
        for c in &resp.changes {
            replica
                .apply_change(c)
                .unwrap_or_else(|e| panic!("{c:?}: {e}"));
        }
        assert_eq!(replica.state_hash(), host.state_hash());
    }
}

type Spot<'a> = (&'a str, Option<(i32, i32)>);

fn place(contacts: &[Spot], groups: &[Spot]) -> Request {
    let list = |items: &[Spot]| {
        items
            .iter()
            .map(|(i, at)| Placement {
                id: id(i),
                at: at.map(|(x, y)| Point { x, y }),
            })
            .collect()
    };
    Request::Place {
        contacts: list(contacts),
        groups: list(groups),
    }
}

#[test]
fn layout_is_exported_imported_and_refused_for_unknown_items() {
    let mut net = Network::new();
    ok(&mut net, group("root", "g"));
    ok(&mut net, contact("root", "a"));
    ok(
        &mut net,
        contact_with("g", "port", BlendMode::AcceptLast, Some(Direction::Input)),
    );
    let r = ok(
        &mut net,
        place(
            &[("a", Some((1, 2))), ("port", Some((3, 4)))],
            &[("g", Some((5, 6)))],
        ),
    );
    assert_eq!(r.changes.len(), 3);
    assert_eq!(
        net.contact(&id("a")).and_then(|c| c.at),
        Some(Point { x: 1, y: 2 })
    );
    assert_eq!(
        net.group(&id("g")).and_then(|g| g.at),
        Some(Point { x: 5, y: 6 })
    );
    let json = net.export().to_json_pretty();
    assert!(json.contains("\"version\": 2"), "{json}");
    let back = Network::import(&StateDocument::from_json(&json).expect("reads")).expect("imports");
    assert_eq!(back.state_hash(), net.state_hash());
    assert_eq!(back.export(), net.export());
    assert_eq!(
        refused(
            &mut net,
            place(&[("a", Some((0, 0)))], &[("nope", Some((0, 0)))])
        ),
        Error::UnknownGroup { id: id("nope") }
    );
    assert_eq!(
        refused(&mut net, place(&[], &[("root", Some((0, 0)))])),
        Error::RootGroup
    );
    // Layout never reaches propagation: a placed contact still takes and passes values.
    ok(&mut net, contact("root", "b"));
    ok(&mut net, wire("w", "a", "b"));
    ok(&mut net, write("a", 4.0));
    assert_eq!(value(&net, "b"), n(4.0));
}

/// Files written before layout existed (version 1) keep loading; they simply place nothing.
#[test]
fn version_1_files_still_load() {
    let v1 = r#"{"format":"bassline-state","version":1,"root":{"id":"root",
        "contacts":[{"id":"a","value":2},{"id":"b"}],
        "wires":[{"id":"w","from":"a","to":"b"}],
        "groups":[{"id":"s","primitive":"add","contacts":[
            {"id":"s/a","boundary":"input"},{"id":"s/b","boundary":"input"},
            {"id":"s/out","boundary":"output"}]}]}}"#;
    let doc = StateDocument::from_json(v1).expect("version 1 reads");
    let net = Network::import(&doc).expect("version 1 imports");
    assert_eq!(net.counts(), (2, 5, 1));
    assert!(net.contacts().all(|c| c.at.is_none()));
    assert_eq!(net.export().version, bassline_core::VERSION);
    // A version-1 file cannot carry layout: `at` is a version-2 field, and is refused there
    // only because the reader checks fields strictly; a newer file gets "upgrade Bassline".
    let newer = v1.replace("\"version\":1", "\"version\":3");
    let e = StateDocument::from_json(&newer).expect_err("newer files are refused");
    assert!(e.to_string().contains("upgrade Bassline"), "{e}");
}
