//! Undo and redo of this person's own edits.
//!
//! An edit is a list of requests (adding a contact where you clicked is an add and a place).
//! Undo must be an edit too, made of requests, because in collaboration it is sequenced and
//! replicated like any other: the core's undo journal (changes) serves tentative edits inside
//! the session, not this. So before each request goes out, its inverse is worked out from the
//! state just before it; undoing sends the inverses in reverse order, and redoing sends the
//! inverses of those.
//!
//! Propagation is not undone: undoing a write restores the contact's own earlier value, and
//! what that value then propagates is the network's business.
//!
//! ```
//! use bassline_web::{backend::Backend, history::History};
//! use bassline_core::{Network, Request, Value, id};
//! let mut b = Backend::local(Network::new());
//! let mut h = History::default();
//! h.perform(&mut b, vec![Request::AddContact { id: Some(id!("a")), group: id!("root"),
//!     name: None, blend: Default::default(), value: Value::Null, boundary: None }]).unwrap();
//! h.undo(&mut b).unwrap();
//! assert!(b.network().contact(&id!("a")).is_none());
//! h.redo(&mut b).unwrap();
//! assert!(b.network().contact(&id!("a")).is_some());
//! ```

use bassline_core::{BlendMode, Id, Network, Placement, Request, Value};

use crate::backend::Backend;

/// Undo steps kept; older ones are forgotten.
const DEPTH: usize = 200;

/// The undo and redo stacks: each entry is the requests that take one edit back (or forward).
#[derive(Debug, Default)]
pub struct History {
    undo: Vec<Vec<Request>>,
    redo: Vec<Vec<Request>>,
}

impl History {
    /// Sends an edit and remembers how to take it back. Nothing is sent if any request of it
    /// would be refused; the message says why.
    pub fn perform(&mut self, backend: &mut Backend, edit: Vec<Request>) -> Result<(), String> {
        let inverse = send(backend, edit)?;
        push(&mut self.undo, inverse);
        self.redo.clear();
        Ok(())
    }

    /// Takes back the latest edit still on the stack.
    pub fn undo(&mut self, backend: &mut Backend) -> Result<(), String> {
        step(backend, &mut self.undo, &mut self.redo, "undo")
    }

