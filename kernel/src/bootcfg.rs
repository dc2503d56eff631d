//! The boot config: the `/chosen/bootargs` string the host tool encodes from a config file
//! (format in docs/internals.md §1), parsed and re-validated here. Any error names the token,
//! what is wrong and the valid choices; the kernel then exits with a failure status.

use heapless::{String, Vec};

/// Most charge sets, domains, endpoints a boot config may declare.
pub const MAX_CONFIG_SETS: usize = 32;
/// Most boot domains.
pub const MAX_CONFIG_DOMAINS: usize = 16;
/// Most boot endpoints.
pub const MAX_CONFIG_ENDPOINTS: usize = 16;
/// Most capabilities per boot domain.
pub const MAX_CONFIG_CAPS: usize = 16;

/// A name of a set, domain, endpoint or program.
pub type Name = String<23>;

/// What a capability given at boot refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CapSpec {
    /// A charge set, by name.
    Set(Name),
    /// A domain, by name.
    Domain(Name),
    /// An endpoint, by name.
    Endpoint(Name),
}

/// A charge set declared at boot.
#[derive(Clone, Debug)]
pub struct SetSpec {
    /// Its name.
    pub name: Name,
    /// Its parent's name, if any.
    pub parent: Option<Name>,
    /// Its limit in bytes.
    pub limit_bytes: Option<u64>,
    /// Per-kind sub-limits: (kind name, bytes).
    pub kind_limits: Vec<(Name, u64), 5>,
}

/// A domain started at boot.
#[derive(Clone, Debug)]
pub struct DomainSpec {
    /// Its name.
    pub name: Name,
    /// The charge set it is bound to.
    pub charge_set: Name,
    /// The program it runs.
    pub program: Name,
    /// Capabilities it starts with, index 0 upward.
    pub caps: Vec<CapSpec, MAX_CONFIG_CAPS>,
}

/// The whole boot config.
#[derive(Clone, Debug)]
pub struct BootConfig {
    /// Config name, for the report.
    pub config: Name,
    /// Console log level.
    pub log_level: log::LevelFilter,
    /// Policy names by key, in `policies::KEYS` order.
    pub policy: [&'static str; 4],
    /// `direct` or `two-stage`.
    pub transfer: &'static str,
    /// Whether to print the event trace.
    pub trace: bool,
    /// Charge sets, parents first.
    pub sets: Vec<SetSpec, MAX_CONFIG_SETS>,
    /// Domains.
    pub domains: Vec<DomainSpec, MAX_CONFIG_DOMAINS>,
    /// Endpoints.
    pub endpoints: Vec<Name, MAX_CONFIG_ENDPOINTS>,
}

/// The valid values quoted in an error: fixed text, or a registry's list of names.
#[derive(Debug)]
pub enum Choices {
    /// A comma-separated list.
    Text(&'static str),
    /// Names, e.g. from the policy registry.
    List(&'static [&'static str]),
}

impl core::fmt::Display for Choices {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            Choices::Text(text) => f.write_str(text),
            Choices::List(names) => {
                for (i, name) in names.iter().enumerate() {
                    write!(f, "{}{name}", if i == 0 { "" } else { ", " })?;
                }
                Ok(())
            }
        }
    }
}

/// Why the boot config was rejected. Displayed after `tally: bad boot config: `.
#[derive(Debug)]
pub enum ConfigError {
    /// The first token is not `tally=1`.
    Version,
    /// A token without `=`.
    Malformed(String<64>),
    /// A key nobody knows.
    UnknownKey(String<64>),
    /// A value outside its choices.
    BadValue {
        key: &'static str,
        value: String<64>,
        valid: Choices,
    },
    /// A name that is not `[a-z0-9_-]{1,23}` or too many fields.
    BadName(String<64>),
    /// A reference to something not declared (earlier).
    Undefined {
        what: &'static str,
        name: String<64>,
    },
    /// Declared twice.
    Duplicate(String<64>),
    /// More than the fixed capacity.
    TooMany(&'static str),
    /// A number that does not parse.
    BadNumber(String<64>),
}

fn short(text: &str) -> String<64> {
    let mut out = String::new();
    for c in text.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            ConfigError::Version => write!(f, "the boot arguments must start with tally=1 (were they written by the tally host tool?)"),
            ConfigError::Malformed(t) => write!(f, "token '{t}' is not key=value"),
            ConfigError::UnknownKey(k) => write!(
                f,
                "unknown key '{k}'; valid keys: tally, config, log, cow, msgbuf, pagetable, release, transfer, trace, set, dom, ep, cap"
            ),
            ConfigError::BadValue { key, value, valid } => write!(f, "{key}='{value}' is not valid; valid values: {valid}"),
            ConfigError::BadName(n) => write!(f, "'{n}' is not a valid name ([a-z0-9_-], 1 to 23 characters)"),
            ConfigError::Undefined { what, name } => write!(f, "{what} '{name}' is not defined (before its use)"),
            ConfigError::Duplicate(n) => write!(f, "'{n}' is defined twice"),
            ConfigError::TooMany(what) => write!(f, "too many {what}"),
            ConfigError::BadNumber(n) => write!(f, "'{n}' is not a number of bytes"),
        }
    }
}

