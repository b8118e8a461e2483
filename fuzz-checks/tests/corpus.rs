//! Replays every committed fuzz corpus file (fuzz/corpus/<target>/*) through its target's
//! checks on the stable toolchain, so `make test` (and CI, which has no time for sanitizer
//! builds) catches a regression on any input the fuzzers have kept. Also keeps the three lists
//! in step: the fuzz crate's targets, the corpus directories and `TARGETS`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use lightning_wall_fuzz_checks::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn names(list: impl Iterator<Item = String>) -> BTreeSet<String> {
    list.collect()
}

#[test]
fn every_fuzz_target_has_checks_and_a_corpus() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    let bins = names(manifest.lines().filter_map(|l| {
        l.strip_prefix("name = \"")
            .and_then(|r| r.strip_suffix('"'))
            .filter(|n| *n != "lightning-wall-fuzz")
            .map(str::to_owned)
    }));
    let corpora = names(
        std::fs::read_dir(fuzz_dir().join("corpus"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap()),
    );
    let checks = names(TARGETS.iter().map(|(n, _)| (*n).to_owned()));
    assert_eq!(bins, checks, "fuzz/Cargo.toml [[bin]]s vs TARGETS");
    assert_eq!(corpora, checks, "fuzz/corpus/ directories vs TARGETS");
    for name in &checks {
        let target =
            std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs"))).unwrap();
        assert!(
            target.contains(&format!("lightning_wall_fuzz_checks::{name}(")),
            "fuzz_targets/{name}.rs must call lightning_wall_fuzz_checks::{name}"
        );
    }
}

#[test]
fn every_committed_corpus_file_passes_its_checks() {
    let mut replayed = 0;
    for (name, check) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} has no seeds", dir.display());
        for file in files {
            let data = std::fs::read(&file).unwrap();
            // A panic names the file: that input is the reproducer.
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{} fails its checks", file.display());
            replayed += 1;
        }
    }
    println!("replayed {replayed} corpus files");
}

/// The seeds named as valid reach the parsers' success paths, so that fuzzing starts from deep
/// inside each parser rather than from its first refusal.
#[test]
fn the_valid_seeds_are_accepted() {
    use lightning_wall_filter::engine::challenge::{Outcome, outcome};
    use lightning_wall_filter::engine::config::PluginConfig;
    use lightning_wall_filter::engine::pages::Browser;
    use lightning_wall_filter::engine::policy::{FailureMode, Policy};

    let seed = |target: &str, name: &str| {
        std::fs::read(fuzz_dir().join("corpus").join(target).join(name)).unwrap()
    };
    for name in ["minimal", "full", "open_bounds"] {
        PluginConfig::parse(&seed("filter_config", name)).unwrap();
    }
    let boot = seed("filter_answers", "bootstrap");
    assert_eq!(Policy::from_bootstrap(&boot[1..]).unwrap().routes.len(), 4);
    for name in ["challenge_pay_json", "challenge_deposit_html"] {
        let answer = seed("filter_answers", name);
        let browser = Browser::of(Some(b"text/html"), "GET", "/", "site.example");
        let browser = browser
            .as_ref()
            .filter(|_| answer[0] & 0x80 != 0)
            .map(|b| (b, None));
        match outcome(
            Some(200),
            None,
            &answer[1..],
            browser,
            FailureMode::Closed,
            5,
        ) {
            Outcome::Reply(r) => assert_eq!(r.status, 402, "{name}"),
            Outcome::Pass => panic!("{name}"),
        }
    }
    for name in ["example", "minimal", "lnd_postgres"] {
        let text = String::from_utf8(seed("sidecar_config", name)).unwrap();
        lightning_wall::config::Config::from_text(&text, Some(Path::new("/etc/lw")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    use lightning_wall::node::lnd::wire;
    let lookup = seed("lnd_answers", "lookup_accepted");
    let invoice: wire::Invoice = wire::answer("/", 200, &lookup[1..]).unwrap();
    wire::invoice_status(&invoice).unwrap();
    let info = seed("lnd_answers", "getinfo");
    let info: wire::GetInfo = wire::answer("/", 200, &info[1..]).unwrap();
    assert_eq!(wire::node_info(info, 18).network, "regtest");
}
