//! Joining by room code + password on the signaling path: the PAKE runs of
//! [`bassline_signal::room_pake`] on tokio's clock. The logic lives in the wasm-clean signal
//! crate so the browser editor drives the very same code; this module keeps net's names.
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

pub use bassline_signal::room_pake::{
    GUEST_WAIT, HOST_WAIT, HostStep, PakeRole, pake_role, password_share, read_password_share,
};
use tokio::time::Instant;

/// The host's runs in flight, on tokio's clock.
pub type HostRuns = bassline_signal::room_pake::HostRuns<Instant>;

/// A guest's run, on tokio's clock.
pub type GuestRun = bassline_signal::room_pake::GuestRun<Instant>;

#[cfg(test)]
mod tests {
    use bassline_signal::RejectReason;
    use bassline_trust::{GuessLimiter, RoomKey, abort_message, pake_message_to_text};
    use std::time::Duration;

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
