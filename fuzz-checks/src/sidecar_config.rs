//! The sidecar's YAML configuration through the function `check-config` and `serve` use, and
//! what it becomes for the filter.

use std::path::Path;

use lightning_wall::api::policy::FilterPolicy;
use lightning_wall::config::Config;
use lightning_wall::keys;
use lightning_wall_filter::engine::policy::Policy;

/// A configuration the sidecar accepts:
/// - serialises to YAML that parses back to the same configuration;
/// - gives a bootstrap answer the filter installs, with the same routes: a route the sidecar
///   validates but the filter refuses (a regex one engine compiles and the other does not)
///   would leave every filter without a policy, failing closed or open for good.
pub fn sidecar_config(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_text(text, Some(Path::new("/etc/lightning-wall"))) else {
        return;
    };
    let yaml = serde_yaml_ng::to_string(&config).expect("a parsed config serialises");
    let again = Config::parse(&yaml).expect("the serialised config parses");
    assert_eq!(
        serde_yaml_ng::to_string(&again).expect("serialises again"),
        yaml
    );

    let keys = keys::build(
        vec![("k1".to_owned(), [0x42; 32]), ("k2".to_owned(), [0x43; 32])],
        None,
    )
    .expect("two valid keys");
    let store = lightning_wall_contract::store_id::StoreId([0x07; 8]);
    let body = FilterPolicy::of(&config, &keys).bootstrap_body(&keys, 0, store);
    let bytes = serde_json::to_vec(&body).expect("JSON serialises");
    match Policy::from_bootstrap(&bytes) {
        Ok(policy) => assert_eq!(policy.routes.len(), config.routes.len()),
        Err(e) => panic!("the filter refuses a policy the sidecar validated: {e}"),
    }
}
