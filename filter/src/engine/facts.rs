//! What the engine knows about a request: its method, path, host and the headers the decision
//! reads, as raw bytes (the adapter reads them; nothing here trusts or parses them yet).

/// What the engine needs to know about a request (header values as raw bytes).
#[derive(Debug, Default)]
pub struct RequestFacts<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path` (with query).
    pub path: &'a str,
    /// `:authority`.
    pub authority: &'a str,
    /// Every `authorization` value.
    pub authorization: Vec<&'a [u8]>,
    /// Every `cookie` value.
    pub cookies: Vec<&'a [u8]>,
    /// `sec-fetch-site`.
    pub sec_fetch_site: Option<&'a [u8]>,
    /// `sec-fetch-mode` (`navigate` for a top-level navigation).
    pub sec_fetch_mode: Option<&'a [u8]>,
    /// `origin`.
    pub origin: Option<&'a [u8]>,
    /// `referer`.
    pub referer: Option<&'a [u8]>,
}
