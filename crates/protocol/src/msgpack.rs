//! The MessagePack body of a frame: positional, hand-rolled, so that the hot path (one content
//! update) stays under 32 bytes.
//!
//! A body is a sequence of MessagePack values (not wrapped in an array): the envelope's `id`,
//! `ts`, `from`, the message kind as a small integer, then the kind's fields in declaration order.
//! Lists are a count followed by their items' fields; an optional multi-field item is `nil` or a
//! fixed-length array. Contact values and every request other than `update-content` go through
//! rmp-serde's named (struct-map) form, which is self-describing and so survives
//! `skip_serializing_if`. `docs/PROTOCOL.md` lists every layout.

use bassline_core::{
    BlendMode, ContactDocument, Contradiction, Direction, GroupDocument, Id, Point, Request,
    StateDocument, StateHash, Value, WireDocument, WireKind,
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    Command, Decision, Envelope, Epoch, Error, LogEntry, Message, OpId, PeerId, Permission,
    Permissions, Permit, Position, Presence, PublicKey, Refusal, Refused, Sequenced, Signature,
    StateSync, Writer,
};

/// Deepest nesting of groups, and of MessagePack containers inside one serde-encoded item.
const MAX_NESTING: usize = 128;

const REQUEST_UPDATE_CONTENT: u64 = 0;
const REQUEST_NAMED: u64 = 1;
/// A sequenced operation's command form for a permit (edits use the two request forms).
const COMMAND_PERMIT: u64 = 2;

/// Message kinds, in `Message`'s declaration order.
pub(crate) mod kind {
    pub const STATE_REQUEST: u64 = 0;
    pub const STATE_SYNC: u64 = 1;
    pub const ACK: u64 = 2;
    pub const SUBMIT: u64 = 3;
    pub const BATCH: u64 = 4;
    pub const HEARTBEAT: u64 = 5;
    pub const HASH_MISMATCH: u64 = 6;
    pub const REPAIR: u64 = 7;
    pub const CANDIDATE: u64 = 8;
    pub const HOST_ANNOUNCE: u64 = 9;
    pub const HOST_QUERY: u64 = 10;
    pub const HOST_SEEN: u64 = 11;
    pub const PRESENCE: u64 = 12;
    pub const REFUSED: u64 = 13;
}

fn malformed(what: impl Into<String>) -> Error {
    Error::Malformed(what.into())
}

// ---------------------------------------------------------------------------------------------
// Writing

pub(crate) fn encode(env: &Envelope, out: &mut Vec<u8>) -> Result<(), Error> {
    uint(out, env.id);
    uint(out, env.ts);
    uint(out, env.from);
    match &env.message {
        Message::StateRequest { have, first, key } => {
            uint(out, kind::STATE_REQUEST);
            match have {
                None => nil(out),
                Some(p) => {
                    array(out, 3);
                    position(out, p);
                }
            }
            count(out, first.len());
            for g in first {
                str(out, g.as_str())?;
            }
            match key {
                None => nil(out),
                Some(k) => public_key(out, k),
            }
        }
        Message::StateSync(s) => {
            uint(out, kind::STATE_SYNC);
            state_sync(out, s)?;
        }
        Message::Ack { position: p } => {
            uint(out, kind::ACK);
            position(out, p);
        }
        Message::Submit {
            op,
            ts,
            request: r,
            sig,
        } => {
            uint(out, kind::SUBMIT);
            uint(out, *op);
            delta(out, *ts, env.ts);
            request(out, r)?;
            signature(out, sig);
        }
        Message::Batch {
            epoch: e,
            base,
            ops,
            keys: ks,
        } => {
            uint(out, kind::BATCH);
            epoch(out, e);
            // The base is nearly always the position just before the first operation, in the
            // same epoch: then it is left out (one byte instead of four or more).
            let implied = ops
                .first()
                .is_some_and(|s| base.epoch == *e && base.seq.checked_add(1) == Some(s.seq));
            if implied {
                nil(out);
            } else {
                array(out, 3);
                position(out, base);
            }
            count(out, ops.len());
            for s in ops {
                sequenced(out, s, env.ts)?;
            }
            keys(out, ks);
        }
        Message::Heartbeat {
            position: p,
            hash: h,
            host,
            epoch: e,
            vouch,
        } => {
            uint(out, kind::HEARTBEAT);
            position(out, p);
            hash(out, h);
            match host {
                None => nil(out),
                Some(h) => uint(out, *h),
            }
            epoch(out, e);
            match vouch {
                None => nil(out),
                Some(sig) => signature(out, sig),
            }
        }
        Message::HashMismatch {
            position: p,
            groups,
        } => {
            uint(out, kind::HASH_MISMATCH);
            position(out, p);
            count(out, groups.len());
            for (g, h) in groups {
                str(out, g.as_str())?;
                hash(out, h);
            }
        }
        Message::Repair {
            position: p,
            groups,
            remove,
            writers: w,
            permissions: ps,
            keys: ks,
        } => {
            uint(out, kind::REPAIR);
            position(out, p);
            count(out, groups.len());
            for (g, doc) in groups {
                str(out, g.as_str())?;
                group(out, doc)?;
            }
            count(out, remove.len());
            for id in remove {
                str(out, id.as_str())?;
            }
            writers(out, w)?;
            permissions(out, ps);
            keys(out, ks);
        }
        Message::Candidate { epoch: e } => {
            uint(out, kind::CANDIDATE);
            epoch(out, e);
        }
        Message::HostAnnounce { epoch: e, led } => {
            uint(out, kind::HOST_ANNOUNCE);
            epoch(out, e);
            match led {
                None => nil(out),
                Some(v) => {
                    array(out, 4);
                    uint(out, v.by);
                    uint(out, v.number);
                    public_key(out, &v.key);
                    signature(out, &v.sig);
                }
            }
        }
        Message::HostQuery { host } => {
            uint(out, kind::HOST_QUERY);
            uint(out, *host);
        }
        Message::HostSeen { host, alive } => {
            uint(out, kind::HOST_SEEN);
            uint(out, *host);
            out.push(if *alive { 0xc3 } else { 0xc2 });
        }
        Message::Presence(p) => {
            uint(out, kind::PRESENCE);
            presence(out, p)?;
        }
        Message::Refused { request, reason } => {
            uint(out, kind::REFUSED);
            match request {
                Refused::Submit { op } => {
                    uint(out, 0);
                    uint(out, *op);
                }
                Refused::StateRequest => uint(out, 1),
                Refused::HashMismatch => uint(out, 2),
                Refused::Forwarded => uint(out, 3),
            }
            match reason {
                Refusal::RateLimited { retry_ms } => {
                    uint(out, 0);
                    uint(out, *retry_ms);
                }
                Refusal::TooLarge { size, max } => {
                    uint(out, 1);
                    uint(out, *size);
                    uint(out, *max);
                }
                Refusal::Removed => uint(out, 2),
            }
        }
    }
    Ok(())
}