    /// Makes the latest undone edit again.
    pub fn redo(&mut self, backend: &mut Backend) -> Result<(), String> {
        step(backend, &mut self.redo, &mut self.undo, "redo")
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// Forgets everything (after the whole network was replaced).
    pub fn clear(&mut self) {
        self.undo.clear();
        self.redo.clear();
    }
}

fn push(stack: &mut Vec<Vec<Request>>, entry: Vec<Request>) {
    if entry.is_empty() {
        return;
    }
    stack.push(entry);
    if stack.len() > DEPTH {
        stack.remove(0);
    }
}

fn step(
    backend: &mut Backend,
    from: &mut Vec<Vec<Request>>,
    to: &mut Vec<Vec<Request>>,
    what: &str,
) -> Result<(), String> {
    let Some(entry) = from.pop() else {
        return Err(format!("nothing to {what}"));
    };
    match send(backend, entry) {
        Ok(inverse) => {
            push(to, inverse);
            Ok(())
        }
        // Someone else changed what the edit touched; the entry cannot apply any more.
        Err(e) => Err(format!("cannot {what}: {e}")),
    }
}

/// Checks an edit on a scratch copy (so a refusal halfway sends nothing), sends it, and
/// returns the requests that take it back.
fn send(backend: &mut Backend, edit: Vec<Request>) -> Result<Vec<Request>, String> {
    let mut inverse = Vec::new();
    if let [one] = edit.as_slice() {
        inverse.push(invert(backend.network(), one)?);
    } else {
        let mut scratch = backend.network().clone();
        for r in &edit {
            inverse.push(invert(&scratch, r)?);
            scratch.apply(r.clone()).map_err(|e| e.to_string())?;
        }
    }
    for r in edit {
        backend.submit(r).map_err(|e| e.to_string())?;
    }
    inverse.reverse();
    Ok(inverse.into_iter().flatten().collect())
}

/// The requests that take `r` back, worked out from the state just before it.
pub fn invert(net: &Network, r: &Request) -> Result<Vec<Request>, String> {
    let unknown = |what: &str, id: &Id| format!("no {what} `{id}` (it may have been removed)");
    Ok(match r {
        Request::AddContact { id: Some(id), .. } => vec![Request::RemoveContact { id: id.clone() }],
        Request::AddGroup { id: Some(id), .. } => vec![Request::RemoveGroup { id: id.clone() }],
        Request::RegisterGroup { group, .. } => vec![Request::RemoveGroup {
            id: group.id.clone(),
        }],
        Request::Connect { id: Some(id), .. } => vec![Request::Disconnect { id: id.clone() }],
        Request::AddContact { id: None, .. }
        | Request::AddGroup { id: None, .. }
        | Request::Connect { id: None, .. } => {
            return Err("an edit without an id cannot be undone".to_owned());
        }
        Request::Disconnect { id } => {
            let w = net.wire(id).ok_or_else(|| unknown("wire", id))?;
            vec![Request::Connect {
                id: Some(w.id.clone()),
                from: w.from.clone(),
                to: w.to.clone(),
                kind: w.kind,
            }]
        }
        Request::Place { contacts, groups } => {
            let mut before = Request::Place {
                contacts: Vec::new(),
                groups: Vec::new(),
            };
            if let Request::Place {
                contacts: c,
                groups: g,
            } = &mut before
            {
                for p in contacts {
                    let at = net
                        .contact(&p.id)
                        .ok_or_else(|| unknown("contact", &p.id))?
                        .at;
                    c.push(Placement {
                        id: p.id.clone(),
                        at,
                    });
                }
                for p in groups {
                    let at = net.group(&p.id).ok_or_else(|| unknown("group", &p.id))?.at;
                    g.push(Placement {
                        id: p.id.clone(),
                        at,
                    });
                }
            }
            vec![before]
        }
        Request::UpdateContent { contact, .. } => {
            let c = net
                .contact(contact)
                .ok_or_else(|| unknown("contact", contact))?;
            restore_value(contact, &c.value, c.blend)
        }
        Request::UpdateContact { id, .. } => {
            let c = net.contact(id).ok_or_else(|| unknown("contact", id))?;
            vec![Request::UpdateContact {
                id: id.clone(),
                // An empty name clears it.
                name: Some(c.name.clone().unwrap_or_default()),
                blend: Some(c.blend),
            }]
        }
        Request::UpdateGroup { id, .. } => {
            let g = net.group(id).ok_or_else(|| unknown("group", id))?;
            vec![Request::UpdateGroup {
                id: id.clone(),
                name: Some(g.name.clone().unwrap_or_default()),
                parent: g.parent.clone(),
            }]
        }
        Request::RemoveContact { id } => {
            let c = net.contact(id).ok_or_else(|| unknown("contact", id))?;
            let mut back = vec![Request::AddContact {
                id: Some(id.clone()),
                group: c.group.clone(),
                name: c.name.clone(),
                blend: c.blend,
                value: c.value.clone(),
                boundary: c.boundary,
            }];
            if c.at.is_some() {
                back.push(Request::Place {
                    contacts: vec![Placement {
                        id: id.clone(),
                        at: c.at,
                    }],
                    groups: Vec::new(),
                });
            }
            back.extend(rewire(net, |end| end == id));
            back
        }
        Request::RemoveGroup { id } => {
            let g = net.group(id).ok_or_else(|| unknown("group", id))?;
            let parent = g
                .parent
                .clone()
                .ok_or_else(|| "the root group cannot be removed".to_owned())?;
            let doc = net.group_subtree(id).ok_or_else(|| unknown("group", id))?;
            let boundary: Vec<Id> = doc
                .contacts
                .iter()
                .filter(|c| c.boundary.is_some())
                .map(|c| c.id.clone())
                .collect();
            // Wires in the parent that reach the group's boundary go with it (those inside come
            // back with the document).
            let outside: Vec<Request> = rewire(net, |end| boundary.contains(end))
                .into_iter()
                .filter(|r| match r {
                    Request::Connect { id: Some(w), .. } => {
                        net.wire(w).is_some_and(|w| w.group == parent)
                    }
                    _ => false,
                })
                .collect();
            let mut back = vec![Request::RegisterGroup { parent, group: doc }];
            back.extend(outside);
            back
        }
        Request::GetGroupState { .. }
        | Request::GetContact { .. }
        | Request::GetWire { .. }
        | Request::ExportState => Vec::new(),
        Request::ImportState { .. } => {
            return Err("importing a whole network cannot be undone".to_owned());
        }
    })
}

/// Requests that put `old` back into a contact whatever its blend mode: a merging contact
/// would join the old value with the new one, so it accepts the old value for one write.
fn restore_value(contact: &Id, old: &Value, blend: BlendMode) -> Vec<Request> {
    let write = Request::UpdateContent {
        contact: contact.clone(),
        value: old.clone(),
    };
    match blend {
        BlendMode::AcceptLast => vec![write],
        BlendMode::Merge => vec![
            Request::UpdateContact {
                id: contact.clone(),
                name: None,
                blend: Some(BlendMode::AcceptLast),
            },
            write,
            Request::UpdateContact {
                id: contact.clone(),
                name: None,
                blend: Some(BlendMode::Merge),
            },
        ],
    }
}

/// Reconnects every wire with an end that matches, with its id and kind.
fn rewire(net: &Network, touches: impl Fn(&Id) -> bool) -> Vec<Request> {
    let mut wires: Vec<_> = net
        .wires()
        .filter(|w| touches(&w.from) || touches(&w.to))
        .collect();
    wires.sort_by(|a, b| a.id.cmp(&b.id));
    wires
        .into_iter()
        .map(|w| Request::Connect {
            id: Some(w.id.clone()),
            from: w.from.clone(),
            to: w.to.clone(),
            kind: w.kind,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use bassline_core::{Direction, Point, Primitive, id};

    fn contact(g: &str, c: &str, boundary: Option<Direction>) -> Request {
        testing::contact_with(g, c, Value::Null, boundary)
    }

    fn wire(w: &str, a: &str, b: &str) -> Request {
        testing::wire(w, a, b, Default::default())
    }

    /// Builds a small network, then checks that every kind of edit undoes to the exact earlier
    /// state (hash) and redoes to the exact later one.
    #[test]
    fn every_edit_undoes_and_redoes_exactly() {
        let mut b = Backend::local(Network::new());
        let mut h = History::default();
        let setup = vec![
            Request::AddGroup {
                id: Some(id!("g")),
                parent: id!("root"),
                name: Some("inner".into()),
                primitive: None,
            },
            contact("g", "port", Some(Direction::Input)),
            contact("g", "deep", None),
            wire("w0", "port", "deep"),
            contact("root", "a", None),
            contact("root", "b", None),
            wire("w1", "a", "b"),
            wire("w2", "a", "port"),
            Request::AddGroup {
                id: Some(id!("sum")),
                parent: id!("root"),
                name: None,
                primitive: Some(Primitive::Add),
            },
            wire("w3", "b", "sum/a"),
        ];
        h.perform(&mut b, setup).expect("setup applies");
        let edits = vec![
            vec![Request::UpdateContent {
                contact: id!("a"),
                value: Value::from(2.0),
            }],
            vec![Request::Place {
                contacts: vec![Placement {
                    id: id!("a"),
                    at: Some(Point { x: 10, y: 20 }),
                }],
                groups: vec![Placement {
                    id: id!("g"),
                    at: Some(Point { x: 1, y: 1 }),
                }],
            }],
            vec![Request::UpdateContact {
                id: id!("b"),
                name: Some("bee".into()),
                blend: Some(BlendMode::Merge),
            }],
            vec![Request::UpdateContent {
                contact: id!("b"),
                value: Value::from(7.0),
            }],
            vec![Request::Disconnect { id: id!("w1") }],
            vec![Request::RemoveContact { id: id!("a") }],
            vec![Request::RemoveGroup { id: id!("g") }],
            vec![Request::RemoveGroup { id: id!("sum") }],
        ];
        for edit in edits {
            let before = b.network().state_hash();
            let show = format!("{edit:?}");
            h.perform(&mut b, edit).expect("edit applies");
            let after = b.network().state_hash();
            assert_ne!(before, after, "{show} changed something");
            h.undo(&mut b).expect("undo applies");
            assert_eq!(b.network().state_hash(), before, "undo of {show}");
            h.redo(&mut b).expect("redo applies");
            assert_eq!(b.network().state_hash(), after, "redo of {show}");
        }
    }

    #[test]
    fn a_refused_edit_sends_nothing_and_stale_undo_says_why() {
        let mut b = Backend::local(Network::new());
        let mut h = History::default();
        let before = b.network().state_hash();
        let e = h
            .perform(
                &mut b,
                vec![contact("root", "a", None), wire("w", "a", "missing")],
            )
            .expect_err("the wire is refused");
        assert!(e.contains("missing"), "{e}");
        assert_eq!(b.network().state_hash(), before, "nothing was sent");
        assert!(!h.can_undo());
        h.perform(&mut b, vec![contact("root", "a", None)])
            .expect("applies");
        // Someone else removes it before we undo.
        b.submit(Request::RemoveContact { id: id!("a") })
            .expect("applies");
        let e = h.undo(&mut b).expect_err("nothing left to remove");
        assert!(e.starts_with("cannot undo"), "{e}");
        assert_eq!(h.undo(&mut b), Err("nothing to undo".to_owned()));
    }
}
