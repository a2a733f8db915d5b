//! Ids for new items, chosen by the editor before the edit is sent.
//!
//! Every peer must create the same item from a sequenced request, so the id travels in the
//! request; and an undo/redo must bring back the very same item. In collaboration the prefix is
//! the peer's own, so two peers never pick the same id.
//!
//! ```
//! use bassline_web::ids::IdGen;
//! let net = bassline_core::Network::new();
//! let mut ids = IdGen::new("");
//! assert_eq!(ids.fresh(&net, 'c').as_str(), "c1");
//! assert_eq!(ids.fresh(&net, 'c').as_str(), "c2");
//! ```

use std::collections::BTreeMap;

use bassline_core::{Id, Network};

/// Hands out ids `<prefix><kind><n>` that no group, contact or wire of the network uses; each
/// kind counts on its own, so the first contact is `c1` whatever came before it.
#[derive(Clone, Debug)]
pub struct IdGen {
    prefix: String,
    next: BTreeMap<char, u64>,
}

impl IdGen {
    /// `prefix` is empty in local mode and the peer's short id (say `k3f-`) when collaborating.
    pub fn new(prefix: &str) -> Self {
        IdGen {
            prefix: prefix.to_owned(),
            next: BTreeMap::new(),
        }
    }

    /// A new id for a contact (`'c'`), group (`'g'`) or wire (`'w'`).
    pub fn fresh(&mut self, net: &Network, kind: char) -> Id {
        loop {
            let next = self.next.entry(kind).or_insert(1);
            let n = *next;
            *next += 1;
            let text = format!("{}{kind}{n}", self.prefix);
            let Ok(id) = Id::new(&text) else {
                // Only an absurdly long prefix gets here; fall back to the bare form.
                self.prefix.clear();
                continue;
            };
            if !taken(net, &id) {
                return id;
            }
        }
    }
}

/// Whether any item of the network already has this id.
pub fn taken(net: &Network, id: &Id) -> bool {
    net.contact(id).is_some() || net.group(id).is_some() || net.wire(id).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bassline_core::id;

    #[test]
    fn skips_ids_in_use_whatever_their_kind() {
        let mut net = Network::new();
        net.apply(crate::testing::group("root", "c1", None))
            .expect("valid");
        let mut ids = IdGen::new("");
        assert_eq!(ids.fresh(&net, 'c'), id!("c2"));
        let mut peer = IdGen::new("k3f-");
        assert_eq!(peer.fresh(&net, 'w'), id!("k3f-w1"));
    }
}
