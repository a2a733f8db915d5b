//! The one shortcut table of the editor: what each key does, and what the help overlay lists.
//!
//! Shortcuts never fire while the focus is in a text field (the UI checks before asking this
//! table), so Backspace in a value box edits the text instead of deleting the contact.
//!
//! ```
//! use bassline_web::shortcuts::{Action, Keys, action_for};
//! let ctrl_z = Keys { key: "z".into(), ctrl: true, shift: false, alt: false };
//! assert_eq!(action_for(&ctrl_z), Some(Action::Undo));
//! ```

/// Something the editor can do from the keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Help,
    Cancel,
    AddContact,
    AddGroup,
    AddInput,
    AddOutput,
    EditValue,
    ToggleBlend,
    Delete,
    Undo,
    Redo,
    Copy,
    Paste,
    Duplicate,
    SelectAll,
    AutoLayout,
    Fit,
    ZoomIn,
    ZoomOut,
    Up,
}

/// A key press as the browser reports it (`key` is `KeyboardEvent.key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    pub key: String,
    /// Ctrl, or Cmd on a Mac.
    pub ctrl: bool,
    pub shift: bool,
    pub alt: bool,
}

/// The table: keys as shown in the help overlay, the action, and what it does.
pub const TABLE: &[(&str, Action, &str)] = &[
    ("?", Action::Help, "show or hide this help"),
    (
        "Esc",
        Action::Cancel,
        "cancel the current gesture, close dialogs, clear the selection",
    ),
    (
        "C  or double-click canvas",
        Action::AddContact,
        "new contact at the pointer",
    ),
    ("G", Action::AddGroup, "new empty group at the pointer"),
    (
        "I / O",
        Action::AddInput,
        "new input / output boundary contact (inside a group)",
    ),
    (
        "Enter  or double-click contact",
        Action::EditValue,
        "edit the selected contact's value",
    ),
    (
        "M",
        Action::ToggleBlend,
        "switch blend mode (accept-last / merge)",
    ),
    ("Delete / Backspace", Action::Delete, "delete the selection"),
    ("Ctrl+Z", Action::Undo, "undo your last edit"),
    ("Ctrl+Shift+Z / Ctrl+Y", Action::Redo, "redo"),
    (
        "Ctrl+C / Ctrl+V",
        Action::Copy,
        "copy / paste the selection",
    ),
    ("Ctrl+D", Action::Duplicate, "duplicate the selection"),
    (
        "Ctrl+A",
        Action::SelectAll,
        "select everything in this group",
    ),
    (
        "L",
        Action::AutoLayout,
        "lay out the selection (or the whole group) left to right",
    ),
    ("F", Action::Fit, "fit the group in view"),
    ("+ / -", Action::ZoomIn, "zoom in / out"),
    ("U  or Alt+↑", Action::Up, "leave this group for its parent"),
];

/// The action a key press asks for, if any.
pub fn action_for(k: &Keys) -> Option<Action> {
    let key = k.key.as_str();
    if k.ctrl {
        return match key.to_ascii_lowercase().as_str() {
            "z" if k.shift => Some(Action::Redo),
            "z" => Some(Action::Undo),
            "y" => Some(Action::Redo),
            "c" => Some(Action::Copy),
            "v" => Some(Action::Paste),
            "d" => Some(Action::Duplicate),
            "a" => Some(Action::SelectAll),
            _ => None,
        };
    }
    if k.alt {
        return (key == "ArrowUp").then_some(Action::Up);
    }
    Some(match key {
        "?" => Action::Help,
        "Escape" => Action::Cancel,
        "Delete" | "Backspace" => Action::Delete,
        "Enter" => Action::EditValue,
        "+" | "=" => Action::ZoomIn,
        "-" | "_" => Action::ZoomOut,
        _ => match key.to_ascii_lowercase().as_str() {
            "c" => Action::AddContact,
            "g" => Action::AddGroup,
            "i" => Action::AddInput,
            "o" => Action::AddOutput,
            "m" => Action::ToggleBlend,
            "l" => Action::AutoLayout,
            "f" => Action::Fit,
            "u" => Action::Up,
            _ => return None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(key: &str, ctrl: bool, shift: bool) -> Keys {
        Keys {
            key: key.into(),
            ctrl,
            shift,
            alt: false,
        }
    }

    #[test]
    fn keys_map_to_actions_and_plain_letters_need_no_modifier() {
        assert_eq!(action_for(&k("Z", true, true)), Some(Action::Redo));
        assert_eq!(action_for(&k("y", true, false)), Some(Action::Redo));
        assert_eq!(action_for(&k("c", false, false)), Some(Action::AddContact));
        assert_eq!(action_for(&k("c", true, false)), Some(Action::Copy));
        assert_eq!(
            action_for(&k("Backspace", false, false)),
            Some(Action::Delete)
        );
        assert_eq!(action_for(&k("x", false, false)), None);
        assert_eq!(action_for(&k("q", true, false)), None);
    }

    #[test]
    fn the_help_lists_every_action_the_keys_reach() {
        let listed: Vec<Action> = TABLE.iter().map(|(_, a, _)| *a).collect();
        for key in [
            "?", "Escape", "c", "g", "i", "Enter", "m", "Delete", "l", "f", "+", "u",
        ] {
            let a = action_for(&k(key, false, false)).expect("mapped");
            assert!(listed.contains(&a), "{key} -> {a:?} is not in the help");
        }
        for key in ["z", "y", "c", "d", "a"] {
            let a = action_for(&k(key, true, false)).expect("mapped");
            assert!(
                listed.contains(&a) || a == Action::Paste,
                "Ctrl+{key} -> {a:?} is not in the help"
            );
        }
    }
}
