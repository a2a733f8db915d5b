//! Joining by room code + password on the signaling path, without I/O: the host's and the
//! guest's side of [`bassline_trust`]'s PAKE, driven by the P2P transport with `pake` messages.
//!
//! The server only relays the messages (it never sees the password): a guest whose `joined`
//! says `pake` sends a hello to the host the server names, the host replies with the room key
//! sealed under the password, and the guest confirms (or aborts). A run is bound to the room
//! code and both signaling peer ids, as [`crate::room_auth`] binds offers and answers.
//!
//! The host answers one run per guest at a time (a new hello from the same guest replaces its
//! run, counted as a failure so restarting cannot buy free guesses), bounds failed runs per
//! room with a [`GuessLimiter`] and, once it is full, refuses hellos without computing
//! anything. Every failure (wrong password, abort, garbage, no confirmation in time) becomes a
//! `reject`, so the server also counts it against the guest's address.
//!
//! The clock is the caller's: any moment type that adds a [`Duration`] and subtracts to one
//! (tokio's instants natively, `performance.now()` as a `Duration` in the browser), so the
//! native transport and the browser run this very code.
//!
//! ```
//! use bassline_signal::room_pake::{GuestRun, HostRuns, HostStep};
//! use bassline_trust::RoomKey;
//! use std::time::Duration;
//! let key = RoomKey::from_bytes([7; 32]);
//! let now = Duration::from_secs(1);
//! let mut host = HostRuns::default();
//! let (guest, hello) = GuestRun::start(now, "A3B7K9", 2, 1, "hunter2", [1; 32]);
//! let HostStep::Reply(reply) = host.on_message(now, "A3B7K9", 1, 2, "hunter2", &key, &hello, [2; 32]) else { panic!() };
//! let (got, confirm) = guest.on_reply(&reply).unwrap();
//! assert!(got == key);
//! assert!(matches!(host.on_message(now, "A3B7K9", 1, 2, "hunter2", &key, &confirm, [3; 32]), HostStep::Admitted));
//! ```

use std::{
    collections::HashMap,
    fmt::Debug,
    ops::{Add, Sub},
    time::Duration,
};

use crate::RejectReason;
use bassline_trust::{
    Error, GuessLimiter, GuestPake, HostPake, PAKE_SEED_LEN, PakeContext, RoomKey, abort_message,
    pake_message_from_text, pake_message_is_hello, pake_message_to_text,
};

/// A point in time on the caller's clock: later points compare greater, adding a
/// [`Duration`] moves forward, and subtracting an earlier point gives the time between (an
/// earlier minus a later point is never asked for: see [`HostRuns`]).
pub trait Moment:
    Copy + Ord + Debug + Add<Duration, Output = Self> + Sub<Self, Output = Duration>
{
}

impl<T> Moment for T where
    T: Copy + Ord + Debug + Add<Duration, Output = T> + Sub<T, Output = Duration>
{
}

/// How long a guest waits for the host's reply before saying the host does not answer.
pub const GUEST_WAIT: Duration = Duration::from_secs(10);

/// How long a host waits for a guest's confirmation before counting the run as failed.
pub const HOST_WAIT: Duration = Duration::from_secs(15);

/// The `pake` message (text) handing `password` from member `me` to member `to`, sealed under
/// the room key (see [`bassline_trust::seal_password_share`]): sent in a PAKE room to a member
/// whose signed offer or answer proved it holds the key, so whoever is elected host later can
/// answer password joins. `None` for a password too long to share (it stays with the members
/// who typed it). `nonce` must be fresh random bytes.
pub fn password_share(
    code: &str,
    me: u64,
    to: u64,
    key: &RoomKey,
    password: &str,
    nonce: [u8; 12],
) -> Option<String> {
    let ctx = PakeContext {
        room_code: code,
        guest: to,
        host: me,
    };
    bassline_trust::seal_password_share(&ctx, key, password, nonce)
        .ok()
        .map(|share| pake_message_to_text(&share))
}

/// What a `pake` message is, read before [`pake_role`]: `Some` when it is a password share,
/// then what it holds for us (`Ok(password)`, or why not: sealed under another key, for other
/// peers, altered); `None` when it belongs to a PAKE run.
pub fn read_password_share(
    code: &str,
    me: u64,
    from: u64,
    key: Option<&RoomKey>,
    data: &str,
) -> Option<Result<String, Error>> {
    let bytes = pake_message_from_text(data).ok()?;
    if !bassline_trust::pake_message_is_share(&bytes) {
        return None;
    }
    let Some(key) = key else {
        return Some(Err(Error::BadMac));
    };
    let ctx = PakeContext {
        room_code: code,
        guest: me,
        host: from,
    };
    Some(bassline_trust::open_password_share(&ctx, key, &bytes))
}

/// Who a peer is for a `pake` message it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PakeRole {
    /// The reply to our own run.
    Guest,
    /// A guest's message to us, the host.
    Host,
    /// Nothing to do with us: not from the host we run with, and we are not the server's
    /// host (or cannot answer, lacking the key or the password).
    Ignore,
}

/// Decides [`PakeRole`] for a message from `from`: `awaiting` is the host our run waits for,
/// `me` our signaling id, `server_host` the host the server names, `can_answer` whether we
/// hold both the room key and the password. A member never answers a hello unless the server
/// names it host, so guests cannot be made to test passwords for someone else.
pub fn pake_role(
    awaiting: Option<u64>,
    from: u64,
    me: Option<u64>,
    server_host: Option<u64>,
    can_answer: bool,
) -> PakeRole {
    if awaiting == Some(from) {
        PakeRole::Guest
    } else if can_answer && me.is_some() && me == server_host && Some(from) != me {
        PakeRole::Host
    } else {
        PakeRole::Ignore
    }
}

