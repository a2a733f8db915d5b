//! The versioned JSON document a network exports to and imports from (the offline path:
//! export, send the file, import).
//!
//! ```
//! use bassline_core::{Network, StateDocument};
//! let net = Network::new();
//! let json = net.export().to_json_pretty();
//! let back = Network::import(&StateDocument::from_json(&json).unwrap()).unwrap();
//! assert_eq!(back.state_hash(), net.state_hash());
//! ```

use serde::{Deserialize, Serialize};

use crate::{
    BlendMode, Contact, Contradiction, Direction, Error, Id, Point, Primitive, Value, WireKind,
};

/// The `format` field of every state document.
pub const FORMAT: &str = "bassline-state";
/// The document version this build writes, and the newest it reads. Version 2 added layout
/// (`at` on contacts and groups); version 1 files load unchanged, with nothing placed.
pub const VERSION: u64 = 2;

/// A whole network, nested from the root group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateDocument {
    /// Always [`FORMAT`].
    pub format: String,
    pub version: u64,
    pub root: GroupDocument,
}

/// A group with its contents, nested.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDocument {
    pub id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primitive: Option<Primitive>,
    /// Where the group sits on its parent's canvas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Point>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<ContactDocument>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wires: Vec<WireDocument>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupDocument>,
}

/// A contact inside its group's document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactDocument {
    pub id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub blend: BlendMode,
    #[serde(default)]
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contradiction: Option<Contradiction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<Direction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Point>,
}

/// A wire inside the document of the group whose scope holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireDocument {
    pub id: Id,
    pub from: Id,
    pub to: Id,
    #[serde(default)]
    pub kind: WireKind,
}

impl ContactDocument {
    /// The contact this document describes, in group `group`.
    pub fn to_contact(&self, group: &Id) -> Contact {
        Contact {
            id: self.id.clone(),
            group: group.clone(),
            name: self.name.clone(),
            blend: self.blend,
            value: self.value.clone(),
            contradiction: self.contradiction.clone(),
            boundary: self.boundary,
            at: self.at,
        }
    }
}

impl From<&Contact> for ContactDocument {
    fn from(c: &Contact) -> Self {
        ContactDocument {
            id: c.id.clone(),
            name: c.name.clone(),
            blend: c.blend,
            value: c.value.clone(),
            contradiction: c.contradiction.clone(),
            boundary: c.boundary,
            at: c.at,
        }
    }
}

impl StateDocument {
    /// Wraps a root group in a current-version document.
    pub fn new(root: GroupDocument) -> Self {
        StateDocument {
            format: FORMAT.to_owned(),
            version: VERSION,
            root,
        }
    }

    /// Reads a document, checking its format and version before its contents so that a file
    /// from a newer Bassline gets a clear message rather than a field error.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let raw: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::InvalidDocument {
                reason: format!("not JSON: {e}"),
            })?;
        let format = raw.get("format").and_then(|f| f.as_str());
        if format != Some(FORMAT) {
            return Err(Error::InvalidDocument {
                reason: format!("expected \"format\": \"{FORMAT}\"; is this a Bassline export?"),
            });
        }
        match raw.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v > VERSION => {
                return Err(Error::UnsupportedVersion {
                    found: v,
                    supported: VERSION,
                });
            }
            Some(0) | None => {
                return Err(Error::InvalidDocument {
                    reason: "\"version\" must be a positive whole number".to_owned(),
                });
            }
            Some(_) => {}
        }
        serde_json::from_value(raw).map_err(|e| Error::InvalidDocument {
            reason: e.to_string(),
        })
    }

    /// Checks the header of a document that arrived already decoded.
    pub fn check_header(&self) -> Result<(), Error> {
        if self.format != FORMAT {
            return Err(Error::InvalidDocument {
                reason: format!("expected format \"{FORMAT}\", found {:?}", self.format),
            });
        }
        if self.version > VERSION {
            return Err(Error::UnsupportedVersion {
                found: self.version,
                supported: VERSION,
            });
        }
        if self.version == 0 {
            return Err(Error::InvalidDocument {
                reason: "version 0 does not exist".to_owned(),
            });
        }
        Ok(())
    }

    /// The document as indented JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a state document always serializes to JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_future_versions_other_formats_and_garbage() {
        let future = r#"{"format":"bassline-state","version":99,"root":{"id":"root"}}"#;
        assert_eq!(
            StateDocument::from_json(future),
            Err(Error::UnsupportedVersion {
                found: 99,
                supported: VERSION
            })
        );
        let other = r#"{"format":"something-else","version":1,"root":{"id":"root"}}"#;
        assert!(matches!(
            StateDocument::from_json(other),
            Err(Error::InvalidDocument { .. })
        ));
        assert!(matches!(
            StateDocument::from_json("{nope"),
            Err(Error::InvalidDocument { .. })
        ));
        let extra = r#"{"format":"bassline-state","version":1,"root":{"id":"root","x":1}}"#;
        assert!(matches!(
            StateDocument::from_json(extra),
            Err(Error::InvalidDocument { .. })
        ));
        let ok = r#"{"format":"bassline-state","version":1,"root":{"id":"root"}}"#;
        assert!(StateDocument::from_json(ok).is_ok());
    }
}
