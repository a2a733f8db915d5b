//! What a person types into a value box, read as a [`Value`], with a clear message when it
//! cannot be.
//!
//! Numbers, `true`/`false`, `null` and any JSON (including the lattice forms such as
//! `{"$grow-set": [1, 2]}`) are read as such; anything that does not look like JSON is a plain
//! string, so `hello` needs no quotes. Text that starts like JSON but is not (`{"a": }`) is an
//! error rather than a surprising string.
//!
//! ```
//! use bassline_web::value_input::{parse_value, show_value};
//! use bassline_core::Value;
//! assert_eq!(parse_value("2.5"), Ok(Value::Number(2.5)));
//! assert_eq!(parse_value("hello"), Ok(Value::from("hello")));
//! assert_eq!(show_value(&parse_value(r#"{"$grow-set":[1]}"#).unwrap()), r#"{"$grow-set":[1]}"#);
//! assert!(parse_value(r#"{"$grow-set": 1}"#).unwrap_err().contains("$grow-set"));
//! ```

use bassline_core::Value;

/// Reads typed text as a value. An empty box means "no value" (null).
pub fn parse_value(text: &str) -> Result<Value, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(Value::Null);
    }
    let looks_like_json = t.starts_with(['{', '[', '"'])
        || t.starts_with(|c: char| c.is_ascii_digit() || c == '-') && t.parse::<f64>().is_ok()
        || matches!(t, "true" | "false" | "null");
    if !looks_like_json {
        if (t.starts_with(['-', '+', '.']) || t.starts_with(|c: char| c.is_ascii_digit()))
            && let Some(msg) = number_hint(t)
        {
            return Err(msg);
        }
        return Ok(Value::String(text.to_owned()));
    }
    match serde_json::from_str::<Value>(t) {
        Ok(v) => Ok(v),
        Err(e) if e.is_syntax() || e.is_eof() => Err(format!(
            "not valid JSON ({e}); fix it, or wrap text in quotes to store it as a string"
        )),
        Err(e) => Err(format!(
            "not a Bassline value ({e}); lattices are one-key objects such as \
             {{\"$grow-set\": [1, 2]}} or {{\"$grow-map\": {{\"k\": 1}}}}"
        )),
    }
}

/// Text that starts like a number but is not one: a typo more often than a string.
fn number_hint(t: &str) -> Option<String> {
    let numeric_start = t
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
        .count();
    (numeric_start == t.len()).then(|| {
        format!(
            "`{t}` is not a number; write it as 12, -3.5 or 1e6, or in quotes to keep it as text"
        )
    })
}

/// A value as the box shows it: its JSON form, and plain text for a string (so it reads back
/// the same, unless it would read as something else).
pub fn show_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) if parse_value(s).ok().as_ref() == Some(v) => s.clone(),
        other => serde_json::to_string(other).unwrap_or_else(|_| other.kind().to_owned()),
    }
}

/// A short form for a node on the canvas: at most `max` characters.
pub fn short_value(v: &Value, max: usize) -> String {
    if v.is_null() {
        return "∅".to_owned();
    }
    let full = show_value(v);
    if full.chars().count() <= max {
        full
    } else {
        let cut: String = full.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_json_lattices_and_plain_text() {
        assert_eq!(parse_value(" 3 "), Ok(Value::Number(3.0)));
        assert_eq!(parse_value("-0.5"), Ok(Value::Number(-0.5)));
        assert_eq!(parse_value("true"), Ok(Value::Bool(true)));
        assert_eq!(parse_value(""), Ok(Value::Null));
        assert_eq!(parse_value("\"42\""), Ok(Value::from("42")));
        assert_eq!(parse_value("two words"), Ok(Value::from("two words")));
        assert_eq!(
            parse_value(r#"{"$grow-set": [1, 2]}"#),
            Ok(Value::grow_set([Value::from(1.0), Value::from(2.0)]))
        );
        assert!(matches!(
            parse_value(r#"{"$grow-map": {"a": 1}}"#),
            Ok(Value::GrowMap(_))
        ));
    }

    #[test]
    fn bad_input_gets_a_message_not_a_surprise() {
        let e = parse_value(r#"{"a": }"#).expect_err("broken JSON");
        assert!(e.contains("not valid JSON"), "{e}");
        let e = parse_value("[1, 2").expect_err("unclosed");
        assert!(e.contains("quotes"), "{e}");
        let e = parse_value(r#"{"$grow-set": 1}"#).expect_err("bad lattice");
        assert!(e.starts_with("not a Bassline value"), "{e}");
        let e = parse_value("1.2.3").expect_err("typo");
        assert!(e.contains("not a number"), "{e}");
    }

    #[test]
    fn what_is_shown_reads_back_the_same() {
        for text in [
            "5",
            "hello",
            "\"5\"",
            "[1,\"a\"]",
            r#"{"$shrink-set":[1]}"#,
            "true",
        ] {
            let v = parse_value(text).expect("valid");
            assert_eq!(parse_value(&show_value(&v)), Ok(v), "{text}");
        }
        assert_eq!(short_value(&Value::from("abcdefgh"), 5), "abcd…");
        assert_eq!(short_value(&Value::Null, 5), "∅");
    }
}
