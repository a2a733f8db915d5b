//! The propagation engine: a network's state and the requests that change it.
//!
//! ```
//! use bassline_core::{Network, Request, Value, id};
//! let mut net = Network::new();
//! let root = net.root().clone();
//! for c in ["a", "b"] {
//!     net.apply(Request::AddContact { id: Some(id!(c)), group: root.clone(), name: None,
//!         blend: Default::default(), value: Value::Null, boundary: None }).unwrap();
//! }
//! net.apply(Request::Connect { id: None, from: id!("a"), to: id!("b"), kind: Default::default() })
//!     .unwrap();
//! net.apply(Request::UpdateContent { contact: id!("a"), value: Value::from(42.0) }).unwrap();
//! assert_eq!(net.contact(&id!("b")).unwrap().value, Value::from(42.0));
//! ```

use std::collections::VecDeque;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::{
    BlendMode, Change, Contact, Contradiction, Direction, Error, GroupInfo, GroupState, Id,
    Primitive, Reply, Request, Response, StateDocument, SubgroupState, Value, Wire, WireKind,
    document::{ContactDocument, GroupDocument, WireDocument},
    model::Group,
    primitive::OUTPUT,
};

/// The id of every network's root group.
pub const ROOT: &str = "root";

/// Engine settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Propagation steps one request may take, on top of ten per contact. A loop of gadgets
    /// that keeps producing new values (a counter wired to itself) stops there with a
    /// contradiction instead of hanging the editor.
    pub max_steps: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_steps: 1_000_000,
        }
    }
}

/// A propagation network: groups, contacts and wires, and the engine that runs them.
#[derive(Clone, Debug)]
pub struct Network {
    root: Id,
    pub(crate) groups: FxHashMap<Id, Group>,
    pub(crate) contacts: FxHashMap<Id, Contact>,
    pub(crate) wires: FxHashMap<Id, Wire>,
    /// Wires touching each contact, sorted by id so propagation order never depends on the
    /// order the network was built in.
    adjacency: FxHashMap<Id, Vec<Id>>,
    next_id: u64,
    config: Config,
    /// While applying a request undoably: changes that undo what has been done so far, in the
    /// order they were recorded (apply them in reverse).
    journal: Option<Vec<Change>>,
}

enum Task {
    Write { contact: Id, value: Value },
    Fire { group: Id },
}

/// Contacts a request changed, in the order they first changed: one `ContactUpdated` each.
#[derive(Default)]
struct Touched {
    seen: FxHashSet<Id>,
    order: Vec<Id>,
    /// With `Some`, the state of each contact before its first change (for undo).
    before: Option<Vec<Change>>,
}

impl Touched {
    fn for_network(net: &Network) -> Self {
        Touched {
            before: net.journal.is_some().then(Vec::new),
            ..Touched::default()
        }
    }

    /// Call before changing a contact.
    fn touch(&mut self, c: &Contact) {
        if self.seen.insert(c.id.clone()) {
            self.order.push(c.id.clone());
            if let Some(before) = &mut self.before {
                before.push(updated(c));
            }
        }
    }
}

impl Default for Network {
    fn default() -> Self {
        Self::new()
    }
}

impl Network {
    /// An empty network: just the root group.
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// An empty network with the given settings.
    pub fn with_config(config: Config) -> Self {
        let root = crate::id!(ROOT);
        let info = GroupInfo {
            id: root.clone(),
            parent: None,
            name: None,
            primitive: None,
            at: None,
        };
        let mut groups = FxHashMap::default();
        groups.insert(root.clone(), Group::new(info));
        Network {
            root,
            groups,
            contacts: FxHashMap::default(),
            wires: FxHashMap::default(),
            adjacency: FxHashMap::default(),
            next_id: 0,
            config,
            journal: None,
        }
    }

    /// The root group's id.
    pub fn root(&self) -> &Id {
        &self.root
    }

    /// A contact, if it exists.
    pub fn contact(&self, id: &Id) -> Option<&Contact> {
        self.contacts.get(id)
    }

    /// A wire, if it exists.
    pub fn wire(&self, id: &Id) -> Option<&Wire> {
        self.wires.get(id)
    }

    /// A group's own fields, if it exists.
    pub fn group(&self, id: &Id) -> Option<&GroupInfo> {
        self.groups.get(id).map(|g| &g.info)
    }

    /// Every contact, in no particular order.
    pub fn contacts(&self) -> impl Iterator<Item = &Contact> {
        self.contacts.values()
    }

