//! Macaroon V2 decoder: one encoding per macaroon.
//! The checks live in `fuzz-checks` (`lightning_wall_fuzz_checks::macaroon_decode`), shared with the
//! stable replay of the committed corpus in `make test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lightning_wall_fuzz_checks::macaroon_decode(data));
