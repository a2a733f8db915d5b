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
//! ```
//! use bassline_net::room_pake::{GuestRun, HostRuns, HostStep};
//! use bassline_trust::RoomKey;
//! use tokio::time::Instant;
//! let key = RoomKey::from_bytes([7; 32]);
//! let now = Instant::now();
//! let mut host = HostRuns::default();
//! let (guest, hello) = GuestRun::start(now, "A3B7K9", 2, 1, "hunter2", [1; 32]);
//! let HostStep::Reply(reply) = host.on_message(now, "A3B7K9", 1, 2, "hunter2", &key, &hello, [2; 32]) else { panic!() };
//! let (got, confirm) = guest.on_reply(&reply).unwrap();
//! assert!(got == key);
//! assert!(matches!(host.on_message(now, "A3B7K9", 1, 2, "hunter2", &key, &confirm, [3; 32]), HostStep::Admitted));
//! ```

use std::{collections::HashMap, time::Duration};

use bassline_signal::RejectReason;
use bassline_trust::{
    Error, GuessLimiter, GuestPake, HostPake, PAKE_SEED_LEN, PakeContext, RoomKey, abort_message,
    pake_message_from_text, pake_message_is_hello, pake_message_to_text,
};
use tokio::time::Instant;

/// How long a guest waits for the host's reply before saying the host does not answer.
pub const GUEST_WAIT: Duration = Duration::from_secs(10);

/// How long a host waits for a guest's confirmation before counting the run as failed.
pub const HOST_WAIT: Duration = Duration::from_secs(15);

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
pub struct HostRuns {
    runs: HashMap<u64, (HostPake, Instant)>,
    limiter: GuessLimiter,
    /// The limiter's clock starts here.
    epoch: Instant,
}

impl Default for HostRuns {
    fn default() -> Self {
        Self::new(GuessLimiter::default())
    }
}

impl HostRuns {
    /// Runs bounded by `limiter`.
    pub fn new(limiter: GuessLimiter) -> Self {
        HostRuns {
            runs: HashMap::new(),
            limiter,
            epoch: Instant::now(),
        }
    }

