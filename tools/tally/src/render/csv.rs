//! The CSV files, written with the `csv` crate, one set of column names for all of them so that
//! a run's `report.csv`, a scenario's `comparison.csv`, `results/matrix.csv` and a replay's
//! `comparison.csv` load into one data frame:
//!
//! - **charges** (`report.csv`, `comparison.csv`, `matrix.csv`): one row per run × snapshot ×
//!   charge set, every figure of the set: `current_KIND`, `peak_KIND`, `denied_KIND` and their
//!   `_total`s, the limit and each kind's sub-limit, the subtree's bytes, the cumulative charged
//!   and uncharged bytes, and the bytes it paid for others.
//! - **attribution** (`attribution.csv`, `comparison-attribution.csv`,
//!   `matrix-attribution.csv`): one row per run × snapshot × payer set × causer domain × kind:
//!   the bytes the set pays that the causer's actions made (the report's `caused` table, the
//!   set's own domains included, `own = true`; `(none)` for what no domain caused).
//! - **domains** (`domains.csv`, …): one row per run × snapshot × domain: its set, state, stop
//!   reason and exit code.
//!
//! Every row starts with the same key columns: any caller-given columns (a replay's `source`),
//! then `scenario`, `combination`, one column per policy key, `transfer`, `status` (the
//! kernel's end status), `snapshot`, `role` (`start`, `key`, `user`, `final`), `instructions`.
//! Every figure is an integer. A set without a limit has `limited = false` and its
//! `limit_bytes` is the guest RAM (the bound it really has), so the column stays an integer;
//! likewise `limited_KIND` / `limit_KIND` for sub-limits (a kind without a sub-limit is bound
//! by the set's limit).

use serde_json::Value;

use crate::config::KINDS;
use crate::matrix::{self, Entry};
use crate::registry;
use crate::report::{Causer, ChargeSetReport, Report, Snapshot, EVENTS};

/// The causer name under which `attribution` lists what a set's own domains caused, in a
/// report without the by-causer table (kind `total`).
pub const OWN: &str = "(own)";
/// The causer name for what no domain caused (frames the kernel charged on nobody's behalf).
pub const NO_CAUSER: &str = "(none)";
/// The kind of an attribution row that sums the kinds.
const TOTAL: &str = "total";

/// One run's rows: its report, names, the key snapshot of its scenario and any leading
/// columns (`extra` values, in the order of the header's `extra` names).
#[derive(Debug, Clone)]
pub struct Rows<'a> {
    /// The scenario (config name).
    pub scenario: &'a str,
    /// The combination's directory-style name (`cow-holder_release-stay`, `default`).
    pub combination: &'a str,
    /// The report.
    pub report: &'a Report,
    /// The scenario's key snapshot label (for the `role` column).
    pub key: &'a str,
    /// Leading column values.
    pub extra: Vec<String>,
}

impl<'a> Rows<'a> {
    /// The rows of one matrix entry.
    pub fn of(scenario: &'a str, entry: &Entry<'a>, key: &'a str, extra: Vec<String>) -> Self {
        Rows {
            scenario,
            combination: entry.combination,
            report: entry.report,
            key,
            extra,
        }
    }

    /// A single run's rows: combination `default`, its key snapshot its own.
    pub fn single(report: &'a Report, key: &'a str) -> Self {
        Rows {
            scenario: &report.config,
            combination: "default",
            report,
            key,
            extra: Vec::new(),
        }
    }

    fn key_cells(&self, snapshot: &Snapshot) -> Vec<String> {
        let report = self.report;
        let mut row = self.extra.clone();
        row.extend([self.scenario.to_string(), self.combination.to_string()]);
        row.extend(
            registry::keys()
                .iter()
                .map(|key| report.policy_name(key).unwrap_or_default().to_string()),
        );
        row.extend([
            report.transfer().unwrap_or_default().to_string(),
            report.status.clone(),
            snapshot.label.clone(),
            matrix::role(&snapshot.label, self.key).to_string(),
            snapshot.instructions.to_string(),
        ]);
        row
    }
}

fn key_header(extra: &[&str]) -> Vec<String> {
    let mut header: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    header.extend(["scenario", "combination"].map(String::from));
    header.extend(registry::keys().iter().map(|k| k.to_string()));
    header.extend(["transfer", "status", "snapshot", "role", "instructions"].map(String::from));
    header
}

