//! Codec benchmarks: a full state of 10k and 100k contacts and wires, MessagePack vs JSON,
//! compressed vs not (encode + decode, through frames and the reassembler), and the incremental
//! hot path. Sizes are printed first as a table; criterion then prints the times.
//!
//! Run: `cargo bench -p bassline-protocol --bench codec`. The comparison with automerge and
//! with other compressors lives in `benches-automerge/` (outside the workspace).

use std::{hint::black_box, time::Duration};

use bassline_protocol::{Codec, Envelope, Format, Reassembler, bench_data};
use criterion::{BenchmarkId, Criterion, criterion_group};

fn decode(codec: &Codec, frames: &[Vec<u8>]) -> Envelope {
    let mut rx = Reassembler::new(codec.clone());
    let mut out = None;
    for f in frames {
        out = rx.push(f).expect("our own frames decode");
    }
    out.expect("the last frame completes the message")
}

fn codecs() -> [(&'static str, Codec); 4] {
    let plain = Codec {
        compress_above: usize::MAX,
        ..Codec::default()
    };
    [
        ("msgpack", plain.clone()),
        ("msgpack+lz4", Codec::default()),
        (
            "json",
            Codec {
                format: Format::Json,
                ..plain
            },
        ),
        (
            "json+lz4",
            Codec {
                format: Format::Json,
                ..Codec::default()
            },
        ),
    ]
}

fn wire_bytes(codec: &Codec, env: &Envelope) -> usize {
    codec
        .encode(env)
        .expect("encodes")
        .iter()
        .map(Vec::len)
        .sum()
}

fn print_sizes() {
    println!("\nBytes on the wire (all frames, headers included)");
    println!(
        "| {:<32} | {:>12} | {:>8} | {:>8} |",
        "message", "codec", "bytes", "vs JSON"
    );
    println!("|{:-<34}|{:->14}|{:->10}|{:->10}|", "", "", "", "");
    let messages = [
        ("submit(update-content)", bench_data::submit_update()),
        ("batch(1 update-content)", bench_data::batch_update()),
        ("state-sync 10k+10k", bench_data::state_sync(10_000, 10_000)),
        (
            "state-sync 100k+100k",
            bench_data::state_sync(100_000, 100_000),
        ),
    ];
    for (name, env) in &messages {
        let json = wire_bytes(&codecs()[2].1, env);
        for (cname, codec) in codecs() {
            let n = wire_bytes(&codec, env);
            println!(
                "| {:<32} | {:>12} | {:>8} | {:>7.3}x |",
                name,
                cname,
                n,
                n as f64 / json as f64
            );
        }
    }
    println!();
}

fn state(c: &mut Criterion) {
    for (n, samples) in [(10_000, 20), (100_000, 10)] {
        let env = bench_data::state_sync(n, n);
        let mut group = c.benchmark_group(format!("state_sync_{}k", n / 1000));
        group
            .sample_size(samples)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(if n > 10_000 { 8 } else { 3 }));
        for (name, codec) in codecs() {
            group.bench_function(BenchmarkId::new("encode+decode", name), |b| {
                b.iter(|| decode(&codec, &codec.encode(black_box(&env)).unwrap()))
            });
        }
        group.finish();
    }
}

fn incremental(c: &mut Criterion) {
    let codec = Codec::default();
    let mut group = c.benchmark_group("incremental");
    for (name, env) in [
        ("submit", bench_data::submit_update()),
        ("batch1", bench_data::batch_update()),
    ] {
        group.bench_function(BenchmarkId::new("encode+decode", name), |b| {
            b.iter(|| decode(&codec, &codec.encode(black_box(&env)).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, state, incremental);

fn main() {
    print_sizes();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
