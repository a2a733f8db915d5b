//! Bassline's wire codec next to the alternatives, on the same generated state:
//! body formats (MessagePack, JSON), compressors (LZ4, deflate, zstd), and automerge (a document
//! of maps keyed by id, save + load), which is what a user would otherwise reach for.
//!
//! Run: `cd benches-automerge && cargo run --release` (a few minutes; prints a table).

use std::{
    io::Read,
    time::{Duration, Instant},
};

use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, ScalarValue, transaction::Transactable};
use bassline_core::{StateDocument, Value};
use bassline_protocol::{Codec, Envelope, Format, Message, Reassembler, bench_data};

/// Best of `runs` timings of `f` (the machine is shared, so the minimum is the least noisy).
fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed());
        out = Some(r);
    }
    (best, out.expect("at least one run"))
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn mb(n: usize) -> String {
    format!("{:.2}", n as f64 / 1e6)
}

fn decode(codec: &Codec, frames: &[Vec<u8>]) -> Envelope {
    let mut rx = Reassembler::new(codec.clone());
    let mut out = None;
    for f in frames {
        out = rx.push(f).expect("decodes");
    }
    out.expect("complete")
}

fn raw_body(format: Format, env: &Envelope) -> Vec<u8> {
    let codec = Codec {
        format,
        compress_above: usize::MAX,
        max_frame: usize::MAX,
        ..Codec::default()
    };
    codec.encode(env).expect("encodes").remove(0).split_off(2)
}

struct Row {
    name: String,
    bytes: usize,
    time: Duration,
}

fn codec_row(name: &str, codec: Codec, env: &Envelope, runs: usize) -> Row {
    let (time, bytes) = best(runs, || {
        let frames = codec.encode(env).expect("encodes");
        let back = decode(&codec, &frames);
        assert!(matches!(back.message, Message::StateSync(_)));
        frames.iter().map(Vec::len).sum::<usize>()
    });
    Row {
        name: name.into(),
        bytes,
        time,
    }
}

/// A compressor applied to the raw MessagePack body: compress + decompress time (add the
/// codec's encode + decode time for the whole path).
fn compressor_row(
    name: &str,
    body: &[u8],
    runs: usize,
    pack: impl Fn(&[u8]) -> Vec<u8>,
    unpack: impl Fn(&[u8]) -> Vec<u8>,
) -> Row {
    let (time, bytes) = best(runs, || {
        let packed = pack(body);
        let back = unpack(&packed);
        assert_eq!(back.len(), body.len());
        packed.len()
    });
    Row {
        name: name.into(),
        bytes,
        time,
    }
}

fn scalar(v: &Value) -> ScalarValue {
    match v {
        Value::Null => ScalarValue::Null,
        Value::Bool(b) => ScalarValue::Boolean(*b),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => ScalarValue::Int(*n as i64),
        Value::Number(n) => ScalarValue::F64(*n),
        Value::String(s) => ScalarValue::Str(s.as_str().into()),
        other => ScalarValue::Str(serde_json::to_string(other).expect("values serialize").into()),
    }
}

/// The same state as an automerge document: maps of groups, contacts and wires keyed by id.
fn automerge_doc(doc: &StateDocument) -> AutoCommit {
    let mut am = AutoCommit::new();
    let groups = am.put_object(ROOT, "groups", ObjType::Map).unwrap();
    let contacts = am.put_object(ROOT, "contacts", ObjType::Map).unwrap();
    let wires = am.put_object(ROOT, "wires", ObjType::Map).unwrap();
    for g in &doc.root.groups {
        let go = am.put_object(&groups, g.id.as_str(), ObjType::Map).unwrap();
        am.put(&go, "parent", doc.root.id.as_str()).unwrap();
        if let Some(n) = &g.name {
            am.put(&go, "name", n.as_str()).unwrap();
        }
        for c in &g.contacts {
            let co = am.put_object(&contacts, c.id.as_str(), ObjType::Map).unwrap();
            am.put(&co, "group", g.id.as_str()).unwrap();
            if let Some(n) = &c.name {
                am.put(&co, "name", n.as_str()).unwrap();
            }
            am.put(&co, "blend", format!("{:?}", c.blend)).unwrap();
            am.put(&co, "value", scalar(&c.value)).unwrap();
        }
        for w in &g.wires {
            let wo = am.put_object(&wires, w.id.as_str(), ObjType::Map).unwrap();
            am.put(&wo, "group", g.id.as_str()).unwrap();
            am.put(&wo, "from", w.from.as_str()).unwrap();
            am.put(&wo, "to", w.to.as_str()).unwrap();
            am.put(&wo, "kind", format!("{:?}", w.kind)).unwrap();
        }
    }
    am
}

fn print(title: &str, json_bytes: usize, rows: &[Row]) {
    println!("\n{title}");
    println!(
        "| {:<44} | {:>12} | {:>8} | {:>9} | {:>10} |",
        "what", "bytes", "MB", "vs JSON", "time ms"
    );
    println!("|{:-<46}|{:->14}|{:->10}|{:->11}|{:->12}|", "", "", "", "", "");
    for r in rows {
        println!(
            "| {:<44} | {:>12} | {:>8} | {:>8.3}x | {:>10} |",
            r.name,
            r.bytes,
            mb(r.bytes),
            r.bytes as f64 / json_bytes as f64,
            ms(r.time)
        );
    }
}

