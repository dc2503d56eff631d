//! One run of one config: encode the boot arguments, boot QEMU, stream the console, collect
//! the framed records, write `OUT/{console.log, report.json, report.csv, summary.md,
//! charges.svg}` (and `trace.txt`, `qemu-stderr.log` when there is something to put in them),
//! and judge the run.
//!
//! A run passes only when QEMU exited 0, an `end` record with status `ok` arrived, there is at
//! least one snapshot, and every snapshot's books balance (the kernel's check and the host's
//! recount).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bootargs;
use crate::config::{Config, DEFAULT_MEM_BYTES};
use crate::exit::{self, Failure};
use crate::qemu::{self, Ending, Launch, Outcome, Stream};
use crate::render;
use crate::report::{self, HostRun, Report};
use crate::size;

/// Files a run writes into its output directory (removed first, so none is stale).
pub const OUTPUT_FILES: [&str; 9] = [
    "console.log",
    "qemu-stderr.log",
    "report.json",
    "report.csv",
    "attribution.csv",
    "domains.csv",
    "summary.md",
    "charges.svg",
    "trace.txt",
];

/// How many console lines a timeout or failure message shows.
pub const TAIL_LINES: usize = 20;

/// Settings from the command line that override the config's `[run]` table.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The kernel image.
    pub kernel: PathBuf,
    /// Guest RAM, overriding `run.mem`.
    pub mem_bytes: Option<u64>,
    /// QEMU CPU model.
    pub cpu: String,
    /// Host timeout, overriding `run.timeout_seconds`.
    pub timeout_seconds: Option<u64>,
    /// Wait for a debugger; no timeout.
    pub gdb: bool,
    /// Where the files go.
    pub out_dir: PathBuf,
    /// Print the console to stdout as it arrives (framed lines excepted).
    pub echo: bool,
}

/// What a run produced and how it was judged.
#[derive(Debug)]
pub struct RunResult {
    /// QEMU's ending and output.
    pub outcome: Outcome,
    /// The report, when the console had one.
    pub report: Option<Report>,
    /// Why the run failed; empty when it passed.
    pub problems: Vec<String>,
    /// The exit status this run calls for (0, 1 or 3).
    pub status: u8,
    /// How long the host allowed.
    pub timeout_seconds: Option<u64>,
}

impl RunResult {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.status == exit::OK
    }
}

/// Checks everything that can stop a run before QEMU starts: boot arguments, RAM size, the
/// kernel image and QEMU itself. Returns the QEMU binary and the launch.
pub fn prepare(config: &Config, options: &RunOptions) -> Result<(PathBuf, Launch), Failure> {
    let bootargs = bootargs::encode(config).map_err(|error| {
        Failure::config(format!(
            "{}{}: {error}",
            config.path.display(),
            error.line.map(|l| format!(":{l}")).unwrap_or_default()
        ))
    })?;
    let mem_bytes = options
        .mem_bytes
        .or(config.run.mem_bytes)
        .unwrap_or(DEFAULT_MEM_BYTES);
    let mem = size::qemu_mem(mem_bytes)
        .ok_or_else(|| Failure::config(format!("{}, not {mem_bytes} bytes", size::MEM_RULE)))?;
    if !options.kernel.is_file() {
        return Err(Failure::environment(format!(
            "kernel image {} not found: build it with `make image` (or use `make run`)",
            options.kernel.display()
        )));
    }
    let binary = qemu::find_qemu()?;
    let timeout_seconds = timeout_seconds(config, options);
    Ok((
        binary,
        Launch {
            kernel: options.kernel.clone(),
            bootargs,
            mem,
            cpu: options.cpu.clone(),
            gdb: options.gdb,
            timeout: timeout_seconds.map(Duration::from_secs),
            extra: Vec::new(),
        },
    ))
}

fn timeout_seconds(config: &Config, options: &RunOptions) -> Option<u64> {
    (!options.gdb).then(|| {
        options
            .timeout_seconds
            .unwrap_or(config.run.timeout_seconds)
    })
}

/// Runs `config` once. `Err` only for problems found before QEMU started (config, environment);
/// a failed or timed-out run is an `Ok` result with its problems and status.
pub fn run_config(config: &Config, options: &RunOptions) -> Result<RunResult, Failure> {
    run_config_with(config, options, &[])
}

