//! The boot config: the `/chosen/bootargs` string (format in docs/internals.md §1).
//!
//! One definition serves both ends. The host tool fills a [`BootConfig`] from a validated
//! experiment config and encodes it with [`BootConfig`]'s `Display`; the kernel decodes the
//! string with [`parse`], which trusts nothing: a string written by hand (or by a fuzzer) is
//! checked as strictly as the host tool checks a config file, against the same
//! [`limits`](crate::limits). Any error names the token, what is wrong and the valid choices.
//!
//! Tokens, separated by spaces, `tally=1` first:
//!
//! | token | meaning |
//! |---|---|
//! | `config=NAME` | the config's name, for the report |
//! | `log=LEVEL` | console log level |
//! | `cow=…` `msgbuf=…` `pagetable=…` `release=…` `kernel=…` | the policies, by registry name |
//! | `transfer=direct\|two-stage` | the IPC transfer mode |
//! | `trace=on\|off` | print the event trace |
//! | `recount=on\|off` | recount the books over the frame table after every trap |
//! | `tick=HZ` | the preemption timer's rate, 10 to 100000 a second (default 100) |
//! | `inject=uncharged-frame` | a deliberate fault, for tests of the checks (never from a config) |
//! | `set=NAME,PARENT\|-,LIMIT\|-[,KIND:BYTES]…` | a charge set, parents first |
//! | `ep=NAME` | an endpoint |
//! | `dom=NAME,SET,PROGRAM` | a domain, after its set |
//! | `arg=DOMAIN,NAME:VALUE` | a program argument (an unsigned integer) |
//! | `cap=DOMAIN,set\|dom\|ep:TARGET[:RIGHT+…]` | a capability, index 0 upward per domain; its rights if not all of its type's |
//! | `keeper=DOMAIN,ENDPOINT` | the endpoint a domain's faults go to (its keeper receives there) |

use core::fmt;
use core::fmt::Write as _;

use abi::Rights;
use heapless::{String, Vec};

use crate::limits::{
    MAX_CONFIG_CAPS, MAX_CONFIG_DOMAINS, MAX_CONFIG_ENDPOINTS, MAX_CONFIG_SETS, MAX_DOMAIN_ARGS,
    MAX_SET_DEPTH, NAME_MAX_BYTES,
};

/// The preemption timer's default rate, ticks a second.
pub const TICK_HZ: u32 = 100;
/// The rates a config may ask for.
pub const TICK_HZ_RANGE: core::ops::RangeInclusive<u64> = 10..=100_000;

/// The format version, the value of the first token `tally=1`.
pub const FORMAT_VERSION: u32 = 1;

/// A name of a set, domain, endpoint, program or argument.
pub use accounting::Name;

/// The built-in kernel reserve set: no config declares it and no domain may hold it.
pub const KERNEL_SET: &str = "kernel";

/// Frame kinds, in report order: the per-kind sub-limit keys.
pub const KIND_NAMES: [&str; 5] = ["anon", "pagetables", "kernel", "msgbuf", "cow"];

/// Console log levels, in increasing verbosity.
pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// The IPC transfer mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Transfer {
    /// Synchronous rendezvous, copying frame to frame (KeyKOS/EROS).
    #[default]
    Direct,
    /// Copied into queued kernel buffers at send, out at receive (Mach).
    TwoStage,
}

impl Transfer {
    /// Every mode, the default first.
    pub const ALL: [Transfer; 2] = [Transfer::Direct, Transfer::TwoStage];

    /// The config spelling: `direct` or `two-stage`.
    pub const fn name(self) -> &'static str {
        match self {
            Transfer::Direct => "direct",
            Transfer::TwoStage => "two-stage",
        }
    }

    /// The mode spelled `name`.
    pub fn from_name(name: &str) -> Option<Transfer> {
        Transfer::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// A deliberate kernel fault that a test asks for with the `inject=` token, to prove that the
/// checks catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Inject {
    /// None (the default).
    #[default]
    Nothing,
    /// At the first `map` system call the kernel takes a frame from its allocator and never
    /// charges it: the counters still balance, the full recount must not.
    UnchargedFrame,
}

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

