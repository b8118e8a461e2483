//! What a live reload may change. `routes`, `shadow` and `wall` are the filter's policy and the
//! pages' texts: both are read per request (the minter, the terms, the wall endpoints) or reach the
//! filter by its sync, and nothing already decided depends on them. A held deposit keeps the
//! rules it was opened with (its idle timeout and session cap are stored with it), so a route
//! switched to `free` or repriced changes no money already taken: its deposits end by the
//! normal idle, leave and cap rules. Every other section is read once at start (listeners,
//! node, store, keys, deposits' timing, limits' counters and budgets, rewards, data_dir):
//! changing one needs a restart, and the reload is refused as a whole, naming it.

use serde::Serialize;

use super::Config;

/// The sections a reload applies.
pub const RELOADABLE: &[&str] = &["routes", "shadow", "wall"];

/// What a reload would do.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing that matters changed (comments, formatting, key order).
    Unchanged,
    /// Only reloadable sections changed: these.
    Apply(Vec<&'static str>),
    /// These sections changed and are read only at start: keep the old config.
    RestartNeeded(Vec<&'static str>),
}

fn value(v: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Every top-level section, by name, as compared. The destructuring names every field of
/// [`Config`] so that a new section cannot be left out (it would compare as unchanged, and a
/// reload would silently ignore it): the compiler asks for it here.
fn sections(c: &Config) -> [(&'static str, serde_json::Value); 11] {
    let Config {
        data_dir,
        node,
        store,
        keys,
        listeners,
        deposits,
        limits,
        routes,
        rewards,
        wall,
        shadow,
        source: _,
    } = c;
    [
        ("data_dir", value(data_dir)),
        ("node", value(node)),
        ("store", value(store)),
        ("keys", value(keys)),
        ("listeners", value(listeners)),
        ("deposits", value(deposits)),
        ("limits", value(limits)),
        ("routes", value(routes)),
        ("rewards", value(rewards)),
        ("wall", value(wall)),
        ("shadow", value(shadow)),
    ]
}

/// Compares the running config with a new, valid one.
pub fn compare(old: &Config, new: &Config) -> Change {
    let changed: Vec<&'static str> = sections(old)
        .into_iter()
        .zip(sections(new))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((name, _), _)| name)
        .collect();
    let fixed: Vec<&'static str> = changed
        .iter()
        .copied()
        .filter(|name| !RELOADABLE.contains(name))
        .collect();
    if !fixed.is_empty() {
        Change::RestartNeeded(fixed)
    } else if changed.is_empty() {
        Change::Unchanged
    } else {
        Change::Apply(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::tests::MINIMAL as BASE;

    fn config(yaml: &str) -> Config {
        Config::from_text(yaml, None).unwrap()
    }

    #[test]
    fn a_route_switched_to_free_or_a_reworded_wall_is_applied_live() {
        let free = BASE.replace(
            "    mode: deposit\n    deposit: { amount_sat: 1000 }\n",
            "    mode: free\n",
        );
        assert_eq!(
            compare(&config(BASE), &config(&free)),
            Change::Apply(vec!["routes"])
        );
        let worded = format!("{BASE}wall: {{ site_name: Shop }}\n");
        assert_eq!(
            compare(&config(BASE), &config(&worded)),
            Change::Apply(vec!["wall"])
        );
        // Shadow mode for the whole config, on and off, without a restart.
        let shadowed = format!("shadow: true\n{BASE}");
        assert_eq!(
            compare(&config(BASE), &config(&shadowed)),
            Change::Apply(vec!["shadow"])
        );
        assert_eq!(
            compare(&config(&shadowed), &config(BASE)),
            Change::Apply(vec!["shadow"])
        );
    }

    #[test]
    fn comments_and_formatting_change_nothing() {
        let commented = format!("# a comment\n{BASE}\n\n");
        assert_eq!(
            compare(&config(BASE), &config(&commented)),
            Change::Unchanged
        );
    }

    #[test]
    fn a_section_read_at_start_needs_a_restart_and_is_named() {
        let moved = format!("{BASE}listeners: {{ internal: {{ bind: \"127.0.0.1:9999\" }} }}\n");
        assert_eq!(
            compare(&config(BASE), &config(&moved)),
            Change::RestartNeeded(vec!["listeners"])
        );
        // Together with a reloadable change: nothing is applied, the fixed one is named.
        let both = format!(
            "{}limits: {{ max_held_deposits: 7 }}\n",
            BASE.replace("1000", "2000")
        );
        assert_eq!(
            compare(&config(BASE), &config(&both)),
            Change::RestartNeeded(vec!["limits"])
        );
    }
}
