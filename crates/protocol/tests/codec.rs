//! Codec round trips, frame lengths, and every decoder error.

use bassline_core::{
    BlendMode, ContactDocument, Contradiction, Direction, GroupDocument, Id, Placement, Point,
    Primitive, Request, StateDocument, StateHash, Value, WireDocument, WireKind,
};
use bassline_protocol::{
    Codec, Command, Decision, Envelope, Epoch, Error, Format, LogEntry, MAX_FRAME, Message, OpId,
    Permission, Permissions, Permit, Position, Presence, Reassembler, Refusal, Refused, Sequenced,
    StateSync, VERSION, Writer, bench_data,
};
use proptest::prelude::*;

fn decode_all(codec: &Codec, frames: &[Vec<u8>]) -> Result<Vec<Envelope>, Error> {
    let mut rx = Reassembler::new(codec.clone());
    let mut out = Vec::new();
    for f in frames {
        if let Some(env) = rx.push(f)? {
            out.push(env);
        }
    }
    assert_eq!(rx.buffered(), 0, "nothing left half-assembled");
    Ok(out)
}

fn round_trip(codec: &Codec, env: &Envelope) -> Vec<Vec<u8>> {
    let frames = codec.encode(env).expect("encodes");
    assert_eq!(decode_all(codec, &frames), Ok(vec![env.clone()]));
    frames
}

// ---- strategies -------------------------------------------------------------------------------

fn small_u64() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..200, any::<u64>()]
}

fn id() -> impl Strategy<Value = Id> {
    "[a-z][a-z0-9/-]{0,12}".prop_map(|s| Id::new(&s).unwrap())
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1000i32..1000).prop_map(|n| Value::Number(f64::from(n))),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
            .prop_map(Value::Number),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[$a-c]{1,3}", inner.clone(), 0..3).prop_map(Value::Map),
            prop::collection::btree_set(inner.clone(), 0..3).prop_map(Value::GrowSet),
            prop::collection::btree_set(inner.clone(), 0..3).prop_map(Value::ShrinkSet),
            prop::collection::btree_map("[a-c]", inner.clone(), 0..3).prop_map(Value::GrowMap),
            prop::collection::btree_map("[a-c]", inner.clone(), 0..3).prop_map(Value::ShrinkMap),
            prop::collection::vec(inner, 0..3).prop_map(Value::GrowArray),
        ]
    })
}

fn epoch() -> impl Strategy<Value = Epoch> {
    (small_u64(), small_u64()).prop_map(|(number, host)| Epoch { number, host })
}

fn position() -> impl Strategy<Value = Position> {
    (epoch(), small_u64()).prop_map(|(epoch, seq)| Position { epoch, seq })
}

fn hash() -> impl Strategy<Value = StateHash> {
    any::<[u8; 32]>().prop_map(StateHash)
}

fn contact() -> impl Strategy<Value = ContactDocument> {
    (
        id(),
        prop::option::of(".{0,6}"),
        any::<bool>(),
        value(),
        prop::option::of((value(), value(), ".{0,6}")),
        prop::option::of(any::<bool>()),
        point(),
    )
        .prop_map(
            |(id, name, merge, value, contradiction, boundary, at)| ContactDocument {
                id,
                name,
                blend: if merge {
                    BlendMode::Merge
                } else {
                    BlendMode::AcceptLast
                },
                value,
                contradiction: contradiction.map(|(existing, incoming, reason)| Contradiction {
                    existing,
                    incoming,
                    reason,
                }),
                boundary: boundary.map(|i| {
                    if i {
                        Direction::Input
                    } else {
                        Direction::Output
                    }
                }),
                at,
            },
        )
}

/// Layout positions, including the extremes of both coordinates.
fn point() -> impl Strategy<Value = Option<Point>> {
    let coordinate = prop_oneof![
        4 => -2000i32..2000,
        1 => Just(i32::MIN),
        1 => Just(i32::MAX),
    ];
    prop::option::of((coordinate.clone(), coordinate).prop_map(|(x, y)| Point { x, y }))
}

fn placement() -> impl Strategy<Value = Placement> {
    (id(), point()).prop_map(|(id, at)| Placement { id, at })
}

