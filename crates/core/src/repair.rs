//! Repairing a replica that diverged: replace the groups whose shallow hashes differ.
//!
//! ```
//! use bassline_core::{Network, Request, Value, id};
//! let mut host = Network::new();
//! host.apply(Request::AddContact { id: Some(id!("a")), group: id!("root"), name: None,
//!     blend: Default::default(), value: Value::from(1.0), boundary: None }).unwrap();
//! let mut guest = Network::new();
//! let (remove, groups) = host.repair_for(&guest.shallow_hashes());
//! guest.repair(&remove, &groups).unwrap();
//! assert_eq!(guest.state_hash(), host.state_hash());
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    Change, Error, GroupDocument, GroupInfo, Id, Network, StateDocument, StateHash,
    document::ContactDocument,
};

impl Network {
    /// A group's own contents, with its subgroups as empty stubs, and its parent (the root's
    /// "parent" is itself).
    pub fn shallow_document(&self, id: &Id) -> Option<(Id, GroupDocument)> {
        let g = self.groups.get(id)?;
        let mut doc = self.group_document_shallow(id);
        doc.groups = g
            .groups
            .iter()
            .map(|s| {
                let sub = &self.groups[s].info;
                GroupDocument {
                    id: s.clone(),
                    name: sub.name.clone(),
                    primitive: sub.primitive,
                    at: sub.at,
                    contacts: Vec::new(),
                    wires: Vec::new(),
                    groups: Vec::new(),
                }
            })
            .collect();
        Some((g.info.parent.clone().unwrap_or_else(|| id.clone()), doc))
    }

    fn group_document_shallow(&self, id: &Id) -> GroupDocument {
        let g = &self.groups[id];
        let mut doc = GroupDocument {
            id: id.clone(),
            name: g.info.name.clone(),
            primitive: g.info.primitive,
            at: g.info.at,
            contacts: Vec::new(),
            wires: Vec::new(),
            groups: Vec::new(),
        };
        let full = self.group_document(id);
        doc.contacts = full.contacts;
        doc.wires = full.wires;
        doc
    }

    /// What a replica with the given shallow hashes needs to match this network: the groups it
    /// should drop, and the groups (parent first) it should take as they are here.
    pub fn repair_for(
        &self,
        theirs: &BTreeMap<Id, StateHash>,
    ) -> (Vec<Id>, Vec<(Id, GroupDocument)>) {
        let ours = self.shallow_hashes();
        let remove = theirs
            .keys()
            .filter(|id| !ours.contains_key(*id))
            .cloned()
            .collect();
        let mut groups = Vec::new();
        // Walk top-down so every parent comes before its subgroups.
        let mut stack = vec![self.root().clone()];
        while let Some(id) = stack.pop() {
            if theirs.get(&id) != ours.get(&id)
                && let Some(entry) = self.shallow_document(&id)
            {
                groups.push(entry);
            }
            stack.extend(self.groups[&id].groups.iter().rev().cloned());
        }
        (remove, groups)
    }

