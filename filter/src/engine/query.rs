//! A route's query-string conditions (`match.query`) and the request's query string as they are
//! compared. The rules lean towards matching: a request an application might read as the
//! walled one must meet the wall, because a miss lets a bot through free while an extra match
//! only walls a request no honest browser sends.
//!
//! - The query string is everything after the first `?` of `:path`, split at `&`; a pair that
//!   holds `;` is also read split at `;` (some frameworks separate with it).
//! - Keys and values are percent-decoded once (`%XX`, either case; `+` is a space), as
//!   applications decode them. A `%` not followed by two hex digits stays as it is.
//! - Keys compare by their ASCII letters and digits only, without case: `wc-ajax`, `WC_AJAX`,
//!   `wc.ajax`, ` wc-ajax` and `wc-ajax[]` are one key (PHP alone rewrites `.`, ` ` and `[`).
//! - A value condition holds when any occurrence of the key has the value, without ASCII case
//!   (applications differ on whether the first or the last of a repeated key counts), or when
//!   an occurrence's value holds anything but `A-Z a-z 0-9 . _ ~ -`: applications clean values
//!   (trim spaces, strip tags) in ways the wall cannot mirror.
//! - Bounded: a query longer than [`MAX_LEN`] bytes or with more than [`MAX_PARAMS`] pairs is
//!   not parsed, and it meets every condition.

use std::cell::OnceCell;

/// Longest query string parsed, bytes.
pub const MAX_LEN: usize = 4096;
/// Most pairs parsed.
pub const MAX_PARAMS: usize = 64;

/// One compiled condition of a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// The key, folded ([`fold_key`]).
    key: String,
    /// `None`: the key present, any value; else the value, lower case.
    value: Option<String>,
}

/// Why a configured condition cannot be compiled (the sidecar validates the same).
#[derive(Debug, PartialEq, Eq)]
pub enum ConditionError {
    /// The key has no ASCII letter or digit.
    Key,
    /// The value is empty, too long or holds a character outside `A-Z a-z 0-9 . _ ~ -`.
    Value,
}

/// Whether every byte is one a value condition may hold.
fn plain(value: &[u8]) -> bool {
    value
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

/// A key as keys compare: its ASCII letters and digits, lower case.
fn fold_key(key: &[u8]) -> String {
    key.iter()
        .filter(|b| b.is_ascii_alphanumeric())
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect()
}

impl Condition {
    /// Compiles `key` (with `value`, or present with any value when `None`).
    pub fn new(key: &str, value: Option<&str>) -> Result<Condition, ConditionError> {
        let folded = fold_key(key.as_bytes());
        if folded.is_empty() {
            return Err(ConditionError::Key);
        }
        let value = match value {
            None => None,
            Some(v) if !v.is_empty() && v.len() <= 128 && plain(v.as_bytes()) => {
                Some(v.to_ascii_lowercase())
            }
            Some(_) => return Err(ConditionError::Value),
        };
        Ok(Condition { key: folded, value })
    }
}

/// An occurrence's value as conditions see it.
#[derive(Debug)]
enum Value {
    /// Only plain characters: lower case.
    Plain(String),
    /// Anything else: meets every value condition on its key.
    Odd,
}

#[derive(Debug)]
struct Pair {
    key: String,
    value: Value,
}

/// The parsed query: its pairs, or `None` when over the bounds.
#[derive(Debug)]
struct Parsed(Option<Vec<Pair>>);

/// Percent-decodes once; `+` is a space.
fn decode(raw: &str) -> Vec<u8> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |at: usize| bytes.get(at).and_then(|h| char::from(*h).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'%'));
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn pair(raw: &str) -> Option<Pair> {
    let (k, v) = raw.split_once('=').unwrap_or((raw, ""));
    let key = fold_key(&decode(k));
    if key.is_empty() {
        return None;
    }
    let v = decode(v);
    let value = if plain(&v) {
        Value::Plain(
            v.iter()
                .map(|b| char::from(b.to_ascii_lowercase()))
                .collect(),
        )
    } else {
        Value::Odd
    };
    Some(Pair { key, value })
}

fn parse(raw: &str) -> Parsed {
    if raw.len() > MAX_LEN {
        return Parsed(None);
    }
    let mut pairs = Vec::new();
    let mut count = 0usize;
    for piece in raw.split('&') {
        let extra = if piece.contains(';') {
            Some(piece.split(';'))
        } else {
            None
        };
        for p in core::iter::once(piece).chain(extra.into_iter().flatten()) {
            if p.is_empty() {
                continue;
            }
            count += 1;
            if count > MAX_PARAMS {
                return Parsed(None);
            }
            pairs.extend(pair(p));
        }
    }
    Parsed(Some(pairs))
}

/// A request's query string, parsed on the first condition that asks (once per request).
#[derive(Debug)]
pub struct Query<'a> {
    raw: &'a str,
    parsed: OnceCell<Parsed>,
}

