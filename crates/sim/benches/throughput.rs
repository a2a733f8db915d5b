//! Session throughput: a host and four guests in one process, on a perfect network.
//!
//! Prints operations per second, where an operation counts once it is sequenced by the host
//! and applied on all five peers (guests show their own first, tentatively).

use std::time::Duration;

use bassline_core::{BlendMode, Id, Network, Request, Value};
use bassline_sim::room::Room;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const CONTACTS: usize = 100;
const OPS: usize = 1_000;

fn network() -> Network {
    let mut net = Network::new();
    for i in 0..CONTACTS {
        net.apply(Request::AddContact {
            id: Some(Id::new(&format!("c{i}")).expect("valid")),
            group: Id::new("root").expect("valid"),
            name: None,
            blend: BlendMode::AcceptLast,
            value: Value::Number(0.0),
            boundary: None,
        })
        .expect("fresh id");
    }
    net
}

fn throughput(c: &mut Criterion) {
    let mut room = Room::new(4, network());
    let ids: Vec<Id> = (0..CONTACTS)
        .map(|i| Id::new(&format!("c{i}")).expect("valid"))
        .collect();
    let mut v = 0.0;
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Elements(OPS as u64));
    g.sample_size(20);
    g.bench_function(
        "host + 4 guests, 1000 content updates applied everywhere (ops)",
        |b| {
            b.iter(|| {
                for k in 0..OPS {
                    v += 1.0;
                    let peer = k % room.peers.len();
                    let now = room.now;
                    let request = Request::UpdateContent {
                        contact: ids[k % CONTACTS].clone(),
                        value: Value::Number(v),
                    };
                    room.peers[peer]
                        .handle_local(now, request)
                        .expect("editable");
                }
                room.settle();
                room.events.clear();
                assert!(
                    room.peers.iter().all(|p| p.pending() == 0),
                    "every operation decided"
                );
                room.now += Duration::from_millis(1);
            })
        },
    );
    g.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