    /// Applies a repair computed by [`Network::repair_for`] on the healthy side. Returns the
    /// changes made, for the UI. On error the replica may be partly repaired; ask for the whole
    /// state then.
    pub fn repair(
        &mut self,
        remove: &[Id],
        groups: &[(Id, GroupDocument)],
    ) -> Result<Vec<Change>, Error> {
        let mut changes = Vec::new();
        // Removals wait until every group the healthy side still has is in its place: a
        // group to remove may hold one that moved out of it there, with all its contents.
        let mut doomed: Vec<Id> = remove.to_vec();
        // Pass 1: the groups themselves, parents first. A group whose parent differs is in
        // the list (the shallow hash covers the parent), so each moves at its own turn; its
        // new parent is already in place, so a move never makes a cycle.
        for (parent, doc) in groups {
            let is_root = doc.id == *self.root();
            let same_kind = self
                .groups
                .get(&doc.id)
                .map(|g| g.info.primitive == doc.primitive);
            if same_kind == Some(false) && !is_root {
                // Its subgroups may live on elsewhere on the healthy side: park them at the
                // root (their own turn, or the removals below, settles them), then rebuild it.
                let root = self.root().clone();
                let children: Vec<Id> = self.groups[&doc.id].groups.iter().cloned().collect();
                for child in children {
                    self.update_group(&child, None, Some(root.clone()), &mut changes)?;
                }
                self.remove_group(&doc.id, &mut changes);
            }
            if !self.groups.contains_key(&doc.id) {
                let info = GroupInfo {
                    id: doc.id.clone(),
                    parent: Some(parent.clone()),
                    name: doc.name.clone(),
                    primitive: doc.primitive,
                    at: doc.at,
                };
                self.insert_group(info, false, &mut changes)?;
            } else if !is_root && self.groups[&doc.id].info.parent.as_ref() != Some(parent) {
                self.update_group(&doc.id, None, Some(parent.clone()), &mut changes)?;
            }
            let g = self.groups.get_mut(&doc.id).expect("present after pass 1");
            if g.info.name != doc.name {
                g.info.name = doc.name.clone();
                changes.push(Change::GroupUpdated {
                    group: g.info.clone(),
                });
            }
            if g.info.at != doc.at {
                g.info.at = doc.at;
                changes.push(Change::GroupPlaced {
                    id: doc.id.clone(),
                    at: doc.at,
                });
            }
            // Subgroups the healthy side does not list here have moved or gone.
            let listed: Vec<&Id> = doc.groups.iter().map(|s| &s.id).collect();
            doomed.extend(
                g.groups
                    .iter()
                    .filter(|s| !listed.contains(s) && !groups.iter().any(|(_, d)| d.id == **s))
                    .cloned(),
            );
        }
        for id in &doomed {
            if *id != *self.root() && self.groups.contains_key(id) {
                self.remove_group(id, &mut changes);
            }
        }
        // Pass 2: contacts.
        for (_, doc) in groups {
            let wanted: BTreeMap<&Id, &ContactDocument> =
                doc.contacts.iter().map(|c| (&c.id, c)).collect();
            let present: Vec<Id> = self.groups[&doc.id].contacts.iter().cloned().collect();
            for c in present.iter().filter(|c| !wanted.contains_key(c)) {
                self.remove_contact(c, &mut changes);
            }
            for c in &doc.contacts {
                let target = c.to_contact(&doc.id);
                match self.contacts.get(&c.id) {
                    Some(existing) if *existing == target => {}
                    Some(existing)
                        if existing.group == target.group
                            && existing.boundary == target.boundary =>
                    {
                        changes.push(Change::ContactUpdated {
                            id: target.id.clone(),
                            value: target.value.clone(),
                            contradiction: target.contradiction.clone(),
                            name: target.name.clone(),
                            blend: target.blend,
                        });
                        if existing.at != target.at {
                            changes.push(Change::ContactPlaced {
                                id: target.id.clone(),
                                at: target.at,
                            });
                        }
                        self.contacts.insert(target.id.clone(), target);
                    }
                    Some(_) => {
                        self.remove_contact(&c.id, &mut changes);
                        self.insert_contact(target, true, &mut changes)?;
                    }
                    None => self.insert_contact(target, true, &mut changes)?,
                }
            }
        }
        // Pass 3: wires, once every contact they may join exists.
        for (_, doc) in groups {
            let present: Vec<Id> = self.groups[&doc.id].wires.iter().cloned().collect();
            for w in &present {
                let keep = doc.wires.iter().any(|d| {
                    let have = &self.wires[w];
                    d.id == *w && d.from == have.from && d.to == have.to && d.kind == have.kind
                });
                if !keep {
                    self.remove_wire(w, &mut changes);
                }
            }
            for d in &doc.wires {
                if !self.wires.contains_key(&d.id) {
                    self.insert_wire(
                        d.id.clone(),
                        Some(&doc.id),
                        d.from.clone(),
                        d.to.clone(),
                        d.kind,
                        &mut changes,
                    )?;
                }
            }
        }
        Ok(changes)
    }
}

impl Network {
    /// A document holding only part of the network, for showing it before the whole has
    /// arrived: the `first` groups whole, the own contents of every group on the way to them
    /// (the root always), and every other subgroup as a stub with just its boundary contacts, so
    /// that every wire in the document has both ends. It imports as a valid network.
    pub fn partial_document(&self, first: &[Id]) -> StateDocument {
        let wanted: BTreeSet<&Id> = first
            .iter()
            .filter(|g| self.groups.contains_key(*g))
            .collect();
        let mut on_path: BTreeSet<Id> = BTreeSet::new();
        for g in &wanted {
            let mut at = self.groups.get(*g).and_then(|g| g.info.parent.clone());
            while let Some(p) = at {
                at = self.groups.get(&p).and_then(|g| g.info.parent.clone());
                on_path.insert(p);
            }
        }
        StateDocument::new(self.partial_group(self.root(), &wanted, &on_path))
    }

