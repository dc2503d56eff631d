//! `tally test`: every config under every combination of the policies it varies, run in a
//! worker pool, each run checked against the config's expectations.
//!
//! A run passes when it passes as a run (see [`crate::session`]), its snapshots start with
//! `start` and end with `final`, and every `[[expect]]` that applies under its policies holds.
//! A config with `run.expect_failure` passes instead when QEMU exits non-zero and the console
//! contains the expected text.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use serde_json::Value;

use crate::config::{Check, Config, Expect, Expected, PolicyOverrides, Subject, KINDS};
use crate::qemu::Ending;
use crate::registry;
use crate::report::Report;
use crate::session::{self, RunOptions, RunResult};
use crate::size::human;

/// One run to make: a config with the varied policies set.
#[derive(Debug, Clone)]
pub struct Job {
    /// The config, policies of this combination applied.
    pub config: Config,
    /// The varied keys and the names they take in this run.
    pub combo: Vec<(String, String)>,
    /// Where the run's files go.
    pub out_dir: PathBuf,
}

impl Job {
    /// The expectations that apply to this run and need no other run.
    pub fn own_expectations(&self) -> impl Iterator<Item = &Expect> {
        self.config
            .expects
            .iter()
            .filter(|e| e.minus_policy.is_empty() && e.applies(&self.config.conditions()))
    }

    /// The expectations that apply to this run and compare it with another run.
    pub fn cross_run_expectations(&self) -> impl Iterator<Item = &Expect> {
        self.config
            .expects
            .iter()
            .filter(|e| !e.minus_policy.is_empty() && e.applies(&self.config.conditions()))
    }

    /// `cow-fork [cow=holder]` (or just the name when nothing varies).
    pub fn label(&self) -> String {
        if self.combo.is_empty() {
            self.config.name.clone()
        } else {
            let combo: Vec<String> = self.combo.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{} [{}]", self.config.name, combo.join(" "))
        }
    }
}

/// Every combination of the names of `vary`'s keys (all valid names in registry order, or
/// the ones `values` lists for that key), the first key varying slowest. One empty combination
/// when nothing varies.
pub fn combinations(
    vary: &[String],
    values: &[(String, Vec<String>)],
) -> Vec<Vec<(String, String)>> {
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for key in vary {
        let names: Vec<&str> = match values.iter().find(|(k, _)| k == key) {
            Some((_, listed)) => listed.iter().map(String::as_str).collect(),
            None if key == registry::PRESET => registry::preset_names().to_vec(),
            None => registry::valid_names(key).unwrap_or_default().to_vec(),
        };
        combos = combos
            .into_iter()
            .flat_map(|combo| {
                names.iter().map(move |name| {
                    let mut next = combo.clone();
                    next.push((key.clone(), name.to_string()));
                    next
                })
            })
            .collect();
    }
    combos
}

/// The directory name of a combination: `cow-holder_msgbuf-sender`, or `default`.
pub fn combo_dir(combo: &[(String, String)]) -> String {
    if combo.is_empty() {
        "default".to_string()
    } else {
        combo
            .iter()
            .map(|(key, name)| format!("{key}-{name}"))
            .collect::<Vec<_>>()
            .join("_")
    }
}

/// The jobs for `configs`: each under every combination of its `experiment.vary` keys, to
/// `out_root/<name>/<combination>/`.
/// Runs that an expectation with `minus_policy` compares against are added when no
/// combination already covers them.
pub fn plan(configs: &[Config], out_root: &Path) -> Vec<Job> {
    let job = |config: &Config, combo: Vec<(String, String)>| {
        let mut config = config.clone();
        config.apply_varied(&PolicyOverrides(combo.clone()));
        Job {
            out_dir: out_root.join(&config.name).join(combo_dir(&combo)),
            config,
            combo,
        }
    };
    let mut jobs: Vec<Job> = configs
        .iter()
        .flat_map(|config| {
            combinations(&config.vary, &config.vary_values)
                .into_iter()
                .map(move |combo| job(config, combo))
        })
        .collect();
    let mut index = 0;
    while index < jobs.len() {
        let references: Vec<Vec<(String, String)>> = jobs[index]
            .cross_run_expectations()
            .filter_map(|e| e.reference_policy(&jobs[index].config.policy))
            .collect();
        let transfer = jobs[index].config.transfer.clone();
        for policy in references {
            if find_run(&jobs, &jobs[index].config.name, &policy, &transfer).is_none() {
                // Name the extra run by every key that differs from the config's own policy.
                let original = configs
                    .iter()
                    .find(|c| c.name == jobs[index].config.name)
                    .expect("a job comes from a config");
                let mut combo: Vec<(String, String)> = policy
                    .iter()
                    .filter(|(key, name)| {
                        original.vary.contains(key) || original.policy_name(key) != Some(name)
                    })
                    .cloned()
                    .collect();
                // A varied preset may have set the transfer mode too: the other run keeps it.
                if transfer != original.transfer {
                    combo.push((PolicyOverrides::TRANSFER.to_string(), transfer.clone()));
                }
                jobs.push(job(original, combo));
            }
        }
        index += 1;
    }
    jobs
}

