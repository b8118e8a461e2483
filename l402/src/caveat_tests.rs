//! Tests of caveat folding: later caveats only narrow, our malformed conditions are rejected
//! without echoing values, and parsing never panics.
use super::*;
use proptest::prelude::*;

fn eval(caveats: &[&str]) -> Result<CaveatSet<'static>, CaveatError> {
    let owned: Vec<&'static [u8]> = caveats
        .iter()
        .map(|c| &*Box::leak(c.as_bytes().to_vec().into_boxed_slice()))
        .collect();
    CaveatSet::evaluate(owned, "svc")
}

#[test]
fn a_typical_token_folds_to_its_restrictions() {
    let set = eval(&[
        "services=svc:0",
        "svc_valid_until=1700000000",
        "lw_mode=deposit",
        "lw_route=api/v1",
        "lw_methods=GET,HEAD",
        "lw_key=k1",
    ])
    .unwrap();
    assert_eq!(set.services.unwrap().tier_of("svc"), Some(0));
    assert_eq!(set.valid_until, Some(1_700_000_000));
    assert_eq!(set.mode, Some(Mode::Deposit));
    assert_eq!(set.route, Some("api/v1"));
    assert!(set.methods.unwrap().contains("HEAD"));
    assert!(!set.methods.unwrap().contains("POST"));
    assert_eq!(set.key_id, Some("k1"));
}

#[test]
fn a_later_expiry_cannot_extend_the_token() {
    assert_eq!(
        eval(&["svc_valid_until=100", "svc_valid_until=200"]),
        Err(CaveatError::Widened {
            index: 1,
            condition: "valid_until"
        })
    );
    assert_eq!(
        eval(&["svc_valid_until=200", "svc_valid_until=100"])
            .unwrap()
            .valid_until,
        Some(100)
    );
}

#[test]
fn a_later_services_caveat_cannot_add_a_service_or_change_a_tier() {
    assert!(matches!(
        eval(&["services=svc:0", "services=svc:0,other:0"]),
        Err(CaveatError::Widened { index: 1, .. })
    ));
    assert!(matches!(
        eval(&["services=svc:0", "services=svc:1"]),
        Err(CaveatError::Widened { index: 1, .. })
    ));
    assert!(eval(&["services=svc:0,other:1", "services=svc:0"]).is_ok());
}

#[test]
fn the_mode_can_never_change() {
    assert_eq!(
        eval(&["lw_mode=deposit", "lw_mode=pay"]),
        Err(CaveatError::ModeChanged { index: 1 })
    );
    assert_eq!(
        eval(&["lw_mode=pay", "lw_mode=deposit"]),
        Err(CaveatError::ModeChanged { index: 1 })
    );
    assert!(eval(&["lw_mode=pay", "lw_mode=pay"]).is_ok());
}

#[test]
fn route_methods_key_and_capabilities_only_narrow() {
    assert!(matches!(
        eval(&["lw_route=a", "lw_route=b"]),
        Err(CaveatError::Widened {
            condition: ROUTE,
            ..
        })
    ));
    assert!(matches!(
        eval(&["lw_methods=GET", "lw_methods=GET,POST"]),
        Err(CaveatError::Widened {
            condition: METHODS,
            ..
        })
    ));
    assert!(eval(&["lw_methods=GET,POST", "lw_methods=GET"]).is_ok());
    assert!(matches!(
        eval(&["lw_key=a", "lw_key=b"]),
        Err(CaveatError::Widened { condition: KEY, .. })
    ));
    assert!(matches!(
        eval(&["svc_capabilities=read", "svc_capabilities=read,write"]),
        Err(CaveatError::Widened { .. })
    ));
    assert!(eval(&["svc_capabilities=read,write", "svc_capabilities="]).is_ok());
}

#[test]
fn unknown_conditions_and_other_services_are_skipped() {
    let set = eval(&[
        "lw_mode=pay",
        "ip=1.2.3.4",
        "other_valid_until=not a number",
        "time-before 2030-01-01",
        "svc_valid_until =5",
        "\u{0}\u{ff}",
    ])
    .unwrap();
    assert_eq!(set.valid_until, None);
    assert_eq!(set.mode, Some(Mode::Pay));
}

