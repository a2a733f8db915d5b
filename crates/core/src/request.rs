//! Requests a client makes of a network, the changes they cause, and what they answer.

use serde::{Deserialize, Serialize};

use crate::{
    BlendMode, Contact, Contradiction, Direction, GroupInfo, Id, Placement, Point, Primitive,
    StateDocument, Value, Wire, WireKind, document::GroupDocument,
};

/// A request to a network: the NetworkClient interface.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Adds a whole group (contents, subgroups, inner wires) under `parent` in one step.
    RegisterGroup {
        parent: Id,
        group: GroupDocument,
    },
    /// Adds an empty group, or a primitive gadget with its boundary contacts.
    AddGroup {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Id>,
        parent: Id,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        primitive: Option<Primitive>,
    },
    /// Renames a group and/or moves it under another parent (wires to its boundary in the old
    /// parent are removed).
    UpdateGroup {
        id: Id,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<Id>,
    },
    /// Removes a group, everything in it, and the wires to its boundary.
    RemoveGroup {
        id: Id,
    },
    /// Adds a contact to a group.
    AddContact {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Id>,
        group: Id,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default)]
        blend: BlendMode,
        /// The starting value; `null` (the default) means none yet. A plain `Value` rather than
        /// an option: "no value" and "null" are the same thing to the engine, so the type does
        /// not offer two spellings that would not survive the wire.
        #[serde(default, skip_serializing_if = "Value::is_null")]
        value: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        boundary: Option<Direction>,
    },
    /// Renames a contact and/or changes its blend mode.
    UpdateContact {
        id: Id,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blend: Option<BlendMode>,
    },
    /// Removes a contact and its wires.
    RemoveContact {
        id: Id,
    },
    /// Writes a value into a contact and propagates it.
    UpdateContent {
        contact: Id,
        value: Value,
    },
    /// Wires two contacts together (the wire carries current values at once).
    Connect {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Id>,
        from: Id,
        to: Id,
        #[serde(default)]
        kind: WireKind,
    },
    /// Removes a wire.
    Disconnect {
        id: Id,
    },
    /// Places contacts and subgroups on their group's canvas, all or none (layout only:
    /// propagation ignores it). One request for a whole multi-selection drag or an auto-layout,
    /// so it is one edit to undo.
    Place {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        contacts: Vec<Placement>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        groups: Vec<Placement>,
    },
    /// A group with its contacts, wires and subgroups.
    GetGroupState {
        group: Id,
    },
    GetContact {
        id: Id,
    },
    GetWire {
        id: Id,
    },
    /// The whole network as a versioned document.
    ExportState,
    /// Replaces the whole network with a document's.
    ImportState {
        document: StateDocument,
    },
}

impl Request {
    /// Whether the request can change the network (queries cannot).
    pub fn is_mutation(&self) -> bool {
        !matches!(
            self,
            Request::GetGroupState { .. }
                | Request::GetContact { .. }
                | Request::GetWire { .. }
                | Request::ExportState
        )
    }
}

/// One change to the network, as told to subscribers and replicas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Change {
    ContactAdded {
        contact: Contact,
    },
    /// The contact's fields after the change (the group and boundary never change).
    ContactUpdated {
        id: Id,
        value: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contradiction: Option<Contradiction>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default)]
        blend: BlendMode,
    },
    ContactRemoved {
        id: Id,
    },
    WireAdded {
        wire: Wire,
    },
    WireRemoved {
        id: Id,
    },
    GroupAdded {
        group: GroupInfo,
    },
    /// The group's fields after a rename or a move.
    GroupUpdated {
        group: GroupInfo,
    },
    GroupRemoved {
        id: Id,
    },
    /// A contact's new position (`None`: it has none).
    ContactPlaced {
        id: Id,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<Point>,
    },
    /// A group's new position on its parent's canvas.
    GroupPlaced {
        id: Id,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<Point>,
    },
}

/// What a request answers besides its changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Reply {
    /// The request was applied; nothing more to say.
    Done,
    /// The id of the group, contact or wire the request created.
    Created {
        id: Id,
    },
    Group {
        state: GroupState,
    },
    Contact {
        contact: Contact,
    },
    Wire {
        wire: Wire,
    },
    State {
        document: StateDocument,
    },
}

/// The outcome of an applied request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub reply: Reply,
    /// Every change the request caused, in order; empty for queries.
    pub changes: Vec<Change>,
}

/// A subgroup as seen from its parent: its fields and its boundary contacts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubgroupState {
    pub group: GroupInfo,
    pub boundary: Vec<Contact>,
}

/// A group with everything needed to draw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    pub group: GroupInfo,
    pub contacts: Vec<Contact>,
    pub wires: Vec<Wire>,
    pub subgroups: Vec<SubgroupState>,
}
