//! `tally bench`: instruction counts per kernel operation, with accounting and with it
//! compiled out.
//!
//! Each benchmark config (`bench/*.toml`) boots once under each kernel. Its programs measure
//! themselves with the instruction counter (exact under `-icount shift=0`) and print
//! `BENCH <name> <instructions-per-op>` lines, which the kernel prefixes with `[domain] `.
//! This module runs the boots in parallel, checks each run, pairs the figures of the two
//! kernels, compares them with the design targets, and writes `bench.json` (schema
//! `tally.bench/1`) and `bench.md`.
//!
//! A benchmark run is judged by its own rules, not `tally run`'s: without accounting the
//! books are not kept, so the conservation check is not required. A run is good when QEMU
//! exited by itself, the kernel wrote its `end` record (status `ok`; without accounting also
//! `error` for a failed conservation check), its `run` record says which kernel it is, no
//! program failed a check or panicked, and every figure the config owes was printed once.
//! Missed targets are results, not failures: the exit status only says whether the
//! measurement itself worked.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::exit::{self, Failure};
use crate::qemu::{self, Ending};
use crate::report::FRAME_PREFIX;
use crate::session::{self, RunOptions};

/// The schema tag of `bench.json`.
pub const SCHEMA: &str = "tally.bench/1";
/// The design's limit on the cost of accounting, in percent, on faults and IPC.
pub const OVERHEAD_TARGET_PERCENT: f64 = 3.0;
/// The design's limit on accounting metadata per frame, in bytes.
pub const METADATA_TARGET_BYTES: f64 = 8.0;
/// The design's limit on a host ledger reserve + commit at set-tree depth 1, in ns.
pub const LEDGER_TARGET_NS: f64 = 20.0;
/// What a benchmark program prints before its figure (after the kernel's `[domain] `).
pub const LINE_PREFIX: &str = "BENCH ";

/// One measured operation: which config measures it and what the design asks of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Operation {
    /// The name in the `BENCH` line.
    pub name: &'static str,
    /// What it is, for the table.
    pub title: &'static str,
    /// The `name` of the bench config whose programs print it.
    pub config: &'static str,
    /// The design's target in instructions (accounting on), if it sets one.
    pub target_instructions: Option<f64>,
    /// Whether the design's 3 % overhead limit applies (faults and IPC).
    pub overhead_target: bool,
    /// A figure that must come out exactly (a check of the instrument, not of the kernel).
    pub exact: Option<f64>,
}

const fn op(name: &'static str, title: &'static str, config: &'static str) -> Operation {
    Operation {
        name,
        title,
        config,
        target_instructions: None,
        overhead_target: false,
        exact: None,
    }
}

const fn target(mut operation: Operation, instructions: f64) -> Operation {
    operation.target_instructions = Some(instructions);
    operation
}

const fn overhead(mut operation: Operation) -> Operation {
    operation.overhead_target = true;
    operation
}

const fn exact(mut operation: Operation, instructions: f64) -> Operation {
    operation.exact = Some(instructions);
    operation
}

/// Every operation the bench configs measure, in table order.
pub const OPERATIONS: [Operation; 19] = [
    overhead(target(
        op(
            "ipc_roundtrip_registers",
            "IPC `call_registers` + `reply_recv_registers` round trip, register-sized message (4 words), two address spaces",
            "bench-ipc-registers",
        ),
        450.0,
    )),
    overhead(op(
        "ipc_roundtrip_0",
        "IPC `call` + `reply_recv` round trip, 0-byte message through memory descriptors",
        "bench-ipc",
    )),
    overhead(target(
        op(
            "ipc_roundtrip_64",
            "IPC `call` + `reply_recv` round trip, 64-byte message",
            "bench-ipc",
        ),
        700.0,
    )),
    overhead(target(
        op(
            "demand_zero_fault",
            "demand-zero page fault",
            "bench-memory",
        ),
        1000.0,
    )),
    overhead(target(
        op(
            "cow_fault",
            "copy-on-write fault, 4 KiB copy included",
            "bench-fork",
        ),
        1500.0,
    )),
    target(
        op(
            "spawn_share_4mib",
            "spawn sharing 4 MiB copy-on-write (1024 populated pages)",
            "bench-fork",
        ),
        40_000.0,
    ),
    target(
        op(
            "boot_to_el0",
            "boot to the first EL0 instruction, 4 GiB of RAM (from the kernel's Rust entry)",
            "bench-boot",
        ),
        20_000_000.0,
    ),
    overhead(op(
        "pagetable_frame",
        "page-table frame: a level-3 table for a fresh 2 MiB block (beyond the fault)",
        "bench-memory",
    )),
    overhead(op(
        "pagetable_frame_1g",
        "page-table frame: per table for a fresh 1 GiB slot (level 2 + level 3)",
        "bench-memory",
    )),
    op("spawn", "spawn sharing nothing", "bench-fork"),
    op(
        "spawn_share_per_page",
        "spawn: each page shared copy-on-write",
        "bench-fork",
    ),
    overhead(op(
        "ool_send_1page",
        "out-of-line `send` of a 1-page region",
        "bench-ool",
    )),
    overhead(op(
        "ool_send_64pages",
        "out-of-line `send` of a 64-page region",
        "bench-ool",
    )),
    overhead(op(
        "ool_per_page",
        "out-of-line transfer: each page beyond the first",
        "bench-ool",
    )),
    overhead(op(
        "twostage_send_4k",
        "two-stage `send` of 4 KiB (into a queued kernel buffer)",
        "bench-twostage",
    )),
    overhead(op(
        "twostage_recv_4k",
        "two-stage `recv` of 4 KiB (out of the buffer, freed)",
        "bench-twostage",
    )),
    overhead(op(
        "twostage_4k",
        "two-stage `send` + `recv` of 4 KiB",
        "bench-twostage",
    )),
    op(
        "counter_read",
        "instrument: two back-to-back counter reads",
        "bench-calibrate",
    ),
    exact(
        op(
            "calibration_loop",
            "instrument: a loop of exactly 2001 instructions",
            "bench-calibrate",
        ),
        2001.0,
    ),
];