/// The index of the run of config `name` under exactly `policy` and `transfer`.
fn find_run(
    jobs: &[Job],
    name: &str,
    policy: &[(String, String)],
    transfer: &str,
) -> Option<usize> {
    jobs.iter().position(|job| {
        job.config.name == name && job.config.policy == policy && job.config.transfer == transfer
    })
}

/// Checks the expectations that compare runs (`minus_policy`), now that every run is done,
/// adding their failures to the outcomes.
pub fn cross_check(outcomes: &mut [JobOutcome]) {
    let jobs: Vec<Job> = outcomes.iter().map(|o| o.job.clone()).collect();
    let mut found: Vec<(usize, String)> = Vec::new();
    for (index, outcome) in outcomes.iter().enumerate() {
        let Some(report) = &outcome.report else {
            continue;
        };
        for expect in outcome.job.cross_run_expectations() {
            let reference = expect
                .reference_policy(&outcome.job.config.policy)
                .and_then(|policy| {
                    find_run(
                        &jobs,
                        &outcome.job.config.name,
                        &policy,
                        &outcome.job.config.transfer,
                    )
                })
                .and_then(|at| outcomes[at].report.as_ref());
            if let Err(failure) = check_expect(expect, report, reference) {
                found.push((
                    index,
                    format!(
                        "{}:{}: {failure}",
                        outcome.job.config.path.display(),
                        expect.line
                    ),
                ));
            }
        }
    }
    for (index, failure) in found {
        outcomes[index].failures.push(failure);
    }
}

/// Checks what every scenario must show, whatever its expectations: no set's subtree usage
/// above its limit in any snapshot; in `final`, every set back at zero and as many free frames
/// as in `start`.
pub fn invariant_failures(report: &Report) -> Vec<String> {
    let mut failures = Vec::new();
    for snapshot in &report.snapshots {
        for set in &snapshot.charge_sets {
            let subtree = set.extra.get("subtree_bytes").and_then(|v| v.as_u64());
            if let (Some(limit), Some(subtree)) = (set.limit_bytes, subtree) {
                if subtree > limit {
                    failures.push(format!(
                        "snapshot `{}`: set `{}` uses {subtree} bytes, over its limit of {limit}",
                        snapshot.label, set.name
                    ));
                }
            }
        }
    }
    let start = report.snapshots.first().filter(|s| s.label == "start");
    let last = report.snapshots.last().filter(|s| s.label == "final");
    if let Some(last) = last {
        for set in &last.charge_sets {
            let total = set.current.anon
                + set.current.pagetables
                + set.current.kernel
                + set.current.msgbuf
                + set.current.cow;
            if total != 0 {
                failures.push(format!(
                    "snapshot `final`: set `{}` still pays {total} bytes; every charge must be returned",
                    set.name
                ));
            }
        }
        if let Some(start) = start {
            if start.frames.free != last.frames.free {
                failures.push(format!(
                    "free frames: {} in `start` but {} in `final`",
                    start.frames.free, last.frames.free
                ));
            }
        }
    }
    failures
}

/// Console lines a user program prints when one of its own checks fails (`user::check!`) or
/// it panics: `[domain] CHECK FAILED: …` / `[domain] panic: …`.
pub fn program_failures(console: &str) -> Vec<String> {
    console
        .lines()
        .filter(|line| {
            let Some((name, rest)) = line.strip_prefix('[').and_then(|l| l.split_once("] ")) else {
                return false;
            };
            // Domain names are [a-z0-9_-]; kernel log tags such as `[ info]` are not.
            let is_domain = !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            is_domain && (rest.starts_with("CHECK FAILED") || rest.starts_with("panic:"))
        })
        .map(|line| format!("a program's own check failed: {line}"))
        .collect()
}

