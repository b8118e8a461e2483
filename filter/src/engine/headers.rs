//! The request headers the engine reads, found in one pass over the host's header map. Names
//! compare without case: nginx hands the map over as the client spelled it. One scan of the
//! whole map per name (eleven names) was a fifth of the filter's own work on the paid hot path;
//! here each header's name is compared only with the wanted names of its length.

/// The wanted headers' values (the first of each, every one of `authorization` and `cookie`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Wanted<'h> {
    /// `:method`.
    pub method: Option<&'h [u8]>,
    /// `:path`.
    pub path: Option<&'h [u8]>,
    /// `host` (nginx: the client's host).
    pub host: Option<&'h [u8]>,
    /// `:authority` (Envoy: the client's host).
    pub authority: Option<&'h [u8]>,
    /// Every `authorization` value.
    pub authorization: Vec<&'h [u8]>,
    /// Every `cookie` value.
    pub cookies: Vec<&'h [u8]>,
    /// `sec-fetch-site`.
    pub sec_fetch_site: Option<&'h [u8]>,
    /// `sec-fetch-mode`.
    pub sec_fetch_mode: Option<&'h [u8]>,
    /// `origin`.
    pub origin: Option<&'h [u8]>,
    /// `referer`.
    pub referer: Option<&'h [u8]>,
    /// `accept`.
    pub accept: Option<&'h [u8]>,
}

/// Keeps the first value of a header.
fn first<'h>(slot: &mut Option<&'h [u8]>, value: &'h [u8]) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

impl<'h> Wanted<'h> {
    /// Reads them from the whole map (names in any case).
    pub fn read(headers: &'h [(String, Vec<u8>)]) -> Wanted<'h> {
        let mut w = Wanted::default();
        for (name, value) in headers {
            let value = value.as_slice();
            let is = |wanted: &str| name.eq_ignore_ascii_case(wanted);
            match name.len() {
                4 if is("host") => first(&mut w.host, value),
                5 if is(":path") => first(&mut w.path, value),
                6 if is("cookie") => w.cookies.push(value),
                6 if is("origin") => first(&mut w.origin, value),
                6 if is("accept") => first(&mut w.accept, value),
                7 if is(":method") => first(&mut w.method, value),
                7 if is("referer") => first(&mut w.referer, value),
                10 if is(":authority") => first(&mut w.authority, value),
                13 if is("authorization") => w.authorization.push(value),
                14 if is("sec-fetch-site") => first(&mut w.sec_fetch_site, value),
                14 if is("sec-fetch-mode") => first(&mut w.sec_fetch_mode, value),
                _ => {}
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    /// What one scan per name (the engine's former reading) finds.
    fn scanned<'h>(headers: &'h [(String, Vec<u8>)]) -> Wanted<'h> {
        let one = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_slice())
        };
        let all = |n: &str| -> Vec<&[u8]> {
            headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_slice())
                .collect()
        };
        Wanted {
            method: one(":method"),
            path: one(":path"),
            host: one("host"),
            authority: one(":authority"),
            authorization: all("authorization"),
            cookies: all("cookie"),
            sec_fetch_site: one("sec-fetch-site"),
            sec_fetch_mode: one("sec-fetch-mode"),
            origin: one("origin"),
            referer: one("referer"),
            accept: one("accept"),
        }
    }

    #[test]
    fn one_pass_finds_what_a_scan_per_name_finds_in_any_case_first_or_every_value() {
        let headers = map(&[
            (":Method", "GET"),
            (":path", "/v1/data?x=1"),
            (":authority", "nginx:8080"),
            ("Host", "example.com"),
            ("HOST", "second.example"),
            ("Authorization", "L402 a:b"),
            ("authorization", "Bearer x"),
            ("Cookie", "a=1"),
            ("cookie", "lightning-wall=c"),
            ("Sec-Fetch-Site", "same-origin"),
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-mode", "cors"),
            ("Origin", "https://example.com"),
            ("REFERER", "https://example.com/"),
            ("accept", "text/html"),
            ("accepts", "no"),
            ("x-other", "y"),
            ("hosts", "no"),
        ]);
        let w = Wanted::read(&headers);
        assert_eq!(w, scanned(&headers));
        assert_eq!(w.host, Some(&b"example.com"[..]));
        assert_eq!(w.authorization.len(), 2);
        assert_eq!(w.cookies.len(), 2);
        assert_eq!(w.sec_fetch_mode, Some(&b"navigate"[..]));
        assert_eq!(w.method, Some(&b"GET"[..]));
        assert_eq!(w.accept, Some(&b"text/html"[..]));
    }

    #[test]
    fn an_empty_map_finds_nothing() {
        assert_eq!(Wanted::read(&[]), Wanted::default());
    }
}
