//! Experiment configs (`configs/NAME.toml`): the model, loading, and validation.
//!
//! A [`Config`] that exists has passed every check: every name is valid and unique in its
//! namespace, every reference resolves, the charge-set tree has no cycle, every policy name is one
//! the registry knows, every program is a `user/src/bin/*.rs` stem, and the encoded boot
//! arguments fit the kernel's limit. Errors are [`ConfigError`]s naming file, line, key and the
//! valid values; nothing boots from a config that has one.

mod declared;
mod diagnostic;
mod parse;
mod programs;
mod references;
mod startcost;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use diagnostic::{ConfigError, Diagnostic};
pub use programs::{find_workspace_root, list_programs};
pub use startcost::program_dir;

use crate::registry;
use diagnostic::{choices, did_you_mean, Diagnostics};

/// Frame kinds, in report order; also the per-kind sub-limit keys of a charge set (the boot
/// config's own list).
pub const KINDS: [&str; 5] = kcore::bootcfg::KIND_NAMES;
/// Console log levels the kernel accepts.
pub const LOG_LEVELS: [&str; 5] = kcore::bootcfg::LOG_LEVELS;
/// IPC transfer modes, default first.
pub const TRANSFERS: [&str; 2] = [
    kcore::bootcfg::Transfer::ALL[0].name(),
    kcore::bootcfg::Transfer::ALL[1].name(),
];
/// The built-in kernel reserve charge set: reserved, never defined by a config.
pub const KERNEL_SET: &str = kcore::bootcfg::KERNEL_SET;
/// Longest name the kernel accepts (`[a-z0-9_-]{1,23}`).
pub const NAME_MAX_BYTES: usize = kcore::limits::NAME_MAX_BYTES;
/// Bytes in a frame: the unit of every charge.
pub const FRAME_BYTES: u64 = 4096;
/// Default guest RAM when neither the config nor the command line says.
pub const DEFAULT_MEM_BYTES: u64 = 128 << 20;
/// Default run timeout when the config does not say.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 60;

/// A validated experiment config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// `name`, or the file stem.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// One name per policy key, in [`registry::keys`] order (defaults filled in, then the
    /// preset's names, then the explicit keys).
    pub policy: Vec<(String, String)>,
    /// `ipc.transfer` (or the preset's transfer mode when the config does not set it).
    pub transfer: String,
    /// The preset in force (`[policy] preset`, replaced by `--policy preset=` or a varied
    /// `preset`), if any.
    pub preset: Option<String>,
    /// The policy keys (and `transfer`) set explicitly — in `[policy]` or `[ipc]`, by a
    /// `--policy` pair or by a varied key — which a varied preset does not change (a
    /// `--policy` preset replaces them all).
    pub explicit: Vec<String>,
    /// The `[run]` table.
    pub run: RunSettings,
    /// `experiment.vary`: the policy keys `tally test` varies (or `preset`).
    pub vary: Vec<String>,
    /// `experiment.values`: for some varied keys, the names to use instead of all of them.
    pub vary_values: Vec<(String, Vec<String>)>,
    /// `[[charge_set]]` tables, in config order.
    pub charge_sets: Vec<ChargeSet>,
    /// `[[domain]]` tables, in config order.
    pub domains: Vec<Domain>,
    /// `[[endpoint]]` tables, in config order.
    pub endpoints: Vec<Endpoint>,
    /// `[[expect]]` tables, in config order.
    pub expects: Vec<Expect>,
    /// `[[expect_console]]` tables, in config order.
    pub console_expects: Vec<ConsoleExpect>,
}

/// An `[[expect_console]]` table: a text the run's console must contain (what a program
/// printed, e.g. the answer of a system call it made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleExpect {
    /// Applies only when each listed policy key has one of the listed names.
    pub when: Vec<(String, Vec<String>)>,
    /// The text, found anywhere on the console.
    pub contains: String,
    /// Line of its `[[expect_console]]` header.
    pub line: usize,
}

impl ConsoleExpect {
    /// Whether it applies to a run under `policy`.
    pub fn applies(&self, policy: &[(String, String)]) -> bool {
        when_applies(&self.when, policy)
    }
}

