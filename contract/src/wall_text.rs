//! The wall's texts: English defaults (`wall_text.en.json`), the operator's overrides merged
//! over them, and the few pure helpers that fill them in (placeholders, amounts with thousands
//! separators, durations, HTML escaping). Shared by the sidecar (configuration, wallet memo,
//! the no-JavaScript pages) and the filter (the pages it answers itself): one list of keys, one
//! set of defaults.
//! Pure, no I/O, never panics.

use std::collections::BTreeMap;

/// Text key -> text.
pub type Texts = BTreeMap<String, String>;

/// The English defaults, one entry per key an operator may override (`wall.text`).
pub const DEFAULTS_JSON: &str = include_str!("wall_text.en.json");

/// The defaults, parsed once (the file is checked by a test, so this is never empty in a build
/// that passed).
pub fn defaults() -> &'static Texts {
    static DEFAULTS: std::sync::OnceLock<Texts> = std::sync::OnceLock::new();
    DEFAULTS.get_or_init(|| serde_json::from_str(DEFAULTS_JSON).unwrap_or_default())
}

/// The defaults with `overrides` on top (unknown keys are refused by the configuration check
/// before this; here they are ignored).
pub fn merged(overrides: &Texts) -> Texts {
    let mut texts = defaults().clone();
    for (key, value) in overrides {
        if let Some(slot) = texts.get_mut(key) {
            slot.clone_from(value);
        }
    }
    texts
}

/// The text for `key`, or "" when missing.
pub fn text<'a>(texts: &'a Texts, key: &str) -> &'a str {
    texts.get(key).map_or("", String::as_str)
}

/// The `{name}` placeholders in `template`, in order.
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close)
                if close > 0
                    && after[..close]
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_') =>
            {
                out.push(&after[..close]);
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

/// `template` with each `{name}` of `values` replaced (plain text in, plain text out: escape
/// the result for HTML, not the values).
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// `n` with the configured thousands separator: 1000000 -> "1,000,000".
pub fn grouped(n: u64, texts: &Texts) -> String {
    let digits = n.to_string();
    let separator = text(texts, "thousands_separator");
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * separator.len());
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push_str(separator);
        }
        out.push(c);
    }
    out
}

/// An amount in satoshis as the visitor reads it: "1,000 sats".
pub fn sats(n: u64, texts: &Texts) -> String {
    fill(text(texts, "amount"), &[("n", &grouped(n, texts))])
}

/// A duration in the largest unit that divides it: "1 h", "5 min", "90 s".
pub fn duration(seconds: u64, texts: &Texts) -> String {
    let (n, unit) = if seconds >= 3600 && seconds.is_multiple_of(3600) {
        (seconds / 3600, "hours")
    } else if seconds >= 60 && seconds.is_multiple_of(60) {
        (seconds / 60, "minutes")
    } else {
        (seconds, "seconds")
    };
    fill(text(texts, unit), &[("n", &grouped(n, texts))])
}

/// Text for an HTML element or a quoted attribute value.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The reference a visitor quotes and an operator looks up: the first 10 hex characters of
/// the token id (`lightning-wall admin list` shows `token_id`; docs/wallets.md "Reference").
pub fn reference(token_hex: &str) -> &str {
    token_hex.get(..10).unwrap_or(token_hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_parse_and_every_key_has_a_text() {
        let d = defaults();
        assert!(d.len() > 30, "{}", d.len());
        assert!(d.values().all(|v| !v.is_empty()));
    }

    #[test]
    fn amounts_get_thousands_separators_and_durations_their_largest_unit() {
        let mut t = defaults().clone();
        assert_eq!(sats(1000, &t), "1,000 sats");
        assert_eq!(sats(999, &t), "999 sats");
        assert_eq!(sats(1_234_567, &t), "1,234,567 sats");
        assert_eq!(duration(3600, &t), "1 h");
        assert_eq!(duration(300, &t), "5 min");
        assert_eq!(duration(90, &t), "90 s");
        assert_eq!(duration(5400, &t), "90 min");
        t.insert("thousands_separator".into(), ".".into());
        assert_eq!(sats(21_000, &t), "21.000 sats");
    }

    #[test]
    fn placeholders_are_found_and_filled() {
        assert_eq!(
            placeholders("{site} a {amount} {} {X} {n"),
            ["site", "amount"]
        );
        assert_eq!(
            fill("{site}: {amount}", &[("site", "S"), ("amount", "1")]),
            "S: 1"
        );
        assert_eq!(
            escape_html("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
        assert_eq!(reference(&"ab".repeat(32)), "ababababab");
        assert_eq!(reference("abc"), "abc");
    }
}
