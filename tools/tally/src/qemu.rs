//! Running the kernel under `qemu-system-aarch64`: finding the binary (`TALLY_QEMU` overrides
//! the `PATH` lookup), building the command line, streaming the console line by line, and
//! enforcing a timeout by killing QEMU.
//!
//! The serial console is QEMU's stdout; QEMU's own diagnostics go to its stderr, which is kept
//! apart so that `console.log` is exactly what the guest printed.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::exit::Failure;

/// The environment variable naming the QEMU binary to use instead of `qemu-system-aarch64`.
pub const QEMU_ENV: &str = "TALLY_QEMU";
/// The QEMU binary looked up on `PATH`.
pub const QEMU_BINARY: &str = "qemu-system-aarch64";
/// CPU models `--cpu` accepts.
pub const CPUS: [&str; 2] = ["cortex-a72", "max"];

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The kernel image (`-kernel`).
    pub kernel: PathBuf,
    /// The boot arguments (`-append`).
    pub bootargs: String,
    /// Guest RAM for `-m` (e.g. `128M`).
    pub mem: String,
    /// `-cpu`.
    pub cpu: String,
    /// Wait for a debugger on :1234 (`-s -S`).
    pub gdb: bool,
    /// Kill QEMU after this long; `None` waits for ever.
    pub timeout: Option<Duration>,
    /// More arguments, after the others (`tally profile`: `-plugin PATH,ARGS -d plugin -D FILE`).
    pub extra: Vec<String>,
}

/// Which QEMU output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The guest's serial console.
    Console,
    /// QEMU's own diagnostics.
    Qemu,
}

/// How QEMU ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this status (semihosting `SYS_EXIT` sets it).
    Exited(i32),
    /// It was ended by a signal it did not ask for.
    Killed,
    /// The host killed it at the timeout.
    TimedOut,
}

/// What a run of QEMU produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How it ended.
    pub ending: Ending,
    /// The whole serial console, as printed.
    pub console: String,
    /// QEMU's stderr.
    pub qemu_stderr: String,
    /// Wall-clock time taken.
    pub elapsed: Duration,
}

impl Outcome {
    /// The last `count` lines of the console.
    /// The report protocol's `@tally/1` records are left out: they are machine input (already
    /// in report.json), and a snapshot record is one long JSON line.
    pub fn last_console_lines(&self, count: usize) -> Vec<&str> {
        let lines: Vec<&str> = self
            .console
            .lines()
            .filter(|line| !line.starts_with("@tally/"))
            .collect();
        lines[lines.len().saturating_sub(count)..].to_vec()
    }
}

/// The QEMU binary: `$TALLY_QEMU` if set, else `qemu-system-aarch64` on `PATH`. A missing
/// binary is an environment error (exit 4) that says how to install it.
pub fn find_qemu() -> Result<PathBuf, Failure> {
    if let Some(path) = std::env::var_os(QEMU_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Failure::environment(format!(
                "{QEMU_ENV} is set to {}, which is not a file",
                path.display()
            )))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(QEMU_BINARY))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            Failure::environment(format!(
                "{QEMU_BINARY} is not installed (not found on PATH): run `make run`, which installs it, \
                 or `apt-get install qemu-system-arm`; or point {QEMU_ENV} at a QEMU binary"
            ))
        })
}

/// QEMU's arguments for `launch` (without the binary).
pub fn arguments(launch: &Launch) -> Vec<String> {
    let mut args: Vec<String> = [
        "-machine",
        "virt",
        "-cpu",
        &launch.cpu,
        "-m",
        &launch.mem,
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "stdio",
        "-semihosting",
        "-icount",
        "shift=0,sleep=off",
    ]
    .map(String::from)
    .to_vec();
    if launch.gdb {
        args.extend(["-s", "-S"].map(String::from));
    }
    args.push("-kernel".into());
    args.push(launch.kernel.display().to_string());
    args.push("-append".into());
    args.push(launch.bootargs.clone());
    args.extend(launch.extra.iter().cloned());
    args
}

