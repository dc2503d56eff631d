//! The `tally.report/1` model and the console parser that builds it from the kernel's framed
//! lines (docs/internals.md §2).
//!
//! Typed fields are the ones the design brief fixes; every object also keeps the fields it does
//! not know in `extra`, so a report written back out loses nothing the kernel said.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::KINDS;

/// The schema tag of `report.json`.
pub const SCHEMA: &str = "tally.report/1";
/// The prefix of every machine-readable console line.
pub const FRAME_PREFIX: &str = "@tally/1 ";
/// Bytes in a frame.
pub const FRAME_BYTES: u64 = 4096;

/// `status` when the console has no `end` record (the run was cut short).
pub const STATUS_INCOMPLETE: &str = "incomplete";
/// `status` of a run that ended well.
pub const STATUS_OK: &str = "ok";

/// One run's report: the `run` record's fields, the snapshots in order, and the end status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Config name.
    pub config: String,
    /// The kernel's version string.
    #[serde(default)]
    pub kernel_version: String,
    /// Policy key → name.
    pub policy: Map<String, Value>,
    /// IPC settings (`transfer`).
    #[serde(default)]
    pub ipc: Map<String, Value>,
    /// Guest RAM in bytes, as the kernel saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_bytes: Option<u64>,
    /// `ok`, `error` (from the `end` record) or `incomplete` (no `end` record).
    pub status: String,
    /// Why, when `status` is `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Snapshots in console order: first `start`, last `final`.
    pub snapshots: Vec<Snapshot>,
    /// What the host tool did to get this report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostRun>,
    /// Other fields of the `run` record.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// `trace` records as text, in order (written to `trace.txt`, not to `report.json`); see
    /// docs/report-format.md for their format.
    #[serde(skip)]
    pub trace: Vec<String>,
    /// Framed records of a type this tool does not know, with their type (kept, not fatal).
    #[serde(skip)]
    pub unknown_records: Vec<(String, Value)>,
}

/// How the host ran QEMU, recorded in the report for reproducibility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRun {
    /// The `-append` string.
    pub bootargs: String,
    /// The kernel image.
    pub kernel: String,
    /// QEMU's `-cpu`.
    pub cpu: String,
    /// QEMU's `-m`.
    pub mem: String,
    /// QEMU's exit status, `None` when it was killed.
    pub qemu_exit_status: Option<i32>,
    /// Whether the host killed QEMU at the timeout.
    pub timed_out: bool,
    /// The preset the policies came from (`[policy] preset`, `--policy preset=`), if any;
    /// the report's `policy` and `ipc` hold the values in force, explicit keys included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
}

impl Report {
    /// The policy name for `key` as the kernel reported it; the key's default when the
    /// report names other policies but not this one (a kernel from before the key existed
    /// behaved as its default: before `move`, no domain ever moved).
    pub fn policy_name(&self, key: &str) -> Option<&str> {
        match self.policy.get(key) {
            Some(value) => value.as_str(),
            None if !self.policy.is_empty() => crate::registry::default_name(key),
            None => None,
        }
    }

    /// The IPC transfer mode as the kernel reported it.
    pub fn transfer(&self) -> Option<&str> {
        self.ipc.get("transfer").and_then(Value::as_str)
    }

    /// The first snapshot with `label`.
    /// The preset the host expanded for this run (`host.preset`), if any.
    pub fn preset(&self) -> Option<&str> {
        self.host.as_ref().and_then(|host| host.preset.as_deref())
    }

    /// `cow=holder msgbuf=sender … transfer=direct`: every policy key in registry order, then
    /// the transfer mode (`?` for one the report does not give); with a preset,
    /// `preset=linux-memcg (cow=writer … transfer=two-stage)`.
    pub fn policy_line(&self) -> String {
        let mut parts: Vec<String> = crate::registry::keys()
            .iter()
            .map(|key| format!("{key}={}", self.policy_name(key).unwrap_or("?")))
            .collect();
        parts.push(format!("transfer={}", self.transfer().unwrap_or("?")));
        match self.preset() {
            Some(preset) => format!("{}={preset} ({})", crate::registry::PRESET, parts.join(" ")),
            None => parts.join(" "),
        }
    }

