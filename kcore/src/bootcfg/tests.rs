use super::*;
use proptest::prelude::*;

const PROGRAMS: &[&str] = &["cow_child", "cow_parent", "hello"];

fn n(text: &str) -> Name {
    Name::try_from(text).unwrap()
}

fn parsed(text: &str) -> BootConfig {
    parse(text, PROGRAMS).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn error(text: &str) -> String<256> {
    let mut out = String::new();
    let e = parse(text, PROGRAMS).expect_err(text);
    core::fmt::write(&mut out, format_args!("{e}")).unwrap();
    out
}

const FULL: &str = "tally=1 config=cow-fork log=debug cow=holder msgbuf=kernel pagetable=owner \
                    release=migrate kernel=spawner move=migrate transfer=two-stage trace=on recount=on set=root,-,- \
                    set=parent,root,1048576 set=child,parent,262144,msgbuf:49152,cow:65536,high:131072 \
                    ep=ping dom=parent,parent,cow_parent dom=child,child,cow_child \
                    arg=parent,pages:64 arg=parent,seed:7 cap=parent,set:child \
                    cap=parent,dom:child:inspect cap=parent,ep:ping cap=child,ep:ping:receive+grant \
                    keeper=child,ping";

#[test]
fn a_full_config_decodes_and_encodes_back_to_the_same_string() {
    let config = parsed(FULL);
    assert_eq!(config.config, "cow-fork");
    assert_eq!(config.log_level, log::LevelFilter::Debug);
    assert_eq!(
        config.policy,
        ["holder", "kernel", "owner", "migrate", "spawner", "migrate"]
    );
    assert_eq!(config.transfer, Transfer::TwoStage);
    assert!(config.trace && config.recount);
    assert_eq!(config.sets.len(), 3);
    assert_eq!(config.sets[2].kind_limits.len(), 2);
    assert_eq!(config.sets[2].high_bytes, Some(131072));
    assert_eq!(config.sets[1].high_bytes, None);
    assert_eq!(
        config.domains[0].args.as_slice(),
        &[(n("pages"), 64), (n("seed"), 7)]
    );
    assert_eq!(config.domains[0].caps.len(), 3);
    assert_eq!(config.domains[0].caps[1].rights, abi::Rights::INSPECT);
    assert_eq!(config.domains[0].caps[2].rights, abi::Rights::ENDPOINT);
    assert_eq!(
        config.domains[1].caps[0].rights,
        abi::Rights::RECEIVE.union(abi::Rights::GRANT)
    );
    assert_eq!(config.domains[1].keeper.as_deref(), Some("ping"));
    assert_eq!(config.domains[0].keeper, None);
    let mut encoded: String<1024> = String::new();
    core::fmt::write(&mut encoded, format_args!("{config}")).unwrap();
    let expected: std::string::String = FULL
        .split_whitespace()
        .collect::<std::vec::Vec<_>>()
        .join(" ");
    assert_eq!(encoded.as_str(), expected);
}

#[test]
fn a_test_may_ask_for_a_deliberate_fault_but_the_encoding_never_does() {
    let config = parsed("tally=1 inject=uncharged-frame");
    assert_eq!(config.inject, Inject::UnchargedFrame);
    assert!(!std::format!("{config}").contains("inject"));
    assert_eq!(parsed("tally=1").inject, Inject::Nothing);
}

#[test]
fn defaults_fill_what_is_not_given() {
    let config = parsed("tally=1");
    assert_eq!(config.config, "unnamed");
    assert_eq!(
        config.policy,
        ["writer", "sender", "owner", "migrate", "self", "stay"]
    );
    assert_eq!(config.transfer, Transfer::Direct);
    assert!(!config.trace && !config.recount);
    assert_eq!(
        std::format!("{config}"),
        "tally=1 config=unnamed log=info cow=writer msgbuf=sender pagetable=owner release=migrate kernel=self move=stay transfer=direct trace=off"
    );
}

#[test]
fn every_malformed_input_gets_its_own_error() {
    let cases: &[(&str, &str)] = &[
        ("", "must start with tally=1"),
        ("tally=2", "must start with tally=1"),
        ("tally=1 frobnicate=1", "unknown key 'frobnicate'"),
        ("tally=1 nokey", "token 'nokey' is malformed"),
        (
            "tally=1 cow=reader",
            "cow='reader' is not valid; valid values: writer, holder, split",
        ),
        ("tally=1 transfer=fast", "valid values: direct, two-stage"),
        (
            "tally=1 trace=yes",
            "trace='yes' is not valid; valid values: on, off",
        ),
        ("tally=1 recount=1", "recount='1' is not valid"),
        ("tally=1 log=loud", "log='loud' is not valid"),
        (
            "tally=1 inject=everything",
            "inject='everything' is not valid; valid values: uncharged-frame",
        ),
        ("tally=1 set=Big,-,-", "'Big' is not a valid name"),
        ("tally=1 set=a,-,12x", "'12x' is not an unsigned number"),
        ("tally=1 set=a,-,-1", "'-1' is not an unsigned number"),
        ("tally=1 set=a,-,+1", "'+1' is not an unsigned number"),
        (
            "tally=1 set=a,-,99999999999999999999",
            "is not an unsigned number",
        ),
        ("tally=1 set=a,b,-", "charge set 'b' is not defined"),
        ("tally=1 set=a,-,- set=a,-,-", "'a' is defined twice"),
        ("tally=1 set=kernel,-,-", "'kernel' is defined twice"),
        ("tally=1 set=a,-,-,heap:5", "kind='heap' is not valid"),
        ("tally=1 set=a,-,-,anon", "token 'anon' is malformed"),
        (
            "tally=1 set=a,-,-,anon:1,anon:2",
            "'anon:2' is defined twice",
        ),
        (
            "tally=1 set=a,-,- dom=x,a,nothing",
            "program='nothing' is not valid; valid values: cow_child, cow_parent, hello",
        ),
        (
            "tally=1 set=a,-,- dom=x,b,hello",
            "charge set 'b' is not defined",
        ),
        ("tally=1 set=a,-,- dom=x,a,hello,extra", "is malformed"),
        (
            "tally=1 set=a,-,- dom=x,a,hello dom=x,a,hello",
            "'x' is defined twice",
        ),
        ("tally=1 ep=e ep=e", "'e' is defined twice"),
        (
            "tally=1 set=a,-,- dom=x,a,hello cap=x,set:kernel",
            "domain 'x' may not hold a capability to the kernel reserve set",
        ),
        (
            "tally=1 set=a,-,- dom=x,a,hello cap=x,set:b",
            "charge set 'b' is not defined",
        ),
        (
            "tally=1 tick=5",
            "tick='5' is not valid; valid values: 10 to 100000 ticks a second",
        ),
        (
            "tally=1 set=a,-,- dom=x,a,hello cap=x,set:a:send",
            "cap rights='send' is not valid; valid values: query, limit, create (joined by +)",
        ),
        (
            "tally=1 set=a,-,- dom=x,a,hello cap=x,set:a:query+bogus",
            "token 'x,set:a:query+bogus' is malformed",
        ),
        (
            "tally=1 set=a,-,- dom=x,a,hello cap=x,dom:y",
            "domain 'y' is not defined",
        ),
        (
            "tally=1 set=a,-,- dom=x,a,hello cap=x,ep:y",
            "endpoint 'y' is not defined",
        ),
        (
            "tally=1 set=a,-,- dom=x,a,hello cap=x,key:a",
            "cap type='key' is not valid",
        ),
        ("tally=1 set=a,-,- cap=y,set:a", "domain 'y' is not defined"),
        (
            "tally=1 set=a,-,- dom=x,a,hello keeper=x,faults",
            "endpoint 'faults' is not defined",
        ),
        (
            "tally=1 ep=faults keeper=y,faults",
            "domain 'y' is not defined",
        ),
        ("tally=1 ep=faults keeper=faults", "is malformed"),
        (
            "tally=1 set=a,-,- ep=f dom=x,a,hello keeper=x,f keeper=x,f",
            "'x' is defined twice",
        ),
        ("tally=1 set=a,-,- dom=x,a,hello cap=x", "is malformed"),
        ("tally=1 set=a,-,- dom=x,a,hello arg=x,seed", "is malformed"),
        (
            "tally=1 set=a,-,- dom=x,a,hello arg=x,seed:ten",
            "'ten' is not an unsigned number",
        ),
        (
            "tally=1 set=a,-,- dom=x,a,hello arg=x,seed:1 arg=x,seed:2",
            "'seed' is defined twice",
        ),
        (
            "tally=1 set=a,-,- arg=y,seed:1",
            "domain 'y' is not defined",
        ),
        (
            "tally=1 set=a,-,- dom=x,a,hello arg=x,seed:9223372036854775808",
            "'9223372036854775808' is not an unsigned number",
        ),
    ];
    for (text, message) in cases {
        let got = error(text);
        assert!(
            got.contains(message),
            "{text}: got {got:?}, expected {message:?}"
        );
    }
}

#[test]
fn every_capacity_is_enforced_with_its_limit_named() {
    let mut text = std::string::String::from("tally=1");
    for i in 0..=MAX_CONFIG_SETS {
        text.push_str(&std::format!(" set=s{i},-,-"));
    }
    assert!(error(&text).contains("too many charge sets (at most 32)"));

    let mut text = std::string::String::from("tally=1");
    for i in 0..=MAX_CONFIG_ENDPOINTS {
        text.push_str(&std::format!(" ep=e{i}"));
    }
    assert!(error(&text).contains("too many endpoints (at most 16)"));

    let mut text = std::string::String::from("tally=1 set=a,-,-");
    for i in 0..=MAX_CONFIG_DOMAINS {
        text.push_str(&std::format!(" dom=d{i},a,hello"));
    }
    assert!(error(&text).contains("too many domains (at most 16)"));

    let mut text = std::string::String::from("tally=1 set=a,-,- dom=d,a,hello");
    for _ in 0..=MAX_CONFIG_CAPS {
        text.push_str(" cap=d,set:a");
    }
    assert!(error(&text).contains("too many capabilities for one domain (at most 16)"));

    let mut text = std::string::String::from("tally=1 set=a,-,- dom=d,a,hello");
    for i in 0..=MAX_DOMAIN_ARGS {
        text.push_str(&std::format!(" arg=d,a{i}:1"));
    }
    assert!(error(&text).contains("too many arguments for one domain (at most 8)"));
}

#[test]
fn a_chain_of_sets_may_be_as_deep_as_the_ledger_allows_and_no_deeper() {
    let mut text = std::string::String::from("tally=1 set=s1,-,-");
    for i in 2..=MAX_SET_DEPTH {
        text.push_str(&std::format!(" set=s{i},s{},-", i - 1));
    }
    let config = parsed(&text);
    assert_eq!(
        config.depth(&std::format!("s{MAX_SET_DEPTH}")),
        MAX_SET_DEPTH
    );
    text.push_str(&std::format!(" set=deep,s{MAX_SET_DEPTH},-"));
    assert!(error(&text).contains("charge set 'deep' is nested more than 16 deep"));
}

fn name_strategy() -> impl Strategy<Value = std::string::String> {
    "[a-z0-9_-]{1,23}".prop_filter("`-` alone means none", |name| name != "-")
}

/// A domain made by the strategy, whose capabilities and arguments come after all domains.
type PendingDomain = (
    std::string::String,
    std::vec::Vec<(usize, usize, u16)>,
    std::vec::Vec<(std::string::String, u64)>,
);

prop_compose! {
    fn config_strategy()(
        sets in proptest::collection::vec((name_strategy(), any::<Option<u64>>(), proptest::option::of(0usize..32), proptest::collection::vec((0usize..5, any::<u64>()), 0..5), any::<Option<u64>>()), 1..8),
        endpoints in proptest::collection::vec(name_strategy(), 0..4),
        domains in proptest::collection::vec((name_strategy(), 0usize..8, 0usize..3, proptest::collection::vec((0usize..3, 0usize..8, any::<u16>()), 0..6), proptest::collection::vec((name_strategy(), 0..=MAX_ARG_VALUE), 0..4)), 0..6),
        policy in proptest::collection::vec(0usize..8, policies::KEYS.len()),
        transfer in any::<bool>(), trace in any::<bool>(), recount in any::<bool>(), level in 0usize..5,
        tick in proptest::option::of(10u32..=100_000),
    ) -> BootConfig {
        let mut config = BootConfig::new(n("prop"));
        config.transfer = if transfer { Transfer::TwoStage } else { Transfer::Direct };
        config.trace = trace;
        config.recount = recount;
        config.tick_hz = tick.unwrap_or(TICK_HZ);
        config.log_level = log_level(LOG_LEVELS[level]).unwrap();
        for (index, key) in policies::KEYS.iter().enumerate() {
            let names = policies::valid_names(key).unwrap();
            config.policy[index] = names[policy[index] % names.len()];
        }
        for (name, limit, parent, kinds, high_bytes) in sets {
            let parent = parent.and_then(|p| config.sets.get(p % config.sets.len().max(1)).map(|s| s.name.clone()));
            let mut kind_limits: Vec<(Name, u64), 5> = Vec::new();
            for (kind, bytes) in kinds {
                if !kind_limits.iter().any(|(k, _)| k == KIND_NAMES[kind]) {
                    let _ = kind_limits.push((n(KIND_NAMES[kind]), bytes));
                }
            }
            kind_limits.sort_by_key(|(k, _)| KIND_NAMES.iter().position(|x| x == k));
            let _ = config.add_set(SetSpec { name: n(&name), parent, limit_bytes: limit, kind_limits, high_bytes });
        }
        for endpoint in endpoints {
            let _ = config.add_endpoint(n(&endpoint));
        }
        let set_count = config.sets.len();
        let mut made: std::vec::Vec<PendingDomain> = std::vec::Vec::new();
        for (name, set, program, caps, args) in domains {
            let set = config.sets[set % set_count].name.clone();
            if config.add_domain(n(&name), set, n(PROGRAMS[program])).is_ok() {
                made.push((name, caps, args));
            }
        }
        for (name, caps, args) in made {
            for (kind, target, rights) in caps {
                let cap = match kind {
                    0 => CapSpec::Set(config.sets[target % set_count].name.clone()),
                    1 if !config.domains.is_empty() => CapSpec::Domain(config.domains[target % config.domains.len()].name.clone()),
                    _ if !config.endpoints.is_empty() => CapSpec::Endpoint(config.endpoints[target % config.endpoints.len()].clone()),
                    _ => continue,
                };
                // Every right of its type, or some of them (none: every right).
                let rights = abi::Rights(rights).intersection(cap.all_rights());
                let rights = (!rights.is_empty() && !rights.0.is_multiple_of(3)).then_some(rights);
                let _ = config.add_cap(&name, cap, rights);
            }
            for (arg, value) in args {
                let _ = config.add_arg(&name, n(&arg), value);
            }
            if !config.endpoints.is_empty() && name.len() % 2 == 0 {
                let endpoint = config.endpoints[name.len() % config.endpoints.len()].clone();
                let _ = config.set_keeper(&name, endpoint);
            }
        }
        config
    }
}

proptest! {
    /// Whatever the host tool can build, the kernel decodes to the same config.
    #[test]
    fn encoding_then_decoding_gives_the_same_config(config in config_strategy()) {
        let encoded = std::format!("{config}");
        let decoded = parse(&encoded, PROGRAMS).map_err(|e| std::format!("{e}")).unwrap();
        prop_assert_eq!(decoded, config);
    }

    /// Arbitrary strings never panic the decoder.
    #[test]
    fn any_string_decodes_or_is_refused(text in "tally=1( [a-z]{1,9}=[a-z0-9:,_-]{0,20}){0,12}") {
        let _ = parse(&text, PROGRAMS);
    }
}
