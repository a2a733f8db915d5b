//! How relays should cross instances: Redis pub/sub against streams, measured the way the
//! server uses them (one writer pipelining a batch per wake, one reader per instance).
//!
//! `cargo run --release -p bassline-signal --example redis_carry -- redis://127.0.0.1:6379/ [rate] [secs]`
//!
//! Prints delivery latency percentiles (publisher to subscriber, same process and clock) at the
//! given total rate of ~400-byte messages, for PUBLISH/SUBSCRIBE and for XADD/XREAD BLOCK.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use redis::aio::MultiplexedConnection;

const PAD: usize = 380;

fn percentiles(mut v: Vec<u64>) -> String {
    v.sort_unstable();
    let p = |q: f64| {
        v.get(((v.len().saturating_sub(1)) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    format!(
        "{} delivered, p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
        v.len(),
        p(0.5),
        p(0.99),
        p(0.999),
        p(1.0)
    )
}

/// Sends `rate` messages a second for `secs`, in 1 ms batches, each through `add`.
async fn produce(
    conn: &mut MultiplexedConnection,
    base: Instant,
    rate: u64,
    secs: u64,
    add: impl Fn(&mut redis::Pipeline, String),
) {
    let per_ms = (rate / 1000).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let end = Instant::now() + Duration::from_secs(secs);
    let pad = "x".repeat(PAD);
    while Instant::now() < end {
        tick.tick().await;
        let mut p = redis::pipe();
        for _ in 0..per_ms {
            add(&mut p, format!("{} {pad}", base.elapsed().as_nanos()));
        }
        let _: redis::RedisResult<()> = p.query_async(conn).await;
    }
}

fn latency_us(base: Instant, payload: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(payload).ok()?;
    let sent: u128 = s.split(' ').next()?.parse().ok()?;
    Some(u64::try_from(base.elapsed().as_nanos().saturating_sub(sent) / 1000).unwrap_or(u64::MAX))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> redis::RedisResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .map_or("redis://127.0.0.1:6379/", |s| s.as_str());
    let rate: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let secs: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let client = redis::Client::open(url)?;
    let base = Instant::now();

    // Pub/sub.
    let mut ps = client.get_async_pubsub().await?;
    ps.subscribe("bench:carry").await?;
    let reader = tokio::spawn(async move {
        let mut lat = Vec::new();
        let mut msgs = ps.on_message();
        let deadline = Instant::now() + Duration::from_secs(secs + 2);
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline.into(), msgs.next()).await {
            if let Some(l) = latency_us(base, m.get_payload_bytes()) {
                lat.push(l);
            }
        }
        lat
    });
    let mut conn = client.get_multiplexed_async_connection().await?;
    produce(&mut conn, base, rate, secs, |p, m| {
        p.cmd("PUBLISH").arg("bench:carry").arg(m).ignore();
    })
    .await;
    let lat = reader.await.expect("the reader does not panic");
    println!("pub/sub   {}", percentiles(lat));

    // Streams: XADD with an approximate cap, XREAD BLOCK on its own connection.
    let _: () = redis::cmd("DEL")
        .arg("bench:stream")
        .query_async(&mut conn)
        .await?;
    let mut rconn = client
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new().set_response_timeout(None),
        )
        .await?;
    let reader = tokio::spawn(async move {
        let mut lat = Vec::new();
        let mut last = "$".to_string();
        let deadline = Instant::now() + Duration::from_secs(secs + 2);
        while Instant::now() < deadline {
            let r: redis::RedisResult<redis::Value> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(1000)
                .arg("BLOCK")
                .arg(500)
                .arg("STREAMS")
                .arg("bench:stream")
                .arg(&last)
                .query_async(&mut rconn)
                .await;
            let Ok(redis::Value::Array(streams)) = r else {
                continue;
            };
            for s in streams {
                let redis::Value::Array(parts) = s else {
                    continue;
                };
                let Some(redis::Value::Array(entries)) = parts.into_iter().nth(1) else {
                    continue;
                };
                for e in entries {
                    let redis::Value::Array(e) = e else { continue };
                    let mut it = e.into_iter();
                    if let Some(redis::Value::BulkString(id)) = it.next() {
                        last = String::from_utf8_lossy(&id).into_owned();
                    }
                    if let Some(redis::Value::Array(fields)) = it.next()
                        && let Some(redis::Value::BulkString(v)) = fields.get(1)
                        && let Some(l) = latency_us(base, v)
                    {
                        lat.push(l);
                    }
                }
            }
        }
        lat
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    produce(&mut conn, base, rate, secs, |p, m| {
        p.cmd("XADD")
            .arg("bench:stream")
            .arg("MAXLEN")
            .arg("~")
            .arg(10_000)
            .arg("*")
            .arg("m")
            .arg(m)
            .ignore();
    })
    .await;
    let lat = reader.await.expect("the reader does not panic");
    println!("streams   {}", percentiles(lat));
    let _: () = redis::cmd("DEL")
        .arg("bench:stream")
        .query_async(&mut conn)
        .await?;
    Ok(())
}
