//! Join links: what the room manager shows and what a page opened from one reads.
//!
//! The editor's form is `<origin>/#join=CODE&k=KEY`: code and room key both in the fragment,
//! which the browser never sends to the server, so loading the page reveals neither. The CLI's
//! older form `<origin>/?join=CODE#k=KEY` is read too. The key is [`RoomKey::to_fragment`]'s
//! base64url text.
//!
//! ```
//! use bassline_trust::RoomKey;
//! use bassline_web::p2p::link::{join_link, read_location};
//! let key = RoomKey::from_bytes([7; 32]);
//! let link = join_link("http://127.0.0.1:8080", "A3B7K9", &key);
//! let (_, fragment) = link.split_once('#').unwrap();
//! let found = read_location("", &format!("#{fragment}")).unwrap().unwrap();
//! assert_eq!((found.code.as_str(), found.key), ("A3B7K9", Some(key)));
//! ```

use bassline_signal::RoomCode;
use bassline_trust::RoomKey;

/// A room a link points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinTarget {
    /// The code as the server spells it (upper case).
    pub code: String,
    /// The room key, when the link carried one.
    pub key: Option<RoomKey>,
}

/// The link to share for room `code` on the editor at `origin` (`http://HOST:PORT`).
pub fn join_link(origin: &str, code: &str, key: &RoomKey) -> String {
    let fragment = key.to_fragment();
    let key_param = fragment.trim_start_matches('#');
    format!("{}/#join={code}&{key_param}", origin.trim_end_matches('/'))
}

fn param<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.split('&').find_map(|kv| kv.strip_prefix(name))
}

/// Reads a join link from the page's address: `search` (`?...`, or empty) and `hash`
/// (`#...`, or empty). `None` when the address names no room; `Some(Err)` when it names one
/// but the code or the key is damaged, with what to do about it.
pub fn read_location(search: &str, hash: &str) -> Option<Result<JoinTarget, String>> {
    let search = search.trim_start_matches('?');
    let fragment = hash.trim_start_matches('#');
    let code = param(fragment, "join=").or_else(|| param(search, "join="))?;
    let Ok(code) = RoomCode::parse(code) else {
        return Some(Err(format!(
            "the join link's room code {code:?} is not six letters or digits; copy the whole \
             link from the host"
        )));
    };
    let key = if param(fragment, "k=").is_some() {
        match RoomKey::from_fragment(fragment) {
            Ok(k) => Some(k),
            Err(e) => {
                return Some(Err(format!(
                    "cannot join with this link: {e}; copy the whole link from the host"
                )));
            }
        }
    } else {
        None
    };
    Some(Ok(JoinTarget {
        code: code.to_string(),
        key,
    }))
}

/// Checks a code as typed into the join form: `Ok` with the code as the server spells it, or
/// what is wrong with it.
pub fn check_code(typed: &str) -> Result<String, String> {
    let t = typed.trim();
    if t.is_empty() {
        return Err("type the room's code (six letters or digits, like A3B7K9)".into());
    }
    RoomCode::parse(t).map(|c| c.to_string()).map_err(|_| {
        let n = t.chars().count();
        if n != bassline_signal::protocol::CODE_LEN {
            format!("a room code has 6 characters, this has {n}")
        } else {
            "a room code has only letters A-Z and digits 0-9".into()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_link_forms_give_code_and_key() {
        let key = RoomKey::from_bytes([9; 32]);
        let ours = join_link("http://h:1/", "A3B7K9", &key);
        assert!(ours.starts_with("http://h:1/#join=A3B7K9&k="), "{ours}");
        let hash = &ours[ours.find('#').unwrap()..];
        let want = JoinTarget {
            code: "A3B7K9".into(),
            key: Some(key.clone()),
        };
        assert_eq!(read_location("", hash), Some(Ok(want.clone())));
        // The CLI's form, and lower case.
        let cli = key.to_fragment();
        assert_eq!(read_location("?join=a3b7k9", &cli), Some(Ok(want)));
        // A code alone: no key.
        assert_eq!(
            read_location("", "#join=A3B7K9"),
            Some(Ok(JoinTarget {
                code: "A3B7K9".into(),
                key: None
            }))
        );
        // The editor's own group fragment is no join link.
        assert_eq!(read_location("", "#g=root"), None);
        assert_eq!(read_location("", ""), None);
    }

    #[test]
    fn a_damaged_link_says_so() {
        let key = RoomKey::from_bytes([9; 32]);
        let good = join_link("http://h:1", "A3B7K9", &key);
        let hash = &good[good.find('#').unwrap()..];
        let short = &hash[..hash.len() - 3];
        let err = read_location("", short).unwrap().unwrap_err();
        assert!(err.contains("cannot join with this link"), "{err}");
        let err = read_location("", "#join=A3B7&k=x").unwrap().unwrap_err();
        assert!(err.contains("room code"), "{err}");
    }

    #[test]
    fn typed_codes_are_checked() {
        assert_eq!(check_code(" a3b7k9 "), Ok("A3B7K9".into()));
        assert!(check_code("").unwrap_err().contains("type the room's code"));
        assert!(check_code("A3B7").unwrap_err().contains("6 characters"));
        assert!(check_code("A3B7K!").unwrap_err().contains("letters A-Z"));
    }
}