/// The known operation called `name`.
pub fn operation(name: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|o| o.name == name)
}

/// Which kernel a run used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Variant {
    /// The default build: the ledger keeps the books.
    Accounting,
    /// Built with `--no-default-features`: the ledger calls are compiled out.
    NoAccounting,
}

impl Variant {
    /// Both, in table order.
    pub const BOTH: [Variant; 2] = [Variant::Accounting, Variant::NoAccounting];

    /// Directory and JSON key.
    pub fn key(self) -> &'static str {
        match self {
            Variant::Accounting => "accounting",
            Variant::NoAccounting => "no_accounting",
        }
    }
}

/// What `tally bench` was asked to do.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The kernel with accounting.
    pub kernel: PathBuf,
    /// The kernel with accounting compiled out.
    pub kernel_noacct: PathBuf,
    /// QEMU CPU model.
    pub cpu: String,
    /// Host timeout per run, overriding the config's.
    pub timeout_seconds: Option<u64>,
    /// Runs at a time.
    pub jobs: usize,
    /// Boots of each config under each kernel; more than one checks that they agree.
    pub repeat: usize,
    /// Where each run's console log goes (`<out_root>/<config>/<variant>[-<n>]/console.log`).
    pub out_root: PathBuf,
}

/// One boot of one config under one kernel.
#[derive(Debug, Clone)]
pub struct BenchRun {
    /// The config's name.
    pub config: String,
    /// Which kernel.
    pub variant: Variant,
    /// Which repetition (0-based).
    pub repetition: usize,
    /// The figures it printed.
    pub figures: BTreeMap<String, f64>,
    /// Why it cannot be used (empty = good).
    pub problems: Vec<String>,
    /// Wall-clock time of the boot.
    pub elapsed: Duration,
    /// Where its console log is.
    pub console_log: PathBuf,
}

/// The figures in a console: `[domain] BENCH name value` lines. A line that starts like one
/// but does not parse, or a name printed twice, is a problem.
pub fn parse_figures(console: &str) -> (BTreeMap<String, f64>, Vec<String>) {
    let mut figures = BTreeMap::new();
    let mut problems = Vec::new();
    for line in console.lines() {
        let Some(rest) = line.strip_prefix('[') else {
            continue;
        };
        let Some((_domain, text)) = rest.split_once("] ") else {
            continue;
        };
        let Some(text) = text.strip_prefix(LINE_PREFIX) else {
            continue;
        };
        let mut words = text.split_whitespace();
        let (Some(name), Some(value), None) = (words.next(), words.next(), words.next()) else {
            problems.push(format!("malformed benchmark line: {line}"));
            continue;
        };
        match value.parse::<f64>() {
            Ok(value) if value.is_finite() => {
                if figures.insert(name.to_string(), value).is_some() {
                    problems.push(format!("`{name}` printed twice"));
                }
            }
            _ => problems.push(format!("malformed benchmark line: {line}")),
        }
    }
    (figures, problems)
}

/// The JSON of the last framed record of `record_type` in a console.
fn last_record(console: &str, record_type: &str) -> Option<Value> {
    console
        .lines()
        .rev()
        .filter_map(|line| line.strip_prefix(FRAME_PREFIX))
        .filter_map(|framed| framed.split_once(' '))
        .find(|(kind, _)| *kind == record_type)
        .and_then(|(_, json)| serde_json::from_str(json).ok())
}