/// Why a run failed its test (empty = it passed).
pub fn check(job: &Job, result: &RunResult) -> Vec<String> {
    if let Some(text) = &job.config.run.expect_failure {
        return check_expected_failure(text, result);
    }
    // The run's own problems include failed program checks and the invariants (limits held,
    // teardown complete), judged by `session::run_config` for every run.
    let mut failures = result.problems.clone();
    if let Some(report) = &result.report {
        let labels: Vec<&str> = report.snapshots.iter().map(|s| s.label.as_str()).collect();
        if labels.first().is_some_and(|first| *first != "start") {
            failures.push(format!(
                "the first snapshot is `{}`, not `start`",
                labels[0]
            ));
        }
        if labels.last().is_some_and(|last| *last != "final") {
            failures.push(format!(
                "the last snapshot is `{}`, not `final`",
                labels[labels.len() - 1]
            ));
        }
        for expect in &job.config.console_expects {
            if expect.applies(&job.config.conditions())
                && !result.outcome.console.contains(&expect.contains)
            {
                failures.push(format!(
                    "{}:{}: expected the console to contain {:?}; it does not",
                    job.config.path.display(),
                    expect.line,
                    expect.contains
                ));
            }
        }
        // Expectations that compare runs wait for [`cross_check`].
        for expect in job.own_expectations() {
            {
                if let Err(failure) = check_expect(expect, report, None) {
                    failures.push(format!(
                        "{}:{}: {failure}",
                        job.config.path.display(),
                        expect.line
                    ));
                }
            }
        }
    }
    failures
}

/// A run expected to fail passes when it failed without hanging — QEMU exited non-zero with
/// `text` on the console or among the host's problems, or QEMU exited 0 but the host judged
/// the run failed (a program's own check, a leak) for a reason containing `text`.
fn check_expected_failure(text: &str, result: &RunResult) -> Vec<String> {
    let mut failures = Vec::new();
    match result.outcome.ending {
        Ending::Exited(code) if code != 0 => {}
        // The kernel ended well but the host judged the run failed: the reason must be the
        // host's (a program's check, a leak), not just text on the console.
        Ending::Exited(_) if result.problems.iter().any(|p| p.contains(text)) => {}
        Ending::Exited(_) => failures.push(
            "expected the run to fail, but QEMU exited with status 0 and the run passed"
                .to_string(),
        ),
        Ending::Killed => failures.push("expected a boot failure, but QEMU was killed".to_string()),
        Ending::TimedOut => {
            failures.push("expected a boot failure, but the run timed out (a hang)".to_string())
        }
    }
    let in_problems = result.problems.iter().any(|p| p.contains(text));
    if !result.outcome.console.contains(text) && !in_problems {
        failures.push(format!(
            "expected the console or the run's problems to contain {text:?}; they do not"
        ));
    }
    failures
}

/// Checks one expectation against a report: `Err` says what was expected and what was found.
/// `reference` is the report of the run an expectation with `minus_policy` subtracts.
pub fn check_expect(
    expect: &Expect,
    report: &Report,
    reference: Option<&Report>,
) -> Result<(), String> {
    let mut place = format!("snapshot `{}`", expect.snapshot);
    if let Some(minus) = &expect.minus_snapshot {
        place.push_str(&format!(" minus snapshot `{minus}`"));
    }
    let subject = match &expect.subject {
        Subject::ChargeSet(name) => format!("set `{name}`"),
        Subject::Domain(name) => format!("domain `{name}`"),
    };
    place.push_str(&format!(", {subject}, `{}`", expect.field));
    let mut actual = measure(expect, report)?;
    if !expect.minus_policy.is_empty() {
        let policies: Vec<String> = expect
            .minus_policy
            .iter()
            .map(|(key, name)| format!("{key}={name}"))
            .collect();
        let policies = policies.join(" ");
        place.push_str(&format!(" minus the run with {policies}"));
        let reference =
            reference.ok_or_else(|| format!("{place}: the run with {policies} has no report"))?;
        let base = measure(expect, reference)
            .map_err(|error| format!("in the run with {policies}: {error}"))?;
        actual = difference(&actual, &base).ok_or_else(|| {
            format!("{place}: cannot subtract {base} from {actual}: not integers")
        })?;
    }
    let as_integer = actual.as_i64();
    let holds = match &expect.check {
        Check::Equals(Expected::Integer(n)) => as_integer == Some(*n),
        Check::Equals(Expected::Text(text)) => actual.as_str() == Some(text.as_str()),
        Check::Equals(Expected::Boolean(flag)) => actual.as_bool() == Some(*flag),
        Check::AtMost(n) => as_integer.is_some_and(|a| a <= *n),
        Check::AtLeast(n) => as_integer.is_some_and(|a| a >= *n),
    };
    if holds {
        return Ok(());
    }
    let expected = match &expect.check {
        Check::Equals(Expected::Integer(n)) => bytes(*n),
        Check::Equals(Expected::Text(text)) => format!("{text:?}"),
        Check::Equals(Expected::Boolean(flag)) => flag.to_string(),
        Check::AtMost(n) => format!("at most {}", bytes(*n)),
        Check::AtLeast(n) => format!("at least {}", bytes(*n)),
    };
    let got = match as_integer {
        Some(n) => bytes(n),
        None => actual.to_string(),
    };
    Err(format!("{place}: expected {expected}, got {got}"))
}