fn permission(out: &mut Vec<u8>, p: Permission) {
    uint(
        out,
        match p {
            Permission::ReadWrite => 0,
            Permission::ReadOnly => 1,
            Permission::Removed => 2,
        },
    );
}

/// The default, then each listed member and its permission.
fn permissions(out: &mut Vec<u8>, ps: &Permissions) {
    permission(out, ps.default);
    count(out, ps.members.len());
    for (peer, p) in &ps.members {
        uint(out, *peer);
        permission(out, *p);
    }
}

/// A key table or a batch's origin keys: a count, then each peer id and its key.
fn keys(out: &mut Vec<u8>, ks: &[(PeerId, PublicKey)]) {
    count(out, ks.len());
    for (peer, k) in ks {
        uint(out, *peer);
        public_key(out, k);
    }
}

fn public_key(out: &mut Vec<u8>, k: &PublicKey) {
    out.extend_from_slice(&[0xc4, 32]);
    out.extend_from_slice(&k.0);
}

fn signature(out: &mut Vec<u8>, sig: &Signature) {
    out.extend_from_slice(&[0xc4, 64]);
    out.extend_from_slice(&sig.0);
}

fn uint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
    } else if v <= 0xff {
        out.extend_from_slice(&[0xcc, v as u8]);
    } else if v <= 0xffff {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= 0xffff_ffff {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn sint(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        uint(out, v as u64);
    } else if v >= -32 {
        out.push(v as i8 as u8);
    } else if v >= i64::from(i8::MIN) {
        out.extend_from_slice(&[0xd0, v as i8 as u8]);
    } else if v >= i64::from(i16::MIN) {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// `value` relative to `base`, as a signed integer (wrapping, so every pair round-trips): a
/// Lamport time close to the envelope's, or a `seen` close to its `seq`, takes one byte.
fn delta(out: &mut Vec<u8>, value: u64, base: u64) {
    sint(out, value.wrapping_sub(base) as i64);
}

fn nil(out: &mut Vec<u8>) {
    out.push(0xc0);
}

fn count(out: &mut Vec<u8>, n: usize) {
    uint(out, n as u64);
}

fn array(out: &mut Vec<u8>, n: u8) {
    debug_assert!(n < 16, "fixed arrays only");
    out.push(0x90 | n);
}

fn str(out: &mut Vec<u8>, s: &str) -> Result<(), Error> {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else if n <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        let n = u32::try_from(n).map_err(|_| Error::Encode("string over 4 GiB".into()))?;
        out.push(0xdb);
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn opt_str(out: &mut Vec<u8>, s: Option<&str>) -> Result<(), Error> {
    match s {
        None => {
            nil(out);
            Ok(())
        }
        Some(s) => str(out, s),
    }
}

fn hash(out: &mut Vec<u8>, h: &StateHash) {
    out.extend_from_slice(&[0xc4, 32]);
    out.extend_from_slice(&h.0);
}

fn epoch(out: &mut Vec<u8>, e: &Epoch) {
    uint(out, e.number);
    uint(out, e.host);
}

fn position(out: &mut Vec<u8>, p: &Position) {
    epoch(out, &p.epoch);
    uint(out, p.seq);
}

fn named<T: Serialize + ?Sized>(out: &mut Vec<u8>, item: &T) -> Result<(), Error> {
    rmp_serde::encode::write_named(out, item).map_err(|e| Error::Encode(e.to_string()))
}

/// A contact value: scalars written directly (the same bytes rmp-serde would write, and the
/// same integral-number rule as `Value`'s Serialize), everything else through rmp-serde. A state
/// holds one value per contact, so this is most of the work of a full state.
fn value(out: &mut Vec<u8>, v: &Value) -> Result<(), Error> {
    match v {
        Value::Null => nil(out),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(n) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 && !(*n == 0.0 && n.is_sign_negative()) {
                sint(out, *n as i64);
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.to_bits().to_be_bytes());
            }
        }
        Value::String(s) => str(out, s)?,
        other => named(out, other)?,
    }
    Ok(())
}

fn request(out: &mut Vec<u8>, r: &Request) -> Result<(), Error> {
    match r {
        Request::UpdateContent { contact, value: v } => {
            uint(out, REQUEST_UPDATE_CONTENT);
            str(out, contact.as_str())?;
            value(out, v)
        }
        other => {
            uint(out, REQUEST_NAMED);
            named(out, other)
        }
    }
}

fn sequenced(out: &mut Vec<u8>, s: &Sequenced, env_ts: u64) -> Result<(), Error> {
    uint(out, s.seq);
    op_id(out, &s.op);
    delta(out, s.ts, env_ts);
    command(out, &s.command)?;
    signature(out, &s.sig);
    Ok(())
}

fn command(out: &mut Vec<u8>, c: &Command) -> Result<(), Error> {
    match c {
        Command::Request(r) => request(out, r),
        Command::Permit(p) => {
            uint(out, COMMAND_PERMIT);
            match p.peer {
                None => nil(out),
                Some(peer) => uint(out, peer),
            }
            permission(out, p.permission);
            Ok(())
        }
    }
}

/// The part of an operation its origin signs (after [`crate::signed_bytes`]' label): its id,
/// its time (absolute) and its command, as a batch writes them.
pub(crate) fn signed_body(out: &mut Vec<u8>, op: OpId, ts: u64, c: &Command) -> Result<(), Error> {
    op_id(out, &op);
    uint(out, ts);
    command(out, c)
}

fn op_id(out: &mut Vec<u8>, op: &OpId) {
    uint(out, op.peer);
    uint(out, op.counter);
}

fn decision(out: &mut Vec<u8>, d: &Decision) -> Result<(), Error> {
    match d {
        Decision::Applied => uint(out, 0),
        Decision::Superseded { by } => {
            uint(out, 1);
            op_id(out, by);
        }
        Decision::Refused { reason } => {
            uint(out, 2);
            str(out, reason)?;
        }
        Decision::Denied { permission: p } => {
            uint(out, 3);
            permission(out, *p);
        }
    }
    Ok(())
}

fn writers(out: &mut Vec<u8>, ws: &[Writer]) -> Result<(), Error> {
    count(out, ws.len());
    for w in ws {
        str(out, w.contact.as_str())?;
        op_id(out, &w.op);
        uint(out, w.ts);
    }
    Ok(())
}

fn state_sync(out: &mut Vec<u8>, s: &StateSync) -> Result<(), Error> {
    position(out, &s.position);
    out.push(if s.partial { 0xc3 } else { 0xc2 });
    count(out, s.applied.len());
    for (peer, counter) in &s.applied {
        uint(out, *peer);
        uint(out, *counter);
    }
    writers(out, &s.writers)?;
    // Log entries: epoch, then the operation with its `ts` relative to the previous entry's
    // (entries are in sequence order, so times are close), then its decision.
    count(out, s.log.len());
    let mut ts = 0;
    for e in &s.log {
        epoch(out, &e.epoch);
        sequenced(out, &e.op, ts)?;
        ts = e.op.ts;
        decision(out, &e.decision)?;
    }
    count(out, s.lineage.len());
    for (e, first) in &s.lineage {
        epoch(out, e);
        uint(out, *first);
    }
    permissions(out, &s.permissions);
    keys(out, &s.keys);
    str(out, &s.document.format)?;
    uint(out, s.document.version);
    group(out, &s.document.root)
}

fn group(out: &mut Vec<u8>, g: &GroupDocument) -> Result<(), Error> {
    str(out, g.id.as_str())?;
    opt_str(out, g.name.as_deref())?;
    match &g.primitive {
        None => nil(out),
        Some(p) => named(out, p)?,
    }
    point(out, g.at);
    count(out, g.contacts.len());
    for c in &g.contacts {
        contact(out, c)?;
    }
    count(out, g.wires.len());
    for w in &g.wires {
        wire(out, w)?;
    }
    count(out, g.groups.len());
    for sub in &g.groups {
        group(out, sub)?;
    }
    Ok(())
}

fn contact(out: &mut Vec<u8>, c: &ContactDocument) -> Result<(), Error> {
    str(out, c.id.as_str())?;
    opt_str(out, c.name.as_deref())?;
    uint(out, blend_code(c.blend));
    value(out, &c.value)?;
    match &c.contradiction {
        None => nil(out),
        Some(x) => {
            array(out, 3);
            value(out, &x.existing)?;
            value(out, &x.incoming)?;
            str(out, &x.reason)?;
        }
    }
    match c.boundary {
        None => nil(out),
        Some(Direction::Input) => uint(out, 0),
        Some(Direction::Output) => uint(out, 1),
    }
    point(out, c.at);
    Ok(())
}

/// A layout position: `nil`, or a fixed array of the two coordinates.
fn point(out: &mut Vec<u8>, at: Option<Point>) {
    match at {
        None => nil(out),
        Some(p) => {
            array(out, 2);
            sint(out, i64::from(p.x));
            sint(out, i64::from(p.y));
        }
    }
}

fn blend_code(b: BlendMode) -> u64 {
    match b {
        BlendMode::AcceptLast => 0,
        BlendMode::Merge => 1,
    }
}

fn wire(out: &mut Vec<u8>, w: &WireDocument) -> Result<(), Error> {
    str(out, w.id.as_str())?;
    str(out, w.from.as_str())?;
    str(out, w.to.as_str())?;
    uint(
        out,
        match w.kind {
            WireKind::Bidirectional => 0,
            WireKind::Directed => 1,
        },
    );
    Ok(())
}

fn presence(out: &mut Vec<u8>, p: &Presence) -> Result<(), Error> {
    opt_str(out, p.name.as_deref())?;
    opt_str(out, p.group.as_ref().map(Id::as_str))?;
    match p.cursor {
        None => nil(out),
        Some((x, y)) => {
            array(out, 2);
            for f in [x, y] {
                out.push(0xca);
                out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
        }
    }
    count(out, p.selection.len());
    for id in &p.selection {
        str(out, id.as_str())?;
    }
    match p.peer {
        None => nil(out),
        Some(peer) => uint(out, peer),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading

pub(crate) fn decode(body: &[u8]) -> Result<Envelope, Error> {
    let mut r = Reader { buf: body, pos: 0 };
    let id = r.uint()?;
    let ts = r.uint()?;
    let from = r.uint()?;
    let message = match r.uint()? {
        kind::STATE_REQUEST => {
            let have = if r.nil()? {
                None
            } else {
                r.array(3)?;
                Some(r.position()?)
            };
            let n = r.count()?;
            let mut first = Vec::with_capacity(n);
            for _ in 0..n {
                first.push(r.id()?);
            }
            let key = if r.nil()? {
                None
            } else {
                Some(r.public_key()?)
            };
            Message::StateRequest { have, first, key }
        }
        kind::STATE_SYNC => Message::StateSync(Box::new(r.state_sync()?)),
        kind::ACK => Message::Ack {
            position: r.position()?,
        },
        kind::SUBMIT => Message::Submit {
            op: r.uint()?,
            ts: r.delta(ts)?,
            request: r.request()?,
            sig: r.signature()?,
        },
        kind::BATCH => {
            let epoch = r.epoch()?;
            let base = if r.nil()? {
                None
            } else {
                r.array(3)?;
                Some(r.position()?)
            };
            let n = r.count()?;
            let mut ops = Vec::with_capacity(n);
            for _ in 0..n {
                ops.push(r.sequenced(ts)?);
            }
            let base = match (base, ops.first()) {
                (Some(b), _) => b,
                (None, Some(first)) => Position {
                    epoch,
                    seq: first
                        .seq
                        .checked_sub(1)
                        .ok_or_else(|| malformed("a batch starting at sequence number 0"))?,
                },
                (None, None) => return Err(malformed("an empty batch without its base")),
            };
            let keys = r.keys()?;
            Message::Batch {
                epoch,
                base,
                ops,
                keys,
            }
        }
        kind::HEARTBEAT => Message::Heartbeat {
            position: r.position()?,
            hash: r.hash()?,
            host: if r.nil()? { None } else { Some(r.uint()?) },
            epoch: r.epoch()?,
            vouch: if r.nil()? { None } else { Some(r.signature()?) },
        },
        kind::HASH_MISMATCH => {
            let position = r.position()?;
            let n = r.count()?;
            let mut groups = Vec::with_capacity(n);
            for _ in 0..n {
                groups.push((r.id()?, r.hash()?));
            }
            Message::HashMismatch { position, groups }
        }
        kind::REPAIR => {
            let position = r.position()?;
            let n = r.count()?;
            let mut groups = Vec::with_capacity(n);
            for _ in 0..n {
                groups.push((r.id()?, r.group(0)?));
            }
            let n = r.count()?;
            let mut remove = Vec::with_capacity(n);
            for _ in 0..n {
                remove.push(r.id()?);
            }
            Message::Repair {
                position,
                groups,
                remove,
                writers: r.writers()?,
                permissions: r.permissions()?,
                keys: r.keys()?,
            }
        }
        kind::CANDIDATE => Message::Candidate { epoch: r.epoch()? },
        kind::HOST_ANNOUNCE => Message::HostAnnounce {
            epoch: r.epoch()?,
            led: if r.nil()? {
                None
            } else {
                r.array(4)?;
                Some(crate::Vouch {
                    by: r.uint()?,
                    number: r.uint()?,
                    key: r.public_key()?,
                    sig: r.signature()?,
                })
            },
        },
        kind::HOST_QUERY => Message::HostQuery { host: r.uint()? },
        kind::HOST_SEEN => Message::HostSeen {
            host: r.uint()?,
            alive: r.bool()?,
        },
        kind::PRESENCE => Message::Presence(r.presence()?),
        kind::REFUSED => {
            let request = match r.uint()? {
                0 => Refused::Submit { op: r.uint()? },
                1 => Refused::StateRequest,
                2 => Refused::HashMismatch,
                3 => Refused::Forwarded,
                other => return Err(malformed(format!("unknown refused request {other}"))),
            };
            let reason = match r.uint()? {
                0 => Refusal::RateLimited {
                    retry_ms: r.uint()?,
                },
                1 => Refusal::TooLarge {
                    size: r.uint()?,
                    max: r.uint()?,
                },
                2 => Refusal::Removed,
                other => return Err(malformed(format!("unknown refusal {other}"))),
            };
            Message::Refused { request, reason }
        }
        other => return Err(malformed(format!("unknown message kind {other}"))),
    };
    if r.pos != body.len() {
        return Err(malformed(format!(
            "{} bytes after the end of the message",
            body.len() - r.pos
        )));
    }
    Ok(Envelope {
        id,
        ts,
        from,
        message,
    })
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn byte(&mut self) -> Result<u8, Error> {
        let b = *self.buf.get(self.pos).ok_or(Error::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.remaining() {
            return Err(Error::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn uint(&mut self) -> Result<u64, Error> {
        match self.byte()? {
            b @ 0x00..=0x7f => Ok(u64::from(b)),
            0xcc => Ok(u64::from(self.byte()?)),
            0xcd => Ok(u64::from(u16::from_be_bytes(self.be()?))),
            0xce => Ok(u64::from(u32::from_be_bytes(self.be()?))),
            0xcf => Ok(u64::from_be_bytes(self.be()?)),
            m => Err(malformed(format!(
                "expected an unsigned integer, found {m:#04x}"
            ))),
        }
    }

    fn sint(&mut self) -> Result<i64, Error> {
        match self.buf.get(self.pos).copied().ok_or(Error::Truncated)? {
            0xe0..=0xff => Ok(i64::from(self.byte()? as i8)),
            0xd0 => {
                self.pos += 1;
                Ok(i64::from(self.byte()? as i8))
            }
            0xd1 => {
                self.pos += 1;
                Ok(i64::from(i16::from_be_bytes(self.be()?)))
            }
            0xd2 => {
                self.pos += 1;
                Ok(i64::from(i32::from_be_bytes(self.be()?)))
            }
            0xd3 => {
                self.pos += 1;
                Ok(i64::from_be_bytes(self.be()?))
            }
            _ => {
                let u = self.uint()?;
                i64::try_from(u).map_err(|_| malformed("signed integer out of range"))
            }
        }
    }

    fn delta(&mut self, base: u64) -> Result<u64, Error> {
        Ok(base.wrapping_add(self.sint()? as u64))
    }

    /// Consumes a `nil` if one is next.
    fn nil(&mut self) -> Result<bool, Error> {
        match self.buf.get(self.pos) {
            None => Err(Error::Truncated),
            Some(0xc0) => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
        }
    }

    fn bool(&mut self) -> Result<bool, Error> {
        match self.byte()? {
            0xc2 => Ok(false),
            0xc3 => Ok(true),
            m => Err(malformed(format!("expected a boolean, found {m:#04x}"))),
        }
    }

    fn array(&mut self, n: u8) -> Result<(), Error> {
        let m = self.byte()?;
        if m != 0x90 | n {
            return Err(malformed(format!(
                "expected an array of {n}, found {m:#04x}"
            )));
        }
        Ok(())
    }

    /// A list's length, bounded by the bytes left (every item takes at least one byte), so a
    /// peer cannot make us allocate more than its frame could fill.
    fn count(&mut self) -> Result<usize, Error> {
        let n = self.uint()?;
        if n > self.remaining() as u64 {
            return Err(malformed(format!(
                "a list of {n} items in {} bytes",
                self.remaining()
            )));
        }
        Ok(n as usize)
    }

    fn str(&mut self) -> Result<&'a str, Error> {
        let n = match self.byte()? {
            m @ 0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => usize::from(self.byte()?),
            0xda => usize::from(u16::from_be_bytes(self.be()?)),
            0xdb => u32::from_be_bytes(self.be()?) as usize,
            m => return Err(malformed(format!("expected a string, found {m:#04x}"))),
        };
        std::str::from_utf8(self.take(n)?).map_err(|_| malformed("string is not UTF-8"))
    }

    fn opt_str(&mut self) -> Result<Option<String>, Error> {
        Ok(if self.nil()? {
            None
        } else {
            Some(self.str()?.to_owned())
        })
    }

    fn id(&mut self) -> Result<Id, Error> {
        let s = self.str()?;
        Id::new(s).map_err(|e| malformed(e.to_string()))
    }

    fn hash(&mut self) -> Result<StateHash, Error> {
        if self.take(2)? != [0xc4, 32] {
            return Err(malformed("expected a 32-byte hash"));
        }
        Ok(StateHash(self.be()?))
    }

    fn f32(&mut self) -> Result<f32, Error> {
        if self.byte()? != 0xca {
            return Err(malformed("expected a 32-bit float"));
        }
        Ok(f32::from_bits(u32::from_be_bytes(self.be()?)))
    }

    fn epoch(&mut self) -> Result<Epoch, Error> {
        Ok(Epoch {
            number: self.uint()?,
            host: self.uint()?,
        })
    }

    fn position(&mut self) -> Result<Position, Error> {
        Ok(Position {
            epoch: self.epoch()?,
            seq: self.uint()?,
        })
    }

    /// One self-describing item (rmp-serde's named form): its extent is measured first, so
    /// rmp-serde only ever sees a slice whose lengths are all known to fit.
    fn named<T: DeserializeOwned>(&mut self) -> Result<T, Error> {
        let n = value_len(&self.buf[self.pos..])?;
        let item = self.take(n)?;
        rmp_serde::from_slice(item).map_err(|e| malformed(e.to_string()))
    }

    fn value(&mut self) -> Result<Value, Error> {
        let marker = *self.buf.get(self.pos).ok_or(Error::Truncated)?;
        Ok(match marker {
            0xc0 => {
                self.pos += 1;
                Value::Null
            }
            0xc2 | 0xc3 => Value::Bool(self.bool()?),
            0x00..=0x7f | 0xcc..=0xcf => Value::Number(self.uint()? as f64),
            0xe0..=0xff | 0xd0..=0xd3 => Value::Number(self.sint()? as f64),
            0xca => Value::Number(f64::from(self.f32()?)),
            0xcb => {
                self.pos += 1;
                Value::Number(f64::from_bits(u64::from_be_bytes(self.be()?)))
            }
            0xa0..=0xbf | 0xd9..=0xdb => Value::String(self.str()?.to_owned()),
            _ => self.named()?,
        })
    }

    fn request(&mut self) -> Result<Request, Error> {
        let form = self.uint()?;
        self.request_of_form(form)
    }

    fn request_of_form(&mut self, form: u64) -> Result<Request, Error> {
        match form {
            REQUEST_UPDATE_CONTENT => Ok(Request::UpdateContent {
                contact: self.id()?,
                value: self.value()?,
            }),
            REQUEST_NAMED => match self.named()? {
                Request::UpdateContent { .. } => {
                    Err(malformed("update-content has its own compact form"))
                }
                r => Ok(r),
            },
            other => Err(malformed(format!("unknown request form {other}"))),
        }
    }

    fn public_key(&mut self) -> Result<PublicKey, Error> {
        if self.take(2)? != [0xc4, 32] {
            return Err(malformed("expected a 32-byte public key"));
        }
        Ok(PublicKey(self.be()?))
    }

    fn signature(&mut self) -> Result<Signature, Error> {
        if self.take(2)? != [0xc4, 64] {
            return Err(malformed("expected a 64-byte signature"));
        }
        Ok(Signature(self.be()?))
    }

    /// A key table: sorted by peer, each peer once.
    fn keys(&mut self) -> Result<Vec<(PeerId, PublicKey)>, Error> {
        let n = self.count()?;
        let mut keys = Vec::with_capacity(n.min(self.remaining() / 35));
        for _ in 0..n {
            keys.push((self.uint()?, self.public_key()?));
        }
        if !keys.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(malformed("a key table out of order or with repeats"));
        }
        Ok(keys)
    }

    fn sequenced(&mut self, env_ts: u64) -> Result<Sequenced, Error> {
        let (seq, op, ts) = (self.uint()?, self.op_id()?, self.delta(env_ts)?);
        let command = match self.uint()? {
            COMMAND_PERMIT => {
                let peer = if self.nil()? {
                    None
                } else {
                    Some(self.uint()?)
                };
                Command::Permit(Permit {
                    peer,
                    permission: self.permission()?,
                })
            }
            form => Command::Request(self.request_of_form(form)?),
        };
        Ok(Sequenced {
            seq,
            op,
            ts,
            command,
            sig: self.signature()?,
        })
    }

    fn permission(&mut self) -> Result<Permission, Error> {
        Ok(match self.uint()? {
            0 => Permission::ReadWrite,
            1 => Permission::ReadOnly,
            2 => Permission::Removed,
            other => return Err(malformed(format!("unknown permission {other}"))),
        })
    }

    fn permissions(&mut self) -> Result<Permissions, Error> {
        let default = self.permission()?;
        let n = self.count()?;
        let mut members = Vec::with_capacity(n);
        for _ in 0..n {
            members.push((self.uint()?, self.permission()?));
        }
        let ps = Permissions { default, members };
        if !ps.is_well_formed() {
            return Err(malformed(
                "a permission table out of order, with repeats, or removing everyone",
            ));
        }
        Ok(ps)
    }

    fn op_id(&mut self) -> Result<OpId, Error> {
        Ok(OpId {
            peer: self.uint()?,
            counter: self.uint()?,
        })
    }

    fn decision(&mut self) -> Result<Decision, Error> {
        Ok(match self.uint()? {
            0 => Decision::Applied,
            1 => Decision::Superseded { by: self.op_id()? },
            2 => Decision::Refused {
                reason: self.str()?.to_owned(),
            },
            3 => Decision::Denied {
                permission: self.permission()?,
            },
            other => return Err(malformed(format!("unknown decision {other}"))),
        })
    }

    fn writers(&mut self) -> Result<Vec<Writer>, Error> {
        let n = self.count()?;
        let mut writers = Vec::with_capacity(n);
        for _ in 0..n {
            writers.push(Writer {
                contact: self.id()?,
                op: self.op_id()?,
                ts: self.uint()?,
            });
        }
        Ok(writers)
    }

    fn state_sync(&mut self) -> Result<StateSync, Error> {
        let position = self.position()?;
        let partial = self.bool()?;
        let n = self.count()?;
        let mut applied = Vec::with_capacity(n);
        for _ in 0..n {
            applied.push((self.uint()?, self.uint()?));
        }
        let writers = self.writers()?;
        let n = self.count()?;
        let mut log = Vec::with_capacity(n);
        let mut ts = 0;
        for _ in 0..n {
            let epoch = self.epoch()?;
            let op = self.sequenced(ts)?;
            ts = op.ts;
            log.push(LogEntry {
                epoch,
                op,
                decision: self.decision()?,
            });
        }
        let n = self.count()?;
        let mut lineage = Vec::with_capacity(n);
        for _ in 0..n {
            lineage.push((self.epoch()?, self.uint()?));
        }
        let permissions = self.permissions()?;
        let keys = self.keys()?;
        let document = StateDocument {
            format: self.str()?.to_owned(),
            version: self.uint()?,
            root: self.group(0)?,
        };
        Ok(StateSync {
            position,
            partial,
            applied,
            writers,
            log,
            lineage,
            permissions,
            keys,
            document,
        })
    }

    fn group(&mut self, depth: usize) -> Result<GroupDocument, Error> {
        if depth >= MAX_NESTING {
            return Err(malformed(format!(
                "groups nested deeper than {MAX_NESTING} levels"
            )));
        }
        let id = self.id()?;
        let name = self.opt_str()?;
        let primitive = if self.nil()? {
            None
        } else {
            Some(self.named()?)
        };
        let at = self.point()?;
        let n = self.count()?;
        let mut contacts = Vec::with_capacity(n);
        for _ in 0..n {
            contacts.push(self.contact()?);
        }
        let n = self.count()?;
        let mut wires = Vec::with_capacity(n);
        for _ in 0..n {
            wires.push(self.wire()?);
        }
        let n = self.count()?;
        let mut groups = Vec::with_capacity(n);
        for _ in 0..n {
            groups.push(self.group(depth + 1)?);
        }
        Ok(GroupDocument {
            id,
            name,
            primitive,
            at,
            contacts,
            wires,
            groups,
        })
    }

    fn contact(&mut self) -> Result<ContactDocument, Error> {
        Ok(ContactDocument {
            id: self.id()?,
            name: self.opt_str()?,
            blend: match self.uint()? {
                0 => BlendMode::AcceptLast,
                1 => BlendMode::Merge,
                other => return Err(malformed(format!("unknown blend mode {other}"))),
            },
            value: self.value()?,
            contradiction: if self.nil()? {
                None
            } else {
                self.array(3)?;
                Some(Contradiction {
                    existing: self.value()?,
                    incoming: self.value()?,
                    reason: self.str()?.to_owned(),
                })
            },
            boundary: if self.nil()? {
                None
            } else {
                Some(match self.uint()? {
                    0 => Direction::Input,
                    1 => Direction::Output,
                    other => return Err(malformed(format!("unknown direction {other}"))),
                })
            },
            at: self.point()?,
        })
    }

    fn point(&mut self) -> Result<Option<Point>, Error> {
        if self.nil()? {
            return Ok(None);
        }
        self.array(2)?;
        let mut coordinate =
            || i32::try_from(self.sint()?).map_err(|_| malformed("coordinate out of range"));
        Ok(Some(Point {
            x: coordinate()?,
            y: coordinate()?,
        }))
    }

    fn wire(&mut self) -> Result<WireDocument, Error> {
        Ok(WireDocument {
            id: self.id()?,
            from: self.id()?,
            to: self.id()?,
            kind: match self.uint()? {
                0 => WireKind::Bidirectional,
                1 => WireKind::Directed,
                other => return Err(malformed(format!("unknown wire kind {other}"))),
            },
        })
    }

    fn presence(&mut self) -> Result<Presence, Error> {
        let name = self.opt_str()?;
        let group = if self.nil()? { None } else { Some(self.id()?) };
        let cursor = if self.nil()? {
            None
        } else {
            self.array(2)?;
            Some((self.f32()?, self.f32()?))
        };
        let n = self.count()?;
        let mut selection = Vec::with_capacity(n);
        for _ in 0..n {
            selection.push(self.id()?);
        }
        let peer = if self.nil()? {
            None
        } else {
            Some(self.uint()?)
        };
        Ok(Presence {
            name,
            group,
            cursor,
            selection,
            peer,
        })
    }
}

/// The length in bytes of the one MessagePack value at the start of `buf`, checking that every
/// length it announces fits in `buf` and that containers nest at most [`MAX_NESTING`] deep.
/// Iterative, so hostile nesting cannot overflow the stack.
fn value_len(buf: &[u8]) -> Result<usize, Error> {
    let mut pos = 0usize;
    // Values still to read at each open nesting level.
    let mut pending: Vec<u64> = vec![1];
    let need = |pos: usize, n: usize| -> Result<usize, Error> {
        if n > buf.len() - pos {
            Err(Error::Truncated)
        } else {
            Ok(pos + n)
        }
    };
    let read_len = |pos: usize, width: usize| -> Result<u64, Error> {
        let end = need(pos, width)?;
        Ok(buf[pos..end]
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    };
    while let Some(top) = pending.last_mut() {
        if *top == 0 {
            pending.pop();
            continue;
        }
        *top -= 1;
        let marker = *buf.get(pos).ok_or(Error::Truncated)?;
        pos += 1;
        // Either bytes to skip or a container with this many values inside.
        let (skip, inner) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * u64::from(marker & 0x0f)),
            0x90..=0x9f => (0, u64::from(marker & 0x0f)),
            0xa0..=0xbf => (u64::from(marker & 0x1f), 0),
            0xc4 | 0xd9 => (1 + read_len(pos, 1)?, 0),
            0xc5 | 0xda => (2 + read_len(pos, 2)?, 0),
            0xc6 | 0xdb => (4 + read_len(pos, 4)?, 0),
            0xc7 => (2 + read_len(pos, 1)?, 0),
            0xc8 => (3 + read_len(pos, 2)?, 0),
            0xc9 => (5 + read_len(pos, 4)?, 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => {
                pos = need(pos, 2)?;
                (0, read_len(pos - 2, 2)?)
            }
            0xdd => {
                pos = need(pos, 4)?;
                (0, read_len(pos - 4, 4)?)
            }
            0xde => {
                pos = need(pos, 2)?;
                (0, 2 * read_len(pos - 2, 2)?)
            }
            0xdf => {
                pos = need(pos, 4)?;
                (0, 2 * read_len(pos - 4, 4)?)
            }
            0xc1 => return Err(malformed("reserved MessagePack marker 0xc1")),
        };
        if skip > (buf.len() - pos) as u64 {
            return Err(Error::Truncated);
        }
        pos += skip as usize;
        if inner > 0 {
            if inner > (buf.len() - pos) as u64 {
                return Err(malformed(
                    "a container announces more items than bytes left",
                ));
            }
            if pending.len() > MAX_NESTING {
                return Err(malformed(format!(
                    "values nested deeper than {MAX_NESTING} levels"
                )));
            }
            pending.push(inner);
        }
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_len_measures_and_bounds() {
        let v = rmp_serde::to_vec_named(&serde_json::json!({"a": [1, 2.5, "x", null]})).unwrap();
        let mut with_tail = v.clone();
        with_tail.extend_from_slice(&[1, 2, 3]);
        assert_eq!(value_len(&with_tail), Ok(v.len()));
        // An array of 2^32-1 items in five bytes.
        assert!(value_len(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        // A string longer than the input.
        assert_eq!(value_len(&[0xdb, 0, 0, 1, 0, b'x']), Err(Error::Truncated));
        // Deep nesting is refused without recursion.
        let deep = vec![0x91; 100_000];
        assert!(value_len(&deep).is_err());
        assert!(value_len(&[0xc1]).is_err());
        assert_eq!(value_len(&[]), Err(Error::Truncated));
    }

    #[test]
    fn scalar_values_are_written_as_rmp_serde_writes_them() {
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Number(42.0),
            Value::Number(-7.0),
            Value::Number(300.0),
            Value::Number(-0.0),
            Value::Number(2.5),
            Value::Number(f64::INFINITY),
            Value::Number(1e300),
            Value::String("hello".into()),
            Value::String("x".repeat(40)),
            Value::grow_set([Value::Number(1.0)]),
        ];
        for v in values {
            let mut ours = Vec::new();
            value(&mut ours, &v).unwrap();
            assert_eq!(ours, rmp_serde::to_vec_named(&v).unwrap(), "{v:?}");
            let mut r = Reader { buf: &ours, pos: 0 };
            assert_eq!(r.value().unwrap(), v);
            assert_eq!(r.pos, ours.len());
        }
        // Other integer and float widths that another encoder might pick also decode.
        let f32_bytes = rmp_serde::to_vec(&1.5f32).unwrap();
        assert_eq!(
            Reader {
                buf: &f32_bytes,
                pos: 0
            }
            .value(),
            Ok(Value::Number(1.5))
        );
    }

    #[test]
    fn integers_take_their_shortest_form_and_round_trip() {
        for v in [
            0,
            1,
            127,
            128,
            255,
            256,
            65_535,
            65_536,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            uint(&mut out, v);
            assert_eq!(Reader { buf: &out, pos: 0 }.uint(), Ok(v));
        }
        for v in [
            0,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32_768,
            -32_769,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            sint(&mut out, v);
            assert_eq!(Reader { buf: &out, pos: 0 }.sint(), Ok(v));
            let via_rmp: i64 = rmp_serde::from_slice(&out).unwrap();
            assert_eq!(via_rmp, v, "our integers are standard MessagePack");
        }
        let mut out = Vec::new();
        uint(&mut out, 999);
        assert_eq!(out.len(), 3);
    }
}