/// Why a finished boot cannot be used (empty = it can). `expected` are the figures its
/// config owes.
pub fn judge(variant: Variant, ending: Ending, console: &str, expected: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let end = last_record(console, "end");
    let end_status = end
        .as_ref()
        .and_then(|e| e.get("status"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let end_reason = end
        .as_ref()
        .and_then(|e| e.get("reason"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let conservation_only = variant == Variant::NoAccounting
        && end_status == "error"
        && end_reason.contains("conservation");
    match ending {
        Ending::Exited(0) => {}
        Ending::Exited(1) if conservation_only => {}
        Ending::Exited(code) => problems.push(format!("QEMU exited with status {code}")),
        Ending::Killed => problems.push("QEMU was killed by a signal".to_string()),
        Ending::TimedOut => problems.push("timed out; QEMU was killed".to_string()),
    }
    if end.is_none() {
        problems.push("no `end` record: the run was cut short".to_string());
    } else if end_status != "ok" && !conservation_only {
        problems.push(format!(
            "the kernel ended with status `{end_status}`: {end_reason}"
        ));
    }
    let accounting =
        last_record(console, "run").and_then(|run| run.get("accounting").and_then(Value::as_bool));
    match (variant, accounting) {
        (Variant::Accounting, Some(false)) => {
            problems.push("the kernel given as with accounting has it compiled out".to_string())
        }
        (Variant::NoAccounting, Some(true)) => {
            problems.push("the kernel given as without accounting has it compiled in".to_string())
        }
        (_, None) => problems.push("no `run` record saying whether accounting is on".to_string()),
        _ => {}
    }
    for line in console.lines() {
        if line.contains("CHECK FAILED") || line.contains("] panic:") {
            problems.push(format!("a program failed: {line}"));
        }
    }
    let (figures, parse_problems) = parse_figures(console);
    problems.extend(parse_problems);
    for name in expected {
        if !figures.contains_key(*name) {
            problems.push(format!("no `BENCH {name}` line"));
        }
    }
    problems
}

struct Job {
    config: Config,
    variant: Variant,
    repetition: usize,
    out_dir: PathBuf,
}

fn run_one(job: &Job, options: &BenchOptions) -> Result<BenchRun, Failure> {
    let kernel = match job.variant {
        Variant::Accounting => &options.kernel,
        Variant::NoAccounting => &options.kernel_noacct,
    };
    let run_options = RunOptions {
        kernel: kernel.clone(),
        mem_bytes: None,
        cpu: options.cpu.clone(),
        timeout_seconds: options.timeout_seconds,
        gdb: false,
        out_dir: job.out_dir.clone(),
        echo: false,
    };
    let (binary, launch) = session::prepare(&job.config, &run_options)?;
    std::fs::create_dir_all(&job.out_dir).map_err(|error| {
        Failure::environment(format!("cannot create {}: {error}", job.out_dir.display()))
    })?;
    let outcome = qemu::run(&binary, &launch, |_, _| {})?;
    let console_log = job.out_dir.join("console.log");
    std::fs::write(&console_log, &outcome.console).map_err(|error| {
        Failure::environment(format!("cannot write {}: {error}", console_log.display()))
    })?;
    let expected: Vec<&str> = OPERATIONS
        .iter()
        .filter(|o| o.config == job.config.name)
        .map(|o| o.name)
        .collect();
    let problems = judge(job.variant, outcome.ending, &outcome.console, &expected);
    let (figures, _) = parse_figures(&outcome.console);
    Ok(BenchRun {
        config: job.config.name.clone(),
        variant: job.variant,
        repetition: job.repetition,
        figures,
        problems,
        elapsed: outcome.elapsed,
        console_log,
    })
}

/// Boots every config under both kernels (`repeat` times each), `jobs` at a time, calling
/// `on_done` as each finishes. `Err` for an environment problem found before the first boot.
pub fn run_all(
    configs: &[Config],
    options: &BenchOptions,
    on_done: impl Fn(&BenchRun) + Sync,
) -> Result<Vec<BenchRun>, Failure> {
    let mut jobs = Vec::new();
    for config in configs {
        for variant in Variant::BOTH {
            for repetition in 0..options.repeat.max(1) {
                let leaf = if options.repeat > 1 {
                    format!("{}-{}", variant.key(), repetition + 1)
                } else {
                    variant.key().to_string()
                };
                jobs.push(Job {
                    config: config.clone(),
                    variant,
                    repetition,
                    out_dir: options.out_root.join(&config.name).join(leaf),
                });
            }
        }
    }
    // Environment problems (QEMU or a kernel missing) stop everything, once, before a boot.
    if let Some(first) = jobs.first() {
        for kernel in [&options.kernel, &options.kernel_noacct] {
            let probe = RunOptions {
                kernel: kernel.clone(),
                mem_bytes: None,
                cpu: options.cpu.clone(),
                timeout_seconds: options.timeout_seconds,
                gdb: false,
                out_dir: first.out_dir.clone(),
                echo: false,
            };
            session::prepare(&first.config, &probe)?;
        }
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Result<BenchRun, Failure>>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(job) = jobs.get(index) else { break };
                let result = run_one(job, options);
                if let Ok(run) = &result {
                    on_done(run);
                }
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(result);
            });
        }
    });
    let mut runs = Vec::new();
    for result in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        runs.push(result?);
    }
    runs.sort_by(|a, b| {
        (&a.config, a.variant, a.repetition).cmp(&(&b.config, b.variant, b.repetition))
    });
    Ok(runs)
}

/// One operation's figures under both kernels and how they compare with the design.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The name in the `BENCH` lines.
    pub name: String,
    /// The operation, when it is one of [`OPERATIONS`] (then it has a title and targets).
    pub operation: Option<Operation>,
    /// Instructions per operation with accounting.
    pub accounting: Option<f64>,
    /// Without accounting.
    pub no_accounting: Option<f64>,
}

impl Row {
    /// The cost of accounting in percent of the figure without it.
    pub fn overhead_percent(&self) -> Option<f64> {
        match (self.accounting, self.no_accounting) {
            (Some(with), Some(without)) if without > 0.0 => {
                Some((with - without) / without * 100.0)
            }
            _ => None,
        }
    }

    /// Whether the figure with accounting is within the instruction target (None: no target).
    pub fn met_instructions(&self) -> Option<bool> {
        let target = self.operation?.target_instructions?;
        Some(self.accounting.is_some_and(|with| with <= target))
    }

    /// Whether the overhead is within 3 % (None: the limit does not apply).
    pub fn met_overhead(&self) -> Option<bool> {
        if !self.operation?.overhead_target {
            return None;
        }
        Some(
            self.overhead_percent()
                .is_some_and(|percent| percent <= OVERHEAD_TARGET_PERCENT),
        )
    }

    /// Every target that applies is met (None: no target applies).
    pub fn met(&self) -> Option<bool> {
        match (self.met_instructions(), self.met_overhead()) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(true) && b.unwrap_or(true)),
        }
    }
}