    /// The snapshot labelled `label`.
    pub fn snapshot(&self, label: &str) -> Option<&Snapshot> {
        self.snapshots.iter().find(|s| s.label == label)
    }

    /// Every conservation problem over all snapshots (empty = the books balanced everywhere).
    pub fn conservation_problems(&self) -> Vec<String> {
        self.snapshots
            .iter()
            .flat_map(|snapshot| {
                snapshot
                    .conservation_problems()
                    .into_iter()
                    .map(move |problem| format!("snapshot `{}`: {problem}", snapshot.label))
            })
            .collect()
    }
}

/// One snapshot of the books.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Chosen by the program that asked for it, or `start`/`final`.
    pub label: String,
    /// Guest instructions retired so far.
    #[serde(default)]
    pub instructions: u64,
    /// Frame counts.
    pub frames: Frames,
    /// The kernel's conservation check.
    pub conservation: Conservation,
    /// Every charge set, the kernel reserve included.
    pub charge_sets: Vec<ChargeSetReport>,
    /// Every domain.
    #[serde(default)]
    pub domains: Vec<DomainReport>,
    /// Fields this tool does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Snapshot {
    /// The charge set called `name`.
    pub fn charge_set(&self, name: &str) -> Option<&ChargeSetReport> {
        self.charge_sets.iter().find(|set| set.name == name)
    }

    /// The domain called `name`.
    pub fn domain(&self, name: &str) -> Option<&DomainReport> {
        self.domains.iter().find(|domain| domain.name == name)
    }

    /// Problems with the books: the kernel's own verdict, and the host's recount of it (every
    /// charge is counted once, at the set that pays it, so the sets' `current` figures add up
    /// to `charged_bytes`, which equals 4096 × frames in use).
    pub fn conservation_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let c = &self.conservation;
        if !c.ok {
            problems.push(format!(
                "the kernel reports conservation failed (charged {} bytes, in use {} bytes)",
                c.charged_bytes, c.in_use_bytes
            ));
        }
        if c.charged_bytes != c.in_use_bytes {
            problems.push(format!(
                "charged_bytes {} != in_use_bytes {}",
                c.charged_bytes, c.in_use_bytes
            ));
        }
        let in_use_bytes = self.frames.in_use.saturating_mul(FRAME_BYTES);
        if in_use_bytes != c.in_use_bytes {
            problems.push(format!(
                "in_use_bytes {} != 4096 × frames.in_use ({} frames = {} bytes)",
                c.in_use_bytes, self.frames.in_use, in_use_bytes
            ));
        }
        let current_sum: u64 = self.charge_sets.iter().map(|s| s.current.total()).sum();
        if current_sum != c.charged_bytes {
            problems.push(format!(
                "the charge sets' current bytes add up to {current_sum}, not charged_bytes {}",
                c.charged_bytes
            ));
        }
        // The kernel's full recount over the frame table (absent in reports of older kernels).
        if let Some(recount) = self.extra.get("recount") {
            if recount.get("ok").and_then(Value::as_bool) != Some(true) {
                let why = recount
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given");
                problems.push(format!(
                    "the kernel's recount over the frame table failed: {why}"
                ));
            }
        }
        problems
    }
}

