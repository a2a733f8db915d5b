//! What the editor does, whichever way it was asked (toolbar, shortcut, gesture), and the
//! keyboard handler that maps keys through the one shortcut table.

use bassline_core::{
    BlendMode, Direction, Id, Placement, Point, Primitive, ROOT, Request, WireKind,
};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::{Ed, Gesture, PendingWire};
use crate::{
    clipboard::Clip,
    geometry::{CONTACT_H, CONTACT_W, GROUP_W},
    layout::auto_layout,
    shortcuts::{Action, Keys, action_for},
    value_input::parse_value,
    view::NodeKind,
};

fn place_contact(id: &Id, x: f64, y: f64) -> Request {
    Request::Place {
        contacts: vec![Placement {
            id: id.clone(),
            at: Some(Point {
                x: x.round() as i32,
                y: y.round() as i32,
            }),
        }],
        groups: Vec::new(),
    }
}

impl Ed {
    /// A new contact centred on a canvas point, selected.
    pub fn add_contact_at(&self, x: f64, y: f64, boundary: Option<Direction>) {
        let group = self.group.get_untracked();
        if boundary.is_some() && group.as_str() == ROOT {
            self.toast(
                "the root group has no boundary: enter a group to add inputs and outputs",
                true,
            );
            return;
        }
        let id = self.fresh('c');
        let x = x - f64::from(CONTACT_W) / 2.0;
        let y = y - f64::from(CONTACT_H) / 2.0;
        if self.edit(vec![
            Request::AddContact {
                id: Some(id.clone()),
                group,
                name: None,
                blend: BlendMode::AcceptLast,
                value: Default::default(),
                boundary,
            },
            place_contact(&id, x, y),
        ]) {
            self.selection.set([id].into());
        }
    }

    /// A new gadget (or an empty group with `None`) centred on a canvas point.
    pub fn add_group_at(&self, x: f64, y: f64, primitive: Option<Primitive>) {
        let id = self.fresh('g');
        let at = Point {
            x: (x - f64::from(GROUP_W) / 2.0).round() as i32,
            y: (y - 30.0).round() as i32,
        };
        if self.edit(vec![
            Request::AddGroup {
                id: Some(id.clone()),
                parent: self.group.get_untracked(),
                name: None,
                primitive,
            },
            Request::Place {
                contacts: Vec::new(),
                groups: vec![Placement {
                    id: id.clone(),
                    at: Some(at),
                }],
            },
        ]) {
            self.selection.set([id].into());
        }
    }

    /// Reads typed text as a value and writes it; on bad input says why and changes nothing.
    pub fn set_value(&self, contact: &Id, text: &str) -> Result<(), String> {
        let value = parse_value(text)?;
        let same = self.with_net(|n| n.contact(contact).map(|c| c.value == value));
        if same == Some(true) {
            return Ok(());
        }
        if self.edit(vec![Request::UpdateContent {
            contact: contact.clone(),
            value,
        }]) {
            Ok(())
        } else {
            Err("the value was refused".to_owned())
        }
    }

    pub fn set_blend(&self, ids: &[Id], blend: BlendMode) {
        let edit = ids
            .iter()
            .filter(|id| self.with_net(|n| n.contact(id).is_some_and(|c| c.blend != blend)))
            .map(|id| Request::UpdateContact {
                id: id.clone(),
                name: None,
                blend: Some(blend),
            })
            .collect();
        self.edit(edit);
    }

    /// Selected contacts of this group (not subgroups or wires).
    pub fn selected_contacts(&self) -> Vec<Id> {
        let sel = self.selection.get_untracked();
        self.with_net(|n| {
            sel.iter()
                .filter(|id| n.contact(id).is_some())
                .cloned()
                .collect()
        })
    }

    fn toggle_blend(&self) {
        let ids = self.selected_contacts();
        let any_last = self.with_net(|n| {
            ids.iter().any(|id| {
                n.contact(id)
                    .is_some_and(|c| c.blend == BlendMode::AcceptLast)
            })
        });
        self.set_blend(
            &ids,
            if any_last {
                BlendMode::Merge
            } else {
                BlendMode::AcceptLast
            },
        );
    }

