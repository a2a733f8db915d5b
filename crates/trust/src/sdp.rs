//! DTLS certificate fingerprints read from an SDP offer or answer (`a=fingerprint:`, RFC 8122).
//!
//! The parser errs on the side of seeing too many fingerprints, never too few: what protects the
//! connection is that every fingerprint the DTLS stack might accept was signed by the sender, so
//! a line the stack would read but this parser skipped would be a hole. Hence any line that
//! mentions `fingerprint` must be a well-formed fingerprint attribute, lines may end in `\r\n`,
//! `\n` or a lone `\r`, and attribute names and hex digits are matched in any case.

use core::fmt;

use crate::Error;

/// The largest SDP read, in bytes (the signaling server's frame cap).
pub const MAX_SDP_BYTES: usize = 64 * 1024;

/// The most distinct fingerprints one SDP may carry (a session has one certificate, sometimes
/// hashed twice).
pub const MAX_FINGERPRINTS: usize = 8;

/// The longest hash function name (`sha-512` is 7).
const MAX_ALGORITHM_LEN: usize = 16;

/// The longest digest (SHA-512).
pub(crate) const MAX_DIGEST_LEN: usize = 64;

const WHAT: &str = "SDP fingerprint";

/// One certificate fingerprint: the hash function's name (lower-case, as in the IANA registry)
/// and the digest bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint {
    algorithm: String,
    digest: Vec<u8>,
}

impl Fingerprint {
    /// A fingerprint from its parts; the name is lower-cased and both are checked as
    /// [`Fingerprint::parse`] checks them.
    pub fn new(algorithm: &str, digest: &[u8]) -> Result<Self, Error> {
        let algorithm = algorithm.to_ascii_lowercase();
        if algorithm.is_empty()
            || algorithm.len() > MAX_ALGORITHM_LEN
            || !algorithm
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(malformed("the hash function name is not a short token"));
        }
        let expected = match algorithm.as_str() {
            "md2" | "md5" => Some(16),
            "sha-1" => Some(20),
            "sha-224" => Some(28),
            "sha-256" => Some(32),
            "sha-384" => Some(48),
            "sha-512" => Some(64),
            _ => None,
        };
        match expected {
            Some(n) if digest.len() != n => {
                return Err(malformed(
                    "the digest length does not match its hash function",
                ));
            }
            None if digest.is_empty() || digest.len() > MAX_DIGEST_LEN => {
                return Err(malformed("the digest is empty or longer than 64 bytes"));
            }
            _ => {}
        }
        Ok(Self {
            algorithm,
            digest: digest.to_vec(),
        })
    }

    /// Parses an attribute value, `sha-256 AB:CD:...` (the part after `a=fingerprint:`).
    ///
    /// ```
    /// use bassline_trust::Fingerprint;
    /// let fp = Fingerprint::parse("SHA-256 0a:1B:2c:3D:4e:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9").unwrap();
    /// assert_eq!(fp.algorithm(), "sha-256");
    /// assert_eq!(fp.digest()[1], 0x1b);
    /// assert!(Fingerprint::parse("sha-256 0A:1B").is_err());
    /// ```
    pub fn parse(value: &str) -> Result<Self, Error> {
        let value = value.trim();
        let (algorithm, hex) = value
            .split_once(|c: char| c.is_ascii_whitespace())
            .ok_or_else(|| malformed("expected `<hash function> <hex digest>`"))?;
        let hex = hex.trim_start();
        if hex.contains(|c: char| c.is_ascii_whitespace()) {
            return Err(malformed("text after the digest"));
        }
        let mut digest = Vec::with_capacity(MAX_DIGEST_LEN);
        for pair in hex.split(':') {
            if digest.len() == MAX_DIGEST_LEN {
                return Err(malformed("the digest is longer than 64 bytes"));
            }
            let &[hi, lo] = pair.as_bytes() else {
                return Err(malformed("the digest is not colon-separated hex pairs"));
            };
            match (hex_val(hi), hex_val(lo)) {
                (Some(h), Some(l)) => digest.push(h << 4 | l),
                _ => return Err(malformed("the digest is not colon-separated hex pairs")),
            }
        }
        Self::new(algorithm, &digest)
    }

    /// The hash function's name, lower-case (`sha-256`).
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    /// The digest bytes.
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }
}

