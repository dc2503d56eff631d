//! The tool's exit statuses, and the error type that carries one.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | ok |
//! | 1 | the run failed: non-zero kernel status, a conservation check failed, an expectation failed, a replay check failed |
//! | 2 | config or usage error: nothing booted |
//! | 3 | timeout: QEMU was killed |
//! | 4 | environment error: QEMU or the kernel image missing, an output directory not writable |

use std::fmt;

/// Everything went as expected.
pub const OK: u8 = 0;
/// The run failed.
pub const RUN_FAILED: u8 = 1;
/// Config or usage error; nothing booted.
pub const CONFIG_ERROR: u8 = 2;
/// The run timed out and QEMU was killed.
pub const TIMEOUT: u8 = 3;
/// QEMU, the kernel image or the file system let us down.
pub const ENVIRONMENT: u8 = 4;

/// An error that decides the exit status.
#[derive(Debug)]
pub struct Failure {
    /// One of the constants above.
    pub status: u8,
    /// What to tell the user.
    pub message: String,
}

impl Failure {
    /// A failure with `status`.
    pub fn new(status: u8, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// Exit status 2.
    pub fn config(message: impl fmt::Display) -> Self {
        Self::new(CONFIG_ERROR, message.to_string())
    }

    /// Exit status 4.
    pub fn environment(message: impl fmt::Display) -> Self {
        Self::new(ENVIRONMENT, message.to_string())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}