impl CapSpec {
    /// The token prefix: `set`, `dom` or `ep`.
    pub const fn prefix(&self) -> &'static str {
        match self {
            CapSpec::Set(_) => "set",
            CapSpec::Domain(_) => "dom",
            CapSpec::Endpoint(_) => "ep",
        }
    }

    /// The name of what it refers to.
    pub fn target(&self) -> &str {
        match self {
            CapSpec::Set(name) | CapSpec::Domain(name) | CapSpec::Endpoint(name) => name,
        }
    }

    /// Every right a capability to it can hold.
    pub const fn all_rights(&self) -> Rights {
        match self {
            CapSpec::Set(_) => Rights::SET,
            CapSpec::Domain(_) => Rights::DOMAIN,
            CapSpec::Endpoint(_) => Rights::ENDPOINT,
        }
    }

    /// The names of those rights, for an error message.
    pub const fn right_names(&self) -> &'static str {
        match self {
            CapSpec::Set(_) => "query, limit, create (joined by +)",
            CapSpec::Domain(_) => "inspect, control (joined by +)",
            CapSpec::Endpoint(_) => "send, receive, grant (joined by +)",
        }
    }
}

/// A capability a boot domain starts with: what it refers to, and its rights (by default
/// every right its type has; `ep:mailbox:send+grant` in the config for fewer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GivenCap {
    /// What it refers to.
    pub target: CapSpec,
    /// What it allows.
    pub rights: Rights,
}

/// A charge set declared at boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetSpec {
    /// Its name.
    pub name: Name,
    /// Its parent's name, if any.
    pub parent: Option<Name>,
    /// Its limit in bytes.
    pub limit_bytes: Option<u64>,
    /// Per-kind sub-limits: (kind name, bytes), in [`KIND_NAMES`] order.
    pub kind_limits: Vec<(Name, u64), 5>,
    /// Its `high` bound in bytes (cgroup v2's `memory.high`), if any.
    pub high_bytes: Option<u64>,
}

/// A domain started at boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainSpec {
    /// Its name.
    pub name: Name,
    /// The charge set it is bound to.
    pub charge_set: Name,
    /// The program it runs.
    pub program: Name,
    /// Capabilities it starts with, index 0 upward.
    pub caps: Vec<GivenCap, MAX_CONFIG_CAPS>,
    /// Program arguments, by name.
    pub args: Vec<(Name, u64), MAX_DOMAIN_ARGS>,
    /// The endpoint its faults go to, if it has a keeper.
    pub keeper: Option<Name>,
}

/// The whole boot config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootConfig {
    /// Config name, for the report.
    pub config: Name,
    /// Console log level.
    pub log_level: log::LevelFilter,
    /// Policy names by key, in `policies::KEYS` order.
    pub policy: [&'static str; 6],
    /// The IPC transfer mode.
    pub transfer: Transfer,
    /// Whether to print the event trace.
    pub trace: bool,
    /// Whether to recount the books over the frame table after every trap.
    pub recount: bool,
    /// Preemption ticks per second ([`TICK_HZ`] by default; [`TICK_HZ_RANGE`]).
    pub tick_hz: u32,
    /// A deliberate kernel fault, for tests that prove the checks catch it (never set by the
    /// host tool from a config; only `run.append_bootargs` can ask for it).
    pub inject: Inject,
    /// Charge sets, parents first.
    pub sets: Vec<SetSpec, MAX_CONFIG_SETS>,
    /// Domains.
    pub domains: Vec<DomainSpec, MAX_CONFIG_DOMAINS>,
    /// Endpoints.
    pub endpoints: Vec<Name, MAX_CONFIG_ENDPOINTS>,
}

/// The valid values quoted in an error: fixed text, or a list of names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choices<'a> {
    /// A comma-separated list.
    Text(&'static str),
    /// Names, e.g. from the policy registry or the program table.
    List(&'a [&'a str]),
}

impl fmt::Display for Choices<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
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

/// A short copy of some input text, for an error message.
pub type Quoted = String<64>;

