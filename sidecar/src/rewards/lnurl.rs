//! LNURL (LUD-01): the withdraw URL as bech32 with the `lnurl` prefix and no length limit (the
//! `bech32` crate enforces BIP-173's 90 characters only for segwit addresses). QR codes use the
//! upper-case form, which fits the QR alphanumeric mode.

/// `lnurl1…`, the form for links and JSON.
pub fn encode(url: &str) -> Option<String> {
    let hrp = bech32::Hrp::parse("lnurl").ok()?;
    bech32::encode::<bech32::Bech32>(hrp, url.as_bytes()).ok()
}

/// The URL inside an LNURL (either case).
pub fn decode(lnurl: &str) -> Option<String> {
    let (hrp, data) = bech32::decode(lnurl).ok()?;
    if !hrp.as_str().eq_ignore_ascii_case("lnurl") {
        return None;
    }
    String::from_utf8(data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lud01_example_decodes() {
        // LUD-01's example.
        let lnurl = "LNURL1DP68GURN8GHJ7UM9WFMXJCM99E3K7MF0V9CXJ0M385EKVCENXC6R2C35XVUKXEFCV5MKVV34X5EKZD3EV56NYD3HXQURZEPEXEJXXEPNXSCRVWFNV9NXZCN9XQ6XYEFHVGCXXCMYXYMNSERXFQ5FNS";
        assert_eq!(
            decode(lnurl).as_deref(),
            Some(
                "https://service.com/api?q=3fc3645b439ce8e7f2553a69e5267081d96dcd340693afabe04be7b0ccd178df"
            )
        );
    }

    #[test]
    fn a_long_url_round_trips_in_both_cases() {
        let url = format!(
            "https://site.example/.well-known/lightning-wall/rewards/withdraw?k1={}",
            "ab".repeat(32)
        );
        assert!(url.len() > 90);
        let lower = encode(&url).unwrap();
        assert!(lower.starts_with("lnurl1"));
        assert_eq!(decode(&lower).as_deref(), Some(url.as_str()));
        let upper = lower.to_uppercase();
        assert_eq!(decode(&upper).as_deref(), Some(url.as_str()));
        assert_eq!(decode("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"), None);
    }
}
