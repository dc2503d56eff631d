//! Encoding a validated config as the kernel's boot arguments (`-append`, read by the kernel
//! from `/chosen/bootargs`), per docs/internals.md §1.
//!
//! Order: `tally=1` first, then the header tokens, charge sets parents first, endpoints,
//! domains (each after its set), and last the capabilities, per domain in config order, each
//! domain's in the order the config lists them (the kernel installs them index 0 upward).

use std::fmt;

use kcore::bootcfg::{self, BootConfig, CapSpec, Name, SetSpec, Transfer};

use crate::config::{CapType, Config, KINDS};

/// The longest boot-argument string the kernel accepts, in bytes.
pub const MAX_BOOTARGS_BYTES: usize = kcore::limits::MAX_BOOTARGS_BYTES;

/// The format version token value.
pub const FORMAT_VERSION: u32 = bootcfg::FORMAT_VERSION;

/// Why a config could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootargsError {
    /// The config line of the item the kernel would refuse, when there is one.
    pub line: Option<usize>,
    /// The config key of that item (`domain.caps`, `charge_set.parent`, ...), or empty.
    pub key: &'static str,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for BootargsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BootargsError {}

fn name(text: &str, line: Option<usize>) -> Result<Name, BootargsError> {
    bootcfg::name(text).map_err(|error| BootargsError {
        line,
        key: "",
        message: error.to_string(),
    })
}

/// The kernel's boot config for `config`: the one definition (`kcore::bootcfg`) the kernel
/// decodes. Every capacity and rule the kernel enforces is checked here the same way, so an
/// error names the config line the kernel would refuse.
pub fn boot_config(config: &Config) -> Result<BootConfig, BootargsError> {
    let at = |line: usize, key: &'static str| {
        move |error: bootcfg::ConfigError| BootargsError {
            line: Some(line),
            key,
            message: format!("the kernel would refuse this: {error}"),
        }
    };
    let mut boot = BootConfig::new(name(&config.name, None)?);
    boot.log_level = bootcfg::log_level(&config.run.log).unwrap_or(log::LevelFilter::Info);
    for (key, policy) in &config.policy {
        boot.set_policy(key, policy)
            .map_err(|error| BootargsError {
                line: None,
                key: "policy",
                message: error.to_string(),
            })?;
    }
    boot.transfer = Transfer::from_name(&config.transfer).unwrap_or_default();
    boot.trace = config.run.trace;
    boot.recount = config.run.recount;
    boot.tick_hz = config.run.tick_hz;
    for set in config.charge_sets_parents_first() {
        let mut kind_limits = heapless::Vec::new();
        for kind in KINDS {
            if let Some((_, bytes)) = set.kind_limits.iter().find(|(k, _)| k == kind) {
                let _ = kind_limits.push((name(kind, Some(set.line))?, *bytes));
            }
        }
        let parent = match &set.parent {
            Some(parent) => Some(name(parent, Some(set.lines.of("parent")))?),
            None => None,
        };
        boot.add_set(SetSpec {
            name: name(&set.name, Some(set.line))?,
            parent,
            limit_bytes: set.limit_bytes,
            kind_limits,
            high_bytes: set.high_bytes,
        })
        .map_err(at(set.line, "charge_set"))?;
    }
    for endpoint in &config.endpoints {
        boot.add_endpoint(name(&endpoint.name, Some(endpoint.line))?)
            .map_err(at(endpoint.line, "endpoint"))?;
    }
    for domain in &config.domains {
        boot.add_domain(
            name(&domain.name, Some(domain.line))?,
            name(&domain.charge_set, Some(domain.lines.of("charge_set")))?,
            name(&domain.program, Some(domain.lines.of("program")))?,
        )
        .map_err(at(domain.line, "domain"))?;
    }
    for domain in &config.domains {
        let line = domain.lines.of("args");
        for (arg, value) in &domain.args {
            boot.add_arg(&domain.name, name(arg, Some(line))?, *value)
                .map_err(at(line, "domain.args"))?;
        }
    }
    for domain in &config.domains {
        for cap in &domain.caps {
            let target = name(&cap.target, Some(cap.line))?;
            let spec = match cap.cap_type {
                CapType::Set => CapSpec::Set(target),
                CapType::Domain => CapSpec::Domain(target),
                CapType::Endpoint => CapSpec::Endpoint(target),
            };
            boot.add_cap(&domain.name, spec, cap.rights)
                .map_err(at(cap.line, "domain.caps"))?;
        }
        if let Some(keeper) = &domain.keeper {
            let line = domain.lines.of("keeper");
            boot.set_keeper(&domain.name, name(keeper, Some(line))?)
                .map_err(at(line, "domain.keeper"))?;
        }
    }
    Ok(boot)
}

