//! The Bassline editor in the browser.
//!
//! The logic lives in plain modules that build and test natively; the Leptos UI (`ui`, wasm32
//! only) draws it and feeds it the user's gestures. The editor always talks to a
//! [`bassline_sync::Session`] through [`backend::Backend`]: local mode is a session hosting
//! alone, remote mode (and later peer-to-peer) a guest session behind a transport.
//!
//! ```
//! use bassline_web::{backend::Backend, value_input::parse_value};
//! use bassline_core::{Request, id};
//! let mut backend = Backend::local(bassline_core::Network::new());
//! backend.submit(Request::AddContact { id: Some(id!("a")), group: id!("root"), name: None,
//!     blend: Default::default(), value: parse_value("42").unwrap(), boundary: None }).unwrap();
//! assert_eq!(backend.network().contact(&id!("a")).unwrap().value.as_number(), Some(42.0));
//! ```

pub mod backend;
pub mod clipboard;
pub mod geometry;
pub mod history;
pub mod ids;
pub mod layout;
pub mod p2p;
pub mod palette;
pub mod shortcuts;
#[cfg(test)]
mod testing;
pub mod value_input;
pub mod view;

#[cfg(target_arch = "wasm32")]
mod ui;
