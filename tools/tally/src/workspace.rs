//! Where the Tally checkout is, so that `tally` works from any directory with configs
//! anywhere: the default kernel image (`build/tally.bin`), the user programs
//! (`user/src/bin/`, their images under `target/aarch64-unknown-none/release/`) are found in
//! it, not relative to the current directory.
//!
//! The checkout is, in this order: `TALLY_ROOT`; the workspace above the config (when the
//! config lives in a checkout); the workspace above the current directory; the workspace above
//! this executable (`target/release/tally` sits in one).

use std::path::{Path, PathBuf};

/// The environment variable naming the checkout explicitly.
pub const ROOT_VARIABLE: &str = "TALLY_ROOT";

/// Walks up from `start` to the first directory whose `Cargo.toml` declares a `[workspace]`.
pub fn find_workspace_root(start: &Path) -> Option<PathBuf> {
    let start = start.canonicalize().ok()?;
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .map(|manifest| manifest.lines().any(|line| line.trim() == "[workspace]"))
                .unwrap_or(false)
        })
        .map(Path::to_path_buf)
}

/// The checkout for work on `config_path` (see the module comment for the order).
pub fn root_for(config_path: &Path) -> Option<PathBuf> {
    let config_dir = config_path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    explicit()
        .or_else(|| find_workspace_root(config_dir))
        .or_else(root)
}

/// The checkout when no config is involved: `TALLY_ROOT`, the current directory's workspace,
/// else this executable's.
pub fn root() -> Option<PathBuf> {
    explicit()
        .or_else(|| find_workspace_root(Path::new(".")))
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            find_workspace_root(exe.parent()?)
        })
}

fn explicit() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os(ROOT_VARIABLE)?);
    (!dir.as_os_str().is_empty()).then_some(dir)
}

/// A path given relative to the checkout (`build/tally.bin`): as given when it exists from the
/// current directory or no checkout is known, else inside the checkout.
pub fn resolve(path: &Path) -> PathBuf {
    if path.is_absolute() || path.exists() {
        return path.to_path_buf();
    }
    match root() {
        Some(root) if root.join(path).exists() => root.join(path),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkout_is_found_above_a_config_inside_it() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs");
        let root = root_for(&here).expect("the tool's own checkout");
        assert!(root.join("kernel").is_dir(), "{}", root.display());
    }

    #[test]
    fn a_missing_relative_path_resolves_into_the_checkout() {
        let resolved = resolve(Path::new("tools/tally/Cargo.toml"));
        assert!(resolved.exists(), "{}", resolved.display());
        let absent = resolve(Path::new("no/such/file"));
        assert_eq!(absent, Path::new("no/such/file"));
    }
}