/// Whether a `when` table holds for a run under `policy`: each listed key has one of its
/// listed names.
fn when_applies(when: &[(String, Vec<String>)], policy: &[(String, String)]) -> bool {
    when.iter().all(|(key, names)| {
        policy
            .iter()
            .any(|(k, name)| k == key && names.iter().any(|n| n == name))
    })
}

/// Where each key of a table is written, so that a problem found later (a reference that does
/// not resolve) can point at the key's own line rather than the table header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLines {
    /// Line of the table's header.
    pub header: usize,
    /// `(key, line)` for each key present.
    pub keys: Vec<(String, usize)>,
}

impl KeyLines {
    /// The line of `key`, or of the table header when the key is absent.
    pub fn of(&self, key: &str) -> usize {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .map_or(self.header, |(_, line)| *line)
    }
}

/// The `[run]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSettings {
    /// Console log level.
    pub log: String,
    /// Whether the kernel emits its event trace.
    pub trace: bool,
    /// Whether the kernel recounts its books over the frame table after every trap
    /// (`tally test` turns it on for every run).
    pub recount: bool,
    /// Preemption timer ticks a second (`tick_hz`; default 100): a debugger scenario's points.
    pub tick_hz: u32,
    /// Guest RAM, when the config sets it (the command line overrides it).
    pub mem_bytes: Option<u64>,
    /// How long a run may take on the host before it is killed.
    pub timeout_seconds: u64,
    /// The run must fail at boot with this text on the console (negative kernel tests).
    pub expect_failure: Option<String>,
    /// Tokens appended verbatim to the encoded boot arguments (negative kernel tests).
    pub append_bootargs: Option<String>,
    /// Boot arguments used verbatim instead of the encoded ones (negative kernel tests).
    pub raw_bootargs: Option<String>,
}

/// A `[[charge_set]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeSet {
    /// Unique among charge sets; never `kernel`.
    pub name: String,
    /// A defined charge set, or `None` for a top-level set.
    pub parent: Option<String>,
    /// Limit on the set and its descendants together.
    pub limit_bytes: Option<u64>,
    /// Per-kind sub-limits, in [`KINDS`] order.
    pub kind_limits: Vec<(String, u64)>,
    /// Its `high` bound (cgroup v2's `memory.high`): above it, the keeper of a domain in the
    /// subtree is asked to reclaim (`FAULT_OVER_HIGH`) instead of anything being denied.
    pub high_bytes: Option<u64>,
    /// Line of its `[[charge_set]]` header.
    pub line: usize,
    /// Lines of its keys.
    pub lines: KeyLines,
}

/// A `[[domain]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Unique among domains.
    pub name: String,
    /// A `user/src/bin/*.rs` stem.
    pub program: String,
    /// A defined charge set.
    pub charge_set: String,
    /// Capabilities it starts with, index 0 upward.
    pub caps: Vec<Cap>,
    /// Program arguments (`args = { pages = 64 }`), in config order.
    pub args: Vec<(String, u64)>,
    /// The endpoint its faults go to (`keeper = "faults"`): the domain receiving there is its
    /// keeper.
    pub keeper: Option<String>,
    /// Line of its `[[domain]]` header.
    pub line: usize,
    /// Lines of its keys.
    pub lines: KeyLines,
}

/// The type of object a boot capability names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapType {
    /// A charge set (`set:NAME`).
    Set,
    /// A domain (`dom:NAME`).
    Domain,
    /// An endpoint (`ep:NAME`).
    Endpoint,
}

impl CapType {
    /// The prefixes of capability strings, in `CapType` order.
    pub const PREFIXES: [&'static str; 3] = ["set", "dom", "ep"];

    /// The prefix this type is written with.
    pub fn prefix(self) -> &'static str {
        match self {
            CapType::Set => "set",
            CapType::Domain => "dom",
            CapType::Endpoint => "ep",
        }
    }

    /// Every right a capability of this type can hold.
    pub fn all_rights(self) -> abi::Rights {
        match self {
            CapType::Set => abi::Rights::SET,
            CapType::Domain => abi::Rights::DOMAIN,
            CapType::Endpoint => abi::Rights::ENDPOINT,
        }
    }