fn wire() -> impl Strategy<Value = WireDocument> {
    (id(), id(), id(), any::<bool>()).prop_map(|(id, from, to, directed)| WireDocument {
        id,
        from,
        to,
        kind: if directed {
            WireKind::Directed
        } else {
            WireKind::Bidirectional
        },
    })
}

fn primitive() -> impl Strategy<Value = Primitive> {
    prop_oneof![
        Just(Primitive::Add),
        Just(Primitive::Gate),
        Just(Primitive::Concat)
    ]
}

fn blend() -> impl Strategy<Value = BlendMode> {
    prop_oneof![Just(BlendMode::AcceptLast), Just(BlendMode::Merge)]
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::Input), Just(Direction::Output)]
}

fn wire_kind() -> impl Strategy<Value = WireKind> {
    prop_oneof![Just(WireKind::Directed), Just(WireKind::Bidirectional)]
}

fn group() -> impl Strategy<Value = GroupDocument> {
    let leaf = (
        id(),
        prop::option::of(".{0,6}"),
        prop::option::of(primitive()),
        prop::collection::vec(contact(), 0..3),
        prop::collection::vec(wire(), 0..3),
        point(),
    )
        .prop_map(|(id, name, primitive, contacts, wires, at)| GroupDocument {
            id,
            name,
            primitive,
            at,
            contacts,
            wires,
            groups: Vec::new(),
        });
    leaf.prop_recursive(2, 6, 3, |inner| {
        (inner.clone(), prop::collection::vec(inner, 0..3)).prop_map(|(mut g, groups)| {
            g.groups = groups;
            g
        })
    })
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        3 => (id(), value()).prop_map(|(contact, value)| Request::UpdateContent { contact, value }),
        1 => (
            prop::option::of(id()),
            id(),
            prop::option::of(".{0,6}"),
            blend(),
            value(),
            prop::option::of(direction()),
        )
            .prop_map(|(id, group, name, blend, value, boundary)| Request::AddContact {
                id,
                group,
                name,
                blend,
                value,
                boundary,
            }),
        1 => (prop::option::of(id()), id(), id(), wire_kind())
            .prop_map(|(id, from, to, kind)| Request::Connect { id, from, to, kind }),
        1 => id().prop_map(|id| Request::RemoveGroup { id }),
        1 => Just(Request::ExportState),
        1 => (id(), group()).prop_map(|(parent, group)| Request::RegisterGroup { parent, group }),
        1 => (id(), prop::option::of(".{0,4}"), prop::option::of(id()))
            .prop_map(|(id, name, parent)| Request::UpdateGroup { id, name, parent }),
        1 => (prop::option::of(id()), id(), prop::option::of(".{0,4}"), prop::option::of(primitive()))
            .prop_map(|(id, parent, name, primitive)| Request::AddGroup { id, parent, name, primitive }),
        1 => (id(), prop::option::of(".{0,4}"), prop::option::of(blend()))
            .prop_map(|(id, name, blend)| Request::UpdateContact { id, name, blend }),
        1 => id().prop_map(|id| Request::RemoveContact { id }),
        1 => id().prop_map(|id| Request::Disconnect { id }),
        1 => (prop::collection::vec(placement(), 0..3), prop::collection::vec(placement(), 0..3))
            .prop_map(|(contacts, groups)| Request::Place { contacts, groups }),
        1 => id().prop_map(|group| Request::GetGroupState { group }),
        1 => id().prop_map(|id| Request::GetContact { id }),
        1 => id().prop_map(|id| Request::GetWire { id }),
        1 => group().prop_map(|root| Request::ImportState { document: StateDocument::new(root) }),
    ]
}

fn op_id() -> impl Strategy<Value = OpId> {
    (small_u64(), small_u64()).prop_map(|(peer, counter)| OpId { peer, counter })
}

fn permission() -> impl Strategy<Value = Permission> {
    prop_oneof![
        Just(Permission::ReadWrite),
        Just(Permission::ReadOnly),
        Just(Permission::Removed),
    ]
}

fn permit() -> impl Strategy<Value = Permit> {
    (prop::option::of(small_u64()), permission())
        .prop_map(|(peer, permission)| Permit { peer, permission })
}

