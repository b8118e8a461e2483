//! The sidecar's answers as the filter digests them (bootstrap, sync, challenge, deposit status) and the upstream's verdict headers.
//! The checks live in `fuzz-checks` (`lightning_wall_fuzz_checks::filter_answers`), shared with the
//! stable replay of the committed corpus in `make test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lightning_wall_fuzz_checks::filter_answers(data));