/// The charges table's header (after the `extra` leading columns).
pub fn charges_header(extra: &[&str]) -> Vec<String> {
    let mut header = key_header(extra);
    header.extend(["charge_set", "parent", "domains"].map(String::from));
    for figure in ["current", "peak", "denied"] {
        header.extend(KINDS.iter().map(|kind| format!("{figure}_{kind}")));
        header.push(format!("{figure}_total"));
    }
    header.extend(["limited", "limit_bytes"].map(String::from));
    for kind in KINDS {
        header.push(format!("limited_{kind}"));
        header.push(format!("limit_{kind}"));
    }
    header.extend(
        [
            "subtree_bytes",
            "charged_total_bytes",
            "uncharged_total_bytes",
            "paid_for_bytes",
        ]
        .map(String::from),
    );
    for figure in ["charged", "uncharged"] {
        header.extend(KINDS.iter().map(|kind| format!("{figure}_{kind}")));
    }
    header.extend(EVENTS.iter().map(|event| format!("events_{event}")));
    header
}

fn subtree_bytes(set: &ChargeSetReport) -> u64 {
    set.extra
        .get("subtree_bytes")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| set.current.total())
}

fn kind_limit(set: &ChargeSetReport, kind: &str) -> Option<u64> {
    set.extra
        .get("kind_limits")
        .and_then(|limits| limits.get(kind))
        .and_then(Value::as_u64)
}

fn charge_rows(rows: &Rows<'_>, out: &mut Vec<Vec<String>>) {
    let ram = rows.report.mem_bytes.unwrap_or(0);
    for snapshot in &rows.report.snapshots {
        for set in &snapshot.charge_sets {
            let mut row = rows.key_cells(snapshot);
            row.extend([
                set.name.clone(),
                set.parent.clone().unwrap_or_default(),
                set.domains.join(" "),
            ]);
            for figures in [&set.current, &set.peak, &set.denied] {
                row.extend(KINDS.iter().map(|kind| figures.get(kind).to_string()));
                row.push(figures.total().to_string());
            }
            let limit = set.limit_bytes.unwrap_or(ram);
            row.extend([set.limit_bytes.is_some().to_string(), limit.to_string()]);
            for kind in KINDS {
                let sub = kind_limit(set, kind);
                row.push(sub.is_some().to_string());
                row.push(sub.map_or(limit, |sub| sub.min(limit)).to_string());
            }
            row.extend([
                subtree_bytes(set).to_string(),
                set.charged_total_bytes.to_string(),
                set.uncharged_total_bytes.to_string(),
                set.paid_for.values().sum::<u64>().to_string(),
            ]);
            // Reports of kernels before the per-kind totals: 0 (the totals above still hold).
            for figures in [&set.charged, &set.uncharged] {
                row.extend(
                    KINDS
                        .iter()
                        .map(|kind| figures.as_ref().map_or(0, |f| f.get(kind)).to_string()),
                );
            }
            row.extend(EVENTS.iter().map(|event| {
                match (event, &set.events) {
                    (_, Some(events)) => events.get(*event).copied().unwrap_or(0),
                    (&"denied", None) => set.denied.total(),
                    (_, None) => 0,
                }
                .to_string()
            }));
            out.push(row);
        }
    }
}

/// The attribution table's header.
pub fn attribution_header(extra: &[&str]) -> Vec<String> {
    let mut header = key_header(extra);
    header.extend(["charge_set", "causer", "own", "kind", "bytes"].map(String::from));
    header
}

fn attribution_rows(rows: &Rows<'_>, out: &mut Vec<Vec<String>>) {
    for snapshot in &rows.report.snapshots {
        for set in &snapshot.charge_sets {
            for entry in set.attribution() {
                let causer = match entry.causer {
                    Causer::Domain(name) => name,
                    Causer::OwnDomains => OWN,
                    Causer::NoDomain => NO_CAUSER,
                };
                let cells: Vec<(&str, u64)> = match &entry.kinds {
                    Some(kinds) => KINDS.iter().map(|kind| (*kind, kinds.get(kind))).collect(),
                    None => vec![(TOTAL, entry.bytes)],
                };
                for (kind, bytes) in cells.into_iter().filter(|(_, bytes)| *bytes > 0) {
                    let mut row = rows.key_cells(snapshot);
                    row.extend([
                        set.name.clone(),
                        causer.to_string(),
                        entry.own.to_string(),
                        kind.to_string(),
                        bytes.to_string(),
                    ]);
                    out.push(row);
                }
            }
        }
    }
}

/// The domains table's header.
pub fn domains_header(extra: &[&str]) -> Vec<String> {
    let mut header = key_header(extra);
    header.extend(
        [
            "domain",
            "charge_set",
            "state",
            "stop_reason",
            "exit_code",
            "denied_kind",
            "denied_payer",
            "denied_limit_set",
            "denied_limit",
            "denied_bytes",
        ]
        .map(String::from),
    );
    header
}