/// Well-formed tables only (a decoder refuses the others): built by applying permits.
fn permissions() -> impl Strategy<Value = Permissions> {
    prop::collection::vec(permit(), 0..5).prop_map(|permits| {
        let mut ps = Permissions::default();
        for p in permits {
            if p.peer.is_some() || p.permission != Permission::Removed {
                ps.apply(p);
            }
        }
        ps
    })
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        4 => request().prop_map(Command::Request),
        1 => permit().prop_map(Command::Permit),
    ]
}

fn signature() -> impl Strategy<Value = bassline_protocol::Signature> {
    prop::collection::vec(any::<u8>(), 64)
        .prop_map(|b| bassline_protocol::Signature(b.try_into().expect("64 bytes")))
}

fn public_key() -> impl Strategy<Value = bassline_protocol::PublicKey> {
    any::<[u8; 32]>().prop_map(bassline_protocol::PublicKey)
}

/// A key table: sorted by peer, each once.
fn keys() -> impl Strategy<Value = Vec<(u64, bassline_protocol::PublicKey)>> {
    prop::collection::btree_map(small_u64(), public_key(), 0..3)
        .prop_map(|m| m.into_iter().collect())
}

fn sequenced() -> impl Strategy<Value = Sequenced> {
    (small_u64(), op_id(), small_u64(), command(), signature()).prop_map(
        |(seq, op, ts, command, sig)| Sequenced {
            seq,
            op,
            ts,
            command,
            sig,
        },
    )
}

fn decision() -> impl Strategy<Value = Decision> {
    prop_oneof![
        Just(Decision::Applied),
        op_id().prop_map(|by| Decision::Superseded { by }),
        ".{0,10}".prop_map(|reason| Decision::Refused { reason }),
        permission().prop_map(|permission| Decision::Denied { permission }),
    ]
}

fn refused() -> impl Strategy<Value = Refused> {
    prop_oneof![
        small_u64().prop_map(|op| Refused::Submit { op }),
        Just(Refused::StateRequest),
        Just(Refused::HashMismatch),
        Just(Refused::Forwarded),
    ]
}

fn refusal() -> impl Strategy<Value = Refusal> {
    prop_oneof![
        small_u64().prop_map(|retry_ms| Refusal::RateLimited { retry_ms }),
        (small_u64(), small_u64()).prop_map(|(size, max)| Refusal::TooLarge { size, max }),
        Just(Refusal::Removed),
    ]
}

fn writer() -> impl Strategy<Value = Writer> {
    (id(), op_id(), small_u64()).prop_map(|(contact, op, ts)| Writer { contact, op, ts })
}

