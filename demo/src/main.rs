//! `lightning-wall-demo-site`: the upstream application of `make demo`. A demo, not a product:
//! it exists to show what a site behind lightning-wall sees and how it talks back (verdict and
//! reward response headers). The wall itself (402, deposits, traps) is the filter's job; this
//! site never checks a payment.

mod pages;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use serde::Deserialize;

/// Response header that tells the filter to settle (forfeit) the visitor's deposit.
const VERDICT: HeaderName = HeaderName::from_static("x-lightning-wall-verdict");
/// Response headers that ask the sidecar to credit the visitor (rewards).
const REWARD: HeaderName = HeaderName::from_static("x-lightning-wall-reward");
const REWARD_ID: HeaderName = HeaderName::from_static("x-lightning-wall-reward-id");
/// Sats credited for an accepted review.
const REVIEW_REWARD_SAT: u32 = 21;
/// Guestbook entries kept in memory (the demo has no database).
const GUESTBOOK_KEEP: usize = 20;
/// Longest guestbook entry or review accepted, in characters.
const MAX_TEXT: usize = 500;
/// Shortest review that earns the reward.
const MIN_REVIEW: usize = 20;

#[derive(Parser)]
#[command(
    name = "lightning-wall-demo-site",
    about = "The demo upstream of `make demo` (a demo, not a product)"
)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
}

#[derive(Clone)]
struct Site {
    guestbook: Arc<Mutex<Vec<String>>>,
    reviews: Arc<AtomicU64>,
    /// Start time, so review ids stay unique across restarts of the demo.
    started: u64,
}

fn router(site: Site) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/api/quote", get(quote))
        .route("/members/", get(members))
        .route("/members/guestbook", get(guestbook).post(sign_guestbook))
        .route("/members/review", get(review_form).post(review))
        .route("/wp-login.php", get(trap).post(trap))
        // Browsers ask for it on every page; an empty answer keeps their consoles quiet.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .fallback(not_found)
        .with_state(site)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let site = Site {
        guestbook: Arc::new(Mutex::new(Vec::new())),
        reviews: Arc::new(AtomicU64::new(0)),
        started: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!(
        "lightning-wall-demo-site: listening on http://{} (demo upstream)",
        args.listen
    );
    axum::serve(listener, router(site))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

async fn home() -> Html<String> {
    Html(pages::home())
}

/// The paid API: the filter lets the request through only with a paid L402 token and tells us
/// which (`x-lightning-wall-token`), so the site could meter usage per token.
async fn quote(headers: HeaderMap) -> Json<serde_json::Value> {
    let mode = headers
        .get("x-lightning-wall-mode")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    Json(serde_json::json!({
        "quote": "Running bitcoin is a public service.",
        "paid": mode == "pay",
        "lightning_wall_mode": mode,
    }))
}

async fn members() -> Html<String> {
    Html(pages::members())
}

async fn guestbook(State(site): State<Site>) -> Html<String> {
    let entries = site
        .guestbook
        .lock()
        .map(|g| g.clone())
        .unwrap_or_else(|e| e.into_inner().clone());
    Html(pages::guestbook(&entries))
}

#[derive(Deserialize)]
struct Entry {
    message: String,
}

/// What the demo treats as spam: links and sales talk. A real site would use its own rules.
fn is_spam(text: &str) -> bool {
    let lower = text.to_lowercase();
    ["http://", "https://", "buy now", "www."]
        .iter()
        .any(|needle| lower.contains(needle))
}

async fn sign_guestbook(State(site): State<Site>, Form(entry): Form<Entry>) -> Response {
    let text = entry.message.trim();
    if is_spam(text) {
        // The verdict header makes the filter settle this visitor's deposit: spam costs money.
        let mut response = (StatusCode::FORBIDDEN, Html(pages::spam())).into_response();
        response
            .headers_mut()
            .insert(VERDICT, HeaderValue::from_static("forfeit"));
        return response;
    }
    if text.is_empty() || text.chars().count() > MAX_TEXT {
        return (
            StatusCode::BAD_REQUEST,
            Html(pages::message(
                "Not signed",
                &format!("Write between 1 and {MAX_TEXT} characters."),
            )),
        )
            .into_response();
    }
    let mut book = site.guestbook.lock().unwrap_or_else(|e| e.into_inner());
    book.push(text.to_owned());
    let excess = book.len().saturating_sub(GUESTBOOK_KEEP);
    book.drain(..excess);
    Redirect::to("/members/guestbook").into_response()
}

async fn review_form() -> Html<String> {
    Html(pages::review_form(MIN_REVIEW, REVIEW_REWARD_SAT))
}

#[derive(Deserialize)]
struct Review {
    review: String,
}

async fn review(State(site): State<Site>, Form(form): Form<Review>) -> Response {
    let length = form.review.trim().chars().count();
    if !(MIN_REVIEW..=MAX_TEXT).contains(&length) {
        return (
            StatusCode::BAD_REQUEST,
            Html(pages::message(
                "Review not accepted",
                &format!("Write between {MIN_REVIEW} and {MAX_TEXT} characters."),
            )),
        )
            .into_response();
    }
    let n = site.reviews.fetch_add(1, Ordering::Relaxed);
    let id = format!("review-{}-{n}", site.started);
    let mut response = Html(pages::reviewed(REVIEW_REWARD_SAT)).into_response();
    let headers = response.headers_mut();
    headers.insert(REWARD, HeaderValue::from(REVIEW_REWARD_SAT));
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(REWARD_ID, v);
    }
    response
}

/// Reached only without the filter in front: with it, a deposit holder is fined on this path
/// and everyone else gets a 402.
async fn trap() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(pages::message(
            "Trap path",
            "No WordPress here. Behind lightning-wall a visitor with a deposit who requests this \
             path loses the deposit before the site sees the request.",
        )),
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        Html(pages::message("Not found", "Nothing here.")),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_sales_talk_are_spam_plain_text_is_not() {
        assert!(is_spam("great site, BUY NOW at my shop"));
        assert!(is_spam("see http://spam.example"));
        assert!(is_spam("www.example.com"));
        assert!(!is_spam("Thanks for the nice articles!"));
    }
}