/// Pairs the runs' figures into rows (known operations first, in table order, then any other
/// name a program printed). `Err` lists every reason the runs cannot be used: a failed run, a
/// figure that differs between repetitions (the runs are meant to be deterministic), or an
/// instrument check that came out wrong.
pub fn rows(runs: &[BenchRun]) -> Result<Vec<Row>, Vec<String>> {
    let mut problems = Vec::new();
    let mut values: BTreeMap<(String, Variant), f64> = BTreeMap::new();
    for run in runs {
        for problem in &run.problems {
            problems.push(format!(
                "{} ({}, run {}): {problem} (see {})",
                run.config,
                run.variant.key(),
                run.repetition + 1,
                run.console_log.display()
            ));
        }
        for (name, value) in &run.figures {
            match values.get(&(name.clone(), run.variant)) {
                Some(previous) if previous != value => problems.push(format!(
                    "{name} ({}) differs between runs: {previous} and {value}; the runs are \
                     not deterministic",
                    run.variant.key()
                )),
                _ => {
                    values.insert((name.clone(), run.variant), *value);
                }
            }
        }
    }
    let mut names: Vec<String> = OPERATIONS.iter().map(|o| o.name.to_string()).collect();
    for (name, _) in values.keys() {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let rows: Vec<Row> = names
        .into_iter()
        .map(|name| Row {
            operation: operation(&name).copied(),
            accounting: values.get(&(name.clone(), Variant::Accounting)).copied(),
            no_accounting: values.get(&(name.clone(), Variant::NoAccounting)).copied(),
            name,
        })
        .collect();
    for row in &rows {
        if let Some(expected) = row.operation.and_then(|o| o.exact) {
            for (variant, value) in [
                (Variant::Accounting, row.accounting),
                (Variant::NoAccounting, row.no_accounting),
            ] {
                if let Some(value) = value.filter(|v| *v != expected) {
                    problems.push(format!(
                        "{} ({}) is {value}, not {expected}: the instruction counter does not \
                         count instructions (is QEMU running with -icount shift=0?)",
                        row.name,
                        variant.key()
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

/// Host ledger figures from `cargo bench -p accounting` (`TALLY_BENCH_JSON`).
#[derive(Debug, Clone, PartialEq)]
pub struct Ledger {
    /// The JSON as the benchmark wrote it.
    pub raw: Value,
}

impl Ledger {
    /// Reads the benchmark's JSON file.
    pub fn load(path: &Path) -> Result<Ledger, Failure> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            Failure::environment(format!(
                "cannot read the ledger benchmark's figures {}: {error}",
                path.display()
            ))
        })?;
        let raw: Value = serde_json::from_str(&text).map_err(|error| {
            Failure::new(
                exit::RUN_FAILED,
                format!("{}: not JSON: {error}", path.display()),
            )
        })?;
        Ok(Ledger { raw })
    }

    /// Bytes of accounting metadata per frame.
    pub fn metadata_bytes_per_frame(&self) -> Option<f64> {
        self.raw.get("metadata_bytes_per_frame")?.as_f64()
    }

    /// `(depth, reserve_commit_ns, uncharge_ns)` per set-tree depth measured.
    pub fn depths(&self) -> Vec<(u64, f64, f64)> {
        self.raw
            .get("depths")
            .and_then(Value::as_array)
            .map(|depths| {
                depths
                    .iter()
                    .filter_map(|d| {
                        Some((
                            d.get("depth")?.as_u64()?,
                            d.get("reserve_commit_ns")?.as_f64()?,
                            d.get("uncharge_ns")?.as_f64()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `(name, cow policy, frames, ns)` per ledger operation measured, when the benchmark
    /// lists them.
    pub fn operations(&self) -> Vec<(String, String, u64, f64)> {
        self.raw
            .get("operations")
            .and_then(Value::as_array)
            .map(|operations| {
                operations
                    .iter()
                    .filter_map(|o| {
                        Some((
                            o.get("name")?.as_str()?.to_string(),
                            o.get("cow")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            o.get("frames").and_then(Value::as_u64).unwrap_or(1),
                            o.get("ns")?.as_f64()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Reserve + commit at depth 1, in ns.
    pub fn depth1_ns(&self) -> Option<f64> {
        self.depths()
            .into_iter()
            .find(|(depth, _, _)| *depth == 1)
            .map(|(_, ns, _)| ns)
    }
}

/// Rounds to two decimals for the files (the programs print two).
fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// `bench.json`: one object per operation, the host ledger figures, and how they were made.
/// Nothing in it depends on the host's speed except `host_ledger`.
pub fn to_json(
    rows: &[Row],
    ledger: Option<&Ledger>,
    kernels: [&Path; 2],
    qemu: &str,
    repetitions: usize,
) -> Value {
    let operations: Vec<Value> = rows
        .iter()
        .map(|row| {
            let o = row.operation.unwrap_or(op("", "", ""));
            json!({
                "name": row.name,
                "description": row.operation.map(|o| o.title),
                "config": row.operation.map(|o| o.config),
                "instructions": {
                    "accounting": row.accounting.map(number),
                    "no_accounting": row.no_accounting.map(number),
                },
                "overhead_percent": row.overhead_percent().map(round2),
                "target": {
                    "instructions": o.target_instructions.map(number),
                    "overhead_percent": o.overhead_target.then_some(OVERHEAD_TARGET_PERCENT).map(number),
                    "exact": o.exact.map(number),
                },
                "met": {
                    "instructions": row.met_instructions(),
                    "overhead": row.met_overhead(),
                    "all": row.met(),
                },
            })
        })
        .collect();
    let mut document = Map::new();
    document.insert("schema".into(), json!(SCHEMA));
    document.insert(
        "method".into(),
        json!(
            "instructions per operation, whole path (EL0 + EL1), read by the bench programs \
               from PMCCNTR_EL0 under -icount shift=0,sleep=off (one count per guest \
               instruction); each run is deterministic"
        ),
    );
    document.insert(
        "kernels".into(),
        json!({
            "accounting": kernels[0].display().to_string(),
            "no_accounting": kernels[1].display().to_string(),
        }),
    );
    document.insert("qemu".into(), json!(qemu));
    document.insert("boots_per_kernel".into(), json!(repetitions));
    document.insert("operations".into(), Value::Array(operations));
    // Only the deterministic host figure goes into this file: wall-clock times vary between
    // machines and runs, so they go to `host_markdown`'s file, never a committed one.
    if let Some(bytes) = ledger.and_then(Ledger::metadata_bytes_per_frame) {
        document.insert(
            "host_ledger".into(),
            json!({
                "metadata_bytes_per_frame": number(bytes),
                "target": METADATA_TARGET_BYTES,
                "met": bytes <= METADATA_TARGET_BYTES,
            }),
        );
    }
    Value::Object(document)
}

/// A figure as JSON: an integer when it is a whole number (`933`, not `933.0`), else the float.
fn number(value: f64) -> Value {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 9.0e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// `1234567.5` as `1,234,567.5`; whole numbers without decimals.
pub fn thousands(value: f64) -> String {
    let negative = value < 0.0;
    let hundredths = (value.abs() * 100.0).round() as u64;
    let (whole, fraction) = (hundredths / 100, hundredths % 100);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if negative { "-" } else { "" };
    match fraction {
        0 => format!("{sign}{grouped}"),
        f if f % 10 == 0 => format!("{sign}{grouped}.{}", f / 10),
        f => format!("{sign}{grouped}.{f:02}"),
    }
}

fn cell(value: Option<f64>) -> String {
    value.map_or("—".to_string(), thousands)
}

fn yes_no(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "—",
    }
}

/// The host ledger's wall-clock figures (`cargo bench -p accounting`), as Markdown: printed by
/// `tally bench` and written beside its logs, never into the committed `bench.md`.
pub fn host_markdown(ledger: &Ledger) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Host: the ledger alone (`cargo bench -p accounting`)\n\n\
         Wall-clock nanoseconds on this machine (best of several rounds; these vary between \
         machines and runs, unlike the instruction counts).\n"
    );
    let _ = writeln!(
        out,
        "| set-tree depth | reserve + commit (ns) | uncharge (ns) | target | met |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---|---|");
    for (depth, charge, uncharge) in ledger.depths() {
        let (target, met) = if depth == 1 {
            (
                format!("reserve + commit ≤ {LEDGER_TARGET_NS} ns"),
                yes_no(Some(charge <= LEDGER_TARGET_NS)),
            )
        } else {
            ("—".to_string(), "—")
        };
        let _ = writeln!(
            out,
            "| {depth} | {charge:.1} | {uncharge:.1} | {target} | {met} |"
        );
    }
    let operations = ledger.operations();
    if !operations.is_empty() {
        let _ = writeln!(
            out,
            "\n| ledger operation | `cow` policy | frames | ns | ns per frame |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|");
        for (name, cow, frames, ns) in operations {
            let _ = writeln!(
                out,
                "| {name} | {cow} | {frames} | {ns:.1} | {:.1} |",
                ns / frames.max(1) as f64
            );
        }
    }
    out
}

/// `bench.md`: the table of operations and how to read them (instruction counts only: facts,
/// the same on every machine).
pub fn to_markdown(
    rows: &[Row],
    ledger: Option<&Ledger>,
    qemu: &str,
    repetitions: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Tally benchmarks: instructions per operation\n");
    let _ = writeln!(
        out,
        "Written by `make bench` (`tally bench`). Whole-path instruction counts (EL0 + EL1) \
         measured by the bench programs (`user/src/bin/bench_*.rs`, configs in `bench/`) with \
         the PMU cycle counter, which counts one per guest instruction under `-icount \
         shift=0,sleep=off`; every run is deterministic. *With* is the default kernel; \
         *without* is the same kernel built with `--no-default-features` (the ledger calls \
         compiled out; only per-frame mapping counts kept). Overhead = with / without − 1. \
         TCG models no caches or pipeline: these are path lengths, not times.\n"
    );
    let _ = writeln!(out, "QEMU: {qemu}\n");
    if repetitions > 1 {
        let _ = writeln!(
            out,
            "Each config was booted {repetitions} times under each kernel; every figure came out \
             identical.\n"
        );
    }
    let _ = writeln!(
        out,
        "| operation | with accounting | without | overhead | target | met |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---|---|");
    for row in rows {
        let o = row.operation.unwrap_or(op("", "", ""));
        let mut targets = Vec::new();
        if let Some(target) = o.target_instructions {
            targets.push(format!("≤ {}", thousands(target)));
        }
        if o.overhead_target {
            targets.push(format!("overhead ≤ {OVERHEAD_TARGET_PERCENT} %"));
        }
        if let Some(exact) = o.exact {
            targets.push(format!("= {}", thousands(exact)));
        }
        let met = match (o.exact, row.met()) {
            (Some(expected), _) => {
                if row.accounting == Some(expected) && row.no_accounting == Some(expected) {
                    "yes"
                } else {
                    "**no**"
                }
            }
            (None, met) => yes_no(met),
        };
        let overhead = row
            .overhead_percent()
            .map_or("—".to_string(), |p| format!("{p:+.1} %"));
        let _ = writeln!(
            out,
            "| {} (`{}`) | {} | {} | {} | {} | {} |",
            row.operation
                .map_or("(not in the tool's table)", |o| o.title),
            row.name,
            cell(row.accounting),
            cell(row.no_accounting),
            overhead,
            if targets.is_empty() {
                "—".to_string()
            } else {
                targets.join("; ")
            },
            met
        );
    }
    let _ = writeln!(out);
    if let Some(bytes) = ledger.and_then(Ledger::metadata_bytes_per_frame) {
        let _ = writeln!(
            out,
            "Accounting metadata (host ledger): {bytes} bytes per frame (target ≤ {METADATA_TARGET_BYTES}: {}). \
             The host ledger's wall-clock figures are not in this file (they vary between \
             machines and runs): `make bench` prints them and writes them to \
             `build/bench/host.md`.",
            yes_no(Some(bytes <= METADATA_TARGET_BYTES))
        );
    }
    let _ = writeln!(out, "\n## How each figure is made\n");
    let _ = writeln!(
        out,
        "- Faults (`bench_memory`, `bench_fork_child`): two passes of the same loop over the \
         same pages, the first faulting on every page, the second finding them present; the \
         difference per page is the fault path (exception entry to return). Demand-zero: 256 \
         pages of a 2 MiB block whose table exists. Page-table frame: one page in each of 64 \
         fresh 2 MiB blocks (one new table each) or 16 fresh 1 GiB slots (two each), minus a \
         demand-zero fault, per table. Copy-on-write: a child writes 256 of 1024 pages its \
         parent shared with it at spawn.\n\
         - Spawn (`bench_fork`): around the `spawn` system call in the parent (domain, kernel \
         objects, program image loaded and charged, regions shared); once sharing nothing, \
         once sharing 1024 populated pages.\n\
         - IPC round trip (`bench_ipc_client`/`_server`): 1000 `call`s answered by \
         `reply_recv` (the server echoes), after 16 for warm-up, averaged; both domains' EL0 \
         code and both system calls are in the figure.\n\
         - Out-of-line (`bench_ool_sender`/`_receiver`): around `send` while the receiver \
         waits in `recv`, 4 sends each of fresh 64-page and 1-page regions (the sender's \
         pages become copy-on-write; the receiver's tables exist); per page = (64-page − \
         1-page) / 63.\n\
         - Two-stage (`bench_twostage`): one domain sends 4 KiB to its own endpoint and \
         receives it, 64 times after 4 for warm-up.\n\
         - Boot (`bench_boot`, `-m 4G`): the counter value at the first program's first \
         instructions. The counter starts in the kernel's first Rust function, so `boot.s` \
         (zeroing `.bss` at 4 instructions per 16 bytes, the boot page tables) is not \
         included.\n\
         - Instrument (`bench_calibrate`): a hand-written loop of exactly 2001 instructions \
         must measure 2001, or the bench fails."
    );
    out
}

/// Each operation's figures in a `bench.json`: name → (with accounting, without).
pub fn previous_figures(json: &Value) -> BTreeMap<String, (Option<f64>, Option<f64>)> {
    json.get("operations")
        .and_then(Value::as_array)
        .map(|operations| {
            operations
                .iter()
                .filter_map(|o| {
                    let name = o.get("name")?.as_str()?.to_string();
                    let figures = o.get("instructions")?;
                    Some((
                        name,
                        (
                            figures.get("accounting").and_then(Value::as_f64),
                            figures.get("no_accounting").and_then(Value::as_f64),
                        ),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every figure beside the previous one, with the change; an operation that got slower is
/// flagged `SLOWER` (instruction counts are exact, so any increase is real).
pub fn comparison_table(
    rows: &[Row],
    before: &BTreeMap<String, (Option<f64>, Option<f64>)>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| operation | before | now | change | without: before | now | |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
    let change = |old: Option<f64>, new: Option<f64>| match (old, new) {
        (Some(old), Some(new)) if old > 0.0 => {
            let sign = if new > old { "+" } else { "" };
            format!(
                "{sign}{} ({:+.1} %)",
                thousands(new - old),
                (new - old) / old * 100.0
            )
        }
        (None, Some(_)) => "new".to_string(),
        _ => "—".to_string(),
    };
    for row in rows {
        let (old_with, old_without) = before.get(&row.name).copied().unwrap_or((None, None));
        let slower = [(old_with, row.accounting), (old_without, row.no_accounting)]
            .iter()
            .any(|(old, new)| matches!((old, new), (Some(old), Some(new)) if new > old));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.name,
            cell(old_with),
            cell(row.accounting),
            change(old_with, row.accounting),
            cell(old_without),
            cell(row.no_accounting),
            if slower { "**SLOWER**" } else { "" }
        );
    }
    for name in before
        .keys()
        .filter(|name| !rows.iter().any(|r| &r.name == *name))
    {
        let _ = writeln!(out, "| {name} | (measured before, not now) | | | | | |");
    }
    out
}

/// `qemu-system-aarch64 --version`'s first line (or why there is none).
pub fn qemu_version() -> String {
    let binary = match qemu::find_qemu() {
        Ok(binary) => binary,
        Err(error) => return error.message,
    };
    std::process::Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .and_then(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// Writes `json` and `markdown` files, creating their directories.
pub fn write_files(
    json_path: &Path,
    markdown_path: &Path,
    json: &Value,
    markdown: &str,
) -> Result<(), Failure> {
    for (path, contents) in [
        (
            json_path,
            serde_json::to_string_pretty(json).unwrap_or_default() + "\n",
        ),
        (markdown_path, markdown.to_string()),
    ] {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| {
                Failure::environment(format!("cannot create {}: {error}", parent.display()))
            })?;
        }
        std::fs::write(path, contents).map_err(|error| {
            Failure::environment(format!("cannot write {}: {error}", path.display()))
        })?;
    }
    Ok(())
}

/// Everything `tally bench` does after parsing its arguments: load the configs, boot them,
/// print a line per run and the table, write the files. The `Ok` value is the exit status.
pub fn command(
    config_paths: &[PathBuf],
    options: &BenchOptions,
    ledger_json: Option<&Path>,
    json_path: &Path,
    markdown_path: &Path,
) -> Result<u8, Failure> {
    let mut configs = Vec::new();
    let mut errors = Vec::new();
    for path in config_paths {
        match Config::load(path, &crate::config::PolicyOverrides::default()) {
            Ok(config) => configs.push(config),
            Err(error) => errors.push(error.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(Failure::config(format!(
            "invalid config; nothing was booted\n{}",
            errors.join("\n")
        )));
    }
    let ledger = ledger_json.map(Ledger::load).transpose()?;
    let started = std::time::Instant::now();
    let runs = run_all(&configs, options, |run| {
        println!(
            "{} {} [{}{}] ({:.1} s): {} figures",
            if run.problems.is_empty() {
                "ok  "
            } else {
                "FAIL"
            },
            run.config,
            run.variant.key(),
            if options.repeat > 1 {
                format!(", run {}", run.repetition + 1)
            } else {
                String::new()
            },
            run.elapsed.as_secs_f64(),
            run.figures.len()
        );
    })?;
    let rows = match rows(&runs) {
        Ok(rows) => rows,
        Err(problems) => {
            for problem in &problems {
                println!("problem: {problem}");
            }
            println!(
                "bench FAILED: {}; {} and {} not written",
                crate::words::count(problems.len(), "problem"),
                json_path.display(),
                markdown_path.display()
            );
            return Ok(exit::RUN_FAILED);
        }
    };
    // The committed figures, read before they are overwritten, to compare against.
    let before = std::fs::read_to_string(json_path)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .map(|json| previous_figures(&json))
        .unwrap_or_default();
    let qemu = qemu_version();
    let json = to_json(
        &rows,
        ledger.as_ref(),
        [&options.kernel, &options.kernel_noacct],
        &qemu,
        options.repeat,
    );
    let markdown = to_markdown(&rows, ledger.as_ref(), &qemu, options.repeat);
    write_files(json_path, markdown_path, &json, &markdown)?;
    if let Some(ledger) = &ledger {
        let host = host_markdown(ledger);
        let host_path = options.out_root.join("host.md");
        std::fs::create_dir_all(&options.out_root)
            .and_then(|()| std::fs::write(&host_path, &host))
            .map_err(|error| {
                Failure::environment(format!("cannot write {}: {error}", host_path.display()))
            })?;
        println!("\n{host}(also in {})", host_path.display());
    }
    println!();
    for line in markdown.lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        println!("{line}");
    }
    if !before.is_empty() {
        println!(
            "\ncompared with the previous {} (accounting on / off):",
            json_path.display()
        );
        print!("{}", comparison_table(&rows, &before));
    }
    let missed = rows.iter().filter(|r| r.met() == Some(false)).count();
    println!(
        "\n{} in {:.1} s{}; {} of {} targets missed; wrote {} and {}",
        crate::words::count(runs.len(), "run"),
        started.elapsed().as_secs_f64(),
        if options.repeat > 1 {
            ", every figure identical across the boots of each kernel"
        } else {
            ""
        },
        missed,
        rows.iter().filter(|r| r.met().is_some()).count(),
        json_path.display(),
        markdown_path.display()
    );
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "\
Tally 0.1.0 booting
@tally/1 run {\"config\":\"bench-ipc\",\"policy\":{},\"accounting\":true}
[client] BENCH ipc_roundtrip_0 5347.00
[client] BENCH ipc_roundtrip_64 6359.10
[client] client: done
@tally/1 end {\"status\":\"ok\",\"reason\":\"ok\"}
";

    fn run(variant: Variant, figures: &[(&str, f64)], repetition: usize) -> BenchRun {
        BenchRun {
            config: "bench-ipc".into(),
            variant,
            repetition,
            figures: figures.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            problems: vec![],
            elapsed: Duration::ZERO,
            console_log: PathBuf::from("console.log"),
        }
    }

    #[test]
    fn figures_are_read_from_domain_lines_only() {
        let (figures, problems) =
            parse_figures("BENCH bare 1\n[a] BENCH x 12.50\n[b] not BENCH y 3\n[c] BENCH z\n");
        assert_eq!(figures.len(), 1);
        assert_eq!(figures["x"], 12.5);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("[c] BENCH z"));
        let (_, problems) = parse_figures("[a] BENCH x 1\n[a] BENCH x 1\n");
        assert!(problems[0].contains("twice"));
    }

    #[test]
    fn a_good_run_has_no_problems_and_a_missing_figure_is_one() {
        let expected = ["ipc_roundtrip_0", "ipc_roundtrip_64"];
        assert!(judge(Variant::Accounting, Ending::Exited(0), CONSOLE, &expected).is_empty());
        let problems = judge(
            Variant::Accounting,
            Ending::Exited(0),
            CONSOLE,
            &["ipc_roundtrip_0", "spawn"],
        );
        assert_eq!(problems, ["no `BENCH spawn` line"]);
    }

    #[test]
    fn without_accounting_only_a_conservation_failure_is_forgiven() {
        let noacct = CONSOLE.replace("\"accounting\":true", "\"accounting\":false");
        let failed = noacct.replace(
            "{\"status\":\"ok\",\"reason\":\"ok\"}",
            "{\"status\":\"error\",\"reason\":\"conservation check failed\"}",
        );
        assert!(judge(Variant::NoAccounting, Ending::Exited(1), &failed, &[]).is_empty());
        // The same failure with accounting on is a failed run.
        let on = failed.replace("\"accounting\":false", "\"accounting\":true");
        assert_eq!(
            judge(Variant::Accounting, Ending::Exited(1), &on, &[]).len(),
            2
        );
        // Any other error is a failure without accounting too.
        let panic = noacct.replace(
            "{\"status\":\"ok\",\"reason\":\"ok\"}",
            "{\"status\":\"error\",\"reason\":\"kernel panic\"}",
        );
        assert!(!judge(Variant::NoAccounting, Ending::Exited(2), &panic, &[]).is_empty());
    }

    #[test]
    fn a_cut_run_a_failed_check_or_a_swapped_kernel_is_a_problem() {
        let cut = CONSOLE.split("@tally/1 end").next().unwrap();
        let problems = judge(Variant::Accounting, Ending::TimedOut, cut, &[]);
        assert!(problems.iter().any(|p| p.contains("timed out")));
        assert!(problems.iter().any(|p| p.contains("no `end` record")));
        let failed = CONSOLE.replace("client: done", "CHECK FAILED: call failed");
        assert!(
            judge(Variant::Accounting, Ending::Exited(0), &failed, &[])[0].contains("CHECK FAILED")
        );
        let swapped = judge(Variant::NoAccounting, Ending::Exited(0), CONSOLE, &[]);
        assert!(swapped[0].contains("compiled in"), "{swapped:?}");
    }

    #[test]
    fn rows_pair_the_kernels_and_judge_the_targets() {
        let runs = [
            run(
                Variant::Accounting,
                &[("ipc_roundtrip_registers", 412.0)],
                0,
            ),
            run(
                Variant::NoAccounting,
                &[("ipc_roundtrip_registers", 400.0)],
                0,
            ),
            run(Variant::Accounting, &[("extra", 7.0)], 0),
        ];
        let rows = rows(&runs).unwrap();
        let row = rows
            .iter()
            .find(|r| r.name == "ipc_roundtrip_registers")
            .unwrap();
        assert_eq!(row.overhead_percent(), Some(3.0));
        assert_eq!(row.met_instructions(), Some(true));
        assert_eq!(row.met_overhead(), Some(true));
        assert_eq!(row.met(), Some(true));
        let row = rows.iter().find(|r| r.name == "ipc_roundtrip_64").unwrap();
        assert_eq!(row.met(), Some(false), "no figure is not a met target");
        let extra = rows.last().unwrap();
        assert_eq!((extra.name.as_str(), extra.operation), ("extra", None));
        assert_eq!(extra.met(), None);
    }

    #[test]
    fn differing_repetitions_and_a_wrong_calibration_fail() {
        let runs = [
            run(Variant::Accounting, &[("spawn", 100.0)], 0),
            run(Variant::Accounting, &[("spawn", 101.0)], 1),
        ];
        assert!(rows(&runs).unwrap_err()[0].contains("not deterministic"));
        let runs = [run(
            Variant::NoAccounting,
            &[("calibration_loop", 2002.0)],
            0,
        )];
        assert!(rows(&runs).unwrap_err()[0].contains("does not count instructions"));
    }

    #[test]
    fn the_files_carry_targets_and_verdicts() {
        let runs = [
            run(Variant::Accounting, &[("demand_zero_fault", 2399.0)], 0),
            run(Variant::NoAccounting, &[("demand_zero_fault", 1901.0)], 0),
        ];
        let rows = rows(&runs).unwrap();
        let ledger = Ledger {
            raw: json!({"metadata_bytes_per_frame": 8,
                        "depths": [{"depth": 1, "reserve_commit_ns": 12.5, "uncharge_ns": 9.0}],
                        "operations": [{"name": "share_many_1024", "cow": "writer",
                                        "ns": 120481.0, "frames": 1024}]}),
        };
        let json = to_json(
            &rows,
            Some(&ledger),
            [Path::new("a"), Path::new("b")],
            "QEMU 7.2",
            2,
        );
        assert_eq!(json["boots_per_kernel"], 2);
        let fault = json["operations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "demand_zero_fault")
            .unwrap();
        assert_eq!(fault["instructions"]["accounting"], 2399.0);
        assert_eq!(fault["overhead_percent"], 26.2);
        assert_eq!(fault["target"]["instructions"], 1000.0);
        assert_eq!(fault["met"]["all"], false);
        // Whole figures are JSON integers, not `2399.0`.
        assert_eq!(
            serde_json::to_string(&fault["instructions"]["accounting"]).unwrap(),
            "2399"
        );
        // Only the deterministic host figure is in the committed file, never a wall-clock one.
        assert!(json["host_ledger"].get("depths").is_none(), "{json}");
        let markdown = to_markdown(&rows, Some(&ledger), "QEMU 7.2", 2);
        assert!(!markdown.contains(" ns "), "{markdown}");
        let host = host_markdown(&ledger);
        assert!(markdown.contains("booted 2 times"));
        assert!(markdown.contains(
            "| demand-zero page fault (`demand_zero_fault`) | 2,399 | 1,901 | +26.2 % | ≤ 1,000; overhead ≤ 3 % | **no** |"
        ), "{markdown}");
        assert!(host.contains("| 1 | 12.5 | 9.0 | reserve + commit ≤ 20 ns | yes |"));
        assert!(host.contains("| share_many_1024 | writer | 1024 | 120481.0 | 117.7 |"));
    }

    #[test]
    fn the_comparison_flags_every_slower_figure() {
        let row = |name: &str, with: f64, without: f64| Row {
            name: name.to_string(),
            operation: None,
            accounting: Some(with),
            no_accounting: Some(without),
        };
        let rows = [
            row("fault", 810.0, 604.0),
            row("ipc", 940.0, 940.0),
            row("fresh", 5.0, 5.0),
        ];
        let json = json!({"operations": [
            {"name": "fault", "instructions": {"accounting": 805, "no_accounting": 604}},
            {"name": "ipc", "instructions": {"accounting": 949, "no_accounting": 949}},
            {"name": "gone", "instructions": {"accounting": 1, "no_accounting": 1}},
        ]});
        let table = comparison_table(&rows, &previous_figures(&json));
        assert!(
            table.contains("| fault | 805 | 810 | +5 (+0.6 %) | 604 | 604 | **SLOWER** |"),
            "{table}"
        );
        assert!(
            table.contains("| ipc | 949 | 940 | -9 (-0.9 %) | 949 | 940 |  |"),
            "{table}"
        );
        assert!(table.contains("| fresh | — | 5 | new |"), "{table}");
        assert!(
            table.contains("| gone | (measured before, not now)"),
            "{table}"
        );
    }

    #[test]
    fn thousands_groups_digits_and_keeps_decimals() {
        assert_eq!(thousands(6_644_402.0), "6,644,402");
        assert_eq!(thousands(6359.1), "6,359.1");
        assert_eq!(thousands(4396.73), "4,396.73");
        assert_eq!(thousands(-12.0), "-12");
        assert_eq!(thousands(999.0), "999");
    }
}
