//! An ordered, multi-valued header map with the semantics Envoy's `HeaderMapImpl` shows a filter:
//! keys lower-cased on the way in, `get` returns the first value, `replace` drops every old value.
//! Values are bytes: a filter must cope with headers that are not UTF-8.

use std::fmt;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

fn lower(key: &[u8]) -> Vec<u8> {
    key.to_ascii_lowercase()
}

impl HeaderMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a map from `(name, value)` pairs, in order.
    pub fn from_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut m = Self::new();
        for (k, v) in pairs {
            m.add(k.as_ref(), v.as_ref());
        }
        m
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends a value (Envoy `addCopy`: a repeated key keeps every value).
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        self.entries.push((lower(key), value.to_vec()));
    }

    /// Envoy `setCopy` (with `http_set_copy_replace_all_headers`, default on): every existing value
    /// is removed and the new one appended.
    pub fn replace(&mut self, key: &[u8], value: &[u8]) {
        self.remove(key);
        self.add(key, value);
    }

    /// Stored keys are lower-case, so a case-insensitive compare finds them without allocating
    /// a lower-cased copy of `key` (this runs on every header host call).
    pub fn remove(&mut self, key: &[u8]) {
        self.entries.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    }

    /// The first value for `key` (Envoy returns only the first of repeated headers).
    pub fn get_bytes(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_slice())
    }

    /// The first value as text; `None` when absent or not UTF-8.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.get_bytes(key.as_bytes())
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of `key`, in order.
    pub fn get_all(&self, key: &str) -> Vec<&[u8]> {
        let key = key.as_bytes();
        self.entries
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get_bytes(key.as_bytes()).is_some()
    }

    /// Sum of key and value lengths (Envoy's `byteSize`, what `proxy_get_header_map_size` returns).
    pub fn byte_size(&self) -> usize {
        self.entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
        self.entries
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// The map with names spelled as clients conventionally send them (`Authorization`,
    /// `X-Lightning-Wall-Token`; pseudo-headers unchanged), as nginx hands a filter the full
    /// map. Lookups stay case-insensitive.
    pub fn with_names_as_sent(&self) -> HeaderMap {
        let entries = self
            .entries
            .iter()
            .map(|(k, v)| {
                let mut name = k.clone();
                if name.first() != Some(&b':') {
                    let mut up = true;
                    for b in &mut name {
                        if up {
                            b.make_ascii_uppercase();
                        }
                        up = *b == b'-';
                    }
                }
                (name, v.clone())
            })
            .collect();
        HeaderMap { entries }
    }

    /// Appends a value keeping the name's spelling.
    pub fn add_as_sent(&mut self, key: &[u8], value: &[u8]) {
        self.entries.push((key.to_vec(), value.to_vec()));
    }

    /// Replaces the whole map (Envoy `setHeaderMapPairs`).
    pub fn set_all(&mut self, pairs: Vec<(Vec<u8>, Vec<u8>)>) {
        self.entries.clear();
        for (k, v) in pairs {
            self.entries.push((lower(&k), v));
        }
    }
}

impl fmt::Debug for HeaderMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.entries
                    .iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_removes_every_old_value_and_appends() {
        let mut m = HeaderMap::from_pairs([("A", "1"), ("b", "2"), ("a", "3")]);
        m.replace(b"a", b"4");
        assert_eq!(m.get_all("a"), vec![b"4".as_slice()]);
        assert_eq!(m.iter().last(), Some((&b"a"[..], &b"4"[..])));
    }

    #[test]
    fn names_as_sent_are_capitalised_per_word_and_still_found_in_any_case() {
        let m = HeaderMap::from_pairs([
            (":authority", "a"),
            ("authorization", "x"),
            ("x-lw-id", "1"),
        ])
        .with_names_as_sent();
        let names: Vec<&[u8]> = m.iter().map(|(k, _)| k).collect();
        assert_eq!(names, [&b":authority"[..], b"Authorization", b"X-Lw-Id"]);
        assert_eq!(m.get("authorization"), Some("x"));
    }

    #[test]
    fn keys_are_lower_cased_and_get_returns_the_first_value() {
        let m = HeaderMap::from_pairs([("X-Token", "one"), ("x-token", "two")]);
        assert_eq!(m.get("x-TOKEN"), Some("one"));
        assert_eq!(m.byte_size(), 7 + 3 + 7 + 3);
    }
}