/// Frame counts of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frames {
    /// RAM frames.
    pub total: u64,
    /// Free frames.
    pub free: u64,
    /// Frames the kernel took for itself at boot.
    pub boot: u64,
    /// Frames charged to some charge set.
    pub in_use: u64,
    /// Fields this tool does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The conservation check of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conservation {
    /// Bytes charged over all charge sets.
    pub charged_bytes: u64,
    /// 4096 × frames in use.
    pub in_use_bytes: u64,
    /// The kernel's verdict.
    pub ok: bool,
    /// Fields this tool does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Bytes per frame kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KindBytes {
    /// User pages.
    #[serde(default)]
    pub anon: u64,
    /// Page-table frames.
    #[serde(default)]
    pub pagetables: u64,
    /// Kernel objects.
    #[serde(default)]
    pub kernel: u64,
    /// Transient IPC buffers.
    #[serde(default)]
    pub msgbuf: u64,
    /// Copy-on-write copies.
    #[serde(default)]
    pub cow: u64,
    /// Kinds this tool does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl KindBytes {
    /// The figure for `kind` (one of [`KINDS`]; 0 for anything else).
    pub fn get(&self, kind: &str) -> u64 {
        match kind {
            "anon" => self.anon,
            "pagetables" => self.pagetables,
            "kernel" => self.kernel,
            "msgbuf" => self.msgbuf,
            "cow" => self.cow,
            _ => 0,
        }
    }

    /// The sum over [`KINDS`].
    pub fn total(&self) -> u64 {
        KINDS.iter().map(|kind| self.get(kind)).sum()
    }
}

/// One charge set in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargeSetReport {
    /// Set name (`kernel` for the reserve).
    pub name: String,
    /// Parent set.
    #[serde(default)]
    pub parent: Option<String>,
    /// Limit on the set's subtree.
    #[serde(default)]
    pub limit_bytes: Option<u64>,
    /// Domains bound to it.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Bytes this set pays now, per kind.
    pub current: KindBytes,
    /// Highest `current`, per kind.
    pub peak: KindBytes,
    /// Bytes ever charged.
    #[serde(default)]
    pub charged_total_bytes: u64,
    /// Bytes ever uncharged.
    #[serde(default)]
    pub uncharged_total_bytes: u64,
    /// Denied charges, per kind.
    #[serde(default)]
    pub denied: KindBytes,
    /// Bytes this set pays that another domain caused, by causer.
    #[serde(default)]
    pub paid_for: BTreeMap<String, u64>,
    /// Bytes this set pays, by causer domain (its own included) and kind: the payer × causer
    /// table. `None` for a report of a kernel before it (an empty table is `Some`: nothing
    /// caused by any domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caused: Option<BTreeMap<String, KindBytes>>,
    /// Bytes ever charged, per kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charged: Option<KindBytes>,
    /// Bytes ever uncharged, per kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncharged: Option<KindBytes>,
    /// `memory.events`-style counters: `denied`, and stops of the set's domains by reason
    /// (`over_limit`, `out_of_memory`, `fault`, `killed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<BTreeMap<String, u64>>,
    /// Denied charges whose failing limit was this set's own, per kind (whoever would have
    /// paid: a descendant, when this set is the ancestor whose limit failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_hits: Option<KindBytes>,
    /// Fields this tool does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChargeSetReport {
    /// Bytes of the set's `current` with no causer domain (frames the kernel charged on nobody's
    /// behalf), per kind: `current − Σ caused`; all of `current` when the report has no
    /// `caused` table and nothing was paid for others.
    pub fn uncaused(&self, kind: &str) -> u64 {
        let caused: u64 = self
            .caused
            .iter()
            .flatten()
            .map(|(_, kinds)| kinds.get(kind))
            .sum();
        self.current.get(kind).saturating_sub(caused)
    }

    /// What the set pays, by who caused it: the one reading of the payer × causer table that
    /// the CSV, the heat maps, the Markdown and the terminal share. From the `caused` table
    /// (each causer domain with its bytes per kind, then what no domain caused); for a report
    /// without one, what the set's own domains caused together (`current − paid_for`) and
    /// each `paid_for` causer, all kinds summed. Entries with no bytes are left out.
    pub fn attribution(&self) -> Vec<Attributed<'_>> {
        let mut found = Vec::new();
        match &self.caused {
            None => {
                let others: u64 = self.paid_for.values().sum();
                found.push(Attributed {
                    causer: Causer::OwnDomains,
                    own: true,
                    kinds: None,
                    bytes: self.current.total().saturating_sub(others),
                });
                found.extend(self.paid_for.iter().map(|(causer, bytes)| Attributed {
                    causer: Causer::Domain(causer),
                    own: false,
                    kinds: None,
                    bytes: *bytes,
                }));
            }
            Some(caused) => {
                found.extend(caused.iter().map(|(causer, kinds)| Attributed {
                    causer: Causer::Domain(causer),
                    own: self.domains.contains(causer),
                    kinds: Some(kinds.clone()),
                    bytes: kinds.total(),
                }));
                let uncaused = KindBytes {
                    anon: self.uncaused("anon"),
                    pagetables: self.uncaused("pagetables"),
                    kernel: self.uncaused("kernel"),
                    msgbuf: self.uncaused("msgbuf"),
                    cow: self.uncaused("cow"),
                    extra: Map::new(),
                };
                found.push(Attributed {
                    causer: Causer::NoDomain,
                    own: true,
                    bytes: uncaused.total(),
                    kinds: Some(uncaused),
                });
            }
        }
        found.retain(|entry| entry.bytes > 0);
        found
    }
}