    /// "a charge-set", "a domain", "an endpoint", for messages.
    pub fn article_name(self) -> &'static str {
        match self {
            CapType::Set => "a charge-set",
            CapType::Domain => "a domain",
            CapType::Endpoint => "an endpoint",
        }
    }

    /// The type a prefix names.
    pub fn from_prefix(prefix: &str) -> Option<Self> {
        match prefix {
            "set" => Some(CapType::Set),
            "dom" => Some(CapType::Domain),
            "ep" => Some(CapType::Endpoint),
            _ => None,
        }
    }
}

/// A capability a domain starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cap {
    /// What kind of object it names.
    pub cap_type: CapType,
    /// The name of the object.
    pub target: String,
    /// Its rights (`ep:mailbox:send+grant`), if not every right of its type.
    pub rights: Option<abi::Rights>,
    /// Line it is written on.
    pub line: usize,
}

/// An `[[endpoint]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Unique among endpoints.
    pub name: String,
    /// Line of its `[[endpoint]]` header.
    pub line: usize,
    /// Lines of its keys.
    pub lines: KeyLines,
}

/// What an `[[expect]]` looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A charge set (defined, or `kernel`).
    ChargeSet(String),
    /// A domain.
    Domain(String),
}

/// An expected value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Exactly these bytes (or this integer); negative only for a difference.
    Integer(i64),
    /// Exactly this string.
    Text(String),
    /// Exactly this boolean.
    Boolean(bool),
}

/// How an `[[expect]]` compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `equals = …` or `pages = N` (as `N × 4096` bytes).
    Equals(Expected),
    /// `at_most = N`.
    AtMost(i64),
    /// `at_least = N`.
    AtLeast(i64),
}

/// An `[[expect]]`: an exact check `tally test` makes on a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// Applies only when each listed policy key has one of the listed names.
    pub when: Vec<(String, Vec<String>)>,
    /// The snapshot label.
    pub snapshot: String,
    /// The charge set or domain.
    pub subject: Subject,
    /// Dotted path inside the charge-set or domain object. For `current`, `peak`, `denied` and
    /// `subtree`, the kind may be `total`: the sum over the kinds (for `peak`, the sum of the
    /// per-kind peaks, an upper bound on the peak of the total), unless the report has its own.
    pub field: String,
    /// Compare the difference: the field at `snapshot` minus the field at this snapshot.
    pub minus_snapshot: Option<String>,
    /// Compare the difference: the field in this run minus the field in the run of the same
    /// config with these policies instead (others as in this run).
    pub minus_policy: Vec<(String, String)>,
    /// The comparison.
    pub check: Check,
    /// Line of its `[[expect]]` header.
    pub line: usize,
    /// Lines of its keys.
    pub lines: KeyLines,
}

impl Expect {
    /// The policies of the run this expectation subtracts, for a run under `policy`; `None`
    /// when it does not compare runs.
    pub fn reference_policy(&self, policy: &[(String, String)]) -> Option<Vec<(String, String)>> {
        if self.minus_policy.is_empty() {
            return None;
        }
        let mut reference = policy.to_vec();
        for (key, name) in &self.minus_policy {
            if let Some(slot) = reference.iter_mut().find(|(k, _)| k == key) {
                slot.1 = name.clone();
            }
        }
        Some(reference)
    }

    /// Whether this expectation applies under `policy` (key, name pairs; a run's
    /// [`Config::conditions`] also name its preset).
    pub fn applies(&self, policy: &[(String, String)]) -> bool {
        when_applies(&self.when, policy)
    }
}

/// Policy overrides from the command line (`"cow=holder msgbuf=receiver"`), validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyOverrides(pub Vec<(String, String)>);

impl PolicyOverrides {
    /// The key that selects the IPC transfer mode on the command line (`ipc.transfer` in a
    /// config file); not a policy, but set the same way.
    pub const TRANSFER: &'static str = "transfer";
    /// The key that names a preset (`preset=linux-memcg`): it expands first, whatever its
    /// place on the command line, and the other pairs override it.
    pub const PRESET: &'static str = registry::PRESET;