fn name(text: &str) -> Result<Name, ConfigError> {
    let valid = !text.is_empty()
        && text.len() <= 23
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        return Err(ConfigError::BadName(short(text)));
    }
    Name::try_from(text).map_err(|_| ConfigError::BadName(short(text)))
}

fn bytes(text: &str) -> Result<u64, ConfigError> {
    text.parse::<u64>()
        .map_err(|_| ConfigError::BadNumber(short(text)))
}

fn optional<T>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    if text == "-" {
        Ok(None)
    } else {
        parse(text).map(Some)
    }
}

fn choice(
    key: &'static str,
    value: &str,
    valid: &'static [&'static str],
) -> Result<&'static str, ConfigError> {
    valid
        .iter()
        .copied()
        .find(|v| *v == value)
        .ok_or_else(|| ConfigError::BadValue {
            key,
            value: short(value),
            valid: Choices::Text(match key {
                "log" => "error, warn, info, debug, trace",
                "transfer" => "direct, two-stage",
                "trace" => "on, off",
                _ => "anon, pagetables, kernel, msgbuf, cow",
            }),
        })
}

const KIND_NAMES: [&str; 5] = ["anon", "pagetables", "kernel", "msgbuf", "cow"];

impl BootConfig {
    /// The config before parsing.
    pub const EMPTY: BootConfig = BootConfig {
        config: String::new(),
        log_level: log::LevelFilter::Info,
        policy: [""; 4],
        transfer: "direct",
        trace: false,
        sets: Vec::new(),
        domains: Vec::new(),
        endpoints: Vec::new(),
    };
}

/// Parses and validates a boot argument string.
pub fn parse(bootargs: &str) -> Result<BootConfig, ConfigError> {
    let mut tokens = bootargs.split_ascii_whitespace();
    if tokens.next() != Some("tally=1") {
        return Err(ConfigError::Version);
    }
    let mut config = BootConfig::EMPTY;
    config.config = Name::try_from("unnamed").unwrap_or_default();
    for (index, key) in policies::KEYS.iter().enumerate() {
        config.policy[index] = policies::valid_names(key)
            .map(|names| names[0])
            .unwrap_or("");
    }
    for token in tokens {
        let (key, value) = token
            .split_once('=')
            .ok_or_else(|| ConfigError::Malformed(short(token)))?;
        match key {
            "config" => config.config = name(value)?,
            "log" => {
                config.log_level =
                    match choice("log", value, &["error", "warn", "info", "debug", "trace"])? {
                        "error" => log::LevelFilter::Error,
                        "warn" => log::LevelFilter::Warn,
                        "info" => log::LevelFilter::Info,
                        "debug" => log::LevelFilter::Debug,
                        _ => log::LevelFilter::Trace,
                    }
            }
            "transfer" => config.transfer = choice("transfer", value, &["direct", "two-stage"])?,
            "trace" => config.trace = choice("trace", value, &["on", "off"])? == "on",
            "set" => parse_set(&mut config, value)?,
            "dom" => parse_domain(&mut config, value)?,
            "ep" => {
                let endpoint = name(value)?;
                if config.endpoints.contains(&endpoint) {
                    return Err(ConfigError::Duplicate(short(value)));
                }
                config
                    .endpoints
                    .push(endpoint)
                    .map_err(|_| ConfigError::TooMany("endpoints"))?;
            }
            "cap" => parse_cap(&mut config, value)?,
            _ => match policies::KEYS.iter().position(|k| *k == key) {
                Some(index) => {
                    let valid = policies::valid_names(key).unwrap_or(&[]);
                    config.policy[index] =
                        valid.iter().copied().find(|v| *v == value).ok_or_else(|| {
                            ConfigError::BadValue {
                                key: policies::KEYS[index],
                                value: short(value),
                                valid: Choices::List(valid),
                            }
                        })?;
                }
                None => return Err(ConfigError::UnknownKey(short(key))),
            },
        }
    }
    Ok(config)
}

