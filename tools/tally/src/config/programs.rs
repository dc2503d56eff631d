//! The programs a domain may run: the binaries of the `user` crate, i.e. the file stems of
//! `user/src/bin/*.rs` (and `user/src/bin/NAME/main.rs`) under the workspace root.

use std::path::{Path, PathBuf};

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

/// The program names under `root`, sorted; `Err` says why there is no list.
pub fn list_programs(root: &Path) -> Result<Vec<String>, String> {
    let bin = root.join("user/src/bin");
    let entries = std::fs::read_dir(&bin)
        .map_err(|error| format!("cannot list the programs in {}: {error}", bin.display()))?;
    let mut programs: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                path.join("main.rs")
                    .is_file()
                    .then(|| entry.file_name().to_string_lossy().into_owned())
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                path.file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
            } else {
                None
            }
        })
        .collect();
    programs.sort();
    Ok(programs)
}

/// The programs valid for the config at `config_path`: the workspace root is found from the
/// config's directory, else from the current directory.
pub(super) fn programs_for(config_path: &Path) -> Result<Vec<String>, String> {
    let config_dir = config_path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let root = find_workspace_root(config_dir)
        .or_else(|| find_workspace_root(Path::new(".")))
        .ok_or_else(|| {
            format!(
                "no workspace root (a Cargo.toml with [workspace]) above {} or the current directory",
                config_dir.display()
            )
        })?;
    list_programs(&root)
}
