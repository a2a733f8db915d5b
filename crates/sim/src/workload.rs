//! What the simulated users do: edits chosen against what each peer sees, racing each other
//! on the same contacts and groups, and the network every run starts from.

use bassline_core::{
    BlendMode, ContactDocument, GroupDocument, Id, Network, Placement, Point, Primitive, Request,
    StateDocument, Value, WireKind,
};

use crate::{Rng, oracle::Watched};

fn id(s: &str) -> Id {
    Id::new(s).expect("workload ids are valid")
}

/// Contacts written directly by everyone, whose outcome the oracle computes itself. The
/// workload never wires into them, removes them or changes their mode.
pub fn watched() -> Vec<Watched> {
    [
        ("hot0", BlendMode::AcceptLast),
        ("hot1", BlendMode::AcceptLast),
        ("hot5", BlendMode::AcceptLast),
        ("hot3", BlendMode::Merge),
        ("hot4", BlendMode::Merge),
    ]
    .into_iter()
    .map(|(c, blend)| Watched {
        contact: id(c),
        blend,
    })
    .collect()
}

/// The network every simulation starts from: shared "hot" contacts that every peer writes to
/// concurrently (two of them feed a gadget whose sum lands in `hot2`), and a group.
pub fn seed_network() -> Network {
    let mut net = Network::new();
    net.apply(Request::ImportState {
        document: seed_document(0),
    })
    .expect("the seed network is valid");
    net
}

/// The seed network as a document, with `extra` more contacts in a group of their own (an
/// import of a large network, to push states past one frame).
pub fn seed_document(extra: usize) -> StateDocument {
    let contact = |c: &str, blend: BlendMode, value: Value| ContactDocument {
        id: id(c),
        name: None,
        blend,
        value,
        contradiction: None,
        boundary: None,
        at: None,
    };
    let mut root = GroupDocument {
        id: id("root"),
        name: None,
        primitive: None,
        at: None,
        contacts: vec![
            contact("hot0", BlendMode::AcceptLast, Value::Number(0.0)),
            contact("hot1", BlendMode::AcceptLast, Value::Number(0.0)),
            contact("hot2", BlendMode::AcceptLast, Value::Number(0.0)),
            contact("hot3", BlendMode::Merge, Value::Number(0.0)),
            contact("hot4", BlendMode::Merge, Value::Null),
            contact("hot5", BlendMode::AcceptLast, Value::Null),
        ],
        wires: Vec::new(),
        groups: Vec::new(),
    };
    let mut sum = GroupDocument {
        id: id("sum"),
        name: None,
        primitive: Some(Primitive::Add),
        at: None,
        contacts: Vec::new(),
        wires: Vec::new(),
        groups: Vec::new(),
    };
    let mut net = Network::new();
    net.apply(Request::AddGroup {
        id: Some(id("sum")),
        parent: id("root"),
        name: None,
        primitive: Some(Primitive::Add),
    })
    .expect("a gadget");
    sum.contacts = net
        .export()
        .root
        .groups
        .into_iter()
        .next()
        .expect("the gadget")
        .contacts;
    root.groups.push(sum);
    for (w, from, to) in [
        ("w-a", "hot0", "sum/a"),
        ("w-b", "hot1", "sum/b"),
        ("w-out", "sum/out", "hot2"),
    ] {
        root.wires.push(bassline_core::WireDocument {
            id: id(w),
            from: id(from),
            to: id(to),
            kind: WireKind::Directed,
        });
    }
    root.groups.push(GroupDocument {
        id: id("shared"),
        name: Some("Shared".into()),
        primitive: None,
        at: None,
        contacts: (0..extra)
            .map(|i| {
                contact(
                    &format!("bulk{i}"),
                    BlendMode::AcceptLast,
                    Value::String(format!("value {i} of a large imported network")),
                )
            })
            .collect(),
        wires: Vec::new(),
        groups: Vec::new(),
    });
    StateDocument::new(root)
}

