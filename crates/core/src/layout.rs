//! Layout: where contacts and subgroups sit on their group's canvas.
//!
//! Positions are shared state like any other field (every peer sees the same picture, they are
//! exported and hashed), but propagation never reads them. They change through
//! [`Request::Place`], so a move is sequenced, replicated and undone like every other edit. The
//! viewport (pan and zoom) is not part of the model: it belongs to each person's screen.
//!
//! ```
//! use bassline_core::{Change, Network, Placement, Point, Request, id};
//! let mut net = Network::new();
//! net.apply(Request::AddContact { id: Some(id!("a")), group: id!("root"), name: None,
//!     blend: Default::default(), value: Default::default(), boundary: None }).unwrap();
//! let moved = net.apply(Request::Place {
//!     contacts: vec![Placement { id: id!("a"), at: Some(Point { x: 120, y: -40 }) }],
//!     groups: vec![],
//! }).unwrap();
//! assert_eq!(net.contact(&id!("a")).unwrap().at, Some(Point { x: 120, y: -40 }));
//! assert!(matches!(&moved.changes[..], [Change::ContactPlaced { .. }]));
//! ```

use serde::{Deserialize, Serialize};

use crate::{Change, Error, Id, Network};

/// A point on a group's canvas, in canvas units (the editor draws one unit as one CSS pixel at
/// zoom 1). Whole numbers so that every peer hashes exactly the same bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    pub x: i32,
    pub y: i32,
}

/// Where one item goes; `at: None` takes its position away (the editor then places it itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    pub id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Point>,
}

impl Network {
    /// Applies a [`crate::Request::Place`]: checks every id first, so a bad one changes nothing.
    pub(crate) fn place(
        &mut self,
        contacts: &[Placement],
        groups: &[Placement],
        changes: &mut Vec<Change>,
    ) -> Result<(), Error> {
        for p in contacts {
            if !self.contacts.contains_key(&p.id) {
                return Err(Error::UnknownContact { id: p.id.clone() });
            }
        }
        for p in groups {
            if p.id == *self.root() {
                return Err(Error::RootGroup);
            }
            if !self.groups.contains_key(&p.id) {
                return Err(Error::UnknownGroup { id: p.id.clone() });
            }
        }
        for p in contacts {
            let c = self.contacts.get_mut(&p.id).expect("checked above");
            if c.at != p.at {
                let before = std::mem::replace(&mut c.at, p.at);
                changes.push(Change::ContactPlaced {
                    id: p.id.clone(),
                    at: p.at,
                });
                self.record(|| Change::ContactPlaced {
                    id: p.id.clone(),
                    at: before,
                });
            }
        }
        for p in groups {
            let g = self.groups.get_mut(&p.id).expect("checked above");
            if g.info.at != p.at {
                let before = std::mem::replace(&mut g.info.at, p.at);
                changes.push(Change::GroupPlaced {
                    id: p.id.clone(),
                    at: p.at,
                });
                self.record(|| Change::GroupPlaced {
                    id: p.id.clone(),
                    at: before,
                });
            }
        }
        Ok(())
    }

    /// Applies a placement change made elsewhere.
    pub(crate) fn apply_placed(
        &mut self,
        contact: Option<&Id>,
        group: Option<&Id>,
        at: Option<Point>,
    ) -> Result<(), Error> {
        if let Some(id) = contact {
            self.contacts
                .get_mut(id)
                .ok_or_else(|| Error::UnknownContact { id: id.clone() })?
                .at = at;
        }
        if let Some(id) = group {
            self.groups
                .get_mut(id)
                .ok_or_else(|| Error::UnknownGroup { id: id.clone() })?
                .info
                .at = at;
        }
        Ok(())
    }
}

/// Appends a position to a hash input: one tag byte, then both coordinates.
pub(crate) fn put_point(out: &mut Vec<u8>, at: Option<Point>) {
    match at {
        None => out.push(0),
        Some(p) => {
            out.push(1);
            out.extend_from_slice(&p.x.to_le_bytes());
            out.extend_from_slice(&p.y.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Request, id};

    fn net_with_contact() -> Network {
        let mut net = Network::new();
        net.apply(Request::AddContact {
            id: Some(id!("a")),
            group: id!("root"),
            name: None,
            blend: Default::default(),
            value: Default::default(),
            boundary: None,
        })
        .expect("valid contact");
        net
    }

    fn at(x: i32, y: i32) -> Option<Point> {
        Some(Point { x, y })
    }

    #[test]
    fn a_bad_id_anywhere_in_the_list_changes_nothing() {
        let mut net = net_with_contact();
        let before = net.state_hash();
        let e = net.apply(Request::Place {
            contacts: vec![
                Placement {
                    id: id!("a"),
                    at: at(1, 2),
                },
                Placement {
                    id: id!("nope"),
                    at: at(3, 4),
                },
            ],
            groups: vec![],
        });
        assert_eq!(e, Err(Error::UnknownContact { id: id!("nope") }));
        assert_eq!(net.state_hash(), before);
        let e = net.apply(Request::Place {
            contacts: vec![],
            groups: vec![Placement {
                id: id!("root"),
                at: at(0, 0),
            }],
        });
        assert_eq!(e, Err(Error::RootGroup));
    }

    #[test]
    fn positions_change_the_hash_and_the_same_position_reports_nothing() {
        let mut net = net_with_contact();
        let unplaced = net.state_hash();
        let place = |x| Request::Place {
            contacts: vec![Placement {
                id: id!("a"),
                at: at(x, 0),
            }],
            groups: vec![],
        };
        let r = net.apply(place(5)).expect("applies");
        assert_eq!(r.changes.len(), 1);
        let placed = net.state_hash();
        assert_ne!(placed, unplaced, "layout is part of the shared state");
        let again = net.apply(place(5)).expect("applies");
        assert!(again.changes.is_empty());
        net.apply(place(6)).expect("applies");
        assert_ne!(net.state_hash(), placed);
    }
}
