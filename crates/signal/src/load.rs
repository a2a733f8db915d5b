//! `bassline bench signal`: a load client in its own process. It opens N WebSocket clients,
//! pairs them in rooms, relays offer/answer/candidate traffic at a fixed total rate, and prints
//! connections held, the server's resident memory per connection (from `/proc/<pid>/status`),
//! messages relayed per second and relay latency percentiles.
//!
//! Latency is measured end to end inside this process: the sender writes its send time (ns since
//! the run began) into the message, the partner client (same process, same clock) reads it when
//! the relayed copy arrives. It therefore includes the client's own scheduling; on a 2-core
//! machine shared by server and client that is a real part of the figure.
//!
//! With `--instances N` (N > 1) it starts a `redis-server` and N `bassline signal --redis`
//! instances and puts each room's host and guest on different instances, so every relay crosses
//! instances through Redis; memory is the sum over the instances (Redis reported apart).

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _, stream};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async_with_config,
    tungstenite::{Message, protocol::WebSocketConfig},
};

use crate::{PeerId, RoomCode, ServerMessage};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Settings of the load benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Server to load (ws://127.0.0.1:PORT/). Without it, a `bassline signal` child process is
    /// started on a free loopback port and stopped afterwards.
    #[arg(long, env = "BASSLINE_BENCH_URL")]
    pub url: Option<String>,
    /// The server's process id, to read its memory use; found automatically for a child server.
    #[arg(long, env = "BASSLINE_BENCH_SERVER_PID")]
    pub server_pid: Option<u32>,
    /// Concurrent WebSocket clients (an even number: they are paired).
    #[arg(long, env = "BASSLINE_BENCH_CONNECTIONS", default_value_t = 10_000)]
    pub connections: usize,
    /// Total relayed messages per second to offer.
    #[arg(long, env = "BASSLINE_BENCH_RATE", default_value_t = 20_000)]
    pub rate: u32,
    /// Seconds of relay traffic.
    #[arg(long, env = "BASSLINE_BENCH_DURATION", default_value_t = 10)]
    pub duration_secs: u64,
    /// Connection attempts in flight at once while connecting.
    #[arg(
        long,
        env = "BASSLINE_BENCH_CONNECT_CONCURRENCY",
        default_value_t = 512
    )]
    pub connect_concurrency: usize,
    /// Bytes of SDP per offer/answer (candidates are ~100 bytes).
    #[arg(long, env = "BASSLINE_BENCH_SDP_BYTES", default_value_t = 400)]
    pub sdp_bytes: usize,
    /// Raise this process's open-files soft limit to this (0 = the hard limit).
    #[arg(long, env = "BASSLINE_BENCH_NOFILE", default_value_t = 0)]
    pub nofile: u64,
    /// Signaling instances to start, sharing rooms through a `redis-server` the benchmark starts
    /// (needs Debian's redis-server); each room's two members on different instances.
    #[arg(long, env = "BASSLINE_BENCH_INSTANCES", default_value_t = 1)]
    pub instances: usize,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Clients asked for.
    pub connections: usize,
    /// Clients that were connected, greeted and paired, and still open at the end.
    pub held: usize,
    /// From the first connect to the last `welcome`.
    pub connect_time: Duration,
    /// From the first create-room to the last pair joined.
    pub pair_time: Duration,
    /// Server VmRSS before any client connected, KiB.
    pub rss_idle_kib: u64,
    /// Server VmRSS with every client connected and paired, before traffic, KiB.
    pub rss_held_kib: u64,
    /// Server VmRSS right after the traffic phase, every client still open, KiB.
    pub rss_after_traffic_kib: u64,
    /// Server VmHWM (peak resident) at the end, KiB.
    pub hwm_kib: u64,
    /// Messages sent for relay.
    pub sent: u64,
    /// Relayed messages received.
    pub received: u64,
    /// Length of the traffic phase.
    pub traffic_time: Duration,
    /// Relay latency percentiles, microseconds: p50, p99, p99.9, max.
    pub latency_us: [u64; 4],
    /// Signaling instances (1: no Redis).
    pub instances: usize,
    /// Redis VmRSS after traffic, KiB (0 without Redis).
    pub redis_rss_kib: u64,
}