fn parse_set(config: &mut BootConfig, value: &str) -> Result<(), ConfigError> {
    let mut fields = value.split(',');
    let set_name = name(fields.next().unwrap_or(""))?;
    if set_name == "kernel" || config.sets.iter().any(|s| s.name == set_name) {
        return Err(ConfigError::Duplicate(short(&set_name)));
    }
    let parent = optional(fields.next().unwrap_or("-"), name)?;
    if let Some(parent) = &parent {
        if !config.sets.iter().any(|s| &s.name == parent) {
            return Err(ConfigError::Undefined {
                what: "charge set",
                name: short(parent),
            });
        }
    }
    let limit_bytes = optional(fields.next().unwrap_or("-"), bytes)?;
    let mut kind_limits = Vec::new();
    for field in fields {
        let (kind, limit) = field
            .split_once(':')
            .ok_or_else(|| ConfigError::Malformed(short(field)))?;
        let kind = choice("kind", kind, &KIND_NAMES)?;
        kind_limits
            .push((Name::try_from(kind).unwrap_or_default(), bytes(limit)?))
            .map_err(|_| ConfigError::TooMany("kind limits"))?;
    }
    config
        .sets
        .push(SetSpec {
            name: set_name,
            parent,
            limit_bytes,
            kind_limits,
        })
        .map_err(|_| ConfigError::TooMany("charge sets"))
}

fn parse_domain(config: &mut BootConfig, value: &str) -> Result<(), ConfigError> {
    let mut fields = value.split(',');
    let domain = name(fields.next().unwrap_or(""))?;
    let charge_set = name(fields.next().unwrap_or(""))?;
    let program = name(fields.next().unwrap_or(""))?;
    if fields.next().is_some() {
        return Err(ConfigError::Malformed(short(value)));
    }
    if config.domains.iter().any(|d| d.name == domain) {
        return Err(ConfigError::Duplicate(short(&domain)));
    }
    if !config.sets.iter().any(|s| s.name == charge_set) {
        return Err(ConfigError::Undefined {
            what: "charge set",
            name: short(&charge_set),
        });
    }
    if crate::programs::find(&program).is_none() {
        return Err(ConfigError::BadValue {
            key: "program",
            value: short(&program),
            valid: Choices::Text(crate::programs::NAMES_LIST),
        });
    }
    config
        .domains
        .push(DomainSpec {
            name: domain,
            charge_set,
            program,
            caps: Vec::new(),
        })
        .map_err(|_| ConfigError::TooMany("domains"))
}

fn parse_cap(config: &mut BootConfig, value: &str) -> Result<(), ConfigError> {
    let (domain, target) = value
        .split_once(',')
        .ok_or_else(|| ConfigError::Malformed(short(value)))?;
    let (kind, target) = target
        .split_once(':')
        .ok_or_else(|| ConfigError::Malformed(short(value)))?;
    let target_name = name(target)?;
    let spec = match kind {
        "set" if target_name == "kernel" || config.sets.iter().any(|s| s.name == target_name) => {
            CapSpec::Set(target_name)
        }
        "dom" if config.domains.iter().any(|d| d.name == target_name) => {
            CapSpec::Domain(target_name)
        }
        "ep" if config.endpoints.contains(&target_name) => CapSpec::Endpoint(target_name),
        "set" | "dom" | "ep" => {
            let what = match kind {
                "set" => "charge set",
                "dom" => "domain",
                _ => "endpoint",
            };
            return Err(ConfigError::Undefined {
                what,
                name: short(target),
            });
        }
        _ => {
            return Err(ConfigError::BadValue {
                key: "cap type",
                value: short(kind),
                valid: Choices::Text("set, dom, ep"),
            })
        }
    };
    let holder = config
        .domains
        .iter_mut()
        .find(|d| d.name == domain)
        .ok_or_else(|| ConfigError::Undefined {
            what: "domain",
            name: short(domain),
        })?;
    holder
        .caps
        .push(spec)
        .map_err(|_| ConfigError::TooMany("capabilities for one domain"))
}
