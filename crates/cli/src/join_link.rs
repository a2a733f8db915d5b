//! What `bassline join` accepts: a room's join link (code and room key) or its bare code.
//!
//! The link is what `bassline host` prints and the browser editor shows:
//! `http://HOST:PORT/#join=A3B7K9&k=<key>`. Code and room key travel in the fragment (after
//! `#`), which browsers never send to a server; opening it in a browser goes straight into the
//! room. The code is read from the fragment's `join=`, else from the older form's `join=` query
//! parameter (`/?join=A3B7K9#k=<key>`), else from the last path segment (`.../join/A3B7K9`, or
//! `A3B7K9#k=...` alone).

use anyhow::{Result, anyhow};
use bassline_signal::RoomCode;
use bassline_trust::RoomKey;

/// A room to join: its code, and its key when the user gave the link.
#[derive(Debug)]
pub struct Target {
    pub code: String,
    pub key: Option<RoomKey>,
    /// The signaling endpoint of the server the link points at (`http://H:P/...` gives
    /// `ws://H:P/signal`, `https` gives `wss`), used when `--signal` is not given.
    pub signal: Option<String>,
}

/// Reads `bassline join`'s argument. Anything with `#`, `/`, `?` or `:` in it is a link and
/// must carry both a code and a well-formed key; anything else is a bare code (no key).
pub fn parse(arg: &str) -> Result<Target> {
    let arg = arg.trim();
    if !arg.contains(['#', '/', '?', ':']) {
        return Ok(Target {
            code: arg.to_owned(),
            key: None,
            signal: None,
        });
    }
    let (before, fragment) = match arg.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (arg, None),
    };
    let (path, query) = match before.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (before, None),
    };
    let param = |text: Option<&str>| {
        text.and_then(|t| {
            t.split('&')
                .find_map(|kv| kv.strip_prefix("join="))
                .map(str::to_owned)
        })
    };
    let candidate = param(fragment).or_else(|| param(query)).unwrap_or_else(|| {
        path.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    });
    let code = RoomCode::parse(&candidate).map_err(|_| {
        anyhow!(
            "the join link holds no room code (expected `.../#join=CODE&k=...`, as `bassline host` \
             prints it); copy the whole link from the host"
        )
    })?;
    let key = RoomKey::from_fragment(fragment.unwrap_or(""))
        .map_err(|e| anyhow!("cannot join with this link: {e}"))?;
    Ok(Target {
        code: code.to_string(),
        key: Some(key),
        signal: signal_of(before),
    })
}

/// `ws(s)://HOST:PORT/signal` for a link on `http(s)://HOST:PORT/...`; `None` for anything
/// else (a bare `CODE#k=...`).
fn signal_of(link: &str) -> Option<String> {
    let (scheme, rest) = link.split_once("://")?;
    let ws = match scheme.to_ascii_lowercase().as_str() {
        "http" => "ws",
        "https" => "wss",
        _ => return None,
    };
    let authority = rest.split(['/', '?']).next().filter(|a| !a.is_empty())?;
    Some(format!("{ws}://{authority}/signal"))
}

/// The link for room `code` on the editor at `base` (`http://HOST:PORT`): code and key (when
/// the room has one) in the fragment, the form the browser editor opens straight into the room.
pub fn link(base: &str, code: &str, key: Option<&RoomKey>) -> String {
    let key = key
        .map(|k| format!("&{}", k.to_fragment().trim_start_matches('#')))
        .unwrap_or_default();
    format!("{base}/#join={code}{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_names_the_signaling_server_it_came_from() {
        let key = RoomKey::from_bytes([5; 32]).to_fragment();
        let t = parse(&format!("http://192.168.1.5:8080/?join=A3B7K9{key}")).unwrap();
        assert_eq!(t.signal.as_deref(), Some("ws://192.168.1.5:8080/signal"));
        let t = parse(&format!("https://bassline.example/join/A3B7K9{key}")).unwrap();
        assert_eq!(t.signal.as_deref(), Some("wss://bassline.example/signal"));
        assert_eq!(parse(&format!("A3B7K9{key}")).unwrap().signal, None);
        assert_eq!(parse("A3B7K9").unwrap().signal, None);
    }

    #[test]
    fn a_link_gives_code_and_key_and_a_bare_code_gives_no_key() {
        let key = RoomKey::from_bytes([5; 32]);
        let l = link("http://127.0.0.1:8080", "A3B7K9", Some(&key));
        let t = parse(&l).unwrap();
        assert_eq!(t.code, "A3B7K9");
        assert_eq!(t.key, Some(key.clone()));
        for other in [
            format!("https://x.example/join/a3b7k9{}", key.to_fragment()),
            format!("A3B7K9{}", key.to_fragment()),
            format!("http://h/?v=1&join=A3B7K9{}", key.to_fragment()),
            // The older form `bassline host` printed.
            format!("http://127.0.0.1:8080/?join=A3B7K9{}", key.to_fragment()),
        ] {
            let t = parse(&other).unwrap();
            assert_eq!(
                (t.code.as_str(), t.key.as_ref()),
                ("A3B7K9", Some(&key)),
                "{other}"
            );
        }
        let bare = parse(" a3b7k9 ").unwrap();
        assert_eq!((bare.code.as_str(), bare.key), ("a3b7k9", None));
    }

    #[test]
    fn a_damaged_link_says_what_is_wrong() {
        let key = RoomKey::from_bytes([5; 32]);
        let good = link("http://h:1", "A3B7K9", Some(&key));
        let cases = [
            (link("http://h:1", "A3B7K9", None), "no room key"),
            (good[..good.len() - 4].to_owned(), "too short"),
            (format!("{good}AB"), "too long"),
            (good.replace("join=A3B7K9&", ""), "no room code"),
            (good.replace("A3B7K9", "A3B7"), "no room code"),
            (format!("{}!!!!", &good[..good.len() - 4]), "not base64url"),
        ];
        for (bad, want) in cases {
            let err = parse(&bad).unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
            assert!(err.contains("link"), "{bad}: {err}");
        }
    }
}
