//! Caveat parser and attenuation fold (one caveat per line).
//! The checks live in `fuzz-checks` (`lightning_wall_fuzz_checks::caveat_parse`), shared with the
//! stable replay of the committed corpus in `make test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lightning_wall_fuzz_checks::caveat_parse(data));