/// Why the boot config was rejected. Displayed after `tally: bad boot config: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError<'a> {
    /// The first token is not `tally=1`.
    Version,
    /// A token without `=`, or a value with the wrong number of fields.
    Malformed(Quoted),
    /// A key nobody knows.
    UnknownKey(Quoted),
    /// A value outside its choices.
    BadValue {
        /// The key.
        key: &'static str,
        /// The value given.
        value: Quoted,
        /// What it may be.
        valid: Choices<'a>,
    },
    /// A name that is not `[a-z0-9_-]{1,23}`.
    BadName(Quoted),
    /// A reference to something not declared (earlier).
    Undefined {
        /// What kind of thing.
        what: &'static str,
        /// Its name.
        name: Quoted,
    },
    /// Declared twice.
    Duplicate(Quoted),
    /// More than the fixed capacity.
    TooMany {
        /// Of what.
        what: &'static str,
        /// The capacity.
        limit: usize,
    },
    /// A number that does not parse.
    BadNumber(Quoted),
    /// A charge-set chain deeper than [`MAX_SET_DEPTH`].
    TooDeep(Quoted),
    /// A capability to the kernel's reserve set.
    KernelSet(Quoted),
}

/// A short copy of `text` (at most 64 bytes, cut at a character boundary).
pub fn quote(text: &str) -> Quoted {
    let mut out = String::new();
    for c in text.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

impl fmt::Display for ConfigError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ConfigError::Version => write!(f, "the boot arguments must start with tally={FORMAT_VERSION} (were they written by the tally host tool?)"),
            ConfigError::Malformed(t) => write!(f, "token '{t}' is malformed (see docs/internals.md §1)"),
            ConfigError::UnknownKey(k) => write!(
                f,
                "unknown key '{k}'; valid keys: tally, config, log, cow, msgbuf, pagetable, release, kernel, transfer, trace, recount, tick, inject, set, dom, ep, arg, cap"
            ),
            ConfigError::BadValue { key, value, valid } => write!(f, "{key}='{value}' is not valid; valid values: {valid}"),
            ConfigError::BadName(n) => write!(f, "'{n}' is not a valid name ([a-z0-9_-], 1 to {NAME_MAX_BYTES} characters, not `-` alone)"),
            ConfigError::Undefined { what, name } => write!(f, "{what} '{name}' is not defined (before its use)"),
            ConfigError::Duplicate(n) => write!(f, "'{n}' is defined twice"),
            ConfigError::TooMany { what, limit } => write!(f, "too many {what} (at most {limit})"),
            ConfigError::BadNumber(n) => write!(f, "'{n}' is not an unsigned number"),
            ConfigError::TooDeep(n) => write!(f, "charge set '{n}' is nested more than {MAX_SET_DEPTH} deep"),
            ConfigError::KernelSet(d) => write!(f, "domain '{d}' may not hold a capability to the kernel reserve set"),
        }
    }
}

/// Whether `text` is a valid name: `[a-z0-9_-]{1,23}`, other than `-` alone (which the
/// encoding uses for "none").
pub fn is_valid_name(text: &str) -> bool {
    !text.is_empty()
        && text != "-"
        && text.len() <= NAME_MAX_BYTES
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// `text` as a [`Name`], or why not.
pub fn name<'a>(text: &str) -> Result<Name, ConfigError<'a>> {
    if !is_valid_name(text) {
        return Err(ConfigError::BadName(quote(text)));
    }
    Name::try_from(text).map_err(|_| ConfigError::BadName(quote(text)))
}

/// The largest value a program argument may have (it comes back in `x0`, where the top bit
/// means an error).
pub const MAX_ARG_VALUE: u64 = i64::MAX as u64;

fn number<'a>(text: &str) -> Result<u64, ConfigError<'a>> {
    // Plain decimal digits only: no sign, no `+`, no leading spaces.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::BadNumber(quote(text)));
    }
    text.parse::<u64>()
        .map_err(|_| ConfigError::BadNumber(quote(text)))
}

fn optional<'a, T>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, ConfigError<'a>>,
) -> Result<Option<T>, ConfigError<'a>> {
    if text == "-" {
        Ok(None)
    } else {
        parse(text).map(Some)
    }
}

fn choice<'a>(
    key: &'static str,
    value: &str,
    valid: &'static [&'static str],
) -> Result<&'static str, ConfigError<'a>> {
    valid
        .iter()
        .copied()
        .find(|v| *v == value)
        .ok_or_else(|| ConfigError::BadValue {
            key,
            value: quote(value),
            valid: Choices::List(valid),
        })
}

