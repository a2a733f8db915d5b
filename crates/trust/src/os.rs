//! The one place this crate reads the operating system's random generator, for drivers that
//! want a room key, a PAKE seed or a nonce without bringing their own. Everything else takes its
//! randomness as arguments, so tests and the simulator stay deterministic.

use crate::Error;

/// `N` bytes from the OS generator (`crypto.getRandomValues` in a browser).
pub fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| Error::Random(e.to_string()))?;
    Ok(out)
}
