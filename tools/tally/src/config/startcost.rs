//! Whether the domains a config starts at boot fit their charge sets: every boot domain is
//! created before any runs, and creating one charges its kernel objects, its root table, the
//! page tables of its program image and the image's pages to its own set (and so to every
//! ancestor's subtree). A limit or sub-limit smaller than what the domains below it need to
//! start would make the kernel refuse the boot config, so it is refused here, with the line of
//! the limit, what the domains need and what each one needs.
//!
//! The costs come from the built program images (`kcore::elf`, the kernel's own reader); when
//! the programs are not built yet (no `make image` so far), this check is skipped.

use std::path::{Path, PathBuf};

use kcore::elf::{self, StartCost};
use kcore::limits::FRAME_BYTES;

use super::diagnostic::Diagnostics;
use super::*;
use crate::size::human;

/// The directory holding the built user programs: `TALLY_USER_DIR`, else the workspace's
/// `target/aarch64-unknown-none/release`.
pub fn program_dir(config_path: &Path) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TALLY_USER_DIR") {
        return Some(PathBuf::from(dir));
    }
    let root = crate::workspace::root_for(config_path)?;
    let dir = root.join("target/aarch64-unknown-none/release");
    dir.is_dir().then_some(dir)
}

/// The start cost of each domain's program (`None` where the image is not built), or the
/// diagnostic of a program the kernel could not load.
fn costs(config: &Config, dir: &Path, diagnostics: &mut Diagnostics<'_>) -> Vec<Option<StartCost>> {
    config
        .domains
        .iter()
        .map(|domain| {
            let bytes = std::fs::read(dir.join(&domain.program)).ok()?;
            let parsed = elf::parse(&bytes).map(|program| program.start_cost());
            match parsed {
                Ok(cost) => Some(cost),
                Err(error) => {
                    diagnostics.at_line(
                        Some(domain.lines.of("program")),
                        "domain.program",
                        format!(
                            "program `{}` ({}) cannot be loaded by the kernel: {error}",
                            domain.program,
                            dir.join(&domain.program).display()
                        ),
                    );
                    None
                }
            }
        })
        .collect()
}

fn describe(cost: &StartCost) -> String {
    format!(
        "{} ({} anon, {} pagetables, {} kernel)",
        human(cost.frames() * FRAME_BYTES),
        human(cost.anon * FRAME_BYTES),
        human(cost.pagetables * FRAME_BYTES),
        human(cost.kernel * FRAME_BYTES)
    )
}

/// Whether the set called `member` is `root` or one of its descendants (parents are
/// resolved and acyclic: `references` checked them).
fn in_subtree(config: &Config, root: &str, member: &str) -> bool {
    let mut name = member;
    for _ in 0..=config.charge_sets.len() {
        if name == root {
            return true;
        }
        match config
            .charge_sets
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.parent.as_deref())
        {
            Some(parent) => name = parent,
            None => return false,
        }
    }
    false
}

/// Checks that every boot domain's program loads and that every set's limit and sub-limits
/// hold what the boot domains in its subtree need to start.
pub(super) fn check(config: &Config, dir: &Path, diagnostics: &mut Diagnostics<'_>) {
    let costs = costs(config, dir, diagnostics);
    for set in &config.charge_sets {
        let members: Vec<(&Domain, StartCost)> = config
            .domains
            .iter()
            .zip(&costs)
            .filter(|(domain, _)| in_subtree(config, &set.name, &domain.charge_set))
            .filter_map(|(domain, cost)| cost.map(|cost| (domain, cost)))
            .collect();
        if members.is_empty() {
            continue;
        }
        let mut need = StartCost::default();
        for (_, cost) in &members {
            need.anon += cost.anon;
            need.pagetables += cost.pagetables;
            need.kernel += cost.kernel;
        }
        let each: Vec<String> = members
            .iter()
            .map(|(domain, cost)| format!("`{}` needs {}", domain.name, describe(cost)))
            .collect();
        let (who, they) = if members.len() == 1 {
            ("its boot domain".to_string(), "it needs")
        } else {
            (format!("its {} boot domains", members.len()), "they need")
        };
        if let Some(limit) = set.limit_bytes {
            let total = need.frames() * FRAME_BYTES;
            if limit < total {
                diagnostics.at_line(
                    Some(set.lines.of("limit")),
                    "charge_set.limit",
                    format!(
                        "limit {} of set `{}` is too small to start {who}: {they} {} to start ({}); the kernel would refuse to boot",
                        human(limit),
                        set.name,
                        human(total),
                        each.join("; ")
                    ),
                );
            }
        }
        for (kind, frames) in [
            ("anon", need.anon),
            ("pagetables", need.pagetables),
            ("kernel", need.kernel),
        ] {
            let Some((_, limit)) = set.kind_limits.iter().find(|(k, _)| k == kind) else {
                continue;
            };
            if *limit < frames * FRAME_BYTES {
                diagnostics.at_line(
                    Some(set.lines.of(kind)),
                    &format!("charge_set.{kind}"),
                    format!(
                        "`{kind}` sub-limit {} of set `{}` is too small to start {who}: {they} {} of `{kind}` to start ({}); the kernel would refuse to boot",
                        human(*limit),
                        set.name,
                        human(frames * FRAME_BYTES),
                        each.join("; ")
                    ),
                );
            }
        }
    }
}