fn on_off<'a>(key: &'static str, value: &str) -> Result<bool, ConfigError<'a>> {
    Ok(choice(key, value, &["on", "off"])? == "on")
}

/// The log level called `name` (one of [`LOG_LEVELS`]).
pub fn log_level(name: &str) -> Option<log::LevelFilter> {
    Some(match name {
        "error" => log::LevelFilter::Error,
        "warn" => log::LevelFilter::Warn,
        "info" => log::LevelFilter::Info,
        "debug" => log::LevelFilter::Debug,
        "trace" => log::LevelFilter::Trace,
        _ => return None,
    })
}

fn log_level_name(level: log::LevelFilter) -> &'static str {
    match level {
        log::LevelFilter::Off | log::LevelFilter::Error => "error",
        log::LevelFilter::Warn => "warn",
        log::LevelFilter::Info => "info",
        log::LevelFilter::Debug => "debug",
        log::LevelFilter::Trace => "trace",
    }
}

impl BootConfig {
    /// The config before parsing: no name, no objects, the default of every policy.
    pub const EMPTY: BootConfig = BootConfig {
        config: String::new(),
        log_level: log::LevelFilter::Info,
        policy: [""; 6],
        transfer: Transfer::Direct,
        trace: false,
        recount: false,
        tick_hz: TICK_HZ,
        inject: Inject::Nothing,
        sets: Vec::new(),
        domains: Vec::new(),
        endpoints: Vec::new(),
    };

    /// An empty config called `config_name` with every policy at its default.
    pub fn new(config_name: Name) -> BootConfig {
        let mut config = BootConfig::EMPTY;
        config.config = config_name;
        for (index, key) in policies::KEYS.iter().enumerate() {
            config.policy[index] = policies::valid_names(key)
                .and_then(|names| names.first().copied())
                .unwrap_or("");
        }
        config
    }

    /// The set called `name`.
    pub fn set(&self, name: &str) -> Option<&SetSpec> {
        self.sets.iter().find(|s| s.name == name)
    }

    /// How deep the set called `name` is (a root is 1), following declared parents.
    pub fn depth(&self, name: &str) -> usize {
        let mut depth = 0;
        let mut cursor = self.set(name);
        while let Some(set) = cursor {
            depth += 1;
            if depth > MAX_CONFIG_SETS {
                break; // a cycle; parse never builds one
            }
            cursor = set.parent.as_deref().and_then(|p| self.set(p));
        }
        depth
    }

