//! The monitoring files in deploy/monitoring/ against the sidecar's real metrics: every metric
//! an alert rule or a dashboard panel queries must be one the sidecar exposes (rendered here by
//! `Metrics` itself, with one sample in every family), every label it filters or groups by one
//! that metric carries, every `state`/`outcome` value a deposit state; and the files must have
//! the shape Prometheus and Grafana load. A renamed metric fails here, not on a silent
//! dashboard.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use lightning_wall::deposit::DepositState;
use lightning_wall::metrics::{ErrorLabel, Metrics, ModeLabel, OutcomeLabel};

const ALERTS: &str = include_str!("../../deploy/monitoring/prometheus-alerts.yaml");
const DASHBOARD: &str = include_str!("../../deploy/monitoring/grafana-dashboard.json");

/// Labels Prometheus adds to every scraped series, and histogram buckets' `le`.
const SCRAPE_LABELS: &[&str] = &["job", "instance", "le"];

/// Series name -> label names, from the sidecar's own exposition.
fn exposed() -> BTreeMap<String, BTreeSet<String>> {
    let m = Metrics::new();
    m.challenges.get_or_create(&ModeLabel { mode: "pay" }).inc();
    m.challenges_refused
        .get_or_create(&ErrorLabel { kind: "node" })
        .inc();
    m.deposit_outcomes
        .get_or_create(&OutcomeLabel {
            outcome: "refunded",
            trigger: "visitor_left",
        })
        .inc();
    m.observe_node_call("settle", Duration::from_millis(3));
    m.error("node_action");
    m.set_deposit_counts(&[]);
    m.reward_credit("credited");
    m.reward_credited_msat.inc();
    m.reward_payout("failed");
    m.reward_paid_msat.inc();
    let mut series: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in m.render().lines().filter(|l| !l.starts_with('#')) {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = series.entry(line[..name_end].to_owned()).or_default();
        if let Some(inner) = line
            .get(name_end + 1..)
            .filter(|_| line[name_end..].starts_with('{'))
        {
            let inner = &inner[..inner.find('}').unwrap()];
            for pair in inner.split(',') {
                labels.insert(pair.split('=').next().unwrap().to_owned());
            }
        }
    }
    series
}

/// One label matcher of a selector: (label, operator, value).
type Matcher = (String, String, String);

/// Every `lightning_wall_*` selector in a PromQL expression: (metric, its matchers).
fn selectors(expr: &str) -> Vec<(String, Vec<Matcher>)> {
    let mut found = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("lightning_wall_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].to_owned();
        let mut matchers = Vec::new();
        if tail[end..].starts_with('{') {
            let close = tail[end..].find('}').expect("unclosed selector") + end;
            for m in tail[end + 1..close]
                .split(',')
                .filter(|m| !m.trim().is_empty())
            {
                let op_at = m.find(['=', '!']).expect("a label matcher has an operator");
                let op_len = if m[op_at + 1..].starts_with(['=', '~']) {
                    2
                } else {
                    1
                };
                let value = m[op_at + op_len..].trim().trim_matches('"').to_owned();
                matchers.push((
                    m[..op_at].trim().to_owned(),
                    m[op_at..op_at + op_len].to_owned(),
                    value,
                ));
            }
        }
        found.push((name, matchers));
        rest = &tail[end..];
    }
    found
}

/// Labels of `by (…)` / `without (…)` clauses.
fn grouping_labels(expr: &str) -> Vec<String> {
    let mut labels = Vec::new();
    for keyword in ["by (", "without ("] {
        let mut rest = expr;
        while let Some(at) = rest.find(keyword) {
            let tail = &rest[at + keyword.len()..];
            let close = tail.find(')').unwrap();
            labels.extend(tail[..close].split(',').map(|l| l.trim().to_owned()));
            rest = &tail[close..];
        }
    }
    labels
}

