//! What the browser wall page loads from the sidecar (public listener, same origin as the site
//! through Envoy's `/.well-known/lightning-wall/` route): its script and stylesheet, the QR code
//! of the invoice (rendered here, so the page makes no request to a third party), and the leave
//! page. The filter's 402 page is a small HTML shell that references these, which keeps the
//! `.wasm` small and the page free of inline script.

use std::str::FromStr;

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::AppState;
use super::credential::PREFIX;
use super::error::ApiError;
use crate::config::WallConfig;
use crate::reload::Loaded;
use lightning_wall_contract::wall_text::{escape_html, fill, sats, text};

const WALL_JS: &str = include_str!("wall_page/wall.js");
const WALL_CSS: &str = include_str!("wall_page/wall.css");
const LEAVE_HTML: &str = include_str!("wall_page/leave.html");

/// Same-origin script, style, images and fetches only; nothing may frame the page.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Longest invoice the QR endpoint renders. BOLT11 invoices with a few route hints stay well
/// under this; a QR code of this many characters is already hard to scan.
pub const MAX_QR_INVOICE: usize = 2048;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{PREFIX}/wall.js"), get(wall_js))
        .route(&format!("{PREFIX}/wall.css"), get(wall_css))
        .route(&format!("{PREFIX}/qr.svg"), get(qr_svg))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn wall_js() -> Response {
    asset("text/javascript; charset=utf-8", WALL_JS)
}

async fn wall_css() -> Response {
    asset("text/css; charset=utf-8", WALL_CSS)
}

/// `GET /.well-known/lightning-wall/leave` (routed in wall.rs next to the POST action).
pub async fn leave_page() -> Response {
    html(LEAVE_HTML.to_owned())
}

/// The answer to the leave page's form posted without a script (wall.rs `leave`; with one,
/// wall.js reads the JSON and follows the refund itself): the deposit goes back, or had
/// already ended. English, as the leave page.
pub fn left_page(loaded: &Loaded, host: &str, state: &str, amount_sat: u64) -> Response {
    let (wall, t) = (&loaded.config.wall, &loaded.texts);
    let (title, main) = if matches!(state, "leaving" | "refunded") {
        (
            "Deposit refunded".to_owned(),
            format!(
                "<p>Your deposit of {amount} goes back to your wallet within seconds: the payment \
                 it shows as pending fails, and the sats are spendable again.</p>",
                amount = escape_html(&sats(amount_sat, t)),
            ),
        )
    } else {
        (
            text(t, "deposit_ended_title").to_owned(),
            format!(
                "<p>{}</p>",
                escape_html(&fill(text(t, "ended"), &[("state", state)]))
            ),
        )
    };
    page(
        "en",
        &site(wall, host),
        &title,
        &format!("{main}\n<p><a href=\"/\">Back to the site</a></p>"),
    )
}

/// The answer to the wall page's "I have paid" form when there is nothing to continue to yet
/// (wall.rs `continue_after_paying`): not paid yet (the invoice again, and the same form), or
/// the deposit ended (a link back, where a new wall waits). No script: this is the
/// no-JavaScript path.
pub fn continue_page(
    loaded: &Loaded,
    host: &str,
    awaiting: bool,
    state: &str,
    invoice: &str,
    macaroon: &str,
    to: &str,
) -> Response {
    let (wall, t) = (&loaded.config.wall, &loaded.texts);
    let to = escape_html(to);
    let (title, main) = if awaiting {
        let invoice = escape_html(invoice);
        (
            text(t, "not_paid_title"),
            format!(
                "<p>{not_paid}</p>\n<img class=\"lw-qr\" src=\"{PREFIX}/qr.svg?invoice={invoice}\" \
                 alt=\"{qr_alt}\" width=\"288\" height=\"288\">\n<p><a class=\"lw-button\" \
                 href=\"lightning:{invoice}\">{open}</a></p>\n<label for=\"lw-invoice\">{label}\
                 </label><textarea id=\"lw-invoice\" readonly>{invoice}</textarea>\n<form \
                 method=\"post\" action=\"{PREFIX}/continue\"><input type=\"hidden\" \
                 name=\"macaroon\" value=\"{macaroon}\"><input type=\"hidden\" name=\"to\" \
                 value=\"{to}\"><button type=\"submit\">{check}</button></form>\n",
                not_paid = escape_html(text(t, "not_paid_yet")),
                qr_alt = escape_html(text(t, "qr_alt")),
                open = escape_html(text(t, "open_wallet")),
                label = escape_html(text(t, "invoice_label")),
                macaroon = escape_html(macaroon),
                check = escape_html(text(t, "check_payment")),
            ),
        )
    } else {
        (
            text(t, "deposit_ended_title"),
            format!(
                "<p>{ended}</p>\n<p><a href=\"{to}\">{link}</a></p>\n",
                ended = escape_html(&fill(text(t, "ended"), &[("state", state)])),
                link = escape_html(text(t, "continue_link")),
            ),
        )
    };
    page(&wall.lang, &site(wall, host), title, &main)
}

/// Whether the client reads HTML (a browser's `Accept` names `text/html`; programs ask for JSON
/// or nothing): it gets a page instead of the JSON.
pub fn accepts_html(headers: &HeaderMap) -> bool {
    header_text(headers, header::ACCEPT).contains("text/html")
}