    /// Removes the selected wires, contacts and subgroups, as one edit.
    pub fn delete_selection(&self) {
        let sel = self.selection.get_untracked();
        let group = self.group.get_untracked();
        let mut wires = Vec::new();
        let mut others = Vec::new();
        self.with_net(|n| {
            for id in &sel {
                if n.wire(id).is_some() {
                    wires.push(Request::Disconnect { id: id.clone() });
                } else if let Some(c) = n.contact(id).filter(|c| c.group == group) {
                    others.push(Request::RemoveContact { id: c.id.clone() });
                } else if n
                    .group(id)
                    .is_some_and(|g| g.parent.as_ref() == Some(&group))
                {
                    others.push(Request::RemoveGroup { id: id.clone() });
                }
            }
        });
        // Wires first: a selected wire may end at a selected contact, whose removal would take
        // it along and leave the disconnect nothing to remove.
        let mut edit = wires;
        edit.extend(others);
        if self.edit(edit) {
            self.selection.set(Default::default());
        }
    }

    pub fn copy(&self) -> bool {
        let group = self.group.get_untracked();
        let sel: Vec<Id> = self.selection.get_untracked().into_iter().collect();
        let clip = self.with_net(|n| Clip::copy(n, &group, &sel));
        if clip.is_empty() {
            return false;
        }
        let count = clip.len();
        self.core.update_value(|c| c.clip = clip);
        self.toast(format!("copied {count} item(s)"), false);
        true
    }

    pub fn paste(&self) {
        let group = self.group.get_untracked();
        let mut edit = Vec::new();
        self.core.update_value(|c| {
            edit = c
                .clip
                .paste(c.backend.network(), &group, &mut c.ids, (40, 40))
        });
        if edit.is_empty() {
            self.toast("nothing to paste: copy a selection first (Ctrl+C)", false);
            return;
        }
        let before = self.node_ids();
        if self.edit(edit) {
            // Select what arrived.
            let mut new = self.node_ids();
            new.retain(|id| !before.contains(id));
            self.selection.set(new);
        }
    }

    /// Every node drawn in this group.
    fn node_ids(&self) -> std::collections::BTreeSet<Id> {
        self.view
            .with_untracked(|v| v.nodes.iter().map(|n| n.id.clone()).collect())
    }

    pub fn select_all(&self) {
        self.selection.set(self.node_ids());
    }

    pub fn auto_layout(&self) {
        let view = self.view.get_untracked();
        let sel: Vec<Id> = self
            .selection
            .get_untracked()
            .into_iter()
            .filter(|id| view.node(id).is_some())
            .collect();
        let only = if sel.len() > 1 { sel } else { Vec::new() };
        if let Some(place) = auto_layout(&view, &only) {
            self.edit(vec![place]);
        }
    }

    /// Makes the wire the person drew, of the kind they picked.
    pub fn finish_wire(&self, p: PendingWire, kind: WireKind) {
        self.pending_wire.set(None);
        let mut edit = Vec::new();
        let other = match p.to {
            Some(to) => to,
            None => {
                let id = self.fresh('c');
                edit.push(Request::AddContact {
                    id: Some(id.clone()),
                    group: self.group.get_untracked(),
                    name: None,
                    blend: BlendMode::AcceptLast,
                    value: Default::default(),
                    boundary: None,
                });
                let (x, y) = p.at;
                edit.push(place_contact(
                    &id,
                    x - f64::from(CONTACT_W) / 2.0,
                    y - f64::from(CONTACT_H) / 2.0,
                ));
                id
            }
        };
        // Values flow from an output side to an input side, whichever end the drag began at.
        let (from, to) = if p.outward {
            (p.from, other)
        } else {
            (other, p.from)
        };
        let wire = self.fresh('w');
        edit.push(Request::Connect {
            id: Some(wire.clone()),
            from,
            to,
            kind,
        });
        if self.edit(edit) {
            self.selection.set([wire].into());
        }
    }