/// What the host does with a `pake` message.
#[derive(Debug, PartialEq, Eq)]
pub enum HostStep {
    /// Send this reply (text) to the guest.
    Reply(String),
    /// The guest confirmed: it holds the room key now, and its signed offers will verify.
    Admitted,
    /// The run failed: send `reject` with this reason.
    Reject(RejectReason),
    /// A stray message (a confirmation for no run): nothing to do.
    Ignore,
}

/// The host's runs in flight, and its bound on failed ones.
#[derive(Debug)]
pub struct HostRuns<I> {
    runs: HashMap<u64, (HostPake, I)>,
    limiter: GuessLimiter,
    /// The limiter's clock starts here: the first moment we were told of.
    epoch: Option<I>,
}

impl<I: Moment> Default for HostRuns<I> {
    fn default() -> Self {
        Self::new(GuessLimiter::default())
    }
}

impl<I: Moment> HostRuns<I> {
    /// Runs bounded by `limiter`.
    pub fn new(limiter: GuessLimiter) -> Self {
        HostRuns {
            runs: HashMap::new(),
            limiter,
            epoch: None,
        }
    }

    /// Milliseconds since the first moment we saw, for the limiter (whose clock is a `u64`).
    fn ms(&mut self, now: I) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        if now <= epoch {
            return 0;
        }
        u64::try_from((now - epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Counts a failed run and says how to refuse it: too many attempts once the limiter is
    /// full.
    fn failed(&mut self, now: I) -> RejectReason {
        let ms = self.ms(now);
        self.limiter.record_failure(ms);
        match self.limiter.check(ms) {
            Ok(()) => RejectReason::WrongPassword,
            Err(_) => RejectReason::TooManyAttempts,
        }
    }

    /// A `pake` message `data` from guest `from` to this host (`me`) of room `code`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_message(
        &mut self,
        now: I,
        code: &str,
        me: u64,
        from: u64,
        password: &str,
        key: &RoomKey,
        data: &str,
        seed: [u8; PAKE_SEED_LEN],
    ) -> HostStep {
        let Ok(msg) = pake_message_from_text(data) else {
            // Unreadable: it ends the guest's run if it has one, else it is stray.
            if self.runs.remove(&from).is_none() {
                return HostStep::Ignore;
            }
            return HostStep::Reject(self.failed(now));
        };
        if !pake_message_is_hello(&msg) {
            let Some((run, _)) = self.runs.remove(&from) else {
                return HostStep::Ignore;
            };
            return match run.handle_confirm(&msg) {
                Ok(()) => HostStep::Admitted,
                Err(_) => HostStep::Reject(self.failed(now)),
            };
        }
        if self.runs.remove(&from).is_some() {
            // The guest started again (a reconnect): the old run still let it test a password.
            self.failed(now);
        }
        let ms = self.ms(now);
        if self.limiter.check(ms).is_err() {
            return HostStep::Reject(RejectReason::TooManyAttempts);
        }
        let ctx = PakeContext {
            room_code: code,
            guest: from,
            host: me,
        };
        match HostPake::handle_hello(&ctx, password, key, &msg, seed) {
            Ok((run, reply)) => {
                self.runs.insert(from, (run, now + HOST_WAIT));
                HostStep::Reply(pake_message_to_text(&reply))
            }
            Err(_) => HostStep::Reject(self.failed(now)),
        }
    }

    /// Runs whose guest did not confirm in time: each is a failure to refuse.
    pub fn expire(&mut self, now: I) -> Vec<(u64, RejectReason)> {
        let due: Vec<u64> = self
            .runs
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now)
            .map(|(p, _)| *p)
            .collect();
        let mut out = Vec::new();
        for p in due {
            self.runs.remove(&p);
            out.push((p, self.failed(now)));
        }
        out.sort_by_key(|(p, _)| *p);
        out
    }

    /// When [`HostRuns::expire`] has work next.
    pub fn next_deadline(&self) -> Option<I> {
        self.runs.values().map(|(_, d)| *d).min()
    }

    /// The guest left the room: its run ends without counting.
    pub fn forget(&mut self, peer: u64) {
        self.runs.remove(&peer);
    }

    /// Runs in flight.
    pub fn in_flight(&self) -> usize {
        self.runs.len()
    }
}

/// A guest's run, between its hello and the host's reply.
#[derive(Debug)]
pub struct GuestRun<I> {
    pake: GuestPake,
    /// The host it ran with (the server's host when the run started).
    pub host: u64,
    /// When to give up waiting for the reply.
    pub deadline: I,
}

impl<I: Moment> GuestRun<I> {
    /// Starts a run of guest `me` with `host` in room `code`; returns it and the hello (text).
    pub fn start(
        now: I,
        code: &str,
        me: u64,
        host: u64,
        password: &str,
        seed: [u8; PAKE_SEED_LEN],
    ) -> (Self, String) {
        let ctx = PakeContext {
            room_code: code,
            guest: me,
            host,
        };
        let (pake, hello) = GuestPake::start(&ctx, password, seed);
        (
            GuestRun {
                pake,
                host,
                deadline: now + GUEST_WAIT,
            },
            pake_message_to_text(&hello),
        )
    }

    /// The host's reply: the room key and the confirmation to send, or why not and the abort
    /// to send (so the host counts the failure at once).
    pub fn on_reply(self, data: &str) -> Result<(RoomKey, String), (Error, String)> {
        let abort = || pake_message_to_text(&abort_message());
        let reply = pake_message_from_text(data).map_err(|e| (e, abort()))?;
        match self.pake.handle_reply(&reply) {
            Ok(joined) => Ok((joined.room_key, pake_message_to_text(&joined.confirm))),
            Err(e) => Err((e, abort())),
        }
    }
}