/// Formats a command line so it can be pasted into a shell.
pub fn shell_line(binary: &Path, args: &[String]) -> String {
    std::iter::once(binary.display().to_string())
        .chain(args.iter().cloned())
        .map(|word| {
            if !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_=,./:+".contains(c))
            {
                word
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs QEMU to the end (or the timeout), calling `on_line` for every line of console and of
/// QEMU's stderr as it arrives (without the line break). Stdin is the null device.
pub fn run(
    binary: &Path,
    launch: &Launch,
    mut on_line: impl FnMut(Stream, &str),
) -> Result<Outcome, Failure> {
    let started = Instant::now();
    let mut child = spawn(binary, &arguments(launch))?;

    let (sender, receiver) = mpsc::channel::<(Stream, String)>();
    let readers = [
        spawn_reader(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            Stream::Console,
            sender.clone(),
        ),
        spawn_reader(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            Stream::Qemu,
            sender,
        ),
    ];

    let deadline = launch.timeout.map(|timeout| started + timeout);
    let mut transcript = Transcript::default();
    let mut timed_out = false;
    loop {
        let wait = match deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) => left.min(Duration::from_millis(200)),
                None => {
                    timed_out = true;
                    break;
                }
            },
            None => Duration::from_millis(200),
        };
        match receiver.recv_timeout(wait) {
            Ok((stream, line)) => {
                transcript.push(stream, &line);
                on_line(stream, &line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Both pipes are closed: QEMU is exiting.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if timed_out {
        kill(&mut child);
    }
    let status = wait_until(&mut child, deadline)?;
    // Collect anything still in flight. Normally the pipes are already closed; after a kill,
    // give them a moment (a grandchild could hold a pipe open, so never wait for ever).
    let grace = Instant::now() + Duration::from_millis(500);
    while let Some(left) = grace.checked_duration_since(Instant::now()) {
        match receiver.recv_timeout(left) {
            Ok((stream, line)) => {
                transcript.push(stream, &line);
                on_line(stream, &line);
            }
            Err(_) => break,
        }
    }
    if !timed_out {
        for reader in readers.into_iter().flatten() {
            let _ = reader.join();
        }
    }
    let ending = match status {
        None => Ending::TimedOut,
        Some(_) if timed_out => Ending::TimedOut,
        Some(status) => match status.code() {
            Some(code) => Ending::Exited(code),
            None => Ending::Killed,
        },
    };
    Ok(Outcome {
        ending,
        console: transcript.console,
        qemu_stderr: transcript.qemu_stderr,
        elapsed: started.elapsed(),
    })
}

/// Starts QEMU with stdin null and both outputs piped. A binary just written (a fake QEMU in a
/// test) can be briefly "busy" while another thread's fork still holds it open for writing, so
/// that error is retried a few times.
fn spawn(binary: &Path, args: &[String]) -> Result<Child, Failure> {
    let mut attempts = 0;
    loop {
        let result = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match result {
            Ok(child) => return Ok(child),
            Err(error)
                if error.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 20 =>
            {
                attempts += 1;
                thread::sleep(Duration::from_millis(25));
            }
            Err(error) => {
                return Err(Failure::environment(format!(
                    "cannot start {}: {error}",
                    binary.display()
                )))
            }
        }
    }
}

/// The two outputs, accumulated line by line.
#[derive(Default)]
struct Transcript {
    console: String,
    qemu_stderr: String,
}

impl Transcript {
    fn push(&mut self, stream: Stream, line: &str) {
        let target = match stream {
            Stream::Console => &mut self.console,
            Stream::Qemu => &mut self.qemu_stderr,
        };
        target.push_str(line);
        target.push('\n');
    }
}

fn spawn_reader(
    pipe: Option<Box<dyn Read + Send>>,
    stream: Stream,
    sender: mpsc::Sender<(Stream, String)>,
) -> Option<thread::JoinHandle<()>> {
    let pipe = pipe?;
    Some(thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while buffer.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        buffer.pop();
                    }
                    let line = String::from_utf8_lossy(&buffer).into_owned();
                    if sender.send((stream, line)).is_err() {
                        break;
                    }
                }
            }
        }
    }))
}

