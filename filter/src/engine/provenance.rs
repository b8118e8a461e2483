//! Who could have caused a request that carries a deposit credential (docs/filter.md
//! "Provenance"), and the answers to a request refused for it. Headers a client can forge only
//! ever make a request refused, never cheaper; nothing here counts, fines or forwards.

use super::facts::RequestFacts;
use super::reply::Reply;
use super::verified::Source;

fn header_host(url: &[u8]) -> Option<&[u8]> {
    let rest = url.split(|&b| b == b':').next().map(|s| s.len())?;
    let after = url.get(rest..)?.strip_prefix(b"://")?;
    let end = after
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(after.len());
    after.get(..end)
}

/// Who could have caused a request that carries a deposit credential, decided from what
/// browsers do (docs/filter.md "Provenance"): a page on another site can make a browser send a
/// request, but never with an `Authorization: L402` header (that needs a CORS preflight the
/// site never grants), and never with our `SameSite=Strict` cookie unless the request is
/// same-site. Headers a client can forge only ever make a request *refused*, never cheaper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provenance {
    /// The visitor's own page or program: served, and counted fully.
    FirstParty,
    /// A top-level navigation from outside any site (`Sec-Fetch-Site: none`: a typed URL, a
    /// bookmark, a link opened from a mail or chat app): served like first party, except a
    /// trap path, which gets an explanation instead (a planted link must not cost anything).
    OutsideLink,
    /// Another page could have caused it (same-site sibling, cross-site, `null` or foreign
    /// `Origin`/`Referer`): refused, not forwarded, not counted, not fined.
    ThirdParty,
}

/// The provenance of a request whose credential came from `source`.
pub fn provenance(source: Source, facts: &RequestFacts<'_>) -> Provenance {
    if source == Source::Header {
        return Provenance::FirstParty;
    }
    if let Some(site) = facts.sec_fetch_site {
        return match site {
            b"same-origin" => Provenance::FirstParty,
            b"none" => Provenance::OutsideLink,
            // `same-site` (a sibling subdomain gets the Strict cookie), `cross-site` (no
            // browser sends the Strict cookie then: a forger) and anything unknown.
            _ => Provenance::ThirdParty,
        };
    }
    // Browsers without Fetch Metadata: any foreign or opaque origin evidence refuses.
    let foreign = |v: &[u8]| match header_host(v) {
        Some(h) => !h.eq_ignore_ascii_case(facts.authority.as_bytes()),
        // `Origin: null` (sandboxed or privacy-sensitive contexts) or garbage: not ours.
        None => true,
    };
    if facts.origin.is_some_and(foreign) || facts.referer.is_some_and(foreign) {
        Provenance::ThirdParty
    } else {
        Provenance::FirstParty
    }
}

/// The answer to a request on a deposit credential that a third party could have caused: a
/// page with a same-origin link for a top-level navigation (following it is a same-origin
/// request, which is served), JSON otherwise. Never a link that continues to a trap path: one
/// click on it would be a same-origin request to the trap, a forfeit that another page led to.
pub(super) fn third_party_refused(facts: &RequestFacts<'_>, trap: bool) -> Reply {
    if facts.sec_fetch_mode == Some(b"navigate") {
        if trap {
            return Reply::page(
                403,
                "cross_site_refused",
                "This page cannot be opened from another site",
                "<p>This page was requested by another site, so it was not opened with your \
                 deposit. Nothing was charged.</p><p><a href=\"/\">Go to the home page</a></p>",
            );
        }
        return Reply::page(
            403,
            "cross_site_refused",
            "Continue on this site",
            "<p>This page was requested by another site, so it was not opened with your \
             deposit.</p><p><a href=\"\">Continue here</a></p>",
        );
    }
    Reply::error(
        403,
        "cross_site_refused",
        "request refused: it may have been made by another site",
    )
}

/// The answer to a trap path opened from outside any site (a link in a mail or a chat): it
/// explains itself and costs nothing; a bot learns nothing from it either.
pub(super) fn outside_link_refused() -> Reply {
    Reply::page(
        403,
        "outside_link",
        "This link cannot be opened from outside",
        "<p>This address cannot be opened from a link outside the site. Nothing was charged.</p>\
         <p><a href=\"/\">Go to the home page</a></p>",
    )
}
