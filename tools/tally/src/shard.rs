//! Sweeps over several machines: `tally experiments --shard I/N` runs the I-th of N slices of
//! the planned runs, and `tally merge` joins the slices' run directories into the same policy
//! matrix one `tally experiments` would have written (docs/sweeps.md has a Slurm array and a
//! GNU parallel example).
//!
//! The plan is deterministic (configs in the order given, each one's combinations in registry
//! order), so every shard computes the same list and takes the runs whose position modulo N is
//! I − 1: slices are disjoint, cover the plan, and differ in size by at most one run. Each run
//! leaves `outcome.json` beside its report (its own checks' failures); the expectations that
//! compare two runs (`minus_policy`) may span slices, so they are checked at merge, over every
//! run's report.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::exit::Failure;
use crate::report::Report;
use crate::testing::{Job, JobOutcome};

/// The file a run leaves for `tally merge`.
pub const OUTCOME_FILE: &str = "outcome.json";

/// One slice of a sweep: the `index`-th (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1 ..= count.
    pub index: usize,
    /// At least 1.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N` with 1 ≤ I ≤ N.
    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || format!("`{text}` is not a shard: give I/N with 1 <= I <= N, e.g. 2/8");
        let (index, count) = text.split_once('/').ok_or_else(usage)?;
        let index: usize = index.trim().parse().map_err(|_| usage())?;
        let count: usize = count.trim().parse().map_err(|_| usage())?;
        if count == 0 || index == 0 || index > count {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// This slice's runs of the whole `plan`, in plan order.
    pub fn select<T>(self, plan: Vec<T>) -> Vec<T> {
        plan.into_iter()
            .enumerate()
            .filter(|(position, _)| position % self.count == self.index - 1)
            .map(|(_, job)| job)
            .collect()
    }
}

/// What `outcome.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedOutcome {
    /// `tally.outcome/1`.
    pub schema: String,
    /// The run's label (`cow-fork [cow=holder release=stay]`).
    pub run: String,
    /// The failures of the run's own checks (expectations comparing two runs excluded).
    /// (No wall-clock time: the file is committed in results/, which holds only facts.)
    pub failures: Vec<String>,
}

/// Writes `outcome.json` into the run's directory (best effort: the run's own files say the
/// same, and merge names a missing one).
pub fn save(outcome: &JobOutcome) {
    let saved = SavedOutcome {
        schema: "tally.outcome/1".to_string(),
        run: outcome.job.label(),
        failures: outcome.failures.clone(),
    };
    if let Ok(text) = serde_json::to_string_pretty(&saved) {
        let _ = std::fs::write(outcome.job.out_dir.join(OUTCOME_FILE), text + "\n");
    }
}

/// The outcome of every job of `plan`, read from the first of `from` that holds its directory
/// (`<root>/<scenario>/<combination>/`); the job's `out_dir` becomes that directory. `Err`
/// names every run not found.
pub fn load(plan: Vec<Job>, out_root: &Path, from: &[PathBuf]) -> Result<Vec<JobOutcome>, Failure> {
    let mut outcomes = Vec::new();
    let mut missing = Vec::new();
    for mut job in plan {
        let relative = job
            .out_dir
            .strip_prefix(out_root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| job.out_dir.clone());
        let found = from
            .iter()
            .map(|root| root.join(&relative))
            .find(|dir| dir.join(OUTCOME_FILE).is_file());
        let Some(dir) = found else {
            missing.push(format!("{} ({})", job.label(), relative.display()));
            continue;
        };
        let saved: SavedOutcome = read_json(&dir.join(OUTCOME_FILE))?;
        let report: Option<Report> = if dir.join("report.json").is_file() {
            Some(read_json(&dir.join("report.json"))?)
        } else {
            None
        };
        job.out_dir = dir;
        outcomes.push(JobOutcome {
            job,
            failures: saved.failures,
            report,
            seconds: 0.0,
        });
    }
    if missing.is_empty() {
        Ok(outcomes)
    } else {
        Err(Failure::new(
            crate::exit::RUN_FAILED,
            format!(
                "{} of the sweep not found under {} (has every shard run and been copied?):\n  {}",
                crate::words::count(missing.len(), "run"),
                from.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                missing.join("\n  ")
            ),
        ))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::environment(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        Failure::new(
            crate::exit::RUN_FAILED,
            format!("{}: not a file tally wrote: {e}", path.display()),
        )
    })
}

/// Copies a run directory's files (not its subdirectories) into `to`.
pub fn copy_run(from: &Path, to: &Path) -> Result<(), Failure> {
    if from == to {
        return Ok(());
    }
    let io = |e: std::io::Error| {
        Failure::environment(format!(
            "cannot copy {} to {}: {e}",
            from.display(),
            to.display()
        ))
    };
    std::fs::create_dir_all(to).map_err(io)?;
    for entry in std::fs::read_dir(from).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_type().map_err(io)?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).map_err(io)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_refuse_nonsense() {
        assert_eq!("2/8".parse(), Ok(Shard { index: 2, count: 8 }));
        for bad in ["0/4", "5/4", "1/0", "2", "a/b", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn slices_are_disjoint_cover_the_plan_and_balance() {
        let plan: Vec<usize> = (0..23).collect();
        let count = 5;
        let mut seen = Vec::new();
        for index in 1..=count {
            let slice = Shard { index, count }.select(plan.clone());
            assert!((4..=5).contains(&slice.len()));
            seen.extend(slice);
        }
        seen.sort();
        assert_eq!(seen, plan);
    }
}
