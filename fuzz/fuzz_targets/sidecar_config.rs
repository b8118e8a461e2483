//! The sidecar's YAML configuration (what `check-config` runs), and the filter policy it becomes.
//! The checks live in `fuzz-checks` (`lightning_wall_fuzz_checks::sidecar_config`), shared with the
//! stable replay of the committed corpus in `make test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lightning_wall_fuzz_checks::sidecar_config(data));
