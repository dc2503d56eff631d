//! The subcommands: argument definitions (clap derive) and what each one does with the library.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use tally::config::{Config, PolicyOverrides};
use tally::exit::{self, Failure};
use tally::render::{self, Colour};
use tally::session::{self, RunOptions, TAIL_LINES};
use tally::testing::{self, JobOutcome};
use tally::{bootargs, qemu, size, words};

const EXIT_CODES: &str = "\
Exit status (each subcommand's --help lists the ones it can give):
  0  ok
  1  the run failed: non-zero kernel status, a conservation check failed, an expectation failed,
     a replay check failed
  2  config or usage error; nothing booted
  3  timeout: QEMU was killed
  4  environment error: qemu-system-aarch64 or the kernel image missing, output not writable

Environment:
  TALLY_QEMU  path of the QEMU binary to use instead of qemu-system-aarch64 on PATH
  TALLY_ROOT  the Tally checkout (default: found from the current directory, else from this
              executable's location), for the default kernel image and the user programs";

const CHECK_EXIT_CODES: &str = "\
Exit status: 0 every config is valid; 2 a config or --policy is invalid (every problem is listed).";

const RUN_EXIT_CODES: &str = "\
Exit status: 0 passed; 1 the run failed (kernel status, conservation, recount, a program check,
teardown); 2 config or usage error, nothing booted; 3 timeout, QEMU was killed; 4 environment
error (QEMU or the kernel image missing, output not writable).";

const TEST_EXIT_CODES: &str = "\
Exit status: 0 every run passed; 1 a run, an expectation or a replay check failed (a run that
timed out counts as failed); 2 config or usage error, nothing booted; 4 environment error.";

const REPORT_EXIT_CODES: &str = "\
Exit status: 0 the report is whole and its checks pass; 1 the log holds no whole report or a
check failed; 4 the log cannot be read or the files cannot be written.";

const DIFF_EXIT_CODES: &str = "\
Exit status: 0 compared (with --exit-code: 0 identical, 1 different); 2 usage error (no run or
several match a --policy); 4 a report cannot be read or the files cannot be written.";

const WHY_EXIT_CODES: &str = "\
Exit status: 0 answered; 1 the trace cannot be replayed or lacks the snapshot; 2 usage error
(neither --set nor --frame, or no trace: run with `tally run --trace`); 4 the run cannot be read.";

const BENCH_EXIT_CODES: &str = "\
Exit status: 0 every figure was measured (a missed target is reported, not an error); 1 a run
failed or repeated runs disagreed; 2 config or usage error; 4 environment error.";

const REPLAY_EXIT_CODES: &str = "\
Exit status:
  0  every replay ran (a replay that is not exact says so, and still exits 0)
  1  a replay failed, or the replay under the run's own policies did not reproduce its report
  2  usage error: the input has no trace (run with `tally run --trace`), a bad --policy
  4  environment error: the input cannot be read, the output cannot be written";

