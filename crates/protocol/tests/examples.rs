//! The examples in `docs/PROTOCOL.md` are the ones this test decodes: every ```json block in
//! the peer-to-peer section followed by a ```hex block must be the same envelope, the hex must be
//! exactly what the default codec writes, and both must decode.
//!
//! The remote-mode section's examples are decoded the same way: its welcome, and each ```json
//! envelope followed by the ```hex binary WebSocket message carrying it (channel tag first).
//!
//! After a deliberate format change the test fails and prints the examples as they now belong
//! in the doc.

use bassline_core::{
    BlendMode, ContactDocument, GroupDocument, Point, Request, StateDocument, StateHash, Value,
    WireDocument, WireKind, id,
};
use bassline_protocol::{
    Codec, Command, Decision, Envelope, Epoch, Format, LogEntry, Message, OpId, Permission,
    Permissions, Permit, Position, Presence, PublicKey, Reassembler, Refusal, Refused, Sequenced,
    Signature, StateSync, Vouch, Writer,
    remote::{self, RELIABLE, UNRELIABLE, Welcome},
};

const DOC: &str = include_str!("../../../docs/PROTOCOL.md");
const SECTION: &str = "## Peer-to-peer (data channels)";
const REMOTE_SECTION: &str = "## Remote mode (WebSocket)";

/// Example key and signature bytes (real ones look random).
const KEY: PublicKey = PublicKey([0x3c; 32]);
const SIG: Signature = Signature([0x5a; 64]);

fn pos(seq: u64) -> Position {
    Position {
        epoch: Epoch { number: 1, host: 1 },
        seq,
    }
}

fn env(id: u64, ts: u64, from: u64, message: Message) -> Envelope {
    Envelope {
        id,
        ts,
        from,
        message,
    }
}

fn small_group() -> GroupDocument {
    GroupDocument {
        id: id!("g1"),
        name: Some("Sheet".into()),
        primitive: None,
        at: Some(Point { x: 40, y: -8 }),
        contacts: vec![
            ContactDocument {
                id: id!("c1"),
                name: None,
                blend: BlendMode::AcceptLast,
                value: Value::Number(42.0),
                contradiction: None,
                boundary: None,
                at: Some(Point { x: 120, y: 300 }),
            },
            ContactDocument {
                id: id!("c2"),
                name: Some("total".into()),
                blend: BlendMode::Merge,
                value: Value::grow_set([Value::from("a")]),
                contradiction: None,
                boundary: None,
                at: None,
            },
        ],
        wires: vec![WireDocument {
            id: id!("w1"),
            from: id!("c1"),
            to: id!("c2"),
            kind: WireKind::Directed,
        }],
        groups: Vec::new(),
    }
}