/// The expectation's figure in one report: the field at its snapshot, minus the field at
/// `minus_snapshot` when it has one.
fn measure(expect: &Expect, report: &Report) -> Result<Value, String> {
    let value = field_value(expect, report, &expect.snapshot)?;
    match &expect.minus_snapshot {
        None => Ok(value),
        Some(minus) => {
            let base = field_value(expect, report, minus)?;
            difference(&value, &base).ok_or_else(|| {
                format!(
                    "`{}` is not an integer in snapshots `{}` and `{minus}`",
                    expect.field, expect.snapshot
                )
            })
        }
    }
}

fn difference(value: &Value, base: &Value) -> Option<Value> {
    value.as_i64()?.checked_sub(base.as_i64()?).map(Value::from)
}

/// The field of the expectation's subject in snapshot `label` of `report`.
fn field_value(expect: &Expect, report: &Report, label: &str) -> Result<Value, String> {
    let snapshot = report.snapshot(label).ok_or_else(|| {
        let labels: Vec<&str> = report.snapshots.iter().map(|s| s.label.as_str()).collect();
        format!(
            "no snapshot `{label}` in the report (labels: {})",
            labels.join(", ")
        )
    })?;
    let (what, object) = match &expect.subject {
        Subject::ChargeSet(name) => (
            format!("set `{name}`"),
            snapshot
                .charge_set(name)
                .map(|set| serde_json::to_value(set).unwrap_or(Value::Null)),
        ),
        Subject::Domain(name) => (
            format!("domain `{name}`"),
            snapshot
                .domain(name)
                .map(|domain| serde_json::to_value(domain).unwrap_or(Value::Null)),
        ),
    };
    let object = object.ok_or_else(|| format!("snapshot `{label}` has no {what}"))?;
    let segments: Vec<&str> = expect.field.split('.').collect();
    let mut found = Some(&object);
    for segment in &segments {
        found = found.and_then(|value| value.get(segment));
    }
    match (found, &segments[..]) {
        (Some(value), _) => Ok(value.clone()),
        // `KIND_MAP.total` the report does not give itself: the sum over the kinds.
        (None, [map, "total"]) if object.get(map).is_some_and(Value::is_object) => {
            let sum: u64 = KINDS
                .iter()
                .filter_map(|kind| object[map].get(kind).and_then(Value::as_u64))
                .sum();
            Ok(Value::from(sum))
        }
        // A causer absent from `paid_for` is paid nothing for.
        (None, ["paid_for", _]) => Ok(Value::from(0)),
        // `caused.DOMAIN.total`, and a causer absent from `caused`: as for `paid_for`.
        (None, ["caused", causer, "total"]) => Ok(Value::from(
            object["caused"]
                .get(causer)
                .map(|kinds| {
                    KINDS
                        .iter()
                        .filter_map(|kind| kinds.get(kind).and_then(Value::as_u64))
                        .sum::<u64>()
                })
                .unwrap_or(0),
        )),
        (None, ["caused", _, _]) if object.get("caused").is_some() => Ok(Value::from(0)),
        (None, _) => Err(format!(
            "snapshot `{label}`, {what}: no field `{}` in the report",
            expect.field
        )),
    }
}

/// `65536 (64 KiB)`, `-98304 (-96 KiB)`; small numbers (counts) stand alone.
fn bytes(n: i64) -> String {
    match n.unsigned_abs() {
        magnitude if magnitude >= 1024 => {
            let sign = if n < 0 { "-" } else { "" };
            format!("{n} ({sign}{})", human(magnitude))
        }
        _ => n.to_string(),
    }
}

/// The outcome of one job.
#[derive(Debug)]
pub struct JobOutcome {
    /// The job.
    pub job: Job,
    /// Why it failed; empty when it passed.
    pub failures: Vec<String>,
    /// The run's report, when it produced one.
    pub report: Option<Report>,
    /// Seconds it took.
    pub seconds: f64,
}

impl JobOutcome {
    /// `PASS name [combo] (1.2 s)` or `FAIL name [combo]: why; why (see DIR/console.log)`.
    pub fn line(&self) -> String {
        if self.failures.is_empty() {
            format!("PASS {} ({:.1} s)", self.job.label(), self.seconds)
        } else {
            format!(
                "FAIL {}: {} (see {})",
                self.job.label(),
                self.failures.join("; "),
                self.job.out_dir.join("console.log").display()
            )
        }
    }
}

