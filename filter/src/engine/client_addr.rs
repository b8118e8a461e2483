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
    } else if let Ok(ip) = addr.parse::<IpAddr>() {
        // A bare address first: `2001:db8::1:5` is an address, not `2001:db8::1` port 5.
        ip
    } else if let Some(v6) = parse_v6(addr) {
        IpAddr::V6(v6)
    } else {
        // `v4:port` (a bare IPv6 with a port is ambiguous and never reported that way).
        let (ip, port) = addr.rsplit_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(ip.parse::<Ipv4Addr>().ok()?)
    };
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    })
}

/// An IPv6 address, with a zone id (`%eth0`) dropped: the zone names the host's interface, not
/// the client.
fn parse_v6(s: &str) -> Option<Ipv6Addr> {
    let s = s.split_once('%').map_or(s, |(ip, _zone)| ip);
    s.parse().ok()
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

/// One network the mint pre-limit counts, with the key its counter is stored under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MintNetwork {
    /// IPv4 /`len` (24..=32).
    V4 {
        /// The network's key (`v4:203.0.113.0/24`).
        key: String,
    },
    /// IPv6 /64: one subscriber's LAN, limited like one IPv4 address.
    V6Lan {
        /// The network's key (`v6:2001:db8:1:2::/64`).
        key: String,
    },
    /// IPv6 /48: one site; its own, larger limit catches a /64 rotation inside it.
    V6Site {
        /// The network's key (`v6:2001:db8:1::/48`).
        key: String,
    },
}

impl MintNetwork {
    /// The key its counter is stored under.
    pub fn key(&self) -> &str {
        match self {
            MintNetwork::V4 { key } | MintNetwork::V6Lan { key } | MintNetwork::V6Site { key } => {
                key
            }
        }
    }
}

/// The networks of `ip` that mint limits apply to: one for IPv4, two for IPv6 (/64 and /48).
/// `ipv4_prefix_len` outside 0..=32 is clamped to 32.
pub fn mint_networks(ip: IpAddr, ipv4_prefix_len: u8) -> Vec<MintNetwork> {
    match ip {
        IpAddr::V4(v4) => {
            let len = u32::from(ipv4_prefix_len.min(32));
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            let net = Ipv4Addr::from(u32::from(v4) & mask);
            vec![MintNetwork::V4 {
                key: format!("v4:{net}/{len}"),
            }]
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let lan = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            let site = Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            vec![
                MintNetwork::V6Lan {
                    key: format!("v6:{lan}/64"),
                },
                MintNetwork::V6Site {
                    key: format!("v6:{site}/48"),
                },
            ]
        }
    }
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
        let keys = |len| {
            mint_networks(ip("203.0.113.77"), len)
                .iter()
                .map(|n| n.key().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(32), ["v4:203.0.113.77/32"]);
        assert_eq!(keys(24), ["v4:203.0.113.0/24"]);
        assert_eq!(keys(28), ["v4:203.0.113.64/28"]);
        assert_eq!(keys(0), ["v4:0.0.0.0/0"]);
        assert_eq!(keys(200), ["v4:203.0.113.77/32"]);
    }

    #[test]
    fn ipv6_is_counted_per_64_and_per_48() {
        assert_eq!(
            mint_networks(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), 32),
            [
                MintNetwork::V6Lan {
                    key: "v6:2001:db8:1:2::/64".into()
                },
                MintNetwork::V6Site {
                    key: "v6:2001:db8:1::/48".into()
                }
            ]
        );
    }
}
