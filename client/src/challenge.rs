//! Reading a 402: the classic `macaroon="…", invoice="…"` through the `l402` crate's parser,
//! then the deposit parameters the filter appends (docs/wire-format.md "Challenge").

use base64::Engine as _;

/// What the route asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Classic L402: the payment settles; the preimage (or an empty proof) proves it.
    Pay,
    /// A refundable deposit: a hold invoice, held while the credential is used.
    Deposit,
}

/// A parsed challenge, with what the 402's JSON body adds when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The macaroon, standard padded base64.
    pub macaroon: String,
    /// The BOLT 11 invoice to pay.
    pub invoice: String,
    /// Pay or deposit.
    pub mode: Mode,
    /// Where a deposit's credential appears once held (relative to the site).
    pub status_url: Option<String>,
    /// Where a deposit is left.
    pub leave_url: Option<String>,
    /// The route terms a machine can read.
    pub terms_url: Option<String>,
    /// The route id (JSON body), the key a credential is kept under.
    pub route_id: String,
    /// The amount (JSON body).
    pub amount_sat: Option<u64>,
    /// The invoice's payment hash (JSON body).
    pub payment_hash: Option<String>,
}

/// The value of a quoted auth-param `name="…"` of one challenge, if present.
fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    value
        .split(", ")
        .find_map(|p| p.strip_prefix(name)?.strip_prefix("=\"")?.strip_suffix('"'))
}

/// Parses one `WWW-Authenticate` value; `None` when it is not an L402/LSAT challenge.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let parsed = l402::parse_challenge(value).ok()?;
    let deposit = param(value, "mode") == Some("deposit");
    Some(Challenge {
        macaroon: base64::engine::general_purpose::STANDARD.encode(&parsed.macaroon),
        invoice: parsed.invoice,
        mode: if deposit { Mode::Deposit } else { Mode::Pay },
        status_url: param(value, "status_url").map(str::to_owned),
        leave_url: param(value, "leave_url").map(str::to_owned),
        terms_url: param(value, "terms_url").map(str::to_owned),
        route_id: String::new(),
        amount_sat: None,
        payment_hash: None,
    })
}

/// The L402 challenge among a 402's `WWW-Authenticate` values (else the LSAT one), completed
/// from its JSON body. A deposit challenge without its status and leave URLs is unusable.
pub(crate) fn from_response(values: &[&str], body: &[u8]) -> Option<Challenge> {
    let mut c = values
        .iter()
        .filter(|v| v.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("L402 ")))
        .chain(values.iter())
        .find_map(|v| parse_challenge(v))?;
    if c.mode == Mode::Deposit && (c.status_url.is_none() || c.leave_url.is_none()) {
        return None;
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        c.route_id = json
            .get("route_id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        c.amount_sat = json.get("amount_sat").and_then(serde_json::Value::as_u64);
        c.payment_hash = json
            .get("payment_hash")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: &str = "AgELbGlnaHRuaW5nLXdhbGwCQgAA+/8=";

    fn deposit(scheme: &str) -> String {
        format!(
            "{scheme} macaroon=\"{MAC}\", invoice=\"lnbcrt10u1pexample\", mode=\"deposit\", \
             status_url=\"/.well-known/lightning-wall/deposit\", \
             leave_url=\"/.well-known/lightning-wall/leave\", \
             terms_url=\"/.well-known/lightning-wall/terms\""
        )
    }

    #[test]
    fn a_deposit_challenge_names_the_mode_and_the_wall_urls() {
        let c = parse_challenge(&deposit("L402")).unwrap();
        assert_eq!(c.macaroon, MAC);
        assert_eq!(c.invoice, "lnbcrt10u1pexample");
        assert_eq!(c.mode, Mode::Deposit);
        assert_eq!(
            c.status_url.as_deref(),
            Some("/.well-known/lightning-wall/deposit")
        );
        assert_eq!(
            c.leave_url.as_deref(),
            Some("/.well-known/lightning-wall/leave")
        );
        assert_eq!(
            c.terms_url.as_deref(),
            Some("/.well-known/lightning-wall/terms")
        );
    }

    #[test]
    fn a_classic_challenge_is_a_pay_challenge_and_the_body_completes_it() {
        let v = format!("L402 macaroon=\"{MAC}\", invoice=\"lnbcrt10u1pexample\"");
        let body = br#"{"route_id":"api","amount_sat":10,"payment_hash":"ab"}"#;
        let c = from_response(&["LSAT macaroon=\"AgEO\", invoice=\"lnbcrt1\"", &v], body).unwrap();
        assert_eq!(c.mode, Mode::Pay);
        assert_eq!(c.macaroon, MAC, "the L402 value wins over the LSAT one");
        assert_eq!(c.route_id, "api");
        assert_eq!(c.amount_sat, Some(10));
    }

    #[test]
    fn a_deposit_without_its_urls_or_anything_else_is_not_usable() {
        let v = format!("L402 macaroon=\"{MAC}\", invoice=\"lnbcrt1\", mode=\"deposit\"");
        assert_eq!(from_response(&[&v], b""), None);
        assert_eq!(from_response(&["Basic realm=\"x\""], b""), None);
        assert_eq!(parse_challenge(&format!("L402 macaroon=\"{MAC}\"")), None);
    }
}