/// Encodes `config` (policies as the config holds them, overrides applied) in the token order
/// of docs/internals.md §1. A config with `run.raw_bootargs` is passed through verbatim and
/// unchecked, and `run.append_bootargs` is appended unchecked: they exist to feed the kernel
/// bad input on purpose.
pub fn encode(config: &Config) -> Result<String, BootargsError> {
    if let Some(raw) = &config.run.raw_bootargs {
        return Ok(raw.clone());
    }
    let mut encoded = boot_config(config)?.to_string();
    if let Some(extra) = config.run.append_bootargs.as_deref().map(str::trim) {
        if !extra.is_empty() {
            encoded.push(' ');
            encoded.push_str(extra);
        }
    }
    if encoded.len() > MAX_BOOTARGS_BYTES {
        // The token that crosses the limit, and the config line it comes from.
        let at = encoded[..MAX_BOOTARGS_BYTES]
            .rfind(' ')
            .map_or(0, |space| space + 1);
        let token = encoded[at..].split(' ').next().unwrap_or("");
        return Err(BootargsError {
            line: line_of_token(config, token),
            key: "",
            message: format!(
                "the boot arguments would be {} bytes, longer than the kernel's limit of {MAX_BOOTARGS_BYTES} bytes (reached at token `{}`); use fewer or shorter names",
                encoded.len(),
                token.chars().take(60).collect::<String>()
            ),
        });
    }
    Ok(encoded)
}

/// The config line an encoded token comes from, when it comes from one item.
fn line_of_token(config: &Config, token: &str) -> Option<usize> {
    let (key, value) = token.split_once('=')?;
    let first = value.split([',', ':']).next()?;
    match key {
        "set" => config
            .charge_sets
            .iter()
            .find(|s| s.name == first)
            .map(|s| s.line),
        "ep" => config
            .endpoints
            .iter()
            .find(|e| e.name == first)
            .map(|e| e.line),
        "dom" | "cap" | "arg" => {
            config
                .domains
                .iter()
                .find(|d| d.name == first)
                .map(|d| match key {
                    "arg" => d.lines.of("args"),
                    "cap" => d.lines.of("caps"),
                    _ => d.line,
                })
        }
        _ => None,
    }
}

