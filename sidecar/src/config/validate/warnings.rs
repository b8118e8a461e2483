//! Warnings: settings that are valid but leave a hole or can cost an honest visitor.

use super::Issues;
use super::routes::{covers_all_of, path_matches};
use crate::config::{Config, ConfigIssue, Mode};

/// Settings that are valid but leave a hole or can cost an honest visitor: `check-config`
/// prints them and `serve` logs them. Each names the field and the fix.
pub(in crate::config) fn warnings(config: &Config) -> Vec<ConfigIssue> {
    let mut w = Issues::default();
    for (i, route) in config.routes.iter().enumerate() {
        let at = format!("routes[{i}]");
        let later = &config.routes[i + 1..];
        // A later route without host and method restrictions that covers this route's paths
        // catches what this one lets through.
        let caught_later = |needs_any_host: bool, needs_any_method: bool| {
            later.iter().any(|l| {
                l.mode != Mode::Free
                    && (!needs_any_host || l.matcher.host.is_none())
                    && (!needs_any_method || l.matcher.methods.is_empty())
                    && l.matcher.query.is_empty()
                    && covers_all_of(&l.matcher.path, &route.matcher.path)
            })
        };
        if route.mode != Mode::Free
            && !route.matcher.methods.is_empty()
            && !caught_later(false, true)
        {
            w.push(
                format!("{at}.match.methods"),
                format!(
                    "only {} pay here: any other method on the same paths matches no route and \
                     passes free. Remove `methods`, or add a later route for the same paths \
                     without `methods`",
                    route.matcher.methods.join(", ")
                ),
            );
        }
        if route.mode != Mode::Free
            && let Some(host) = &route.matcher.host
            && !caught_later(true, false)
        {
            w.push(
                format!("{at}.match.host"),
                format!(
                    "only requests for {host} pay here: the same paths under any other Host \
                     header (an IP address, another name pointing at this proxy) match no route \
                     and pass free. Make the proxy answer only for {host}, or add a later route \
                     for the same paths without `host`"
                ),
            );
        }
        // First match wins: an earlier route without host, method or query limits whose
        // paths cover this one's takes every request this one would (a test route appended
        // after a catch-all `free` route is never used, and the page stays free).
        if let Some((j, first)) = config.routes[..i].iter().enumerate().find(|(_, e)| {
            e.matcher.host.is_none()
                && e.matcher.methods.is_empty()
                && e.matcher.query.is_empty()
                && covers_all_of(&e.matcher.path, &route.matcher.path)
        }) {
            w.push(
                format!("{at}.match"),
                format!(
                    "never used: routes[{j}] ({}) comes first and matches every request this \
                     route would (the first matching route decides). Move this route above it",
                    first.id
                ),
            );
        }
        if let Some(storm) = route.deposit.as_ref().and_then(|d| d.error_storm) {
            let first_asset = ASSET_PATHS.iter().find(|p| {
                path_matches(&route.matcher.path, p)
                    && !config.routes[..i].iter().any(|e| {
                        e.matcher.host.is_none()
                            && e.matcher.query.is_empty()
                            && path_matches(&e.matcher.path, p)
                    })
            });
            if let Some(asset) = first_asset {
                w.push(
                    format!("{at}.deposit.error_storm"),
                    format!(
                        "counts every 4xx answer on this route, including 404s for files \
                         browsers fetch on their own ({asset}): {} of them would forfeit an \
                         honest visitor's deposit. Put a free route for those paths before this \
                         one, or raise error_storm.errors well above what a page can cause",
                        storm.errors
                    ),
                );
            }
        }
    }
    // Shadow is meant to be temporary: say so wherever it is on, so it is never left on by
    // accident (a site in shadow takes no deposit and deters nobody).
    const SHADOW: &str = "shadow mode: nothing is challenged or charged here, the filter only \
         counts what it would have done (dashboard \"Shadow findings\"). Remove it to enforce \
         once the findings look right";
    if config.shadow {
        w.push(
            "shadow",
            format!("every pay and deposit route is in {SHADOW}"),
        );
    } else {
        for (i, route) in config.routes.iter().enumerate() {
            if config.route_in_shadow(route) {
                w.push(
                    format!("routes[{i}].shadow"),
                    format!("this route is in {SHADOW}"),
                );
            }
        }
    }
    if config.wall.site_name.is_none() && config.routes.iter().any(|r| r.mode != Mode::Free) {
        w.push(
            "wall.site_name",
            "not set: the wall page names the site by its host name only and the wallet memo \
             says \"lightning-wall\"; set the name visitors know the site by (a page that names \
             no site looks like phishing)",
        );
    }
    w.0
}

/// Paths a browser requests on its own, which many sites answer with 404.
const ASSET_PATHS: &[&str] = &[
    "/favicon.ico",
    "/apple-touch-icon.png",
    "/apple-touch-icon-precomposed.png",
    "/robots.txt",
];