fn finite_f32() -> impl Strategy<Value = f32> {
    any::<f32>().prop_filter("NaN is not equal to itself", |f| !f.is_nan())
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            prop::option::of(position()),
            prop::collection::vec(id(), 0..3),
            prop::option::of(public_key()),
        )
            .prop_map(|(have, first, key)| Message::StateRequest { have, first, key }),
        (
            position(),
            prop::collection::vec((small_u64(), small_u64()), 0..4),
            prop::collection::vec(writer(), 0..4),
            prop::collection::vec((epoch(), sequenced(), decision()), 0..4),
            prop::collection::vec((epoch(), small_u64()), 0..3),
            group(),
            any::<bool>(),
            (permissions(), keys()),
        )
            .prop_map(
                |(position, applied, writers, log, lineage, root, partial, (permissions, keys))| {
                    Message::StateSync(Box::new(StateSync {
                        position,
                        partial,
                        applied,
                        writers,
                        log: log
                            .into_iter()
                            .map(|(epoch, op, decision)| LogEntry {
                                epoch,
                                op,
                                decision,
                            })
                            .collect(),
                        lineage,
                        permissions,
                        keys,
                        document: StateDocument::new(root),
                    }))
                }
            ),
        position().prop_map(|position| Message::Ack { position }),
        (small_u64(), small_u64(), request(), signature()).prop_map(|(op, ts, request, sig)| {
            Message::Submit {
                op,
                ts,
                request,
                sig,
            }
        }),
        (
            epoch(),
            position(),
            prop::collection::vec(sequenced(), 0..5),
            keys(),
        )
            .prop_map(|(epoch, base, ops, keys)| Message::Batch {
                epoch,
                base,
                ops,
                keys
            }),
        (
            position(),
            hash(),
            prop::option::of(small_u64()),
            epoch(),
            prop::option::of(signature())
        )
            .prop_map(|(position, hash, host, epoch, vouch)| Message::Heartbeat {
                position,
                hash,
                host,
                epoch,
                vouch,
            }),
        (position(), prop::collection::vec((id(), hash()), 0..4))
            .prop_map(|(position, groups)| Message::HashMismatch { position, groups }),
        (
            position(),
            prop::collection::vec((id(), group()), 0..3),
            prop::collection::vec(id(), 0..3),
            prop::collection::vec(writer(), 0..3),
            permissions(),
            keys(),
        )
            .prop_map(|(position, groups, remove, writers, permissions, keys)| {
                Message::Repair {
                    position,
                    groups,
                    remove,
                    writers,
                    permissions,
                    keys,
                }
            }),
        (refused(), refusal()).prop_map(|(request, reason)| Message::Refused { request, reason }),
        epoch().prop_map(|epoch| Message::Candidate { epoch }),
        (
            epoch(),
            prop::option::of((small_u64(), small_u64(), public_key(), signature()))
        )
            .prop_map(|(epoch, led)| Message::HostAnnounce {
                epoch,
                led: led.map(|(by, number, key, sig)| bassline_protocol::Vouch {
                    by,
                    number,
                    key,
                    sig
                }),
            }),
        small_u64().prop_map(|host| Message::HostQuery { host }),
        (small_u64(), any::<bool>()).prop_map(|(host, alive)| Message::HostSeen { host, alive }),
        (
            prop::option::of(".{0,8}"),
            prop::option::of(id()),
            prop::option::of((finite_f32(), finite_f32())),
            prop::collection::vec(id(), 0..4),
            prop::option::of(small_u64()),
        )
            .prop_map(|(name, group, cursor, selection, peer)| {
                Message::Presence(Presence {
                    name,
                    group,
                    cursor,
                    selection,
                    peer,
                })
            }),
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (small_u64(), small_u64(), small_u64(), message()).prop_map(|(id, ts, from, message)| {
        Envelope {
            id,
            ts,
            from,
            message,
        }
    })
}

fn codec() -> impl Strategy<Value = Codec> {
    (
        prop_oneof![Just(Format::MessagePack), Just(Format::Json)],
        prop_oneof![Just(usize::MAX), Just(0usize), Just(64usize)],
        prop_oneof![Just(MAX_FRAME), 15usize..200],
    )
        .prop_map(|(format, compress_above, max_frame)| Codec {
            format,
            compress_above,
            max_frame,
            ..Codec::default()
        })
}