    /// Sets a policy by key; `Err` lists the valid names.
    pub fn set_policy(&mut self, key: &str, value: &str) -> Result<(), ConfigError<'static>> {
        let Some(index) = policies::KEYS.iter().position(|k| *k == key) else {
            return Err(ConfigError::UnknownKey(quote(key)));
        };
        let valid = policies::valid_names(key).unwrap_or(&[]);
        self.policy[index] =
            valid
                .iter()
                .copied()
                .find(|v| *v == value)
                .ok_or_else(|| ConfigError::BadValue {
                    key: policies::KEYS[index],
                    value: quote(value),
                    valid: Choices::List(valid),
                })?;
        Ok(())
    }

    /// Adds a charge set, checking what [`parse`] checks.
    pub fn add_set(&mut self, spec: SetSpec) -> Result<(), ConfigError<'static>> {
        if spec.name == KERNEL_SET || self.set(&spec.name).is_some() {
            return Err(ConfigError::Duplicate(quote(&spec.name)));
        }
        if let Some(parent) = &spec.parent {
            if self.set(parent).is_none() {
                return Err(ConfigError::Undefined {
                    what: "charge set",
                    name: quote(parent),
                });
            }
            if self.depth(parent) + 1 > MAX_SET_DEPTH {
                return Err(ConfigError::TooDeep(quote(&spec.name)));
            }
        }
        self.sets.push(spec).map_err(|_| ConfigError::TooMany {
            what: "charge sets",
            limit: MAX_CONFIG_SETS,
        })
    }

    /// Adds an endpoint.
    pub fn add_endpoint(&mut self, endpoint: Name) -> Result<(), ConfigError<'static>> {
        if self.endpoints.contains(&endpoint) {
            return Err(ConfigError::Duplicate(quote(&endpoint)));
        }
        self.endpoints
            .push(endpoint)
            .map_err(|_| ConfigError::TooMany {
                what: "endpoints",
                limit: MAX_CONFIG_ENDPOINTS,
            })
    }

    /// Adds a domain (no capabilities or arguments yet); its set must exist. The program is
    /// checked by the caller.
    pub fn add_domain(
        &mut self,
        domain: Name,
        charge_set: Name,
        program: Name,
    ) -> Result<(), ConfigError<'static>> {
        if self.domains.iter().any(|d| d.name == domain) {
            return Err(ConfigError::Duplicate(quote(&domain)));
        }
        if self.set(&charge_set).is_none() {
            return Err(ConfigError::Undefined {
                what: "charge set",
                name: quote(&charge_set),
            });
        }
        self.domains
            .push(DomainSpec {
                name: domain,
                charge_set,
                program,
                caps: Vec::new(),
                args: Vec::new(),
                keeper: None,
            })
            .map_err(|_| ConfigError::TooMany {
                what: "domains",
                limit: MAX_CONFIG_DOMAINS,
            })
    }

    /// Sends `domain`'s faults to `endpoint`, which must exist (once per domain).
    pub fn set_keeper(&mut self, domain: &str, endpoint: Name) -> Result<(), ConfigError<'static>> {
        if !self.endpoints.contains(&endpoint) {
            return Err(ConfigError::Undefined {
                what: "endpoint",
                name: quote(&endpoint),
            });
        }
        let spec = self.domain_mut(domain)?;
        if spec.keeper.is_some() {
            return Err(ConfigError::Duplicate(quote(domain)));
        }
        spec.keeper = Some(endpoint);
        Ok(())
    }

    fn domain_mut(&mut self, domain: &str) -> Result<&mut DomainSpec, ConfigError<'static>> {
        self.domains
            .iter_mut()
            .find(|d| d.name == domain)
            .ok_or_else(|| ConfigError::Undefined {
                what: "domain",
                name: quote(domain),
            })
    }

    /// Gives `domain` a capability with `rights` (`None`: every right of its type), after
    /// checking its target exists and is not the kernel reserve set, and that its type has
    /// those rights.
    pub fn add_cap(
        &mut self,
        domain: &str,
        cap: CapSpec,
        rights: Option<Rights>,
    ) -> Result<(), ConfigError<'static>> {
        let all = cap.all_rights();
        let rights = rights.unwrap_or(all);
        if !all.contains(rights) || rights.is_empty() {
            let mut value = Quoted::new();
            let _ = write!(value, "{rights}");
            return Err(ConfigError::BadValue {
                key: "cap rights",
                value,
                valid: Choices::Text(cap.right_names()),
            });
        }
        let (exists, what) = match &cap {
            CapSpec::Set(name) if name == KERNEL_SET => {
                return Err(ConfigError::KernelSet(quote(domain)))
            }
            CapSpec::Set(name) => (self.set(name).is_some(), "charge set"),
            CapSpec::Domain(name) => (self.domains.iter().any(|d| &d.name == name), "domain"),
            CapSpec::Endpoint(name) => (self.endpoints.contains(name), "endpoint"),
        };
        if !exists {
            return Err(ConfigError::Undefined {
                what,
                name: quote(cap.target()),
            });
        }
        self.domain_mut(domain)?
            .caps
            .push(GivenCap {
                target: cap,
                rights,
            })
            .map_err(|_| ConfigError::TooMany {
                what: "capabilities for one domain",
                limit: MAX_CONFIG_CAPS,
            })
    }

    /// Gives `domain` a program argument.
    pub fn add_arg(
        &mut self,
        domain: &str,
        arg: Name,
        value: u64,
    ) -> Result<(), ConfigError<'static>> {
        let spec = self.domain_mut(domain)?;
        if spec.args.iter().any(|(n, _)| *n == arg) {
            return Err(ConfigError::Duplicate(quote(&arg)));
        }
        if value > MAX_ARG_VALUE {
            return Err(ConfigError::BadNumber(quote("an argument above 2^63 - 1")));
        }
        spec.args
            .push((arg, value))
            .map_err(|_| ConfigError::TooMany {
                what: "arguments for one domain",
                limit: MAX_DOMAIN_ARGS,
            })
    }
}

