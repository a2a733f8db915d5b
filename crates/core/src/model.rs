//! The items of a network: groups, contacts and wires.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{Id, Point, Primitive, Value};

/// What a contact does with a value that arrives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlendMode {
    /// The new value replaces the old one.
    #[default]
    AcceptLast,
    /// The new value is joined with the old one in its lattice; values that cannot be joined
    /// leave the old value and record a contradiction.
    Merge,
}

/// The side of a group's boundary a boundary contact serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Input,
    Output,
}

/// How values flow along a wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WireKind {
    /// Both ways.
    #[default]
    Bidirectional,
    /// From `from` to `to` only.
    Directed,
}

/// Why a contact refused a value: the value it kept, the one it refused, and the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contradiction {
    pub existing: Value,
    pub incoming: Value,
    pub reason: String,
}

/// A cell holding a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: Id,
    /// The group the contact belongs to. A boundary contact belongs to its group and is also
    /// visible to wires in the parent group.
    pub group: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub blend: BlendMode,
    #[serde(default)]
    pub value: Value,
    /// The last contradiction this contact recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contradiction: Option<Contradiction>,
    /// Set for boundary contacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<Direction>,
    /// Where the contact sits on its group's canvas (layout only; propagation ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Point>,
}

/// A connection between two contacts, living in one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wire {
    pub id: Id,
    /// The group whose scope holds the wire: each end is a contact of this group or a boundary
    /// contact of one of its direct subgroups.
    pub group: Id,
    pub from: Id,
    pub to: Id,
    #[serde(default)]
    pub kind: WireKind,
}

/// A group's own fields, without its contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub id: Id,
    /// `None` for the root group only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primitive: Option<Primitive>,
    /// Where the group sits on its parent's canvas (layout only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Point>,
}

/// A group with the ids of what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    pub info: GroupInfo,
    pub contacts: BTreeSet<Id>,
    pub wires: BTreeSet<Id>,
    pub groups: BTreeSet<Id>,
}

impl Group {
    pub fn new(info: GroupInfo) -> Self {
        Group {
            info,
            contacts: BTreeSet::new(),
            wires: BTreeSet::new(),
            groups: BTreeSet::new(),
        }
    }
}