/// Splits boot arguments into `(key, value)` tokens (a token without `=` has an empty value).
pub fn tokens(bootargs: &str) -> Vec<(&str, &str)> {
    bootargs
        .split(' ')
        .filter(|token| !token.is_empty())
        .map(|token| token.split_once('=').unwrap_or((token, "")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CapType, PolicyOverrides};
    use std::path::Path;

    fn programs() -> Result<Vec<String>, String> {
        Ok(vec!["cow_parent".into(), "cow_child".into(), "idle".into()])
    }

    fn load(text: &str) -> Config {
        Config::from_text(
            Path::new("configs/round-trip.toml"),
            text,
            &programs(),
            &PolicyOverrides::default(),
        )
        .unwrap_or_else(|error| panic!("{error}"))
    }

    const FULL: &str = r#"
name = "cow-fork"
[policy]
cow = "holder"
msgbuf = "kernel"
[ipc]
transfer = "two-stage"
[run]
log = "debug"
trace = true
[[charge_set]]
name = "child"
parent = "parent"
limit = "256 KiB"
cow = "64K"
msgbuf = "48 KiB"
[[charge_set]]
name = "parent"
parent = "root"
limit = "1 MiB"
[[charge_set]]
name = "root"
[[charge_set]]
name = "spare"
[[endpoint]]
name = "ping"
[[domain]]
name = "parent"
program = "cow_parent"
charge_set = "parent"
caps = ["set:child", "dom:child", "ep:ping"]
[[domain]]
name = "child"
program = "cow_child"
charge_set = "child"
caps = ["ep:ping"]
"#;

    #[test]
    fn encodes_the_documented_token_order() {
        let encoded = encode(&load(FULL)).unwrap();
        assert_eq!(
            encoded,
            "tally=1 config=cow-fork log=debug cow=holder msgbuf=kernel pagetable=owner release=migrate \
             kernel=self move=stay transfer=two-stage trace=on set=root,-,- set=parent,root,1048576 \
             set=child,parent,262144,msgbuf:49152,cow:65536 set=spare,-,- ep=ping \
             dom=parent,parent,cow_parent dom=child,child,cow_child \
             cap=parent,set:child cap=parent,dom:child cap=parent,ep:ping cap=child,ep:ping"
        );
    }

    /// Decodes the tokens back and compares them with the config they came from.
    #[test]
    fn round_trips_through_a_decoder() {
        let config = load(FULL);
        let encoded = encode(&config).unwrap();
        let tokens = tokens(&encoded);
        assert_eq!(tokens[0], ("tally", "1"));
        let value = |key: &str| {
            tokens
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .unwrap()
        };
        assert_eq!(value("config"), config.name);
        for (key, name) in &config.policy {
            assert_eq!(value(key), name);
        }
        let mut seen_sets: Vec<&str> = Vec::new();
        let mut decoded_sets = 0;
        for (key, value) in &tokens {
            match *key {
                "set" => {
                    let fields: Vec<&str> = value.split(',').collect();
                    let set = config
                        .charge_sets
                        .iter()
                        .find(|s| s.name == fields[0])
                        .unwrap();
                    assert_eq!(fields[1], set.parent.as_deref().unwrap_or("-"));
                    if fields[1] != "-" {
                        assert!(seen_sets.contains(&fields[1]), "parent after child");
                    }
                    let limit = (fields[2] != "-").then(|| fields[2].parse::<u64>().unwrap());
                    assert_eq!(limit, set.limit_bytes);
                    let high = fields[3..]
                        .iter()
                        .find_map(|f| f.strip_prefix("high:"))
                        .map(|bytes| bytes.parse::<u64>().unwrap());
                    assert_eq!(high, set.high_bytes);
                    let kind_limits: Vec<(String, u64)> = fields[3..]
                        .iter()
                        .filter(|f| !f.starts_with("high:"))
                        .map(|f| {
                            let (kind, bytes) = f.split_once(':').unwrap();
                            (kind.to_string(), bytes.parse().unwrap())
                        })
                        .collect();
                    assert_eq!(kind_limits, set.kind_limits);
                    seen_sets.push(fields[0]);
                    decoded_sets += 1;
                }
                "dom" => {
                    let fields: Vec<&str> = value.split(',').collect();
                    let domain = config.domains.iter().find(|d| d.name == fields[0]).unwrap();
                    assert!(seen_sets.contains(&fields[1]), "domain before its set");
                    assert_eq!(fields[1..], [&domain.charge_set, &domain.program]);
                }
                _ => {}
            }
        }
        assert_eq!(decoded_sets, config.charge_sets.len());
        for domain in &config.domains {
            let caps: Vec<(CapType, &str)> = tokens
                .iter()
                .filter(|(k, _)| *k == "cap")
                .filter_map(|(_, v)| v.strip_prefix(&format!("{},", domain.name)))
                .map(|c| {
                    let (t, target) = c.split_once(':').unwrap();
                    (CapType::from_prefix(t).unwrap(), target)
                })
                .collect();
            let expected: Vec<(CapType, &str)> = domain
                .caps
                .iter()
                .map(|c| (c.cap_type, c.target.as_str()))
                .collect();
            assert_eq!(caps, expected);
        }
    }

    #[test]
    fn a_minimal_config_gets_every_default() {
        let encoded = encode(&load("")).unwrap();
        assert_eq!(
            encoded,
            "tally=1 config=round-trip log=info cow=writer msgbuf=sender pagetable=owner \
             release=migrate kernel=self move=stay transfer=direct trace=off"
        );
    }

    #[test]
    fn append_and_raw_bootargs_pass_through() {
        let appended = load("[run]\nappend_bootargs = \"set=x,nowhere,-\"\n");
        assert!(encode(&appended)
            .unwrap()
            .ends_with(" trace=off set=x,nowhere,-"));
        let raw = load("[run]\nraw_bootargs = \"tally=9\"\n");
        assert_eq!(encode(&raw).unwrap(), "tally=9");
    }

    #[test]
    fn overrides_change_the_policy_tokens() {
        let mut config = load(FULL);
        config.apply_overrides(&PolicyOverrides::parse("cow=split release=stay").unwrap());
        let encoded = encode(&config).unwrap();
        assert!(encoded.contains(" cow=split msgbuf=kernel pagetable=owner release=stay "));
    }
}