/// One random edit by peer `me`, chosen against what `net` (that peer's view) holds. `n` makes
/// chosen ids unique per peer; about half of the creating edits leave the id to the session.
pub fn edit(me: u64, n: u64, net: &Network, r: &mut Rng) -> Option<Request> {
    let mut contacts: Vec<Id> = net.contacts().map(|c| c.id.clone()).collect();
    contacts.sort();
    let mut groups: Vec<Id> = net
        .groups()
        .filter(|g| g.primitive.is_none())
        .map(|g| g.id.clone())
        .collect();
    groups.sort();
    let mut gadgets: Vec<Id> = net
        .groups()
        .filter(|g| g.primitive.is_some() && g.id.as_str() != "sum")
        .map(|g| g.id.clone())
        .collect();
    gadgets.sort();
    let mut wires: Vec<Id> = net.wires().map(|w| w.id.clone()).collect();
    wires.sort();
    let chosen = |kind: &str, r: &mut Rng| r.chance(0.5).then(|| id(&format!("p{me}-{kind}{n}")));
    let hot = |c: &Id| c.as_str().starts_with("hot") || c.as_str().starts_with("sum");
    // Contacts the workload may wire, remove or switch: not watched, not a gadget's port.
    let free: Vec<Id> = contacts
        .iter()
        .filter(|c| !hot(c) && !c.as_str().contains('/'))
        .cloned()
        .collect();
    let group = |r: &mut Rng| r.pick(&groups).cloned().unwrap_or_else(|| id("root"));
    Some(match r.below(22) {
        0..=2 => Request::UpdateContent {
            contact: id(["hot0", "hot1", "hot5"][r.below(3) as usize]),
            value: Value::Number(r.range(0, 100) as f64),
        },
        3 => Request::UpdateContent {
            contact: id("hot3"),
            value: if r.chance(0.5) {
                Value::Number(r.range(0, 100) as f64)
            } else {
                Value::grow_set([Value::Number(r.below(6) as f64)])
            },
        },
        4 => Request::UpdateContent {
            contact: id("hot4"),
            value: match r.below(3) {
                0 => Value::String(["left", "right"][r.below(2) as usize].into()),
                _ => Value::GrowMap(
                    [(
                        ["a", "b", "c"][r.below(3) as usize].to_owned(),
                        Value::Number(r.below(9) as f64),
                    )]
                    .into(),
                ),
            },
        },
        5..=6 => Request::UpdateContent {
            contact: r.pick(&free).cloned()?,
            value: if r.chance(0.7) {
                Value::Number(r.range(0, 50) as f64)
            } else {
                Value::grow_set([Value::from("x")])
            },
        },
        7 => Request::AddContact {
            id: chosen("c", r),
            group: group(r),
            name: None,
            blend: if r.chance(0.3) {
                BlendMode::Merge
            } else {
                BlendMode::AcceptLast
            },
            value: Value::Number(r.below(10) as f64),
            boundary: None,
        },
        8 => Request::AddGroup {
            id: chosen("g", r),
            parent: group(r),
            name: None,
            primitive: r
                .chance(0.4)
                .then(|| Primitive::ALL[r.below(Primitive::ALL.len() as u64) as usize]),
        },
        9 => {
            // Plain contacts wired either way (cycles of plain contacts settle), or a contact
            // into a gadget's input. Never a gadget's output back into the graph: a loop
            // through a gadget runs to the step budget, which the core crate tests.
            let from = r.pick(&free).cloned()?;
            let to = match r.pick(&gadgets) {
                Some(g) if r.chance(0.3) => Id::new(&format!("{g}/a")).ok()?,
                _ => r.pick(&free).cloned()?,
            };
            Request::Connect {
                id: chosen("w", r),
                from,
                to,
                kind: if r.chance(0.5) {
                    WireKind::Directed
                } else {
                    WireKind::Bidirectional
                },
            }
        }
        10 => Request::Disconnect {
            id: r
                .pick(&wires)
                .filter(|w| !w.as_str().starts_with("w-"))
                .cloned()?,
        },
        11 => Request::RemoveContact {
            id: r.pick(&free).cloned()?,
        },
        12 => {
            let removable: Vec<Id> = groups
                .iter()
                .chain(&gadgets)
                .filter(|g| !matches!(g.as_str(), "root" | "sum" | "shared"))
                .cloned()
                .collect();
            Request::RemoveGroup {
                id: r.pick(&removable).cloned()?,
            }
        }
        13 => Request::UpdateGroup {
            id: r
                .pick(&groups)
                .filter(|g| !matches!(g.as_str(), "root" | "shared"))
                .cloned()?,
            name: r.chance(0.5).then(|| format!("renamed {n}")),
            parent: Some(group(r)),
        },
        14 => Request::UpdateContact {
            id: r.pick(&free).cloned()?,
            name: None,
            blend: Some(if r.chance(0.5) {
                BlendMode::Merge
            } else {
                BlendMode::AcceptLast
            }),
        },
        15 => Request::RegisterGroup {
            parent: group(r),
            group: GroupDocument {
                id: id(&format!("p{me}-reg{n}")),
                name: Some("registered".into()),
                primitive: None,
                at: None,
                contacts: (0..3)
                    .map(|i| ContactDocument {
                        id: id(&format!("p{me}-reg{n}-c{i}")),
                        name: None,
                        blend: BlendMode::AcceptLast,
                        value: Value::Number(f64::from(i)),
                        contradiction: None,
                        boundary: None,
                        at: None,
                    })
                    .collect(),
                wires: Vec::new(),
                groups: Vec::new(),
            },
        },
        20 => {
            // Layout is shared state too: moves travel like every other edit.
            let at = |r: &mut Rng| {
                Some(Point {
                    x: r.range(0, 800) as i32 - 400,
                    y: r.range(0, 600) as i32 - 300,
                })
            };
            Request::Place {
                contacts: r
                    .pick(&contacts)
                    .map(|c| Placement {
                        id: c.clone(),
                        at: at(r),
                    })
                    .into_iter()
                    .collect(),
                groups: r
                    .pick(&groups)
                    .filter(|g| g.as_str() != "root")
                    .map(|g| Placement {
                        id: g.clone(),
                        at: at(r),
                    })
                    .into_iter()
                    .collect(),
            }
        }
        _ => {
            // Any contact but the watched ones (the oracle models only the values above) and
            // gadget outputs (their gadget owns them).
            let contact = r.pick(&contacts).cloned()?;
            if contact.as_str().starts_with("hot") || contact.as_str().ends_with("/out") {
                return None;
            }
            Request::UpdateContent {
                contact,
                value: Value::Number(r.range(0, 9) as f64),
            }
        }
    })
}