/// Who caused a part of a set's charges ([`ChargeSetReport::attribution`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Causer<'a> {
    /// A domain, by name.
    Domain(&'a str),
    /// The set's own domains together (a report without the `caused` table).
    OwnDomains,
    /// No domain: frames the kernel charged on nobody's behalf.
    NoDomain,
}

/// One part of a set's charges and who caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attributed<'a> {
    /// Who caused it.
    pub causer: Causer<'a>,
    /// Whether the causer is the set's own (one of its domains, or none).
    pub own: bool,
    /// The bytes per kind, when the report says (the `caused` table).
    pub kinds: Option<KindBytes>,
    /// The bytes, all kinds.
    pub bytes: u64,
}

/// The event counters a report's `events` object holds, in report order.
pub const EVENTS: [&str; 9] = [
    "denied",
    "limit_hit",
    "over_limit",
    "out_of_memory",
    "fault",
    "killed",
    "high",
    "evictions",
    "page_ins",
];

/// One domain in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainReport {
    /// Domain name.
    pub name: String,
    /// The set it is bound to.
    pub charge_set: String,
    /// `running`, `blocked`, `exited` or `stopped`.
    pub state: String,
    /// Why it stopped, when it did.
    #[serde(default)]
    pub stop_reason: Option<Value>,
    /// Faults it sent its keeper.
    #[serde(default)]
    pub keeper_faults: u64,
    /// Of those, system calls restarted from the beginning.
    #[serde(default)]
    pub restarts: u64,
    /// How its keeper-decided charges (`cow = keeper`, `msgbuf = keeper`) were decided.
    #[serde(default)]
    pub keeper_choices: KeeperChoices,
    /// The last charge it caused that was denied (with an over-limit stop: why it stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_denial: Option<LastDenial>,
    /// Fields this tool does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Per domain: how its keeper-decided charges were decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeeperChoices {
    /// Paid by the set its keeper named.
    pub answered: u64,
    /// The fallback: the keeper did not answer in time.
    pub timeout: u64,
    /// The fallback: the keeper named no set it holds a capability to.
    pub wrong: u64,
    /// The fallback: no keeper to ask.
    pub none: u64,
}

/// A denied charge, as a domain's `last_denial` gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastDenial {
    /// The kind of the charge.
    pub kind: String,
    /// The set that would have paid.
    pub payer: String,
    /// The set whose limit failed: the payer or one of its ancestors.
    pub limit_set: String,
    /// `total` (the set's limit) or `kind` (its per-kind sub-limit).
    pub limit: String,
    /// Bytes the charge would have added at `limit_set`.
    pub bytes: u64,
}

