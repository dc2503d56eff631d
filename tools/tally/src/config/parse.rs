//! TOML text to a [`Config`]: syntax, keys, types and values of each table on its own.
//! References between tables are checked afterwards, in `references`.
//!
//! Every diagnostic carries the line of the offending key or value; unknown keys list the valid
//! keys of their table.

use std::ops::Range;
use std::path::Path;

use toml::de::{DeString, DeTable, DeValue};
use toml::Spanned;

use super::diagnostic::{choices, did_you_mean, Diagnostics};
use super::*;
use crate::size;

const TOP_KEYS: [&str; 11] = [
    "name",
    "description",
    "policy",
    "ipc",
    "run",
    "experiment",
    "charge_set",
    "domain",
    "endpoint",
    "expect",
    "expect_console",
];
const IPC_KEYS: [&str; 1] = ["transfer"];
const RUN_KEYS: [&str; 9] = [
    "log",
    "trace",
    "recount",
    "tick_hz",
    "mem",
    "timeout_seconds",
    "expect_failure",
    "append_bootargs",
    "raw_bootargs",
];
const EXPERIMENT_KEYS: [&str; 2] = ["vary", "values"];
const CHARGE_SET_KEYS: [&str; 9] = [
    "name",
    "parent",
    "limit",
    "high",
    "anon",
    "pagetables",
    "kernel",
    "msgbuf",
    "cow",
];
const DOMAIN_KEYS: [&str; 6] = ["name", "program", "charge_set", "caps", "args", "keeper"];
const ENDPOINT_KEYS: [&str; 1] = ["name"];
const EXPECT_CONSOLE_KEYS: [&str; 2] = ["when", "contains"];
const EXPECT_KEYS: [&str; 11] = [
    "when",
    "snapshot",
    "minus_snapshot",
    "minus_policy",
    "set",
    "domain",
    "field",
    "equals",
    "pages",
    "at_most",
    "at_least",
];

type Value<'i> = Spanned<DeValue<'i>>;

/// Parses `text`; `None` when it is not TOML at all (the diagnostic says where).
pub(super) fn parse(path: &Path, text: &str, diagnostics: &mut Diagnostics<'_>) -> Option<Config> {
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(error) => {
            let message = error.message().trim_end().to_string();
            match error.span() {
                Some(span) => diagnostics.at(span, "", format!("not valid TOML: {message}")),
                None => diagnostics.at_line(None, "", format!("not valid TOML: {message}")),
            }
            return None;
        }
    };
    let root = root.get_ref();
    let mut reader = Reader { diagnostics };
    reader.known_keys(root, "", "the top level", &TOP_KEYS);

    let stem = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match reader.string(root, "", "name") {
        Some((name, span)) => {
            reader.check_name(&name, span, "name");
            name
        }
        None => {
            if !is_valid_name(&stem) {
                reader.diagnostics.at_line(
                    Some(1),
                    "name",
                    format!(
                        "the file stem `{stem}` is not a valid config name ([a-z0-9_-]{{1,{NAME_MAX_BYTES}}}); rename the file or set `name`"
                    ),
                );
            }
            stem
        }
    };
    let description = reader.string(root, "", "description").map(|(text, _)| text);

    let PolicyTable {
        policy,
        preset,
        mut explicit,
    } = reader.policy(root.iter().find(|(k, _)| k.get_ref() == "policy"));
    let transfer = reader
        .section(root, "ipc", &IPC_KEYS)
        .and_then(|ipc| reader.choice(ipc, "ipc.", "transfer", &TRANSFERS));
    if transfer.is_some() {
        explicit.push(PolicyOverrides::TRANSFER.to_string());
    }
    let transfer = transfer.unwrap_or_else(|| TRANSFERS[0].to_string());
    let run = reader.run(root);
    let (vary, vary_values) = reader
        .section(root, "experiment", &EXPERIMENT_KEYS)
        .map(|experiment| {
            let vary = reader.vary(experiment);
            let values = reader.vary_values(experiment, &vary);
            (vary, values)
        })
        .unwrap_or_default();

    let charge_sets = reader
        .array_of_tables(root, "charge_set", &CHARGE_SET_KEYS)
        .into_iter()
        .filter_map(|(table, span)| reader.charge_set(table, span))
        .collect();
    let domains = reader
        .array_of_tables(root, "domain", &DOMAIN_KEYS)
        .into_iter()
        .filter_map(|(table, span)| reader.domain(table, span))
        .collect();
    let endpoints = reader
        .array_of_tables(root, "endpoint", &ENDPOINT_KEYS)
        .into_iter()
        .filter_map(|(table, span)| {
            let line = reader.diagnostics.line_of(span.start);
            let (name, name_span) = reader.required_string(table, span, "endpoint.", "name")?;
            reader.check_name(&name, name_span, "endpoint.name");
            Some(Endpoint {
                name,
                line,
                lines: key_lines(table, line, reader.diagnostics),
            })
        })
        .collect();
    let expects = reader
        .array_of_tables(root, "expect", &EXPECT_KEYS)
        .into_iter()
        .filter_map(|(table, span)| reader.expect(table, span))
        .collect();
    let console_expects = reader
        .array_of_tables(root, "expect_console", &EXPECT_CONSOLE_KEYS)
        .into_iter()
        .filter_map(|(table, span)| {
            let line = reader.diagnostics.line_of(span.start);
            let when = reader.policy_table(table, "expect_console", "when", true);
            let (contains, _) =
                reader.required_string(table, span, "expect_console.", "contains")?;
            Some(ConsoleExpect {
                when,
                contains,
                line,
            })
        })
        .collect();

    let mut config = Config {
        path: path.to_path_buf(),
        name,
        description,
        policy,
        transfer,
        preset: None,
        explicit,
        run,
        vary,
        vary_values,
        charge_sets,
        domains,
        endpoints,
        expects,
        console_expects,
    };
    // The preset fills in every key the file does not set itself.
    if let Some(preset) = preset {
        config.apply_preset(&preset);
    }
    Some(config)
}

