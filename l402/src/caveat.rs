//! Caveat conditions: Aperture's (`services`, `<svc>_valid_until`, `<svc>_capabilities`) and
//! lightning-wall's own `lw_` namespace, with the attenuation rules that let a holder only
//! narrow a token. It must never skip a malformed condition that it owns: a skipped
//! restriction is a silent widening.
//!
//! | condition | value | attenuation (a later repeat must…) |
//! |-----------|-------|------------------------------------|
//! | `services` | `name:tier[,name:tier…]` | list a subset, same tiers |
//! | `<svc>_valid_until` | unix seconds; valid while `now < value` | be earlier or equal |
//! | `<svc>_capabilities` | `a,b` (may be empty) | list a subset |
//! | `lw_mode` | `pay` or `deposit` | be identical (the mode never changes) |
//! | `lw_route` | route id `[A-Za-z0-9._:/-]{1,128}` | be identical |
//! | `lw_methods` | `GET,HEAD` (HTTP method tokens) | list a subset |
//! | `lw_key` | key id `[A-Za-z0-9._-]{1,32}` | be identical |
//!
//! Conditions are split at the first `=` with no trimming (Aperture `DecodeCaveat`). Conditions
//! we do not know, and `<other>_valid_until` / `<other>_capabilities` of other services, are
//! skipped so other parties can attenuate for their own purposes. Any other `lw_` condition, a
//! known condition with a bad value, or an `lw_…` caveat without `=` is rejected. See
//! `docs/caveats.md`.

use core::fmt;

/// Prefix of lightning-wall's own conditions.
pub const NAMESPACE: &str = "lw_";
/// `services=<name>:<tier>[,…]` (Aperture).
pub const SERVICES: &str = "services";
/// `<svc>_valid_until=<unix seconds>` (Aperture).
pub const VALID_UNTIL_SUFFIX: &str = "_valid_until";
/// `<svc>_capabilities=<a,b>` (Aperture).
pub const CAPABILITIES_SUFFIX: &str = "_capabilities";
/// `lw_mode=pay|deposit`: which proof the token needs.
pub const MODE: &str = "lw_mode";
/// `lw_route=<route id>`: the route the token was issued for.
pub const ROUTE: &str = "lw_route";
/// `lw_methods=<METHOD>[,…]`: the HTTP methods allowed.
pub const METHODS: &str = "lw_methods";
/// `lw_key=<key id>`: the master key the root key derives from.
pub const KEY: &str = "lw_key";

const MAX_NAME_LEN: usize = 64;
const MAX_ROUTE_LEN: usize = 128;
const MAX_METHOD_LEN: usize = 32;
const MAX_LIST_ITEMS: usize = 32;

/// The paid mode a token was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Classic L402: the proof is the invoice's preimage.
    Pay,
    /// Hold-invoice deposit: the proof is the deposit receipt.
    Deposit,
}

impl Mode {
    /// The caveat value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Pay => "pay",
            Mode::Deposit => "deposit",
        }
    }

    /// Parses a caveat value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "pay" => Some(Mode::Pay),
            "deposit" => Some(Mode::Deposit),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A caveat that is malformed or widens an earlier one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaveatError {
    /// A condition we own (or a known Aperture condition for our service) with a bad value,
    /// or an `lw_` caveat without `=`.
    #[error("caveat {index}: malformed {condition} condition")]
    Malformed {
        /// Position of the caveat.
        index: usize,
        /// The condition (printable part only).
        condition: String,
    },
    /// An `lw_` condition this version does not define.
    #[error("caveat {index}: unknown condition {condition} in the lw_ namespace")]
    UnknownInNamespace {
        /// Position of the caveat.
        index: usize,
        /// The condition.
        condition: String,
    },
    /// A repeated condition that is wider than the earlier one.
    #[error("caveat {index}: {condition} widens an earlier caveat")]
    Widened {
        /// Position of the caveat.
        index: usize,
        /// The condition.
        condition: &'static str,
    },
    /// A second `lw_mode` with another value.
    #[error("caveat {index}: lw_mode changes the mode, which is never allowed")]
    ModeChanged {
        /// Position of the caveat.
        index: usize,
    },
}