impl<'a> Query<'a> {
    /// The query string of `path` (`:path`): after its first `?`, empty when none.
    pub fn of(path: &'a str) -> Query<'a> {
        let raw = path.split_once('?').map_or("", |(_, q)| q);
        Query {
            raw,
            parsed: OnceCell::new(),
        }
    }

    /// Whether `c` holds.
    pub fn meets(&self, c: &Condition) -> bool {
        let Parsed(pairs) = self.parsed.get_or_init(|| parse(self.raw));
        let Some(pairs) = pairs else {
            return true;
        };
        pairs.iter().any(|p| {
            p.key == c.key
                && match (&c.value, &p.value) {
                    (None, _) | (Some(_), Value::Odd) => true,
                    (Some(want), Value::Plain(v)) => v == want,
                }
        })
    }

    /// Whether all of `conditions` hold.
    pub fn meets_all(&self, conditions: &[Condition]) -> bool {
        conditions.iter().all(|c| self.meets(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkout() -> Condition {
        Condition::new("wc-ajax", Some("checkout")).unwrap()
    }

    fn walled(path: &str) -> bool {
        Query::of(path).meets(&checkout())
    }

    #[test]
    fn the_plain_request_matches_and_other_actions_do_not() {
        assert!(walled("/?wc-ajax=checkout"));
        assert!(walled("/shop/?wc-ajax=checkout"));
        assert!(!walled("/?wc-ajax=get_refreshed_fragments"));
        assert!(!walled("/?wc-ajax="));
        assert!(!walled("/?other=checkout"));
        assert!(!walled("/"));
        assert!(!walled("/?"));
    }

    #[test]
    fn an_attacker_cannot_reorder_repeat_pad_recase_or_reencode_past_a_condition() {
        for path in [
            // reordered, padded with empty pairs
            "/?a=1&b=2&wc-ajax=checkout",
            "/?&&wc-ajax=checkout&&",
            // repeated: the first or the last occurrence counts, depending on the application
            "/?wc-ajax=update_order_review&wc-ajax=checkout",
            "/?wc-ajax=checkout&wc-ajax=update_order_review",
            // case of key and value
            "/?WC-AJAX=CheckOut",
            // percent-encoding of key and value, either hex case, and `+`
            "/?%77%63%2D%61%6A%61%78=%63%68%65%63%6b%6F%75%74",
            "/?wc%2dajax=checkout",
            // what PHP reads as the same key
            "/?wc_ajax=checkout",
            "/?wc.ajax=checkout",
            "/?+wc-ajax=checkout",
            "/?wc-ajax[]=checkout",
            // values an application trims or cleans: odd values meet the condition
            "/?wc-ajax=checkout%20",
            "/?wc-ajax=+checkout",
            "/?wc-ajax=check%3Cb%3Eout",
            "/?wc-ajax=checkout%00",
            "/?wc-ajax=check%out",
            // `;` as a separator, and a fragment-looking tail
            "/?x=1;wc-ajax=checkout",
            "/?wc-ajax=checkout#x",
        ] {
            assert!(walled(path), "{path} slipped past the condition");
        }
    }

    #[test]
    fn a_query_over_the_bounds_meets_every_condition_unparsed() {
        let many = format!("/?{}wc-ajax=x", "a=1&".repeat(MAX_PARAMS));
        assert!(walled(&many));
        let long = format!("/?a={}", "x".repeat(MAX_LEN));
        assert!(walled(&long));
        let within = format!("/?{}wc-ajax=x", "a=1&".repeat(MAX_PARAMS - 1));
        assert!(!walled(&within));
    }

    #[test]
    fn a_presence_condition_holds_for_any_value_and_all_conditions_must_hold() {
        let preview = Condition::new("preview", None).unwrap();
        assert!(Query::of("/?preview").meets(&preview));
        assert!(Query::of("/?preview=").meets(&preview));
        assert!(Query::of("/?Preview=true").meets(&preview));
        assert!(!Query::of("/?previews=1").meets(&preview));
        let both = [checkout(), preview];
        assert!(Query::of("/?preview=1&wc-ajax=checkout").meets_all(&both));
        assert!(!Query::of("/?wc-ajax=checkout").meets_all(&both));
        assert!(Query::of("/").meets_all(&[]));
    }

    #[test]
    fn conditions_are_validated_as_the_sidecar_validates_them() {
        assert_eq!(Condition::new("--", None), Err(ConditionError::Key));
        assert_eq!(Condition::new("a", Some("")), Err(ConditionError::Value));
        assert_eq!(Condition::new("a", Some("b c")), Err(ConditionError::Value));
        assert_eq!(
            Condition::new("a", Some("b".repeat(129).as_str())),
            Err(ConditionError::Value)
        );
        assert!(Condition::new("a", Some("B.c_d~e-9")).is_ok());
    }
}
