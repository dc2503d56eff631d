//! The console: formatted output on the PL011 and the `log` backend.
//!
//! Kernel log lines look like `[  info] message`; framed machine-readable lines (reports,
//! traces) are written with [`framed`] so they always start at a line boundary (ending any
//! program's unfinished line first) with the `@tally/1 ` prefix. User output goes through [`user_write`], which prefixes every line with
//! the domain's name so a program cannot forge a framed line.

use crate::arch::aarch64::mmu::phys_to_virt;
use crate::board::qemu_virt::{pl011::Pl011, UART_PA};
use core::fmt::{self, Write};
use spin::Mutex;

struct Console {
    uart: Pl011,
    /// Whether the last byte written ended a line (or nothing was written yet).
    at_line_start: bool,
    /// The domain whose output the open line holds (empty: the kernel's).
    line_owner: crate::object::domain::Name,
}

impl Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for byte in text.bytes() {
            if byte == b'\n' {
                self.uart.write_byte(b'\r');
            }
            self.uart.write_byte(byte);
        }
        if let Some(&last) = text.as_bytes().last() {
            self.at_line_start = last == b'\n';
            self.line_owner.clear();
        }
        Ok(())
    }
}

impl Console {
    /// Ends the open line, if there is one.
    fn end_line(&mut self) {
        if !self.at_line_start {
            let _ = self.write_str("\n");
        }
    }
}

// SAFETY: the UART block is mapped by boot.s (GiB 0 is device memory in the linear map) and
// only this console touches it.
static CONSOLE: Mutex<Console> = Mutex::new(Console {
    uart: unsafe { Pl011::new(phys_to_virt(UART_PA)) },
    at_line_start: true,
    line_owner: heapless::String::new(),
});

/// Programs the UART. Output works before this (QEMU needs no set-up), so it is idempotent.
pub fn init() {
    CONSOLE.lock().uart.init();
}

/// Writes formatted text.
pub fn write_fmt(args: fmt::Arguments) {
    let _ = CONSOLE.lock().write_fmt(args);
}

/// Writes a framed line: `@tally/1 <record> ` followed by whatever `body` writes, then `\n`.
pub fn framed(record: &str, body: impl FnOnce(&mut dyn Write) -> fmt::Result) {
    let mut console = CONSOLE.lock();
    // A program's unfinished line ends here: the record starts a line of its own.
    console.end_line();
    let _ = write!(console, "@tally/1 {record} ");
    let _ = body(&mut *console);
    let _ = console.write_str("\n");
}

/// Writes user output, each line prefixed with `[name] `. Invalid UTF-8 bytes and control
/// characters other than newline and tab are shown as `?`. A line another writer broke into
/// (a record, the kernel's log, another domain) goes on, prefixed again, on a line of its own.
pub fn user_write(name: &str, bytes: &[u8]) {
    let mut console = CONSOLE.lock();
    for &byte in bytes {
        if console.at_line_start || console.line_owner != name {
            console.end_line();
            let _ = write!(console, "[{name}] ");
            console.line_owner.clear();
            let _ = console.line_owner.push_str(name);
            console.at_line_start = false;
        }
        let shown = match byte {
            b'\n' | b'\t' | 0x20..=0x7e => byte,
            _ => b'?',
        };
        if shown == b'\n' {
            console.uart.write_byte(b'\r');
            console.at_line_start = true;
        }
        console.uart.write_byte(shown);
    }
}

/// Releases the console lock without an owner: only for the panic path, which must print
/// even if the panic happened while printing.
pub fn force_unlock() {
    // SAFETY: called only on the panic path, after which the kernel never returns to the code
    // that held the lock.
    unsafe { CONSOLE.force_unlock() };
}

/// `print!` to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::write_fmt(format_args!($($arg)*)) };
}

/// `println!` to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::write_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let level = match record.level() {
                log::Level::Error => "error",
                log::Level::Warn => " warn",
                log::Level::Info => " info",
                log::Level::Debug => "debug",
                log::Level::Trace => "trace",
            };
            println!("[{level}] {}", record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Installs the console as the `log` backend at `level`.
pub fn init_log(level: log::LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
