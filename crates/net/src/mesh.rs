//! The mesh's rules (who offers, backoff) live in `bassline-signal` so the browser's transport
//! shares them; re-exported here, with the process-local jitter seed the native driver uses.
//!
//! ```
//! use bassline_net::mesh::{offers, random_seed};
//! assert!(offers(3, 1) && !offers(1, 3));
//! let _jitter_seed: u64 = random_seed();
//! ```

pub use bassline_signal::mesh::{Backoff, offers};

/// A seed for jitter that differs between processes and calls.
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
