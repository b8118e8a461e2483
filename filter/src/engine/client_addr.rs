//! The client's address as a host reports it (`source.address`), parsed into the networks the
//! mint pre-limit counts: an IPv4 /N (`ipv4_prefix_len`), an IPv6 /64 (one subscriber's LAN) and
//! its /48 (one site). An attacker controls every address inside their own prefix, so limits
//! per exact address would give an IPv6 /64 2^64 budgets.
//!
//! Pure and total: any byte string gives an answer or `None`, never a panic.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest address form a host can report (`[v6%zone]:port` with a long zone id); anything
/// longer is refused before parsing.
const MAX_ADDRESS_LEN: usize = 96;

/// Parses every form hosts report: `203.0.113.9`, `203.0.113.9:443`, `2001:db8::1:5` (bare,
/// where the last group is not a port), `[2001:db8::1]:443`, `[2001:db8::1]`, a zone id
/// (`fe80::1%eth0`). IPv4-mapped IPv6 (`::ffff:203.0.113.9`) counts as its IPv4 address.
pub fn parse(addr: &str) -> Option<IpAddr> {
    let addr = addr.trim();
    if addr.is_empty() || addr.len() > MAX_ADDRESS_LEN {
        return None;
    }
    let ip = if let Some(rest) = addr.strip_prefix('[') {
        // `[v6]` or `[v6]:port`.
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || is_port(after.strip_prefix(':')?)) {
            return None;
        }
        IpAddr::V6(parse_v6(inside)?)
    } else if let Some(v4) = parse_v4(addr) {
        IpAddr::V4(v4)
    } else if let Some(v6) = parse_v6(addr) {
        // A bare address before `ip:port`: `2001:db8::1:5` is an address, not port 5.
        IpAddr::V6(v6)
    } else {
        // `v4:port` (a bare IPv6 with a port is ambiguous and never reported that way).
        let (ip, port) = addr.rsplit_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(parse_v4(ip)?)
    };
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    })
}

/// A dotted-quad IPv4 address (decimal, no leading zeros beyond a lone `0`, as the standard
/// library accepts). Byte loops rather than the standard library's address parser, which costs
/// the .wasm kilobytes.
fn parse_v4(s: &str) -> Option<Ipv4Addr> {
    let mut out = [0u8; 4];
    let mut part = 0usize;
    let mut value: u32 = 0;
    let mut digits = 0u8;
    for &b in s.as_bytes() {
        match b {
            b'0'..=b'9' => {
                if digits == 1 && value == 0 {
                    return None;
                }
                value = value * 10 + u32::from(b - b'0');
                digits += 1;
                if value > 255 {
                    return None;
                }
            }
            b'.' if digits > 0 && part < 3 => {
                *out.get_mut(part)? = value as u8;
                part += 1;
                value = 0;
                digits = 0;
            }
            _ => return None,
        }
    }
    if part != 3 || digits == 0 {
        return None;
    }
    out[3] = value as u8;
    Some(Ipv4Addr::from(out))
}

/// An IPv6 address (RFC 4291 §2.2 text forms: `::` once, an IPv4 tail), with a zone id
/// (`%eth0`) dropped: the zone names the host's interface, not the client.
fn parse_v6(s: &str) -> Option<Ipv6Addr> {
    let s = s.split_once('%').map_or(s, |(ip, _zone)| ip).as_bytes();
    let mut seg = [0u16; 8];
    let mut n = 0usize;
    // Where `::` stood (groups after it move to the end).
    let mut gap = None;
    let mut i = 0usize;
    if s.starts_with(b"::") {
        gap = Some(0);
        i = 2;
        if s.len() == 2 {
            return Some(Ipv6Addr::from(seg));
        }
    } else if s.first() == Some(&b':') {
        return None;
    }
    loop {
        // One group (or an IPv4 tail) starting at `i`.
        let start = i;
        let mut value: u32 = 0;
        while let Some(d) = s.get(i).and_then(|b| char::from(*b).to_digit(16)) {
            value = (value << 4) | d;
            i += 1;
            if i - start > 4 {
                return None;
            }
        }
        if s.get(i) == Some(&b'.') {
            if n > 6 {
                return None;
            }
            let v4 = core::str::from_utf8(s.get(start..)?)
                .ok()
                .and_then(parse_v4)?;
            let [a, b, c, d] = v4.octets();
            *seg.get_mut(n)? = u16::from_be_bytes([a, b]);
            *seg.get_mut(n + 1)? = u16::from_be_bytes([c, d]);
            n += 2;
            break;
        }
        if i == start || n == 8 {
            return None;
        }
        *seg.get_mut(n)? = value as u16;
        n += 1;
        match (s.get(i), s.get(i + 1)) {
            (None, _) => break,
            (Some(b':'), Some(b':')) if gap.is_none() => {
                gap = Some(n);
                i += 2;
                if i == s.len() {
                    break;
                }
            }
            (Some(b':'), Some(_)) => i += 1,
            _ => return None,
        }
    }
    match gap {
        None if n == 8 => {}
        Some(at) if n < 8 => {
            let moved = n - at;
            seg.copy_within(at..n, 8 - moved);
            seg.get_mut(at..8 - moved)?.fill(0);
        }
        _ => return None,
    }
    Some(Ipv6Addr::from(seg))
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

/// One network the mint pre-limit counts: its key (`[4, len, a, b, c, d, 0…]`,
/// `[6, 64, 8 bytes]` or `[6, 48, 6 bytes, 0, 0]`: the network's bits, never the address's
/// text, whose IPv6 formatter would cost the .wasm kilobytes) and whether it is an IPv6 /48
/// (the site limit) rather than a /64 or an IPv4 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MintNetwork {
    /// The counter's key.
    pub key: [u8; 10],
    /// An IPv6 /48.
    pub site: bool,
}