/// [`run_config`] with `extra` appended to QEMU's command line (`tally profile`'s plugin).
pub fn run_config_with(
    config: &Config,
    options: &RunOptions,
    extra: &[String],
) -> Result<RunResult, Failure> {
    let (binary, mut launch) = prepare(config, options)?;
    launch.extra = extra.to_vec();
    prepare_out_dir(&options.out_dir)?;
    if launch.gdb {
        eprintln!(
            "tally: QEMU waits for a debugger on :1234; attach with:\n  gdb-multiarch build/tally.elf -ex 'target remote :1234' -ex 'hbreak *0x40080000' -ex continue\n  (stops at the kernel's first instruction, MMU off, at its physical address; once the MMU is on,\n  symbols such as `break kernel_entry` and `break exception_dispatch` work as usual)"
        );
    }
    let echo = options.echo;
    let outcome = qemu::run(&binary, &launch, |stream, line| match stream {
        Stream::Console if echo && !report::is_framed(line) => println!("{line}"),
        Stream::Qemu if echo => eprintln!("{line}"),
        _ => {}
    })?;
    let out = &options.out_dir;
    write(out, "console.log", &outcome.console)?;
    if !outcome.qemu_stderr.is_empty() {
        write(out, "qemu-stderr.log", &outcome.qemu_stderr)?;
    }

    let timeout_seconds = timeout_seconds(config, options);
    let mut problems = Vec::new();
    match outcome.ending {
        Ending::Exited(0) => {}
        Ending::Exited(code) => problems.push(format!(
            "QEMU exited with status {code} (1 = failure the kernel detected, 2 = kernel panic)"
        )),
        Ending::Killed => problems.push("QEMU was killed by a signal".to_string()),
        Ending::TimedOut => problems.push(format!(
            "timed out after {} s; QEMU was killed",
            timeout_seconds.unwrap_or_default()
        )),
    }
    let report = match report::parse_console(&outcome.console) {
        Ok(mut report) => {
            report.host = Some(HostRun {
                bootargs: launch.bootargs.clone(),
                kernel: launch.kernel.display().to_string(),
                cpu: launch.cpu.clone(),
                mem: launch.mem.clone(),
                qemu_exit_status: match outcome.ending {
                    Ending::Exited(code) => Some(code),
                    _ => None,
                },
                timed_out: outcome.ending == Ending::TimedOut,
                preset: config.preset.clone(),
            });
            if echo {
                for (record_type, _) in &report.unknown_records {
                    eprintln!("tally: note: kept a `{record_type}` record this tool does not know");
                }
            }
            problems.extend(judge(&report));
            problems.extend(crate::testing::program_failures(&outcome.console));
            problems.extend(crate::testing::invariant_failures(&report));
            write_report_files(&report, out)?;
            Some(report)
        }
        Err(error) => {
            problems.push(format!("no report: {error:#}"));
            None
        }
    };
    let status = if outcome.ending == Ending::TimedOut {
        exit::TIMEOUT
    } else if problems.is_empty() {
        exit::OK
    } else {
        exit::RUN_FAILED
    };
    Ok(RunResult {
        outcome,
        report,
        problems,
        status,
        timeout_seconds,
    })
}

/// What is wrong with a parsed report (empty = nothing).
pub fn judge(report: &Report) -> Vec<String> {
    let mut problems = Vec::new();
    if report.status != report::STATUS_OK {
        problems.push(match &report.reason {
            Some(reason) => format!("the kernel ended with status `{}`: {reason}", report.status),
            None => format!("the kernel ended with status `{}`", report.status),
        });
    }
    if report.snapshots.is_empty() {
        problems.push("the report has no snapshot".to_string());
    }
    problems.extend(report.conservation_problems());
    problems
}

fn prepare_out_dir(out: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(out).map_err(|error| {
        Failure::environment(format!("cannot create {}: {error}", out.display()))
    })?;
    for name in OUTPUT_FILES {
        let path = out.join(name);
        if path.exists() {
            std::fs::remove_file(&path).map_err(|error| {
                Failure::environment(format!("cannot remove stale {}: {error}", path.display()))
            })?;
        }
    }
    Ok(())
}

fn write(out: &Path, name: &str, contents: &str) -> Result<(), Failure> {
    let path = out.join(name);
    std::fs::write(&path, contents)
        .map_err(|error| Failure::environment(format!("cannot write {}: {error}", path.display())))
}

