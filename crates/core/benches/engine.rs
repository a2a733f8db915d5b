//! Engine throughput: propagation along a long chain, and bulk structural requests.
//!
//! `cargo bench -p bassline-core` (or `cargo xtask bench core`) prints elements per second:
//! contact updates per second for the chain, requests per second for the bulk adds.

use bassline_core::{BlendMode, Id, Network, Request, Value, WireKind};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const CHAIN: usize = 10_000;
const ADDS: usize = 100_000;

fn id(s: String) -> Id {
    Id::new(&s).expect("bench ids are valid")
}

fn add_contact(c: Id) -> Request {
    Request::AddContact {
        id: Some(c),
        group: id("root".into()),
        name: None,
        blend: BlendMode::AcceptLast,
        value: Value::Null,
        boundary: None,
    }
}

fn chain() -> Network {
    let mut net = Network::new();
    for i in 0..CHAIN {
        net.apply(add_contact(id(format!("c{i}"))))
            .expect("fresh id");
    }
    for i in 1..CHAIN {
        net.apply(Request::Connect {
            id: Some(id(format!("w{i}"))),
            from: id(format!("c{}", i - 1)),
            to: id(format!("c{i}")),
            kind: WireKind::Bidirectional,
        })
        .expect("contacts exist");
    }
    net
}

fn propagation(c: &mut Criterion) {
    let mut net = chain();
    let head = id("c0".into());
    let mut v = 0.0;
    let mut g = c.benchmark_group("propagation");
    g.throughput(Throughput::Elements(CHAIN as u64));
    g.bench_function(
        "chain of 10000 contacts, one write (contact updates)",
        |b| {
            b.iter(|| {
                v += 1.0;
                let r = net
                    .apply(Request::UpdateContent {
                        contact: head.clone(),
                        value: Value::Number(v),
                    })
                    .expect("contact exists");
                assert_eq!(r.changes.len(), CHAIN, "every contact in the chain changes");
            })
        },
    );
    g.finish();
}

fn bulk_adds(c: &mut Criterion) {
    let requests: Vec<Request> = (0..ADDS)
        .map(|i| add_contact(id(format!("k{i}"))))
        .collect();
    let mut g = c.benchmark_group("requests");
    g.throughput(Throughput::Elements(ADDS as u64));
    g.sample_size(10);
    g.bench_function("100000 add-contact requests (requests)", |b| {
        b.iter_batched(
            || (Network::new(), requests.clone()),
            |(mut net, requests)| {
                for r in requests {
                    net.apply(r).expect("fresh id");
                }
                net
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn hashing(c: &mut Criterion) {
    let net = chain();
    let mut g = c.benchmark_group("hash");
    g.throughput(Throughput::Elements(CHAIN as u64));
    g.bench_function(
        "state hash of 10000 contacts + 9999 wires (contacts)",
        |b| b.iter(|| net.state_hash()),
    );
    g.finish();
}

criterion_group!(benches, propagation, bulk_adds, hashing);
criterion_main!(benches);
