//! The Redis side of a shared registry (`--redis`): it stores and carries what the registry
//! decides, and decides nothing itself.
//!
//! Keys (all under `bassline:`), each with the lifetime the protocol documents:
//! - `room:<CODE>`: `"<generation>:<version>\n<record JSON>"`, expiring after the room's idle
//!   lifetime (renewed by activity on any instance). Written only by the commit script, which
//!   compares the generation and version first, so a write decided on a stale record fails.
//! - `tok:<token>`: where a peer lives (its instance and room); honoured only while that
//!   instance's `inst:` key lives.
//! - `inst:<id>`: renewed every quarter grace period, living one grace period: an instance
//!   killed without a goodbye is considered dead a grace period later, when its peers' tokens
//!   stop working and its members are removed from their rooms.
//! - `fail:<ip>`: unix milliseconds of the address's recent failed joins, living one window.
//!
//! Messages between instances go by pub/sub on the channel `bassline:inst:<id>`: one
//! subscription per instance, at most once, in order per publisher. That is the delivery
//! promise the registry already makes (a relayed message may be lost when a peer's instance
//! dies, and the peer's resume carries the room as it is now), and pub/sub costs one PUBLISH
//! per relay with nothing to trim afterwards; streams would add persistence nobody reads.

use std::{
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::StreamExt as _;
use redis::{AsyncConnectionConfig, Client, aio::MultiplexedConnection};
use tokio::sync::mpsc;

use super::Shared;
use crate::{Carried, CommitResult, InstanceId, Loaded, Output, RoomCode, RoomRecord, TokenRecord};

const PREFIX: &str = "bassline:";

/// Most writes waiting for Redis (relays to other instances, mostly): about three seconds of
/// cross-instance relays at 20,000 a second, a few MB.
const MAX_QUEUED_WRITES: usize = 65_536;

/// Longest wait for one store request: past it the store counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Compare-and-set of a room record, and the notice to the other instances in the same step.
/// KEYS[1] the room; ARGV: expected "<generation>:<version>" ("" for absent), the new value
/// ("" deletes), lifetime in ms, the message to publish, then the channels.
const COMMIT: &str = r#"
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if cur then return {0, cur} end
else
  if not cur then return {0, ''} end
  if string.match(cur, '^[^\n]*') ~= ARGV[1] then return {0, cur} end
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
for i = 5, #ARGV do redis.call('PUBLISH', ARGV[i], ARGV[4]) end
return {1, ''}
"#;

/// Writes that need no answer, done in order by one task.
pub(super) enum Write {
    Publish(String, String),
    Token(u128, Option<TokenRecord>, Duration),
    Failure(IpAddr, usize, Duration),
    Touch(RoomCode, Duration),
}

/// The connection to Redis shared by the tasks of one server.
pub(super) struct Store {
    client: Client,
    conn: Mutex<Option<MultiplexedConnection>>,
    writes: mpsc::Sender<Write>,
    me: InstanceId,
    grace: Duration,
    /// The last request reached Redis; for the log, to say "unreachable" and "back" once.
    up: AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

fn room_key(code: RoomCode) -> String {
    format!("{PREFIX}room:{code}")
}

fn token_key(token: u128) -> String {
    format!("{PREFIX}tok:{token:032x}")
}

fn instance_key(i: InstanceId) -> String {
    format!("{PREFIX}inst:{:016x}", i.0)
}

/// Instances are told things on a channel named like their liveness key.
fn channel(i: InstanceId) -> String {
    instance_key(i)
}

fn failure_key(ip: IpAddr) -> String {
    format!("{PREFIX}fail:{ip}")
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn stamp(r: &RoomRecord) -> String {
    format!("{}:{}", r.generation, r.version)
}

fn encode_room(r: &RoomRecord) -> String {
    format!(
        "{}\n{}",
        stamp(r),
        serde_json::to_string(r).expect("room records serialize")
    )
}

/// A stored room value; `None` for anything unreadable (then the room counts as absent).
fn decode_room(v: &str) -> Option<RoomRecord> {
    let (_, json) = v.split_once('\n')?;
    serde_json::from_str(json).ok()
}

impl Store {
    /// Connects to `url` and starts the writer; fails when the URL is malformed or Redis does
    /// not answer, so a mistyped `--redis` stops the server at start rather than later.
    pub(super) async fn connect(
        url: &str,
        me: InstanceId,
        grace: Duration,
    ) -> anyhow::Result<(Arc<Self>, mpsc::Receiver<Write>)> {
        use anyhow::Context as _;
        let client = Client::open(url).with_context(|| format!("bad --redis URL {url:?}"))?;
        let (writes, rx) = mpsc::channel(MAX_QUEUED_WRITES);
        let store = Arc::new(Self {
            client,
            conn: Mutex::new(None),
            writes,
            me,
            grace,
            up: AtomicBool::new(true),
        });
        let mut c = store
            .connection()
            .await
            .with_context(|| format!("connecting to Redis at {url}"))?;
        let _: () = redis::cmd("PING")
            .query_async(&mut c)
            .await
            .context("Redis did not answer PING")?;
        Ok((store, rx))
    }

    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        if let Some(c) = self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(c);
        }
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REQUEST_TIMEOUT))
            .set_response_timeout(Some(REQUEST_TIMEOUT));
        let c = self
            .client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
        Ok(c)
    }

    /// Notes the outcome of a request: a failure drops the connection so the next request
    /// dials again.
    fn outcome<T>(&self, r: redis::RedisResult<T>) -> Option<T> {
        match r {
            Ok(v) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!("room store reachable again");
                }
                Some(v)
            }
            Err(e) => {
                *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = None;
                if self.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "room store unreachable: refusing new rooms and joins, relaying locally");
                }
                None
            }
        }
    }

    async fn run<T>(
        &self,
        f: impl AsyncFnOnce(&mut MultiplexedConnection) -> redis::RedisResult<T>,
    ) -> Option<T> {
        let r = async {
            let mut c = self.connection().await?;
            f(&mut c).await
        };
        let r = match tokio::time::timeout(REQUEST_TIMEOUT, r).await {
            Ok(r) => r,
            Err(_) => Err(redis::RedisError::from(std::io::Error::from(
                std::io::ErrorKind::TimedOut,
            ))),
        };
        self.outcome(r)
    }

    /// Carries out a store request of the registry, answering it through `shared`.
    pub(super) fn perform(self: &Arc<Self>, shared: &Arc<Shared>, out: Output) {
        match out {
            Output::Load {
                op,
                room,
                failures,
                token,
            } => {
                let (me, shared) = (self.clone(), shared.clone());
                tokio::spawn(async move {
                    let loaded = me.load(room, failures, token).await;
                    shared.with_registry(|reg, now| reg.handle_loaded(now, op, loaded));
                });
            }
            Output::Commit {
                op,
                code,
                old,
                new,
                ttl,
                notify,
            } => {
                let (me, shared) = (self.clone(), shared.clone());
                tokio::spawn(async move {
                    let result = me.commit(code, old, new, ttl, notify).await;
                    shared.with_registry(|reg, now| reg.handle_committed(now, op, result));
                });
            }
            Output::Carry { to, what } => {
                let payload = serde_json::to_string(&what).expect("carried messages serialize");
                self.write(Write::Publish(channel(to), payload));
            }
            Output::SaveToken { token, record, ttl } => {
                self.write(Write::Token(token, record, ttl));
            }
            Output::RecordFailure { ip, keep, window } => {
                self.write(Write::Failure(ip, keep, window));
            }
            Output::Touch { code, ttl } => {
                self.write(Write::Touch(code, ttl));
            }
            Output::Send { .. }
            | Output::Close { .. }
            | Output::HashPassword { .. }
            | Output::VerifyPassword { .. } => {}
        }
    }

    /// Queues a write; dropped (like a relay to a dead instance) when Redis has been unreachable
    /// long enough to fill the queue, so an outage cannot grow memory without bound.
    fn write(&self, w: Write) {
        if self.writes.try_send(w).is_err() {
            tracing::debug!("room store write queue full: dropping a write");
        }
    }

    async fn load(
        &self,
        room: Option<RoomCode>,
        failures: Option<IpAddr>,
        token: Option<u128>,
    ) -> Option<Loaded> {
        let now_ms = unix_ms();
        let now = std::time::Instant::now();
        self.run(async |c| {
            let mut loaded = Loaded::default();
            let mut room = room;
            if let Some(t) = token {
                let v: Option<String> = redis::cmd("GET").arg(token_key(t)).query_async(c).await?;
                loaded.token = v.and_then(|v| serde_json::from_str::<TokenRecord>(&v).ok());
                room = room.or(loaded.token.and_then(|t| t.room));
            }
            if let Some(code) = room {
                let (v, ttl): (Option<String>, i64) = redis::pipe()
                    .cmd("GET")
                    .arg(room_key(code))
                    .cmd("PTTL")
                    .arg(room_key(code))
                    .query_async(c)
                    .await?;
                let ttl = Duration::from_millis(u64::try_from(ttl).unwrap_or(0));
                loaded.room = v.as_deref().and_then(decode_room).map(|r| (r, ttl));
            }
            if let Some(ip) = failures {
                let v: Vec<u64> = redis::cmd("LRANGE")
                    .arg(failure_key(ip))
                    .arg(0)
                    .arg(-1)
                    .query_async(c)
                    .await?;
                loaded.failures = v
                    .into_iter()
                    .filter_map(|t| {
                        now.checked_sub(Duration::from_millis(now_ms.saturating_sub(t)))
                    })
                    .collect();
            }
            let mut named: Vec<InstanceId> = loaded
                .room
                .iter()
                .flat_map(|(r, _)| r.members.iter().map(|m| m.instance))
                .chain(loaded.token.map(|t| t.instance))
                .filter(|&i| i != self.me)
                .collect();
            named.sort();
            named.dedup();
            if !named.is_empty() {
                let mut p = redis::pipe();
                for &i in &named {
                    p.cmd("EXISTS").arg(instance_key(i));
                }
                let alive: Vec<bool> = p.query_async(c).await?;
                loaded.dead = named
                    .into_iter()
                    .zip(alive)
                    .filter(|(_, a)| !a)
                    .map(|(i, _)| i)
                    .collect();
            }
            Ok(loaded)
        })
        .await
    }

    async fn commit(
        &self,
        code: RoomCode,
        old: Option<RoomRecord>,
        new: Option<RoomRecord>,
        ttl: Duration,
        notify: Vec<InstanceId>,
    ) -> CommitResult {
        let expected = old.as_ref().map(stamp).unwrap_or_default();
        let value = new.as_ref().map(encode_room).unwrap_or_default();
        let notice = serde_json::to_string(&Carried::Room { code, record: new })
            .expect("carried messages serialize");
        let r = self
            .run(async |c| {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(COMMIT)
                    .arg(1)
                    .arg(room_key(code))
                    .arg(&expected)
                    .arg(&value)
                    .arg(ms(ttl))
                    .arg(&notice);
                for i in &notify {
                    cmd.arg(channel(*i));
                }
                let (ok, cur): (i64, String) = cmd.query_async(c).await?;
                Ok((ok, cur))
            })
            .await;
        match r {
            None => CommitResult::Unavailable,
            Some((1, _)) => CommitResult::Done,
            Some((_, cur)) => CommitResult::Conflict(decode_room(&cur)),
        }
    }

    /// Does the writes that need no answer, in order, a pipeline per batch.
    pub(super) async fn writer(self: Arc<Self>, mut rx: mpsc::Receiver<Write>) {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, 512).await > 0 {
            let mut p = redis::pipe();
            for w in batch.drain(..) {
                match w {
                    Write::Publish(ch, payload) => {
                        p.cmd("PUBLISH").arg(ch).arg(payload).ignore();
                    }
                    Write::Token(t, Some(rec), ttl) => {
                        p.cmd("SET")
                            .arg(token_key(t))
                            .arg(serde_json::to_string(&rec).expect("token records serialize"))
                            .arg("PX")
                            .arg(ms(ttl))
                            .ignore();
                    }
                    Write::Token(t, None, _) => {
                        p.cmd("DEL").arg(token_key(t)).ignore();
                    }
                    Write::Failure(ip, keep, window) => {
                        let key = failure_key(ip);
                        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
                        p.cmd("RPUSH").arg(&key).arg(unix_ms()).ignore();
                        p.cmd("LTRIM").arg(&key).arg(-keep).arg(-1).ignore();
                        p.cmd("PEXPIRE").arg(&key).arg(ms(window)).ignore();
                    }
                    Write::Touch(code, ttl) => {
                        p.cmd("PEXPIRE").arg(room_key(code)).arg(ms(ttl)).ignore();
                    }
                }
            }
            // Best effort, like relaying itself: a batch that fails is lost.
            let _ = self.run(async |c| p.query_async::<()>(c).await).await;
        }
    }

    /// Renews this instance's liveness every quarter grace period. When the key was missing
    /// (Redis restarted empty, or this instance was presumed dead), asks the registry to write
    /// its rooms and tokens again.
    pub(super) async fn heartbeat(self: Arc<Self>, shared: Arc<Shared>) {
        let every = (self.grace / 4).max(Duration::from_millis(100));
        let mut first = true;
        loop {
            let key = instance_key(self.me);
            let grace = ms(self.grace);
            let prev = self
                .run(async |c| {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(1)
                        .arg("PX")
                        .arg(grace)
                        .arg("GET")
                        .query_async::<Option<String>>(c)
                        .await
                })
                .await;
            if let Some(None) = prev
                && !first
            {
                tracing::warn!("room store lost this instance's state; writing it again");
                shared.with_registry(|reg, now| reg.handle_store_lost(now));
            }
            if prev.is_some() {
                first = false;
                self.watch_instances(&shared).await;
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Asks Redis which of the instances sharing rooms with this one stopped renewing their
    /// liveness, and tells the registry.
    async fn watch_instances(&self, shared: &Arc<Shared>) {
        let others = shared.lock().reg.peer_instances();
        if others.is_empty() {
            return;
        }
        let alive = self
            .run(async |c| {
                let mut p = redis::pipe();
                for &i in &others {
                    p.cmd("EXISTS").arg(instance_key(i));
                }
                p.query_async::<Vec<bool>>(c).await
            })
            .await;
        // Unknown when Redis did not answer: nobody is presumed dead for that.
        let Some(alive) = alive else { return };
        let dead: Vec<InstanceId> = others
            .into_iter()
            .zip(alive)
            .filter(|(_, a)| !a)
            .map(|(i, _)| i)
            .collect();
        if !dead.is_empty() {
            tracing::info!(
                count = dead.len(),
                "instances presumed dead: removing their members"
            );
            shared.with_registry(|reg, now| reg.handle_dead_instances(now, &dead));
        }
    }

    /// Receives what other instances carry to this one, resubscribing whenever Redis goes away.
    pub(super) async fn subscriber(self: Arc<Self>, shared: Arc<Shared>) {
        let ch = channel(self.me);
        loop {
            let sub = async {
                let mut ps = self.client.get_async_pubsub().await?;
                ps.subscribe(&ch).await?;
                Ok::<_, redis::RedisError>(ps)
            };
            if let Ok(Ok(mut ps)) = tokio::time::timeout(REQUEST_TIMEOUT, sub).await {
                let mut msgs = ps.on_message();
                while let Some(m) = msgs.next().await {
                    match serde_json::from_slice::<Carried>(m.get_payload_bytes()) {
                        Ok(what) => shared.with_registry(|reg, now| reg.handle_carried(now, what)),
                        Err(e) => {
                            tracing::warn!(error = %e, "unreadable message from another instance")
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
