//! Generated, realistic data for benchmarks: the same networks feed this
//! crate's criterion benches and the automerge comparison in `benches-automerge/`.

use bassline_core::{
    BlendMode, ContactDocument, GroupDocument, Id, Request, StateDocument, Value, WireDocument,
    WireKind,
};

use crate::{Envelope, Epoch, Message, OpId, Position, Sequenced, StateSync, Writer};

/// Contacts per generated group, roughly what fits on one editor screen.
pub const CONTACTS_PER_GROUP: usize = 100;

/// A small deterministic generator (xorshift64*), so every run sees the same data.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn id(s: String) -> Id {
    Id::new(&s).expect("generated ids are short and printable")
}

/// A network of `contacts` contacts and `wires` wires: groups of [`CONTACTS_PER_GROUP`]
/// contacts under the root, wires inside each group. Values are mostly small integers, some
/// decimals, short strings and empty contacts; some contacts are named, merge, or boundary.
pub fn network(contacts: usize, wires: usize) -> StateDocument {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let groups = contacts.div_ceil(CONTACTS_PER_GROUP).max(1);
    let mut root = GroupDocument {
        id: id("root".into()),
        name: Some("Main".into()),
        primitive: None,
        at: None,
        contacts: Vec::new(),
        wires: Vec::new(),
        groups: Vec::with_capacity(groups),
    };
    for g in 0..groups {
        let first = g * CONTACTS_PER_GROUP;
        let n = CONTACTS_PER_GROUP.min(contacts - first.min(contacts));
        let contacts = (0..n)
            .map(|i| {
                let value = match rng.below(10) {
                    0..=5 => Value::Number(rng.below(10_000) as f64),
                    6 | 7 => Value::Number(rng.below(1_000_000) as f64 / 100.0 + 0.001),
                    8 => Value::String(format!("item {}", rng.below(1000))),
                    _ => Value::Null,
                };
                ContactDocument {
                    id: id(format!("g{g}/c{i}")),
                    name: (rng.below(3) == 0).then(|| format!("input {i}")),
                    blend: if rng.below(10) == 0 {
                        BlendMode::Merge
                    } else {
                        BlendMode::AcceptLast
                    },
                    value,
                    contradiction: None,
                    boundary: None,
                    // Unplaced, so the figures stay comparable with those measured before
                    // layout existed (a position adds 3 to 7 bytes per item).
                    at: None,
                }
            })
            .collect();
        let per_group = wires / groups + usize::from(g < wires % groups);
        let wires = (0..per_group)
            .map(|i| WireDocument {
                id: id(format!("g{g}/w{i}")),
                from: id(format!("g{g}/c{}", rng.below(n.max(1) as u64))),
                to: id(format!("g{g}/c{}", rng.below(n.max(1) as u64))),
                kind: if rng.below(5) == 0 {
                    WireKind::Directed
                } else {
                    WireKind::Bidirectional
                },
            })
            .collect();
        root.groups.push(GroupDocument {
            id: id(format!("g{g}")),
            name: Some(format!("Sheet {g}")),
            primitive: None,
            at: None,
            contacts,
            wires,
            groups: Vec::new(),
        });
    }
    StateDocument::new(root)
}

/// A host's full-state message for a network of that size, with a writer for one contact in
/// ten (the contacts edited so far in the session).
pub fn state_sync(contacts: usize, wires: usize) -> Envelope {
    let document = network(contacts, wires);
    let mut writers = Vec::new();
    for g in &document.root.groups {
        for (i, c) in g.contacts.iter().enumerate().step_by(10) {
            let i = i as u64;
            writers.push(Writer {
                contact: c.id.clone(),
                op: OpId {
                    peer: 1 + i % 4,
                    counter: 1 + i * 3,
                },
                ts: 10 + i * 4,
            });
        }
    }
    let epoch = Epoch { number: 2, host: 1 };
    Envelope {
        id: 7,
        ts: 48_213,
        from: 1,
        message: Message::StateSync(Box::new(StateSync {
            position: Position { epoch, seq: 48_200 },
            partial: false,
            applied: vec![(1, 20_311), (2, 14_007), (3, 9_120), (4, 4_762)],
            writers,
            log: Vec::new(),
            lineage: vec![(epoch, 1)],
            permissions: Default::default(),
            keys: (1..=4)
                .map(|p| (p, crate::PublicKey(noise(p, 32))))
                .collect(),
            document,
        })),
    }
}

/// The hot path: a guest submits one content update (ids and counters typical of a session
/// a few hundred edits old).
pub fn submit_update() -> Envelope {
    Envelope {
        id: 412,
        ts: 977,
        from: 3,
        message: Message::Submit {
            op: 405,
            ts: 977,
            request: Request::UpdateContent {
                contact: id("c12".into()),
                value: Value::Number(42.0),
            },
            sig: signature(405),
        },
    }
}

/// `n` bytes that look random (a signature or a key compresses like noise).
fn noise<const N: usize>(seed: u64, _n: usize) -> [u8; N] {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    std::array::from_fn(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    })
}

fn signature(seed: u64) -> crate::Signature {
    crate::Signature(noise(seed, 64))
}

/// The host's broadcast of that update.
pub fn batch_update() -> Envelope {
    Envelope {
        id: 880,
        ts: 978,
        from: 1,
        message: Message::Batch {
            epoch: Epoch { number: 1, host: 1 },
            base: Position {
                epoch: Epoch { number: 1, host: 1 },
                seq: 960,
            },
            ops: vec![Sequenced {
                seq: 961,
                op: OpId {
                    peer: 3,
                    counter: 405,
                },
                ts: 977,
                command: Request::UpdateContent {
                    contact: id("c12".into()),
                    value: Value::Number(42.0),
                }
                .into(),
                sig: signature(405),
            }],
            keys: Vec::new(),
        },
    }
}

/// A batch of `n` sequenced content updates, for finding the size where compression starts to
/// pay.
pub fn batch_of(n: usize) -> Envelope {
    let mut env = batch_update();
    if let Message::Batch { ops, .. } = &mut env.message {
        let one = ops[0].clone();
        *ops = (0..n as u64)
            .map(|i| Sequenced {
                seq: one.seq + i,
                op: OpId {
                    peer: 2 + i % 3,
                    counter: 400 + i,
                },
                ts: one.ts + i,
                command: Request::UpdateContent {
                    contact: id(format!("g{}/c{}", i % 7, (i * 37) % 100)),
                    value: Value::Number((i * 7919 % 10_000) as f64),
                }
                .into(),
                sig: signature(400 + i),
            })
            .collect();
    }
    env
}