/// Problems of one expression against the exposition.
fn check_expr(
    where_: &str,
    expr: &str,
    series: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let states: BTreeSet<&str> = DepositState::ALL.iter().map(|s| s.as_str()).collect();
    let mut problems = Vec::new();
    let found = selectors(expr);
    if found.is_empty() {
        problems.push(format!(
            "{where_}: queries no lightning_wall metric: {expr}"
        ));
    }
    let mut labels_in_expr: BTreeSet<&str> = SCRAPE_LABELS.iter().copied().collect();
    for (name, matchers) in &found {
        let Some(known) = series.get(name) else {
            problems.push(format!(
                "{where_}: {name} is not a metric the sidecar exposes"
            ));
            continue;
        };
        labels_in_expr.extend(known.iter().map(String::as_str));
        for (label, op, value) in matchers {
            if !known.contains(label) && !SCRAPE_LABELS.contains(&label.as_str()) {
                problems.push(format!("{where_}: {name} has no label {label:?}"));
            }
            if op == "="
                && (label == "state" || label == "outcome")
                && !states.contains(value.as_str())
            {
                problems.push(format!(
                    "{where_}: {label}={value:?} is not a deposit state"
                ));
            }
        }
    }
    for label in grouping_labels(expr) {
        if !labels_in_expr.contains(label.as_str()) {
            problems.push(format!(
                "{where_}: groups by {label:?}, which no metric here carries"
            ));
        }
    }
    problems
}

#[test]
fn every_alert_rule_queries_real_metrics_and_has_what_prometheus_needs() {
    let series = exposed();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(ALERTS).unwrap();
    let groups = doc["groups"].as_sequence().expect("groups: a list");
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    let mut rules = 0;
    for group in groups {
        assert!(group["name"].as_str().is_some_and(|n| !n.is_empty()));
        for rule in group["rules"].as_sequence().expect("rules: a list") {
            rules += 1;
            let alert = rule["alert"].as_str().expect("every rule is an alert");
            assert!(
                names.insert(alert.to_owned()),
                "{alert}: duplicate alert name"
            );
            let expr = rule["expr"].as_str().expect("expr: a string");
            problems.extend(check_expr(alert, expr, &series));
            let severity = rule["labels"]["severity"].as_str();
            if !matches!(severity, Some("warning" | "critical")) {
                problems.push(format!(
                    "{alert}: labels.severity must be warning or critical"
                ));
            }
            if rule["annotations"]["summary"]
                .as_str()
                .is_none_or(str::is_empty)
            {
                problems.push(format!("{alert}: annotations.summary is missing"));
            }
            if let Some(hold) = rule.get("for") {
                let hold = hold.as_str().unwrap_or("");
                let (n, unit) = hold.split_at(hold.len().saturating_sub(1));
                if n.parse::<u32>().is_err() || !["s", "m", "h", "d"].contains(&unit) {
                    problems.push(format!(
                        "{alert}: for: {hold:?} is not a Prometheus duration"
                    ));
                }
            }
            for key in rule.as_mapping().unwrap().keys() {
                let key = key.as_str().unwrap();
                if ![
                    "alert",
                    "expr",
                    "for",
                    "labels",
                    "annotations",
                    "keep_firing_for",
                ]
                .contains(&key)
                {
                    problems.push(format!("{alert}: unknown field {key:?}"));
                }
            }
        }
    }
    assert!(rules >= 5, "{rules} rules");
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn every_dashboard_panel_queries_real_metrics() {
    let series = exposed();
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    assert_eq!(dashboard["uid"], "lightning-wall");
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    let mut problems = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "{title}: duplicate id"
        );
        assert!(
            panel["gridPos"]["w"].as_u64().is_some(),
            "{title}: no gridPos"
        );
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            problems.extend(check_expr(title, target["expr"].as_str().unwrap(), &series));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_check_catches_a_renamed_metric_a_wrong_label_and_a_wrong_state() {
    let series = exposed();
    assert!(!check_expr("t", "sum(lightning_wall_deposits_total)", &series).is_empty());
    assert!(!check_expr("t", r#"lightning_wall_deposits{status="held"}"#, &series).is_empty());
    assert!(!check_expr("t", r#"lightning_wall_deposits{state="hold"}"#, &series).is_empty());
    assert!(!check_expr("t", "sum by (route) (lightning_wall_deposits)", &series).is_empty());
    assert!(
        check_expr(
            "t",
            r#"sum by (state) (lightning_wall_deposits{state="held"})"#,
            &series
        )
        .is_empty()
    );
}