/// Encodes the config as boot arguments, in the documented token order: `tally=1`, the
/// header, sets (parents first, as stored), endpoints, domains, arguments, capabilities.
impl fmt::Display for BootConfig {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "tally={FORMAT_VERSION} config={} log={}",
            self.config,
            log_level_name(self.log_level)
        )?;
        for (key, name) in policies::KEYS.iter().zip(self.policy.iter()) {
            write!(f, " {key}={name}")?;
        }
        write!(
            f,
            " transfer={} trace={}",
            self.transfer.name(),
            if self.trace { "on" } else { "off" }
        )?;
        if self.recount {
            f.write_str(" recount=on")?;
        }
        if self.tick_hz != TICK_HZ {
            write!(f, " tick={}", self.tick_hz)?;
        }
        for set in &self.sets {
            write!(
                f,
                " set={},{},",
                set.name,
                set.parent.as_deref().unwrap_or("-")
            )?;
            match set.limit_bytes {
                Some(bytes) => write!(f, "{bytes}")?,
                None => f.write_str("-")?,
            }
            for (kind, bytes) in &set.kind_limits {
                write!(f, ",{kind}:{bytes}")?;
            }
            if let Some(bytes) = set.high_bytes {
                write!(f, ",high:{bytes}")?;
            }
        }
        for endpoint in &self.endpoints {
            write!(f, " ep={endpoint}")?;
        }
        for domain in &self.domains {
            write!(
                f,
                " dom={},{},{}",
                domain.name, domain.charge_set, domain.program
            )?;
        }
        for domain in &self.domains {
            for (arg, value) in &domain.args {
                write!(f, " arg={},{arg}:{value}", domain.name)?;
            }
        }
        for domain in &self.domains {
            for GivenCap { target, rights } in &domain.caps {
                write!(
                    f,
                    " cap={},{}:{}",
                    domain.name,
                    target.prefix(),
                    target.target()
                )?;
                if *rights != target.all_rights() {
                    write!(f, ":{rights}")?;
                }
            }
        }
        for domain in &self.domains {
            if let Some(endpoint) = &domain.keeper {
                write!(f, " keeper={},{endpoint}", domain.name)?;
            }
        }
        Ok(())
    }
}