impl LoadReport {
    /// The figures as a table.
    pub fn render(&self) -> String {
        let n = self.connections.max(1) as f64;
        let per_conn = |kib: u64| (kib.saturating_sub(self.rss_idle_kib)) as f64 * 1024.0 / n;
        let secs = self.traffic_time.as_secs_f64().max(1e-9);
        let redis = if self.instances > 1 {
            format!(
                "instances (sharing Redis)   {}, every relay crossing instances\n\
                 redis RSS after traffic     {} KiB\n",
                self.instances, self.redis_rss_kib
            )
        } else {
            "instances                   1 (no Redis)\n".to_string()
        };
        format!(
            "bassline signal load benchmark\n\
             {redis}\
             connections held            {held} / {n}\n\
             connect + hello, all        {ct:.3} s\n\
             create + join, all pairs    {pt:.3} s\n\
             server RSS idle             {idle} KiB\n\
             server RSS holding all      {held_kib} KiB  ({phc:.0} B per connection above idle)\n\
             server RSS after traffic    {after} KiB  ({pa:.0} B per connection above idle)\n\
             server peak RSS (VmHWM)     {hwm} KiB  ({pp:.0} B per connection above idle)\n\
             messages sent / relayed     {sent} / {recv}\n\
             relayed per second          {rps:.0}\n\
             relay latency p50           {p50:.3} ms\n\
             relay latency p99           {p99:.3} ms\n\
             relay latency p99.9         {p999:.3} ms\n\
             relay latency max           {max:.3} ms\n",
            held = self.held,
            n = self.connections,
            ct = self.connect_time.as_secs_f64(),
            pt = self.pair_time.as_secs_f64(),
            idle = self.rss_idle_kib,
            held_kib = self.rss_held_kib,
            phc = per_conn(self.rss_held_kib),
            after = self.rss_after_traffic_kib,
            pa = per_conn(self.rss_after_traffic_kib),
            hwm = self.hwm_kib,
            pp = per_conn(self.hwm_kib),
            sent = self.sent,
            recv = self.received,
            rps = self.received as f64 / secs,
            p50 = self.latency_us[0] as f64 / 1000.0,
            p99 = self.latency_us[1] as f64 / 1000.0,
            p999 = self.latency_us[2] as f64 / 1000.0,
            max = self.latency_us[3] as f64 / 1000.0,
        )
    }
}

/// Reads `VmRSS` and `VmHWM` (KiB) of process `pid`.
pub fn proc_memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// A child process (server or redis-server) this benchmark started.
struct ChildServer(Child);

