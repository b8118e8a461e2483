//! The demo site's HTML. It borrows the wall's stylesheet (served by the sidecar on the same
//! origin) so the demo and the wall page look alike. Visitor text is escaped with
//! `html_escape`; everything else is fixed text.

const LEAVE: &str = "/.well-known/lightning-wall/leave";

fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title} · lightning-wall demo</title>
<link rel="stylesheet" href="/.well-known/lightning-wall/wall.css">
</head><body><main>
<p class="lw-site"><a href="/">lightning-wall demo site</a></p>
<h1>{title}</h1>
{body}
</main></body></html>
"#
    )
}

pub fn home() -> String {
    layout(
        "Welcome",
        r#"<p>This page is free. The rest of the site sits behind lightning-wall:</p>
<ul>
<li><a href="/api/quote">/api/quote</a>: a paid API (10 sats per token, L402). For API
clients: <code>curl -i http://127.0.0.1:8080/api/quote</code>, pay the invoice, send
<code>Authorization: L402 &lt;macaroon&gt;:&lt;preimage&gt;</code>.</li>
<li><a href="/members/">/members/</a>: the members area behind a refundable deposit of
1,000 sats. Your wallet shows the payment as pending; leave and it is cancelled.</li>
<li><a href="/members/guestbook">/members/guestbook</a>: sign it. Links or sales talk
(<q>buy now</q>) cost the deposit.</li>
<li><a href="/members/review">/members/review</a>: write a review and earn 21 sats.</li>
<li><code>/wp-login.php</code>: a trap. A visitor with a deposit who asks for it loses the
deposit. (Bots probe it; people do not.)</li>
</ul>
<p>Paying on the demo's development node: <code>lightning-wall dev pay &lt;invoice&gt;</code>
(no real money).</p>"#,
    )
}

pub fn members() -> String {
    layout(
        "Members area",
        &format!(
            r#"<p>Your deposit is held: you are in. Browse as long as you like.</p>
<ul>
<li><a href="/members/guestbook">Guestbook</a></li>
<li><a href="/members/review">Write a review (21 sats)</a></li>
</ul>
<p><a class="lw-button" id="leave" href="{LEAVE}">Leave and get my deposit back</a></p>"#
        ),
    )
}

pub fn guestbook(entries: &[String]) -> String {
    let list: String = entries
        .iter()
        .rev()
        .map(|e| format!("<li>{}</li>", html_escape::encode_text(e)))
        .collect();
    layout(
        "Guestbook",
        &format!(
            r#"<form method="post" action="/members/guestbook">
<label for="message">Your message</label>
<textarea id="message" name="message" rows="3" maxlength="500" required></textarea>
<p class="lw-hint">No links and no sales talk: spam costs your deposit.</p>
<button type="submit">Sign</button>
</form>
<h2>Entries</h2>
<ul id="entries">{list}</ul>
<p><a href="/members/">Back to the members area</a></p>"#
        ),
    )
}

pub fn spam() -> String {
    layout(
        "Spam refused",
        "<p>This looked like spam. The site told lightning-wall, and your deposit was kept by \
         the site.</p>",
    )
}

pub fn review_form(min: usize, reward: u32) -> String {
    layout(
        "Write a review",
        &format!(
            r#"<form method="post" action="/members/review">
<label for="review">Your review (at least {min} characters)</label>
<textarea id="review" name="review" rows="4" minlength="{min}" maxlength="500" required></textarea>
<button type="submit">Send review</button>
</form>
<p>An accepted review earns {reward} sats, credited to your session.</p>
<p><a href="/members/">Back to the members area</a></p>"#
        ),
    )
}

pub fn reviewed(reward: u32) -> String {
    layout(
        "Thank you",
        &format!(
            r#"<p>Review accepted: {reward} sats credited to your session.</p>
<p><a href="/members/">Back to the members area</a></p>"#
        ),
    )
}

pub fn message(title: &str, text: &str) -> String {
    layout(title, &format!("<p>{}</p>", html_escape::encode_text(text)))
}