proptest! {
    #![proptest_config(bassline_testkit::proptest_config(512))]

    #[test]
    fn every_message_round_trips(env in envelope(), codec in codec()) {
        let frames = codec.encode(&env).unwrap();
        for f in &frames {
            prop_assert!(f.len() <= codec.max_frame, "frame of {} > {}", f.len(), codec.max_frame);
            prop_assert_eq!(f[0], VERSION);
        }
        // A receiver decodes whatever format and compression the sender chose.
        prop_assert_eq!(decode_all(&Codec::default(), &frames), Ok(vec![env.clone()]));
    }

    #[test]
    fn messages_in_a_row_decode_in_order(
        envs in prop::collection::vec(envelope(), 1..4),
        codec in codec(),
    ) {
        let frames: Vec<Vec<u8>> =
            envs.iter().flat_map(|e| codec.encode(e).unwrap()).collect();
        prop_assert_eq!(decode_all(&codec, &frames), Ok(envs));
    }

    #[test]
    fn compressible_messages_are_compressed_and_round_trip(
        unit in "[a-c]{1,4}",
        repeat in 50usize..2000,
        codec in codec(),
    ) {
        let env = Envelope {
            id: 9,
            ts: 9,
            from: 2,
            message: Message::Submit {
                op: 1,
                ts: 9,
                request: Request::UpdateContent {
                    contact: Id::new("c1").unwrap(),
                    value: Value::String(unit.repeat(repeat)),
                },
                sig: bassline_protocol::Signature([9; 64]),
            },
        };
        let frames = codec.encode(&env).unwrap();
        let compressed = frames[0][1] & 0x02 != 0;
        if codec.compress_above == usize::MAX {
            prop_assert!(!compressed, "compression off");
        } else if codec.compress_above < unit.len() * repeat {
            prop_assert!(compressed, "a repetitive body above the threshold is compressed");
        }
        prop_assert!(frames.iter().all(|f| f.len() <= codec.max_frame));
        prop_assert_eq!(decode_all(&Codec::default(), &frames), Ok(vec![env]));
    }

    #[test]
    fn a_cut_or_extended_frame_is_an_error_not_a_panic(
        env in envelope(),
        cut in any::<prop::sample::Index>(),
        tail in prop::collection::vec(any::<u8>(), 1..4),
    ) {
        let codec = Codec { compress_above: usize::MAX, ..Codec::default() };
        let frame = &codec.encode(&env).unwrap()[0];
        let mut rx = Reassembler::new(codec.clone());
        let at = 2 + cut.index(frame.len() - 2);
        if at < frame.len() {
            prop_assert!(rx.push(&frame[..at]).is_err());
        }
        let mut long = frame.clone();
        long.extend_from_slice(&tail);
        prop_assert!(rx.push(&long).is_err());
        // And the reassembler still works afterwards.
        prop_assert_eq!(rx.push(frame), Ok(Some(env)));
    }
}

// ---- sizes ------------------------------------------------------------------------------------

/// What an operation's signature adds to its frame: a 64-byte MessagePack bin (2 header bytes).
const SIGNATURE: usize = 66;

#[test]
fn a_single_content_update_is_under_32_bytes_besides_its_signature() {
    let codec = Codec::default();
    for env in [bench_data::submit_update(), bench_data::batch_update()] {
        let frames = round_trip(&codec, &env);
        assert_eq!(frames.len(), 1);
        assert!(
            frames[0].len() < 32 + SIGNATURE,
            "{} takes {} bytes: {:02x?}",
            env.message.kind(),
            frames[0].len(),
            frames[0]
        );
    }
}

#[test]
fn hot_path_stays_small_with_larger_counters() {
    // Counters of a long session (up to 65 535) still fit in 32 bytes (and the signature).
    let mut env = bench_data::batch_update();
    env.id = 60_000;
    env.ts = 65_000;
    if let Message::Batch { ops, base, .. } = &mut env.message {
        base.seq = 63_999;
        ops[0].seq = 64_000;
        ops[0].ts = 64_998;
        ops[0].op.counter = 30_000;
    }
    let frames = round_trip(&Codec::default(), &env);
    assert!(
        frames[0].len() <= 32 + SIGNATURE,
        "{} bytes",
        frames[0].len()
    );
}

#[test]
fn a_large_state_is_compressed_and_chunked() {
    let env = bench_data::state_sync(2_000, 2_000);
    let plain = Codec {
        compress_above: usize::MAX,
        max_frame: usize::MAX,
        ..Codec::default()
    }
    .encode(&env)
    .unwrap();
    let codec = Codec::default();
    let frames = round_trip(&codec, &env);
    let total: usize = frames.iter().map(Vec::len).sum();
    assert!(
        total * 4 < plain[0].len() * 3,
        "compressed {total} vs {}",
        plain[0].len()
    );
    let small = Codec {
        max_frame: 1000,
        ..Codec::default()
    };
    let frames = round_trip(&small, &env);
    assert!(frames.len() > 10);
    assert!(frames.iter().all(|f| f.len() <= 1000));
}

// ---- decoder errors ---------------------------------------------------------------------------

fn one_frame(codec: &Codec, env: &Envelope) -> Vec<u8> {
    let mut frames = codec.encode(env).unwrap();
    assert_eq!(frames.len(), 1);
    frames.pop().unwrap()
}

fn sample() -> Envelope {
    bench_data::submit_update()
}

