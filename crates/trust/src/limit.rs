//! The host's own bound on password guessing.
//!
//! Each PAKE run lets whoever plays the guest test exactly one password. The signaling server's
//! failed-join limit (10 a minute per address) bounds guessing by strangers, but the signaling
//! operator can open as many runs as it likes, so the host bounds failed runs per room itself.
//! Sans-IO: the caller passes the time (milliseconds on any monotonic clock).
//!
//! ```
//! use bassline_trust::GuessLimiter;
//! let mut limit = GuessLimiter::new(2, 60_000);
//! limit.check(0).unwrap();
//! limit.record_failure(0);
//! limit.record_failure(1_000);
//! assert!(limit.check(2_000).is_err()); // two failures in the last minute: refuse runs
//! assert!(limit.check(60_000).is_ok()); // the first one aged out
//! ```

use std::collections::VecDeque;

use crate::Error;

/// Failed PAKE runs a host allows per window by default (the signaling server's per-address
/// figure).
pub const DEFAULT_MAX_FAILURES: usize = 10;

/// The default window: one minute.
pub const DEFAULT_WINDOW_MS: u64 = 60_000;

/// Counts a room's failed PAKE runs in a sliding window and refuses new runs while the window is
/// full. Memory: one timestamp per allowed failure.
#[derive(Debug, Clone)]
pub struct GuessLimiter {
    failures: VecDeque<u64>,
    max_failures: usize,
    window_ms: u64,
}

impl Default for GuessLimiter {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FAILURES, DEFAULT_WINDOW_MS)
    }
}

impl GuessLimiter {
    /// At most `max_failures` (at least 1) failed runs within any `window_ms`.
    pub fn new(max_failures: usize, window_ms: u64) -> Self {
        Self {
            failures: VecDeque::new(),
            max_failures: max_failures.max(1),
            window_ms,
        }
    }

    /// Whether a new run may start at `now_ms`; call before [`crate::HostPake::handle_hello`]
    /// and answer the guest with the error (it says when to retry) when not.
    pub fn check(&mut self, now_ms: u64) -> Result<(), Error> {
        self.forget_before(now_ms);
        match self.failures.front() {
            Some(&oldest) if self.failures.len() >= self.max_failures => {
                Err(Error::TooManyGuesses {
                    retry_after_ms: (oldest.saturating_add(self.window_ms)).saturating_sub(now_ms),
                })
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed run (any `Err` from the host's side of the PAKE, or a guest that never
    /// confirmed before the driver's timeout).
    pub fn record_failure(&mut self, now_ms: u64) {
        self.forget_before(now_ms);
        if self.failures.len() == self.max_failures {
            self.failures.pop_front();
        }
        self.failures.push_back(now_ms);
    }

    fn forget_before(&mut self, now_ms: u64) {
        while let Some(&t) = self.failures.front() {
            if t.saturating_add(self.window_ms) <= now_ms {
                self.failures.pop_front();
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_while_the_window_is_full_and_says_when_to_retry() {
        let mut l = GuessLimiter::new(3, 1_000);
        for t in [0, 100, 200] {
            assert_eq!(l.check(t), Ok(()));
            l.record_failure(t);
        }
        assert_eq!(
            l.check(300),
            Err(Error::TooManyGuesses {
                retry_after_ms: 700
            })
        );
        assert_eq!(l.check(1_000), Ok(()));
        l.record_failure(1_000);
        assert_eq!(
            l.check(1_050),
            Err(Error::TooManyGuesses { retry_after_ms: 50 })
        );
    }

    #[test]
    fn memory_stays_bounded_and_time_going_backwards_does_not_panic() {
        let mut l = GuessLimiter::new(4, 1_000);
        for t in 0..10_000 {
            l.record_failure(t);
            assert!(l.failures.len() <= 4);
        }
        assert!(l.check(0).is_err());
        // A clock that jumps back still refuses; the edges of the clock do not overflow.
        assert!(l.check(5).is_err());
        let _ = l.check(u64::MAX);
        l.record_failure(u64::MAX);
        let _ = l.check(0);
    }
}