    /// Parses `key=name` pairs separated by spaces or commas (`cow=holder,msgbuf=receiver`;
    /// spaces around `=` are allowed: `cow = holder`); every key and name is checked against
    /// the registry (`transfer` against the transfer modes, `preset` against the presets),
    /// errors naming `--policy` as their source.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_all([text])
    }

    /// [`parse`](Self::parse) over several `--policy` arguments, as if joined by spaces.
    pub fn parse_all<S: AsRef<str>>(
        texts: impl IntoIterator<Item = S>,
    ) -> Result<Self, ConfigError> {
        let joined: Vec<String> = texts.into_iter().map(|t| t.as_ref().to_string()).collect();
        let text = joined.join(" ");
        let mut diagnostics = Diagnostics::new("--policy", &text);
        let mut pairs: Vec<(String, String)> = Vec::new();
        for item in normalise_pairs(&text) {
            let Some((key, name)) = item.split_once('=') else {
                diagnostics.at_line(
                    None,
                    "",
                    format!(
                        "`{item}` is not of the form key=name; valid keys: {}, {}, {}",
                        choices(registry::keys()),
                        Self::TRANSFER,
                        Self::PRESET
                    ),
                );
                continue;
            };
            let checked = if key == Self::TRANSFER {
                if TRANSFERS.contains(&name) {
                    Ok(())
                } else {
                    Err(format!(
                        "unknown transfer mode `{name}`{}; valid values: {}",
                        did_you_mean(name, &TRANSFERS),
                        choices(&TRANSFERS)
                    ))
                }
            } else if key == Self::PRESET {
                check_preset_name(name)
            } else {
                check_policy_name(key, name)
            };
            match checked {
                Ok(()) => {
                    if pairs.iter().any(|(k, _)| k == key) {
                        diagnostics.at_line(None, key, "is given more than once");
                    }
                    pairs.push((key.to_string(), name.to_string()));
                }
                Err(message) => diagnostics.at_line(None, key, message),
            }
        }
        diagnostics.finish().map(|()| PolicyOverrides(pairs))
    }

    /// The transfer mode given, if any.
    pub fn transfer(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == Self::TRANSFER)
            .map(|(_, name)| name.as_str())
    }

    /// The preset given, if any.
    pub fn preset(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == Self::PRESET)
            .map(|(_, name)| name.as_str())
    }

    /// The policy pairs given, without `transfer` and `preset`.
    pub fn policies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .filter(|(key, _)| key != Self::TRANSFER && key != Self::PRESET)
            .map(|(key, name)| (key.as_str(), name.as_str()))
    }

    /// The policy pairs with the preset expanded: the preset's pairs first (in registry
    /// order), then the pairs given, which override them.
    pub fn expanded_policies(&self) -> Vec<(&str, &str)> {
        let mut pairs: Vec<(&str, &str)> = self
            .preset()
            .and_then(registry::preset)
            .map(|preset| preset.policy.to_vec())
            .unwrap_or_default();
        pairs.extend(self.policies());
        pairs
    }
}

/// Splits `--policy` text into `key=name` items: separators are spaces, tabs and commas, and
/// spaces around `=` are dropped first, so `cow = holder` is one item.
fn normalise_pairs(text: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    let mut pending_equals = false;
    for word in text.split([' ', ',', '\t']).filter(|s| !s.is_empty()) {
        match items.last_mut() {
            Some(last) if pending_equals || last.ends_with('=') || word.starts_with('=') => {
                last.push_str(word);
            }
            _ => items.push(word.to_string()),
        }
        pending_equals = word == "=";
    }
    items
}

/// Checks a policy key and name against the registry; the error message lists the valid ones.
pub fn check_policy_name(key: &str, name: &str) -> Result<(), String> {
    match registry::valid_names(key) {
        None => Err(format!(
            "unknown policy key `{key}`{}; valid keys: {}",
            did_you_mean(key, registry::keys()),
            choices(registry::keys())
        )),
        Some(names) if !names.contains(&name) => Err(format!(
            "unknown `{key}` policy `{name}`{}; valid values: {}",
            did_you_mean(name, names),
            choices(names)
        )),
        Some(_) => Ok(()),
    }
}