#[test]
fn empty_and_truncated_frames() {
    let mut rx = Reassembler::new(Codec::default());
    assert_eq!(rx.push(&[]), Err(Error::Truncated));
    assert_eq!(rx.push(&[VERSION]), Err(Error::Truncated));
    let frame = one_frame(&Codec::default(), &sample());
    for cut in 2..frame.len() {
        assert!(rx.push(&frame[..cut]).is_err(), "cut at {cut}");
    }
    // A chunk shorter than its header.
    assert_eq!(rx.push(&[VERSION, 0x10, 0, 0, 0]), Err(Error::Truncated));
}

#[test]
fn bad_version_and_unknown_kind() {
    let mut rx = Reassembler::new(Codec::default());
    let mut frame = one_frame(&Codec::default(), &sample());
    frame[0] = VERSION + 1;
    assert_eq!(
        rx.push(&frame),
        Err(Error::UnsupportedVersion {
            found: VERSION + 1,
            supported: VERSION
        })
    );
    frame[0] = VERSION;
    frame[1] = 0x80;
    assert_eq!(rx.push(&frame), Err(Error::UnknownKind(0x80)));
}

#[test]
fn unknown_message_kind_and_trailing_bytes() {
    let mut rx = Reassembler::new(Codec::default());
    // id 1, ts 1, from 1, kind 99.
    assert!(matches!(
        rx.push(&[VERSION, 0, 1, 1, 1, 99]),
        Err(Error::Malformed(m)) if m.contains("unknown message kind")
    ));
    let mut frame = one_frame(&Codec::default(), &sample());
    frame.push(0);
    assert!(matches!(rx.push(&frame), Err(Error::Malformed(m)) if m.contains("after the end")));
    let json = Codec {
        format: Format::Json,
        ..Codec::default()
    };
    let mut frame = one_frame(&json, &sample());
    frame.extend_from_slice(b"{}");
    assert!(matches!(rx.push(&frame), Err(Error::Malformed(_))));
}

#[test]
fn lists_longer_than_the_frame_are_refused_before_allocating() {
    let mut rx = Reassembler::new(Codec::default());
    // A batch (kind 4, epoch 1/1, base implied) announcing 2^32-1 operations in a handful of
    // bytes.
    let frame = [
        VERSION, 0, 1, 1, 1, 4, 1, 1, 0xc0, 0xce, 0xff, 0xff, 0xff, 0xff,
    ];
    assert!(matches!(rx.push(&frame), Err(Error::Malformed(m)) if m.contains("items")));
    // A string announcing 4 GiB.
    let frame = [VERSION, 0, 1, 1, 1, 11, 0xdb, 0xff, 0xff, 0xff, 0xff, b'x'];
    assert!(rx.push(&frame).is_err());
}

#[test]
fn oversized_messages_are_refused() {
    let codec = Codec {
        max_message: 1000,
        compress_above: usize::MAX,
        ..Codec::default()
    };
    let env = bench_data::state_sync(100, 100);
    assert!(matches!(codec.encode(&env), Err(Error::TooLarge { .. })));
    // A chunk announcing more than max_message.
    let mut rx = Reassembler::new(codec);
    let mut frame = vec![VERSION, 0x10];
    frame.extend_from_slice(&1u32.to_le_bytes());
    frame.extend_from_slice(&u32::MAX.to_le_bytes());
    frame.extend_from_slice(&0u32.to_le_bytes());
    frame.push(0);
    assert_eq!(
        rx.push(&frame),
        Err(Error::TooLarge {
            len: u32::MAX as usize,
            max: 1000
        })
    );
    assert_eq!(rx.buffered(), 0);
}