/// The networks of `ip` that mint limits apply to: one for IPv4, two for IPv6 (/64 and /48).
/// `ipv4_prefix_len` outside 0..=32 is clamped to 32.
pub fn mint_networks(ip: IpAddr, ipv4_prefix_len: u8) -> ([MintNetwork; 2], usize) {
    let mut key = [0u8; 10];
    match ip {
        IpAddr::V4(v4) => {
            let len = ipv4_prefix_len.min(32);
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            key[0] = 4;
            key[1] = len;
            key[2..6].copy_from_slice(&(u32::from(v4) & mask).to_be_bytes());
            let one = MintNetwork { key, site: false };
            ([one, one], 1)
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            key[0] = 6;
            key[1] = 64;
            key[2..10].copy_from_slice(&o[..8]);
            let lan = MintNetwork { key, site: false };
            key[1] = 48;
            key[8] = 0;
            key[9] = 0;
            ([lan, MintNetwork { key, site: true }], 2)
        }
    }
}

/// The address as the sidecar's `client_ip`: the reported text without brackets, port or zone.
pub fn bare(addr: &str) -> &str {
    let addr = addr.trim();
    let addr = match addr.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(inside, _)| inside),
        None if addr.bytes().filter(|b| *b == b':').count() == 1 => {
            addr.split_once(':').map_or(addr, |(ip, _port)| ip)
        }
        None => addr,
    };
    addr.split_once('%').map_or(addr, |(ip, _zone)| ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_form_a_host_reports_parses_to_the_address() {
        for (reported, expected) in [
            ("203.0.113.9", "203.0.113.9"),
            ("203.0.113.9:443", "203.0.113.9"),
            (" 203.0.113.9:1 ", "203.0.113.9"),
            ("2001:db8::1:5", "2001:db8::1:5"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("fe80::1%eth0", "fe80::1"),
            ("[fe80::1%25eth0]:80", "fe80::1"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
            ("[::ffff:198.51.100.7]:8080", "198.51.100.7"),
            ("::1", "::1"),
        ] {
            assert_eq!(parse(reported), Some(ip(expected)), "{reported}");
        }
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        for bad in [
            "",
            "[",
            "]",
            "[]",
            "[::1",
            "[::1]x",
            "[::1]:",
            "[::1]:123456",
            "203.0.113.9:",
            "203.0.113.9:http",
            "203.0.113",
            "300.0.113.9",
            "2001:db8::1::5",
            "unix:/var/run/envoy.sock",
            "%",
            "\u{0}",
            "é:1",
            &"1".repeat(200),
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ipv4_is_counted_per_configured_prefix() {
        let key = |len| mint_networks(ip("203.0.113.77"), len).0[0].key;
        assert_eq!(key(32), [4, 32, 203, 0, 113, 77, 0, 0, 0, 0]);
        assert_eq!(key(24), [4, 24, 203, 0, 113, 0, 0, 0, 0, 0]);
        assert_eq!(key(28), [4, 28, 203, 0, 113, 64, 0, 0, 0, 0]);
        assert_eq!(key(0), [4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(key(200), key(32));
        assert_eq!(mint_networks(ip("203.0.113.77"), 32).1, 1);
    }

    #[test]
    fn ipv6_is_counted_per_64_and_per_48() {
        let (n, count) = mint_networks(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), 32);
        assert_eq!(count, 2);
        assert_eq!(n[0].key, [6, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2]);
        assert!(!n[0].site);
        assert_eq!(n[1].key, [6, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0]);
        assert!(n[1].site);
    }

    #[test]
    fn the_text_sent_to_the_sidecar_is_the_bare_address() {
        for (reported, want) in [
            ("203.0.113.9:443", "203.0.113.9"),
            ("203.0.113.9", "203.0.113.9"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("2001:db8::1:5", "2001:db8::1:5"),
            ("[fe80::1%25eth0]:80", "fe80::1"),
            ("[::ffff:198.51.100.7]:8080", "::ffff:198.51.100.7"),
        ] {
            assert_eq!(bare(reported), want);
            assert_eq!(
                want.parse::<IpAddr>().ok(),
                parse(reported).map(|_| ip(want))
            );
        }
    }

    #[test]
    fn the_parsers_agree_with_the_standard_library() {
        // Addresses as the standard library writes them (compressed, IPv4-mapped), and every
        // group pattern of zeros, must parse to the same address; std's refusals are refused.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut seg = [0u16; 8];
            for (i, s) in seg.iter_mut().enumerate() {
                // Zero about half the groups so `::` appears in every position.
                *s = if (seed >> (i + 40)) & 1 == 0 {
                    0
                } else {
                    (seed >> (i * 5)) as u16
                };
            }
            let v6 = Ipv6Addr::from(seg);
            assert_eq!(parse_v6(&v6.to_string()), Some(v6), "{v6}");
            let v4 = Ipv4Addr::from((seed >> 8) as u32);
            assert_eq!(parse_v4(&v4.to_string()), Some(v4), "{v4}");
        }
        for text in [
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            ":1::",
            "1:",
            ":",
            "::1.2.3.4.5",
            "1.2.3.4::",
            "01.2.3.4",
            "1.2.3.256",
            "1..2.3",
            "12345::",
            "::g",
            "1:2:3:4:5:6:7::8:9",
            "::ffff:1.2.3.4",
            "1:2:3:4:5:6:1.2.3.4",
            "::",
            "1::",
            "::2:3",
        ] {
            assert_eq!(parse_v6(text), text.parse::<Ipv6Addr>().ok(), "{text}");
            assert_eq!(parse_v4(text), text.parse::<Ipv4Addr>().ok(), "{text}");
        }
    }
}