/// A header's value, lowercased; "" when absent or not text.
pub fn header_text(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The site's name for a page, escaped: `wall.site_name`, else the request's host without its
/// port.
fn site(wall: &WallConfig, host: &str) -> String {
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    escape_html(wall.site_name.as_deref().unwrap_or(host))
}

/// A page of the no-JavaScript paths: the site's name, a title and `main` (HTML, escaped by
/// the caller), with the wall's stylesheet.
fn page(lang: &str, site: &str, title: &str, main: &str) -> Response {
    html(format!(
        "<!doctype html><html lang=\"{lang}\"><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · {site}</title><link rel=\"stylesheet\" href=\"{PREFIX}/wall.css\">\n\
         <main><p class=\"lw-site\">{site}</p><h1>{title}</h1>\n{main}</main>",
        lang = escape_html(lang),
        title = escape_html(title),
    ))
}

/// An HTML answer of the wall's own: never cached, scripts only from the wall (`CSP`).
fn html(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QrQuery {
    invoice: String,
}

/// The QR code of `lightning:<invoice>`, as SVG. Only a well-formed, correctly signed BOLT11
/// invoice of bounded length is rendered, so the endpoint cannot be used to draw arbitrary
/// content on the site's origin.
async fn qr_svg(
    query: Result<Query<QrQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::bad_request("bad_query", format!("query: {e}")))?;
    let svg = render_qr(&query.invoice)?;
    let mut response = svg.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    // An invoice never changes, so its picture can be cached as long as the invoice lives.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

fn render_qr(invoice: &str) -> Result<String, ApiError> {
    let bad = |why: &str| ApiError::bad_request("bad_invoice", format!("invoice: {why}"));
    if invoice.len() > MAX_QR_INVOICE {
        return Err(bad("too long"));
    }
    lightning_invoice::Bolt11Invoice::from_str(invoice)
        .map_err(|_| bad("not a valid BOLT11 invoice"))?;
    // Upper case puts the whole URI in the QR alphanumeric mode (smaller, easier to scan);
    // BOLT11 and the `lightning:` scheme are case-insensitive (BIP 21 / BOLT 11).
    let uri = format!("LIGHTNING:{}", invoice.to_ascii_uppercase());
    svg_qr_code(&uri).ok_or_else(|| bad("too long for a QR code"))
}

/// `text` as an SVG QR code (low error correction: screens, not print), `None` when too long.
/// The one QR renderer of the sidecar: wall invoices and rewards LNURLs.
pub(super) fn svg_qr_code(text: &str) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::L).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(256, 256)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_accepts_html_and_a_program_does_not() {
        let with = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            h
        };
        assert!(accepts_html(&with(
            "text/html,application/xhtml+xml,*/*;q=0.8"
        )));
        assert!(
            accepts_html(&with("Text/HTML")),
            "media types are case-insensitive"
        );
        assert!(!accepts_html(&with("application/json")));
        assert!(!accepts_html(&HeaderMap::new()));
    }

    /// A correctly signed regtest invoice, as the dev node or lnd issues them.
    fn signed_invoice() -> String {
        use bitcoin::hashes::{Hash, sha256};
        use bitcoin::secp256k1::{Secp256k1, SecretKey};
        use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
        let secp = Secp256k1::new();
        let key = SecretKey::from_slice(&[7; 32]).unwrap();
        InvoiceBuilder::new(Currency::Regtest)
            .description("deposit".into())
            .payment_hash(sha256::Hash::from_byte_array([1; 32]))
            .payment_secret(PaymentSecret([2; 32]))
            .duration_since_epoch(std::time::Duration::from_secs(1_767_225_600))
            .min_final_cltv_expiry_delta(144)
            .amount_milli_satoshis(1_000_000)
            .build_signed(|m| secp.sign_ecdsa_recoverable(m, &key))
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_signed_invoice_becomes_an_svg_qr_code_and_a_tampered_one_is_refused() {
        let invoice = signed_invoice();
        let svg = render_qr(&invoice).unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        assert!(svg.contains("<path"), "{svg}");
        // Changing one character breaks the bech32 checksum (or the signature).
        let mut tampered = invoice.into_bytes();
        let last = tampered.len() - 8;
        tampered[last] = if tampered[last] == b'q' { b'p' } else { b'q' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            render_qr(&tampered).map_err(|e| e.code).err(),
            Some("bad_invoice")
        );
    }

    #[test]
    fn only_bounded_signed_bolt11_invoices_are_drawn() {
        assert_eq!(
            render_qr("lnbc1notaninvoice").map_err(|e| e.code).err(),
            Some("bad_invoice")
        );
        assert_eq!(
            render_qr(&"a".repeat(MAX_QR_INVOICE + 1))
                .map_err(|e| e.code)
                .err(),
            Some("bad_invoice")
        );
        assert_eq!(
            render_qr("<script>alert(1)</script>")
                .map_err(|e| e.code)
                .err(),
            Some("bad_invoice")
        );
    }

    #[test]
    fn the_page_shell_assets_reference_only_the_wall_prefix() {
        assert!(LEAVE_HTML.contains(&format!("{PREFIX}/wall.js")));
        assert!(LEAVE_HTML.contains(&format!("{PREFIX}/wall.css")));
        assert!(!LEAVE_HTML.contains("<script>"), "no inline script (CSP)");
        assert!(WALL_JS.contains("'/.well-known/lightning-wall/'"));
    }
}
