//! What the canvas draws for one group, worked out from the network: nodes with their place and
//! text, ports, and wires between node anchors.
//!
//! Each node is a plain value that compares equal while nothing visible about it changed, so
//! the UI can key its DOM nodes by them: a change from elsewhere redraws only what it touched,
//! and the selection and viewport (kept apart, by id) are never disturbed.
//!
//! ```
//! use bassline_web::view::GroupView;
//! use bassline_core::{Network, Primitive, Request, id};
//! let mut net = Network::new();
//! net.apply(Request::AddGroup { id: Some(id!("s")), parent: id!("root"), name: None,
//!     primitive: Some(Primitive::Add) }).unwrap();
//! let v = GroupView::build(&net, &id!("root")).unwrap();
//! assert_eq!(v.nodes[0].ports.len(), 3);
//! ```

use std::collections::HashMap;

use bassline_core::{Contact, Direction, Id, Network, Point, Primitive};

use crate::{
    geometry::{CONTACT_H, CONTACT_W, GROUP_W, group_height, port_offset},
    value_input::{short_value, show_value},
};

/// What kind of node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    Contact {
        merge: bool,
        boundary: Option<Direction>,
    },
    Gadget(Primitive),
    Group,
}

/// A port on a subgroup node: one of its boundary contacts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PortView {
    pub contact: Id,
    pub label: String,
    pub input: bool,
    /// Offset from the node's top-left corner.
    pub dx: i32,
    pub dy: i32,
    pub value: String,
    pub contradiction: bool,
}

/// One node on the canvas.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeView {
    pub id: Id,
    pub kind: NodeKind,
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
    /// The stored position, or `None` when the editor chose one (nothing placed it yet).
    pub placed: bool,
    pub label: String,
    /// The value as the node shows it (cut short), and in full for the tooltip.
    pub value: String,
    pub full_value: String,
    /// "kept X, refused Y: reason", when the contact recorded a contradiction.
    pub contradiction: Option<String>,
    pub ports: Vec<PortView>,
}

/// A point on a node: the node and an offset from its top-left corner.
pub type Anchor = (Id, i32, i32);

/// A wire between two anchors, each a node plus an offset inside it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WireView {
    pub id: Id,
    pub directed: bool,
    pub from: Anchor,
    pub to: Anchor,
}

/// Everything drawn for one group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupView {
    pub nodes: Vec<NodeView>,
    pub wires: Vec<WireView>,
    /// Where each node is in `nodes`: every drawn node looks itself up on every change.
    index: HashMap<Id, usize>,
}

/// Where an unplaced item goes: a grid filling rows of six, in the order the group lists them,
/// so every peer and every reload draws the same picture until someone moves it.
pub fn default_spot(index: usize) -> Point {
    let (col, row) = ((index % 6) as i32, (index / 6) as i32);
    Point {
        x: 40 + col * (GROUP_W + 48),
        y: 40 + row * 120,
    }
}

/// "kept 1, refused 2: reason".
pub fn contradiction_text(c: &Contact) -> Option<String> {
    c.contradiction.as_ref().map(|k| {
        format!(
            "kept {}, refused {}: {}",
            show_or_empty(&k.existing),
            show_or_empty(&k.incoming),
            k.reason
        )
    })
}

fn show_or_empty(v: &bassline_core::Value) -> String {
    if v.is_null() {
        "nothing".to_owned()
    } else {
        v.to_string()
    }
}

/// The name a person reads for a contact: its name, or the last part of its id.
pub fn contact_label(c: &Contact) -> String {
    c.name.clone().unwrap_or_else(|| {
        let id = c.id.as_str();
        id.rsplit('/').next().unwrap_or(id).to_owned()
    })
}

impl GroupView {
    /// The view of `group`, or `None` if it does not exist (any more).
    pub fn build(net: &Network, group: &Id) -> Option<GroupView> {
        let state = net.group_state(group).ok()?;
        let mut nodes = Vec::new();
        // Per contact: where wires leave it and where they arrive.
        let mut anchor: Vec<(Id, Anchor, Anchor)> = Vec::new();
        let mut index = 0;
        for c in &state.contacts {
            let spot = c.at.unwrap_or_else(|| default_spot(index));
            index += 1;
            let left = (c.id.clone(), 0, CONTACT_H / 2);
            let right = (c.id.clone(), CONTACT_W, CONTACT_H / 2);
            anchor.push((c.id.clone(), right, left));
            nodes.push(NodeView {
                id: c.id.clone(),
                kind: NodeKind::Contact {
                    merge: c.blend == bassline_core::BlendMode::Merge,
                    boundary: c.boundary,
                },
                x: spot.x,
                y: spot.y,
                w: CONTACT_W,
                h: CONTACT_H,
                placed: c.at.is_some(),
                label: contact_label(c),
                value: short_value(&c.value, 16),
                full_value: show_value(&c.value),
                contradiction: contradiction_text(c),
                ports: Vec::new(),
            });
        }
        for s in &state.subgroups {
            let spot = s.group.at.unwrap_or_else(|| default_spot(index));
            index += 1;
            let (mut ins, mut outs) = (0, 0);
            let mut ports = Vec::new();
            for c in &s.boundary {
                let input = c.boundary == Some(Direction::Input);
                let row = if input { &mut ins } else { &mut outs };
                let (dx, dy) = port_offset(*row, input);
                *row += 1;
                let here = (s.group.id.clone(), dx, dy);
                anchor.push((c.id.clone(), here.clone(), here));
                ports.push(PortView {
                    contact: c.id.clone(),
                    label: contact_label(c),
                    input,
                    dx,
                    dy,
                    value: short_value(&c.value, 8),
                    contradiction: c.contradiction.is_some(),
                });
            }
            let contradiction = s.boundary.iter().find_map(contradiction_text);
            let (kind, label) = match s.group.primitive {
                Some(p) => (NodeKind::Gadget(p), p.name().to_owned()),
                None => (
                    NodeKind::Group,
                    s.group
                        .name
                        .clone()
                        .unwrap_or_else(|| s.group.id.to_string()),
                ),
            };
            nodes.push(NodeView {
                id: s.group.id.clone(),
                kind,
                x: spot.x,
                y: spot.y,
                w: GROUP_W,
                h: group_height(ins, outs),
                placed: s.group.at.is_some(),
                label,
                value: String::new(),
                full_value: String::new(),
                contradiction,
                ports,
            });
        }
        // By id: a linear search per wire end made each rebuild of a group of 1,000 contacts
        // and 975 wires cost about a million id comparisons.
        let anchor: HashMap<&Id, (&Anchor, &Anchor)> =
            anchor.iter().map(|(c, out, inp)| (c, (out, inp))).collect();
        let wires = state
            .wires
            .iter()
            .filter_map(|w| {
                let (out, _) = anchor.get(&w.from)?;
                let (_, inp) = anchor.get(&w.to)?;
                Some(WireView {
                    id: w.id.clone(),
                    directed: w.kind == bassline_core::WireKind::Directed,
                    from: (*out).clone(),
                    to: (*inp).clone(),
                })
            })
            .collect();
        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
        Some(GroupView {
            nodes,
            wires,
            index,
        })
    }