/// Tally's host tool: validates experiment configs, boots the kernel under QEMU, turns its
/// console reports into report.json, report.csv, summary.md and charges.svg, compares policies
/// (experiments) and replays traced runs under other policies (replay).
#[derive(Debug, Parser)]
#[command(name = "tally", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and validate configs (nothing boots).
    #[command(after_help = CHECK_EXIT_CODES)]
    Check(CheckArgs),
    /// Boot one config under QEMU, stream the console, write the report files.
    #[command(after_help = RUN_EXIT_CODES)]
    Run(RunArgs),
    /// Run configs under every combination of the policies they vary and check expectations.
    #[command(after_help = TEST_EXIT_CODES)]
    Test(TestArgs),
    /// Run configs under every combination of the policies they vary and write the policy
    /// matrix (matrix.md, matrix.csv) and per-scenario comparisons (policies.svg, comparison.md).
    #[command(after_help = TEST_EXIT_CODES)]
    Experiments(ExperimentsArgs),
    /// Join the slices of a sweep run with `tally experiments --shard I/N` into one policy
    /// matrix, the same files one `tally experiments` writes (nothing boots).
    #[command(after_help = TEST_EXIT_CODES)]
    Merge(MergeArgs),
    /// Rebuild the report files from a saved console log (nothing boots).
    #[command(after_help = REPORT_EXIT_CODES)]
    Report(ReportArgs),
    /// Replay a traced run under other policy combinations: the reports they would have given
    /// (nothing boots).
    #[command(after_help = REPLAY_EXIT_CODES)]
    Replay(ReplayArgs),
    /// Why is a set billed for a frame? Every frame a set pays for, or one frame's history,
    /// from a traced run (nothing boots).
    #[command(after_help = WHY_EXIT_CODES)]
    Why(WhyArgs),
    /// Compare two runs, or two policy combinations of one scenario: every charge, denial,
    /// attribution and domain state that differs (a table, diff.md, diff.csv, diff.svg).
    #[command(after_help = DIFF_EXIT_CODES)]
    Diff(DiffArgs),
    /// Boot benchmark configs under a kernel with accounting and one without; write
    /// instructions per operation to bench.json and bench.md.
    #[command(after_help = BENCH_EXIT_CODES)]
    Bench(BenchArgs),
    /// List the user programs from their own declarations: what each does, the capabilities
    /// it expects, its arguments and defaults, its snapshots (docs/programs.md: --markdown).
    #[command(after_help = tally::catalogue::EXIT_CODES)]
    Programs(tally::catalogue::ProgramsArgs),
    /// Per-function guest-instruction profile of a window of a run (a bench config's measured
    /// window by default), from a QEMU TCG plugin: tables and folded stacks (docs/profiling.md).
    Profile(tally::profile::ProfileArgs),
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Config files (configs/NAME.toml).
    #[arg(required = true)]
    configs: Vec<PathBuf>,
    /// Policy overrides, e.g. "cow=holder msgbuf=receiver", "cow=holder,msgbuf=receiver" or
    /// `transfer=two-stage`, or `preset=linux-memcg` (it expands first; the other keys
    /// override it) (validated like the file); repeat for more keys.
    #[arg(long, value_name = "KEY=NAME")]
    policy: Vec<String>,
    /// Print each config's encoded boot arguments (one line per config) instead of a summary.
    #[arg(long)]
    print_bootargs: bool,
    /// Print one JSON document on stdout instead of text (the schema is in
    /// docs/report-format.md, "Command output").
    #[arg(long)]
    json: bool,
}

/// QEMU settings shared by the commands that boot.
#[derive(Debug, Args, Clone)]
struct BootArgs {
    /// Kernel image (a relative path missing here is looked up in the checkout).
    #[arg(long, default_value = "build/tally.bin")]
    kernel: PathBuf,
    /// Guest RAM ("128M", "4G", "512 MiB"); default: the config's run.mem, else 128M.
    #[arg(long)]
    mem: Option<String>,
    /// Host timeout in seconds (at least 1); default: the config's run.timeout_seconds, else 60.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: Option<u64>,
    /// QEMU CPU model.
    #[arg(long, default_value = "cortex-a72", value_parser = clap::builder::PossibleValuesParser::new(qemu::CPUS))]
    cpu: String,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The config to boot.
    #[arg(long)]
    config: PathBuf,
    /// Policy overrides, e.g. "cow=holder msgbuf=receiver", "cow=holder,msgbuf=receiver" or
    /// `transfer=two-stage`, or `preset=linux-memcg` (it expands first; the other keys
    /// override it) (validated like the file); repeat for more keys.
    #[arg(long, value_name = "KEY=NAME")]
    policy: Vec<String>,
    /// Output directory; default runs/<config name>/ under the current directory (the
    /// checkout's .gitignore keeps runs/ out of git; results/ is only `make experiments`').
    #[arg(long)]
    out: Option<PathBuf>,
    /// Do not stream the console; print only the summary and verdict.
    #[arg(long)]
    quiet: bool,
    /// Print one JSON document on stdout instead of text, the console not streamed (the schema is in
    /// docs/report-format.md, "Command output").
    #[arg(long)]
    json: bool,
    /// Start halted with QEMU's gdbstub on :1234 (no timeout).
    #[arg(long)]
    gdb: bool,
    /// Boot with the kernel's event trace on (trace=on), kept in OUT/trace.txt for `tally replay`.
    /// Tracing adds instructions (writing each record to the console): a traced run's
    /// instruction counts are not comparable with an untraced one's (cow-fork's `shared`
    /// snapshot: 277,971 untraced, 631,657 traced). Byte figures are unchanged.
    #[arg(long)]
    trace: bool,
    /// Recount the books over the frame table after every system call, fault and interrupt
    /// (recount=on; slower, changes instruction counts); a failed recount ends the run.
    #[arg(long)]
    recount: bool,
    #[command(flatten)]
    boot: BootArgs,
}

