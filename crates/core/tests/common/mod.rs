//! Helpers shared by the core integration tests.
#![allow(dead_code)]

use bassline_core::{
    BlendMode, Direction, Error, Id, Network, Primitive, Reply, Request, Response, Value, WireKind,
};

pub fn id(s: &str) -> Id {
    Id::new(s).expect("test ids are valid")
}

pub fn ok(net: &mut Network, r: Request) -> Response {
    let show = format!("{r:?}");
    net.apply(r)
        .unwrap_or_else(|e| panic!("{show} failed: {e}"))
}

/// Applies a request that must fail, and checks that the state did not change.
pub fn refused(net: &mut Network, r: Request) -> Error {
    let before = net.state_hash();
    let doc = net.export();
    let e = net.apply(r).expect_err("request should be refused");
    assert_eq!(
        net.state_hash(),
        before,
        "a refused request changed the state hash"
    );
    assert_eq!(net.export(), doc, "a refused request changed the state");
    e
}

pub fn contact(g: &str, c: &str) -> Request {
    contact_with(g, c, BlendMode::AcceptLast, None)
}

pub fn contact_with(g: &str, c: &str, blend: BlendMode, boundary: Option<Direction>) -> Request {
    Request::AddContact {
        id: Some(id(c)),
        group: id(g),
        name: None,
        blend,
        value: Value::Null,
        boundary,
    }
}

pub fn group(parent: &str, g: &str) -> Request {
    Request::AddGroup {
        id: Some(id(g)),
        parent: id(parent),
        name: None,
        primitive: None,
    }
}

pub fn gadget(parent: &str, g: &str, p: Primitive) -> Request {
    Request::AddGroup {
        id: Some(id(g)),
        parent: id(parent),
        name: None,
        primitive: Some(p),
    }
}

pub fn wire(w: &str, from: &str, to: &str) -> Request {
    wire_kind(w, from, to, WireKind::Bidirectional)
}

pub fn wire_kind(w: &str, from: &str, to: &str, kind: WireKind) -> Request {
    Request::Connect {
        id: Some(id(w)),
        from: id(from),
        to: id(to),
        kind,
    }
}

pub fn write(c: &str, v: impl Into<Value>) -> Request {
    Request::UpdateContent {
        contact: id(c),
        value: v.into(),
    }
}

pub fn value(net: &Network, c: &str) -> Value {
    net.contact(&id(c)).expect("contact exists").value.clone()
}

pub fn created(r: &Response) -> Id {
    match &r.reply {
        Reply::Created { id } => id.clone(),
        other => panic!("expected Created, got {other:?}"),
    }
}
