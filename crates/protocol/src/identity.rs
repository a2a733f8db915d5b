//! Per-peer identity on the wire: public keys, signatures over operations, and the exact bytes
//! an operation's signature covers.
//!
//! Every operation carries its origin's signature, so a host can tell an edit its origin made
//! from one another member forged under the origin's id (forwarded from a "lineage that lost",
//! or made up). The scheme is the session's business (Ed25519 in real drivers, a cheap
//! stand-in in the simulator): this crate only carries 32-byte keys and 64-byte signatures.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::{Command, Error, OpId};

/// A peer's public key (32 bytes; an Ed25519 verifying key in real drivers).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

/// A signature by an operation's origin over [`signed_bytes`] (64 bytes; Ed25519 in real
/// drivers).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// All zeros: no valid signature under any key a session uses (what a forger without the
    /// key can at best send; tests use it for "unsigned").
    pub const NONE: Signature = Signature([0; 64]);
}

impl Default for Signature {
    fn default() -> Self {
        Signature::NONE
    }
}

fn short_hex(f: &mut fmt::Formatter<'_>, name: &str, bytes: &[u8]) -> fmt::Result {
    write!(f, "{name}(")?;
    for b in &bytes[..4] {
        write!(f, "{b:02x}")?;
    }
    write!(f, "..)")
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        short_hex(f, "PublicKey", &self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        short_hex(f, "Signature", &self.0)
    }
}

/// Both travel as MessagePack/JSON byte strings of their exact length.
macro_rules! fixed_bytes_serde {
    ($ty:ident, $n:expr) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "{} bytes", $n)
                    }
                    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<$ty, E> {
                        let a: [u8; $n] = v
                            .try_into()
                            .map_err(|_| E::invalid_length(v.len(), &self))?;
                        Ok($ty(a))
                    }
                    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<$ty, A::Error> {
                        let mut a = [0u8; $n];
                        for (i, b) in a.iter_mut().enumerate() {
                            *b = seq
                                .next_element()?
                                .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                        }
                        if seq.next_element::<u8>()?.is_some() {
                            return Err(de::Error::invalid_length($n + 1, &self));
                        }
                        Ok($ty(a))
                    }
                }
                d.deserialize_bytes(V)
            }
        }
    };
}

fixed_bytes_serde!(PublicKey, 32);
fixed_bytes_serde!(Signature, 64);

/// What a sequenced operation's signature covers: a domain label, the operation's id, its
/// Lamport time and its command, in the MessagePack forms a batch uses. The sequence number
/// and epoch are left out on purpose: a host that sequences the operation again (after a
/// partition) gives it a new place, and the origin's signature must still hold.
pub fn signed_bytes(op: OpId, ts: u64, command: &Command) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(SIGNED_LABEL);
    crate::msgpack::signed_body(&mut out, op, ts, command)?;
    Ok(out)
}

/// Binds the signature to Bassline operations (a key's signature over anything else never
/// passes for one).
const SIGNED_LABEL: &[u8] = b"bassline op v1\0";

/// A member's signed word that it follows the announcing host in epoch `number` of that host:
/// the evidence a host shows when it claims followers ([`crate::Message::HostAnnounce`]), so
/// no member can claim a room nobody followed it in. `number` may be below the announced
/// epoch's (a host that moved to a newer epoch keeps its standing). `key` is the signer's
/// public key as the host registered it (a receiver that knows the signer's key checks against
/// its own; one that does not, only for a peer it has met).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vouch {
    pub by: crate::PeerId,
    pub number: u64,
    pub key: PublicKey,
    pub sig: Signature,
}

/// What a [`Vouch`] signs: a domain label, the follower, and the epoch it follows.
pub fn vouch_bytes(by: crate::PeerId, epoch: crate::Epoch) -> Vec<u8> {
    let mut out = Vec::with_capacity(VOUCH_LABEL.len() + 24);
    out.extend_from_slice(VOUCH_LABEL);
    for n in [by, epoch.number, epoch.host] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out
}

/// Keeps a vouch from passing for an operation's signature and the other way round.
const VOUCH_LABEL: &[u8] = b"bassline follows v1\0";