    fn partial_group(
        &self,
        id: &Id,
        wanted: &BTreeSet<&Id>,
        on_path: &BTreeSet<Id>,
    ) -> GroupDocument {
        if wanted.contains(id) || *id == *self.root() && wanted.is_empty() {
            return self.group_document(id);
        }
        let mut doc = self.group_document_shallow(id);
        if !on_path.contains(id) && *id != *self.root() {
            // A stub: only what the parent's wires may reach.
            doc.contacts.retain(|c| c.boundary.is_some());
            doc.wires.clear();
            return doc;
        }
        doc.groups = self.groups[id]
            .groups
            .iter()
            .map(|s| self.partial_group(s, wanted, on_path))
            .collect();
        doc
    }
}

#[cfg(test)]
mod tests {
    use crate::{Network, Placement, Point, Primitive, Request, Value, id};

    fn group(net: &mut Network, g: &str, parent: &str, primitive: Option<Primitive>) {
        net.apply(Request::AddGroup {
            id: Some(id!(g)),
            parent: id!(parent),
            name: None,
            primitive,
        })
        .expect("valid group");
    }

    fn moved(net: &mut Network, g: &str, parent: &str) {
        net.apply(Request::UpdateGroup {
            id: id!(g),
            name: None,
            parent: Some(id!(parent)),
        })
        .expect("valid move");
    }

    fn repaired(host: &Network, mut guest: Network) -> Network {
        let (remove, groups) = host.repair_for(&guest.shallow_hashes());
        guest.repair(&remove, &groups).expect("repair applies");
        assert_eq!(guest.export(), host.export());
        assert_eq!(guest.state_hash(), host.state_hash());
        guest
    }

    /// Found by the property test `repair_converges`: the guest moved `g2` (holding a gadget)
    /// into a group `g3` the host does not have. Removing `g3` first took `g2`'s contents with
    /// it, and only `g2` itself was resent.
    #[test]
    fn a_group_moved_into_a_group_the_host_lacks_keeps_its_contents() {
        let mut host = Network::new();
        group(&mut host, "g2", "root", None);
        group(&mut host, "g4", "g2", Some(Primitive::Add));
        let mut guest = host.clone();
        group(&mut guest, "g3", "root", None);
        moved(&mut guest, "g2", "g3");
        repaired(&host, guest);
    }

    /// A group that became a gadget on the healthy side gives up its subgroups, which live on
    /// elsewhere there.
    #[test]
    fn a_group_that_changed_kind_lets_its_subgroups_live_on() {
        let mut guest = Network::new();
        group(&mut guest, "x", "root", None);
        group(&mut guest, "y", "x", None);
        group(&mut guest, "z", "y", None);
        let mut host = guest.clone();
        moved(&mut host, "y", "root");
        host.apply(Request::RemoveGroup { id: id!("x") })
            .expect("valid removal");
        group(&mut host, "x", "root", Some(Primitive::Add));
        repaired(&host, guest);
    }

    /// Layout is part of a group's shallow hash, so a replica that only disagrees about where
    /// things sit is repaired too.
    #[test]
    fn positions_alone_are_repaired() {
        let mut guest = Network::new();
        group(&mut guest, "g", "root", None);
        guest
            .apply(Request::AddContact {
                id: Some(id!("a")),
                group: id!("g"),
                name: None,
                blend: Default::default(),
                value: Value::Null,
                boundary: None,
            })
            .expect("valid contact");
        let mut host = guest.clone();
        let at = Some(Point { x: 3, y: -4 });
        host.apply(Request::Place {
            contacts: vec![Placement { id: id!("a"), at }],
            groups: vec![Placement { id: id!("g"), at }],
        })
        .expect("valid placement");
        assert_ne!(host.state_hash(), guest.state_hash());
        let guest = repaired(&host, guest);
        assert_eq!(guest.group(&id!("g")).and_then(|g| g.at), at);
    }
}