#[derive(Debug, Args)]
struct TestArgs {
    /// Config files.
    #[arg(required = true)]
    configs: Vec<PathBuf>,
    /// Instead of running: assert each config is rejected with a message containing TEXT.
    #[arg(long, value_name = "TEXT")]
    expect_config_error: Option<String>,
    /// Instead of running: assert each config is rejected with the message its own
    /// `# refused: TEXT` comment line gives.
    #[arg(long, conflicts_with = "expect_config_error")]
    expect_refused: bool,
    /// Also run with the event trace on and replay each run's trace under every other run's
    /// policies: the replay must equal that real run whenever it diverged nowhere and neither
    /// run had a denial (and always under the run's own policies).
    #[arg(long)]
    replay_check: bool,
    /// Policy overrides applied before the varied keys, e.g. "msgbuf=kernel"; repeatable,
    /// commas or spaces between pairs.
    #[arg(long, value_name = "KEY=NAME")]
    policy: Vec<String>,
    /// Where run directories go (<out-root>/<name>/<combination>/).
    #[arg(long, default_value = "runs/test")]
    out_root: PathBuf,
    /// Runs at a time; default: the number of cores.
    #[arg(long)]
    jobs: Option<usize>,
    /// Do not turn on the kernel's full recount after every trap (on by default in tests).
    #[arg(long)]
    no_recount: bool,
    /// Print one JSON document on stdout instead of text (the schema is in
    /// docs/report-format.md, "Command output").
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    boot: BootArgs,
}

