//! ICE servers handed to each peer in `welcome`, with per-peer time-limited TURN credentials.
//!
//! The TURN REST API scheme (coturn's `use-auth-secret` + `static-auth-secret`): the username is
//! `"<expiry unix time>:<peer id>"` and the password is `base64(HMAC-SHA1(secret, username))`.
//! The TURN server recomputes the same HMAC, so it needs no per-user state, and a browser never
//! holds a password that outlives `ttl`.
//!
//! ```
//! use bassline_signal::ice::turn_credentials;
//! let (user, pass) = turn_credentials(b"s3cret", 1_700_000_000, "0000000000000007");
//! assert_eq!(user, "1700000000:0000000000000007");
//! assert_eq!(pass.len(), 28); // base64 of 20 bytes
//! ```

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::{IceServer, PeerId};

/// STUN/TURN configuration.
#[derive(Clone, Default)]
pub struct IceConfig {
    /// `stun:` URLs, handed out as they are.
    pub stun_urls: Vec<String>,
    /// `turn:`/`turns:` URLs; they get credentials only when `turn_secret` is set.
    pub turn_urls: Vec<String>,
    /// The secret shared with the TURN server (coturn `static-auth-secret`).
    pub turn_secret: Option<String>,
    /// How long issued TURN credentials stay valid.
    pub turn_ttl: Duration,
}

impl std::fmt::Debug for IceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceConfig")
            .field("stun_urls", &self.stun_urls)
            .field("turn_urls", &self.turn_urls)
            .field(
                "turn_secret",
                &self.turn_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("turn_ttl", &self.turn_ttl)
            .finish()
    }
}

impl IceConfig {
    /// The ICE servers for `peer`, with TURN credentials expiring `turn_ttl` after `unix_now`.
    pub fn servers_for(&self, peer: PeerId, unix_now: u64) -> Vec<IceServer> {
        let mut out = Vec::new();
        if !self.stun_urls.is_empty() {
            out.push(IceServer {
                urls: self.stun_urls.clone(),
                username: None,
                credential: None,
            });
        }
        if let (false, Some(secret)) = (self.turn_urls.is_empty(), &self.turn_secret) {
            let expiry = unix_now.saturating_add(self.turn_ttl.as_secs());
            let (username, credential) =
                turn_credentials(secret.as_bytes(), expiry, &peer.to_string());
            out.push(IceServer {
                urls: self.turn_urls.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        out
    }
}

/// TURN REST API credentials: `(username, password)` for `user` valid until `expiry_unix`.
pub fn turn_credentials(secret: &[u8], expiry_unix: u64, user: &str) -> (String, String) {
    let username = format!("{expiry_unix}:{user}");
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_matches_independent_hmac() {
        // Expected value computed with Python's hmac/hashlib/base64, not with this code.
        let (user, pass) = turn_credentials(b"northern-lights", 1600, "0000000000000abc");
        assert_eq!(user, "1600:0000000000000abc");
        assert_eq!(pass, "VJeYYPF4k9/SZ+md/K6gpFTd0Cc=");
    }

    #[test]
    fn servers_for_issues_expiring_turn_credentials() {
        let cfg = IceConfig {
            stun_urls: vec!["stun:127.0.0.1:3478".into()],
            turn_urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            turn_secret: Some("northern-lights".into()),
            turn_ttl: Duration::from_secs(600),
        };
        let servers = cfg.servers_for(PeerId(0xabc), 1_000);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].username, None);
        assert_eq!(
            servers[1].username.as_deref(),
            Some("1600:0000000000000abc")
        );
        assert_eq!(
            servers[1].credential.as_deref(),
            Some("VJeYYPF4k9/SZ+md/K6gpFTd0Cc=")
        );
        assert!(!format!("{cfg:?}").contains("northern-lights"));
    }

    #[test]
    fn no_secret_means_no_turn_entry() {
        let cfg = IceConfig {
            turn_urls: vec!["turn:127.0.0.1".into()],
            ..IceConfig::default()
        };
        assert!(cfg.servers_for(PeerId(1), 0).is_empty());
    }
}
