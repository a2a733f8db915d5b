//! The room-key check on the signaling path: [`RoomAuth`] lives in `bassline-trust` (wasm-clean)
//! so the browser's peer-to-peer transport signs and checks exactly as this crate's does; it is
//! re-exported here so `bassline_net::room_auth::RoomAuth` keeps working.
//!
//! ```
//! use bassline_net::room_auth::RoomAuth;
//! use bassline_trust::{Kind, RoomKey};
//! let key = RoomKey::from_bytes([7; 32]);
//! let sdp = "v=0\r\na=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n";
//! let (alice, mut bob) = (RoomAuth::new(&key), RoomAuth::new(&key));
//! let auth = alice.sign("A3B7K9", 1, 2, Kind::Offer, sdp, [9; 16]).unwrap();
//! assert!(bob.check("A3B7K9", 1, 2, Kind::Offer, sdp, Some(&auth)).is_ok());
//! ```

pub use bassline_trust::room_auth::RoomAuth;