#[derive(Debug, Args)]
struct ExperimentsArgs {
    /// Config files.
    #[arg(required = true)]
    configs: Vec<PathBuf>,
    /// Where results go (<out-root>/matrix.md, <out-root>/<name>/policies.svg,
    /// <out-root>/<name>/<combination>/); `make experiments` gives results/.
    #[arg(long, default_value = "runs/experiments")]
    out_root: PathBuf,
    /// Runs at a time; default: the number of cores.
    #[arg(long)]
    jobs: Option<usize>,
    /// Run only the I-th of N slices of the planned runs (1 <= I <= N), for a sweep spread
    /// over machines; join the slices with `tally merge` (docs/sweeps.md).
    #[arg(long, value_name = "I/N")]
    shard: Option<tally::shard::Shard>,
    #[command(flatten)]
    boot: BootArgs,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// The same config files the shards were given.
    #[arg(required = true)]
    configs: Vec<PathBuf>,
    /// Where the matrix goes (and each run's files, copied from the --from directories).
    #[arg(long, default_value = "runs/experiments")]
    out_root: PathBuf,
    /// A shard's --out-root (repeatable); default: --out-root itself (shards that wrote to
    /// one shared file system).
    #[arg(long, value_name = "DIR")]
    from: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct WhyArgs {
    /// A traced run (`tally run --trace`): its directory, trace.txt or console.log.
    run: PathBuf,
    /// List every frame this charge set pays for, with the event that charged it and every
    /// later one that moved the charge.
    #[arg(long, conflicts_with = "frame")]
    set: Option<String>,
    /// One frame's whole history and its payers, causer and mappers.
    #[arg(long)]
    frame: Option<u32>,
    /// The snapshot to answer at (default: the last one a program took, else `final`).
    #[arg(long)]
    snapshot: Option<String>,
}

#[derive(Debug, Args)]
struct DiffArgs {
    /// Run A: a run directory (with report.json) or a report.json; or, with two --policy, a
    /// scenario's results directory (results/cow-fork) holding both runs.
    a: PathBuf,
    /// Run B (omit it when comparing two policies of one scenario).
    b: Option<PathBuf>,
    /// With one directory: the policies of run A, then of run B (e.g. --policy cow=writer
    /// --policy cow=holder); keys not named may be anything, but only one run may match.
    #[arg(long, value_name = "KEY=NAME", num_args = 1)]
    policy: Vec<String>,
    /// Compare only this snapshot (default: every label both runs have).
    #[arg(long)]
    snapshot: Option<String>,
    /// Where diff.md, diff.csv and diff.svg go.
    #[arg(long, default_value = "runs/diff")]
    out: PathBuf,
    /// Exit 1 when the outcomes differ (as `diff` does), for scripts.
    #[arg(long)]
    exit_code: bool,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// A traced run: its output directory, its trace.txt or its console.log.
    input: PathBuf,
    /// Replay under the run's policies with these overrides, e.g. "cow=holder release=stay";
    /// repeat for several combinations.
    #[arg(long)]
    policy: Vec<String>,
    /// Replay under every combination of every policy key (the default without --policy).
    #[arg(long)]
    all: bool,
    /// Where the replays go (<out>/<combination>/report.json, <out>/comparison.md); default:
    /// the run's directory + /replay.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// A console log saved by `tally run` (OUT/console.log).
    console: PathBuf,
    /// Where to write the report files; default: the log's directory.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Benchmark configs (bench/*.toml).
    #[arg(required = true)]
    configs: Vec<PathBuf>,
    /// Kernel image with accounting.
    #[arg(long, default_value = "build/tally.bin")]
    kernel: PathBuf,
    /// Kernel image built with accounting compiled out (--no-default-features).
    #[arg(long, default_value = "build/tally-noacct.bin")]
    kernel_noacct: PathBuf,
    /// The host ledger benchmark's figures (TALLY_BENCH_JSON of `cargo bench -p accounting`).
    #[arg(long)]
    ledger_json: Option<PathBuf>,
    /// Where each run's console log goes (<out-root>/<config>/<kernel>/console.log).
    #[arg(long, default_value = "build/bench")]
    out_root: PathBuf,
    /// The machine-readable results.
    #[arg(long, default_value = "results/bench.json")]
    json: PathBuf,
    /// The table.
    #[arg(long, default_value = "results/bench.md")]
    markdown: PathBuf,
    /// Runs at a time; default: the number of cores.
    #[arg(long)]
    jobs: Option<usize>,
    /// Boot each config this many times per kernel and require identical figures.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Host timeout per run in seconds (at least 1); default: the config's
    /// run.timeout_seconds, else 60.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: Option<u64>,
    /// QEMU CPU model.
    #[arg(long, default_value = "cortex-a72", value_parser = clap::builder::PossibleValuesParser::new(qemu::CPUS))]
    cpu: String,
}

/// Runs the parsed command; the `Ok` value is the exit status.
pub fn dispatch(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Check(args) => check(args),
        Command::Run(args) => run(args),
        Command::Test(args) => test(args),
        Command::Experiments(args) => experiments(args),
        Command::Merge(args) => merge(args),
        Command::Report(args) => report(args),
        Command::Replay(args) => {
            tally::replay::replay_command(&args.input, &args.policy, args.all, args.out.as_deref())
        }
        Command::Bench(args) => bench(args),
        Command::Diff(args) => diff(args),
        Command::Why(args) => tally::why::command(
            &args.run,
            args.set.as_deref(),
            args.frame,
            args.snapshot.as_deref(),
        ),
        Command::Programs(args) => tally::catalogue::command(&args),
        Command::Profile(args) => tally::profile::command(&args),
    }
}

fn bench(args: BenchArgs) -> Result<u8, Failure> {
    let options = tally::bench::BenchOptions {
        kernel: tally::workspace::resolve(&args.kernel),
        kernel_noacct: tally::workspace::resolve(&args.kernel_noacct),
        cpu: args.cpu,
        timeout_seconds: args.timeout,
        jobs: workers(args.jobs),
        repeat: args.repeat.max(1),
        out_root: args.out_root,
    };
    tally::bench::command(
        &args.configs,
        &options,
        args.ledger_json.as_deref(),
        &args.json,
        &args.markdown,
    )
}

fn overrides(texts: &[String]) -> Result<PolicyOverrides, Failure> {
    PolicyOverrides::parse_all(texts).map_err(Failure::config)
}

/// Loads every config, reporting every error; any error is exit 2.
fn load_all(paths: &[PathBuf], overrides: &PolicyOverrides) -> Result<Vec<Config>, Failure> {
    let mut configs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match Config::load(path, overrides) {
            Ok(config) => configs.push(config),
            Err(error) => errors.push(error.render()),
        }
    }
    if errors.is_empty() {
        Ok(configs)
    } else {
        Err(Failure::config(format!(
            "invalid config; nothing was booted\n{}",
            errors.join("\n")
        )))
    }
}

