//! Room passwords: Argon2id with a random salt, compared in constant time. Slow on purpose, so
//! the server calls these from `spawn_blocking`, never on the event loop.
//!
//! ```
//! use bassline_signal::password::{hash, verify, PasswordParams};
//! use bassline_signal::Password;
//! let p = PasswordParams::for_tests();
//! let h = hash(&p, &Password("hunter2".into()), [7; 16]);
//! assert!(verify(&p, &Password("hunter2".into()), &h));
//! assert!(!verify(&p, &Password("hunter3".into()), &h));
//! ```

use argon2::{Algorithm, Argon2, Params, Version};
use subtle::ConstantTimeEq;

use crate::{Password, PasswordHash};

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy)]
pub struct PasswordParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
}

impl Default for PasswordParams {
    /// 19 MiB, 2 passes, 1 lane: OWASP's recommended minimum for Argon2id.
    fn default() -> Self {
        Self {
            m_cost: 19 * 1024,
            t_cost: 2,
        }
    }
}

impl PasswordParams {
    /// The smallest parameters Argon2 allows: fast tests, no security.
    pub fn for_tests() -> Self {
        Self {
            m_cost: 8,
            t_cost: 1,
        }
    }

    fn argon2(&self) -> Argon2<'static> {
        // Out-of-range values fall back to the defaults rather than failing a room creation.
        let params =
            Params::new(self.m_cost.max(8), self.t_cost.max(1), 1, Some(32)).unwrap_or_default();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }
}

/// Hashes `password` with `salt`.
pub fn hash(params: &PasswordParams, password: &Password, salt: [u8; 16]) -> PasswordHash {
    let mut out = [0u8; 32];
    params
        .argon2()
        .hash_password_into(password.0.as_bytes(), &salt, &mut out)
        .expect("a 16-byte salt and a 32-byte output are within Argon2's limits");
    PasswordHash { salt, hash: out }
}

/// Whether `password` matches `stored`, in time independent of where they differ.
pub fn verify(params: &PasswordParams, password: &Password, stored: &PasswordHash) -> bool {
    let candidate = hash(params, password, stored.salt);
    candidate.hash.ct_eq(&stored.hash).into()
}