/// Writes `report.json`, `report.csv`, `summary.md`, `charges.svg` and (when the kernel traced)
/// `trace.txt` (one trace record per line) into `out`.
pub fn write_report_files(report: &Report, out: &Path) -> Result<(), Failure> {
    let json = serde_json::to_string_pretty(report)
        .map_err(|error| Failure::environment(format!("cannot encode report.json: {error}")))?;
    write(out, "report.json", &(json + "\n"))?;
    for (name, text) in render::csv_files(report) {
        write(out, &name, &text)?;
    }
    write(out, "summary.md", &render::summary_markdown(report))?;
    render::write_svg(report, &out.join("charges.svg")).map_err(Failure::environment)?;
    if !report.trace.is_empty() {
        let mut trace = report.trace.join("\n");
        trace.push('\n');
        write(out, "trace.txt", &trace)?;
    }
    Ok(())
}

/// The one-line verdict: `PASS: …` or `FAIL: …`, with the conservation result and QEMU's exit.
pub fn verdict_line(result: &RunResult) -> String {
    let snapshots = result.report.as_ref().map_or(0, |r| r.snapshots.len());
    let conservation = match &result.report {
        Some(report) if report.conservation_problems().is_empty() && snapshots > 0 => {
            if snapshots == 1 {
                "conservation ok in the one snapshot".to_string()
            } else {
                format!("conservation ok in all {snapshots} snapshots")
            }
        }
        Some(report) if snapshots > 0 => format!(
            "conservation FAILED in {} of {}",
            report
                .snapshots
                .iter()
                .filter(|s| !s.conservation_problems().is_empty())
                .count(),
            crate::words::count(snapshots, "snapshot")
        ),
        _ => "no snapshots".to_string(),
    };
    let ending = match result.outcome.ending {
        Ending::Exited(code) => format!("QEMU exit status {code}"),
        Ending::Killed => "QEMU killed by a signal".to_string(),
        Ending::TimedOut => format!(
            "timed out after {} s",
            result.timeout_seconds.unwrap_or_default()
        ),
    };
    let status = result.report.as_ref().map_or("no report".to_string(), |r| {
        format!("kernel status {}", r.status)
    });
    format!(
        "{}: {conservation}; {status}; {ending} ({:.1} s)",
        if result.passed() { "PASS" } else { "FAIL" },
        result.outcome.elapsed.as_secs_f64()
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::PolicyOverrides;
    use crate::qemu::tests::{fake_qemu, scratch};
    use crate::report::tests::TRANSCRIPT;

    /// `TALLY_QEMU` is process-wide; the tests that set it take turns.
    pub(crate) static QEMU_ENV_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn config(dir: &Path) -> Config {
        Config::from_text(
            &dir.join("cow-fork.toml"),
            "[run]\ntimeout_seconds = 5\n",
            &Ok(vec![]),
            &PolicyOverrides::default(),
        )
        .unwrap()
    }

    fn options(dir: &Path) -> RunOptions {
        let kernel = dir.join("tally.bin");
        std::fs::write(&kernel, b"image").unwrap();
        RunOptions {
            kernel,
            mem_bytes: None,
            cpu: "cortex-a72".into(),
            timeout_seconds: None,
            gdb: false,
            out_dir: dir.join("out"),
            echo: false,
        }
    }

    /// Runs with a fake QEMU that prints `console` and exits with `status`.
    fn run_fake(name: &str, console: &str, status: i32) -> (PathBuf, RunResult) {
        let dir = scratch(name);
        std::fs::write(dir.join("transcript"), console).unwrap();
        let qemu = fake_qemu(
            &dir,
            "qemu",
            &format!("cat '{}'; exit {status}", dir.join("transcript").display()),
        );
        let _guard = QEMU_ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        std::env::set_var(qemu::QEMU_ENV, &qemu);
        let result = run_config(&config(&dir), &options(&dir));
        std::env::remove_var(qemu::QEMU_ENV);
        (dir, result.unwrap())
    }

    #[test]
    fn a_good_run_writes_every_file_and_passes() {
        let (dir, result) = run_fake("session-good", TRANSCRIPT, 0);
        assert!(result.passed(), "{:?}", result.problems);
        let out = dir.join("out");
        for name in [
            "console.log",
            "report.json",
            "report.csv",
            "attribution.csv",
            "domains.csv",
            "summary.md",
            "charges.svg",
            "trace.txt",
        ] {
            assert!(out.join(name).is_file(), "{name}");
        }
        assert!(!out.join("qemu-stderr.log").exists());
        assert_eq!(
            std::fs::read_to_string(out.join("console.log")).unwrap(),
            TRANSCRIPT
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(json["schema"], "tally.report/1");
        assert_eq!(json["status"], "ok");
        assert_eq!(json["snapshots"].as_array().unwrap().len(), 3);
        assert!(json["host"]["bootargs"]
            .as_str()
            .unwrap()
            .starts_with("tally=1 config=cow-fork "));
        assert_eq!(json["host"]["qemu_exit_status"], 0);
        let verdict = verdict_line(&result);
        assert!(
            verdict.starts_with(
                "PASS: conservation ok in all 3 snapshots; kernel status ok; QEMU exit status 0"
            ),
            "{verdict}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_non_zero_exit_fails_the_run() {
        let (dir, result) = run_fake("session-exit", TRANSCRIPT, 1);
        assert_eq!(result.status, exit::RUN_FAILED);
        assert!(
            result.problems[0].contains("status 1"),
            "{:?}",
            result.problems
        );
        assert!(verdict_line(&result).starts_with("FAIL: "));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_conservation_check_fails_the_run() {
        let broken = TRANSCRIPT.replacen(
            r#""in_use_bytes":114688,"ok":true"#,
            r#""in_use_bytes":114688,"ok":false"#,
            1,
        );
        let (dir, result) = run_fake("session-conservation", &broken, 0);
        assert_eq!(result.status, exit::RUN_FAILED);
        assert!(
            result
                .problems
                .iter()
                .any(|p| p.contains("snapshot `shared`")),
            "{:?}",
            result.problems
        );
        assert!(verdict_line(&result).contains("conservation FAILED in 1 of 3 snapshots"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_end_or_an_error_end_fails_the_run() {
        let cut = TRANSCRIPT.split("@tally/1 end").next().unwrap().to_string();
        let (dir, result) = run_fake("session-cut", &cut, 0);
        assert_eq!(result.status, exit::RUN_FAILED);
        assert!(result.problems.iter().any(|p| p.contains("`incomplete`")));
        std::fs::remove_dir_all(&dir).unwrap();
        let (dir, result) = run_fake("session-no-report", "tally: bad boot config: x\n", 1);
        assert_eq!(result.status, exit::RUN_FAILED);
        assert!(result.report.is_none());
        assert!(result.problems.iter().any(|p| p.contains("no report")));
        assert!(!dir.join("out/report.json").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_kernel_or_qemu_is_an_environment_error() {
        let dir = scratch("session-env");
        let mut options = options(&dir);
        options.kernel = dir.join("missing.bin");
        let error = run_config(&config(&dir), &options).unwrap_err();
        assert_eq!(error.status, exit::ENVIRONMENT);
        assert!(error.message.contains("make image"), "{error}");

        let _guard = QEMU_ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        std::env::set_var(qemu::QEMU_ENV, dir.join("no-such-qemu"));
        let error = run_config(&config(&dir), &self::options(&dir)).unwrap_err();
        std::env::remove_var(qemu::QEMU_ENV);
        assert_eq!(error.status, exit::ENVIRONMENT);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_timeout_is_status_3_and_keeps_the_console() {
        let dir = scratch("session-timeout");
        let qemu = fake_qemu(
            &dir,
            "qemu",
            "echo booting; echo '@tally/1 run {\"config\":\"x\",\"policy\":{}}'; exec sleep 30",
        );
        let mut options = options(&dir);
        options.timeout_seconds = Some(1);
        let _guard = QEMU_ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        std::env::set_var(qemu::QEMU_ENV, &qemu);
        let result = run_config(&config(&dir), &options).unwrap();
        std::env::remove_var(qemu::QEMU_ENV);
        assert_eq!(result.status, exit::TIMEOUT);
        assert_eq!(result.outcome.last_console_lines(TAIL_LINES)[0], "booting");
        assert!(verdict_line(&result).contains("timed out after 1 s"));
        assert!(dir.join("out/console.log").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
