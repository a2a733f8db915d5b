//! The mesh's rules, without I/O: who offers to whom, and when to try again. Shared by the
//! native transport (`bassline-net`) and the browser's (`bassline-web`), so a browser and a
//! native peer agree on who offers.
//!
//! Every member links to every other. Of two members, the one with the **higher member
//! number** offers and the other answers; numbers are unique in a room and a newcomer always
//! has the highest, so a newcomer dials everyone already there, and two peers never both offer.
//! The offering side also redials after a link fails, with exponential backoff and jitter.
//!
//! ```
//! use std::time::Duration;
//! use bassline_signal::mesh::{Backoff, offers};
//! assert!(offers(3, 1) && !offers(1, 3));
//! let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), 7);
//! let first = b.next_delay();
//! assert!(first >= Duration::from_millis(50) && first < Duration::from_millis(150));
//! ```

use std::time::Duration;

use crate::MemberNumber;

/// A member number (the session's peer id).
type PeerId = MemberNumber;

/// The claim to send in `join-room.reclaim` after the server lost our place: only a member
/// that held a number (`me`) and holds the room key reclaims (a room's links are protected by
/// its key; without one the server checked its password, and a room re-created by a reclaim
/// would be open). `highest` is the highest member number seen in the room, so newcomers are
/// numbered above every old member.
pub fn reclaim(
    me: Option<PeerId>,
    keyed: bool,
    highest: PeerId,
    pake: bool,
) -> Option<crate::Reclaim> {
    let me = me.filter(|_| keyed)?;
    Some(crate::Reclaim {
        number: me,
        next: highest.max(me) + 1,
        pake,
    })
}

/// Whether `me` sends the offer on the link to `peer`.
pub fn offers(me: PeerId, peer: PeerId) -> bool {
    me > peer
}

/// Exponential backoff with jitter: delays double from `base` up to `max`, each scaled by a
/// random factor in [0.5, 1.5) so peers that failed together do not retry together.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    next: Duration,
    rng: u64,
    attempt: u32,
}

impl Backoff {
    /// A backoff seeded with `seed` (the driver passes something random; tests a constant).
    pub fn new(base: Duration, max: Duration, seed: u64) -> Self {
        Backoff {
            base,
            max,
            next: base,
            rng: seed | 1,
            attempt: 0,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jitter = 0.5 + (self.rng % 1000) as f64 / 1000.0;
        let d = self.next.mul_f64(jitter);
        self.next = (self.next * 2).min(self.max);
        self.attempt += 1;
        d
    }

    /// Attempts made since the last success.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A success: the next failure starts from `base` again.
    pub fn reset(&mut self) {
        self.next = self.base;
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_side_of_every_pair_offers() {
        for a in 1..10u64 {
            for b in 1..10u64 {
                if a != b {
                    assert!(offers(a, b) != offers(b, a), "{a} {b}");
                }
            }
        }
    }

    #[test]
    fn delays_double_with_jitter_up_to_the_cap_and_reset() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        let mut b = Backoff::new(base, max, 42);
        let mut nominal = base;
        for _ in 0..10 {
            let d = b.next_delay();
            assert!(
                d >= nominal / 2 && d < nominal.mul_f64(1.5),
                "{d:?} vs {nominal:?}"
            );
            nominal = (nominal * 2).min(max);
        }
        assert_eq!(b.attempt(), 10);
        b.reset();
        assert!(b.next_delay() < base.mul_f64(1.5));
        // Two peers with different seeds do not retry in lockstep.
        let mut x = Backoff::new(base, max, 1);
        let mut y = Backoff::new(base, max, 2);
        assert!((0..5).any(|_| x.next_delay() != y.next_delay()));
    }
}