fn mem_bytes(text: Option<&str>) -> Result<Option<u64>, Failure> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => {
            let bytes =
                size::parse_size(text).map_err(|e| Failure::config(format!("--mem: {e}")))?;
            size::qemu_mem(bytes)
                .ok_or_else(|| Failure::config(format!("--mem {text}: {}", size::MEM_RULE)))?;
            Ok(Some(bytes))
        }
    }
}

fn run_options(
    boot: &BootArgs,
    out_dir: PathBuf,
    echo: bool,
    gdb: bool,
) -> Result<RunOptions, Failure> {
    Ok(RunOptions {
        kernel: tally::workspace::resolve(&boot.kernel),
        mem_bytes: mem_bytes(boot.mem.as_deref())?,
        cpu: boot.cpu.clone(),
        timeout_seconds: boot.timeout,
        gdb,
        out_dir,
        echo,
    })
}

fn check(args: CheckArgs) -> Result<u8, Failure> {
    let overrides = overrides(&args.policy)?;
    if args.json {
        return check_json(&args.configs, &overrides);
    }
    let configs = load_all(&args.configs, &overrides)?;
    for config in &configs {
        let encoded = bootargs::encode(config).map_err(Failure::config)?;
        if args.print_bootargs {
            println!("{encoded}");
        } else {
            println!(
                "ok: {} ({}): {}, {}, {}, {}; varies: {}; {} bytes of boot arguments",
                config.path.display(),
                config.name,
                words::count(config.charge_sets.len(), "charge set"),
                words::count(config.domains.len(), "domain"),
                words::count(config.endpoints.len(), "endpoint"),
                words::count(config.expects.len(), "expectation"),
                if config.vary.is_empty() {
                    "nothing".to_string()
                } else {
                    config.vary.join(", ")
                },
                encoded.len()
            );
            println!("  policy: {}", config.policy_line());
        }
    }
    Ok(exit::OK)
}

/// `check --json`: `{"ok": bool, "configs": [...]}`, one entry per config with its summary or
/// its diagnostics; exit 2 when any is invalid.
fn check_json(paths: &[PathBuf], overrides: &PolicyOverrides) -> Result<u8, Failure> {
    let mut entries = Vec::new();
    let mut ok = true;
    for path in paths {
        let loaded = Config::load(path, overrides)
            .map_err(|error| error.diagnostics)
            .and_then(|config| match bootargs::encode(&config) {
                Ok(encoded) => Ok((config, encoded)),
                Err(error) => Err(vec![tally::config::Diagnostic {
                    source: path.display().to_string(),
                    line: error.line,
                    key: Some(error.key.to_string()).filter(|k| !k.is_empty()),
                    message: error.message,
                    excerpt: None,
                }]),
            });
        entries.push(match loaded {
            Ok((config, encoded)) => serde_json::json!({
                "path": path.display().to_string(),
                "ok": true,
                "name": config.name,
                "charge_sets": config.charge_sets.len(),
                "domains": config.domains.len(),
                "endpoints": config.endpoints.len(),
                "expectations": config.expects.len(),
                "varies": config.vary,
                "policy": pairs_json(&config.policy),
                "transfer": config.transfer,
                "preset": config.preset,
                "bootargs": encoded,
            }),
            Err(diagnostics) => {
                ok = false;
                serde_json::json!({
                    "path": path.display().to_string(),
                    "ok": false,
                    "diagnostics": diagnostics.iter().map(|d| serde_json::json!({
                        "source": d.source,
                        "line": d.line,
                        "key": d.key,
                        "message": d.message,
                    })).collect::<Vec<_>>(),
                })
            }
        });
    }
    print_json(&serde_json::json!({ "schema": "tally.check/1", "ok": ok, "configs": entries }));
    Ok(if ok { exit::OK } else { exit::CONFIG_ERROR })
}