/// Writes the SDP form, `sha-256 AB:CD:...` (upper-case hex, as browsers write it).
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.algorithm)?;
        for (i, b) in self.digest.iter().enumerate() {
            write!(f, "{}{b:02X}", if i == 0 { ' ' } else { ':' })?;
        }
        Ok(())
    }
}

/// Every distinct DTLS fingerprint in an SDP, session- and media-level alike, sorted.
///
/// Refuses an SDP without any (a DTLS offer or answer always has one), one with a malformed
/// fingerprint line, and one larger than [`MAX_SDP_BYTES`]; it never panics.
///
/// ```
/// use bassline_trust::fingerprints;
/// let fp = "sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99";
/// let sdp = format!("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=fingerprint:{fp}\r\n");
/// assert_eq!(fingerprints(&sdp).unwrap()[0].to_string(), fp);
/// assert!(fingerprints("v=0\r\n").is_err());
/// ```
pub fn fingerprints(sdp: &str) -> Result<Vec<Fingerprint>, Error> {
    if sdp.len() > MAX_SDP_BYTES {
        return Err(Error::Malformed {
            what: "SDP",
            detail: "larger than 64 KiB",
        });
    }
    let mut found: Vec<Fingerprint> = Vec::new();
    for line in sdp.split(['\r', '\n']) {
        let line = line.trim();
        if !contains_ignore_case(line, "fingerprint") {
            continue;
        }
        let value = line
            .strip_prefix("a=")
            .and_then(|rest| rest.split_once(':'))
            .filter(|(name, _)| name.eq_ignore_ascii_case("fingerprint"))
            .map(|(_, value)| value)
            .ok_or_else(|| {
                malformed("a line mentions a fingerprint but is not `a=fingerprint:`")
            })?;
        let fp = Fingerprint::parse(value)?;
        if !found.contains(&fp) {
            if found.len() == MAX_FINGERPRINTS {
                return Err(malformed("more than 8 distinct fingerprints"));
            }
            found.push(fp);
        }
    }
    if found.is_empty() {
        return Err(Error::Malformed {
            what: "SDP",
            detail: "no a=fingerprint line (a DTLS offer/answer always has one)",
        });
    }
    found.sort();
    Ok(found)
}

