//! Requests the unit tests build networks from.

use bassline_core::{BlendMode, Direction, Id, Primitive, Request, Value, WireKind};

fn id(s: &str) -> Id {
    Id::new(s).expect("test ids are valid")
}

pub fn contact(group: &str, c: &str) -> Request {
    contact_with(group, c, Value::Null, None)
}

pub fn contact_with(group: &str, c: &str, value: Value, boundary: Option<Direction>) -> Request {
    Request::AddContact {
        id: Some(id(c)),
        group: id(group),
        name: None,
        blend: BlendMode::AcceptLast,
        value,
        boundary,
    }
}

pub fn group(parent: &str, g: &str, primitive: Option<Primitive>) -> Request {
    Request::AddGroup {
        id: Some(id(g)),
        parent: id(parent),
        name: None,
        primitive,
    }
}

pub fn wire(w: &str, from: &str, to: &str, kind: WireKind) -> Request {
    Request::Connect {
        id: Some(id(w)),
        from: id(from),
        to: id(to),
        kind,
    }
}
