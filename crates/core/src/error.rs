//! The one error type of the core crate.

use crate::Id;

/// Why a request was refused. A refused request leaves the network exactly as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An id was empty, too long or held control characters.
    #[error("invalid id {id:?}: ids are 1 to 128 printable characters")]
    InvalidId { id: String },
    /// No group has this id.
    #[error("no group with id `{id}`: it may have been removed; refresh the group list")]
    UnknownGroup { id: Id },
    /// No contact has this id.
    #[error("no contact with id `{id}`: it may have been removed; refresh the group")]
    UnknownContact { id: Id },
    /// No wire has this id.
    #[error("no wire with id `{id}`: it may have been removed; refresh the group")]
    UnknownWire { id: Id },
    /// Something with this id exists already.
    #[error("id `{id}` is already in use; choose another id or leave it out to get a fresh one")]
    DuplicateId { id: Id },
    /// The root group holds the whole network and cannot be removed or moved.
    #[error("the root group cannot be removed or moved; remove its contents instead")]
    RootGroup,
    /// Moving a group into itself or one of its own subgroups would make a cycle.
    #[error("cannot move group `{group}` into `{parent}`: `{parent}` is inside `{group}`")]
    NestingCycle { group: Id, parent: Id },
    /// The two contacts are not visible from one group, so no wire can join them.
    #[error(
        "cannot wire `{from}` to `{to}`: a wire joins contacts of one group or boundary contacts \
         of its direct subgroups"
    )]
    OutOfScope { from: Id, to: Id },
    /// A wire from a contact to itself.
    #[error("cannot wire contact `{id}` to itself")]
    SelfWire { id: Id },
    /// A primitive gadget's boundary is fixed by its kind.
    #[error("group `{id}` is a primitive gadget: its contacts and wires are fixed")]
    PrimitiveGroup { id: Id },
    /// The root group has no parent, so it has no boundary.
    #[error("the root group has no boundary: add boundary contacts to a subgroup")]
    BoundaryOnRoot,
    /// A state document that does not describe a valid network.
    #[error("invalid state document: {reason}")]
    InvalidDocument { reason: String },
    /// A state document written by a newer Bassline.
    #[error(
        "state document version {found} is newer than this Bassline understands (up to \
         {supported}); upgrade Bassline to read it"
    )]
    UnsupportedVersion { found: u64, supported: u64 },
    /// Replacing the whole state cannot be applied tentatively.
    #[error("importing a whole state cannot be undone, so it is never applied tentatively")]
    NotUndoable,
    /// The network behind a client cannot be reached.
    #[error("network unavailable: {reason}")]
    Unavailable { reason: String },
}