/// Parses and validates a boot argument string. `programs` are the names of the programs
/// the kernel can run.
pub fn parse<'a>(bootargs: &str, programs: &'a [&'a str]) -> Result<BootConfig, ConfigError<'a>> {
    let mut tokens = bootargs.split_ascii_whitespace();
    if tokens.next() != Some("tally=1") {
        return Err(ConfigError::Version);
    }
    let mut config = BootConfig::new(Name::try_from("unnamed").unwrap_or_default());
    for token in tokens {
        let (key, value) = token
            .split_once('=')
            .ok_or_else(|| ConfigError::Malformed(quote(token)))?;
        match key {
            "config" => config.config = name(value)?,
            "log" => {
                config.log_level =
                    log_level(choice("log", value, &LOG_LEVELS)?).unwrap_or(log::LevelFilter::Info)
            }
            "transfer" => {
                config.transfer =
                    Transfer::from_name(value).ok_or_else(|| ConfigError::BadValue {
                        key: "transfer",
                        value: quote(value),
                        valid: Choices::Text("direct, two-stage"),
                    })?
            }
            "trace" => config.trace = on_off("trace", value)?,
            "recount" => config.recount = on_off("recount", value)?,
            "tick" => {
                let hz = number(value)?;
                if !TICK_HZ_RANGE.contains(&hz) {
                    return Err(ConfigError::BadValue {
                        key: "tick",
                        value: quote(value),
                        valid: Choices::Text("10 to 100000 ticks a second"),
                    });
                }
                config.tick_hz = hz as u32;
            }
            "inject" => {
                choice("inject", value, &["uncharged-frame"])?;
                config.inject = Inject::UnchargedFrame;
            }
            "set" => parse_set(&mut config, value)?,
            "dom" => parse_domain(&mut config, value, programs)?,
            "ep" => config.add_endpoint(name(value)?)?,
            "arg" => parse_arg(&mut config, value)?,
            "cap" => parse_cap(&mut config, value)?,
            "keeper" => {
                let (domain, endpoint) = value
                    .split_once(',')
                    .ok_or_else(|| ConfigError::Malformed(quote(value)))?;
                config.set_keeper(domain, name(endpoint)?)?
            }
            _ if policies::KEYS.contains(&key) => config.set_policy(key, value)?,
            _ => return Err(ConfigError::UnknownKey(quote(key))),
        }
    }
    Ok(config)
}

fn parse_set<'a>(config: &mut BootConfig, value: &str) -> Result<(), ConfigError<'a>> {
    let mut fields = value.split(',');
    let set_name = name(fields.next().unwrap_or(""))?;
    let parent = optional(fields.next().unwrap_or("-"), name)?;
    let limit_bytes = optional(fields.next().unwrap_or("-"), number)?;
    let mut kind_limits: Vec<(Name, u64), 5> = Vec::new();
    let mut high_bytes = None;
    for field in fields {
        let (kind, limit) = field
            .split_once(':')
            .ok_or_else(|| ConfigError::Malformed(quote(field)))?;
        if kind == "high" {
            if high_bytes.is_some() {
                return Err(ConfigError::Duplicate(quote(field)));
            }
            high_bytes = Some(number(limit)?);
            continue;
        }
        let kind = choice("kind", kind, &KIND_NAMES)?;
        if kind_limits.iter().any(|(k, _)| k == kind) {
            return Err(ConfigError::Duplicate(quote(field)));
        }
        kind_limits
            .push((Name::try_from(kind).unwrap_or_default(), number(limit)?))
            .map_err(|_| ConfigError::TooMany {
                what: "kind limits",
                limit: KIND_NAMES.len(),
            })?;
    }
    config.add_set(SetSpec {
        name: set_name,
        parent,
        limit_bytes,
        kind_limits,
        high_bytes,
    })
}

fn parse_domain<'a>(
    config: &mut BootConfig,
    value: &str,
    programs: &'a [&'a str],
) -> Result<(), ConfigError<'a>> {
    let mut fields = value.split(',');
    let domain = name(fields.next().unwrap_or(""))?;
    let charge_set = name(fields.next().unwrap_or(""))?;
    let program = name(fields.next().unwrap_or(""))?;
    if fields.next().is_some() {
        return Err(ConfigError::Malformed(quote(value)));
    }
    if !programs.contains(&program.as_str()) {
        return Err(ConfigError::BadValue {
            key: "program",
            value: quote(&program),
            valid: Choices::List(programs),
        });
    }
    config.add_domain(domain, charge_set, program)
}

fn parse_arg<'a>(config: &mut BootConfig, value: &str) -> Result<(), ConfigError<'a>> {
    let (domain, rest) = value
        .split_once(',')
        .ok_or_else(|| ConfigError::Malformed(quote(value)))?;
    let (arg, number_text) = rest
        .split_once(':')
        .ok_or_else(|| ConfigError::Malformed(quote(value)))?;
    let arg = name(arg)?;
    let value = number(number_text)?;
    if value > MAX_ARG_VALUE {
        return Err(ConfigError::BadNumber(quote(number_text)));
    }
    config.add_arg(domain, arg, value)
}

fn parse_cap<'a>(config: &mut BootConfig, value: &str) -> Result<(), ConfigError<'a>> {
    let (domain, target) = value
        .split_once(',')
        .ok_or_else(|| ConfigError::Malformed(quote(value)))?;
    let (kind, target) = target
        .split_once(':')
        .ok_or_else(|| ConfigError::Malformed(quote(value)))?;
    let (target, rights) = match target.split_once(':') {
        Some((target, rights)) => (
            target,
            Some(Rights::parse(rights).ok_or_else(|| ConfigError::Malformed(quote(value)))?),
        ),
        None => (target, None),
    };
    let target = name(target)?;
    let spec = match kind {
        "set" => CapSpec::Set(target),
        "dom" => CapSpec::Domain(target),
        "ep" => CapSpec::Endpoint(target),
        _ => {
            return Err(ConfigError::BadValue {
                key: "cap type",
                value: quote(kind),
                valid: Choices::Text("set, dom, ep"),
            })
        }
    };
    config.add_cap(domain, spec, rights)
}

#[cfg(test)]
mod tests;