    /// The canvas rectangle holding every node, if there is any.
    pub fn bounds(&self) -> Option<(f64, f64, f64, f64)> {
        let mut it = self.nodes.iter();
        let first = it.next()?;
        let mut b = (first.x, first.y, first.x + first.w, first.y + first.h);
        for n in it {
            b = (
                b.0.min(n.x),
                b.1.min(n.y),
                b.2.max(n.x + n.w),
                b.3.max(n.y + n.h),
            );
        }
        Some((b.0.into(), b.1.into(), b.2.into(), b.3.into()))
    }

    pub fn node(&self, id: &Id) -> Option<&NodeView> {
        self.index.get(id).and_then(|&i| self.nodes.get(i))
    }
}

/// The groups from the root down to `group`, for the breadcrumbs: (id, label).
pub fn path_to(net: &Network, group: &Id) -> Vec<(Id, String)> {
    let mut path = Vec::new();
    let mut at = net.group(group);
    while let Some(g) = at {
        let label = match (&g.parent, &g.name) {
            (None, _) => "Root".to_owned(),
            (_, Some(name)) => name.clone(),
            (_, None) => g.id.to_string(),
        };
        path.push((g.id.clone(), label));
        at = g.parent.as_ref().and_then(|p| net.group(p));
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use bassline_core::{Placement, Request, Value, id};

    fn net() -> Network {
        let mut net = Network::new();
        for r in [
            testing::contact_with("root", "a", Value::from(2.0), None),
            testing::group("root", "s", Some(Primitive::Add)),
            testing::wire("w", "a", "s/a", bassline_core::WireKind::Directed),
            Request::AddGroup {
                id: Some(id!("g")),
                parent: id!("root"),
                name: Some("Inner".into()),
                primitive: None,
            },
        ] {
            net.apply(r).expect("valid");
        }
        net
    }

    #[test]
    fn nodes_ports_and_wires_are_placed_and_anchored() {
        let mut net = net();
        let v = GroupView::build(&net, &id!("root")).expect("root exists");
        assert_eq!(v.nodes.len(), 3);
        let a = v.node(&id!("a")).expect("a");
        assert!(!a.placed);
        assert_eq!((a.x, a.y), (40, 40));
        assert_eq!(a.value, "2");
        let gadget = v.node(&id!("s")).expect("gadget");
        assert_eq!(gadget.ports.iter().filter(|p| p.input).count(), 2);
        assert_eq!(v.wires.len(), 1);
        let w = &v.wires[0];
        assert!(w.directed);
        assert_eq!(w.from, (id!("a"), CONTACT_W, CONTACT_H / 2));
        assert_eq!(w.to.0, id!("s"), "a port anchors on its gadget node");
        net.apply(Request::Place {
            contacts: vec![Placement {
                id: id!("a"),
                at: Some(Point { x: -10, y: 7 }),
            }],
            groups: vec![],
        })
        .expect("valid");
        let moved = GroupView::build(&net, &id!("root")).expect("root");
        let a2 = moved.node(&id!("a")).expect("a");
        assert_eq!((a2.x, a2.y, a2.placed), (-10, 7, true));
        // Untouched nodes compare equal, so the UI keeps their DOM nodes.
        assert_eq!(moved.node(&id!("g")), v.node(&id!("g")));
        assert!(GroupView::build(&net, &id!("nope")).is_none());
        let path = path_to(&net, &id!("g"));
        assert_eq!(
            path.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>(),
            ["Root", "Inner"]
        );
    }

    #[test]
    fn contradictions_read_with_both_values_and_the_reason() {
        let mut net = Network::new();
        net.apply(Request::AddContact {
            id: Some(id!("m")),
            group: id!("root"),
            name: None,
            blend: bassline_core::BlendMode::Merge,
            value: Value::from("x"),
            boundary: None,
        })
        .expect("valid");
        net.apply(Request::UpdateContent {
            contact: id!("m"),
            value: Value::from("y"),
        })
        .expect("valid");
        let v = GroupView::build(&net, &id!("root")).expect("root");
        let text = v.nodes[0].contradiction.clone().expect("a contradiction");
        assert!(text.starts_with("kept \"x\", refused \"y\": "), "{text}");
    }
}