fn domain_rows(rows: &Rows<'_>, out: &mut Vec<Vec<String>>) {
    for snapshot in &rows.report.snapshots {
        for domain in &snapshot.domains {
            let reason = match &domain.stop_reason {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
            };
            let exit_code = domain
                .extra
                .get("exit_code")
                .filter(|code| !code.is_null())
                .map(Value::to_string)
                .unwrap_or_default();
            let mut row = rows.key_cells(snapshot);
            row.extend([
                domain.name.clone(),
                domain.charge_set.clone(),
                domain.state.clone(),
                reason,
                exit_code,
            ]);
            match &domain.last_denial {
                Some(denial) => row.extend([
                    denial.kind.clone(),
                    denial.payer.clone(),
                    denial.limit_set.clone(),
                    denial.limit.clone(),
                    denial.bytes.to_string(),
                ]),
                None => row.extend(std::iter::repeat_n(String::new(), 5)),
            }
            out.push(row);
        }
    }
}

/// Which table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// One row per snapshot × charge set.
    Charges,
    /// One row per snapshot × payer set × causer.
    Attribution,
    /// One row per snapshot × domain.
    Domains,
}

impl Table {
    /// Every table, in file order.
    pub const ALL: [Table; 3] = [Table::Charges, Table::Attribution, Table::Domains];

    /// The file name for a run (`report.csv`, `attribution.csv`, `domains.csv`) or, with a
    /// stem (`comparison`, `matrix`), `STEM.csv`, `STEM-attribution.csv`, `STEM-domains.csv`.
    pub fn file_name(self, stem: Option<&str>) -> String {
        match (self, stem) {
            (Table::Charges, None) => "report.csv".to_string(),
            (Table::Charges, Some(stem)) => format!("{stem}.csv"),
            (Table::Attribution, None) => "attribution.csv".to_string(),
            (Table::Domains, None) => "domains.csv".to_string(),
            (Table::Attribution, Some(stem)) => format!("{stem}-attribution.csv"),
            (Table::Domains, Some(stem)) => format!("{stem}-domains.csv"),
        }
    }

    fn header(self, extra: &[&str]) -> Vec<String> {
        match self {
            Table::Charges => charges_header(extra),
            Table::Attribution => attribution_header(extra),
            Table::Domains => domains_header(extra),
        }
    }
}