/// `[(key, name)]` as a JSON object.
fn pairs_json(pairs: &[(String, String)]) -> serde_json::Value {
    pairs
        .iter()
        .map(|(key, name)| (key.clone(), serde_json::Value::from(name.as_str())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

fn run(args: RunArgs) -> Result<u8, Failure> {
    let mut config = Config::load(&args.config, &overrides(&args.policy)?).map_err(|error| {
        Failure::config(format!(
            "invalid config; nothing was booted\n{}",
            error.render()
        ))
    })?;
    config.run.trace |= args.trace;
    config.run.recount |= args.recount;
    let out_dir = args
        .out
        .filter(|out| !out.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("runs").join(&config.name));
    let options = run_options(
        &args.boot,
        out_dir.clone(),
        !args.quiet && !args.json,
        args.gdb,
    )?;
    let result = session::run_config(&config, &options)?;
    if args.json {
        print_json(&serde_json::json!({
            "schema": "tally.run/1",
            "config": config.name,
            "path": config.path.display().to_string(),
            "passed": result.passed(),
            "exit_status": result.status,
            "verdict": session::verdict_line(&result),
            "problems": result.problems,
            "out_dir": out_dir.display().to_string(),
            "console_tail": result.outcome.last_console_lines(TAIL_LINES),
            "report": result.report,
        }));
        return Ok(result.status);
    }
    let colour = Colour::for_stdout();
    println!();
    if let Some(report) = &result.report {
        print!("{}", render::terminal_summary(report, colour));
    }
    if result.status == exit::TIMEOUT || (!result.passed() && args.quiet) {
        println!("last {TAIL_LINES} console lines:");
        for line in result.outcome.last_console_lines(TAIL_LINES) {
            println!("  {line}");
        }
    }
    for problem in &result.problems {
        println!("{}", colour.red(&format!("problem: {problem}"), false));
    }
    let verdict = session::verdict_line(&result);
    println!(
        "{}",
        if result.passed() {
            colour.green(&verdict)
        } else {
            colour.red(&verdict, true)
        }
    );
    println!("files: {}", out_dir.display());
    Ok(result.status)
}

fn progress_bar(count: usize) -> ProgressBar {
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(count as u64);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} runs {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    }
}

fn workers(jobs: Option<usize>) -> usize {
    jobs.filter(|j| *j > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Runs `configs` under every combination through the pool, printing a line per run (unless
/// `quiet`), then checks the expectations that compare runs.
fn run_matrix(
    configs: &[Config],
    boot: &BootArgs,
    out_root: &Path,
    jobs: Option<usize>,
    quiet: bool,
) -> Result<Vec<JobOutcome>, Failure> {
    let planned = testing::plan(configs, out_root);
    let mut outcomes = run_jobs(planned, boot, out_root, jobs, quiet)?;
    testing::cross_check(&mut outcomes);
    if !quiet {
        for outcome in &outcomes {
            if outcome.job.cross_run_expectations().next().is_some() {
                println!("{}", outcome.line());
            }
        }
    }
    Ok(outcomes)
}

/// Runs `planned` through the pool with a progress bar, printing each run's line as it ends
/// (unless `quiet`; a run that compares itself with others prints after the cross-check).
fn run_jobs(
    planned: Vec<testing::Job>,
    boot: &BootArgs,
    out_root: &Path,
    jobs: Option<usize>,
    quiet: bool,
) -> Result<Vec<JobOutcome>, Failure> {
    let base = run_options(boot, out_root.to_path_buf(), false, false)?;
    // Environment problems stop everything before the first boot, once.
    if let Some(first) = planned.first() {
        session::prepare(&first.config, &base)?;
    }
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        progress_bar(planned.len())
    };
    let outcomes = testing::run_jobs(planned, &base, workers(jobs), |outcome| {
        if !quiet && outcome.job.cross_run_expectations().next().is_none() {
            bar.suspend(|| println!("{}", outcome.line()));
        }
        bar.inc(1);
    });
    bar.finish_and_clear();
    Ok(outcomes)
}

fn test(args: TestArgs) -> Result<u8, Failure> {
    let overrides = overrides(&args.policy)?;
    if let Some(text) = &args.expect_config_error {
        return expect_config_errors(&args.configs, &overrides, Some(text));
    }
    if args.expect_refused {
        return expect_config_errors(&args.configs, &overrides, None);
    }
    let mut configs = load_all(&args.configs, &overrides)?;
    for config in &mut configs {
        config.run.trace |= args.replay_check;
        config.run.recount |= !args.no_recount;
    }
    let outcomes = run_matrix(&configs, &args.boot, &args.out_root, args.jobs, args.json)?;
    let mut passed = testing::all_passed(&outcomes);
    let mut replay_lines = Vec::new();
    if args.replay_check {
        let checks = tally::replay::check_outcomes(&outcomes);
        replay_lines.extend(checks.iter().flat_map(|check| check.lines()));
        replay_lines.push(tally::replay::closing_line(&checks));
        passed &= checks.iter().all(|check| check.passed());
    }
    if args.json {
        let runs: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|outcome| {
                serde_json::json!({
                    "scenario": outcome.job.config.name,
                    "combination": testing::combo_dir(&outcome.job.combo),
                    "varied": pairs_json(&outcome.job.combo),
                    "passed": outcome.failures.is_empty(),
                    "failures": outcome.failures,
                    "out_dir": outcome.job.out_dir.display().to_string(),
                })
            })
            .collect();
        let failed = outcomes.iter().filter(|o| !o.failures.is_empty()).count();
        print_json(&serde_json::json!({
            "schema": "tally.test/1",
            "passed": passed,
            "runs_passed": outcomes.len() - failed,
            "runs_failed": failed,
            "runs": runs,
            "replay_check": args.replay_check.then_some(&replay_lines),
        }));
        return Ok(if passed { exit::OK } else { exit::RUN_FAILED });
    }
    for line in &replay_lines {
        println!("{line}");
    }
    println!("{}", testing::closing_line(&outcomes));
    Ok(if passed { exit::OK } else { exit::RUN_FAILED })
}

/// Each config must be refused with a message containing `text`, or (`None`) the text of the
/// config's own `# refused: TEXT` line.
fn expect_config_errors(
    paths: &[PathBuf],
    overrides: &PolicyOverrides,
    text: Option<&str>,
) -> Result<u8, Failure> {
    let mut failed = 0;
    for path in paths {
        let own;
        let text = match text {
            Some(text) => text,
            None => {
                own = std::fs::read_to_string(path)
                    .ok()
                    .and_then(|source| {
                        source
                            .lines()
                            .find_map(|l| l.strip_prefix("# refused: ").map(str::to_string))
                    })
                    .ok_or_else(|| {
                        Failure::config(format!(
                            "{}: no `# refused: TEXT` line says what the refusal must contain",
                            path.display()
                        ))
                    })?;
                own.as_str()
            }
        };
        match Config::load(path, overrides) {
            Ok(_) => {
                failed += 1;
                println!(
                    "FAIL {}: the config was accepted; expected an error containing {text:?}",
                    path.display()
                );
            }
            Err(error) if error.to_string().contains(text) => {
                println!(
                    "PASS {}: rejected: {}",
                    path.display(),
                    error.diagnostics[0]
                );
            }
            Err(error) => {
                failed += 1;
                println!(
                    "FAIL {}: rejected, but no message contains {text:?}:\n{error}",
                    path.display()
                );
            }
        }
    }
    println!("{} passed, {failed} failed", paths.len() - failed);
    Ok(if failed == 0 {
        exit::OK
    } else {
        exit::RUN_FAILED
    })
}

fn experiments(args: ExperimentsArgs) -> Result<u8, Failure> {
    let configs = load_all(&args.configs, &PolicyOverrides::default())?;
    if let Some(shard) = args.shard {
        let planned = shard.select(testing::plan(&configs, &args.out_root));
        let outcomes = run_jobs(planned, &args.boot, &args.out_root, args.jobs, false)?;
        println!(
            "shard {shard}: {}; join the shards with `tally merge --out-root {} [--from DIR]... {}`",
            testing::closing_line(&outcomes),
            args.out_root.display(),
            args.configs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        // Expectations that compare runs of different shards are checked by `merge`.
        return Ok(if testing::all_passed(&outcomes) {
            exit::OK
        } else {
            exit::RUN_FAILED
        });
    }
    let outcomes = run_matrix(&configs, &args.boot, &args.out_root, args.jobs, false)?;
    write_matrix(&configs, &outcomes, &args.out_root)
}

fn write_matrix(
    configs: &[Config],
    outcomes: &[JobOutcome],
    out_root: &Path,
) -> Result<u8, Failure> {
    let written = tally::experiments::write_comparisons(configs, outcomes, out_root)?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    println!("{}", testing::closing_line(outcomes));
    Ok(if testing::all_passed(outcomes) {
        exit::OK
    } else {
        exit::RUN_FAILED
    })
}

fn merge(args: MergeArgs) -> Result<u8, Failure> {
    let configs = load_all(&args.configs, &PolicyOverrides::default())?;
    let from = if args.from.is_empty() {
        vec![args.out_root.clone()]
    } else {
        args.from.clone()
    };
    let planned = testing::plan(&configs, &args.out_root);
    let targets: Vec<PathBuf> = planned.iter().map(|job| job.out_dir.clone()).collect();
    let mut outcomes = tally::shard::load(planned, &args.out_root, &from)?;
    for (outcome, target) in outcomes.iter_mut().zip(targets) {
        tally::shard::copy_run(&outcome.job.out_dir, &target)?;
        outcome.job.out_dir = target;
    }
    testing::cross_check(&mut outcomes);
    for outcome in outcomes.iter().filter(|o| !o.failures.is_empty()) {
        println!("{}", outcome.line());
    }
    write_matrix(&configs, &outcomes, &args.out_root)
}

fn diff(args: DiffArgs) -> Result<u8, Failure> {
    use tally::compare;
    let (a, b) = match (&args.b, args.policy.as_slice()) {
        (Some(b), []) => (compare::read_run(&args.a)?, compare::read_run(b)?),
        (None, [pa, pb]) => (
            compare::select_run(&args.a, pa)?,
            compare::select_run(&args.a, pb)?,
        ),
        _ => {
            return Err(Failure::config(
                "give two runs (tally diff A B) or one scenario directory and two policies \
                 (tally diff results/cow-fork --policy cow=writer --policy cow=holder)",
            ))
        }
    };
    let labels = match &args.snapshot {
        Some(label) => {
            if a.report.snapshot(label).is_none() || b.report.snapshot(label).is_none() {
                return Err(Failure::config(format!(
                    "--snapshot {label}: not in both runs; both have: {}",
                    compare::common_labels(&a.report, &b.report).join(", ")
                )));
            }
            vec![label.clone()]
        }
        None => compare::common_labels(&a.report, &b.report),
    };
    let (markdown, count) = compare::markdown(&a, &b, &labels);
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Failure::environment(format!("cannot create {}: {e}", args.out.display())))?;
    let write = |name: &str, text: &str| {
        let path = args.out.join(name);
        std::fs::write(&path, text)
            .map_err(|e| Failure::environment(format!("cannot write {}: {e}", path.display())))
    };
    write("diff.md", &markdown)?;
    write("diff.csv", &compare::csv(&a, &b, &labels))?;
    // The chart shows the snapshot with the most differences (the first on a tie).
    let charted = labels
        .iter()
        .filter_map(|l| Some((a.report.snapshot(l)?, b.report.snapshot(l)?)))
        .max_by_key(|(sa, sb)| {
            (
                compare::differences(sa, sb).len(),
                std::cmp::Reverse(sa.label.clone()),
            )
        });
    if let Some((sa, sb)) = charted {
        render::write_diff_svg(&a.title, sa, &b.title, sb, &args.out.join("diff.svg"))
            .map_err(Failure::environment)?;
    }
    print!("{markdown}");
    println!(
        "files: {} (diff.md, diff.csv, diff.svg)",
        args.out.display()
    );
    Ok(if args.exit_code && count > 0 {
        exit::RUN_FAILED
    } else {
        exit::OK
    })
}

fn report(args: ReportArgs) -> Result<u8, Failure> {
    let console = std::fs::read_to_string(&args.console).map_err(|error| {
        Failure::environment(format!("cannot read {}: {error}", args.console.display()))
    })?;
    let parsed = tally::report::parse_console(&console)
        .map_err(|error| Failure::new(exit::RUN_FAILED, format!("{error:#}")))?;
    let out = args.out.unwrap_or_else(|| {
        args.console
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    });
    std::fs::create_dir_all(&out).map_err(|error| {
        Failure::environment(format!("cannot create {}: {error}", out.display()))
    })?;
    session::write_report_files(&parsed, &out)?;
    print!(
        "{}",
        render::terminal_summary(&parsed, Colour::for_stdout())
    );
    let problems = session::judge(&parsed);
    for problem in &problems {
        println!("problem: {problem}");
    }
    Ok(if problems.is_empty() {
        exit::OK
    } else {
        exit::RUN_FAILED
    })
}