/// Runs every job on up to `workers` threads, calling `on_done` as each finishes (in
/// completion order). Returns the outcomes in job order.
pub fn run_jobs(
    jobs: Vec<Job>,
    base: &RunOptions,
    workers: usize,
    mut on_done: impl FnMut(&JobOutcome),
) -> Vec<JobOutcome> {
    let count = jobs.len();
    let queue: Arc<Mutex<VecDeque<(usize, Job)>>> =
        Arc::new(Mutex::new(jobs.into_iter().enumerate().collect()));
    let (sender, receiver) = mpsc::channel::<(usize, JobOutcome)>();
    let mut handles = Vec::new();
    for _ in 0..workers.clamp(1, count.max(1)) {
        let queue = Arc::clone(&queue);
        let sender = sender.clone();
        let base = base.clone();
        handles.push(thread::spawn(move || loop {
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
            let Some((index, job)) = next else { break };
            let options = RunOptions {
                out_dir: job.out_dir.clone(),
                echo: false,
                gdb: false,
                ..base.clone()
            };
            let started = std::time::Instant::now();
            let (failures, report) = match session::run_config(&job.config, &options) {
                Ok(result) => (check(&job, &result), result.report),
                Err(failure) => (vec![failure.message], None),
            };
            let outcome = JobOutcome {
                job,
                failures,
                report,
                seconds: started.elapsed().as_secs_f64(),
            };
            crate::shard::save(&outcome);
            if sender.send((index, outcome)).is_err() {
                break;
            }
        }));
    }
    drop(sender);
    let mut outcomes: Vec<Option<JobOutcome>> = (0..count).map(|_| None).collect();
    for (index, outcome) in receiver {
        on_done(&outcome);
        outcomes[index] = Some(outcome);
    }
    for handle in handles {
        let _ = handle.join();
    }
    outcomes.into_iter().flatten().collect()
}

/// Whether every run passed.
pub fn all_passed(outcomes: &[JobOutcome]) -> bool {
    outcomes.iter().all(|o| o.failures.is_empty())
}

/// The closing line: `N passed, M failed`.
pub fn closing_line(outcomes: &[JobOutcome]) -> String {
    let failed = outcomes.iter().filter(|o| !o.failures.is_empty()).count();
    format!("{} passed, {failed} failed", outcomes.len() - failed)
}

#[cfg(test)]
mod invariant_tests {
    use super::*;

