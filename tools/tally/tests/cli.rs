//! End-to-end tests of the `tally` binary: exit statuses, messages and files, with QEMU faked
//! by a shell script through `TALLY_QEMU` and a throw-away workspace for the programs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TRANSCRIPT: &str = r#"Tally 0.1.0 booting
@tally/1 run {"config":"hello","kernel_version":"0.1.0","policy":{"cow":"writer","msgbuf":"sender","pagetable":"owner","release":"migrate"},"ipc":{"transfer":"direct"},"mem_bytes":134217728}
@tally/1 snapshot {"label":"start","instructions":10,"frames":{"total":100,"free":90,"boot":10,"in_use":0},"conservation":{"charged_bytes":0,"in_use_bytes":0,"ok":true},"charge_sets":[{"name":"kernel","parent":null,"limit_bytes":null,"domains":[],"current":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"peak":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"denied":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"paid_for":{}}],"domains":[]}
[hello] hello from EL0
@tally/1 snapshot {"label":"work","instructions":15,"frames":{"total":100,"free":89,"boot":10,"in_use":1},"conservation":{"charged_bytes":4096,"in_use_bytes":4096,"ok":true},"charge_sets":[{"name":"kernel","parent":null,"limit_bytes":null,"domains":[],"current":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"peak":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"denied":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"paid_for":{}},{"name":"hello","parent":null,"limit_bytes":1048576,"domains":["hello"],"current":{"anon":4096,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"peak":{"anon":8192,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"denied":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"paid_for":{}}],"domains":[{"name":"hello","charge_set":"hello","state":"running","stop_reason":null}]}
@tally/1 snapshot {"label":"final","instructions":20,"frames":{"total":100,"free":90,"boot":10,"in_use":0},"conservation":{"charged_bytes":0,"in_use_bytes":0,"ok":true},"charge_sets":[{"name":"kernel","parent":null,"limit_bytes":null,"domains":[],"current":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"peak":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"denied":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"paid_for":{}},{"name":"hello","parent":null,"limit_bytes":1048576,"domains":["hello"],"current":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"peak":{"anon":8192,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"denied":{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0},"paid_for":{}}],"domains":[{"name":"hello","charge_set":"hello","state":"exited","stop_reason":null}]}
@tally/1 end {"status":"ok"}
"#;

const CONFIG: &str = r#"
[[charge_set]]
name = "hello"
limit = "1 MiB"

[[domain]]
name = "hello"
program = "hello"
charge_set = "hello"

[[expect]]
snapshot = "work"
set = "hello"
field = "current.anon"
pages = 1
"#;

/// A throw-away workspace: `Cargo.toml`, `user/src/bin/hello.rs`, `configs/hello.toml`, a
/// kernel image, and fake QEMUs.
struct Workspace {
    root: PathBuf,
}

impl Workspace {
    fn new(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("tally-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("user/src/bin")).unwrap();
        std::fs::create_dir_all(root.join("configs")).unwrap();
        std::fs::create_dir_all(root.join("build")).unwrap();
        std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        std::fs::write(root.join("user/src/bin/hello.rs"), "").unwrap();
        std::fs::write(root.join("configs/hello.toml"), CONFIG).unwrap();
        std::fs::write(root.join("build/tally.bin"), "image").unwrap();
        std::fs::write(root.join("transcript"), TRANSCRIPT).unwrap();
        Workspace { root }
    }

    /// A fake QEMU running `body`; it leaves `qemu-started` behind so tests can tell.
    fn qemu(&self, body: &str) -> PathBuf {
        let path = self.root.join("fake-qemu");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\ntouch '{}/qemu-started'\n{body}\n",
                self.root.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn tally(&self, qemu: Option<&Path>, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tally"));
        command
            .args(args)
            .current_dir(&self.root)
            .env("NO_COLOR", "1");
        match qemu {
            Some(qemu) => command.env("TALLY_QEMU", qemu),
            None => command.env_remove("TALLY_QEMU"),
        };
        command.output().unwrap()
    }

    fn qemu_started(&self) -> bool {
        self.root.join("qemu-started").exists()
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_accepts_a_good_config_and_prints_boot_arguments() {
    let ws = Workspace::new("check");
    let output = ws.tally(None, &["check", "--print-bootargs", "configs/hello.toml"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "tally=1 config=hello log=info cow=writer msgbuf=sender pagetable=owner release=migrate kernel=self move=stay transfer=direct trace=off set=hello,-,1048576 dom=hello,hello,hello\n"
    );
}

#[test]
fn a_bad_config_is_exit_2_and_boots_nothing() {
    let ws = Workspace::new("bad-config");
    std::fs::write(
        ws.root.join("configs/bad.toml"),
        CONFIG.replace("program = \"hello\"", "program = \"helo\""),
    )
    .unwrap();
    let qemu = ws.qemu(&format!("cat '{}/transcript'", ws.root.display()));
    for args in [
        &["check", "configs/bad.toml"][..],
        &["run", "--config", "configs/bad.toml"],
        &["test", "configs/bad.toml"],
        &[
            "run",
            "--config",
            "configs/hello.toml",
            "--policy",
            "cow=reader",
        ],
        &["run", "--config", "configs/hello.toml", "--mem", "lots"],
    ] {
        let output = ws.tally(Some(&qemu), args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
        assert!(!ws.qemu_started(), "{args:?} started QEMU");
    }
    let message = text(&ws.tally(None, &["check", "configs/bad.toml"]));
    assert!(message.contains("configs/bad.toml:8: `domain.program`: unknown program `helo` (did you mean `hello`?); valid programs (user/src/bin/*.rs): hello"), "{message}");
    let message = text(&ws.tally(
        None,
        &[
            "run",
            "--config",
            "configs/hello.toml",
            "--policy",
            "cow=reader",
        ],
    ));
    assert!(
        message.contains(
            "--policy: `cow`: unknown `cow` policy `reader`; valid values: writer, holder, split"
        ),
        "{message}"
    );
}

#[test]
fn expect_config_error_passes_only_for_the_expected_message() {
    let ws = Workspace::new("expect-error");
    std::fs::write(
        ws.root.join("configs/bad.toml"),
        "[policy]\ncow = \"reader\"\n",
    )
    .unwrap();
    let output = ws.tally(
        None,
        &[
            "test",
            "--expect-config-error",
            "valid values",
            "configs/bad.toml",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).ends_with("\n1 passed, 0 failed\n"));
    let output = ws.tally(
        None,
        &[
            "test",
            "--expect-config-error",
            "cycle",
            "configs/bad.toml",
            "configs/hello.toml",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).ends_with("\n0 passed, 2 failed\n"));
}

#[test]
fn a_good_run_is_exit_0_with_every_file_and_a_summary() {
    let ws = Workspace::new("run-ok");
    let qemu = ws.qemu(&format!("cat '{}/transcript'", ws.root.display()));
    let output = ws.tally(
        Some(&qemu),
        &["run", "--config", "configs/hello.toml", "--mem", "256M"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // User lines pass through; framed lines do not.
    assert!(stdout.contains("[hello] hello from EL0\n"));
    assert!(!stdout.contains("@tally/1"));
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("hello ") && l.contains("4 KiB/8 KiB")),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "PASS: conservation ok in all 3 snapshots; kernel status ok; QEMU exit status 0"
        ),
        "{stdout}"
    );
    for name in [
        "console.log",
        "report.json",
        "report.csv",
        "summary.md",
        "charges.svg",
    ] {
        assert!(ws.root.join("runs/hello").join(name).is_file(), "{name}");
    }
    let report = std::fs::read_to_string(ws.root.join("runs/hello/report.json")).unwrap();
    assert!(report.contains("\"mem\": \"256M\""), "{report}");
}

#[test]
fn a_kernel_failure_is_exit_1() {
    let ws = Workspace::new("run-fail");
    let qemu = ws.qemu("echo 'tally: bad boot config: nope'; exit 1");
    let output = ws.tally(
        Some(&qemu),
        &["run", "--config", "configs/hello.toml", "--out", "out"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(ws.root.join("out/console.log").is_file());
}

#[test]
fn a_hang_is_exit_3_with_the_last_console_lines() {
    let ws = Workspace::new("run-hang");
    let qemu =
        ws.qemu("i=0; while [ $i -lt 30 ]; do echo \"line $i\"; i=$((i+1)); done; exec sleep 30");
    let output = ws.tally(
        Some(&qemu),
        &[
            "run",
            "--config",
            "configs/hello.toml",
            "--timeout",
            "1",
            "--quiet",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        stdout.contains("last 20 console lines:\n  line 10\n"),
        "{stdout}"
    );
    assert!(stdout.contains("  line 29\n"));
    assert!(!stdout.contains("  line 9\n"));
    assert!(stdout.contains("timed out after 1 s"));
}

#[test]
fn missing_qemu_or_kernel_is_exit_4() {
    let ws = Workspace::new("env");
    let output = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["run", "--config", "configs/hello.toml"])
        .current_dir(&ws.root)
        .env_remove("TALLY_QEMU")
        .env("PATH", ws.root.join("empty"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    let message = text(&output);
    assert!(
        message.contains("make run") && message.contains("apt-get install qemu-system-arm"),
        "{message}"
    );

    let qemu = ws.qemu("exit 0");
    let output = ws.tally(
        Some(&qemu),
        &[
            "run",
            "--config",
            "configs/hello.toml",
            "--kernel",
            "build/none.bin",
        ],
    );
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    assert!(text(&output).contains("make image"));
    assert!(!ws.qemu_started());
}

#[test]
fn test_runs_the_matrix_and_closes_with_the_counts() {
    let ws = Workspace::new("test");
    let varied = format!("[experiment]\nvary = [\"pagetable\"]\n{CONFIG}");
    std::fs::write(ws.root.join("configs/hello.toml"), varied).unwrap();
    let qemu = ws.qemu(&format!("cat '{}/transcript'", ws.root.display()));
    let output = ws.tally(Some(&qemu), &["test", "--jobs", "2", "configs/hello.toml"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(stdout.contains("PASS hello [pagetable=owner]"), "{stdout}");
    assert!(stdout.contains("PASS hello [pagetable=causer]"), "{stdout}");
    assert!(stdout.ends_with("\n2 passed, 0 failed\n"), "{stdout}");
    assert!(ws
        .root
        .join("runs/test/hello/pagetable-causer/report.json")
        .is_file());

    let failing = CONFIG.replace("pages = 1", "pages = 2");
    std::fs::write(ws.root.join("configs/hello.toml"), failing).unwrap();
    let output = ws.tally(Some(&qemu), &["test", "configs/hello.toml"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(stdout.contains("FAIL hello: configs/hello.toml:11: snapshot `work`, set `hello`, `current.anon`: expected 8192 (8 KiB), got 4096 (4 KiB)"), "{stdout}");
    assert!(stdout.ends_with("\n0 passed, 1 failed\n"), "{stdout}");
}

#[test]
fn experiments_write_a_comparison_per_scenario() {
    let ws = Workspace::new("experiments");
    let varied = format!("[experiment]\nvary = [\"release\"]\n{CONFIG}");
    std::fs::write(ws.root.join("configs/hello.toml"), varied).unwrap();
    let qemu = ws.qemu(&format!("cat '{}/transcript'", ws.root.display()));
    let output = ws.tally(
        Some(&qemu),
        &["experiments", "--out-root", "res", "configs/hello.toml"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let comparison = std::fs::read_to_string(ws.root.join("res/hello/comparison.md")).unwrap();
    assert!(
        comparison.contains("| charge set | kind | release=migrate | release=stay |"),
        "{comparison}"
    );
    assert!(
        comparison.contains("| hello | anon | 4 KiB | 4 KiB |"),
        "{comparison}"
    );
    let csv = std::fs::read_to_string(ws.root.join("res/hello/comparison.csv")).unwrap();
    assert_eq!(
        csv.lines().filter(|l| l.starts_with("scenario,")).count(),
        1
    );
    // One row per snapshot × set: start 1, work 2, final 2; two runs.
    assert_eq!(csv.lines().count(), 1 + 2 * 5);
    // The same columns as matrix.csv: one data frame can hold both.
    let matrix_csv = std::fs::read_to_string(ws.root.join("res/matrix.csv")).unwrap();
    assert_eq!(csv.lines().next(), matrix_csv.lines().next());
    for table in ["attribution", "domains"] {
        assert!(ws.root.join(format!("res/matrix-{table}.csv")).is_file());
        assert!(ws
            .root
            .join(format!("res/hello/comparison-{table}.csv"))
            .is_file());
    }
    assert!(ws.root.join("res/experiments.md").is_file());
    let matrix = std::fs::read_to_string(ws.root.join("res/matrix.md")).unwrap();
    assert!(matrix.contains("## hello\n"), "{matrix}");
    assert!(matrix.contains("### Snapshot `work` (key)"), "{matrix}");
    assert!(
        matrix.contains("| release=stay | hello | 4 KiB | 0 | 0 | 0 | 0 | **4 KiB** | 0 | - |"),
        "{matrix}"
    );
    let rows = std::fs::read_to_string(ws.root.join("res/matrix.csv")).unwrap();
    // One row per snapshot × set: start 1, work 2, final 2; two runs.
    assert_eq!(rows.lines().count(), 1 + 2 * 5, "{rows}");
    assert!(ws.root.join("res/hello/policies.svg").is_file());
}

#[test]
fn run_trace_boots_with_the_trace_on() {
    let ws = Workspace::new("run-trace");
    let qemu = ws.qemu(&format!(
        "echo \"args: $*\"; cat '{}/transcript'",
        ws.root.display()
    ));
    let output = ws.tally(
        Some(&qemu),
        &["run", "--config", "configs/hello.toml", "--trace"],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(all.contains(" transfer=direct trace=on set=hello"), "{all}");
}

/// A trace of one domain that maps two pages, shares one with a second domain, which copies it.
const TRACE: &str = "ledger 16
policies cow=writer msgbuf=sender pagetable=owner release=migrate kernel=self
boot 0 2
set 1 a - -
set 2 b - -
snapshot 10 16 14 0 start
dom 0 a 1
dom 1 b 2
anon 2 0
anon 3 0
share 2 1
cow 2 4 1
snapshot 20 16 11 3 copied
unmap 4 1
unmap 2 0
unmap 3 0
snapshot 30 16 14 0 final
";

#[test]
fn replay_writes_a_report_per_combination_and_checks_its_input() {
    let ws = Workspace::new("replay");
    std::fs::create_dir_all(ws.root.join("run")).unwrap();
    std::fs::write(ws.root.join("run/trace.txt"), TRACE).unwrap();
    let output = ws.tally(None, &["replay", "run", "--policy", "cow=holder"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        stdout.contains(
            "cow=holder msgbuf=sender pagetable=owner release=migrate kernel=self move=stay: exact"
        ),
        "{stdout}"
    );
    let report =
        std::fs::read_to_string(ws.root.join(
            "run/replay/cow-holder_msgbuf-sender_pagetable-owner_release-migrate_kernel-self_move-stay/report.json",
        ))
        .unwrap();
    assert!(report.contains("\"replay\": {"), "{report}");
    assert!(ws.root.join("run/replay/comparison.md").is_file());
    assert!(ws.root.join("run/replay/comparison.csv").is_file());

    let output = ws.tally(None, &["replay", "run", "--all", "--out", "all"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let every: usize = policies::KEYS
        .iter()
        .map(|key| policies::valid_names(key).unwrap().len())
        .product();
    assert_eq!(
        std::fs::read_dir(ws.root.join("all")).unwrap().count(),
        every + 2
    );

    let output = ws.tally(None, &["replay", "run", "--policy", "cow=nobody"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("valid values: writer, holder, split"));
    let output = ws.tally(None, &["replay", "transcript"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("no trace records"),
        "{}",
        text(&output)
    );
    let output = ws.tally(None, &["replay", "nowhere"]);
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
}

#[test]
fn report_rebuilds_the_files_from_a_console_log() {
    let ws = Workspace::new("report");
    let output = ws.tally(None, &["report", "transcript", "--out", "rebuilt"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(ws.root.join("rebuilt/report.json").is_file());
}

#[test]
fn gdb_waits_for_a_debugger_without_a_timeout() {
    let ws = Workspace::new("gdb");
    // Echo the arguments, then behave like a run that takes longer than the timeout would allow.
    let qemu = ws.qemu(&format!(
        "echo \"args: $*\"; sleep 2; cat '{}/transcript'",
        ws.root.display()
    ));
    let output = ws.tally(
        Some(&qemu),
        &[
            "run",
            "--config",
            "configs/hello.toml",
            "--gdb",
            "--timeout",
            "1",
        ],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(
        all.contains("gdb-multiarch build/tally.elf -ex 'target remote :1234'"),
        "{all}"
    );
    assert!(
        all.contains(" -s -S -kernel build/tally.bin -append tally=1 config=hello "),
        "{all}"
    );
}

#[test]
fn a_config_outside_the_checkout_runs_from_any_directory() {
    let ws = Workspace::new("elsewhere");
    let outside = std::env::temp_dir().join(format!("tally-cli-outside-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&outside);
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("mine.toml"), CONFIG).unwrap();
    let qemu = ws.qemu(&format!("cat '{}/transcript'", ws.root.display()));
    // From the config's own directory, the checkout named by TALLY_ROOT: its programs, its
    // kernel image (the default `build/tally.bin` is looked up there), and the run in ./runs.
    let output = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["run", "--quiet", "--config", "mine.toml"])
        .current_dir(&outside)
        .env("NO_COLOR", "1")
        .env("TALLY_QEMU", &qemu)
        .env("TALLY_ROOT", &ws.root)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(outside.join("runs/mine/report.json").is_file());
    assert!(!ws.root.join("results").exists());
    // Without TALLY_ROOT the checkout is the one this executable was built in.
    let output = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["check", "mine.toml"])
        .current_dir(&outside)
        .env_remove("TALLY_ROOT")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let _ = std::fs::remove_dir_all(&outside);
}

#[test]
fn shards_merged_give_the_same_matrix_as_one_run() {
    let ws = Workspace::new("shards");
    let varied = format!("[experiment]\nvary = [\"release\", \"pagetable\"]\n{CONFIG}");
    std::fs::write(ws.root.join("configs/hello.toml"), varied).unwrap();
    let qemu = ws.qemu(&format!("cat '{}/transcript'", ws.root.display()));
    let whole = ws.tally(
        Some(&qemu),
        &["experiments", "--out-root", "whole", "configs/hello.toml"],
    );
    assert_eq!(whole.status.code(), Some(0), "{}", text(&whole));
    // Three slices of four runs, each into its own directory (as on separate machines).
    for index in 1..=3 {
        let shard = format!("{index}/3");
        let out = format!("part{index}");
        let output = ws.tally(
            Some(&qemu),
            &[
                "experiments",
                "--shard",
                &shard,
                "--out-root",
                &out,
                "configs/hello.toml",
            ],
        );
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        assert!(String::from_utf8_lossy(&output.stdout).contains(&format!("shard {shard}:")));
        assert!(!ws.root.join(&out).join("matrix.csv").exists());
    }
    let merged = ws.tally(
        None,
        &[
            "merge",
            "--out-root",
            "merged",
            "--from",
            "part1",
            "--from",
            "part2",
            "--from",
            "part3",
            "configs/hello.toml",
        ],
    );
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged));
    for file in [
        "matrix.csv",
        "matrix-attribution.csv",
        "matrix-domains.csv",
        "matrix.md",
        "hello/comparison.md",
        "hello/comparison.csv",
    ] {
        let one = std::fs::read_to_string(ws.root.join("whole").join(file)).unwrap();
        let joined = std::fs::read_to_string(ws.root.join("merged").join(file)).unwrap();
        assert_eq!(one, joined, "{file} differs");
    }
    assert!(
        ws.root
            .join("merged/hello/pagetable-causer_release-stay/report.json")
            .is_file()
            || ws
                .root
                .join("merged/hello/release-stay_pagetable-causer/report.json")
                .is_file()
    );
    // A missing slice is named, and nothing is written.
    let partial = ws.tally(
        None,
        &[
            "merge",
            "--out-root",
            "partial",
            "--from",
            "part1",
            "configs/hello.toml",
        ],
    );
    assert_eq!(partial.status.code(), Some(1), "{}", text(&partial));
    assert!(text(&partial).contains("not found"), "{}", text(&partial));
    assert!(!ws.root.join("partial/matrix.csv").exists());
}

#[test]
fn json_output_for_check_run_and_test() {
    let ws = Workspace::new("json");
    let qemu = ws.qemu(&format!("cat '{}/transcript'", ws.root.display()));
    let check = ws.tally(None, &["check", "--json", "configs/hello.toml"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    let value: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(value["ok"], true);
    assert_eq!(value["configs"][0]["domains"], 1);
    std::fs::write(
        ws.root.join("configs/bad.toml"),
        CONFIG.replace("\"hello\"\ncharge_set", "\"helo\"\ncharge_set"),
    )
    .unwrap();
    let bad = ws.tally(None, &["check", "--json", "configs/bad.toml"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    let value: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(
        value["configs"][0]["diagnostics"][0]["key"],
        "domain.program"
    );
    let run = ws.tally(
        Some(&qemu),
        &["run", "--json", "--config", "configs/hello.toml"],
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let value: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(value["passed"], true);
    assert_eq!(value["report"]["snapshots"][1]["label"], "work");
    let test = ws.tally(Some(&qemu), &["test", "--json", "configs/hello.toml"]);
    assert_eq!(test.status.code(), Some(0), "{}", text(&test));
    let value: serde_json::Value = serde_json::from_slice(&test.stdout).unwrap();
    assert_eq!(value["runs_passed"], 1);
    assert_eq!(value["runs"][0]["passed"], true);
}

#[test]
fn diff_compares_two_runs_and_two_policies_of_a_scenario() {
    let ws = Workspace::new("diff");
    let varied = format!("[experiment]\nvary = [\"release\"]\n{CONFIG}");
    std::fs::write(ws.root.join("configs/hello.toml"), varied).unwrap();
    let qemu = ws.qemu(&format!("cat '{}/transcript'", ws.root.display()));
    let output = ws.tally(
        Some(&qemu),
        &["experiments", "--out-root", "res", "configs/hello.toml"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let two_runs = ws.tally(
        None,
        &[
            "diff",
            "--exit-code",
            "res/hello/release-migrate",
            "res/hello/release-stay",
        ],
    );
    assert_eq!(two_runs.status.code(), Some(0), "{}", text(&two_runs));
    assert!(text(&two_runs).contains("The outcomes are identical"));
    for file in ["diff.md", "diff.csv", "diff.svg"] {
        assert!(ws.root.join("runs/diff").join(file).is_file(), "{file}");
    }
    // The fake QEMU prints one transcript for every run; make the second report say what a
    // real kernel would have: the policy it ran under.
    let stay = ws.root.join("res/hello/release-stay/report.json");
    let report = std::fs::read_to_string(&stay).unwrap();
    assert!(report.contains("\"release\": \"migrate\""));
    std::fs::write(
        &stay,
        report.replace("\"release\": \"migrate\"", "\"release\": \"stay\""),
    )
    .unwrap();
    let policies = ws.tally(
        None,
        &[
            "diff",
            "res/hello",
            "--policy",
            "release=migrate",
            "--policy",
            "release=stay",
        ],
    );
    assert_eq!(policies.status.code(), Some(0), "{}", text(&policies));
    let ambiguous = ws.tally(
        None,
        &[
            "diff",
            "res/hello",
            "--policy",
            "cow=writer",
            "--policy",
            "release=stay",
        ],
    );
    assert_eq!(ambiguous.status.code(), Some(2), "{}", text(&ambiguous));
    assert!(
        text(&ambiguous).contains("matches 2 runs"),
        "{}",
        text(&ambiguous)
    );
}
