//! Canonical state hashes: equal states hash equal, whatever order they were built in.
//!
//! A group's hash covers its own fields, its contacts and wires (in id order) and its
//! subgroups' hashes, so the root's hash is the state hash and two replicas whose hashes differ
//! can find the differing groups by comparing hashes downwards.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{
    BlendMode, Direction, Id, Network, WireKind,
    layout::put_point,
    value::{put_len, put_str},
};

/// A BLAKE3 hash of a network or of one group.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateHash(pub [u8; 32]);

impl fmt::Display for StateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for StateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateHash({self})")
    }
}

impl Serialize for StateHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for StateHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let bytes: Vec<u8> = if d.is_human_readable() {
            let s = String::deserialize(d)?;
            if s.len() != 64 {
                return Err(D::Error::custom("a state hash is 64 hex digits"));
            }
            (0..32)
                .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16))
                .collect::<Result<_, _>>()
                .map_err(|_| D::Error::custom("a state hash is 64 hex digits"))?
        } else {
            serde_bytes_vec(d)?
        };
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| D::Error::custom("a state hash is 32 bytes"))?;
        Ok(StateHash(arr))
    }
}

fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("32 bytes")
        }
        fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(32);
            while let Some(b) = seq.next_element::<u8>()? {
                if out.len() == 32 {
                    return Err(serde::de::Error::custom("a state hash is 32 bytes"));
                }
                out.push(b);
            }
            Ok(out)
        }
    }
    d.deserialize_bytes(V)
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

impl Network {
    /// The hash of the whole network.
    pub fn state_hash(&self) -> StateHash {
        self.group_hash(self.root())
            .expect("the root group always exists")
    }

    /// The hash of one group and everything inside it.
    pub fn group_hash(&self, id: &Id) -> Option<StateHash> {
        let mut memo = BTreeMap::new();
        self.groups
            .contains_key(id)
            .then(|| self.hash_group(id, &mut memo))
    }

    /// Every group's shallow hash: its own fields, contacts and wires and its subgroups' ids,
    /// but not their contents. Two replicas whose shallow hashes of a group differ disagree about
    /// that group itself, which is what a repair has to resend.
    pub fn shallow_hashes(&self) -> BTreeMap<Id, StateHash> {
        let mut memo = BTreeMap::new();
        for id in self.groups.keys() {
            self.hash_group_with(id, &mut memo, false);
        }
        memo
    }

    /// Every group's hash, in one pass.
    pub fn group_hashes(&self) -> BTreeMap<Id, StateHash> {
        let mut memo = BTreeMap::new();
        self.hash_group(self.root(), &mut memo);
        memo
    }

    fn hash_group(&self, id: &Id, memo: &mut BTreeMap<Id, StateHash>) -> StateHash {
        self.hash_group_with(id, memo, true)
    }

    fn hash_group_with(
        &self,
        id: &Id,
        memo: &mut BTreeMap<Id, StateHash>,
        deep: bool,
    ) -> StateHash {
        let g = &self.groups[id];
        let mut buf = Vec::with_capacity(256);
        buf.push(b'G');
        put_str(&mut buf, id.as_str());
        put_opt_str(&mut buf, g.info.name.as_deref());
        put_opt_str(&mut buf, g.info.primitive.map(|p| p.name()));
        put_point(&mut buf, g.info.at);
        if !deep {
            // A moved group must show up as different even though its contents are the same.
            put_opt_str(&mut buf, g.info.parent.as_ref().map(Id::as_str));
        }
        let mut h = blake3::Hasher::new();
        put_len(&mut buf, g.contacts.len());
        for c in &g.contacts {
            let c = &self.contacts[c];
            buf.push(b'C');
            put_str(&mut buf, c.id.as_str());
            put_opt_str(&mut buf, c.name.as_deref());
            buf.push(match c.blend {
                BlendMode::AcceptLast => 0,
                BlendMode::Merge => 1,
            });
            buf.push(match c.boundary {
                None => 0,
                Some(Direction::Input) => 1,
                Some(Direction::Output) => 2,
            });
            put_point(&mut buf, c.at);
            c.value.canonical_bytes(&mut buf);
            match &c.contradiction {
                None => buf.push(0),
                Some(k) => {
                    buf.push(1);
                    k.existing.canonical_bytes(&mut buf);
                    k.incoming.canonical_bytes(&mut buf);
                    put_str(&mut buf, &k.reason);
                }
            }
            if buf.len() > 16 * 1024 {
                h.update(&buf);
                buf.clear();
            }
        }
        put_len(&mut buf, g.wires.len());
        for w in &g.wires {
            let w = &self.wires[w];
            buf.push(b'W');
            put_str(&mut buf, w.id.as_str());
            put_str(&mut buf, w.from.as_str());
            put_str(&mut buf, w.to.as_str());
            buf.push(match w.kind {
                WireKind::Bidirectional => 0,
                WireKind::Directed => 1,
            });
            if buf.len() > 16 * 1024 {
                h.update(&buf);
                buf.clear();
            }
        }
        put_len(&mut buf, g.groups.len());
        for s in &g.groups {
            put_str(&mut buf, s.as_str());
            if deep {
                let sub = self.hash_group_with(s, memo, true);
                buf.extend_from_slice(&sub.0);
            }
        }
        h.update(&buf);
        let hash = StateHash(*h.finalize().as_bytes());
        memo.insert(id.clone(), hash);
        hash
    }
}