/// The CSV text of `table` over `runs`, header first; `extra` names the leading columns each
/// run's `extra` values fill.
pub fn table_csv(table: Table, extra: &[&str], runs: &[Rows<'_>]) -> String {
    let mut records: Vec<Vec<String>> = Vec::new();
    for rows in runs {
        match table {
            Table::Charges => charge_rows(rows, &mut records),
            Table::Attribution => attribution_rows(rows, &mut records),
            Table::Domains => domain_rows(rows, &mut records),
        }
    }
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    // Writing to memory cannot fail; a record of the wrong length would be a bug here, and
    // `csv` reports it rather than writing a ragged file.
    let header = table.header(extra);
    let written = writer.write_record(&header).and_then(|()| {
        records
            .iter()
            .try_for_each(|record| writer.write_record(record))
    });
    debug_assert!(written.is_ok(), "{written:?}");
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// `report.csv` of a single run.
pub fn to_csv(report: &Report) -> String {
    let key = matrix::key_snapshot(&[report]);
    table_csv(Table::Charges, &[], &[Rows::single(report, &key)])
}

/// The three CSV files of a single run, `(file name, text)`.
pub fn run_files(report: &Report) -> Vec<(String, String)> {
    let key = matrix::key_snapshot(&[report]);
    let rows = [Rows::single(report, &key)];
    Table::ALL
        .iter()
        .map(|table| (table.file_name(None), table_csv(*table, &[], &rows)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{parse_console, tests::TRANSCRIPT};

    fn records(text: &str) -> Vec<Vec<String>> {
        ::csv::Reader::from_reader(text.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn every_csv_shares_the_key_columns() {
        let key = key_header(&[]);
        for table in Table::ALL {
            let header = table.header(&[]);
            assert_eq!(&header[..key.len()], &key[..], "{table:?}");
        }
        assert_eq!(key[0], "scenario");
        assert_eq!(
            key.join(","),
            "scenario,combination,cow,msgbuf,pagetable,release,kernel,move,transfer,status,snapshot,role,instructions"
        );
    }

    #[test]
    fn one_charges_row_per_snapshot_and_set_with_integers_only() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let text = to_csv(&report);
        let header: Vec<String> = charges_header(&[]);
        let rows = records(&text);
        // start: 1 set, shared: 3 sets, final: 3 sets.
        assert_eq!(rows.len(), 1 + 3 + 3);
        let column = |name: &str| header.iter().position(|h| h == name).unwrap();
        let parent_shared = rows
            .iter()
            .find(|r| r[column("snapshot")] == "shared" && r[column("charge_set")] == "parent")
            .unwrap();
        assert_eq!(parent_shared[column("current_cow")], "16384");
        assert_eq!(parent_shared[column("denied_cow")], "1");
        assert_eq!(parent_shared[column("limited")], "true");
        assert_eq!(parent_shared[column("limit_bytes")], "1048576");
        assert_eq!(parent_shared[column("role")], "key");
        assert_eq!(parent_shared[column("paid_for_bytes")], "16384");
        // The kernel set has no limit: an integer bound (the guest RAM), flagged unlimited.
        let kernel = &rows[0];
        assert_eq!(kernel[column("limited")], "false");
        assert!(kernel[column("limit_bytes")].parse::<u64>().is_ok());
        // Every figure column parses as an integer.
        for row in &rows {
            for (name, cell) in header.iter().zip(row) {
                if name.starts_with("current_")
                    || name.starts_with("peak_")
                    || name.starts_with("denied_")
                    || name.ends_with("_bytes")
                    || name == "instructions"
                {
                    assert!(cell.parse::<u64>().is_ok(), "{name} = {cell:?}");
                }
            }
        }
    }

    #[test]
    fn attribution_splits_a_set_into_own_and_other_causers() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let key = matrix::key_snapshot(&[&report]);
        let text = table_csv(Table::Attribution, &[], &[Rows::single(&report, &key)]);
        let rows = records(&text);
        let parent: Vec<&Vec<String>> = rows
            .iter()
            .filter(|r| r[10] == "shared" && r[13] == "parent")
            .collect();
        let causers: Vec<(&str, &str, &str, &str)> = parent
            .iter()
            .map(|r| {
                (
                    r[14].as_str(),
                    r[15].as_str(),
                    r[16].as_str(),
                    r[17].as_str(),
                )
            })
            .collect();
        // This transcript has no `caused` table: own and paid-for, all kinds together.
        assert_eq!(
            causers,
            [
                (OWN, "true", "total", "53248"),
                ("child", "false", "total", "16384")
            ]
        );
    }

    #[test]
    fn attribution_by_kind_comes_from_the_caused_table() {
        let mut report = parse_console(TRANSCRIPT).unwrap();
        let parent = &mut report.snapshots[1].charge_sets[1];
        let own = crate::report::KindBytes {
            anon: 40960,
            pagetables: 8192,
            ..Default::default()
        };
        let child = crate::report::KindBytes {
            cow: 16384,
            ..Default::default()
        };
        parent.caused = Some([("parent".into(), own), ("child".into(), child)].into());
        let key = matrix::key_snapshot(&[&report]);
        let text = table_csv(Table::Attribution, &[], &[Rows::single(&report, &key)]);
        let rows = records(&text);
        let cells: Vec<String> = rows
            .iter()
            .filter(|r| r[10] == "shared" && r[13] == "parent")
            .map(|r| r[14..].join(" "))
            .collect();
        // The parent's kernel objects (4 KiB) have no causer domain.
        assert_eq!(
            cells,
            [
                "child false cow 16384",
                "parent true anon 40960",
                "parent true pagetables 8192",
                "(none) true kernel 4096",
            ]
        );
    }

    #[test]
    fn an_empty_caused_table_is_a_table_what_no_domain_caused_goes_to_none() {
        // A kernel with the table writes `"caused":{}` for a set no domain charged (the kernel
        // reserve): its bytes are `(none)` per kind, not the `(own)` total of an old report.
        let mut report = parse_console(TRANSCRIPT).unwrap();
        for set in &mut report.snapshots[1].charge_sets {
            set.caused = Some(Default::default());
        }
        let key = matrix::key_snapshot(&[&report]);
        let text = table_csv(Table::Attribution, &[], &[Rows::single(&report, &key)]);
        let kernel: Vec<String> = records(&text)
            .iter()
            .filter(|r| r[10] == "shared" && r[13] == "kernel")
            .map(|r| r[14..].join(" "))
            .collect();
        assert_eq!(kernel, ["(none) true kernel 32768"]);
    }

    #[test]
    fn domains_carry_state_and_reason() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let key = matrix::key_snapshot(&[&report]);
        let text = table_csv(Table::Domains, &[], &[Rows::single(&report, &key)]);
        assert!(
            text.contains(",child,child,stopped,over limit: cow,"),
            "{text}"
        );
    }

    #[test]
    fn cells_are_quoted_when_needed() {
        let mut report = parse_console(TRANSCRIPT).unwrap();
        report.config = "a,b".into();
        let text = to_csv(&report);
        assert!(
            text.lines().nth(1).unwrap().starts_with("\"a,b\","),
            "{text}"
        );
    }
}