    #[test]
    fn failed_program_checks_are_found_and_kernel_lines_are_not() {
        let console = "[ info] CHECK FAILED is just text here\n[child] CHECK FAILED: page 3\n[hog] panic: oops\n[a] fine\n";
        let found = program_failures(console);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("[child] CHECK FAILED: page 3"));
        assert!(found[1].contains("[hog] panic: oops"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::tests::{fake_qemu, scratch};
    use crate::report::{parse_console, tests::TRANSCRIPT};

    fn load(text: &str) -> Config {
        Config::from_text(
            Path::new("configs/cow-fork.toml"),
            text,
            &Ok(vec!["cow_parent".into(), "cow_child".into()]),
            &PolicyOverrides::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    const SETS: &str = r#"
[[charge_set]]
name = "parent"
limit = "1 MiB"
[[charge_set]]
name = "child"
parent = "parent"
[[domain]]
name = "parent"
program = "cow_parent"
charge_set = "parent"
[[domain]]
name = "child"
program = "cow_child"
charge_set = "child"
"#;

    #[test]
    fn combinations_cover_every_name_of_every_varied_key() {
        assert_eq!(combinations(&[], &[]), vec![Vec::new()]);
        let combos = combinations(&["cow".into(), "release".into()], &[]);
        let cows = registry::valid_names("cow").unwrap();
        assert_eq!(combos.len(), cows.len() * 2);
        assert_eq!(combo_dir(&combos[0]), "cow-writer_release-migrate");
        assert_eq!(
            combo_dir(&combos[combos.len() - 1]),
            format!("cow-{}_release-stay", cows[cows.len() - 1])
        );
        assert_eq!(combo_dir(&[]), "default");
        let values = [(
            "cow".to_string(),
            vec!["split".to_string(), "writer".to_string()],
        )];
        let combos = combinations(&["cow".into(), "release".into()], &values);
        let dirs: Vec<String> = combos.iter().map(|c| combo_dir(c)).collect();
        assert_eq!(
            dirs,
            [
                "cow-split_release-migrate",
                "cow-split_release-stay",
                "cow-writer_release-migrate",
                "cow-writer_release-stay"
            ]
        );
    }

    #[test]
    fn the_plan_applies_each_combination() {
        let config = load(&format!(
            "[policy]\nmsgbuf = \"kernel\"\n[experiment]\nvary = [\"cow\"]\n{SETS}"
        ));
        let jobs = plan(&[config], Path::new("results/test"));
        assert_eq!(jobs.len(), registry::valid_names("cow").unwrap().len());
        assert_eq!(jobs[1].config.policy_name("cow"), Some("holder"));
        assert_eq!(jobs[1].config.policy_name("msgbuf"), Some("kernel"));
        assert_eq!(
            jobs[1].out_dir,
            Path::new("results/test/cow-fork/cow-holder")
        );
        assert_eq!(jobs[1].label(), "cow-fork [cow=holder]");
    }

    fn expect(text: &str) -> Expect {
        load(&format!("{SETS}[[expect]]\n{text}\n"))
            .expects
            .remove(0)
    }

    #[test]
    fn expectations_hold_or_say_expected_and_actual() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let holds = |text: &str| check_expect(&expect(text), &report, None);
        assert_eq!(
            holds("snapshot = \"shared\"\nset = \"parent\"\nfield = \"current.cow\"\npages = 4"),
            Ok(())
        );
        assert_eq!(holds("snapshot = \"shared\"\nset = \"parent\"\nfield = \"paid_for.child\"\nequals = 16384"), Ok(()));
        assert_eq!(
            holds("snapshot = \"final\"\nset = \"child\"\nfield = \"paid_for.parent\"\nequals = 0"),
            Ok(())
        );
        assert_eq!(
            holds(
                "snapshot = \"final\"\ndomain = \"parent\"\nfield = \"state\"\nequals = \"exited\""
            ),
            Ok(())
        );
        assert_eq!(holds("snapshot = \"shared\"\nset = \"kernel\"\nfield = \"current.kernel\"\nat_most = 32768"), Ok(()));
        assert_eq!(
            holds("snapshot = \"shared\"\nset = \"parent\"\nfield = \"denied.cow\"\nat_least = 1"),
            Ok(())
        );

        let message = holds(
            "snapshot = \"shared\"\nset = \"parent\"\nfield = \"current.cow\"\nequals = 65536",
        )
        .unwrap_err();
        assert_eq!(message, "snapshot `shared`, set `parent`, `current.cow`: expected 65536 (64 KiB), got 16384 (16 KiB)");
        let message = holds(
            "snapshot = \"final\"\ndomain = \"child\"\nfield = \"state\"\nequals = \"exited\"",
        )
        .unwrap_err();
        assert!(
            message.ends_with("expected \"exited\", got \"stopped\""),
            "{message}"
        );
        let message =
            holds("snapshot = \"forked\"\nset = \"parent\"\nfield = \"current.cow\"\nequals = 0")
                .unwrap_err();
        assert!(
            message.contains("no snapshot `forked`") && message.contains("start, shared, final"),
            "{message}"
        );
        let message =
            holds("snapshot = \"start\"\nset = \"parent\"\nfield = \"current.cow\"\nequals = 0")
                .unwrap_err();
        assert!(message.contains("has no set `parent`"), "{message}");
        let message = holds(
            "snapshot = \"shared\"\nset = \"parent\"\nfield = \"current.anon\"\nat_most = 4096",
        )
        .unwrap_err();
        assert!(
            message.ends_with("expected at most 4096 (4 KiB), got 40960 (40 KiB)"),
            "{message}"
        );
    }

    #[test]
    fn totals_and_differences_between_snapshots() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let holds = |text: &str| check_expect(&expect(text), &report, None);
        assert_eq!(holds("snapshot = \"shared\"\nset = \"parent\"\nfield = \"current.total\"\nequals = 69632"), Ok(()));
        // The sum of the per-kind peaks.
        assert_eq!(
            holds(
                "snapshot = \"final\"\nset = \"parent\"\nfield = \"peak.total\"\nat_most = 69632"
            ),
            Ok(())
        );
        assert_eq!(holds("snapshot = \"shared\"\nminus_snapshot = \"final\"\nset = \"parent\"\nfield = \"current.anon\"\npages = 10"), Ok(()));
        assert_eq!(holds("snapshot = \"final\"\nminus_snapshot = \"shared\"\nset = \"parent\"\nfield = \"current.anon\"\npages = -10"), Ok(()));
        let message = holds("snapshot = \"final\"\nminus_snapshot = \"shared\"\nset = \"parent\"\nfield = \"current.anon\"\nequals = 0").unwrap_err();
        assert_eq!(message, "snapshot `final` minus snapshot `shared`, set `parent`, `current.anon`: expected 0, got -40960 (-40 KiB)");
        let message = holds("snapshot = \"shared\"\nminus_snapshot = \"start\"\nset = \"parent\"\nfield = \"current.anon\"\nequals = 0").unwrap_err();
        assert!(
            message.contains("snapshot `start` has no set `parent`"),
            "{message}"
        );
        let message = holds("snapshot = \"shared\"\nset = \"parent\"\nfield = \"current.total\"\nminus_policy = { cow = \"writer\" }\nequals = 0").unwrap_err();
        assert!(
            message.ends_with("the run with cow=writer has no report"),
            "{message}"
        );
    }

    #[test]
    fn a_varied_preset_plans_one_run_per_preset_and_its_expectations_follow_it() {
        let text = format!(
            "[experiment]\nvary = [\"preset\"]\n{SETS}\
             [[expect]]\nwhen = {{ preset = \"sel4\" }}\nsnapshot = \"shared\"\nset = \"parent\"\nfield = \"current.cow\"\npages = 16\n\
             [[expect]]\nwhen = {{ preset = \"zircon\" }}\nsnapshot = \"shared\"\nset = \"parent\"\nfield = \"current.cow\"\nminus_policy = {{ cow = \"writer\" }}\nequals = 0\n"
        );
        let jobs = plan(&[load(&text)], Path::new("out"));
        let labels: Vec<String> = jobs.iter().map(Job::label).collect();
        // One run per preset, plus zircon's policies with cow=writer (and zircon's transfer
        // mode) for the second expectation.
        assert_eq!(
            labels,
            [
                "cow-fork [preset=linux-memcg]",
                "cow-fork [preset=sel4]",
                "cow-fork [preset=keykos]",
                "cow-fork [preset=zircon]",
                "cow-fork [msgbuf=kernel move=migrate transfer=two-stage]",
            ]
        );
        assert_eq!(jobs[1].out_dir, Path::new("out/cow-fork/preset-sel4"));
        assert_eq!(jobs[1].config.preset.as_deref(), Some("sel4"));
        assert_eq!(jobs[1].config.policy_name("cow"), Some("holder"));
        assert_eq!(jobs[3].config.transfer, "two-stage");
        assert_eq!(jobs[4].config.transfer, "two-stage");
        assert_eq!(jobs[4].config.policy_name("cow"), Some("writer"));
        assert_eq!(jobs[4].config.policy_name("kernel"), Some("self"));
        let own: Vec<usize> = jobs.iter().map(|j| j.own_expectations().count()).collect();
        assert_eq!(own, [0, 1, 0, 0, 0]);
        let cross: Vec<usize> = jobs
            .iter()
            .map(|j| j.cross_run_expectations().count())
            .collect();
        assert_eq!(cross, [0, 0, 0, 1, 0]);
    }

    #[test]
    fn runs_that_expectations_subtract_are_planned_and_compared() {
        let text = format!(
            "[experiment]\nvary = [\"cow\"]\n{SETS}\
             [[expect]]\nwhen = {{ cow = \"holder\" }}\nsnapshot = \"shared\"\nset = \"parent\"\nfield = \"current.cow\"\nminus_policy = {{ cow = \"writer\" }}\npages = 4\n\
             [[expect]]\nwhen = {{ cow = \"split\" }}\nsnapshot = \"shared\"\nset = \"parent\"\nfield = \"current.cow\"\nminus_policy = {{ release = \"stay\" }}\nequals = 0\n"
        );
        let jobs = plan(&[load(&text)], Path::new("out"));
        // Every cow policy, plus cow=split release=stay for the second expectation.
        let cows = registry::valid_names("cow").unwrap().len();
        assert_eq!(jobs.len(), cows + 1);
        assert_eq!(jobs[cows].label(), "cow-fork [cow=split release=stay]");
        assert_eq!(
            jobs[cows].out_dir,
            Path::new("out/cow-fork/cow-split_release-stay")
        );

        let report = parse_console(TRANSCRIPT).unwrap();
        let mut writer_report = report.clone();
        writer_report.snapshots[1].charge_sets[1].current.cow = 0;
        let mut outcomes: Vec<JobOutcome> = jobs
            .into_iter()
            .enumerate()
            .map(|(index, job)| JobOutcome {
                job,
                failures: Vec::new(),
                report: Some(if index == 0 {
                    writer_report.clone()
                } else {
                    report.clone()
                }),
                seconds: 0.0,
            })
            .collect();
        cross_check(&mut outcomes);
        // holder: 16384 - 0 = 4 pages, holds; split: 16384 - 16384 = 0, holds.
        let failures: Vec<&Vec<String>> = outcomes.iter().map(|o| &o.failures).collect();
        assert!(failures.iter().all(|f| f.is_empty()), "{failures:?}");

        outcomes[1].report = Some(writer_report);
        for outcome in &mut outcomes {
            outcome.failures.clear();
        }
        cross_check(&mut outcomes);
        assert_eq!(
            outcomes[1].failures,
            ["configs/cow-fork.toml:18: snapshot `shared`, set `parent`, `current.cow` minus the run with cow=writer: expected 16384 (16 KiB), got 0"]
        );
    }

    #[test]
    fn expectations_apply_only_under_their_policies() {
        let text = format!("[experiment]\nvary = [\"cow\"]\n{SETS}[[expect]]\nwhen = {{ cow = \"writer\" }}\nsnapshot = \"shared\"\nset = \"parent\"\nfield = \"current.cow\"\nequals = 0\n");
        let jobs = plan(&[load(&text)], Path::new("out"));
        let applies: Vec<bool> = jobs
            .iter()
            .map(|j| j.config.expects[0].applies(&j.config.policy))
            .collect();
        assert!(applies[0] && applies[1..].iter().all(|a| !a), "{applies:?}");
        assert_eq!(applies.len(), registry::valid_names("cow").unwrap().len());
    }

    /// [`TRANSCRIPT`] with every charge returned by `final` (the kernel set's 8 frames freed),
    /// as the scenario invariants require of a real run.
    fn balanced_transcript() -> String {
        TRANSCRIPT
            .lines()
            .map(|line| {
                if line.starts_with(r#"@tally/1 snapshot {"label":"final""#) {
                    line.replacen(r#""in_use":8}"#, r#""in_use":0}"#, 1)
                        .replacen(
                            r#""charged_bytes":32768,"in_use_bytes":32768"#,
                            r#""charged_bytes":0,"in_use_bytes":0"#,
                            1,
                        )
                        .replacen(r#""kernel":32768,"msgbuf""#, r#""kernel":0,"msgbuf""#, 1)
                } else {
                    line.to_string()
                }
            })
            .map(|line| line + "\n")
            .collect()
    }

    /// The whole pool against a fake QEMU that prints the transcript with the policy names the
    /// boot arguments asked for.
    #[test]
    fn the_pool_runs_every_combination_and_checks_each() {
        let dir = scratch("testing-pool");
        std::fs::write(dir.join("transcript"), balanced_transcript()).unwrap();
        // The fake kernel reports the cow policy it was booted with, so expectations can tell
        // the runs apart.
        let qemu = fake_qemu(
            &dir,
            "qemu",
            &format!(
                "for a in \"$@\"; do case \"$a\" in *cow=*) cow=$(echo \"$a\" | sed 's/.*cow=\\([a-z]*\\).*/\\1/');; esac; done\n\
                 sed \"s/\\\"cow\\\":\\\"holder\\\"/\\\"cow\\\":\\\"$cow\\\"/\" '{}'",
                dir.join("transcript").display()
            ),
        );
        let kernel = dir.join("tally.bin");
        std::fs::write(&kernel, "image").unwrap();
        let text = format!("[experiment]\nvary = [\"cow\"]\nvalues = {{ cow = [\"writer\", \"holder\", \"split\"] }}\n{SETS}[[expect]]\nwhen = {{ cow = \"split\" }}\nsnapshot = \"shared\"\nset = \"parent\"\nfield = \"current.cow\"\nequals = 0\n");
        let jobs = plan(&[load(&text)], &dir.join("results"));
        let base = RunOptions {
            kernel,
            mem_bytes: None,
            cpu: "cortex-a72".into(),
            timeout_seconds: Some(20),
            gdb: false,
            out_dir: dir.clone(),
            echo: false,
        };
        let _guard = crate::session::tests::QEMU_ENV_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        std::env::set_var(crate::qemu::QEMU_ENV, &qemu);
        let mut seen = 0;
        let outcomes = run_jobs(jobs, &base, 2, |_| seen += 1);
        std::env::remove_var(crate::qemu::QEMU_ENV);
        assert_eq!(seen, 3);
        let lines: Vec<String> = outcomes.iter().map(JobOutcome::line).collect();
        assert!(
            lines[0].starts_with("PASS cow-fork [cow=writer]"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("PASS cow-fork [cow=holder]"),
            "{lines:?}"
        );
        assert!(lines[2].starts_with("FAIL cow-fork [cow=split]: configs/cow-fork.toml:19: snapshot `shared`, set `parent`, `current.cow`: expected 0, got 16384 (16 KiB)"), "{lines:?}");
        assert_eq!(closing_line(&outcomes), "2 passed, 1 failed");
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("results/cow-fork/cow-split/report.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(report["policy"]["cow"], "split");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_expected_boot_failure_passes_only_when_it_fails_with_the_text() {
        let dir = scratch("testing-expect-failure");
        let kernel = dir.join("tally.bin");
        std::fs::write(&kernel, "image").unwrap();
        let config = load(
            "[run]\nexpect_failure = \"bad boot config\"\nappend_bootargs = \"set=x,nowhere,-\"\n",
        );
        let job = plan(&[config], &dir.join("results")).remove(0);
        let base = RunOptions {
            kernel,
            mem_bytes: None,
            cpu: "max".into(),
            timeout_seconds: Some(5),
            gdb: false,
            out_dir: job.out_dir.clone(),
            echo: false,
        };
        let _guard = crate::session::tests::QEMU_ENV_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (script, passes) in [
            (
                "echo 'tally: bad boot config: set x: undefined parent nowhere'; exit 1",
                true,
            ),
            ("echo 'tally: something else'; exit 1", false),
            ("echo 'tally: bad boot config: x'; exit 0", false),
        ] {
            let qemu = fake_qemu(&dir, "qemu", script);
            std::env::set_var(crate::qemu::QEMU_ENV, &qemu);
            let result = session::run_config(&job.config, &base).unwrap();
            assert_eq!(check(&job, &result).is_empty(), passes, "{script}");
        }
        std::env::remove_var(crate::qemu::QEMU_ENV);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