#[test]
fn malformed_conditions_that_we_own_are_rejected() {
    for bad in [
        "lw_mode=Pay",
        "lw_mode= pay",
        "lw_mode",
        "lw_route=",
        "lw_route=a b",
        "lw_methods=",
        "lw_methods=GET,",
        "lw_methods=GET POST",
        "lw_key=",
        "lw_key=a=b",
        "services=",
        "services=svc",
        "services=svc:256",
        "services=svc:-1",
        "services= svc:0",
        "svc_valid_until=",
        "svc_valid_until=+5",
        "svc_valid_until=-5",
        "svc_valid_until=18446744073709551616",
        "svc_capabilities=a,,b",
    ] {
        assert!(
            matches!(eval(&[bad]), Err(CaveatError::Malformed { index: 0, .. })),
            "{bad:?} gave {:?}",
            eval(&[bad])
        );
    }
    assert!(matches!(
        eval(&["lw_future=1"]),
        Err(CaveatError::UnknownInNamespace { .. })
    ));
    let mut non_utf8 = b"lw_route=".to_vec();
    non_utf8.push(0xff);
    let leaked: &'static [u8] = Box::leak(non_utf8.into_boxed_slice());
    assert!(matches!(
        CaveatSet::evaluate([leaked], "svc"),
        Err(CaveatError::Malformed { .. })
    ));
}

#[test]
fn error_messages_do_not_echo_caveat_values() {
    let err = eval(&["lw_key=secret secret"]).unwrap_err();
    assert!(!err.to_string().contains("secret"), "{err}");
}

#[test]
fn caveats_display_as_their_wire_text() {
    for text in [
        "services=svc:0,b:2",
        "svc_valid_until=1700000000",
        "svc_capabilities=",
        "lw_mode=deposit",
        "lw_route=x/y",
        "lw_methods=GET,HEAD",
        "lw_key=k-1",
        "something=else",
    ] {
        assert_eq!(Caveat::parse(text.as_bytes()).unwrap().to_string(), text);
    }
}

#[test]
fn the_key_id_is_found_before_anything_is_parsed() {
    let caveats: [&[u8]; 3] = [b"services=svc:0", b"lw_key=k2", b"lw_key=k3"];
    assert_eq!(find_key_id(caveats), Some("k2"));
    assert_eq!(find_key_id([&b"lw_keys=x"[..]]), None);
}

proptest! {
    #[test]
    fn parsing_arbitrary_caveats_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = Caveat::parse(&raw);
        let _ = CaveatSet::evaluate([raw.as_slice()], "svc");
    }

    #[test]
    fn parsed_caveats_display_as_text_that_parses_back(raw in "(services|svc_valid_until|svc_capabilities|lw_mode|lw_route|lw_methods|lw_key|x)=[a-zA-Z0-9:,._/ -]{0,20}") {
        if let Ok(c) = Caveat::parse(raw.as_bytes()) {
            let text = c.to_string();
            prop_assert_eq!(Caveat::parse(text.as_bytes()), Ok(c));
            // Byte-equal except for leading zeros in a timestamp (accepted like Go's strconv).
            if !raw.contains("=0") {
                prop_assert_eq!(text, raw);
            }
        }
    }

    #[test]
    fn an_expiry_chain_folds_to_its_minimum_or_is_rejected(times in proptest::collection::vec(0u64..1000, 1..6)) {
        let texts: Vec<String> = times.iter().map(|t| format!("svc_valid_until={t}")).collect();
        let raws: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
        let result = CaveatSet::evaluate(raws, "svc");
        if times.windows(2).all(|w| w[1] <= w[0]) {
            prop_assert_eq!(result.unwrap().valid_until, times.iter().min().copied());
        } else {
            let is_widened = matches!(result, Err(CaveatError::Widened { .. }));
            prop_assert!(is_widened);
        }
    }
}
