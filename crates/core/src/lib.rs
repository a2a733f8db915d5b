//! Bassline's core: propagation networks, their engine, and the NetworkClient interface.
//!
//! A network is a tree of groups. Groups hold contacts (cells with a value) and wires between
//! contacts; a primitive group is a gadget (add, gate, ...) fed by its boundary contacts. Every
//! client talks to a network through [`Request`]s and hears about [`Change`]s.
//!
//! ```
//! use bassline_core::{Network, Primitive, Request, Value, id};
//! let mut net = Network::new();
//! net.apply(Request::AddGroup { id: Some(id!("sum")), parent: id!("root"), name: None,
//!     primitive: Some(Primitive::Add) }).unwrap();
//! net.apply(Request::UpdateContent { contact: id!("sum/a"), value: Value::from(2.0) }).unwrap();
//! net.apply(Request::UpdateContent { contact: id!("sum/b"), value: Value::from(3.0) }).unwrap();
//! assert_eq!(net.contact(&id!("sum/out")).unwrap().value, Value::from(5.0));
//! ```

mod client;
mod document;
mod engine;
mod error;
mod hash;
mod id;
mod layout;
mod model;
mod primitive;
mod repair;
mod request;
mod value;

pub use client::{ChangeBatch, ChangeStream, LocalClient, NetworkClient, Subscribers};
pub use document::{ContactDocument, FORMAT, GroupDocument, StateDocument, VERSION, WireDocument};
pub use engine::{Config, Network, ROOT};
pub use error::Error;
pub use hash::StateHash;
pub use id::{Id, MAX_ID_LEN};
pub use layout::{Placement, Point};
pub use model::{BlendMode, Contact, Contradiction, Direction, GroupInfo, Wire, WireKind};
pub use primitive::{OUTPUT, Primitive};
pub use request::{Change, GroupState, Reply, Request, Response, SubgroupState};
pub use value::{MAX_DEPTH, MergeConflict, Value};
