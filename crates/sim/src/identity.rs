//! The simulator's stand-in for Ed25519: a keyed BLAKE3 MAC per peer, a few hundred times
//! cheaper, so thousands of seeds stay fast. Mocks belong here only (real drivers and the
//! sync tests use Ed25519).
//!
//! A peer's public key names it and the run; its secret is derived from the public key under
//! a key only this module holds, which plays the verifier table: honest sessions sign with
//! their own identity object, and the hostile member holds only its own, so it cannot sign for
//! anyone else (the simulator never hands it another's).

use bassline_protocol::{PeerId, PublicKey, Signature};
use bassline_sync::Identity;

/// Stands in for the verifier's table of secrets.
const TABLE_KEY: [u8; 32] = *b"bassline sim verifier table key!";

/// One peer's stand-in identity. The same peer id in the same run has the same key (a peer
/// restarted under its id keeps its key, as a resumed session does).
#[derive(Debug)]
pub struct SimIdentity {
    public: PublicKey,
    secret: [u8; 32],
}

impl SimIdentity {
    pub fn new(peer: PeerId, run: u64) -> Self {
        let mut public = [0u8; 32];
        public[..8].copy_from_slice(&peer.to_le_bytes());
        public[8..16].copy_from_slice(&run.to_le_bytes());
        public[16..].copy_from_slice(b"sim identity 01\0");
        let public = PublicKey(public);
        SimIdentity {
            public,
            secret: secret_of(&public),
        }
    }
}

fn secret_of(key: &PublicKey) -> [u8; 32] {
    *blake3::keyed_hash(&TABLE_KEY, &key.0).as_bytes()
}

fn mac(secret: &[u8; 32], message: &[u8]) -> Signature {
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(blake3::keyed_hash(secret, message).as_bytes());
    Signature(sig)
}

impl Identity for SimIdentity {
    fn public_key(&self) -> PublicKey {
        self.public
    }

    fn sign(&self, message: &[u8]) -> Signature {
        mac(&self.secret, message)
    }

    fn verify(&self, key: &PublicKey, message: &[u8], sig: &Signature) -> bool {
        mac(&secret_of(key), message) == *sig
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_holder_signs_for_its_key() {
        let (a, b) = (SimIdentity::new(1, 9), SimIdentity::new(2, 9));
        let sig = a.sign(b"op");
        assert!(b.verify(&a.public_key(), b"op", &sig));
        assert!(!b.verify(&b.public_key(), b"op", &sig));
        assert!(!b.verify(&a.public_key(), b"op2", &sig));
        assert_eq!(SimIdentity::new(1, 9).public_key(), a.public_key());
        assert_ne!(SimIdentity::new(1, 8).public_key(), a.public_key());
    }
}