#[test]
fn compression_bombs_fail_cleanly() {
    let mut rx = Reassembler::new(Codec {
        max_message: 1 << 20,
        ..Codec::default()
    });
    // Claims 4 GiB decompressed.
    let mut frame = vec![VERSION, 0x02];
    frame.extend_from_slice(&u32::MAX.to_le_bytes());
    frame.extend_from_slice(&[0x1f, 0, 0, 0, 0, 0]);
    assert_eq!(
        rx.push(&frame),
        Err(Error::TooLarge {
            len: u32::MAX as usize,
            max: 1 << 20
        })
    );
    // Claims 1 MiB from a few bytes: more than LZ4 can expand to.
    let mut frame = vec![VERSION, 0x02];
    frame.extend_from_slice(&(1u32 << 20).to_le_bytes());
    frame.extend_from_slice(&[0x1f, 0, 0, 0, 0, 0]);
    assert!(matches!(rx.push(&frame), Err(Error::Malformed(_))));
    // A real bomb: 16 MiB of zeros compress to ~64 KiB; over max_message it is refused.
    let zeros = vec![0u8; 16 << 20];
    let mut frame = vec![VERSION, 0x02];
    frame.extend_from_slice(&(zeros.len() as u32).to_le_bytes());
    frame.extend_from_slice(&lz4_flex::block::compress(&zeros));
    assert!(matches!(rx.push(&frame), Err(Error::TooLarge { .. })));
    // A compressed body that lies about its length, or is garbage.
    let mut frame = vec![VERSION, 0x02];
    frame.extend_from_slice(&100u32.to_le_bytes());
    frame.extend_from_slice(&lz4_flex::block::compress(&[7u8; 50]));
    assert!(matches!(rx.push(&frame), Err(Error::Malformed(_))));
    assert!(rx.push(&[VERSION, 0x02, 1, 0]).is_err());
    // Still decodes afterwards.
    let frame = one_frame(&Codec::default(), &sample());
    assert_eq!(rx.push(&frame), Ok(Some(sample())));
}

fn chunks() -> (Codec, Vec<Vec<u8>>) {
    let codec = Codec {
        max_frame: 200,
        ..Codec::default()
    };
    let frames = codec.encode(&bench_data::state_sync(50, 50)).unwrap();
    assert!(frames.len() >= 4);
    (codec, frames)
}

#[test]
fn bad_chunk_sequences_reset_the_reassembler() {
    let (codec, frames) = chunks();
    let good = one_frame(&codec, &sample());
    let check_recovers = |rx: &mut Reassembler| {
        assert_eq!(rx.buffered(), 0);
        assert_eq!(rx.push(&good), Ok(Some(sample())));
    };

    // Out of order: the second chunk first, or a chunk skipped.
    let mut rx = Reassembler::new(codec.clone());
    assert!(matches!(rx.push(&frames[1]), Err(Error::BadChunk(_))));
    check_recovers(&mut rx);
    assert_eq!(rx.push(&frames[0]), Ok(None));
    assert!(rx.buffered() > 0);
    assert!(matches!(rx.push(&frames[2]), Err(Error::BadChunk(_))));
    check_recovers(&mut rx);

    // Interleaved: another message's chunks, or a whole message, in the middle.
    let other = codec.encode(&bench_data::state_sync(60, 60)).unwrap();
    assert_eq!(rx.push(&frames[0]), Ok(None));
    assert!(matches!(rx.push(&other[0]), Err(Error::BadChunk(_))));
    check_recovers(&mut rx);
    assert_eq!(rx.push(&frames[0]), Ok(None));
    assert!(matches!(rx.push(&good), Err(Error::BadChunk(_))));
    check_recovers(&mut rx);

    // A chunk whose flags differ from its first chunk's.
    assert_eq!(rx.push(&frames[0]), Ok(None));
    let mut odd = frames[1].clone();
    odd[1] ^= 0x01;
    assert!(matches!(rx.push(&odd), Err(Error::BadChunk(_))));
    check_recovers(&mut rx);

    // A chunk running past its announced total, or empty.
    let mut long = frames[0].clone();
    long[6..10].copy_from_slice(&10u32.to_le_bytes());
    assert!(matches!(rx.push(&long), Err(Error::BadChunk(_))));
    assert!(matches!(rx.push(&frames[0][..14]), Err(Error::BadChunk(_))));
    check_recovers(&mut rx);

    // The whole sequence still decodes after all that.
    let mut out = None;
    for f in &frames {
        out = rx.push(f).unwrap();
    }
    assert_eq!(out, Some(bench_data::state_sync(50, 50)));
}

