//! The browser wall page end to end: the filter's HTML 402 references only same-origin assets
//! under the wall prefix, and the sidecar's public listener serves each of them, including the
//! QR code of the very invoice on the page. (The page's behaviour in a real browser is
//! `make browser-test`.)

use lightning_wall_e2e::testing::Request;
use lightning_wall_e2e::{Wall, header, status};

/// The values of `attr="…"` in `page`, in order.
fn attributes<'p>(page: &'p str, attr: &str) -> Vec<&'p str> {
    let needle = format!("{attr}=\"");
    page.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &page[i + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

#[test]
fn the_html_402_loads_only_sidecar_assets_and_its_qr_code_is_the_invoice() {
    let mut wall = Wall::start(1);
    let ex = wall.send(&Request::get("/articles/1").header("accept", "text/html,*/*;q=0.8"));
    assert_eq!(status(&ex), Some(402));
    assert_eq!(
        header(&ex, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = header(&ex, "content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let page = String::from_utf8(ex.response.unwrap().body).unwrap();
    assert!(!page.contains("<script>"), "no inline script");

    let invoice = attributes(&page, "data-invoice")[0].to_owned();
    assert!(invoice.starts_with("lnbcrt10u"), "{invoice}");
    assert!(page.contains(&format!("href=\"lightning:{invoice}\"")));
    assert!(page.contains("1,000 sats"));

    // The terms are a link for the visitor to follow, not something the page loads.
    assert!(
        attributes(&page, "href").contains(&"/.well-known/lightning-wall/terms"),
        "the page links to the terms"
    );
    // So is the leave page; the "I have paid" form posts to the wall's continue endpoint.
    let links = [
        "/.well-known/lightning-wall/terms",
        "/.well-known/lightning-wall/leave",
    ];
    assert!(attributes(&page, "href").contains(&links[1]));
    assert_eq!(
        attributes(&page, "action"),
        ["/.well-known/lightning-wall/continue"]
    );
    let mut assets: Vec<&str> = attributes(&page, "src");
    assets.extend(
        attributes(&page, "href")
            .into_iter()
            .filter(|h| h.starts_with('/') && !links.contains(h)),
    );
    assert_eq!(assets.len(), 3, "{assets:?}");
    for asset in assets {
        assert!(asset.starts_with("/.well-known/lightning-wall/"), "{asset}");
        let (code, content_type, body) = wall.public_get(asset);
        assert_eq!(code, 200, "{asset}: {body}");
        let want = match asset.split('?').next().unwrap().rsplit('.').next().unwrap() {
            "js" => "text/javascript",
            "css" => "text/css",
            "svg" => "image/svg+xml",
            other => panic!("unexpected asset type {other}"),
        };
        assert!(content_type.starts_with(want), "{asset}: {content_type}");
        if want == "image/svg+xml" {
            assert!(
                asset.ends_with(&invoice),
                "the QR code is of the page's invoice"
            );
            assert!(body.contains("<svg"));
        }
    }

    // Anything that is not a signed BOLT11 invoice is refused, not drawn.
    for bad in ["lnbcrt1junk", "%3Cscript%3E", ""] {
        let (code, _, body) =
            wall.public_get(&format!("/.well-known/lightning-wall/qr.svg?invoice={bad}"));
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(body.contains("bad_invoice"), "{body}");
    }
    let (code, _, _) = wall.public_get("/.well-known/lightning-wall/qr.svg?invoice=x&extra=1");
    assert_eq!(code, 400);
}

#[test]
fn the_leave_page_is_html_with_a_form_that_posts_to_leave() {
    let wall = Wall::start(1);
    let (code, content_type, body) = wall.public_get("/.well-known/lightning-wall/leave");
    assert_eq!(code, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(body.contains(r#"method="post" action="/.well-known/lightning-wall/leave""#));
    assert!(body.contains(r#"role="status""#));
}

#[test]
fn the_dev_node_reports_invoice_states_as_lnd_names_them() {
    let mut wall = Wall::start(1);
    let (credential, challenge) = wall.held_deposit("/articles/1");
    let hash = challenge["payment_hash"].as_str().unwrap();
    assert_eq!(wall.dev_invoice_state(hash), (200, "ACCEPTED".to_owned()));
    wall.leave(&credential);
    let mut state = wall.dev_invoice_state(hash);
    for _ in 0..200 {
        if state.1 == "CANCELED" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
        state = wall.dev_invoice_state(hash);
    }
    assert_eq!(state, (200, "CANCELED".to_owned()));
    assert_eq!(wall.dev_invoice_state(&"00".repeat(32)).0, 404);
    assert_eq!(wall.dev_invoice_state("nothex").0, 400);
}
