//! Validation tests: one per kind of config error, each checking the file, the line, the key
//! and the valid values in the message; plus loading from a real file in a temp workspace.

use super::*;
use std::path::Path;

const FILE: &str = "configs/sample.toml";

fn programs() -> Result<Vec<String>, String> {
    Ok(vec!["cow_child".into(), "cow_parent".into(), "idle".into()])
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_text(
        Path::new(FILE),
        text,
        &programs(),
        &PolicyOverrides::default(),
    )
}

/// The single diagnostic a config produces; fails if it loads or has several problems.
fn only_error(text: &str) -> Diagnostic {
    let error = load(text).expect_err("config should be rejected");
    assert_eq!(error.diagnostics.len(), 1, "{error}");
    error.diagnostics.into_iter().next().unwrap()
}

/// Asserts the diagnostic's file, line and key, and that its rendered text has every `needle`.
fn assert_error(diagnostic: &Diagnostic, line: usize, key: &str, needles: &[&str]) {
    let text = diagnostic.to_string();
    assert_eq!(diagnostic.source, FILE, "{text}");
    assert!(text.starts_with(&format!("{FILE}:{line}: ")), "{text}");
    assert_eq!(diagnostic.line, Some(line), "{text}");
    assert_eq!(diagnostic.key.as_deref(), Some(key), "{text}");
    for needle in needles {
        assert!(text.contains(needle), "missing {needle:?} in: {text}");
    }
}

const BASE: &str = r#"name = "sample"
[[charge_set]]
name = "parent"
[[domain]]
name = "parent"
program = "cow_parent"
charge_set = "parent"
"#;