/// A comma-separated list of names, validated when parsed (may be empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameList<'a>(&'a str);

impl<'a> NameList<'a> {
    fn parse(value: &'a str, valid: fn(&str) -> bool) -> Option<Self> {
        if value.is_empty() {
            return Some(Self(value));
        }
        let mut count = 0;
        for item in value.split(',') {
            count += 1;
            if !valid(item) || count > MAX_LIST_ITEMS {
                return None;
            }
        }
        Some(Self(value))
    }

    /// The names (none for an empty value).
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let s = self.0;
        s.split(',').filter(move |_| !s.is_empty())
    }

    /// Whether `name` is listed.
    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| n == name)
    }

    fn is_subset_of(&self, other: &NameList<'_>) -> bool {
        self.iter().all(|n| other.contains(n))
    }

    /// The value as written.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// `services=<name>:<tier>[,…]`, validated when parsed (at least one service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceList<'a>(&'a str);

impl<'a> ServiceList<'a> {
    fn parse(value: &'a str) -> Option<Self> {
        let mut count = 0;
        for item in value.split(',') {
            count += 1;
            let (name, tier) = item.split_once(':')?;
            if !is_service_name(name) || parse_tier(tier).is_none() || count > MAX_LIST_ITEMS {
                return None;
            }
        }
        Some(Self(value))
    }

    /// (service name, tier) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, u8)> + 'a {
        self.0.split(',').filter_map(|item| {
            let (name, tier) = item.split_once(':')?;
            Some((name, parse_tier(tier)?))
        })
    }

    /// The tier of `service` if listed.
    pub fn tier_of(&self, service: &str) -> Option<u8> {
        self.iter().find(|(n, _)| *n == service).map(|(_, t)| t)
    }

    /// Aperture's rule: every service listed later was listed before, with the same tier.
    fn is_narrowing_of(&self, earlier: &ServiceList<'_>) -> bool {
        self.iter()
            .all(|(name, tier)| earlier.tier_of(name) == Some(tier))
    }

    /// The value as written.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// Aperture's tiers are `uint8` (`l402.ServiceTier`).