/// One example per message kind (two for submit: the compact and the named request form).
fn examples() -> Vec<(&'static str, Envelope)> {
    let hash = StateHash([0xab; 32]);
    vec![
        (
            "state-request",
            env(
                1,
                1,
                3,
                Message::StateRequest {
                    have: Some(pos(40)),
                    first: vec![id!("g7")],
                    key: Some(KEY),
                },
            ),
        ),
        (
            "state-sync",
            env(
                5,
                60,
                1,
                Message::StateSync(Box::new(StateSync {
                    position: pos(57),
                    partial: false,
                    applied: vec![(1, 30), (3, 12)],
                    writers: vec![Writer {
                        contact: id!("c1"),
                        op: OpId {
                            peer: 3,
                            counter: 12,
                        },
                        ts: 55,
                    }],
                    log: vec![LogEntry {
                        epoch: Epoch { number: 1, host: 1 },
                        op: Sequenced {
                            seq: 57,
                            op: OpId {
                                peer: 3,
                                counter: 12,
                            },
                            ts: 55,
                            command: Command::Request(Request::UpdateContent {
                                contact: id!("c1"),
                                value: Value::Number(42.0),
                            }),
                            sig: SIG,
                        },
                        decision: Decision::Applied,
                    }],
                    lineage: vec![(Epoch { number: 1, host: 1 }, 1)],
                    permissions: Permissions {
                        default: Permission::ReadWrite,
                        members: vec![(2, Permission::ReadOnly)],
                    },
                    keys: vec![(3, KEY)],
                    document: StateDocument::new(GroupDocument {
                        id: id!("root"),
                        name: None,
                        primitive: None,
                        at: None,
                        contacts: Vec::new(),
                        wires: Vec::new(),
                        groups: vec![small_group()],
                    }),
                })),
            ),
        ),
        ("ack", env(2, 61, 3, Message::Ack { position: pos(57) })),
        (
            "submit",
            env(
                3,
                62,
                3,
                Message::Submit {
                    op: 13,
                    ts: 62,
                    request: Request::UpdateContent {
                        contact: id!("c12"),
                        value: Value::Number(42.0),
                    },
                    sig: SIG,
                },
            ),
        ),
        (
            "submit (any other request)",
            env(
                4,
                63,
                3,
                Message::Submit {
                    op: 14,
                    ts: 63,
                    request: Request::AddContact {
                        id: Some(id!("c3-14")),
                        group: id!("g1"),
                        name: Some("x".into()),
                        blend: BlendMode::AcceptLast,
                        value: Value::Null,
                        boundary: None,
                    },
                    sig: SIG,
                },
            ),
        ),
        (
            "batch",
            env(
                7,
                64,
                1,
                Message::Batch {
                    epoch: Epoch { number: 1, host: 1 },
                    base: pos(57),
                    ops: vec![Sequenced {
                        seq: 58,
                        op: OpId {
                            peer: 3,
                            counter: 13,
                        },
                        ts: 62,
                        command: Command::Request(Request::UpdateContent {
                            contact: id!("c12"),
                            value: Value::Number(42.0),
                        }),
                        sig: SIG,
                    }],
                    keys: vec![(3, KEY)],
                },
            ),
        ),
        (
            "batch (a permit)",
            env(
                16,
                64,
                1,
                Message::Batch {
                    epoch: Epoch { number: 1, host: 1 },
                    base: pos(58),
                    ops: vec![Sequenced {
                        seq: 59,
                        op: OpId {
                            peer: 1,
                            counter: 31,
                        },
                        ts: 63,
                        command: Command::Permit(Permit {
                            peer: Some(2),
                            permission: Permission::ReadOnly,
                        }),
                        sig: SIG,
                    }],
                    keys: Vec::new(),
                },
            ),
        ),
        (
            "heartbeat",
            env(
                8,
                65,
                2,
                Message::Heartbeat {
                    position: pos(58),
                    hash,
                    host: Some(1),
                    epoch: Epoch { number: 1, host: 1 },
                    vouch: Some(SIG),
                },
            ),
        ),
        (
            "hash-mismatch",
            env(
                9,
                66,
                3,
                Message::HashMismatch {
                    position: pos(58),
                    groups: vec![(id!("g1"), hash)],
                },
            ),
        ),
        (
            "repair",
            env(
                10,
                67,
                1,
                Message::Repair {
                    position: pos(58),
                    groups: vec![(id!("g1"), small_group())],
                    remove: vec![id!("g9")],
                    writers: Vec::new(),
                    permissions: Permissions::default(),
                    keys: vec![(3, KEY)],
                },
            ),
        ),
        (
            "candidate",
            env(
                11,
                70,
                3,
                Message::Candidate {
                    epoch: Epoch { number: 2, host: 3 },
                },
            ),
        ),
        (
            "host-announce",
            env(
                12,
                71,
                3,
                Message::HostAnnounce {
                    epoch: Epoch { number: 2, host: 3 },
                    led: Some(Vouch {
                        by: 2,
                        number: 2,
                        key: KEY,
                        sig: SIG,
                    }),
                },
            ),
        ),
        (
            "refused",
            env(
                17,
                66,
                1,
                Message::Refused {
                    request: Refused::Submit { op: 15 },
                    reason: Refusal::RateLimited { retry_ms: 250 },
                },
            ),
        ),
        ("host-query", env(13, 68, 2, Message::HostQuery { host: 1 })),
        (
            "host-seen",
            env(
                14,
                69,
                3,
                Message::HostSeen {
                    host: 1,
                    alive: false,
                },
            ),
        ),
        (
            "presence",
            env(
                15,
                72,
                2,
                Message::Presence(Presence {
                    name: Some("Ada".into()),
                    group: Some(id!("g1")),
                    cursor: Some((120.5, 80.0)),
                    selection: vec![id!("c1")],
                    peer: None,
                }),
            ),
        ),
        (
            "presence",
            env(
                16,
                73,
                1,
                Message::Presence(Presence {
                    name: Some("Ada".into()),
                    group: Some(id!("g1")),
                    cursor: Some((120.5, 80.0)),
                    selection: vec![id!("c1")],
                    peer: Some(2),
                }),
            ),
        ),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|line| {
            line.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn unhex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

fn frame(codec: &Codec, env: &Envelope) -> Vec<u8> {
    let mut frames = codec.encode(env).expect("encodes");
    assert_eq!(frames.len(), 1, "examples fit in one frame");
    frames.pop().expect("one frame")
}

fn decode(frame: &[u8]) -> Envelope {
    Reassembler::new(Codec::default())
        .push(frame)
        .expect("decodes")
        .expect("whole")
}

/// The examples as they belong in docs/PROTOCOL.md, shown when the doc is out of date.
fn regenerated() -> String {
    examples()
        .into_iter()
        .map(|(name, env)| {
            let json = serde_json::to_string(&env).expect("envelopes serialize");
            format!(
                "#### {name}\n\n```json\n{json}\n```\n\n```hex\n{}\n```\n",
                hex(&frame(&Codec::default(), &env))
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The code blocks of a section: (language, body).
fn blocks(heading: &str) -> Vec<(String, String)> {
    let start = DOC
        .find(heading)
        .unwrap_or_else(|| panic!("docs/PROTOCOL.md has the section {heading}"));
    let rest = &DOC[start + heading.len()..];
    // The section ends at the next second-level heading.
    let section = rest.find("\n## ").map_or(rest, |end| &rest[..end]);
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if let Some(lang) = line.strip_prefix("```").filter(|l| !l.is_empty()) {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            blocks.push((lang.to_owned(), body.join("\n")));
        }
    }
    blocks
}

/// The (json, hex) code block pairs of a section.
fn documented(heading: &str) -> Vec<(String, String)> {
    let blocks = blocks(heading);
    let mut pairs = Vec::new();
    for w in blocks.windows(2) {
        if w[0].0 == "json" && w[1].0 == "hex" {
            pairs.push((w[0].1.clone(), w[1].1.clone()));
        }
    }
    pairs
}

#[test]
fn the_documented_examples_decode() {
    let pairs = documented(SECTION);
    assert_eq!(
        pairs.len(),
        examples().len(),
        "one json + hex pair per example; the examples now read:\n\n{}",
        regenerated()
    );
    let json_codec = Codec {
        format: Format::Json,
        ..Codec::default()
    };
    for ((json, hex_text), (name, expected)) in pairs.iter().zip(examples()) {
        let from_json = serde_json::from_str::<Envelope>(json).ok();
        let bytes = unhex(hex_text);
        let current =
            from_json.as_ref() == Some(&expected) && bytes == frame(&Codec::default(), &expected);
        assert!(
            current,
            "{name}: the documented example is not what the code writes; the examples now \
             read:\n\n{}",
            regenerated()
        );
        assert_eq!(decode(&bytes), expected, "{name}: hex example decodes");
        let from_json = from_json.expect("checked above");
        assert_eq!(decode(&frame(&json_codec, &from_json)), expected, "{name}");
    }
}

/// The remote-mode examples: a client's first request, one of its edits, and the server's
/// heartbeat on the unreliable channel.
fn remote_examples() -> Vec<(&'static str, u8, Envelope)> {
    vec![
        (
            "state-request (client to server, reliable)",
            RELIABLE,
            env(
                1,
                0,
                5,
                Message::StateRequest {
                    have: None,
                    first: Vec::new(),
                    key: Some(KEY),
                },
            ),
        ),
        (
            "submit (client to server, reliable)",
            RELIABLE,
            env(
                2,
                3,
                5,
                Message::Submit {
                    op: 1,
                    ts: 3,
                    request: Request::UpdateContent {
                        contact: id!("c1"),
                        value: Value::Number(42.0),
                    },
                    sig: SIG,
                },
            ),
        ),
        (
            "heartbeat (server to client, unreliable)",
            UNRELIABLE,
            env(
                9,
                4,
                1,
                Message::Heartbeat {
                    position: Position {
                        epoch: Epoch { number: 3, host: 1 },
                        seq: 12,
                    },
                    hash: StateHash([0xab; 32]),
                    host: Some(1),
                    epoch: Epoch { number: 3, host: 1 },
                    vouch: None,
                },
            ),
        ),
    ]
}

fn remote_regenerated() -> String {
    remote_examples()
        .into_iter()
        .map(|(name, channel, env)| {
            let json = serde_json::to_string(&env).expect("envelopes serialize");
            let message = remote::tag(channel, &frame(&Codec::default(), &env));
            format!(
                "{name}:\n\n```json\n{json}\n```\n\n```hex\n{}\n```\n",
                hex(&message)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_documented_remote_mode_examples_decode() {
    let welcome = blocks(REMOTE_SECTION)
        .into_iter()
        .find(|(_, body)| body.starts_with(r#"{"type":"welcome""#))
        .expect("the remote-mode section shows the welcome")
        .1;
    let w: Welcome = serde_json::from_str(&welcome).expect("the welcome decodes");
    assert_eq!((w.peer, w.host, w.resumed), (5, 1, false));
    assert_eq!(
        serde_json::to_string(&w).expect("encodes"),
        welcome,
        "round trip"
    );
    let pairs = documented(REMOTE_SECTION);
    assert_eq!(
        pairs.len(),
        remote_examples().len(),
        "one json + hex pair per example; they now read:\n\n{}",
        remote_regenerated()
    );
    for ((json, hex_text), (name, channel, expected)) in pairs.iter().zip(remote_examples()) {
        let message = unhex(hex_text);
        let (tag, frame_bytes) = remote::untag(&message).expect("a known channel tag");
        let current = serde_json::from_str::<Envelope>(json).ok().as_ref() == Some(&expected)
            && tag == channel
            && frame_bytes == frame(&Codec::default(), &expected);
        assert!(
            current,
            "{name}: the documented example is not what the code writes; they now read:\n\n{}",
            remote_regenerated()
        );
        assert_eq!(decode(frame_bytes), expected, "{name}: the frame decodes");
    }
}