#[test]
fn a_valid_config_loads_with_defaults() {
    let config = load(BASE).unwrap();
    assert_eq!(config.name, "sample");
    assert_eq!(
        config.policy,
        [
            ("cow", "writer"),
            ("msgbuf", "sender"),
            ("pagetable", "owner"),
            ("release", "migrate"),
            ("kernel", "self"),
            ("move", "stay")
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    assert_eq!(config.transfer, "direct");
    assert_eq!(config.run.log, "info");
    assert_eq!(config.run.timeout_seconds, DEFAULT_TIMEOUT_SECONDS);
    assert_eq!(config.domains[0].line, 4);
}

#[test]
fn the_name_defaults_to_the_file_stem() {
    let config = load("description = \"x\"").unwrap();
    assert_eq!(config.name, "sample");
}

#[test]
fn syntax_error() {
    let d = only_error("name = \"x\"\n[policy\ncow = 1\n");
    assert_eq!(d.line, Some(2), "{d}");
    assert!(d.to_string().contains("not valid TOML"), "{d}");
}

#[test]
fn unknown_top_level_key() {
    let d = only_error("name = \"x\"\npolcy = 3\n");
    assert_error(
        &d,
        2,
        "polcy",
        &["unknown key", "policy", "charge_set", "expect"],
    );
}

#[test]
fn unknown_key_in_a_table() {
    let d = only_error("[run]\nlog = \"info\"\ntimeout = 5\n");
    assert_error(
        &d,
        3,
        "run.timeout",
        &["[run]", "timeout_seconds", "mem", "trace"],
    );
}

#[test]
fn unknown_key_in_an_array_of_tables() {
    let text = format!("{BASE}limt = \"1 MiB\"\n");
    let d = only_error(&text);
    assert_error(
        &d,
        8,
        "domain.limt",
        &["[[domain]]", "program", "charge_set", "caps"],
    );
    let text = "[[charge_set]]\nname = \"a\"\nlimt = 4\n";
    let d = only_error(text);
    assert_error(&d, 3, "charge_set.limt", &["limit", "msgbuf", "pagetables"]);
}

#[test]
fn unknown_key_in_expect_when() {
    let text = format!(
        "{BASE}[[expect]]\nwhen = {{ cwo = \"holder\" }}\nsnapshot = \"final\"\nset = \"parent\"\nfield = \"current.cow\"\nequals = 0\n"
    );
    let d = only_error(&text);
    assert_error(
        &d,
        9,
        "expect.when.cwo",
        &["cow, msgbuf, pagetable, release"],
    );
}

#[test]
fn unknown_policy_key() {
    let d = only_error("[policy]\ncow = \"writer\"\nswap = \"lru\"\n");
    assert_error(&d, 3, "policy.swap", &["cow, msgbuf, pagetable, release"]);
}

#[test]
fn unknown_policy_name() {
    let d = only_error("[policy]\n\nmsgbuf = \"nobody\"\n");
    assert_error(
        &d,
        3,
        "policy.msgbuf",
        &["`nobody`", "sender, receiver, split, kernel"],
    );
}

#[test]
fn unknown_policy_name_in_expect_when() {
    let text = format!(
        "{BASE}[[expect]]\nwhen = {{ cow = [\"holder\", \"reader\"] }}\nsnapshot = \"final\"\nset = \"parent\"\nfield = \"current.cow\"\nequals = 0\n"
    );
    let d = only_error(&text);
    assert_error(
        &d,
        9,
        "expect.when.cow",
        &["`reader`", "writer, holder, split"],
    );
}

#[test]
fn unknown_policy_key_in_vary() {
    let d = only_error("[experiment]\nvary = [\"cow\",\n  \"msgbfu\"]\n");
    assert_error(
        &d,
        3,
        "experiment.vary",
        &["`msgbfu`", "cow, msgbuf, pagetable, release"],
    );
}

#[test]
fn experiment_values_restrict_the_varied_names() {
    let config = load("[experiment]\nvary = [\"msgbuf\", \"cow\"]\nvalues = { msgbuf = [\"sender\", \"receiver\"] }\n").unwrap();
    assert_eq!(config.vary, ["msgbuf", "cow"]);
    assert_eq!(
        config.vary_values,
        [(
            "msgbuf".to_string(),
            vec!["sender".to_string(), "receiver".to_string()]
        )]
    );
    let d = only_error(
        "[experiment]\nvary = [\"msgbuf\"]\nvalues = { msgbuf = [\"sender\", \"nobody\"] }\n",
    );
    assert_error(
        &d,
        3,
        "experiment.values.msgbuf",
        &["`nobody`", "sender, receiver, split, kernel"],
    );
    let d = only_error("[experiment]\nvary = [\"msgbuf\"]\nvalues = { cow = \"holder\" }\n");
    assert_error(
        &d,
        3,
        "experiment.values.cow",
        &["not varied", "varied keys: msgbuf"],
    );
}

#[test]
fn unknown_transfer_and_log_level() {
    let d = only_error("[ipc]\ntransfer = \"mach\"\n");
    assert_error(&d, 2, "ipc.transfer", &["`mach`", "direct, two-stage"]);
    let d = only_error("[run]\nlog = \"loud\"\n");
    assert_error(&d, 2, "run.log", &["error, warn, info, debug, trace"]);
}

#[test]
fn unknown_program() {
    let text = BASE.replace("cow_parent", "cow_parnet");
    let d = only_error(&text);
    assert_error(
        &d,
        6,
        "domain.program",
        &[
            "`cow_parnet`",
            "user/src/bin",
            "cow_child, cow_parent, idle",
        ],
    );
}

#[test]
fn unparseable_size() {
    let d = only_error("[[charge_set]]\nname = \"a\"\nlimit = \"1.5 MiB\"\n");
    assert_error(
        &d,
        3,
        "charge_set.limit",
        &[
            "1.5 MiB",
            "accepted forms",
            "256 KiB",
            "64K",
            "2 GiB",
            "4096",
        ],
    );
    let d = only_error("[[charge_set]]\nname = \"a\"\nmsgbuf = \"48 KB\"\n");
    assert_error(&d, 3, "charge_set.msgbuf", &["accepted forms"]);
    let d = only_error("[run]\nmem = \"lots\"\n");
    assert_error(&d, 2, "run.mem", &["accepted forms"]);
    let d = only_error("[run]\nmem = \"1000 B\"\n");
    assert_error(&d, 2, "run.mem", &["whole number of MiB"]);
}

#[test]
fn sizes_in_every_accepted_form() {
    let text = "[[charge_set]]\nname = \"a\"\nlimit = \"2 GiB\"\nanon = 4096\ncow = \"64K\"\nmsgbuf = \"48 kib\"\n";
    let config = load(text).unwrap();
    let set = &config.charge_sets[0];
    assert_eq!(set.limit_bytes, Some(2 << 30));
    assert_eq!(
        set.kind_limits,
        [("anon", 4096), ("msgbuf", 48 * 1024), ("cow", 64 * 1024)]
            .map(|(k, v)| (k.to_string(), v))
    );
}

#[test]
fn undefined_charge_set() {
    let text = BASE.replace("charge_set = \"parent\"", "charge_set = \"parnet\"");
    let d = only_error(&text);
    assert_error(&d, 7, "domain.charge_set", &["`parnet`", "defined: parent"]);
    let d =
        only_error("[[charge_set]]\nname = \"a\"\n[[charge_set]]\nname = \"b\"\nparent = \"c\"\n");
    assert_error(&d, 5, "charge_set.parent", &["`c`", "defined: a, b"]);
}

#[test]
fn the_kernel_set_is_reserved() {
    let d = only_error("[[charge_set]]\nname = \"kernel\"\n");
    assert_error(&d, 2, "charge_set.name", &["built-in"]);
    let text = BASE.replace("charge_set = \"parent\"", "charge_set = \"kernel\"");
    let d = only_error(&text);
    assert_error(
        &d,
        7,
        "domain.charge_set",
        &["built-in", "defined charge sets: parent"],
    );
}

#[test]
fn undefined_capability_targets() {
    let text = format!("{BASE}caps = [\"ep:ping\"]\n");
    let d = only_error(&text);
    assert_error(
        &d,
        8,
        "domain.caps",
        &["ep:ping", "undefined endpoint `ping`", "(none)"],
    );
    let text = format!("{BASE}caps = [\n  \"set:parent\",\n  \"dom:other\",\n]\n");
    let d = only_error(&text);
    assert_error(
        &d,
        10,
        "domain.caps",
        &["undefined domain `other`", "defined: parent"],
    );
    let text = format!("{BASE}caps = [\"mem:x\"]\n");
    let d = only_error(&text);
    assert_error(&d, 8, "domain.caps", &["`mem`", "set, dom, ep"]);
}

#[test]
fn capability_rights_are_checked_against_their_type() {
    let text = format!("{BASE}caps = [\"set:parent:query+sned\"]\n");
    let d = only_error(&text);
    assert_error(
        &d,
        8,
        "domain.caps",
        &[
            "`sned`",
            "not a right of a charge-set capability",
            "query, limit, create",
        ],
    );
    let text = format!("{BASE}caps = [\"set:parent:send\"]\n");
    let d = only_error(&text);
    assert_error(
        &d,
        8,
        "domain.caps",
        &["`send`", "valid rights: query, limit, create"],
    );
    let config = load(&format!("{BASE}caps = [\"set:parent:query+limit\"]\n")).unwrap();
    assert_eq!(
        config.domains[0].caps[0].rights,
        Some(abi::Rights::QUERY.union(abi::Rights::LIMIT))
    );
}

#[test]
fn undefined_references_in_expect() {
    let expect = |subject: &str, field: &str| {
        format!(
            "{BASE}[[expect]]\nsnapshot = \"final\"\n{subject}\nfield = \"{field}\"\nequals = 1\n"
        )
    };
    // A near miss of a defined set is an error; another well-formed name may be a set
    // created at run time (set_create), and a malformed one is an error.
    let d = only_error(&expect("set = \"parnet\"", "current.cow"));
    assert_error(
        &d,
        10,
        "expect.set",
        &["`parnet`", "did you mean `parent`", "parent, kernel"],
    );
    load(&expect("set = \"child\"", "current.cow")).unwrap();
    let d = only_error(&expect("set = \"Child!\"", "current.cow"));
    assert_error(&d, 10, "expect.set", &["`Child!`"]);
    // Domains can be spawned at run time: any well-formed name may be checked.
    load(&expect("domain = \"child\"", "state")).unwrap();
    load(&expect("set = \"parent\"", "paid_for.child")).unwrap();
    let d = only_error(&expect("domain = \"Child!\"", "state"));
    assert_error(
        &d,
        10,
        "expect.domain",
        &["`Child!`", "domains in this config: parent"],
    );
    let d = only_error(&expect("set = \"parent\"", "current.pages"));
    assert_error(
        &d,
        11,
        "expect.field",
        &["`pages`", "anon, pagetables, kernel, msgbuf, cow, total"],
    );
    let d = only_error(&expect("set = \"parent\"", "curent.cow"));
    assert_error(
        &d,
        11,
        "expect.field",
        &["`curent`", "current", "peak", "paid_for"],
    );
    let d = only_error(&expect("set = \"parent\"", "paid_for.Child"));
    assert_error(&d, 11, "expect.field", &["`Child`", "a-z0-9_-"]);
    let d = only_error(&expect("set = \"parent\"", "peak"));
    assert_error(&d, 11, "expect.field", &["`peak.KIND`", "cow, total"]);
    let d = only_error(&expect("domain = \"parent\"", "status"));
    assert_error(&d, 11, "expect.field", &["state, stop_reason"]);
}

#[test]
fn expect_needs_one_comparison_and_one_subject() {
    let text = format!(
        "{BASE}[[expect]]\nsnapshot = \"final\"\nset = \"parent\"\nfield = \"current.cow\"\n"
    );
    let d = only_error(&text);
    assert_error(&d, 8, "expect", &["equals, pages, at_most, at_least"]);
    let text =
        format!("{BASE}[[expect]]\nsnapshot = \"final\"\nfield = \"state\"\nequals = \"exited\"\n");
    let d = only_error(&text);
    assert_error(&d, 8, "expect", &["neither a `set` nor a `domain`"]);
}

#[test]
fn expectations_load_and_apply_by_policy() {
    let text = format!(
        "{BASE}[[expect]]\nwhen = {{ cow = [\"holder\", \"split\"] }}\nsnapshot = \"shared\"\nset = \"parent\"\nfield = \"current.cow\"\npages = 16\n\
         [[expect]]\nsnapshot = \"final\"\ndomain = \"parent\"\nfield = \"state\"\nequals = \"exited\"\n"
    );
    let config = load(&text).unwrap();
    assert_eq!(
        config.expects[0].check,
        Check::Equals(Expected::Integer(65536))
    );
    assert_eq!(config.expects[1].subject, Subject::Domain("parent".into()));
    let mut policy = config.policy.clone();
    assert!(!config.expects[0].applies(&policy));
    assert!(config.expects[1].applies(&policy));
    policy[0].1 = "split".into();
    assert!(config.expects[0].applies(&policy));
}

#[test]
fn differences_between_snapshots_and_runs() {
    let text = format!(
        "{BASE}[[expect]]\nwhen = {{ cow = \"split\" }}\nsnapshot = \"shared\"\nset = \"parent\"\nfield = \"current.total\"\nminus_policy = {{ cow = \"writer\" }}\nequals = -98304\n\
         [[expect]]\nsnapshot = \"after\"\nminus_snapshot = \"before\"\nset = \"parent\"\nfield = \"current.pagetables\"\npages = 16\n"
    );
    let config = load(&text).unwrap();
    let first = &config.expects[0];
    assert_eq!(
        first.minus_policy,
        [("cow".to_string(), "writer".to_string())]
    );
    assert_eq!(first.check, Check::Equals(Expected::Integer(-98304)));
    let mut policy = config.policy.clone();
    policy[0].1 = "split".into();
    let reference = first.reference_policy(&policy).unwrap();
    assert_eq!(reference, config.policy);
    assert_eq!(config.expects[1].minus_snapshot.as_deref(), Some("before"));
    assert_eq!(config.expects[1].reference_policy(&policy), None);

    // A negative number needs a difference to make sense.
    let text = format!("{BASE}[[expect]]\nsnapshot = \"final\"\nset = \"parent\"\nfield = \"current.anon\"\nequals = -4096\n");
    let d = only_error(&text);
    assert_error(
        &d,
        12,
        "expect.equals",
        &["negative", "minus_snapshot", "minus_policy"],
    );
    // minus_policy names one value per key, checked like [policy].
    let text = format!("{BASE}[[expect]]\nsnapshot = \"final\"\nset = \"parent\"\nfield = \"current.anon\"\nminus_policy = {{ cow = \"reader\" }}\nequals = 0\n");
    let d = only_error(&text);
    assert_error(
        &d,
        12,
        "expect.minus_policy.cow",
        &["`reader`", "writer, holder, split"],
    );
    let text = format!("{BASE}[[expect]]\nsnapshot = \"final\"\nset = \"parent\"\nfield = \"current.anon\"\nminus_policy = {{ cow = [\"holder\"] }}\nequals = 0\n");
    let d = only_error(&text);
    assert_error(
        &d,
        12,
        "expect.minus_policy.cow",
        &["expected a policy name,"],
    );
}

#[test]
fn cycle_in_the_charge_set_tree() {
    let text = "[[charge_set]]\nname = \"a\"\nparent = \"c\"\n[[charge_set]]\nname = \"b\"\nparent = \"a\"\n[[charge_set]]\nname = \"c\"\nparent = \"b\"\n[[charge_set]]\nname = \"d\"\nparent = \"c\"\n";
    let d = only_error(text);
    assert_error(&d, 6, "charge_set.parent", &["cycle", "a -> c -> b -> a"]);
    let d = only_error("[[charge_set]]\nname = \"self\"\nparent = \"self\"\n");
    assert_error(&d, 3, "charge_set.parent", &["self -> self"]);
}

#[test]
fn duplicate_names() {
    let text = format!("{BASE}[[charge_set]]\nname = \"parent\"\n");
    let d = only_error(&text);
    assert_error(
        &d,
        9,
        "charge_set.name",
        &["duplicate", "`parent`", "line 3"],
    );
    let text = format!(
        "{BASE}[[domain]]\nname = \"parent\"\nprogram = \"idle\"\ncharge_set = \"parent\"\n"
    );
    let d = only_error(&text);
    assert_error(&d, 9, "domain.name", &["duplicate", "line 5"]);
    let d = only_error("[[endpoint]]\nname = \"e\"\n[[endpoint]]\nname = \"e\"\n");
    assert_error(&d, 4, "endpoint.name", &["duplicate", "line 2"]);
}

#[test]
fn invalid_names() {
    let d = only_error("name = \"Cow Fork\"\n");
    assert_error(&d, 1, "name", &["`Cow Fork`", "a-z, 0-9"]);
    let d = only_error("[[endpoint]]\nname = \"ping.pong\"\n");
    assert_error(&d, 2, "endpoint.name", &["`ping.pong`", "1 to 23"]);
    let d = only_error("[[charge_set]]\nname = \"abcdefghijklmnopqrstuvwx\"\n");
    assert_error(&d, 2, "charge_set.name", &["1 to 23"]);
    let d = only_error("[[charge_set]]\nname = \"\"\n");
    assert_error(&d, 2, "charge_set.name", &["invalid name"]);
}

#[test]
fn a_bad_file_stem_needs_a_name() {
    let error = Config::from_text(
        Path::new("configs/Bad Name.toml"),
        "",
        &programs(),
        &PolicyOverrides::default(),
    )
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("configs/Bad Name.toml:1: `name`:"),
        "{text}"
    );
}

#[test]
fn missing_required_keys() {
    let d =
        only_error("[[charge_set]]\nname = \"a\"\n[[domain]]\nname = \"d\"\ncharge_set = \"a\"\n");
    assert_error(&d, 3, "domain.program", &["required"]);
}

#[test]
fn wrong_types() {
    let d = only_error("[run]\ntrace = \"yes\"\n");
    assert_error(&d, 2, "run.trace", &["true or false"]);
    let d = only_error("policy = \"cow\"\n");
    assert_error(&d, 1, "policy", &["table"]);
    let d = only_error("[charge_set]\nname = \"a\"\n");
    assert_error(&d, 1, "charge_set", &["[[charge_set]]"]);
    let d = only_error("[policy]\ncow = 3\n");
    assert_error(&d, 2, "policy.cow", &["writer, holder, split"]);
    let d = only_error("[run]\ntimeout_seconds = -1\n");
    assert_error(&d, 2, "run.timeout_seconds", &["non-negative integer"]);
}

#[test]
fn bootargs_too_long() {
    // 24 sets with long names and every sub-limit (the kernel takes 32): over 4000 bytes.
    let mut text = String::from(BASE);
    for index in 0..24 {
        text.push_str(&format!(
            "[[charge_set]]\nname = \"set-with-a-long-name-{index:02}\"\nlimit = 9223372036854771712\nanon = 9223372036854771712\npagetables = 9223372036854771712\nkernel = 9223372036854771712\nmsgbuf = 9223372036854771712\ncow = 9223372036854771712\n"
        ));
    }
    let d = only_error(&text);
    assert!(d.to_string().contains("4000 bytes"), "{d}");
    let line = d.line.expect("line of the token that went over");
    assert!(
        text.lines()
            .nth(line - 1)
            .unwrap()
            .starts_with("[[charge_set]]"),
        "{d}"
    );
}

#[test]
fn several_errors_are_all_reported() {
    let error = load("[policy]\ncow = \"x\"\nmsgbuf = \"y\"\n[run]\nlog = \"z\"\n").unwrap_err();
    let lines: Vec<Option<usize>> = error.diagnostics.iter().map(|d| d.line).collect();
    assert_eq!(lines, [Some(2), Some(3), Some(5)]);
}

#[test]
fn policy_overrides_are_validated_like_the_file() {
    let overrides = PolicyOverrides::parse("cow=holder  msgbuf=receiver").unwrap();
    let config = Config::from_text(Path::new(FILE), BASE, &programs(), &overrides).unwrap();
    assert_eq!(config.policy_name("cow"), Some("holder"));
    assert_eq!(config.policy_name("msgbuf"), Some("receiver"));
    assert_eq!(config.policy_name("release"), Some("migrate"));

    let error = PolicyOverrides::parse("cow=reader").unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with("--policy: `cow`:"), "{text}");
    assert!(text.contains("writer, holder, split"), "{text}");
    let text = PolicyOverrides::parse("cwo=holder")
        .unwrap_err()
        .to_string();
    assert!(text.contains("cow, msgbuf, pagetable, release"), "{text}");
    let text = PolicyOverrides::parse("holder").unwrap_err().to_string();
    assert!(text.contains("key=name"), "{text}");
}

