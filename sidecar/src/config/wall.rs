//! `wall:` — what the visitor reads: the site's name (wall page, the pages the filter answers
//! for browsers, the wallet memo), the page language, and any text in another wording or
//! language (`text:`, keys and English defaults in `contract/src/wall_text.en.json`).

use serde::{Deserialize, Serialize};

use lightning_wall_contract::wall_text::{self, Texts};

/// Longest site name: it goes into every invoice's description (BOLT 11 allows 639 bytes).
pub const MAX_SITE_NAME: usize = 64;
/// Longest text: a paragraph, not a page.
pub const MAX_TEXT: usize = 600;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WallConfig {
    /// The site's name as visitors know it. Unset: the pages show the request's host name and
    /// the memo says "lightning-wall".
    #[serde(default)]
    pub site_name: Option<String>,
    /// The pages' language tag (`<html lang>`), e.g. `de` or `pt-BR`.
    #[serde(default = "default_lang")]
    pub lang: String,
    /// Texts replacing the English defaults, by key.
    #[serde(default)]
    pub text: Texts,
}

fn default_lang() -> String {
    "en".into()
}

impl Default for WallConfig {
    fn default() -> Self {
        WallConfig {
            site_name: None,
            lang: default_lang(),
            text: Texts::new(),
        }
    }
}

impl WallConfig {
    /// Every text, the operator's over the defaults.
    pub fn texts(&self) -> Texts {
        wall_text::merged(&self.text)
    }

    /// The name the memo gives the site.
    pub fn memo_site(&self) -> &str {
        self.site_name.as_deref().unwrap_or("lightning-wall")
    }

    /// Problems as (field path, message).
    pub(super) fn issues(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let plain = |s: &str| !s.chars().any(char::is_control);
        if let Some(name) = &self.site_name
            && (name.trim().is_empty() || name.len() > MAX_SITE_NAME || !plain(name))
        {
            out.push((
                "wall.site_name".into(),
                format!("must be 1 to {MAX_SITE_NAME} bytes of text without control characters"),
            ));
        }
        let lang_ok = !self.lang.is_empty()
            && self.lang.len() <= 35
            && self.lang.split('-').all(|part| {
                (1..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric())
            });
        if !lang_ok {
            out.push((
                "wall.lang".into(),
                "must be a language tag such as en, de or pt-BR".into(),
            ));
        }
        let defaults = wall_text::defaults();
        for (key, value) in &self.text {
            let at = format!("wall.text.{key}");
            let Some(default) = defaults.get(key) else {
                let known: Vec<&str> = defaults.keys().map(String::as_str).collect();
                out.push((
                    at,
                    format!("unknown text; the keys are: {}", known.join(", ")),
                ));
                continue;
            };
            if value.len() > MAX_TEXT || !plain(value) {
                out.push((
                    at,
                    format!("must be at most {MAX_TEXT} bytes without control characters"),
                ));
                continue;
            }
            // A placeholder the default does not have would be shown as typed.
            let allowed = wall_text::placeholders(default);
            if let Some(bad) = wall_text::placeholders(value)
                .into_iter()
                .find(|p| !allowed.contains(p))
            {
                let allowed: Vec<String> = allowed.iter().map(|p| format!("{{{p}}}")).collect();
                out.push((
                    at,
                    format!(
                        "{{{bad}}} is not filled in here; this text may use: {}",
                        if allowed.is_empty() {
                            "none".to_owned()
                        } else {
                            allowed.join(" ")
                        }
                    ),
                ));
            }
        }
        out
    }
}