fn parse_tier(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_unix(s: &str) -> Option<u64> {
    // Digits only: `u64::from_str` would also take a leading `+`.
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A service name: 1 to 64 characters of `[A-Za-z0-9._-]`.
pub fn is_service_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn is_capability(s: &str) -> bool {
    is_service_name(s)
}

/// A route id: 1 to 128 characters of `[A-Za-z0-9._:/-]`.
pub fn is_route_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ROUTE_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-'))
}

/// An HTTP method: a `token` (RFC 9110 §5.6.2), at most 32 characters.
pub fn is_method(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_METHOD_LEN
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// One parsed caveat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caveat<'a> {
    /// `services=…`
    Services(ServiceList<'a>),
    /// `<service>_valid_until=<unix>`
    ValidUntil {
        /// The service the condition is scoped to.
        service: &'a str,
        /// Unix seconds; the token is valid while `now < unix`.
        unix: u64,
    },
    /// `<service>_capabilities=<a,b>`
    Capabilities {
        /// The service the condition is scoped to.
        service: &'a str,
        /// The capabilities granted.
        capabilities: NameList<'a>,
    },
    /// `lw_mode=…`
    Mode(Mode),
    /// `lw_route=…`
    Route(&'a str),
    /// `lw_methods=…`
    Methods(NameList<'a>),
    /// `lw_key=…`
    KeyId(&'a str),
    /// Any other condition: skipped by the verifier.
    Unknown(&'a [u8]),
}

impl fmt::Display for Caveat<'_> {
    /// The caveat's wire text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caveat::Services(list) => write!(f, "{SERVICES}={}", list.as_str()),
            Caveat::ValidUntil { service, unix } => {
                write!(f, "{service}{VALID_UNTIL_SUFFIX}={unix}")
            }
            Caveat::Capabilities {
                service,
                capabilities,
            } => write!(
                f,
                "{service}{CAPABILITIES_SUFFIX}={}",
                capabilities.as_str()
            ),
            Caveat::Mode(mode) => write!(f, "{MODE}={mode}"),
            Caveat::Route(route) => write!(f, "{ROUTE}={route}"),
            Caveat::Methods(list) => write!(f, "{METHODS}={}", list.as_str()),
            Caveat::KeyId(id) => write!(f, "{KEY}={id}"),
            Caveat::Unknown(raw) => f.write_str(&String::from_utf8_lossy(raw)),
        }
    }
}

/// Splits a caveat we own into condition and value, or `None` for one we skip: unknown, or
/// scoped to another service. Decided on the bytes of the condition before anything else is
/// looked at; then the whole caveat is checked to be UTF-8 once.
fn scope<'a>(
    raw: &'a [u8],
    service: Option<&str>,
    index: usize,
) -> Result<Option<(&'a str, &'a str)>, CaveatError> {
    let Some(eq) = raw.iter().position(|&b| b == b'=') else {
        if raw.starts_with(NAMESPACE.as_bytes()) {
            return Err(malformed(index, raw));
        }
        return Ok(None);
    };
    let condition = raw.get(..eq).unwrap_or_default();
    let ours = condition == SERVICES.as_bytes()
        || condition.starts_with(NAMESPACE.as_bytes())
        || condition
            .strip_suffix(VALID_UNTIL_SUFFIX.as_bytes())
            .or_else(|| condition.strip_suffix(CAPABILITIES_SUFFIX.as_bytes()))
            .is_some_and(|svc| match service {
                Some(ours) => svc == ours.as_bytes(),
                None => !svc.is_empty(),
            });
    if !ours {
        return Ok(None);
    }
    let text = core::str::from_utf8(raw).map_err(|_| malformed(index, raw))?;
    // `eq` is the offset of an ASCII `=`, so both sides are on character boundaries.
    let condition = text.get(..eq).unwrap_or_default();
    let value = text.get(eq + 1..).unwrap_or_default();
    Ok(Some((condition, value)))
}

fn malformed(index: usize, condition: &[u8]) -> CaveatError {
    let end = condition
        .iter()
        .position(|&b| b == b'=')
        .unwrap_or(condition.len());
    let printable: String = condition
        .iter()
        .take(end.min(64))
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    CaveatError::Malformed {
        index,
        condition: printable,
    }
}

fn parse_ours<'a>(
    condition: &'a str,
    value: &'a str,
    index: usize,
) -> Result<Caveat<'a>, CaveatError> {
    let bad = || malformed(index, condition.as_bytes());
    let caveat = match condition {
        SERVICES => Caveat::Services(ServiceList::parse(value).ok_or_else(bad)?),
        MODE => Caveat::Mode(Mode::parse(value).ok_or_else(bad)?),
        ROUTE if is_route_id(value) => Caveat::Route(value),
        METHODS => {
            let list = NameList::parse(value, is_method).ok_or_else(bad)?;
            if list.as_str().is_empty() {
                return Err(bad());
            }
            Caveat::Methods(list)
        }
        KEY if crate::keys::is_valid_key_id(value) => Caveat::KeyId(value),
        ROUTE | KEY => return Err(bad()),
        c if c.starts_with(NAMESPACE) => {
            return Err(CaveatError::UnknownInNamespace {
                index,
                condition: malformed_name(c),
            });
        }
        c => {
            if let Some(service) = c.strip_suffix(VALID_UNTIL_SUFFIX) {
                Caveat::ValidUntil {
                    service,
                    unix: parse_unix(value).ok_or_else(bad)?,
                }
            } else if let Some(service) = c.strip_suffix(CAPABILITIES_SUFFIX) {
                Caveat::Capabilities {
                    service,
                    capabilities: NameList::parse(value, is_capability).ok_or_else(bad)?,
                }
            } else {
                return Err(bad());
            }
        }
    };
    Ok(caveat)
}

fn malformed_name(c: &str) -> String {
    c.chars()
        .take(64)
        .map(|ch| if ch.is_ascii_graphic() { ch } else { '?' })
        .collect()
}