/// Checks a preset name; the error message lists the presets.
pub fn check_preset_name(name: &str) -> Result<(), String> {
    let names = registry::preset_names();
    if names.contains(&name) {
        Ok(())
    } else {
        // A misspelling, or the system's short name (`linux` for `linux-memcg`).
        let mut hint = did_you_mean(name, names);
        if hint.is_empty() && !name.is_empty() {
            if let [only] = names
                .iter()
                .filter(|n| n.starts_with(name))
                .collect::<Vec<_>>()[..]
            {
                hint = format!(" (did you mean `{only}`?)");
            }
        }
        Err(format!(
            "unknown preset `{name}`{hint}; valid values: {}",
            choices(names)
        ))
    }
}

/// Whether `name` matches `[a-z0-9_-]{1,23}` and is not `-` alone (the kernel's own rule).
pub fn is_valid_name(name: &str) -> bool {
    kcore::bootcfg::is_valid_name(name)
}

impl Config {
    /// Reads and validates a config file, then applies command-line policy overrides.
    pub fn load(path: &Path, overrides: &PolicyOverrides) -> Result<Config, ConfigError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
            diagnostics: vec![Diagnostic {
                source: source_name.clone(),
                line: None,
                key: None,
                message: format!("cannot read the config: {error}"),
                excerpt: None,
            }],
        })?;
        let programs = programs::programs_for(path);
        Self::from_text_with_programs(
            path,
            &text,
            &programs,
            program_dir(path).as_deref(),
            overrides,
        )
    }

    /// Validates config `text` as if read from `path`, with `programs` as the valid programs
    /// (`Err` = why the program list is unknown).
    pub fn from_text(
        path: &Path,
        text: &str,
        programs: &Result<Vec<String>, String>,
        overrides: &PolicyOverrides,
    ) -> Result<Config, ConfigError> {
        Self::from_text_with_programs(path, text, programs, None, overrides)
    }

    /// [`from_text`](Self::from_text), and when `program_dir` holds the built programs, the
    /// check that each loads and that every set can start its boot domains.
    pub fn from_text_with_programs(
        path: &Path,
        text: &str,
        programs: &Result<Vec<String>, String>,
        program_dir: Option<&Path>,
        overrides: &PolicyOverrides,
    ) -> Result<Config, ConfigError> {
        let mut diagnostics = Diagnostics::new(path.display().to_string(), text);
        let parsed = parse::parse(path, text, &mut diagnostics);
        let Some(mut config) = parsed else {
            return Err(diagnostics.finish().expect_err("parse failed silently"));
        };
        references::check(&config, programs, &mut diagnostics);
        if diagnostics.is_empty() {
            config.apply_overrides(overrides);
            if let Err(error) = crate::bootargs::encode(&config) {
                diagnostics.at_line(error.line, error.key, error.message);
            } else if let (Some(dir), None) = (program_dir, &config.run.raw_bootargs) {
                startcost::check(&config, dir, &mut diagnostics);
                declared::check(&config, dir, &mut diagnostics);
            }
        }
        diagnostics.finish().map(|()| config)
    }

    /// Applies command-line overrides (`--policy`): a preset expands first and replaces every
    /// policy key and the transfer mode, the file's own keys included (as if its names had
    /// been given as pairs); then the other pairs, which override it.
    pub fn apply_overrides(&mut self, overrides: &PolicyOverrides) {
        if let Some(preset) = overrides.preset() {
            self.explicit.clear();
            self.apply_preset(preset);
        }
        self.apply_pairs(overrides);
    }

    /// Applies one combination of varied keys (`experiment.vary`): a varied preset replaces
    /// the config's preset, so it changes every key nothing set explicitly (the file's own
    /// keys, `--policy` pairs); then the varied keys, which override it.
    pub fn apply_varied(&mut self, combination: &PolicyOverrides) {
        if let Some(preset) = combination.preset() {
            self.apply_preset(preset);
        }
        self.apply_pairs(combination);
    }

    /// The policy pairs and transfer mode of `overrides`, each then explicit.
    fn apply_pairs(&mut self, overrides: &PolicyOverrides) {
        for (key, name) in overrides.policies() {
            if let Some(slot) = self.policy.iter_mut().find(|(k, _)| k == key) {
                slot.1 = name.to_string();
                self.mark_explicit(key);
            }
        }
        if let Some(transfer) = overrides.transfer() {
            self.transfer = transfer.to_string();
            self.mark_explicit(PolicyOverrides::TRANSFER);
        }
    }

    /// Makes `name` the preset in force: its names replace those of every policy key (and its
    /// mode the transfer mode) not set explicitly. An unknown name changes nothing (names are
    /// validated before they get here).
    pub fn apply_preset(&mut self, name: &str) {
        let Some(preset) = registry::preset(name) else {
            return;
        };
        self.preset = Some(preset.name.to_string());
        for (key, value) in preset.policy {
            let explicit = self.explicit.iter().any(|k| k == key);
            if let Some(slot) = self.policy.iter_mut().find(|(k, _)| k == key) {
                if !explicit {
                    slot.1 = value.to_string();
                }
            }
        }
        if !self.explicit.iter().any(|k| k == PolicyOverrides::TRANSFER) {
            self.transfer = preset.transfer.to_string();
        }
    }

    fn mark_explicit(&mut self, key: &str) {
        if !self.explicit.iter().any(|k| k == key) {
            self.explicit.push(key.to_string());
        }
    }

    /// What an `[[expect]]`'s `when` is matched against: every policy pair, and
    /// `("preset", NAME)` when a preset is in force.
    pub fn conditions(&self) -> Vec<(String, String)> {
        let mut conditions = self.policy.clone();
        if let Some(preset) = &self.preset {
            conditions.push((registry::PRESET.to_string(), preset.clone()));
        }
        conditions
    }

    /// `preset=linux-memcg (cow=writer … transfer=two-stage)`, or without a preset
    /// `cow=writer … transfer=direct`: every policy and the transfer mode in force.
    pub fn policy_line(&self) -> String {
        let mut parts: Vec<String> = self
            .policy
            .iter()
            .map(|(key, name)| format!("{key}={name}"))
            .collect();
        parts.push(format!("{}={}", PolicyOverrides::TRANSFER, self.transfer));
        match &self.preset {
            Some(preset) => format!("{}={preset} ({})", registry::PRESET, parts.join(" ")),
            None => parts.join(" "),
        }
    }

    /// The policies a run of this config keeps whatever it varies, as `key=name` words: every
    /// key not varied, or when the preset is varied only the keys set explicitly; then
    /// `transfer=MODE`, or `transfer per preset` when a varied preset decides it.
    pub fn fixed_policies(&self) -> Vec<String> {
        let preset_varied = self.vary.iter().any(|k| k == registry::PRESET);
        let fixed = |key: &str| {
            !self.vary.iter().any(|k| k == key)
                && (!preset_varied || self.explicit.iter().any(|k| k == key))
        };
        let mut words: Vec<String> = Vec::new();
        if let (Some(preset), false) = (&self.preset, preset_varied) {
            words.push(format!("{}={preset}", registry::PRESET));
        }
        words.extend(
            self.policy
                .iter()
                .filter(|(key, _)| fixed(key))
                .map(|(key, name)| format!("{key}={name}")),
        );
        words.push(if fixed(PolicyOverrides::TRANSFER) {
            format!("{}={}", PolicyOverrides::TRANSFER, self.transfer)
        } else {
            format!("{} per preset", PolicyOverrides::TRANSFER)
        });
        words
    }

    /// The policy name in force for `key`.
    pub fn policy_name(&self, key: &str) -> Option<&str> {
        self.policy
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, name)| name.as_str())
    }

    /// The charge sets, every parent before its children, otherwise in config order.
    pub fn charge_sets_parents_first(&self) -> Vec<&ChargeSet> {
        references::parents_first(&self.charge_sets)
    }
}