/// Loads from disk: the workspace root is found from the config's path and the programs are
/// the stems of `user/src/bin/*.rs` there.
#[test]
fn programs_come_from_the_workspace_of_the_config() {
    let root = std::env::temp_dir().join(format!("tally-config-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("user/src/bin/spawner")).unwrap();
    std::fs::create_dir_all(root.join("configs")).unwrap();
    std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
    std::fs::write(root.join("user/src/bin/pinger.rs"), "").unwrap();
    std::fs::write(root.join("user/src/bin/spawner/main.rs"), "").unwrap();
    std::fs::write(root.join("user/src/bin/notes.txt"), "").unwrap();
    let good = root.join("configs/good.toml");
    std::fs::write(
        &good,
        "[[charge_set]]\nname = \"s\"\n[[domain]]\nname = \"d\"\nprogram = \"pinger\"\ncharge_set = \"s\"\n",
    )
    .unwrap();
    let config = Config::load(&good, &PolicyOverrides::default()).unwrap();
    assert_eq!(config.name, "good");
    assert_eq!(list_programs(&root).unwrap(), ["pinger", "spawner"]);

    let bad = root.join("configs/bad.toml");
    std::fs::write(
        &bad,
        "[[charge_set]]\nname = \"s\"\n[[domain]]\nname = \"d\"\nprogram = \"ponger\"\ncharge_set = \"s\"\n",
    )
    .unwrap();
    let text = Config::load(&bad, &PolicyOverrides::default())
        .unwrap_err()
        .to_string();
    assert!(
        text.starts_with(&format!("{}:5: `domain.program`", bad.display())),
        "{text}"
    );
    assert!(text.contains("pinger, spawner"), "{text}");
    std::fs::remove_dir_all(&root).unwrap();
}

/// `cow=… msgbuf=… pagetable=… release=… kernel=…` of a loaded config.
fn policy_words(config: &Config) -> String {
    config
        .policy
        .iter()
        .map(|(key, name)| format!("{key}={name}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_preset_expands_to_its_policies_and_transfer_mode() {
    let config = load(&format!("{BASE}[policy]\npreset = \"linux-memcg\"\n")).unwrap();
    assert_eq!(config.preset.as_deref(), Some("linux-memcg"));
    assert_eq!(
        policy_words(&config),
        "cow=writer msgbuf=sender pagetable=causer release=stay kernel=spawner move=stay"
    );
    assert_eq!(config.transfer, "two-stage");
    assert!(config.explicit.is_empty());
    assert_eq!(
        config.policy_line(),
        "preset=linux-memcg (cow=writer msgbuf=sender pagetable=causer release=stay \
         kernel=spawner move=stay transfer=two-stage)"
    );
    // Every preset loads, and expands to exactly its registry entry.
    for name in registry::preset_names() {
        let config = load(&format!("{BASE}[policy]\npreset = \"{name}\"\n")).unwrap();
        let preset = registry::preset(name).unwrap();
        let expected: Vec<(String, String)> = preset
            .policy
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(config.policy, expected, "{name}");
        assert_eq!(config.transfer, preset.transfer, "{name}");
    }
    // The encoded boot arguments carry the expanded names (no kernel change).
    let config = load(&format!("{BASE}[policy]\npreset = \"zircon\"\n")).unwrap();
    let encoded = crate::bootargs::encode(&config).unwrap();
    assert!(
        encoded.contains(
            "cow=split msgbuf=kernel pagetable=owner release=migrate kernel=self move=migrate \
             transfer=two-stage"
        ),
        "{encoded}"
    );
    assert!(!encoded.contains("preset"), "{encoded}");
}

#[test]
fn explicit_keys_override_the_preset_wherever_they_are_written() {
    // Before or after `preset` in the table, and `[ipc] transfer` too.
    for table in [
        "[policy]\ncow = \"holder\"\npreset = \"linux-memcg\"\n[ipc]\ntransfer = \"direct\"\n",
        "[policy]\npreset = \"linux-memcg\"\ncow = \"holder\"\n[ipc]\ntransfer = \"direct\"\n",
    ] {
        let config = load(&format!("{BASE}{table}")).unwrap();
        assert_eq!(
            policy_words(&config),
            "cow=holder msgbuf=sender pagetable=causer release=stay kernel=spawner move=stay"
        );
        assert_eq!(config.transfer, "direct");
        assert_eq!(config.explicit, ["cow", "transfer"]);
        assert_eq!(config.preset.as_deref(), Some("linux-memcg"));
    }
}

#[test]
fn a_command_line_preset_expands_first_and_its_pairs_override_it() {
    let load_with = |text: &str, policy: &str| {
        let overrides = PolicyOverrides::parse(policy).unwrap();
        Config::from_text(Path::new(FILE), text, &programs(), &overrides).unwrap()
    };
    // The pair before the preset still overrides it.
    let config = load_with(BASE, "kernel=self preset=sel4");
    assert_eq!(config.preset.as_deref(), Some("sel4"));
    assert_eq!(
        policy_words(&config),
        "cow=holder msgbuf=kernel pagetable=causer release=stay kernel=self move=stay"
    );
    assert_eq!(config.transfer, "direct");
    // A command-line preset replaces the file's preset and the file's own keys (`release`,
    // `[ipc] transfer`), as its pairs would; the pairs given with it override it.
    let text = format!(
        "{BASE}[policy]\npreset = \"zircon\"\nrelease = \"stay\"\n[ipc]\ntransfer = \"two-stage\"\n"
    );
    let config = load_with(&text, "preset=zircon");
    assert_eq!(config.policy_name("release"), Some("migrate"));
    let config = load_with(&text, "preset=keykos");
    assert_eq!(config.preset.as_deref(), Some("keykos"));
    assert_eq!(
        policy_words(&config),
        "cow=writer msgbuf=kernel pagetable=owner release=stay kernel=self move=stay"
    );
    assert_eq!(config.transfer, "direct");
    let config = load_with(&text, "preset=keykos transfer=two-stage cow=split");
    assert_eq!(config.transfer, "two-stage");
    assert_eq!(config.policy_name("cow"), Some("split"));
    assert_eq!(config.explicit, ["cow", "transfer"]);
    // A varied preset keeps the keys a `--policy` pair set.
    let mut config = load_with(BASE, "msgbuf=receiver");
    config.apply_varied(&PolicyOverrides(vec![("preset".into(), "zircon".into())]));
    assert_eq!(
        policy_words(&config),
        "cow=split msgbuf=receiver pagetable=owner release=migrate kernel=self move=migrate"
    );

    let overrides = PolicyOverrides::parse("preset = zircon, cow=writer").unwrap();
    assert_eq!(overrides.preset(), Some("zircon"));
    assert_eq!(
        overrides.policies().collect::<Vec<_>>(),
        [("cow", "writer")]
    );
    let expanded = overrides.expanded_policies();
    assert_eq!(expanded.first(), Some(&("cow", "split")));
    assert_eq!(expanded.last(), Some(&("cow", "writer")));
    assert_eq!(expanded.len(), 7);
}

#[test]
fn unknown_presets_are_refused_with_the_valid_ones() {
    let d = only_error(&format!("{BASE}[policy]\npreset = \"linux\"\n"));
    assert_error(
        &d,
        9,
        "policy.preset",
        &[
            "unknown preset `linux` (did you mean `linux-memcg`?)",
            "valid values: linux-memcg, sel4, keykos, zircon",
        ],
    );
    let d = only_error(&format!("{BASE}[policy]\npreset = \"zirkon\"\n"));
    assert_error(
        &d,
        9,
        "policy.preset",
        &["unknown preset `zirkon` (did you mean `zircon`?); valid values:"],
    );
    let d = only_error(&format!("{BASE}[policy]\npreset = 4\n"));
    assert_error(
        &d,
        9,
        "policy.preset",
        &["expected a preset name (string)", "linux-memcg, sel4"],
    );
    // A misspelt key suggests `preset`.
    let d = only_error(&format!("{BASE}[policy]\npreseet = \"sel4\"\n"));
    assert_error(&d, 9, "policy.preseet", &["(did you mean `preset`?)"]);

    let text = PolicyOverrides::parse("preset=sel5")
        .unwrap_err()
        .to_string();
    assert!(
        text.starts_with("--policy: `preset`: unknown preset `sel5` (did you mean `sel4`?); valid values: linux-memcg, sel4, keykos, zircon"),
        "{text}"
    );
    let text = PolicyOverrides::parse("sel4").unwrap_err().to_string();
    assert!(text.contains("transfer, preset"), "{text}");
}

#[test]
fn presets_vary_and_expectations_name_them() {
    let text = format!(
        "{BASE}[[expect]]\nwhen = {{ preset = \"zircon\" }}\nsnapshot = \"final\"\nset = \"parent\"\nfield = \"current.cow\"\nequals = 0\n\
         [policy]\ncow = \"holder\"\n[experiment]\nvary = [\"preset\"]\nvalues = {{ preset = [\"sel4\", \"zircon\"] }}\n"
    );
    let config = load(&text).unwrap();
    assert_eq!(config.vary, ["preset"]);
    assert_eq!(
        config.vary_values,
        [(
            "preset".to_string(),
            vec!["sel4".to_string(), "zircon".to_string()]
        )]
    );
    assert_eq!(config.preset, None);
    assert!(!config.expects[0].applies(&config.conditions()));
    // Varying the preset keeps the file's explicit `cow`; the transfer mode is the preset's.
    assert_eq!(
        config.fixed_policies(),
        ["cow=holder", "transfer per preset"]
    );
    let mut zircon = config.clone();
    zircon.apply_varied(&PolicyOverrides(vec![("preset".into(), "zircon".into())]));
    assert_eq!(
        policy_words(&zircon),
        "cow=holder msgbuf=kernel pagetable=owner release=migrate kernel=self move=migrate"
    );
    assert_eq!(zircon.transfer, "two-stage");
    assert!(zircon.expects[0].applies(&zircon.conditions()));
    let mut sel4 = config.clone();
    sel4.apply_varied(&PolicyOverrides(vec![("preset".into(), "sel4".into())]));
    assert!(!sel4.expects[0].applies(&sel4.conditions()));

    // Not varied: the preset is fixed along with the keys.
    let config = load(&format!(
        "{BASE}[policy]\npreset = \"sel4\"\n[experiment]\nvary = [\"cow\"]\n"
    ))
    .unwrap();
    assert_eq!(
        config.fixed_policies().join(" "),
        "preset=sel4 msgbuf=kernel pagetable=causer release=stay kernel=spawner move=stay transfer=direct"
    );

    // Bad preset names in `values` and `when`, and a preset in `minus_policy`, are refused.
    let d = only_error(&format!(
        "{BASE}[experiment]\nvary = [\"preset\"]\nvalues = {{ preset = [\"sel4\", \"l4\"] }}\n"
    ));
    assert_error(&d, 10, "experiment.values.preset", &["unknown preset `l4`"]);
    let d = only_error(&format!(
        "{BASE}[[expect]]\nwhen = {{ preset = \"kekyos\" }}\nsnapshot = \"final\"\nset = \"parent\"\nfield = \"current.cow\"\nequals = 0\n"
    ));
    assert_error(&d, 9, "expect.when.preset", &["(did you mean `keykos`?)"]);
    let d = only_error(&format!(
        "{BASE}[[expect]]\nsnapshot = \"final\"\nset = \"parent\"\nfield = \"current.cow\"\nminus_policy = {{ preset = \"sel4\" }}\nequals = 0\n"
    ));
    assert_error(
        &d,
        12,
        "expect.minus_policy.preset",
        &["a preset cannot be compared against"],
    );
    let d = only_error(&format!("{BASE}[experiment]\nvary = [\"presets\"]\n"));
    assert_error(&d, 9, "experiment.vary", &["(did you mean `preset`?)"]);
}

#[test]
fn a_high_bound_is_read_in_frames_and_must_be_below_the_limit() {
    let text = BASE.replace(
        "name = \"parent\"\n[[domain]]",
        "name = \"parent\"\nlimit = \"1 MiB\"\nhigh = \"72 KiB\"\n[[domain]]",
    );
    let config = load(&text).unwrap();
    assert_eq!(config.charge_sets[0].high_bytes, Some(72 * 1024));
    assert_eq!(load(BASE).unwrap().charge_sets[0].high_bytes, None);
    let text = "[[charge_set]]\nname = \"a\"\nlimit = \"64 KiB\"\nhigh = \"64 KiB\"\n";
    let d = only_error(text);
    assert_error(
        &d,
        4,
        "charge_set.high",
        &["not below the set's limit", "64 KiB"],
    );
    let text = "[[charge_set]]\nname = \"a\"\nhigh = 1000\n";
    let d = only_error(text);
    assert_error(&d, 3, "charge_set.high", &["whole number of 4 KiB frames"]);
}