impl Drop for ChildServer {
    fn drop(&mut self) {
        // Only the process this benchmark started, by its handle.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_redis() -> anyhow::Result<(ChildServer, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--maxclients", "1000"])
        .stdout(Stdio::null())
        .spawn()
        .context("starting redis-server (apt-get install -y redis-server)")?;
    let child = ChildServer(child);
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((child, format!("redis://127.0.0.1:{port}/")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("redis-server did not listen on port {port} within 10 s")
}

fn spawn_server(args: &LoadArgs, redis: Option<&str>) -> anyhow::Result<(ChildServer, String)> {
    let exe = std::env::current_exe().context("finding the bassline executable")?;
    let mut cmd = Command::new(exe);
    cmd.args([
        "signal",
        "--listen",
        "127.0.0.1:0",
        "--stun",
        "",
        "--log",
        "warn",
    ])
    .args(["--max-conns-per-ip", &(args.connections + 64).to_string()])
    .args(["--max-rooms", &(args.connections / 2 + 64).to_string()])
    .args(["--max-msgs-per-sec", "10000"]);
    if let Some(url) = redis {
        cmd.args(["--redis", url]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting `bassline signal` for the benchmark")?;
    let stdout = child.stdout.take().context("child stdout")?;
    let child = ChildServer(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the server's listening line")?;
    let url = line
        .trim()
        .strip_prefix("bassline signal listening on ")
        .with_context(|| format!("unexpected server output {line:?}"))?
        .to_string();
    Ok((child, url))
}

/// Runs the benchmark and prints its figures.
pub async fn run_load(args: LoadArgs) -> anyhow::Result<()> {
    let report = load(args).await?;
    print!("{}", report.render());
    Ok(())
}

/// Runs the benchmark and returns its figures.
pub async fn load(args: LoadArgs) -> anyhow::Result<LoadReport> {
    if args.connections < 2 || !args.connections.is_multiple_of(2) {
        bail!("--connections must be an even number of at least 2");
    }
    let nofile = crate::server::raise_nofile(args.nofile)?;
    if (nofile as usize) < args.connections + 64 {
        bail!(
            "open-files limit {nofile} is too low for {} connections; raise the hard limit",
            args.connections
        );
    }
    let mut children = Vec::new();
    let mut redis_pid = None;
    let (urls, pids) = match &args.url {
        Some(url) => (vec![url.clone()], args.server_pid.into_iter().collect()),
        None if args.instances > 1 => {
            let (redis, redis_url) = spawn_redis()?;
            redis_pid = Some(redis.0.id());
            children.push(redis);
            let (mut urls, mut pids) = (Vec::new(), Vec::new());
            for _ in 0..args.instances {
                let (child, url) = spawn_server(&args, Some(&redis_url))?;
                pids.push(child.0.id());
                urls.push(url);
                children.push(child);
            }
            (urls, pids)
        }
        None => {
            let (child, url) = spawn_server(&args, None)?;
            let pid = child.0.id();
            children.push(child);
            (vec![url], vec![pid])
        }
    };
    let loopback = |url: &String| {
        ["127.0.0.1", "[::1]", "localhost"]
            .iter()
            .any(|h| url.starts_with(&format!("ws://{h}")))
    };
    if let Some(url) = urls.iter().find(|u| !loopback(u)) {
        bail!("the benchmark only connects to loopback servers; got {url}")
    }
    let report = run_phases(&args, &urls, &pids, redis_pid).await;
    drop(children);
    report
}

async fn run_phases(
    args: &LoadArgs,
    urls: &[String],
    pids: &[u32],
    redis_pid: Option<u32>,
) -> anyhow::Result<LoadReport> {
    // Summed over the instances.
    let mem = || -> anyhow::Result<(u64, u64)> {
        let mut sum = (0, 0);
        for &pid in pids {
            let (rss, hwm) = proc_memory_kib(pid)?;
            sum = (sum.0 + rss, sum.1 + hwm);
        }
        Ok(sum)
    };
    let n_inst = urls.len();
    // Pair p's host on instance p, its guest on the next one: with several instances every
    // relay crosses between them.
    let url_of = |i: usize| {
        let pair = i / 2;
        &urls[(pair + i % 2) % n_inst]
    };
    let mut report = LoadReport {
        connections: args.connections,
        instances: n_inst,
        ..LoadReport::default()
    };
    report.rss_idle_kib = mem()?.0;

    // Phase 1: connect and greet everyone.
    let cfg = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let t0 = Instant::now();
    let mut clients: Vec<(usize, Ws, PeerId)> = stream::iter(0..args.connections)
        .map(|i| async move {
            let url = url_of(i);
            let (mut ws, _) = connect_async_with_config(url, Some(cfg), true).await?;
            ws.send(Message::text(r#"{"type":"hello","version":1}"#))
                .await?;
            match next_msg(&mut ws).await? {
                ServerMessage::Welcome { peer_id, .. } => Ok((i, ws, peer_id)),
                other => bail!("expected welcome, got {other:?}"),
            }
        })
        .buffer_unordered(args.connect_concurrency)
        .collect::<Vec<anyhow::Result<_>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    report.connect_time = t0.elapsed();
    clients.sort_by_key(|c| c.0);

    // Phase 2: pair them, even index hosts, odd index joins.
    let t1 = Instant::now();
    let mut it = clients.into_iter();
    let mut pairs = Vec::new();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        pairs.push((a, b));
    }
    let pairs: Vec<_> = stream::iter(pairs)
        .map(
            |((_, mut host, host_id), (_, mut guest, guest_id))| async move {
                host.send(Message::text(r#"{"type":"create-room"}"#))
                    .await?;
                let code: RoomCode = match next_msg(&mut host).await? {
                    ServerMessage::RoomCreated { code, .. } => code,
                    other => bail!("expected room-created, got {other:?}"),
                };
                guest
                    .send(Message::text(format!(
                        r#"{{"type":"join-room","code":"{code}"}}"#
                    )))
                    .await?;
                match next_msg(&mut guest).await? {
                    ServerMessage::Joined { .. } => {}
                    other => bail!("expected joined, got {other:?}"),
                }
                match next_msg(&mut host).await? {
                    ServerMessage::PeerJoined { .. } => {}
                    other => bail!("expected peer-joined, got {other:?}"),
                }
                Ok(((host, host_id), (guest, guest_id)))
            },
        )
        .buffer_unordered(args.connect_concurrency)
        .collect::<Vec<anyhow::Result<_>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    report.pair_time = t1.elapsed();
    report.rss_held_kib = mem()?.0;

    // Phase 3: relay traffic. Each client sends to its partner every `period`, phases spread
    // evenly so the total rate is smooth.
    let n = args.connections as u64;
    let period = Duration::from_nanos(n * 1_000_000_000 / u64::from(args.rate.max(1)));
    let traffic = Duration::from_secs(args.duration_secs);
    let base = Instant::now() + Duration::from_millis(200);
    let end = base + traffic;
    let sdp_pad = "a".repeat(args.sdp_bytes.saturating_sub(24));
    let mut tasks = Vec::with_capacity(args.connections);
    let mut k = 0u64;
    for ((host, host_id), (guest, guest_id)) in pairs {
        for (ws, partner) in [(host, guest_id), (guest, host_id)] {
            let offset = period * u32::try_from(k % n).unwrap_or(0) / u32::try_from(n).unwrap_or(1);
            k += 1;
            let pad = sdp_pad.clone();
            tasks.push(tokio::spawn(client_traffic(
                ws,
                partner,
                base,
                base + offset,
                period,
                end,
                pad,
            )));
        }
    }
    // Clients keep their sockets open for 2 s after sending stops; read the server in between.
    tokio::time::sleep_until((end + Duration::from_millis(800)).into()).await;
    report.rss_after_traffic_kib = mem()?.0;
    let mut latencies: Vec<u32> = Vec::new();
    let mut held = 0;
    for t in tasks {
        let r = t.await.context("a client task panicked")?;
        report.sent += r.sent;
        report.received += r.received;
        latencies.extend(r.latencies_us);
        held += usize::from(r.open);
    }
    report.held = held;
    report.traffic_time = traffic;
    report.hwm_kib = mem()?.1;
    if let Some(r) = redis_pid {
        report.redis_rss_kib = proc_memory_kib(r)?.0;
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        if latencies.is_empty() {
            0
        } else {
            let i = ((latencies.len() - 1) as f64 * p).round() as usize;
            u64::from(latencies[i])
        }
    };
    report.latency_us = [pct(0.50), pct(0.99), pct(0.999), pct(1.0)];
    Ok(report)
}

struct TrafficResult {
    sent: u64,
    received: u64,
    latencies_us: Vec<u32>,
    open: bool,
}

async fn client_traffic(
    mut ws: Ws,
    partner: PeerId,
    base: Instant,
    first: Instant,
    period: Duration,
    end: Instant,
    pad: String,
) -> TrafficResult {
    let mut r = TrafficResult {
        sent: 0,
        received: 0,
        latencies_us: Vec::new(),
        open: true,
    };
    let mut tick = tokio::time::interval_at(first.into(), period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Messages still in flight when sending stops get this long to arrive.
    let drain_until = end + Duration::from_secs(2);
    let mut kind = 0u8;
    loop {
        tokio::select! {
            _ = tick.tick(), if Instant::now() < end => {
                let t = base.elapsed().as_nanos();
                let text = match kind % 3 {
                    0 => format!(r#"{{"type":"offer","to":"{partner}","sdp":"{t} v=0 {pad}"}}"#),
                    1 => format!(r#"{{"type":"answer","to":"{partner}","sdp":"{t} v=0 {pad}"}}"#),
                    _ => format!(
                        r#"{{"type":"candidate","to":"{partner}","candidate":"{t} candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host","sdp_mid":"0","sdp_m_line_index":0}}"#
                    ),
                };
                kind = kind.wrapping_add(1);
                if ws.send(Message::text(text)).await.is_err() {
                    r.open = false;
                    return r;
                }
                r.sent += 1;
            }
            msg = ws.next() => {
                let Some(Ok(msg)) = msg else {
                    r.open = false;
                    return r;
                };
                let Message::Text(text) = msg else { continue };
                let stamp = match serde_json::from_str::<ServerMessage>(&text) {
                    Ok(ServerMessage::Offer { sdp, .. } | ServerMessage::Answer { sdp, .. }) => sdp,
                    Ok(ServerMessage::Candidate { candidate, .. }) => candidate,
                    _ => continue,
                };
                if let Some(sent_ns) = stamp.split(' ').next().and_then(|s| s.parse::<u128>().ok()) {
                    let lat_us = (base.elapsed().as_nanos().saturating_sub(sent_ns)) / 1000;
                    r.latencies_us.push(u32::try_from(lat_us).unwrap_or(u32::MAX));
                    r.received += 1;
                }
            }
            () = tokio::time::sleep_until(drain_until.into()) => {
                let _ = ws.close(None).await;
                return r;
            }
        }
    }
}

async fn next_msg(ws: &mut Ws) -> anyhow::Result<ServerMessage> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(&t).with_context(|| format!("bad server message {t}"));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("the server closed the connection"),
        }
    }
}
