//! Copy and paste within the network: the selected contacts and subgroups of one group, with
//! the wires among them, pasted as one edit with fresh ids.
//!
//! ```
//! use bassline_web::{clipboard::Clip, ids::IdGen};
//! use bassline_core::{Network, Request, Value, id};
//! let mut net = Network::new();
//! net.apply(Request::AddContact { id: Some(id!("a")), group: id!("root"), name: None,
//!     blend: Default::default(), value: Value::from(1.0), boundary: None }).unwrap();
//! let clip = Clip::copy(&net, &id!("root"), &[id!("a")]);
//! let edit = clip.paste(&net, &id!("root"), &mut IdGen::new(""), (30, 30));
//! for r in edit { net.apply(r).unwrap(); }
//! assert_eq!(net.counts().1, 2);
//! ```

use std::collections::BTreeMap;

use bassline_core::{
    ContactDocument, GroupDocument, Id, Network, OUTPUT, Placement, Point, Request, WireDocument,
};

use crate::ids::IdGen;

/// What was copied.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Clip {
    contacts: Vec<ContactDocument>,
    groups: Vec<GroupDocument>,
    wires: Vec<WireDocument>,
}

impl Clip {
    /// Copies the items of `group` named in `selection` (contacts and subgroups; wires come
    /// along when both their ends do).
    pub fn copy(net: &Network, group: &Id, selection: &[Id]) -> Clip {
        let Ok(state) = net.group_state(group) else {
            return Clip::default();
        };
        let contacts: Vec<ContactDocument> = state
            .contacts
            .iter()
            .filter(|c| selection.contains(&c.id))
            .map(ContactDocument::from)
            .collect();
        let groups: Vec<GroupDocument> = state
            .subgroups
            .iter()
            .filter(|s| selection.contains(&s.group.id))
            .filter_map(|s| net.group_subtree(&s.group.id))
            .collect();
        // Every end a copied wire may have: copied contacts and copied subgroups' boundaries.
        let mut ends: Vec<&Id> = contacts.iter().map(|c| &c.id).collect();
        for g in &groups {
            ends.extend(
                g.contacts
                    .iter()
                    .filter(|c| c.boundary.is_some())
                    .map(|c| &c.id),
            );
        }
        let wires = state
            .wires
            .iter()
            .filter(|w| ends.contains(&&w.from) && ends.contains(&&w.to))
            .map(|w| WireDocument {
                id: w.id.clone(),
                from: w.from.clone(),
                to: w.to.clone(),
                kind: w.kind,
            })
            .collect();
        Clip {
            contacts,
            groups,
            wires,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty() && self.groups.is_empty()
    }

    /// The top-level items copied.
    pub fn len(&self) -> usize {
        self.contacts.len() + self.groups.len()
    }

    /// The requests that paste the clip into `group`, shifted by `offset`, with fresh ids.
    pub fn paste(
        &self,
        net: &Network,
        group: &Id,
        ids: &mut IdGen,
        offset: (i32, i32),
    ) -> Vec<Request> {
        let mut renamed: BTreeMap<Id, Id> = BTreeMap::new();
        let shift = |at: Option<Point>| {
            at.map(|p| Point {
                x: p.x.saturating_add(offset.0),
                y: p.y.saturating_add(offset.1),
            })
        };
        let mut edit = Vec::new();
        let mut placed = Vec::new();
        let is_root = net.group(group).is_some_and(|g| g.parent.is_none());
        for c in &self.contacts {
            let id = ids.fresh(net, 'c');
            renamed.insert(c.id.clone(), id.clone());
            edit.push(Request::AddContact {
                id: Some(id.clone()),
                group: group.clone(),
                name: c.name.clone(),
                blend: c.blend,
                value: c.value.clone(),
                // The root has no boundary; a boundary contact pasted there is a plain one.
                boundary: c.boundary.filter(|_| !is_root),
            });
            placed.push(Placement {
                id,
                at: shift(c.at),
            });
        }
        for g in &self.groups {
            let mut doc = g.clone();
            doc.at = shift(doc.at);
            let doc = renumber(net, doc, ids, &mut renamed);
            edit.push(Request::RegisterGroup {
                parent: group.clone(),
                group: doc,
            });
        }
        if placed.iter().any(|p| p.at.is_some()) {
            edit.push(Request::Place {
                contacts: placed,
                groups: Vec::new(),
            });
        }
        for w in &self.wires {
            let (Some(from), Some(to)) = (renamed.get(&w.from), renamed.get(&w.to)) else {
                continue;
            };
            edit.push(Request::Connect {
                id: Some(ids.fresh(net, 'w')),
                from: from.clone(),
                to: to.clone(),
                kind: w.kind,
            });
        }
        edit
    }
}

/// Gives a copied group and everything inside it fresh ids, recording each renaming. A
/// primitive gadget's boundary contacts must be named `<gadget>/<port>`, so they follow their
/// gadget's new id.
fn renumber(
    net: &Network,
    mut doc: GroupDocument,
    ids: &mut IdGen,
    renamed: &mut BTreeMap<Id, Id>,
) -> GroupDocument {
    let old = doc.id.clone();
    doc.id = ids.fresh(net, 'g');
    renamed.insert(old.clone(), doc.id.clone());
    for c in &mut doc.contacts {
        let new = if doc.primitive.is_some() {
            let port =
                c.id.as_str()
                    .strip_prefix(&format!("{old}/"))
                    .unwrap_or(OUTPUT);
            Id::new(&format!("{}/{port}", doc.id)).unwrap_or_else(|_| ids.fresh(net, 'c'))
        } else {
            ids.fresh(net, 'c')
        };
        renamed.insert(c.id.clone(), new.clone());
        c.id = new;
    }
    doc.groups = std::mem::take(&mut doc.groups)
        .into_iter()
        .map(|g| renumber(net, g, ids, renamed))
        .collect();
    for w in &mut doc.wires {
        w.id = ids.fresh(net, 'w');
        if let Some(f) = renamed.get(&w.from) {
            w.from = f.clone();
        }
        if let Some(t) = renamed.get(&w.to) {
            w.to = t.clone();
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use bassline_core::{BlendMode, Direction, Primitive, Value, id};

    fn apply(net: &mut Network, rs: Vec<Request>) {
        for r in rs {
            let show = format!("{r:?}");
            net.apply(r).unwrap_or_else(|e| panic!("{show}: {e}"));
        }
    }

    #[test]
    fn pasting_copies_values_wires_and_whole_groups_with_fresh_ids() {
        let mut net = Network::new();
        apply(
            &mut net,
            vec![
                Request::AddContact {
                    id: Some(id!("a")),
                    group: id!("root"),
                    name: Some("input".into()),
                    blend: BlendMode::Merge,
                    value: Value::from(2.0),
                    boundary: None,
                },
                crate::testing::group("root", "s", Some(Primitive::Add)),
                Request::AddGroup {
                    id: Some(id!("g")),
                    parent: id!("root"),
                    name: Some("box".into()),
                    primitive: None,
                },
                crate::testing::contact_with("g", "g/in", Value::Null, Some(Direction::Input)),
                crate::testing::wire("w1", "a", "s/a", Default::default()),
                crate::testing::wire("w2", "a", "g/in", Default::default()),
                Request::Place {
                    contacts: vec![Placement {
                        id: id!("a"),
                        at: Some(Point { x: 5, y: 5 }),
                    }],
                    groups: vec![],
                },
            ],
        );
        let clip = Clip::copy(&net, &id!("root"), &[id!("a"), id!("s")]);
        assert_eq!(clip.len(), 2);
        assert_eq!(clip.wires.len(), 1, "only the wire between copied items");
        let (groups, contacts, wires) = net.counts();
        let edit = clip.paste(&net, &id!("root"), &mut IdGen::new(""), (30, 40));
        apply(&mut net, edit);
        assert_eq!(net.counts(), (groups + 1, contacts + 4, wires + 1));
        let copy = net
            .contacts()
            .find(|c| c.name.as_deref() == Some("input") && c.id != id!("a"))
            .expect("the copy");
        assert_eq!(copy.at, Some(Point { x: 35, y: 45 }));
        assert_eq!(copy.blend, BlendMode::Merge);
        // The copied wire feeds the copied gadget: its sum follows the copy's value.
        let gadget = net
            .groups()
            .find(|g| g.primitive == Some(Primitive::Add) && g.id != id!("s"))
            .expect("the copied gadget")
            .id
            .clone();
        assert_eq!(
            net.contact(&id!(&format!("{gadget}/a")))
                .map(|c| c.value.clone()),
            Some(Value::from(2.0))
        );
        // A group with contents pastes whole.
        let clip = Clip::copy(&net, &id!("root"), &[id!("g")]);
        let edit = clip.paste(&net, &id!("root"), &mut IdGen::new("p-"), (0, 0));
        apply(&mut net, edit);
        assert!(
            net.groups()
                .any(|g| g.name.as_deref() == Some("box") && g.id != id!("g"))
        );
    }

    #[test]
    fn nothing_selected_or_an_unknown_group_copies_nothing() {
        let net = Network::new();
        assert!(Clip::copy(&net, &id!("root"), &[]).is_empty());
        assert!(Clip::copy(&net, &id!("nope"), &[id!("a")]).is_empty());
    }
}
