//! `report.csv`: one row per snapshot × charge set × kind, ready for pandas or R.

use crate::config::KINDS;
use crate::registry;
use crate::report::Report;

/// The CSV text for `report`, with a header row.
pub fn to_csv(report: &Report) -> String {
    let mut header: Vec<&str> = vec!["config"];
    header.extend(registry::keys());
    header.extend([
        "transfer",
        "snapshot",
        "instructions",
        "charge_set",
        "parent",
        "kind",
        "current_bytes",
        "peak_bytes",
        "denied",
        "limit_bytes",
    ]);
    let mut out = header.join(",");
    out.push('\n');
    let mut fixed: Vec<String> = vec![report.config.clone()];
    fixed.extend(
        registry::keys()
            .iter()
            .map(|key| report.policy_name(key).unwrap_or_default().to_string()),
    );
    fixed.push(report.transfer().unwrap_or_default().to_string());
    for snapshot in &report.snapshots {
        for set in &snapshot.charge_sets {
            for kind in KINDS {
                let mut row = fixed.clone();
                row.extend([
                    snapshot.label.clone(),
                    snapshot.instructions.to_string(),
                    set.name.clone(),
                    set.parent.clone().unwrap_or_default(),
                    kind.to_string(),
                    set.current.get(kind).to_string(),
                    set.peak.get(kind).to_string(),
                    set.denied.get(kind).to_string(),
                    set.limit_bytes.map(|l| l.to_string()).unwrap_or_default(),
                ]);
                let cells: Vec<String> = row.iter().map(|cell| quote(cell)).collect();
                out.push_str(&cells.join(","));
                out.push('\n');
            }
        }
    }
    out
}

/// Quotes a cell when it holds a comma, a quote or a line break (RFC 4180).
pub fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{parse_console, tests::TRANSCRIPT};

    #[test]
    fn one_row_per_snapshot_set_and_kind() {
        let report = parse_console(TRANSCRIPT).unwrap();
        let csv = to_csv(&report);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "config,cow,msgbuf,pagetable,release,kernel,transfer,snapshot,instructions,charge_set,parent,kind,current_bytes,peak_bytes,denied,limit_bytes"
        );
        // start: 1 set, shared: 3 sets, final: 3 sets; 5 kinds each.
        assert_eq!(lines.len(), 1 + (1 + 3 + 3) * 5);
        assert!(lines.contains(
            &"cow-fork,holder,sender,owner,migrate,self,direct,shared,52000,parent,,cow,16384,16384,1,1048576"
        ));
        assert!(lines.contains(
            &"cow-fork,holder,sender,owner,migrate,self,direct,final,90000,child,parent,pagetables,0,8192,0,262144"
        ));
    }

    #[test]
    fn cells_are_quoted_when_needed() {
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("plain"), "plain");
    }
}
