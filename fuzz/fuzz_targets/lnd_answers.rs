//! lnd's REST answers, errors and NDJSON streams as the sidecar's lnd client decodes them.
//! The checks live in `fuzz-checks` (`lightning_wall_fuzz_checks::lnd_answers`), shared with the
//! stable replay of the committed corpus in `make test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lightning_wall_fuzz_checks::lnd_answers(data));