fn state(contacts: usize, runs: usize, with_automerge: bool) {
    let env = bench_data::state_sync(contacts, contacts);
    let msgpack = raw_body(Format::MessagePack, &env);
    let json = raw_body(Format::Json, &env);
    let plain = Codec {
        compress_above: usize::MAX,
        ..Codec::default()
    };
    let mut rows = vec![
        codec_row(
            "JSON, uncompressed (encode+decode)",
            Codec {
                format: Format::Json,
                ..plain.clone()
            },
            &env,
            runs,
        ),
        codec_row(
            "JSON + LZ4 (encode+decode)",
            Codec {
                format: Format::Json,
                ..Codec::default()
            },
            &env,
            runs,
        ),
        codec_row(
            "MessagePack, uncompressed (encode+decode)",
            plain,
            &env,
            runs,
        ),
        codec_row(
            "MessagePack + LZ4 = default (encode+decode)",
            Codec::default(),
            &env,
            runs,
        ),
    ];
    rows.push(compressor_row(
        "  LZ4 alone (compress+decompress)",
        &msgpack,
        runs,
        lz4_flex::block::compress,
        |p| lz4_flex::block::decompress(p, msgpack.len()).unwrap(),
    ));
    for level in [1u8, 6] {
        rows.push(compressor_row(
            &format!("  deflate/miniz_oxide level {level} alone"),
            &msgpack,
            runs,
            |b| miniz_oxide::deflate::compress_to_vec(b, level),
            |p| miniz_oxide::inflate::decompress_to_vec_with_limit(p, 1 << 30).unwrap(),
        ));
    }
    rows.push(compressor_row(
        "  zstd/ruzstd Fastest alone",
        &msgpack,
        runs,
        |b| ruzstd::encoding::compress_to_vec(b, ruzstd::encoding::CompressionLevel::Fastest),
        |p| {
            let mut out = Vec::new();
            ruzstd::decoding::StreamingDecoder::new(p)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            out
        },
    ));
    if with_automerge {
        let doc = match &env.message {
            Message::StateSync(s) => &s.document,
            _ => unreachable!("state_sync makes a StateSync"),
        };
        let t = Instant::now();
        let mut am = automerge_doc(doc);
        let build = t.elapsed();
        let (time, bytes) = best(runs.min(2), || {
            let saved = am.save();
            let loaded = AutoCommit::load(&saved).unwrap();
            assert!(loaded.length(ROOT) == 3);
            saved.len()
        });
        rows.push(Row {
            name: "automerge (save+load)".into(),
            bytes,
            time,
        });
        println!(
            "(automerge: building the document took {} ms, not counted)",
            ms(build)
        );
    }
    print(
        &format!(
            "StateSync of {contacts} contacts + {contacts} wires (JSON body {} bytes, MessagePack body {} bytes); best of {runs}",
            json.len(),
            msgpack.len()
        ),
        json.len(),
        &rows,
    );
}

/// Where the default path spends its time: encode (with compression and chunking), and decode
/// (reassembly, decompression, decoding), the decoded state's drop counted separately.
fn split(contacts: usize, runs: usize) {
    let env = bench_data::state_sync(contacts, contacts);
    let codec = Codec::default();
    let (enc, frames) = best(runs, || codec.encode(&env).expect("encodes"));
    let mut dec = Duration::MAX;
    let mut drop_time = Duration::MAX;
    for _ in 0..runs {
        let t = Instant::now();
        let back = decode(&codec, &frames);
        dec = dec.min(t.elapsed());
        let t = Instant::now();
        drop(back);
        drop_time = drop_time.min(t.elapsed());
    }
    println!(
        "\nDefault codec, {contacts} + {contacts}: encode {} ms, decode {} ms, dropping the decoded state {} ms ({} frames)",
        ms(enc),
        ms(dec),
        ms(drop_time),
        frames.len()
    );
}

fn threshold() {
    println!("\nWhere LZ4 starts to pay: Batch of n content updates, MessagePack body");
    println!(
        "| {:>4} | {:>10} | {:>12} | {:>8} |",
        "n", "plain B", "LZ4 B (+4)", "saved"
    );
    println!("|{:->6}|{:->12}|{:->14}|{:->10}|", "", "", "", "");
    for n in [1, 2, 4, 8, 16, 32, 64, 128] {
        let body = raw_body(Format::MessagePack, &bench_data::batch_of(n));
        let packed = lz4_flex::block::compress(&body).len() + 4;
        println!(
            "| {:>4} | {:>10} | {:>12} | {:>7.0}% |",
            n,
            body.len(),
            packed,
            100.0 * (1.0 - packed as f64 / body.len() as f64)
        );
    }
}

fn hot_path() {
    println!("\nBytes on the wire per incremental change (default codec)");
    for (what, env) in [
        (
            "Submit(update-content c12 = 42)",
            bench_data::submit_update(),
        ),
        ("Batch of one sequenced update", bench_data::batch_update()),
    ] {
        let mp = Codec::default().encode(&env).unwrap();
        let js = Codec {
            format: Format::Json,
            ..Codec::default()
        }
        .encode(&env)
        .unwrap();
        println!(
            "  {what}: MessagePack {} bytes, JSON {} bytes",
            mp[0].len(),
            js[0].len()
        );
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    if std::env::args().any(|a| a == "--split") {
        split(10_000, 5);
        split(100_000, 3);
        return;
    }
    hot_path();
    threshold();
    state(10_000, if quick { 2 } else { 5 }, true);
    state(100_000, if quick { 1 } else { 3 }, true);
    split(10_000, 5);
    split(100_000, 3);
}