/// What `[policy]` says: a name per key (defaults, then the keys written), the preset, and
/// which keys were written.
struct PolicyTable {
    policy: Vec<(String, String)>,
    preset: Option<String>,
    explicit: Vec<String>,
}

fn get<'t, 'i>(table: &'t DeTable<'i>, key: &str) -> Option<&'t Value<'i>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(_, value)| value)
}

fn key_lines(table: &DeTable<'_>, header: usize, diagnostics: &Diagnostics<'_>) -> KeyLines {
    KeyLines {
        header,
        keys: table
            .iter()
            .map(|(key, _)| {
                (
                    key.get_ref().to_string(),
                    diagnostics.line_of(key.span().start),
                )
            })
            .collect(),
    }
}

fn type_name(value: &DeValue<'_>) -> &'static str {
    value.type_str()
}

struct Reader<'d, 's> {
    diagnostics: &'d mut Diagnostics<'s>,
}

impl Reader<'_, '_> {
    /// Flags every key of `table` not in `allowed`, listing the valid keys.
    fn known_keys(&mut self, table: &DeTable<'_>, prefix: &str, place: &str, allowed: &[&str]) {
        for (key, _) in table.iter() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                self.diagnostics.at(
                    key.span(),
                    &format!("{prefix}{}", key.get_ref()),
                    format!(
                        "unknown key in {place}{}; valid keys: {}",
                        did_you_mean(key.get_ref(), allowed),
                        choices(allowed)
                    ),
                );
            }
        }
    }

    fn check_name(&mut self, name: &str, span: Range<usize>, key: &str) {
        if !is_valid_name(name) {
            self.diagnostics.at(
                span,
                key,
                format!(
                    "invalid name `{name}`: names are 1 to {NAME_MAX_BYTES} characters from a-z, 0-9, `_` and `-` (and not `-` alone)"
                ),
            );
        }
    }

    /// A `[name]` table, its keys checked.
    fn section<'t, 'i>(
        &mut self,
        root: &'t DeTable<'i>,
        name: &str,
        allowed: &[&str],
    ) -> Option<&'t DeTable<'i>> {
        let value = get(root, name)?;
        match value.get_ref().as_table() {
            Some(table) => {
                self.known_keys(table, &format!("{name}."), &format!("[{name}]"), allowed);
                Some(table)
            }
            None => {
                self.diagnostics.at(
                    value.span(),
                    name,
                    format!(
                        "expected a table `[{name}]`, found a {}",
                        type_name(value.get_ref())
                    ),
                );
                None
            }
        }
    }

    /// The elements of a `[[name]]` array of tables, each with its header span and keys checked.
    fn array_of_tables<'t, 'i>(
        &mut self,
        root: &'t DeTable<'i>,
        name: &str,
        allowed: &[&str],
    ) -> Vec<(&'t DeTable<'i>, Range<usize>)> {
        let Some(value) = get(root, name) else {
            return Vec::new();
        };
        let Some(array) = value.get_ref().as_array() else {
            self.diagnostics.at(
                value.span(),
                name,
                format!(
                    "expected an array of tables `[[{name}]]`, found a {}",
                    type_name(value.get_ref())
                ),
            );
            return Vec::new();
        };
        let mut tables = Vec::new();
        for element in array.iter() {
            match element.get_ref().as_table() {
                Some(table) => {
                    self.known_keys(table, &format!("{name}."), &format!("[[{name}]]"), allowed);
                    tables.push((table, element.span()));
                }
                None => self.diagnostics.at(
                    element.span(),
                    name,
                    format!(
                        "expected a table in `[[{name}]]`, found a {}",
                        type_name(element.get_ref())
                    ),
                ),
            }
        }
        tables
    }

    fn string(
        &mut self,
        table: &DeTable<'_>,
        prefix: &str,
        key: &str,
    ) -> Option<(String, Range<usize>)> {
        let value = get(table, key)?;
        match value.get_ref().as_str() {
            Some(text) => Some((text.to_string(), value.span())),
            None => {
                self.diagnostics.at(
                    value.span(),
                    &format!("{prefix}{key}"),
                    format!("expected a string, found a {}", type_name(value.get_ref())),
                );
                None
            }
        }
    }

    fn required_string(
        &mut self,
        table: &DeTable<'_>,
        table_span: Range<usize>,
        prefix: &str,
        key: &str,
    ) -> Option<(String, Range<usize>)> {
        if get(table, key).is_none() {
            self.diagnostics.at(
                table_span,
                &format!("{prefix}{key}"),
                "is required but missing",
            );
            return None;
        }
        self.string(table, prefix, key)
    }

    /// A string that must be one of `valid`.
    fn choice(
        &mut self,
        table: &DeTable<'_>,
        prefix: &str,
        key: &str,
        valid: &[&str],
    ) -> Option<String> {
        let (text, span) = self.string(table, prefix, key)?;
        if valid.contains(&text.as_str()) {
            Some(text)
        } else {
            self.diagnostics.at(
                span,
                &format!("{prefix}{key}"),
                format!(
                    "unknown value `{text}`{}; valid values: {}",
                    did_you_mean(&text, valid),
                    choices(valid)
                ),
            );
            None
        }
    }

    fn boolean(&mut self, table: &DeTable<'_>, prefix: &str, key: &str) -> Option<bool> {
        let value = get(table, key)?;
        let found = value.get_ref().as_bool();
        if found.is_none() {
            self.diagnostics.at(
                value.span(),
                &format!("{prefix}{key}"),
                format!(
                    "expected true or false, found a {}",
                    type_name(value.get_ref())
                ),
            );
        }
        found
    }

    /// A non-negative integer.
    fn unsigned(&mut self, value: &Value<'_>, key: &str) -> Option<u64> {
        let parsed = value
            .get_ref()
            .as_integer()
            .and_then(|integer| u64::from_str_radix(integer.as_str(), integer.radix()).ok());
        if parsed.is_none() {
            self.diagnostics.at(
                value.span(),
                key,
                format!(
                    "expected a non-negative integer, found {}",
                    describe(value.get_ref())
                ),
            );
        }
        parsed
    }

    /// An expected integer: non-negative, unless `signed` (a difference may be negative).
    fn integer(&mut self, value: &Value<'_>, key: &str, signed: bool) -> Option<i64> {
        let negative = value
            .get_ref()
            .as_integer()
            .is_some_and(|integer| integer.as_str().starts_with('-'));
        if !signed && negative {
            self.diagnostics.at(
                value.span(),
                key,
                format!(
                    "{} is negative: only a difference (`minus_snapshot` or `minus_policy`) can be",
                    describe(value.get_ref())
                ),
            );
            return None;
        }
        if !signed {
            return self.unsigned(value, key).and_then(|n| {
                let fits = i64::try_from(n).ok();
                if fits.is_none() {
                    self.diagnostics.at(value.span(), key, "is too large");
                }
                fits
            });
        }
        let parsed = value
            .get_ref()
            .as_integer()
            .and_then(|integer| i64::from_str_radix(integer.as_str(), integer.radix()).ok());
        if parsed.is_none() {
            self.diagnostics.at(
                value.span(),
                key,
                format!("expected an integer, found {}", describe(value.get_ref())),
            );
        }
        parsed
    }

    /// A size: an integer (bytes) or a string in human units.
    fn size(&mut self, table: &DeTable<'_>, prefix: &str, key: &str) -> Option<u64> {
        let value = get(table, key)?;
        let path = format!("{prefix}{key}");
        if value.get_ref().is_integer() {
            return self.unsigned(value, &path);
        }
        let Some(text) = value.get_ref().as_str() else {
            self.diagnostics.at(
                value.span(),
                &path,
                format!(
                    "expected a size, found a {}; accepted forms: {}",
                    type_name(value.get_ref()),
                    size::ACCEPTED_FORMS
                ),
            );
            return None;
        };
        match size::parse_size(text) {
            Ok(bytes) => Some(bytes),
            Err(error) => {
                self.diagnostics.at(value.span(), &path, error.to_string());
                None
            }
        }
    }

    /// A charge-set limit or sub-limit: a [`size`](Self::size) that is a whole number of 4 KiB
    /// frames, since every charge is (so `5000` would silently act as 4096).
    fn limit_size(&mut self, table: &DeTable<'_>, key: &str) -> Option<u64> {
        let bytes = self.size(table, "charge_set.", key)?;
        if bytes % FRAME_BYTES != 0 {
            if let Some(value) = get(table, key) {
                self.diagnostics.at(
                    value.span(),
                    &format!("charge_set.{key}"),
                    format!(
                        "{bytes} bytes is not a whole number of 4 KiB frames (charges are whole frames); use {} or {}",
                        bytes / FRAME_BYTES * FRAME_BYTES,
                        bytes.div_ceil(FRAME_BYTES) * FRAME_BYTES
                    ),
                );
            }
            return None;
        }
        Some(bytes)
    }

    fn string_array(
        &mut self,
        table: &DeTable<'_>,
        prefix: &str,
        key: &str,
    ) -> Vec<(String, Range<usize>)> {
        let Some(value) = get(table, key) else {
            return Vec::new();
        };
        let path = format!("{prefix}{key}");
        let Some(array) = value.get_ref().as_array() else {
            self.diagnostics.at(
                value.span(),
                &path,
                format!(
                    "expected an array of strings, found a {}",
                    type_name(value.get_ref())
                ),
            );
            return Vec::new();
        };
        array
            .iter()
            .filter_map(|item| match item.get_ref().as_str() {
                Some(text) => Some((text.to_string(), item.span())),
                None => {
                    self.diagnostics.at(
                        item.span(),
                        &path,
                        format!(
                            "expected a string in the array, found a {}",
                            type_name(item.get_ref())
                        ),
                    );
                    None
                }
            })
            .collect()
    }

    fn policy(&mut self, entry: Option<(&Spanned<DeString<'_>>, &Value<'_>)>) -> PolicyTable {
        let policy: Vec<(String, String)> = registry::keys()
            .iter()
            .map(|key| {
                let default = registry::default_name(key).unwrap_or_default();
                (key.to_string(), default.to_string())
            })
            .collect();
        let mut read = PolicyTable {
            policy,
            preset: None,
            explicit: Vec::new(),
        };
        let Some((_, value)) = entry else {
            return read;
        };
        let Some(table) = value.get_ref().as_table() else {
            self.diagnostics.at(
                value.span(),
                "policy",
                format!(
                    "expected a table `[policy]`, found a {}",
                    type_name(value.get_ref())
                ),
            );
            return read;
        };
        let policy = &mut read.policy;
        for (key, value) in table.iter() {
            let path = format!("policy.{}", key.get_ref());
            if key.get_ref() == registry::PRESET {
                match value.get_ref().as_str() {
                    Some(name) => match check_preset_name(name) {
                        Ok(()) => read.preset = Some(name.to_string()),
                        Err(message) => self.diagnostics.at(value.span(), &path, message),
                    },
                    None => self.diagnostics.at(
                        value.span(),
                        &path,
                        format!(
                            "expected a preset name (string), found a {}; valid values: {}",
                            type_name(value.get_ref()),
                            choices(registry::preset_names())
                        ),
                    ),
                }
                continue;
            }
            let Some(slot) = policy.iter_mut().find(|(k, _)| k == key.get_ref()) else {
                let mut valid: Vec<&str> = registry::keys().to_vec();
                valid.push(registry::PRESET);
                self.diagnostics.at(
                    key.span(),
                    &path,
                    format!(
                        "unknown policy key in [policy]{}; valid keys: {}",
                        did_you_mean(key.get_ref(), &valid),
                        choices(&valid)
                    ),
                );
                continue;
            };
            let Some(name) = value.get_ref().as_str() else {
                self.diagnostics.at(
                    value.span(),
                    &path,
                    format!(
                        "expected a policy name (string), found a {}; valid values: {}",
                        type_name(value.get_ref()),
                        choices(registry::valid_names(&slot.0).unwrap_or_default())
                    ),
                );
                continue;
            };
            match check_policy_name(&slot.0, name) {
                Ok(()) => {
                    slot.1 = name.to_string();
                    read.explicit.push(slot.0.clone());
                }
                Err(message) => self.diagnostics.at(value.span(), &path, message),
            }
        }
        read
    }

    fn run(&mut self, root: &DeTable<'_>) -> RunSettings {
        let mut run = RunSettings {
            log: LOG_LEVELS[2].to_string(),
            trace: false,
            mem_bytes: None,
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            expect_failure: None,
            append_bootargs: None,
            raw_bootargs: None,
            recount: false,
            tick_hz: kcore::bootcfg::TICK_HZ,
        };
        let Some(table) = self.section(root, "run", &RUN_KEYS) else {
            return run;
        };
        if let Some(log) = self.choice(table, "run.", "log", &LOG_LEVELS) {
            run.log = log;
        }
        if let Some(trace) = self.boolean(table, "run.", "trace") {
            run.trace = trace;
        }
        if let Some(recount) = self.boolean(table, "run.", "recount") {
            run.recount = recount;
        }
        if let Some(mem) = self.size(table, "run.", "mem") {
            if size::qemu_mem(mem).is_some() {
                run.mem_bytes = Some(mem);
            } else {
                let span = get(table, "mem").map(|v| v.span()).unwrap_or_default();
                self.diagnostics.at(span, "run.mem", size::MEM_RULE);
            }
        }
        if let Some(value) = get(table, "tick_hz") {
            match self.unsigned(value, "run.tick_hz") {
                Some(hz) if kcore::bootcfg::TICK_HZ_RANGE.contains(&hz) => run.tick_hz = hz as u32,
                Some(_) => self.diagnostics.at(
                    value.span(),
                    "run.tick_hz",
                    "must be 10 to 100000 (ticks a second; the default is 100)",
                ),
                None => {}
            }
        }
        if let Some(value) = get(table, "timeout_seconds") {
            match self.unsigned(value, "run.timeout_seconds") {
                Some(0) => {
                    self.diagnostics
                        .at(value.span(), "run.timeout_seconds", "must be at least 1")
                }
                Some(seconds) => run.timeout_seconds = seconds,
                None => {}
            }
        }
        run.expect_failure = self.string(table, "run.", "expect_failure").map(|(t, _)| t);
        run.append_bootargs = self
            .string(table, "run.", "append_bootargs")
            .map(|(t, _)| t);
        run.raw_bootargs = self.string(table, "run.", "raw_bootargs").map(|(t, _)| t);
        if let (Some(_), Some(value)) = (&run.raw_bootargs, get(table, "append_bootargs")) {
            self.diagnostics.at(
                value.span(),
                "run.append_bootargs",
                "cannot be combined with `run.raw_bootargs`, which replaces the boot arguments whole",
            );
        }
        run
    }

    fn vary(&mut self, experiment: &DeTable<'_>) -> Vec<String> {
        let mut vary: Vec<String> = Vec::new();
        let mut valid: Vec<&str> = registry::keys().to_vec();
        valid.push(registry::PRESET);
        for (key, span) in self.string_array(experiment, "experiment.", "vary") {
            if registry::valid_names(&key).is_none() && key != registry::PRESET {
                self.diagnostics.at(
                    span,
                    "experiment.vary",
                    format!(
                        "unknown policy key `{key}`{}; valid keys: {}",
                        did_you_mean(&key, &valid),
                        choices(&valid)
                    ),
                );
            } else if vary.contains(&key) {
                self.diagnostics
                    .at(span, "experiment.vary", format!("`{key}` is listed twice"));
            } else {
                vary.push(key);
            }
        }
        vary
    }

    /// `experiment.values`: the names to use for some varied keys instead of all of them.
    fn vary_values(
        &mut self,
        experiment: &DeTable<'_>,
        vary: &[String],
    ) -> Vec<(String, Vec<String>)> {
        let values = self.policy_table(experiment, "experiment", "values", true);
        let Some(table) = get(experiment, "values").and_then(|v| v.get_ref().as_table()) else {
            return values;
        };
        for (key, _) in table.iter() {
            let known =
                registry::valid_names(key.get_ref()).is_some() || key.get_ref() == registry::PRESET;
            if known && !vary.iter().any(|v| v == key.get_ref()) {
                self.diagnostics.at(
                    key.span(),
                    &format!("experiment.values.{}", key.get_ref()),
                    format!(
                        "names given for a key that is not varied; varied keys: {}",
                        choices(vary)
                    ),
                );
            }
        }
        values
    }

    fn charge_set(&mut self, table: &DeTable<'_>, span: Range<usize>) -> Option<ChargeSet> {
        let line = self.diagnostics.line_of(span.start);
        let name = self.required_string(table, span, "charge_set.", "name");
        if let Some((name, name_span)) = &name {
            self.check_name(name, name_span.clone(), "charge_set.name");
            if name == KERNEL_SET {
                self.diagnostics.at(
                    name_span.clone(),
                    "charge_set.name",
                    "`kernel` is the built-in kernel reserve set and cannot be defined",
                );
            }
        }
        let parent = self.string(table, "charge_set.", "parent");
        if let Some((parent, parent_span)) = &parent {
            self.check_name(parent, parent_span.clone(), "charge_set.parent");
        }
        let limit_bytes = self.limit_size(table, "limit");
        let kind_limits: Vec<(String, u64)> = KINDS
            .iter()
            .filter_map(|kind| {
                self.limit_size(table, kind)
                    .map(|bytes| (kind.to_string(), bytes))
            })
            .collect();
        if let Some(limit) = limit_bytes {
            for (kind, bytes) in &kind_limits {
                if *bytes > limit {
                    if let Some(value) = get(table, kind) {
                        self.diagnostics.at(
                            value.span(),
                            &format!("charge_set.{kind}"),
                            format!(
                                "the {kind} sub-limit ({}) is above the set's limit ({}), so it could never be reached; lower it or raise `limit`",
                                size::human(*bytes),
                                size::human(limit)
                            ),
                        );
                    }
                }
            }
        }
        let high_bytes = self.limit_size(table, "high");
        if let (Some(high), Some(limit)) = (high_bytes, limit_bytes) {
            if high >= limit {
                if let Some(value) = get(table, "high") {
                    self.diagnostics.at(
                        value.span(),
                        "charge_set.high",
                        format!(
                            "the high bound ({}) is not below the set's limit ({}), so the limit denies before any reclaim is asked; lower it or raise `limit`",
                            size::human(high),
                            size::human(limit)
                        ),
                    );
                }
            }
        }
        Some(ChargeSet {
            lines: key_lines(table, line, self.diagnostics),
            name: name?.0,
            parent: parent.map(|(parent, _)| parent),
            limit_bytes,
            kind_limits,
            high_bytes,
            line,
        })
    }

    fn domain(&mut self, table: &DeTable<'_>, span: Range<usize>) -> Option<Domain> {
        let line = self.diagnostics.line_of(span.start);
        let name = self.required_string(table, span.clone(), "domain.", "name");
        if let Some((name, name_span)) = &name {
            self.check_name(name, name_span.clone(), "domain.name");
        }
        let program = self.required_string(table, span.clone(), "domain.", "program");
        let charge_set = self.required_string(table, span, "domain.", "charge_set");
        let caps = self
            .string_array(table, "domain.", "caps")
            .into_iter()
            .filter_map(|(text, span)| self.cap(&text, span))
            .collect();
        let args = self.args(table);
        let keeper = self
            .string(table, "domain.", "keeper")
            .map(|(text, _)| text);
        Some(Domain {
            lines: key_lines(table, line, self.diagnostics),
            name: name?.0,
            program: program?.0,
            charge_set: charge_set?.0,
            caps,
            args,
            keeper,
            line,
        })
    }

    /// `domain.args`: a table of argument names to non-negative integers.
    fn args(&mut self, table: &DeTable<'_>) -> Vec<(String, u64)> {
        let Some(value) = get(table, "args") else {
            return Vec::new();
        };
        let Some(args) = value.get_ref().as_table() else {
            self.diagnostics.at(
                value.span(),
                "domain.args",
                format!(
                    "expected a table of program arguments such as {{ pages = 64 }}, found a {}",
                    type_name(value.get_ref())
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, value) in args.iter() {
            let path = format!("domain.args.{}", name.get_ref());
            self.check_name(name.get_ref(), name.span(), &path);
            if let Some(number) = self.unsigned(value, &path) {
                if number > kcore::bootcfg::MAX_ARG_VALUE {
                    self.diagnostics.at(
                        value.span(),
                        &path,
                        format!(
                            "is too large; a program argument is at most {}",
                            kcore::bootcfg::MAX_ARG_VALUE
                        ),
                    );
                } else {
                    out.push((name.get_ref().to_string(), number));
                }
            }
        }
        out
    }

    fn cap(&mut self, text: &str, span: Range<usize>) -> Option<Cap> {
        let line = self.diagnostics.line_of(span.start);
        let Some((prefix, target)) = text.split_once(':') else {
            self.diagnostics.at(
                span,
                "domain.caps",
                format!(
                    "capability `{text}` is not of the form TYPE:NAME; valid types: {}",
                    choices(&CapType::PREFIXES)
                ),
            );
            return None;
        };
        let Some(cap_type) = CapType::from_prefix(prefix) else {
            self.diagnostics.at(
                span,
                "domain.caps",
                format!(
                    "unknown capability type `{prefix}` in `{text}`{}; valid types: {}",
                    did_you_mean(prefix, &CapType::PREFIXES),
                    choices(&CapType::PREFIXES)
                ),
            );
            return None;
        };
        let (target, rights) = match target.split_once(':') {
            None => (target, None),
            Some((target, rights)) => {
                let all = cap_type.all_rights();
                let valid: Vec<&str> = all.names().collect();
                let parsed = abi::Rights::parse(rights).filter(|r| all.contains(*r));
                let Some(parsed) = parsed else {
                    let bad = rights
                        .split('+')
                        .find(|name| !abi::Rights::from_name(name).is_some_and(|r| all.contains(r)))
                        .unwrap_or(rights);
                    self.diagnostics.at(
                        span,
                        "domain.caps",
                        format!(
                            "`{bad}` in `{text}` is not a right of {} capability{}; valid rights: {} (joined by +)",
                            cap_type.article_name(),
                            did_you_mean(bad, &valid),
                            choices(&valid)
                        ),
                    );
                    return None;
                };
                (target, Some(parsed))
            }
        };
        Some(Cap {
            cap_type,
            target: target.to_string(),
            rights,
            line,
        })
    }

    fn expect(&mut self, table: &DeTable<'_>, span: Range<usize>) -> Option<Expect> {
        let line = self.diagnostics.line_of(span.start);
        let when = self.policy_table(table, "expect", "when", true);
        let minus_policy: Vec<(String, String)> = self
            .policy_table(table, "expect", "minus_policy", false)
            .into_iter()
            .filter_map(|(key, mut names)| names.pop().map(|name| (key, name)))
            .collect();
        let minus_snapshot = self
            .string(table, "expect.", "minus_snapshot")
            .map(|(label, _)| label);
        let difference = minus_snapshot.is_some() || get(table, "minus_policy").is_some();
        let snapshot = self.required_string(table, span.clone(), "expect.", "snapshot");
        let set = self.string(table, "expect.", "set");
        let domain = self.string(table, "expect.", "domain");
        let subject = match (set, domain) {
            (Some((set, _)), None) => Some(Subject::ChargeSet(set)),
            (None, Some((domain, _))) => Some(Subject::Domain(domain)),
            (Some(_), Some((_, domain_span))) => {
                self.diagnostics.at(
                    domain_span,
                    "expect.domain",
                    "give either `set` or `domain`, not both",
                );
                None
            }
            (None, None) => {
                self.diagnostics.at(
                    span.clone(),
                    "expect",
                    "names neither a `set` nor a `domain` to check",
                );
                None
            }
        };
        let field = self.required_string(table, span.clone(), "expect.", "field");
        let check = self.check(table, span, difference);
        Some(Expect {
            lines: key_lines(table, line, self.diagnostics),
            when,
            snapshot: snapshot?.0,
            subject: subject?,
            field: field?.0,
            minus_snapshot,
            minus_policy,
            check: check?,
            line,
        })
    }

    /// A table of policy names in `[section]`: `when` or `values` (a name or an array of names
    /// per key) or `minus_policy` (one name per key).
    fn policy_table(
        &mut self,
        table: &DeTable<'_>,
        section: &str,
        key: &str,
        arrays: bool,
    ) -> Vec<(String, Vec<String>)> {
        let Some(value) = get(table, key) else {
            return Vec::new();
        };
        let Some(policies) = value.get_ref().as_table() else {
            self.diagnostics.at(
                value.span(),
                &format!("{section}.{key}"),
                format!(
                    "expected a table of policy names such as {{ cow = \"holder\" }}, found a {}",
                    type_name(value.get_ref())
                ),
            );
            return Vec::new();
        };
        let prefix = format!("{section}.{key}.");
        // `when` and `values` may name presets; `minus_policy` names the keys themselves.
        let presets_allowed = arrays;
        let mut known_keys: Vec<&str> = registry::keys().to_vec();
        if presets_allowed {
            known_keys.push(registry::PRESET);
        }
        let mut conditions = Vec::new();
        for (policy_key, value) in policies.iter() {
            let path = format!("{prefix}{}", policy_key.get_ref());
            let is_preset = policy_key.get_ref() == registry::PRESET;
            let valid = if is_preset && presets_allowed {
                Some(registry::preset_names())
            } else {
                registry::valid_names(policy_key.get_ref())
            };
            let Some(valid) = valid else {
                let message = if is_preset {
                    "a preset cannot be compared against: name the policy keys the other run \
                     has (docs/presets.md lists each preset's values)"
                        .to_string()
                } else {
                    format!(
                        "unknown policy key{}; valid keys: {}",
                        did_you_mean(policy_key.get_ref(), &known_keys),
                        choices(&known_keys)
                    )
                };
                self.diagnostics.at(policy_key.span(), &path, message);
                continue;
            };
            let names: Vec<(String, Range<usize>)> = match value.get_ref() {
                DeValue::String(name) => vec![(name.to_string(), value.span())],
                DeValue::Array(_) if arrays => {
                    self.string_array(policies, &prefix, policy_key.get_ref())
                }
                other => {
                    self.diagnostics.at(
                        value.span(),
                        &path,
                        format!(
                            "expected a policy name{}, found a {}; valid values: {}",
                            if arrays { " or an array of them" } else { "" },
                            type_name(other),
                            choices(valid)
                        ),
                    );
                    continue;
                }
            };
            let mut accepted = Vec::new();
            for (name, span) in names {
                let checked = if is_preset {
                    check_preset_name(&name)
                } else {
                    check_policy_name(policy_key.get_ref(), &name)
                };
                match checked {
                    Ok(()) => accepted.push(name),
                    Err(message) => self.diagnostics.at(span, &path, message),
                }
            }
            conditions.push((policy_key.get_ref().to_string(), accepted));
        }
        conditions
    }

    /// The comparison; negative numbers only when the expectation compares a `difference`.
    fn check(
        &mut self,
        table: &DeTable<'_>,
        span: Range<usize>,
        difference: bool,
    ) -> Option<Check> {
        const CHECK_KEYS: [&str; 4] = ["equals", "pages", "at_most", "at_least"];
        let present: Vec<&str> = CHECK_KEYS
            .iter()
            .copied()
            .filter(|key| get(table, key).is_some())
            .collect();
        let [key] = present[..] else {
            self.diagnostics.at(
                span,
                "expect",
                format!(
                    "needs exactly one of {}, found {}",
                    choices(&CHECK_KEYS),
                    if present.is_empty() {
                        "none".to_string()
                    } else {
                        choices(&present)
                    }
                ),
            );
            return None;
        };
        let value = get(table, key)?;
        let path = format!("expect.{key}");
        match key {
            "equals" => match value.get_ref() {
                DeValue::String(text) => Some(Check::Equals(Expected::Text(text.to_string()))),
                DeValue::Boolean(flag) => Some(Check::Equals(Expected::Boolean(*flag))),
                _ => self
                    .integer(value, &path, difference)
                    .map(|n| Check::Equals(Expected::Integer(n))),
            },
            "pages" => {
                let pages = self.integer(value, &path, difference)?;
                match pages.checked_mul(4096) {
                    Some(bytes) => Some(Check::Equals(Expected::Integer(bytes))),
                    None => {
                        self.diagnostics.at(value.span(), &path, "is too large");
                        None
                    }
                }
            }
            "at_most" => self.integer(value, &path, difference).map(Check::AtMost),
            _ => self.integer(value, &path, difference).map(Check::AtLeast),
        }
    }
}

fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::Integer(integer) => integer.as_str().to_string(),
        DeValue::String(text) => format!("the string {text:?}"),
        other => format!("a {}", type_name(other)),
    }
}
