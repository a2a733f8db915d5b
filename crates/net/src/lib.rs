//! Drivers that carry Bassline collaboration sessions over real networks.
//!
//! A [`Transport`] reports links to peers, frames from them and news about its own
//! connections; [`NetClient::spawn`] runs a [`bassline_sync::Session`] over it on tokio,
//! feeding it the clock, timers, frames and link events, and gives the editor the same
//! interface as local mode plus a status stream. Transports: [`MemoryNet`] (tests), WebSocket
//! (remote mode, [`ws`]) and WebRTC data channels (peer-to-peer, [`p2p`]).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use bassline_core::{Network, Request, Value, id};
//! use bassline_net::{MemoryNet, NetClient, Start, wait_for};
//! let net = MemoryNet::new();
//! let host = NetClient::spawn(net.join(1, None), Default::default(), Start::Host(Network::new()));
//! let guest = NetClient::spawn(net.join(2, Some(1)), Default::default(), Start::Guest);
//! net.link(1, 2);
//! wait_for(&guest, |s| s.synced && !s.read_only).await.unwrap();
//! guest.submit(Request::AddContact { id: Some(id!("x")), group: id!("root"), name: None,
//!     blend: Default::default(), value: Value::from(1.0), boundary: None }).await.unwrap();
//! wait_for(&guest, |s| s.pending == 0).await.unwrap();
//! # });
//! ```
#![forbid(unsafe_code)]

mod client;
mod driver;
mod error;
mod link;
mod memory;
pub mod mesh;
pub mod p2p;
pub mod pair;
pub mod room_auth;
pub mod room_pake;
pub mod rtc;
mod status;
mod transport;
pub mod ws;

pub use client::{NetClient, wait_for};
pub use driver::Start;
pub use error::Error;
pub use link::{
    EVENT_QUEUE, Events, Link, LinkEnds, LinkId, LinkInfo, Path, RELIABLE_QUEUE, SendError,
    TransportEvent, TransportStatus, UNRELIABLE_QUEUE,
};
pub use memory::MemoryNet;
pub use status::{LinkState, NetEvent, PeerStatus, Status, role_name};
pub use transport::Transport;