    /// Leaves this group for its parent.
    pub fn go_up(&self) {
        let g = self.group.get_untracked();
        if let Some(parent) = self.with_net(|n| n.group(&g).and_then(|g| g.parent.clone())) {
            self.enter(parent);
        }
    }

    pub fn zoom(&self, factor: f64) {
        let (w, h) = self.screen.get_untracked();
        self.viewport
            .update(|v| v.zoom_at(factor, w / 2.0, h / 2.0));
    }

    /// Enter: edit the selected contact's value; on a plain group, go inside.
    fn open_selected(&self) {
        let sel = self.selection.get_untracked();
        let [id] = sel.iter().collect::<Vec<_>>()[..] else {
            return;
        };
        match self.view.get_untracked().node(id).map(|n| n.kind.clone()) {
            Some(NodeKind::Contact { .. }) => {
                self.edit_error.set(None);
                self.editing.set(Some(id.clone()));
            }
            Some(NodeKind::Group) => self.enter(id.clone()),
            _ => {}
        }
    }

    /// Escape: closes what is open, or cancels the gesture, or clears the selection.
    fn cancel(&self) {
        if self.help.get_untracked() {
            self.help.set(false);
        } else if self.pending_wire.get_untracked().is_some() {
            self.pending_wire.set(None);
        } else if self.armed.get_untracked().is_some() {
            self.armed.set(None);
        } else if self.gesture.get_untracked() != Gesture::None {
            self.gesture.set(Gesture::None);
        } else {
            self.selection.set(Default::default());
        }
    }

    pub fn run(&self, action: Action, shift: bool) {
        let (px, py) = self.pointer.get_untracked();
        match action {
            Action::Help => self.help.update(|h| *h = !*h),
            Action::Cancel => self.cancel(),
            Action::AddContact => self.add_contact_at(px, py, None),
            Action::AddGroup => self.add_group_at(px, py, None),
            Action::AddInput => self.add_contact_at(
                px,
                py,
                Some(if shift {
                    Direction::Output
                } else {
                    Direction::Input
                }),
            ),
            Action::AddOutput => self.add_contact_at(px, py, Some(Direction::Output)),
            Action::EditValue => self.open_selected(),
            Action::ToggleBlend => self.toggle_blend(),
            Action::Delete => self.delete_selection(),
            Action::Undo => self.undo(),
            Action::Redo => self.redo(),
            Action::Copy => {
                self.copy();
            }
            Action::Paste => self.paste(),
            Action::Duplicate => {
                if self.copy() {
                    self.paste();
                }
            }
            Action::SelectAll => self.select_all(),
            Action::AutoLayout => self.auto_layout(),
            Action::Fit => self.fit(),
            Action::ZoomIn => self.zoom(1.25),
            Action::ZoomOut => self.zoom(0.8),
            Action::Up => self.go_up(),
        }
    }
}

/// Whether the key went to a text field (then it is typing, not a shortcut).
fn typing(ev: &web_sys::KeyboardEvent) -> bool {
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|el| {
            matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                || el.closest("[contenteditable]").ok().flatten().is_some()
        })
}

pub(super) fn install_keys(ed: Ed) {
    let _ = window_event_listener(leptos::ev::keydown, move |ev| {
        if typing(&ev) || !ed.ready.get_untracked() {
            return;
        }
        // The wire-kind prompt takes its own keys.
        if let Some(p) = ed.pending_wire.get_untracked() {
            match ev.key().as_str() {
                "Enter" | "b" | "B" => ed.finish_wire(p, WireKind::Bidirectional),
                "d" | "D" => ed.finish_wire(p, WireKind::Directed),
                "Escape" => ed.pending_wire.set(None),
                _ => return,
            }
            ev.prevent_default();
            return;
        }
        let keys = Keys {
            key: ev.key(),
            ctrl: ev.ctrl_key() || ev.meta_key(),
            shift: ev.shift_key(),
            alt: ev.alt_key(),
        };
        if let Some(action) = action_for(&keys) {
            ev.prevent_default();
            ed.run(action, keys.shift);
        }
    });
}