fn malformed(detail: &'static str) -> Error {
    Error::Malformed { what: WHAT, detail }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A data-channel offer the way Chromium writes it (fingerprint at media level).
    pub(crate) fn browser_sdp(fp: &str) -> String {
        format!(
            "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
             a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n\
             m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
             a=ice-ufrag:Xq4f\r\na=ice-pwd:Qm0VZc2u2+Wm1bZJtq6n0ZgU\r\n\
             a=ice-options:trickle\r\na=fingerprint:{fp}\r\na=setup:actpass\r\n\
             a=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n"
        )
    }

    pub(crate) const FP_A: &str = "sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08";
    pub(crate) const FP_B: &str = "sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00";

    #[test]
    fn reads_a_browser_offer() {
        let fps = fingerprints(&browser_sdp(FP_A)).unwrap();
        assert_eq!(fps.len(), 1);
        assert_eq!(fps[0].to_string(), FP_A);
        assert_eq!(fps[0].digest().len(), 32);
    }

    #[test]
    fn session_and_media_level_lines_merge_and_deduplicate() {
        // webrtc-rs writes the fingerprint at session level; bundled media sections repeat it.
        let sdp = format!(
            "v=0\na=fingerprint:{FP_A}\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\n\
             a=fingerprint:{}\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\na=fingerprint:{FP_B}\n",
            FP_A.to_ascii_lowercase()
        );
        let fps = fingerprints(&sdp).unwrap();
        let shown: Vec<String> = fps.iter().map(ToString::to_string).collect();
        assert_eq!(shown, vec![FP_B.to_owned(), FP_A.to_owned()]);
    }

    #[test]
    fn several_hash_functions_are_all_kept() {
        let sha1 = "sha-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB";
        let sdp = format!("v=0\r\na=fingerprint:{FP_A}\r\na=fingerprint:{sha1}\r\n");
        let fps = fingerprints(&sdp).unwrap();
        assert_eq!(fps.len(), 2);
        assert!(fps.iter().any(|f| f.algorithm() == "sha-1"));
    }

    #[test]
    fn case_line_endings_and_spacing_do_not_matter() {
        let a = fingerprints(&format!("a=fingerprint:{FP_A}\r\n")).unwrap();
        let b = fingerprints(&format!(
            "A=FINGERPRINT:  {}  \r",
            FP_A.to_ascii_lowercase().replace(' ', "\t ")
        ));
        // `A=` is not an attribute line: it mentions a fingerprint, so it is refused, not skipped.
        assert!(b.is_err());
        let c = fingerprints(&format!(
            "a=Fingerprint:  {}  \r",
            FP_A.to_ascii_uppercase()
        ))
        .unwrap();
        assert_eq!(a, c);
    }

    #[test]
    fn refuses_what_it_cannot_read_instead_of_skipping_it() {
        let bad = [
            "v=0\r\n".to_owned(),
            "a=fingerprint:\r\n".to_owned(),
            "a=fingerprint:sha-256\r\n".to_owned(),
            "a=fingerprint:sha-256 6B:8B\r\n".to_owned(),
            format!("a=fingerprint:{FP_A} trailing\r\n"),
            format!("a=fingerprint:{}\r\n", FP_A.replace("6B:8B", "6B8B")),
            format!("a=fingerprint:{}\r\n", FP_A.replace("6B:", "6G:")),
            format!("a=fingerprint:{}\r\n", FP_A.replace("6B:", "6B::")),
            format!("a=fingerprint:{FP_A}:\r\n"),
            format!("a=fingerprint:sha-256 {}\r\n", ["AB"; 65].join(":")),
            "a=fingerprint:my_hash AB\r\n".to_owned(),
            // Smuggled lines a lenient stack might still read.
            format!("a=ice-ufrag:x\ra=xfingerprint:{FP_B}\r\na=fingerprint:{FP_A}\r\n"),
            format!("x=fingerprint:{FP_B}\r\na=fingerprint:{FP_A}\r\n"),
            format!("a=fingerprint {FP_A}\r\n"),
            "a=x".repeat(MAX_SDP_BYTES),
        ];
        for sdp in &bad {
            assert!(
                matches!(fingerprints(sdp), Err(Error::Malformed { .. })),
                "{:?} gave {:?}",
                sdp.get(..80),
                fingerprints(sdp)
            );
        }
    }

    #[test]
    fn an_unknown_hash_function_is_kept_within_bounds() {
        let fps = fingerprints("a=fingerprint:blake3-256 AB:CD\n").unwrap();
        assert_eq!(fps[0].algorithm(), "blake3-256");
        let many: String = (0..9).map(|i| format!("a=fingerprint:x{i} AB\n")).collect();
        assert!(fingerprints(&many).is_err());
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(s in ".{0,400}") {
            let _ = fingerprints(&s);
        }

        #[test]
        fn never_panics_on_fingerprint_like_lines(
            name in "(?i)a=fingerprint:",
            algo in "(?i)(sha-(1|224|256|384|512)|md5|[a-z0-9-]{0,20})",
            sep in "[ \t]{0,3}",
            digest in "([0-9a-fA-FxX]{0,3}:?){0,70}",
            end in "(\r\n|\n|\r|)",
        ) {
            let _ = fingerprints(&format!("v=0\r\n{name}{algo}{sep}{digest}{end}"));
        }

        #[test]
        fn what_display_writes_parses_back(
            digest in proptest::collection::vec(any::<u8>(), 32),
            lower in any::<bool>(),
        ) {
            let fp = Fingerprint::new("sha-256", &digest).unwrap();
            let text = fp.to_string();
            let text = if lower { text.to_ascii_lowercase() } else { text };
            prop_assert_eq!(fingerprints(&browser_sdp(&text)).unwrap(), vec![fp]);
        }
    }
}
