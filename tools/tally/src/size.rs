//! Byte sizes in human units: parsing the forms configs and the command line accept, and
//! formatting sizes for people (tables, charts) and for QEMU's `-m`.
//!
//! Accepted forms: a plain decimal integer (bytes) or an integer followed by a unit, with or
//! without a space: `B`, `K`/`KiB`, `M`/`MiB`, `G`/`GiB`, case-insensitive. All units are powers of
//! 1024. Fractions and SI units (`KB`, `MB`) are rejected rather than guessed at.
//!
//! Hand-written rather than a crate's on purpose: the size crates (`bytesize`, `byte-unit`)
//! read `128M` and `4G` as decimal megabytes and gigabytes, but Tally's sizes are QEMU's
//! (`-m 128M` is 128 MiB) and the kernel's frames are 4 KiB; a guessed-at SI unit would silently
//! change a limit by 5 %. Parsing three binary units takes these few lines.

use std::fmt;

/// The forms [`parse_size`] accepts, for error messages.
pub const ACCEPTED_FORMS: &str =
    "an integer number of bytes, or an integer with a unit B, K/KiB, M/MiB, G/GiB (case-insensitive), e.g. \"4096\", \"64K\", \"256 KiB\", \"1 MiB\", \"2 GiB\"";

/// Why a size string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeError {
    /// The text that was rejected.
    pub text: String,
    /// What was wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot parse size {:?}: {}; accepted forms: {}",
            self.text, self.reason, ACCEPTED_FORMS
        )
    }
}

impl std::error::Error for SizeError {}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Parses a size such as `"256 KiB"` into bytes.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let fail = |reason| SizeError {
        text: text.to_string(),
        reason,
    };
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, rest) = trimmed.split_at(digits_end);
    if digits.is_empty() {
        return Err(fail("it does not start with a number"));
    }
    let unit = rest.trim_start();
    let multiplier = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => KIB,
        "m" | "mib" => MIB,
        "g" | "gib" => GIB,
        _ if unit.starts_with('.') => return Err(fail("fractions are not accepted")),
        _ => return Err(fail("unknown unit")),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| fail("the number is too large"))?;
    number
        .checked_mul(multiplier)
        .ok_or_else(|| fail("the size does not fit in 64 bits"))
}

/// Formats bytes for people: `512 B`, `4.0 KiB`, `1.5 MiB`, `2.00 GiB`. Exact multiples print
/// without a fraction (`64 KiB`).
pub fn human(bytes: u64) -> String {
    let (unit, scale) = if bytes >= GIB {
        ("GiB", GIB)
    } else if bytes >= MIB {
        ("MiB", MIB)
    } else if bytes >= KIB {
        ("KiB", KIB)
    } else {
        return format!("{bytes} B");
    };
    if bytes.is_multiple_of(scale) {
        format!("{} {unit}", bytes / scale)
    } else {
        format!("{:.1} {unit}", bytes as f64 / scale as f64)
    }
}

/// What guest RAM may be, for error messages.
pub const MEM_RULE: &str =
    "guest RAM must be a whole number of MiB from 16 MiB to 8 GiB (the range the kernel boots with), e.g. \"128M\" or \"4 GiB\"";

/// Formats a guest RAM size for QEMU's `-m` option, which takes mebibytes with an `M` suffix.
/// Returns `None` when `bytes` is not a whole number of MiB or outside the range the kernel
/// boots with ([`kcore::limits::MIN_RAM_BYTES`] to [`kcore::limits::MAX_RAM_BYTES`]).
pub fn qemu_mem(bytes: u64) -> Option<String> {
    let in_range = (kcore::limits::MIN_RAM_BYTES..=kcore::limits::MAX_RAM_BYTES).contains(&bytes);
    (in_range && bytes.is_multiple_of(MIB)).then(|| format!("{}M", bytes / MIB))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 * 1024));
        assert_eq!(parse_size("64k"), Ok(64 * 1024));
        assert_eq!(parse_size("256 KiB"), Ok(256 * 1024));
        assert_eq!(parse_size("256 kib"), Ok(256 * 1024));
        assert_eq!(parse_size("1 MiB"), Ok(1 << 20));
        assert_eq!(parse_size("128M"), Ok(128 << 20));
        assert_eq!(parse_size("2 GiB"), Ok(2 << 30));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("100 B"), Ok(100));
        assert_eq!(parse_size(" 0 "), Ok(0));
    }

    #[test]
    fn rejects_everything_else_and_says_what_is_accepted() {
        for bad in [
            "", "KiB", "1.5 MiB", "12 KB", "12 mb", "-4", "1 TiB", "0x10", "1 2",
        ] {
            let error = parse_size(bad).expect_err(bad);
            let message = error.to_string();
            assert!(message.contains("accepted forms"), "{message}");
            assert!(message.contains("256 KiB"), "{message}");
        }
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("17179869184 GiB").is_err());
    }

    #[test]
    fn human_units_round_trip_through_the_parser_when_exact() {
        for bytes in [0, 1, 4096, 65536, 1 << 20, 3 << 30] {
            let text = human(bytes);
            assert_eq!(parse_size(&text), Ok(bytes), "{text}");
        }
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(512), "512 B");
    }

    #[test]
    fn qemu_memory_is_whole_mebibytes() {
        assert_eq!(qemu_mem(128 << 20).as_deref(), Some("128M"));
        assert_eq!(qemu_mem(4 << 30).as_deref(), Some("4096M"));
        assert_eq!(qemu_mem(16 << 20).as_deref(), Some("16M"));
        assert_eq!(qemu_mem(8 << 30).as_deref(), Some("8192M"));
        assert_eq!(qemu_mem(1000), None);
        assert_eq!(qemu_mem(0), None);
        assert_eq!(qemu_mem(8 << 20), None);
        assert_eq!(qemu_mem((8 << 30) + (1 << 20)), None);
        assert_eq!(qemu_mem(1_000_000 << 30), None);
    }
}
