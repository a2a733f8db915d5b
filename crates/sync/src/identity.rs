//! A session's signing identity: the key its operations are signed with, and how to check
//! another peer's signature.
//!
//! The session stays sans-IO: it is handed an [`Identity`] (real drivers make an
//! [`Ed25519Identity`] from 32 random bytes; the simulator a cheap deterministic stand-in) and
//! never draws randomness itself.

use std::fmt;
use std::sync::Arc;

use bassline_protocol::{Command, OpId, PublicKey, Signature};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

/// Signs this peer's operations and checks other peers' signatures. One scheme per session:
/// every peer of a room must use the same kind.
pub trait Identity: Send + Sync + fmt::Debug {
    /// The key other peers check this peer's signatures against.
    fn public_key(&self) -> PublicKey;
    /// Signs `message` with this peer's secret.
    fn sign(&self, message: &[u8]) -> Signature;
    /// Whether `sig` is `key`'s signature over `message`.
    fn verify(&self, key: &PublicKey, message: &[u8], sig: &Signature) -> bool;
}

/// Ed25519 (RFC 8032), as real drivers use: 32-byte keys, 64-byte signatures.
pub struct Ed25519Identity {
    key: SigningKey,
}

impl Ed25519Identity {
    /// The identity whose secret is `secret` (32 bytes from the OS generator for a real
    /// session; keep them to come back as the same peer).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Ed25519Identity {
            key: SigningKey::from_bytes(&secret),
        }
    }

    /// The secret, to keep with a resume token (a reloaded page signs on with the same key).
    pub fn secret(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

impl fmt::Debug for Ed25519Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519Identity({:?})", self.public_key())
    }
}

impl Identity for Ed25519Identity {
    fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key().to_bytes())
    }

    fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.key.sign(message).to_bytes())
    }

    fn verify(&self, key: &PublicKey, message: &[u8], sig: &Signature) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&key.0) else {
            return false;
        };
        // Strict: no malleable signatures, no small-order keys.
        key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig.0))
            .is_ok()
    }
}

/// The fixed identity of [`crate::Config::default`]: every session made with the default
/// config signs with the same, publicly known key, which is fine for examples and tests and
/// worthless against a hostile member. Drivers always set their own.
pub(crate) fn default_identity() -> Arc<dyn Identity> {
    Arc::new(Ed25519Identity::from_secret(
        *b"bassline default test identity!!",
    ))
}

/// The bytes an operation's signature covers.
pub(crate) fn signed(op: OpId, ts: u64, command: &Command) -> Vec<u8> {
    // Encoding a command fails only for a value rmp-serde cannot write, which the codec would
    // refuse to send anyway; such an operation then carries a signature over its id alone and
    // is refused by the host like any bad signature.
    bassline_protocol::signed_bytes(op, ts, command).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bassline_core::{Request, Value, id};

    fn op() -> (OpId, u64, Command) {
        (
            OpId {
                peer: 3,
                counter: 7,
            },
            42,
            Command::Request(Request::UpdateContent {
                contact: id!("c1"),
                value: Value::from(1.0),
            }),
        )
    }

    #[test]
    fn a_signature_holds_for_its_operation_only() {
        let me = Ed25519Identity::from_secret([1; 32]);
        let other = Ed25519Identity::from_secret([2; 32]);
        let (o, ts, c) = op();
        let sig = me.sign(&signed(o, ts, &c));
        assert!(other.verify(&me.public_key(), &signed(o, ts, &c), &sig));
        assert!(!other.verify(&other.public_key(), &signed(o, ts, &c), &sig));
        let moved = OpId { peer: 4, ..o };
        assert!(!me.verify(&me.public_key(), &signed(moved, ts, &c), &sig));
        assert!(!me.verify(&me.public_key(), &signed(o, ts + 1, &c), &sig));
        let changed = Command::Request(Request::UpdateContent {
            contact: id!("c1"),
            value: Value::from(2.0),
        });
        assert!(!me.verify(&me.public_key(), &signed(o, ts, &changed), &sig));
        assert!(!me.verify(&me.public_key(), &signed(o, ts, &c), &Signature::NONE));
    }
}