fn kill(child: &mut Child) {
    // The child may have exited on its own in the meantime; either way it is gone after this.
    let _ = child.kill();
}

/// Waits for QEMU; past the deadline it is killed (it closed its pipes but did not exit).
/// `None` = it had to be killed.
fn wait_until(child: &mut Child, deadline: Option<Instant>) -> Result<Option<ExitStatus>, Failure> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) => {}
            Err(error) => return Err(Failure::environment(format!("waiting for QEMU: {error}"))),
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            kill(child);
            let _ = child.wait();
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Writes an executable shell script standing in for QEMU; returns its path.
    pub(crate) fn fake_qemu(dir: &Path, name: &str, body: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    pub(crate) fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tally-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn launch(timeout_ms: u64) -> Launch {
        Launch {
            kernel: PathBuf::from("build/tally.bin"),
            bootargs: "tally=1 config=x".into(),
            mem: "128M".into(),
            cpu: "cortex-a72".into(),
            gdb: false,
            timeout: Some(Duration::from_millis(timeout_ms)),
            extra: Vec::new(),
        }
    }

    #[test]
    fn the_command_line_matches_the_contract() {
        let args = arguments(&launch(1000));
        assert_eq!(
            shell_line(Path::new("qemu-system-aarch64"), &args),
            "qemu-system-aarch64 -machine virt -cpu cortex-a72 -m 128M -display none -monitor none \
             -serial stdio -semihosting -icount shift=0,sleep=off -kernel build/tally.bin \
             -append 'tally=1 config=x'"
        );
        let mut gdb = launch(1000);
        gdb.gdb = true;
        assert!(arguments(&gdb).windows(2).any(|w| w == ["-s", "-S"]));
    }

    #[test]
    fn streams_lines_and_reports_the_exit_status() {
        let dir = scratch("qemu-stream");
        let qemu = fake_qemu(
            &dir,
            "qemu",
            "echo one; echo 'qemu: warning' >&2; printf 'two\\r\\nthree'; exit 7",
        );
        let mut seen = Vec::new();
        let outcome = run(&qemu, &launch(10_000), |stream, line| {
            seen.push((stream, line.to_string()))
        })
        .unwrap();
        assert_eq!(outcome.ending, Ending::Exited(7));
        assert_eq!(outcome.console, "one\ntwo\nthree\n");
        assert_eq!(outcome.qemu_stderr, "qemu: warning\n");
        assert!(seen.contains(&(Stream::Qemu, "qemu: warning".to_string())));
        assert_eq!(outcome.last_console_lines(2), ["two", "three"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_arguments_reach_qemu_and_stdin_is_null() {
        let dir = scratch("qemu-args");
        let qemu = fake_qemu(
            &dir,
            "qemu",
            "for a in \"$@\"; do echo \"[$a]\"; done; cat; echo end",
        );
        let outcome = run(&qemu, &launch(10_000), |_, _| {}).unwrap();
        assert!(outcome.console.contains("[-append]\n[tally=1 config=x]\n"));
        assert!(outcome.console.ends_with("[tally=1 config=x]\nend\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_hung_qemu_is_killed_at_the_timeout() {
        let dir = scratch("qemu-hang");
        let qemu = fake_qemu(&dir, "qemu", "echo booting; exec sleep 30");
        let started = Instant::now();
        let outcome = run(&qemu, &launch(300), |_, _| {}).unwrap();
        assert_eq!(outcome.ending, Ending::TimedOut);
        assert_eq!(outcome.console, "booting\n");
        assert!(started.elapsed() < Duration::from_secs(10));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_grandchild_holding_the_console_open_does_not_hang_the_harness() {
        let dir = scratch("qemu-grandchild");
        let qemu = fake_qemu(&dir, "qemu", "sleep 5 & echo booting; wait");
        let started = Instant::now();
        let outcome = run(&qemu, &launch(300), |_, _| {}).unwrap();
        assert_eq!(outcome.ending, Ending::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(3));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