#[test]
fn a_tiny_max_frame_is_an_encode_error_not_a_panic() {
    let codec = Codec {
        max_frame: 10,
        ..Codec::default()
    };
    assert!(matches!(
        codec.encode(&bench_data::state_sync(10, 10)),
        Err(Error::Encode(_))
    ));
}

#[test]
fn hostile_nesting_is_refused() {
    // A value nested 10 000 deep inside an update-content.
    let mut frame = vec![VERSION, 0, 1, 1, 1, 3, 1, 0, 1, 0, 0xa1, b'c'];
    frame.extend(std::iter::repeat_n(0x91, 10_000));
    frame.push(0xc0);
    assert!(matches!(
        Reassembler::new(Codec::default()).push(&frame),
        Err(Error::Malformed(_))
    ));
    // Groups nested 10 000 deep in a repair.
    let mut frame = vec![VERSION, 0, 1, 1, 1, 8, 1, 1, 1, 1, 0xa1, b'g'];
    for _ in 0..10_000 {
        frame.extend_from_slice(&[0xa1, b'g', 0xc0, 0xc0, 0, 0, 1]);
    }
    assert!(matches!(
        Reassembler::new(Codec::default()).push(&frame),
        Err(Error::Malformed(_))
    ));
}

// ---- optional fields --------------------------------------------------------------------------

/// Every optional field of every request, absent and present with its most easily confused
/// value (an empty name, a null-like choice), survives both formats exactly. The property tests
/// found `add-contact` with `value: Some(Null)` decoding as `None`; the type no longer has the
/// two spellings, and this table keeps every other field honest.
#[test]
fn every_optional_field_of_every_request_round_trips() {
    let c = || Id::new("c1").unwrap();
    let g = || Id::new("g1").unwrap();
    let names = [None, Some(String::new()), Some("x".to_owned())];
    let mut requests = Vec::new();
    for name in &names {
        for id in [None, Some(c())] {
            for value in [
                Value::Null,
                Value::Number(0.0),
                Value::String(String::new()),
            ] {
                for boundary in [None, Some(Direction::Input), Some(Direction::Output)] {
                    for blend in [BlendMode::AcceptLast, BlendMode::Merge] {
                        requests.push(Request::AddContact {
                            id: id.clone(),
                            group: g(),
                            name: name.clone(),
                            blend,
                            value: value.clone(),
                            boundary,
                        });
                    }
                }
            }
            for primitive in [None, Some(Primitive::Add)] {
                requests.push(Request::AddGroup {
                    id: id.clone(),
                    parent: g(),
                    name: name.clone(),
                    primitive,
                });
            }
            for kind in [WireKind::Directed, WireKind::Bidirectional] {
                requests.push(Request::Connect {
                    id: id.clone(),
                    from: c(),
                    to: c(),
                    kind,
                });
            }
        }
        for parent in [None, Some(g())] {
            requests.push(Request::UpdateGroup {
                id: g(),
                name: name.clone(),
                parent,
            });
        }
        for blend in [None, Some(BlendMode::AcceptLast), Some(BlendMode::Merge)] {
            requests.push(Request::UpdateContact {
                id: c(),
                name: name.clone(),
                blend,
            });
        }
    }
    requests.push(Request::UpdateContent {
        contact: c(),
        value: Value::Null,
    });
    for format in [Format::MessagePack, Format::Json] {
        let codec = Codec {
            format,
            ..Codec::default()
        };
        for request in &requests {
            for message in [
                Message::Submit {
                    op: 1,
                    ts: 1,
                    request: request.clone(),
                    sig: bassline_protocol::Signature([9; 64]),
                },
                Message::Batch {
                    epoch: Epoch::default(),
                    base: Position::default(),
                    ops: vec![Sequenced {
                        seq: 1,
                        op: OpId {
                            peer: 2,
                            counter: 1,
                        },
                        ts: 1,
                        command: request.clone().into(),
                        sig: bassline_protocol::Signature([9; 64]),
                    }],
                    keys: Vec::new(),
                },
            ] {
                round_trip(
                    &codec,
                    &Envelope {
                        id: 1,
                        ts: 1,
                        from: 2,
                        message,
                    },
                );
            }
        }
    }
}