impl<'a> Caveat<'a> {
    /// Parses one caveat on its own, for inspection: service-scoped conditions of any service
    /// are parsed. Verification uses [`CaveatSet::evaluate`], which skips other services'.
    pub fn parse(raw: &'a [u8]) -> Result<Self, CaveatError> {
        Self::parse_at(raw, 0)
    }

    fn parse_at(raw: &'a [u8], index: usize) -> Result<Self, CaveatError> {
        match scope(raw, None, index)? {
            Some((condition, value)) => parse_ours(condition, value, index),
            None => Ok(Caveat::Unknown(raw)),
        }
    }
}

/// The restrictions left after folding a token's caveats in order: for each condition, the
/// last (narrowest) value. Borrowed from the macaroon bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaveatSet<'a> {
    /// Last `services`.
    pub services: Option<ServiceList<'a>>,
    /// Last `<svc>_valid_until`.
    pub valid_until: Option<u64>,
    /// Last `<svc>_capabilities`.
    pub capabilities: Option<NameList<'a>>,
    /// `lw_mode`.
    pub mode: Option<Mode>,
    /// `lw_route`.
    pub route: Option<&'a str>,
    /// Last `lw_methods`.
    pub methods: Option<NameList<'a>>,
    /// `lw_key`.
    pub key_id: Option<&'a str>,
}

impl<'a> CaveatSet<'a> {
    /// Folds caveats in order for `service`, enforcing the attenuation rules (a repeated
    /// condition may only narrow, the mode never changes) and rejecting malformed conditions
    /// that we own. Unknown conditions and other services' conditions are skipped.
    pub fn evaluate(
        caveats: impl IntoIterator<Item = &'a [u8]>,
        service: &str,
    ) -> Result<Self, CaveatError> {
        let mut set = Self::default();
        for (index, raw) in caveats.into_iter().enumerate() {
            let Some((condition, value)) = scope(raw, Some(service), index)? else {
                continue;
            };
            set.apply(parse_ours(condition, value, index)?, index)?;
        }
        Ok(set)
    }

    fn apply(&mut self, caveat: Caveat<'a>, index: usize) -> Result<(), CaveatError> {
        let widened = |condition| CaveatError::Widened { index, condition };
        match caveat {
            Caveat::Services(new) => {
                if self.services.is_some_and(|old| !new.is_narrowing_of(&old)) {
                    return Err(widened(SERVICES));
                }
                self.services = Some(new);
            }
            Caveat::ValidUntil { unix, .. } => {
                if self.valid_until.is_some_and(|old| unix > old) {
                    return Err(widened("valid_until"));
                }
                self.valid_until = Some(unix);
            }
            Caveat::Capabilities { capabilities, .. } => {
                if self
                    .capabilities
                    .is_some_and(|old| !capabilities.is_subset_of(&old))
                {
                    return Err(widened("capabilities"));
                }
                self.capabilities = Some(capabilities);
            }
            Caveat::Mode(mode) => {
                if self.mode.is_some_and(|old| old != mode) {
                    return Err(CaveatError::ModeChanged { index });
                }
                self.mode = Some(mode);
            }
            Caveat::Route(route) => {
                if self.route.is_some_and(|old| old != route) {
                    return Err(widened(ROUTE));
                }
                self.route = Some(route);
            }
            Caveat::Methods(methods) => {
                if self.methods.is_some_and(|old| !methods.is_subset_of(&old)) {
                    return Err(widened(METHODS));
                }
                self.methods = Some(methods);
            }
            Caveat::KeyId(id) => {
                if self.key_id.is_some_and(|old| old != id) {
                    return Err(widened(KEY));
                }
                self.key_id = Some(id);
            }
            Caveat::Unknown(_) => {}
        }
        Ok(())
    }
}

/// The first `lw_key` value, found without parsing anything else: the verifier needs the key
/// before it can check the chain, and checks the whole set after.
pub(crate) fn find_key_id<'a>(caveats: impl IntoIterator<Item = &'a [u8]>) -> Option<&'a str> {
    caveats.into_iter().find_map(|raw| {
        let value = raw.strip_prefix(KEY.as_bytes())?.strip_prefix(b"=")?;
        core::str::from_utf8(value).ok()
    })
}

#[cfg(test)]
#[path = "caveat_tests.rs"]
mod tests;
