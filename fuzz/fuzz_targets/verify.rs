//! The whole verify path: arbitrary credentials, and caveats appended to a valid token.
//! The checks live in `fuzz-checks` (`lightning_wall_fuzz_checks::verify`), shared with the
//! stable replay of the committed corpus in `make test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lightning_wall_fuzz_checks::verify(data));