    fn ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Counts a failed run and says how to refuse it: too many attempts once the limiter is
    /// full.
    fn failed(&mut self, now: Instant) -> RejectReason {
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
        now: Instant,
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
        if self.limiter.check(self.ms(now)).is_err() {
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
    pub fn expire(&mut self, now: Instant) -> Vec<(u64, RejectReason)> {
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
    pub fn next_deadline(&self) -> Option<Instant> {
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
pub struct GuestRun {
    pake: GuestPake,
    /// The host it ran with (the server's host when the run started).
    pub host: u64,
    /// When to give up waiting for the reply.
    pub deadline: Instant,
}

impl GuestRun {
    /// Starts a run of guest `me` with `host` in room `code`; returns it and the hello (text).
    pub fn start(
        now: Instant,
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

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "A3B7K9";
    const HOST: u64 = 0x11;

    fn key() -> RoomKey {
        RoomKey::from_bytes([9; 32])
    }

    /// One whole run of guest `guest` with `password` against a host whose password is
    /// "right": what the guest ends with, and the host's last step.
    fn run(
        host: &mut HostRuns,
        now: Instant,
        guest: u64,
        password: &str,
    ) -> (Option<RoomKey>, HostStep) {
        let (g, hello) = GuestRun::start(now, CODE, guest, HOST, password, [guest as u8; 32]);
        let reply = match host.on_message(now, CODE, HOST, guest, "right", &key(), &hello, [5; 32])
        {
            HostStep::Reply(r) => r,
            other => return (None, other),
        };
        let (got, last) = match g.on_reply(&reply) {
            Ok((k, confirm)) => (Some(k), confirm),
            Err((_, abort)) => (None, abort),
        };
        let step = host.on_message(now, CODE, HOST, guest, "right", &key(), &last, [6; 32]);
        (got, step)
    }

    #[test]
    fn only_the_servers_host_holding_key_and_password_answers() {
        use PakeRole::*;
        // The host.
        assert_eq!(pake_role(None, 5, Some(1), Some(1), true), Host);
        // A member the server does not name host never answers, key or not.
        assert_eq!(pake_role(None, 5, Some(2), Some(1), true), Ignore);
        assert_eq!(pake_role(None, 5, None, None, true), Ignore);
        // The host without the key or the password cannot.
        assert_eq!(pake_role(None, 5, Some(1), Some(1), false), Ignore);
        // Our own run's reply comes from the host we run with, and only from it.
        assert_eq!(pake_role(Some(1), 1, Some(2), Some(1), false), Guest);
        assert_eq!(pake_role(Some(1), 3, Some(2), Some(1), false), Ignore);
        // After a host change the new host answers (a guest that took over).
        assert_eq!(pake_role(None, 5, Some(2), Some(2), true), Host);
        // Never to ourselves.
        assert_eq!(pake_role(None, 1, Some(1), Some(1), true), Ignore);
    }

    #[test]
    fn the_right_password_hands_over_the_key_and_a_wrong_one_is_rejected() {
        let mut host = HostRuns::default();
        let now = Instant::now();
        let (got, step) = run(&mut host, now, 2, "right");
        assert!(got == Some(key()));
        assert_eq!(step, HostStep::Admitted);
        let (got, step) = run(&mut host, now, 3, "wrong");
        assert!(got.is_none());
        assert_eq!(step, HostStep::Reject(RejectReason::WrongPassword));
        assert_eq!(host.in_flight(), 0);
    }

    #[test]
    fn concurrent_runs_of_different_guests_do_not_mix() {
        let mut host = HostRuns::default();
        let now = Instant::now();
        let (a, hello_a) = GuestRun::start(now, CODE, 2, HOST, "right", [2; 32]);
        let (b, hello_b) = GuestRun::start(now, CODE, 3, HOST, "right", [3; 32]);
        let HostStep::Reply(reply_a) =
            host.on_message(now, CODE, HOST, 2, "right", &key(), &hello_a, [4; 32])
        else {
            panic!("a reply")
        };
        let HostStep::Reply(reply_b) =
            host.on_message(now, CODE, HOST, 3, "right", &key(), &hello_b, [5; 32])
        else {
            panic!("a reply")
        };
        assert_eq!(host.in_flight(), 2);
        // Each reply is bound to its guest: swapped, neither opens.
        let (a2, _) = GuestRun::start(now, CODE, 2, HOST, "right", [2; 32]);
        assert!(a2.on_reply(&reply_b).is_err());
        let (_, confirm_b) = b.on_reply(&reply_b).unwrap();
        let (_, confirm_a) = a.on_reply(&reply_a).unwrap();
        let step = |h: &mut HostRuns, from, c: &str| {
            h.on_message(now, CODE, HOST, from, "right", &key(), c, [6; 32])
        };
        assert_eq!(step(&mut host, 3, &confirm_b), HostStep::Admitted);
        assert_eq!(step(&mut host, 2, &confirm_a), HostStep::Admitted);
        // A confirmation for no run is stray.
        assert_eq!(step(&mut host, 2, &confirm_a), HostStep::Ignore);
    }

    #[test]
    fn garbage_timeouts_and_restarts_count_as_failures() {
        let mut host = HostRuns::new(GuessLimiter::new(100, 60_000));
        let now = Instant::now();
        let step = |h: &mut HostRuns, from, data: &str| {
            h.on_message(now, CODE, HOST, from, "right", &key(), data, [1; 32])
        };
        // Outside a run, what is not a hello is stray; a broken hello is a failed run.
        for junk in ["", "!!!", "EwAB", &"A".repeat(300)] {
            assert_eq!(step(&mut host, 2, junk), HostStep::Ignore, "{junk:?}");
        }
        assert_eq!(
            step(&mut host, 2, "EQ"),
            HostStep::Reject(RejectReason::WrongPassword)
        );
        // Inside a run, anything but the right confirmation fails it.
        let (_, hello) = GuestRun::start(now, CODE, 2, HOST, "right", [2; 32]);
        for junk in ["!!!", "EwAB", "FA"] {
            assert!(matches!(step(&mut host, 2, &hello), HostStep::Reply(_)));
            assert_eq!(
                step(&mut host, 2, junk),
                HostStep::Reject(RejectReason::WrongPassword),
                "{junk:?}"
            );
        }
        let (_, hello) = GuestRun::start(now, CODE, 3, HOST, "right", [3; 32]);
        assert!(matches!(
            host.on_message(now, CODE, HOST, 3, "right", &key(), &hello, [4; 32]),
            HostStep::Reply(_)
        ));
        assert_eq!(host.next_deadline(), Some(now + HOST_WAIT));
        assert!(host.expire(now + HOST_WAIT / 2).is_empty());
        assert_eq!(
            host.expire(now + HOST_WAIT),
            vec![(3, RejectReason::WrongPassword)]
        );
        // A restarted run replaces the old one (and the old one counts).
        let mut small = HostRuns::new(GuessLimiter::new(2, 60_000));
        let (_, hello) = GuestRun::start(now, CODE, 4, HOST, "right", [4; 32]);
        for _ in 0..2 {
            assert!(matches!(
                small.on_message(now, CODE, HOST, 4, "right", &key(), &hello, [4; 32]),
                HostStep::Reply(_)
            ));
        }
        assert_eq!(small.in_flight(), 1);
        let (_, step) = run(&mut small, now, 5, "wrong");
        assert_eq!(step, HostStep::Reject(RejectReason::TooManyAttempts));
    }

    #[test]
    fn after_the_limit_hellos_are_refused_without_a_reply_until_the_window_passes() {
        let mut host = HostRuns::new(GuessLimiter::new(3, 60_000));
        let now = Instant::now();
        let reasons: Vec<HostStep> = (0..3)
            .map(|g| run(&mut host, now, 10 + g, "wrong").1)
            .collect();
        assert_eq!(
            reasons,
            vec![
                HostStep::Reject(RejectReason::WrongPassword),
                HostStep::Reject(RejectReason::WrongPassword),
                HostStep::Reject(RejectReason::TooManyAttempts),
            ]
        );
        // Even the right password gets no reply now: nothing is computed, nothing learnt.
        let (got, step) = run(&mut host, now, 20, "right");
        assert!(got.is_none());
        assert_eq!(step, HostStep::Reject(RejectReason::TooManyAttempts));
        let later = now + Duration::from_secs(61);
        let (got, step) = run(&mut host, later, 21, "right");
        assert!(got == Some(key()));
        assert_eq!(step, HostStep::Admitted);
    }

    #[test]
    fn a_guest_gives_up_on_an_unreadable_reply_with_an_abort() {
        let now = Instant::now();
        let (g, _) = GuestRun::start(now, CODE, 2, HOST, "right", [2; 32]);
        assert_eq!(g.deadline, now + GUEST_WAIT);
        let (_, abort) = g.on_reply("not base64!").unwrap_err();
        assert_eq!(abort, pake_message_to_text(&abort_message()));
    }
}