    /// Every wire, in no particular order.
    pub fn wires(&self) -> impl Iterator<Item = &Wire> {
        self.wires.values()
    }

    /// Every group's fields (the root included), in no particular order.
    pub fn groups(&self) -> impl Iterator<Item = &GroupInfo> {
        self.groups.values().map(|g| &g.info)
    }

    /// How many groups (the root included), contacts and wires the network holds.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.groups.len(), self.contacts.len(), self.wires.len())
    }

    /// Applies one request. On error nothing has changed.
    pub fn apply(&mut self, request: Request) -> Result<Response, Error> {
        let mut changes = Vec::new();
        let reply = match request {
            Request::RegisterGroup { parent, group } => {
                let id = group.id.clone();
                self.register(&parent, &group, &mut changes)?;
                Reply::Created { id }
            }
            Request::AddGroup {
                id,
                parent,
                name,
                primitive,
            } => {
                let id = self.fresh(id, 'g', |n, i| n.groups.contains_key(i))?;
                let info = GroupInfo {
                    id: id.clone(),
                    parent: Some(parent),
                    name,
                    primitive,
                    at: None,
                };
                self.insert_group(info, true, &mut changes)?;
                Reply::Created { id }
            }
            Request::UpdateGroup { id, name, parent } => {
                self.update_group(&id, name, parent, &mut changes)?;
                Reply::Done
            }
            Request::RemoveGroup { id } => {
                if id == self.root {
                    return Err(Error::RootGroup);
                }
                if !self.groups.contains_key(&id) {
                    return Err(Error::UnknownGroup { id });
                }
                self.remove_group(&id, &mut changes);
                Reply::Done
            }
            Request::AddContact {
                id,
                group,
                name,
                blend,
                value,
                boundary,
            } => {
                let id = self.fresh(id, 'c', |n, i| n.contacts.contains_key(i))?;
                let contact = Contact {
                    id: id.clone(),
                    group,
                    name,
                    blend,
                    value,
                    contradiction: None,
                    boundary,
                    at: None,
                };
                self.insert_contact(contact, false, &mut changes)?;
                Reply::Created { id }
            }
            Request::UpdateContact { id, name, blend } => {
                let c = self
                    .contacts
                    .get_mut(&id)
                    .ok_or(Error::UnknownContact { id })?;
                let before = updated(c);
                if let Some(name) = name {
                    c.name = (!name.is_empty()).then_some(name);
                }
                if let Some(blend) = blend {
                    c.blend = blend;
                }
                changes.push(updated(c));
                if let Some(j) = &mut self.journal {
                    j.push(before);
                }
                Reply::Done
            }
            Request::RemoveContact { id } => {
                let c = self
                    .contacts
                    .get(&id)
                    .ok_or(Error::UnknownContact { id: id.clone() })?;
                if self.is_primitive(&c.group) {
                    return Err(Error::PrimitiveGroup {
                        id: c.group.clone(),
                    });
                }
                self.remove_contact(&id, &mut changes);
                Reply::Done
            }
            Request::UpdateContent { contact, value } => {
                if !self.contacts.contains_key(&contact) {
                    return Err(Error::UnknownContact { id: contact });
                }
                let mut touched = Touched::for_network(self);
                let c = self.contacts.get_mut(&contact).expect("checked above");
                // A direct write that is accepted resolves the contact's last contradiction.
                if c.contradiction.is_some() {
                    touched.touch(c);
                    c.contradiction = None;
                }
                self.propagate(vec![Task::Write { contact, value }], &mut touched);
                self.report(touched, &mut changes);
                Reply::Done
            }
            Request::Connect { id, from, to, kind } => {
                let id = self.fresh(id, 'w', |n, i| n.wires.contains_key(i))?;
                let wire = self.insert_wire(id.clone(), None, from, to, kind, &mut changes)?;
                // A new wire carries the value at `from` to `to`; a bidirectional wire whose
                // `from` is still empty carries `to`'s value back instead. Never both at once:
                // two values sent opposite ways round a cycle of accept-last contacts would
                // chase each other for ever.
                let value_at = |c: &Id| {
                    self.contacts
                        .get(c)
                        .map(|c| c.value.clone())
                        .filter(|v| !v.is_null())
                };
                let mut tasks = Vec::new();
                if let Some(v) = value_at(&wire.from) {
                    tasks.push(Task::Write {
                        contact: wire.to.clone(),
                        value: v,
                    });
                } else if wire.kind == WireKind::Bidirectional
                    && let Some(v) = value_at(&wire.to)
                {
                    tasks.push(Task::Write {
                        contact: wire.from.clone(),
                        value: v,
                    });
                }
                let mut touched = Touched::for_network(self);
                self.propagate(tasks, &mut touched);
                self.report(touched, &mut changes);
                Reply::Created { id }
            }
            Request::Disconnect { id } => {
                if !self.wires.contains_key(&id) {
                    return Err(Error::UnknownWire { id });
                }
                self.remove_wire(&id, &mut changes);
                Reply::Done
            }
            Request::Place { contacts, groups } => {
                self.place(&contacts, &groups, &mut changes)?;
                Reply::Done
            }
            Request::GetGroupState { group } => Reply::Group {
                state: self.group_state(&group)?,
            },
            Request::GetContact { id } => Reply::Contact {
                contact: self
                    .contacts
                    .get(&id)
                    .cloned()
                    .ok_or(Error::UnknownContact { id })?,
            },
            Request::GetWire { id } => Reply::Wire {
                wire: self
                    .wires
                    .get(&id)
                    .cloned()
                    .ok_or(Error::UnknownWire { id })?,
            },
            Request::ExportState => Reply::State {
                document: self.export(),
            },
            Request::ImportState { document } => {
                let mut added = Vec::new();
                let mut fresh = Network::build(&document, self.config.clone(), &mut added)?;
                let root = self.root.clone();
                self.remove_contents(&root, &mut changes);
                changes.push(Change::GroupUpdated {
                    group: fresh.groups[&fresh.root].info.clone(),
                });
                changes.extend(added);
                fresh.next_id = self.next_id;
                *self = fresh;
                Reply::Done
            }
        };
        Ok(Response { reply, changes })
    }

    /// Applies a request and also returns changes that undo it: applying them in order with
    /// [`Network::apply_change`] restores the state exactly (same hash). A guest uses this to
    /// show its own edits at once and take them back if the host decides otherwise.
    ///
    /// Importing a whole state is not undoable this way; it is refused with
    /// [`Error::NotUndoable`].
    pub fn apply_undoable(&mut self, request: Request) -> Result<(Response, Vec<Change>), Error> {
        if matches!(request, Request::ImportState { .. }) {
            return Err(Error::NotUndoable);
        }
        self.journal = Some(Vec::new());
        let result = self.apply(request);
        let mut undo = self.journal.take().unwrap_or_default();
        undo.reverse();
        Ok((result?, undo))
    }

    pub(crate) fn record(&mut self, undo: impl FnOnce() -> Change) {
        if let Some(j) = &mut self.journal {
            j.push(undo());
        }
    }

    /// A group with its contacts, wires and subgroups.
    pub fn group_state(&self, id: &Id) -> Result<GroupState, Error> {
        let g = self
            .groups
            .get(id)
            .ok_or_else(|| Error::UnknownGroup { id: id.clone() })?;
        let contacts = g
            .contacts
            .iter()
            .map(|c| self.contacts[c].clone())
            .collect();
        let wires = g.wires.iter().map(|w| self.wires[w].clone()).collect();
        let subgroups = g
            .groups
            .iter()
            .map(|s| {
                let sub = &self.groups[s];
                SubgroupState {
                    group: sub.info.clone(),
                    boundary: sub
                        .contacts
                        .iter()
                        .map(|c| &self.contacts[c])
                        .filter(|c| c.boundary.is_some())
                        .cloned()
                        .collect(),
                }
            })
            .collect();
        Ok(GroupState {
            group: g.info.clone(),
            contacts,
            wires,
            subgroups,
        })
    }

    /// A group and everything inside it, as a document (what `register-group` takes back).
    pub fn group_subtree(&self, id: &Id) -> Option<GroupDocument> {
        self.groups
            .contains_key(id)
            .then(|| self.group_document(id))
    }

    /// The whole network as a versioned document.
    pub fn export(&self) -> StateDocument {
        StateDocument::new(self.group_document(&self.root))
    }

    /// Builds a network from a document, checking everything in it.
    pub fn import(document: &StateDocument) -> Result<Network, Error> {
        Self::build(document, Config::default(), &mut Vec::new())
    }

    /// Builds a network from a document, telling the additions as changes.
    fn build(
        document: &StateDocument,
        config: Config,
        changes: &mut Vec<Change>,
    ) -> Result<Network, Error> {
        document.check_header()?;
        if document.root.id.as_str() != ROOT {
            return Err(Error::InvalidDocument {
                reason: format!("the root group's id must be \"{ROOT}\""),
            });
        }
        if document.root.primitive.is_some() {
            return Err(Error::InvalidDocument {
                reason: "the root group cannot be a primitive gadget".to_owned(),
            });
        }
        let mut net = Network::with_config(config);
        net.insert_document_contents(&document.root, changes)?;
        let root = &mut net
            .groups
            .get_mut(&net.root)
            .expect("the root group always exists")
            .info;
        root.name = document.root.name.clone();
        root.at = document.root.at;
        Ok(net)
    }

    /// Applies a change made elsewhere (by the host of a shared session) without running
    /// propagation: the host already did.
    pub fn apply_change(&mut self, change: &Change) -> Result<(), Error> {
        let mut sink = Vec::new();
        match change {
            Change::ContactAdded { contact } => {
                self.insert_contact(contact.clone(), true, &mut sink)?;
            }
            Change::ContactUpdated {
                id,
                value,
                contradiction,
                name,
                blend,
            } => {
                let c = self
                    .contacts
                    .get_mut(id)
                    .ok_or(Error::UnknownContact { id: id.clone() })?;
                c.value = value.clone();
                c.contradiction = contradiction.clone();
                c.name = name.clone();
                c.blend = *blend;
            }
            Change::ContactRemoved { id } => {
                if !self.contacts.contains_key(id) {
                    return Err(Error::UnknownContact { id: id.clone() });
                }
                self.remove_contact(id, &mut sink);
            }
            Change::WireAdded { wire } => {
                self.check_fresh(&wire.id, self.wires.contains_key(&wire.id))?;
                self.insert_wire(
                    wire.id.clone(),
                    Some(&wire.group),
                    wire.from.clone(),
                    wire.to.clone(),
                    wire.kind,
                    &mut sink,
                )?;
            }
            Change::WireRemoved { id } => {
                if !self.wires.contains_key(id) {
                    return Err(Error::UnknownWire { id: id.clone() });
                }
                self.remove_wire(id, &mut sink);
            }
            Change::GroupAdded { group } => self.insert_group(group.clone(), false, &mut sink)?,
            Change::GroupUpdated { group } => {
                if group.id == self.root {
                    let root = self
                        .groups
                        .get_mut(&self.root)
                        .expect("the root group exists");
                    root.info.name = group.name.clone();
                    root.info.at = group.at;
                } else {
                    self.update_group(
                        &group.id,
                        group.name.clone(),
                        group.parent.clone(),
                        &mut sink,
                    )?;
                    let g = self
                        .groups
                        .get_mut(&group.id)
                        .expect("update_group checked it");
                    g.info.name = group.name.clone();
                    g.info.at = group.at;
                }
            }
            Change::GroupRemoved { id } => {
                if *id == self.root {
                    return Err(Error::RootGroup);
                }
                if !self.groups.contains_key(id) {
                    return Err(Error::UnknownGroup { id: id.clone() });
                }
                self.remove_group(id, &mut sink);
            }
            Change::ContactPlaced { id, at } => self.apply_placed(Some(id), None, *at)?,
            Change::GroupPlaced { id, at } => self.apply_placed(None, Some(id), *at)?,
        }
        Ok(())
    }

    // ---- ids ----

    fn check_fresh(&self, id: &Id, taken: bool) -> Result<(), Error> {
        if taken {
            Err(Error::DuplicateId { id: id.clone() })
        } else {
            Ok(())
        }
    }

    /// The requested id if it is free, or a fresh generated one.
    fn fresh(
        &mut self,
        wanted: Option<Id>,
        prefix: char,
        taken: impl Fn(&Network, &Id) -> bool,
    ) -> Result<Id, Error> {
        if let Some(id) = wanted {
            return if taken(self, &id) {
                Err(Error::DuplicateId { id })
            } else {
                Ok(id)
            };
        }
        loop {
            self.next_id += 1;
            let id =
                Id::new(&format!("{prefix}{}", self.next_id)).expect("generated ids are valid");
            if !taken(self, &id) {
                return Ok(id);
            }
        }
    }

    // ---- structure ----

    fn is_primitive(&self, group: &Id) -> bool {
        self.groups
            .get(group)
            .is_some_and(|g| g.info.primitive.is_some())
    }

    /// Adds a group. With `make_boundary`, a primitive gets its boundary contacts (a replica
    /// receives them as changes of their own instead).
    pub(crate) fn insert_group(
        &mut self,
        info: GroupInfo,
        make_boundary: bool,
        changes: &mut Vec<Change>,
    ) -> Result<(), Error> {
        let parent = info.parent.clone().ok_or(Error::RootGroup)?;
        self.check_fresh(&info.id, self.groups.contains_key(&info.id))?;
        if !self.groups.contains_key(&parent) {
            return Err(Error::UnknownGroup { id: parent });
        }
        if self.is_primitive(&parent) {
            return Err(Error::PrimitiveGroup { id: parent });
        }
        let boundary = match (make_boundary, info.primitive) {
            (true, Some(p)) => {
                let mut contacts = Vec::new();
                let names = p.inputs().iter().map(|n| (*n, Direction::Input));
                for (name, dir) in names.chain([(OUTPUT, Direction::Output)]) {
                    let id = Id::new(&format!("{}/{name}", info.id))?;
                    self.check_fresh(&id, self.contacts.contains_key(&id))?;
                    contacts.push(Contact {
                        id,
                        group: info.id.clone(),
                        name: Some(name.to_owned()),
                        blend: BlendMode::AcceptLast,
                        value: Value::Null,
                        contradiction: None,
                        boundary: Some(dir),
                        at: None,
                    });
                }
                contacts
            }
            _ => Vec::new(),
        };
        let id = info.id.clone();
        self.groups
            .get_mut(&parent)
            .expect("checked above")
            .groups
            .insert(id.clone());
        changes.push(Change::GroupAdded {
            group: info.clone(),
        });
        self.record(|| Change::GroupRemoved { id: id.clone() });
        self.groups.insert(id, Group::new(info));
        for c in boundary {
            self.insert_contact(c, true, changes)
                .expect("boundary ids were checked above");
        }
        Ok(())
    }

    /// Adds a contact. `into_primitive` allows a primitive's own boundary contacts.
    pub(crate) fn insert_contact(
        &mut self,
        contact: Contact,
        into_primitive: bool,
        changes: &mut Vec<Change>,
    ) -> Result<(), Error> {
        self.check_fresh(&contact.id, self.contacts.contains_key(&contact.id))?;
        let g = self
            .groups
            .get_mut(&contact.group)
            .ok_or_else(|| Error::UnknownGroup {
                id: contact.group.clone(),
            })?;
        if g.info.primitive.is_some() && !into_primitive {
            return Err(Error::PrimitiveGroup {
                id: contact.group.clone(),
            });
        }
        if g.info.parent.is_none() && contact.boundary.is_some() {
            return Err(Error::BoundaryOnRoot);
        }
        g.contacts.insert(contact.id.clone());
        changes.push(Change::ContactAdded {
            contact: contact.clone(),
        });
        self.record(|| Change::ContactRemoved {
            id: contact.id.clone(),
        });
        self.contacts.insert(contact.id.clone(), contact);
        Ok(())
    }

    /// The groups from whose scope a contact can be wired: its own, and for a boundary contact
    /// also its group's parent.
    fn scopes(&self, c: &Contact) -> [Option<Id>; 2] {
        let parent = if c.boundary.is_some() {
            self.groups
                .get(&c.group)
                .and_then(|g| g.info.parent.clone())
        } else {
            None
        };
        [Some(c.group.clone()), parent]
    }

    pub(crate) fn insert_wire(
        &mut self,
        id: Id,
        group: Option<&Id>,
        from: Id,
        to: Id,
        kind: WireKind,
        changes: &mut Vec<Change>,
    ) -> Result<Wire, Error> {
        self.check_fresh(&id, self.wires.contains_key(&id))?;
        let a = self
            .contacts
            .get(&from)
            .ok_or_else(|| Error::UnknownContact { id: from.clone() })?;
        let b = self
            .contacts
            .get(&to)
            .ok_or_else(|| Error::UnknownContact { id: to.clone() })?;
        if from == to {
            return Err(Error::SelfWire { id: from });
        }
        let (sa, sb) = (self.scopes(a), self.scopes(b));
        let mut common = sa
            .iter()
            .flatten()
            .filter(|s| sb.iter().flatten().any(|t| t == *s) && group.is_none_or(|g| g == *s));
        // Two boundary contacts of one group are visible inside it and in its parent; inside a
        // primitive gadget nothing can be wired, so such a wire lives in the parent.
        let scope = match common.next().cloned() {
            Some(s) if self.is_primitive(&s) => match common.next() {
                Some(outer) => outer.clone(),
                None => return Err(Error::PrimitiveGroup { id: s }),
            },
            Some(s) => s,
            None => return Err(Error::OutOfScope { from, to }),
        };
        let wire = Wire {
            id: id.clone(),
            group: scope.clone(),
            from,
            to,
            kind,
        };
        self.groups
            .get_mut(&scope)
            .expect("scope is an existing group")
            .wires
            .insert(id.clone());
        for end in [&wire.from, &wire.to] {
            let list = self.adjacency.entry(end.clone()).or_default();
            if let Err(at) = list.binary_search(&id) {
                list.insert(at, id.clone());
            }
        }
        changes.push(Change::WireAdded { wire: wire.clone() });
        self.record(|| Change::WireRemoved { id: id.clone() });
        self.wires.insert(id, wire.clone());
        Ok(wire)
    }

    pub(crate) fn remove_wire(&mut self, id: &Id, changes: &mut Vec<Change>) {
        let Some(wire) = self.wires.remove(id) else {
            return;
        };
        for end in [&wire.from, &wire.to] {
            if let Some(list) = self.adjacency.get_mut(end) {
                list.retain(|w| w != id);
                if list.is_empty() {
                    self.adjacency.remove(end);
                }
            }
        }
        if let Some(g) = self.groups.get_mut(&wire.group) {
            g.wires.remove(id);
        }
        changes.push(Change::WireRemoved { id: id.clone() });
        self.record(|| Change::WireAdded { wire });
    }

    pub(crate) fn remove_contact(&mut self, id: &Id, changes: &mut Vec<Change>) {
        for w in self.adjacency.get(id).cloned().unwrap_or_default() {
            self.remove_wire(&w, changes);
        }
        if let Some(c) = self.contacts.remove(id) {
            if let Some(g) = self.groups.get_mut(&c.group) {
                g.contacts.remove(id);
            }
            self.record(|| Change::ContactAdded { contact: c });
        }
        changes.push(Change::ContactRemoved { id: id.clone() });
    }

    /// Removes a group and everything in it, innermost first, and the wires to its boundary.
    pub(crate) fn remove_group(&mut self, id: &Id, changes: &mut Vec<Change>) {
        if !self.groups.contains_key(id) {
            return;
        }
        self.remove_contents(id, changes);
        if let Some(g) = self.groups.remove(id) {
            if let Some(parent) = g.info.parent.as_ref().and_then(|p| self.groups.get_mut(p)) {
                parent.groups.remove(id);
            }
            self.record(|| Change::GroupAdded { group: g.info });
        }
        changes.push(Change::GroupRemoved { id: id.clone() });
    }

    /// Removes everything inside a group (subgroups first), leaving the group itself.
    fn remove_contents(&mut self, id: &Id, changes: &mut Vec<Change>) {
        let g = &self.groups[id];
        let subgroups: Vec<Id> = g.groups.iter().cloned().collect();
        let wires: Vec<Id> = g.wires.iter().cloned().collect();
        let contacts: Vec<Id> = g.contacts.iter().cloned().collect();
        for s in &subgroups {
            self.remove_group(s, changes);
        }
        for w in &wires {
            self.remove_wire(w, changes);
        }
        for c in &contacts {
            self.remove_contact(c, changes);
        }
    }

    pub(crate) fn update_group(
        &mut self,
        id: &Id,
        name: Option<String>,
        parent: Option<Id>,
        changes: &mut Vec<Change>,
    ) -> Result<(), Error> {
        let g = self
            .groups
            .get(id)
            .ok_or_else(|| Error::UnknownGroup { id: id.clone() })?;
        let before = g.info.clone();
        let old_parent = g.info.parent.clone();
        if let Some(new_parent) = parent.as_ref().filter(|p| Some(*p) != old_parent.as_ref()) {
            let Some(old_parent) = old_parent else {
                return Err(Error::RootGroup);
            };
            let target = self
                .groups
                .get(new_parent)
                .ok_or_else(|| Error::UnknownGroup {
                    id: new_parent.clone(),
                })?;
            if target.info.primitive.is_some() {
                return Err(Error::PrimitiveGroup {
                    id: new_parent.clone(),
                });
            }
            let mut up = Some(new_parent.clone());
            while let Some(at) = up {
                if at == *id {
                    return Err(Error::NestingCycle {
                        group: id.clone(),
                        parent: new_parent.clone(),
                    });
                }
                up = self.groups.get(&at).and_then(|g| g.info.parent.clone());
            }
            // Wires in the old parent that reach this group's boundary leave its scope.
            let g = &self.groups[id];
            let stale: Vec<Id> = g
                .contacts
                .iter()
                .flat_map(|c| self.adjacency.get(c).into_iter().flatten())
                .filter(|w| self.wires[*w].group == old_parent)
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            for w in &stale {
                self.remove_wire(w, changes);
            }
            self.groups
                .get_mut(&old_parent)
                .expect("parent exists")
                .groups
                .remove(id);
            self.groups
                .get_mut(new_parent)
                .expect("checked above")
                .groups
                .insert(id.clone());
            self.groups.get_mut(id).expect("checked above").info.parent = Some(new_parent.clone());
        }
        let g = self.groups.get_mut(id).expect("checked above");
        if let Some(name) = name {
            g.info.name = (!name.is_empty()).then_some(name);
        }
        changes.push(Change::GroupUpdated {
            group: g.info.clone(),
        });
        self.record(|| Change::GroupUpdated { group: before });
        Ok(())
    }

    // ---- documents ----

    pub(crate) fn group_document(&self, id: &Id) -> GroupDocument {
        let g = &self.groups[id];
        GroupDocument {
            id: id.clone(),
            name: g.info.name.clone(),
            primitive: g.info.primitive,
            at: g.info.at,
            contacts: g
                .contacts
                .iter()
                .map(|c| ContactDocument::from(&self.contacts[c]))
                .collect(),
            wires: g
                .wires
                .iter()
                .map(|w| {
                    let w = &self.wires[w];
                    WireDocument {
                        id: w.id.clone(),
                        from: w.from.clone(),
                        to: w.to.clone(),
                        kind: w.kind,
                    }
                })
                .collect(),
            groups: g.groups.iter().map(|s| self.group_document(s)).collect(),
        }
    }

    /// Adds a document's group under `parent`; on error removes what it had added.
    fn register(
        &mut self,
        parent: &Id,
        doc: &GroupDocument,
        changes: &mut Vec<Change>,
    ) -> Result<(), Error> {
        let info = GroupInfo {
            id: doc.id.clone(),
            parent: Some(parent.clone()),
            name: doc.name.clone(),
            primitive: doc.primitive,
            at: doc.at,
        };
        self.insert_group(info, false, changes)?;
        if let Err(e) = self.insert_document_contents(doc, changes) {
            // Everything added so far lies inside the new group, so removing it undoes all.
            self.remove_group(&doc.id, &mut Vec::new());
            return Err(e);
        }
        Ok(())
    }

    /// Adds the contents of a document's group (which exists already): contacts, then
    /// subgroups (so their boundaries exist), then wires.
    fn insert_document_contents(
        &mut self,
        doc: &GroupDocument,
        changes: &mut Vec<Change>,
    ) -> Result<(), Error> {
        let invalid = |reason: String| Error::InvalidDocument { reason };
        if let Some(p) = doc.primitive {
            let mut expected: Vec<(String, Direction)> = p
                .inputs()
                .iter()
                .map(|n| (format!("{}/{n}", doc.id), Direction::Input))
                .collect();
            expected.push((format!("{}/{OUTPUT}", doc.id), Direction::Output));
            expected.sort();
            let mut found: Vec<(String, Direction)> = doc
                .contacts
                .iter()
                .map(|c| (c.id.to_string(), c.boundary.unwrap_or(Direction::Input)))
                .collect();
            found.sort();
            if found != expected || !doc.wires.is_empty() || !doc.groups.is_empty() {
                return Err(invalid(format!(
                    "primitive group `{}` ({}) must hold exactly its boundary contacts {:?}",
                    doc.id,
                    p.name(),
                    expected.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>()
                )));
            }
        }
        for c in &doc.contacts {
            self.insert_contact(c.to_contact(&doc.id), doc.primitive.is_some(), changes)?;
        }
        for s in &doc.groups {
            let info = GroupInfo {
                id: s.id.clone(),
                parent: Some(doc.id.clone()),
                name: s.name.clone(),
                primitive: s.primitive,
                at: s.at,
            };
            self.insert_group(info, false, changes)?;
            self.insert_document_contents(s, changes)?;
        }
        for w in &doc.wires {
            self.check_fresh(&w.id, self.wires.contains_key(&w.id))?;
            self.insert_wire(
                w.id.clone(),
                Some(&doc.id),
                w.from.clone(),
                w.to.clone(),
                w.kind,
                changes,
            )
            .map_err(|e| invalid(format!("wire `{}` in group `{}`: {e}", w.id, doc.id)))?;
        }
        Ok(())
    }

    // ---- propagation ----

    /// Runs tasks until nothing changes (or the step budget runs out).
    fn propagate(&mut self, tasks: Vec<Task>, touched: &mut Touched) {
        let mut queue: VecDeque<Task> = tasks.into();
        let mut steps = 0usize;
        // Grows with the network, so a large acyclic network always settles.
        let budget = self
            .config
            .max_steps
            .saturating_add(self.contacts.len().saturating_mul(10));
        while let Some(task) = queue.pop_front() {
            steps += 1;
            if steps > budget {
                let at = match &task {
                    Task::Write { contact, .. } => Some(contact.clone()),
                    Task::Fire { group } => self
                        .groups
                        .get(group)
                        .and_then(|g| g.contacts.last().cloned()),
                };
                if let Some(c) = at.and_then(|at| self.contacts.get_mut(&at)) {
                    touched.touch(c);
                    c.contradiction = Some(Contradiction {
                        existing: c.value.clone(),
                        incoming: Value::Null,
                        reason: format!(
                            "propagation did not settle within {} steps: a loop keeps producing \
                             new values",
                            budget
                        ),
                    });
                }
                break;
            }
            match task {
                Task::Write { contact, value } => {
                    let Some(c) = self.contacts.get_mut(&contact) else {
                        continue;
                    };
                    let new = match c.blend {
                        BlendMode::AcceptLast => value,
                        BlendMode::Merge => match c.value.merge(&value) {
                            Ok(v) => v,
                            Err(conflict) => {
                                touched.touch(c);
                                c.contradiction = Some(Contradiction {
                                    existing: c.value.clone(),
                                    incoming: value,
                                    reason: conflict.reason,
                                });
                                continue;
                            }
                        },
                    };
                    if new == c.value {
                        continue;
                    }
                    touched.touch(c);
                    c.value = new;
                    for w in self.adjacency.get(&contact).into_iter().flatten() {
                        let wire = &self.wires[w];
                        let target = if wire.from == contact {
                            &wire.to
                        } else if wire.kind == WireKind::Bidirectional {
                            &wire.from
                        } else {
                            continue;
                        };
                        queue.push_back(Task::Write {
                            contact: target.clone(),
                            value: c.value.clone(),
                        });
                    }
                    let gadget = self
                        .groups
                        .get(&c.group)
                        .is_some_and(|g| g.info.primitive.is_some());
                    if c.boundary == Some(Direction::Input) && gadget {
                        queue.push_back(Task::Fire {
                            group: c.group.clone(),
                        });
                    }
                }
                Task::Fire { group } => {
                    let Some(p) = self.groups.get(&group).and_then(|g| g.info.primitive) else {
                        continue;
                    };
                    let outcome = self.fire(&group, p);
                    let Ok(out) = Id::new(&format!("{group}/{OUTPUT}")) else {
                        continue;
                    };
                    match outcome {
                        Ok(Some(value)) => queue.push_back(Task::Write {
                            contact: out,
                            value,
                        }),
                        Ok(None) => {}
                        Err(reason) => {
                            if let Some(c) = self.contacts.get_mut(&out) {
                                touched.touch(c);
                                c.contradiction = Some(Contradiction {
                                    existing: c.value.clone(),
                                    incoming: Value::Null,
                                    reason,
                                });
                            }
                        }
                    }
                }
            }
        }
        if let (Some(journal), Some(before)) = (&mut self.journal, touched.before.take()) {
            journal.extend(before);
        }
    }

    fn fire(&self, group: &Id, p: Primitive) -> crate::primitive::Outcome {
        let inputs: Vec<Value> = p
            .inputs()
            .iter()
            .map(|n| {
                Id::new(&format!("{group}/{n}"))
                    .ok()
                    .and_then(|id| self.contacts.get(&id))
                    .map(|c| c.value.clone())
                    .unwrap_or_default()
            })
            .collect();
        p.compute(&inputs)
    }

    fn report(&self, touched: Touched, changes: &mut Vec<Change>) {
        changes.extend(
            touched
                .order
                .iter()
                .filter_map(|id| self.contacts.get(id))
                .map(updated),
        );
    }
}

fn updated(c: &Contact) -> Change {
    Change::ContactUpdated {
        id: c.id.clone(),
        value: c.value.clone(),
        contradiction: c.contradiction.clone(),
        name: c.name.clone(),
        blend: c.blend,
    }
}
