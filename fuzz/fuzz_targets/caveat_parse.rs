//! Caveat parser and attenuation fold on arbitrary bytes (one caveat per line): never panics;
//! a caveat we understand displays as text that parses back to it (not always byte-equal:
//! `wall_valid_until=09` is accepted, as Go's `strconv` does, and displays as `…=9`); a fold
//! that succeeds keeps the earliest expiry.
#![no_main]

use l402::{Caveat, CaveatSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Caveat::parse(data)
        && !matches!(c, Caveat::Unknown(_))
    {
        let text = c.to_string();
        assert_eq!(Caveat::parse(text.as_bytes()), Ok(c));
    }
    let caveats: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if let Ok(set) = CaveatSet::evaluate(caveats.iter().copied(), "wall") {
        // The folded expiry is the earliest one written for our service.
        let earliest = caveats
            .iter()
            .filter_map(|raw| match Caveat::parse(raw) {
                Ok(Caveat::ValidUntil {
                    service: "wall",
                    unix,
                }) => Some(unix),
                _ => None,
            })
            .min();
        assert_eq!(set.valid_until, earliest);
    }
});
