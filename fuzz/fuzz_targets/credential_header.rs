//! `Authorization` / `Cookie` / gRPC `Macaroon` values and `WWW-Authenticate` challenges.
//! The checks live in `fuzz-checks` (`lightning_wall_fuzz_checks::credential_header`), shared with the
//! stable replay of the committed corpus in `make test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lightning_wall_fuzz_checks::credential_header(data));
