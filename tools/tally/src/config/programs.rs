//! The programs a domain may run: the binaries of the `user` crate, i.e. the file stems of
//! `user/src/bin/*.rs` (and `user/src/bin/NAME/main.rs`) under the workspace root.

use std::path::Path;

pub use crate::workspace::find_workspace_root;

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

/// The programs valid for the config at `config_path`, from the checkout
/// [`crate::workspace::root_for`] finds.
pub(super) fn programs_for(config_path: &Path) -> Result<Vec<String>, String> {
    let root = crate::workspace::root_for(config_path).ok_or_else(|| {
        format!(
            "no Tally checkout (a Cargo.toml with [workspace]) above {}, the current directory or the tally executable; set {} to the checkout",
            config_path.display(),
            crate::workspace::ROOT_VARIABLE
        )
    })?;
    list_programs(&root)
}