impl LastDenial {
    /// `cow charge for parent over parent's limit`, `msgbuf charge for job over team's msgbuf
    /// sub-limit`.
    pub fn explain(&self) -> String {
        let limit = if self.limit == "kind" {
            format!("{} sub-limit", self.kind)
        } else {
            "limit".to_string()
        };
        format!(
            "{} charge for {} over {}'s {limit}",
            self.kind, self.payer, self.limit_set
        )
    }
}

impl DomainReport {
    /// The stop reason, with the denial that caused an over-limit stop: `over-limit (cow
    /// charge for parent over parent's limit)`; `None` when it did not stop.
    pub fn stop_explained(&self) -> Option<String> {
        let reason = match &self.stop_reason {
            None | Some(Value::Null) => return None,
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        };
        Some(match (&self.last_denial, reason.starts_with("over")) {
            (Some(denial), true) => format!("{reason} ({})", denial.explain()),
            _ => reason,
        })
    }
}

/// The fields of the `run` record that the report lifts out.
#[derive(Deserialize)]
struct RunRecord {
    config: String,
    #[serde(default)]
    kernel_version: String,
    policy: Map<String, Value>,
    #[serde(default)]
    ipc: Map<String, Value>,
    #[serde(default)]
    mem_bytes: Option<u64>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
struct EndRecord {
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

/// Whether a console line is a framed record (and so not for people).
pub fn is_framed(line: &str) -> bool {
    line.starts_with(FRAME_PREFIX)
}

/// Builds a report from a whole console transcript. Lines that are not framed are ignored.
/// Errors: no `run` record, a framed line whose JSON does not parse or lacks a required field,
/// a `snapshot` before the `run` record, a second `run` or `end`, or a record after `end`.
/// `trace` records may come before the `run` record (the kernel traces from its first charge).
/// A transcript without an `end` record gives `status: "incomplete"`.
pub fn parse_console(console: &str) -> Result<Report> {
    let mut report: Option<Report> = None;
    let mut early_trace: Vec<String> = Vec::new();
    let mut ended = false;
    for (index, raw_line) in console.lines().enumerate() {
        let line_number = index + 1;
        let line = raw_line.trim_end_matches('\r');
        let Some(framed) = line.strip_prefix(FRAME_PREFIX) else {
            continue;
        };
        let context = || format!("console line {line_number}: {}", shorten(line));
        let (record_type, json) = framed.split_once(' ').unwrap_or((framed, ""));
        if ended {
            bail!(
                "{}: a `{record_type}` record after the `end` record",
                context()
            );
        }
        // Trace records are text, not JSON. The kernel starts tracing before it writes the
        // `run` record (the ledger's first records describe the boot frames), so records that
        // come early wait for it.
        if record_type == "trace" {
            match report.as_mut() {
                Some(report) => report.trace.push(json.to_string()),
                None => early_trace.push(json.to_string()),
            }
            continue;
        }
        let value: Value = serde_json::from_str(json)
            .with_context(|| format!("{}: the JSON does not parse", context()))?;
        match (record_type, report.as_mut()) {
            ("run", None) => {
                let run: RunRecord = serde_json::from_value(value)
                    .with_context(|| format!("{}: not a valid `run` record", context()))?;
                report = Some(Report {
                    schema: SCHEMA.to_string(),
                    config: run.config,
                    kernel_version: run.kernel_version,
                    policy: run.policy,
                    ipc: run.ipc,
                    mem_bytes: run.mem_bytes,
                    status: STATUS_INCOMPLETE.to_string(),
                    reason: None,
                    snapshots: Vec::new(),
                    host: None,
                    extra: run.extra,
                    trace: std::mem::take(&mut early_trace),
                    unknown_records: Vec::new(),
                });
            }
            ("run", Some(_)) => bail!("{}: a second `run` record", context()),
            (_, None) => bail!(
                "{}: a `{record_type}` record before the `run` record",
                context()
            ),
            ("snapshot", Some(report)) => {
                let snapshot: Snapshot = serde_json::from_value(value)
                    .with_context(|| format!("{}: not a valid snapshot", context()))?;
                report.snapshots.push(snapshot);
            }
            ("end", Some(report)) => {
                let end: EndRecord = serde_json::from_value(value)
                    .with_context(|| format!("{}: not a valid `end` record", context()))?;
                report.status = end.status;
                report.reason = end.reason;
                ended = true;
            }
            (other, Some(report)) => report.unknown_records.push((other.to_string(), value)),
        }
    }
    report.ok_or_else(|| {
        anyhow!("the console has no `{FRAME_PREFIX}run` record: the kernel did not get as far as reporting")
    })
}

fn shorten(line: &str) -> String {
    const MAX_CHARS: usize = 100;
    if line.chars().count() <= MAX_CHARS {
        line.to_string()
    } else {
        format!("{}…", line.chars().take(MAX_CHARS).collect::<String>())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A hand-written console transcript of a two-set run, as the kernel frames it.
    pub(crate) const TRANSCRIPT: &str = r#"tally 0.1.0 booting, 128 MiB RAM
[init] hello from user space
@tally/1 run {"config":"cow-fork","kernel_version":"0.1.0","policy":{"cow":"holder","msgbuf":"sender","pagetable":"owner","release":"migrate","kernel":"self"},"ipc":{"transfer":"direct"},"mem_bytes":134217728,"boot_instructions":1234}
@tally/1 snapshot {"label":"start","instructions":1000,"frames":{"total":32768,"free":32708,"boot":60,"in_use":0},"conservation":{"charged_bytes":0,"in_use_bytes":0,"ok":true},"charge_sets":[{"name":"kernel","parent":null,"limit_bytes":null,"domains":[],"current":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"peak":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"charged_total_bytes":0,"uncharged_total_bytes":0,"denied":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"paid_for":{}}],"domains":[]}
[parent] forked child
@tally/1 trace cow 120 121 1
@tally/1 snapshot {"label":"shared","instructions":52000,"frames":{"total":32768,"free":32680,"boot":60,"in_use":28},"conservation":{"charged_bytes":114688,"in_use_bytes":114688,"ok":true},"charge_sets":[{"name":"kernel","parent":null,"limit_bytes":null,"domains":[],"current":{"anon":0,"pagetables":0,"kernel":32768,"msgbuf":0,"cow":0},"peak":{"anon":0,"pagetables":0,"kernel":32768,"msgbuf":0,"cow":0},"charged_total_bytes":32768,"uncharged_total_bytes":0,"denied":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"paid_for":{}},{"name":"parent","parent":null,"limit_bytes":1048576,"domains":["parent"],"current":{"anon":40960,"pagetables":8192,"kernel":4096,"msgbuf":0,"cow":16384},"peak":{"anon":40960,"pagetables":8192,"kernel":4096,"msgbuf":0,"cow":16384},"charged_total_bytes":69632,"uncharged_total_bytes":0,"denied":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":1},"paid_for":{"child":16384},"subtree":{"anon":49152}},{"name":"child","parent":"parent","limit_bytes":262144,"domains":["child"],"current":{"anon":0,"pagetables":8192,"kernel":4096,"msgbuf":0,"cow":0},"peak":{"anon":0,"pagetables":8192,"kernel":4096,"msgbuf":0,"cow":0},"charged_total_bytes":12288,"uncharged_total_bytes":0,"denied":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"paid_for":{}}],"domains":[{"name":"parent","charge_set":"parent","state":"blocked","stop_reason":null},{"name":"child","charge_set":"child","state":"running","stop_reason":null}]}
[child] done
@tally/1 snapshot {"label":"final","instructions":90000,"frames":{"total":32768,"free":32708,"boot":60,"in_use":0},"conservation":{"charged_bytes":0,"in_use_bytes":0,"ok":true},"charge_sets":[{"name":"kernel","parent":null,"limit_bytes":null,"domains":[],"current":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"peak":{"anon":0,"pagetables":0,"kernel":32768,"msgbuf":0,"cow":0},"charged_total_bytes":32768,"uncharged_total_bytes":32768,"denied":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"paid_for":{}},{"name":"parent","parent":null,"limit_bytes":1048576,"domains":["parent"],"current":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"peak":{"anon":40960,"pagetables":8192,"kernel":4096,"msgbuf":0,"cow":16384},"charged_total_bytes":69632,"uncharged_total_bytes":69632,"denied":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":1},"paid_for":{"child":0}},{"name":"child","parent":"parent","limit_bytes":262144,"domains":["child"],"current":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"peak":{"anon":0,"pagetables":8192,"kernel":4096,"msgbuf":0,"cow":0},"charged_total_bytes":12288,"uncharged_total_bytes":12288,"denied":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"paid_for":{}}],"domains":[{"name":"parent","charge_set":"parent","state":"exited","stop_reason":null},{"name":"child","charge_set":"child","state":"stopped","stop_reason":"over limit: cow"}]}
@tally/1 end {"status":"ok"}
tally: powering off
"#;

    #[test]
    fn the_policy_line_names_the_preset_when_there_is_one() {
        let mut report = parse_console(TRANSCRIPT).unwrap();
        assert_eq!(
            report.policy_line(),
            "cow=holder msgbuf=sender pagetable=owner release=migrate kernel=self move=stay transfer=direct"
        );
        report.host = Some(HostRun {
            bootargs: String::new(),
            kernel: String::new(),
            cpu: String::new(),
            mem: String::new(),
            qemu_exit_status: Some(0),
            timed_out: false,
            preset: Some("sel4".into()),
        });
        assert_eq!(report.preset(), Some("sel4"));
        assert!(report
            .policy_line()
            .starts_with("preset=sel4 (cow=holder msgbuf=sender "));
        assert!(report.policy_line().ends_with(" transfer=direct)"));
        // `host.preset` is written when set, absent otherwise, and read back either way.
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["host"]["preset"], "sel4");
        report.host.as_mut().unwrap().preset = None;
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["host"].get("preset").is_none());
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back.preset(), None);
    }

    #[test]
    fn parses_a_transcript() {
        let report = parse_console(TRANSCRIPT).unwrap();
        assert_eq!(report.schema, SCHEMA);
        assert_eq!(report.config, "cow-fork");
        assert_eq!(report.kernel_version, "0.1.0");
        assert_eq!(report.policy_name("cow"), Some("holder"));
        assert_eq!(report.transfer(), Some("direct"));
        assert_eq!(report.mem_bytes, Some(128 << 20));
        assert_eq!(report.status, "ok");
        assert_eq!(report.extra["boot_instructions"], 1234);
        let labels: Vec<&str> = report.snapshots.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["start", "shared", "final"]);
        let shared = report.snapshot("shared").unwrap();
        let parent = shared.charge_set("parent").unwrap();
        assert_eq!(parent.current.cow, 16384);
        assert_eq!(parent.current.total(), 69632);
        assert_eq!(parent.denied.cow, 1);
        assert_eq!(parent.paid_for["child"], 16384);
        assert_eq!(parent.extra["subtree"]["anon"], 49152);
        let child = report.snapshots[2].domain("child").unwrap();
        assert_eq!(child.state, "stopped");
        assert_eq!(child.stop_reason, Some(Value::from("over limit: cow")));
        assert_eq!(report.trace, ["cow 120 121 1"]);
        assert!(report.conservation_problems().is_empty());
    }

    #[test]
    fn trace_records_before_the_run_record_are_kept_in_order() {
        let early = TRANSCRIPT.replace(
            "@tally/1 run ",
            "@tally/1 trace ledger 32768\n@tally/1 trace boot 0 60\n@tally/1 run ",
        );
        let report = parse_console(&early).unwrap();
        assert_eq!(report.trace, ["ledger 32768", "boot 0 60", "cow 120 121 1"]);
        // Without a `run` record there is still no report.
        let message = parse_console("@tally/1 trace ledger 8\n")
            .unwrap_err()
            .to_string();
        assert!(message.contains("no `@tally/1 run`"), "{message}");
    }

    #[test]
    fn report_json_round_trips_and_keeps_unknown_fields() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let json = serde_json::to_string_pretty(&report).unwrap();
        assert!(
            json.starts_with("{\n  \"schema\": \"tally.report/1\""),
            "{json}"
        );
        assert!(json.contains("\"boot_instructions\": 1234"));
        assert!(json.contains("\"subtree\""));
        let back: Report = serde_json::from_str(&json).unwrap();
        // The trace goes to its own file, not into report.json.
        let without_trace = Report {
            trace: Vec::new(),
            ..report
        };
        assert_eq!(back, without_trace);
    }

    #[test]
    fn a_missing_end_is_incomplete_and_an_error_end_keeps_its_reason() {
        let cut = TRANSCRIPT.split("@tally/1 end").next().unwrap();
        assert_eq!(parse_console(cut).unwrap().status, STATUS_INCOMPLETE);
        let failed = TRANSCRIPT.replace(
            r#"{"status":"ok"}"#,
            r#"{"status":"error","reason":"conservation failed"}"#,
        );
        let report = parse_console(&failed).unwrap();
        assert_eq!(report.status, "error");
        assert_eq!(report.reason.as_deref(), Some("conservation failed"));
    }

    #[test]
    fn malformed_transcripts_are_errors_naming_the_line() {
        let no_run = "booting\n[x] hi\n";
        assert!(parse_console(no_run)
            .unwrap_err()
            .to_string()
            .contains("no `@tally/1 run`"));

        let bad_json =
            TRANSCRIPT.replace(r#"@tally/1 end {"status":"ok"}"#, "@tally/1 end {status");
        let message = format!("{:#}", parse_console(&bad_json).unwrap_err());
        assert!(message.contains("console line 10"), "{message}");

        let early = "@tally/1 snapshot {}\n";
        let message = parse_console(early).unwrap_err().to_string();
        assert!(message.contains("before the `run` record"), "{message}");

        let missing_field = TRANSCRIPT.replacen(r#""frames":{"total":32768,"#, r#""frames":{"#, 1);
        let message = format!("{:#}", parse_console(&missing_field).unwrap_err());
        assert!(
            message.contains("console line 4") && message.contains("total"),
            "{message}"
        );

        let after_end = format!("{TRANSCRIPT}@tally/1 end {{\"status\":\"ok\"}}\n");
        let message = parse_console(&after_end).unwrap_err().to_string();
        assert!(message.contains("after the `end` record"), "{message}");
    }

    #[test]
    fn user_output_cannot_forge_a_record() {
        let forged = TRANSCRIPT.replace(
            "[child] done",
            r#"[child] @tally/1 end {"status":"error","reason":"forged"}"#,
        );
        assert_eq!(parse_console(&forged).unwrap().status, "ok");
    }

    #[test]
    fn carriage_returns_and_unknown_records_are_tolerated() {
        let crlf = TRANSCRIPT.replace('\n', "\r\n");
        assert_eq!(parse_console(&crlf).unwrap().snapshots.len(), 3);
        let extra = TRANSCRIPT.replace("[child] done", r#"@tally/1 bench {"ipc_round_trip":420}"#);
        let report = parse_console(&extra).unwrap();
        assert_eq!(report.unknown_records[0].0, "bench");
    }

    #[test]
    fn the_host_recounts_the_books() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let mut snapshot = report.snapshots[1].clone();
        snapshot.charge_sets[1].current.anon += 4096;
        let problems = snapshot.conservation_problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("add up to 118784"), "{problems:?}");
        snapshot.conservation.ok = false;
        snapshot.frames.in_use += 1;
        assert_eq!(snapshot.conservation_problems().len(), 3);
    }
}
