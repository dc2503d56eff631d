//! Checks between tables: unique names, resolvable references (charge sets, domains,
//! endpoints, programs, expectation fields), and a charge-set tree without cycles.

use std::collections::HashMap;

use super::diagnostic::{choices, did_you_mean, Diagnostics};
use super::*;

/// Fields of a charge-set object in a report that an `[[expect]]` may name; the ones in
/// [`PER_KIND_FIELDS`] are followed by a kind (or `total`), `paid_for` by a domain name.
const SET_FIELDS: [&str; 23] = [
    "name",
    "parent",
    "limit_bytes",
    "high_bytes",
    "domains",
    "current",
    "peak",
    "subtree",
    "subtree_bytes",
    "kind_limits",
    "charged_total_bytes",
    "uncharged_total_bytes",
    "denied",
    "paid_for",
    "caused",
    "charged",
    "uncharged",
    "events",
    "moved_in",
    "moved_out",
    "moved_in_bytes",
    "moved_out_bytes",
    "limit_hits",
];
const PER_KIND_FIELDS: [&str; 9] = [
    "current",
    "peak",
    "subtree",
    "denied",
    "charged",
    "uncharged",
    "moved_in",
    "moved_out",
    "limit_hits",
];
/// The pseudo-kind that sums the kinds.
pub(crate) const TOTAL: &str = "total";
const DOMAIN_FIELDS: [&str; 9] = [
    "name",
    "charge_set",
    "state",
    "stop_reason",
    "exit_code",
    "keeper_faults",
    "restarts",
    "keeper_choices",
    "last_denial",
];
/// Fields of a domain's `keeper_choices` object.
const CHOICE_FIELDS: [&str; 4] = ["answered", "timeout", "wrong", "none"];
/// Fields of a domain's `last_denial` object.
const DENIAL_FIELDS: [&str; 5] = ["kind", "payer", "limit_set", "limit", "bytes"];

pub(super) fn check(
    config: &Config,
    programs: &Result<Vec<String>, String>,
    diagnostics: &mut Diagnostics<'_>,
) {
    let sets = unique(
        config
            .charge_sets
            .iter()
            .map(|set| (set.name.as_str(), set.lines.of("name"))),
        "charge_set",
        diagnostics,
    );
    let domains = unique(
        config
            .domains
            .iter()
            .map(|d| (d.name.as_str(), d.lines.of("name"))),
        "domain",
        diagnostics,
    );
    let endpoints = unique(
        config
            .endpoints
            .iter()
            .map(|e| (e.name.as_str(), e.lines.of("name"))),
        "endpoint",
        diagnostics,
    );

    for set in &config.charge_sets {
        if let Some(parent) = &set.parent {
            if !sets.contains(&parent.as_str()) {
                diagnostics.at_line(
                    Some(set.lines.of("parent")),
                    "charge_set.parent",
                    undefined("charge set", parent, &sets, parent == KERNEL_SET),
                );
            }
        }
    }
    check_cycles(&config.charge_sets, diagnostics);

    for domain in &config.domains {
        if !sets.contains(&domain.charge_set.as_str()) {
            diagnostics.at_line(
                Some(domain.lines.of("charge_set")),
                "domain.charge_set",
                undefined(
                    "charge set",
                    &domain.charge_set,
                    &sets,
                    domain.charge_set == KERNEL_SET,
                ),
            );
        }
        check_program(domain, programs, diagnostics);
        if let Some(keeper) = &domain.keeper {
            if !endpoints.contains(&keeper.as_str()) {
                diagnostics.at_line(
                    Some(domain.lines.of("keeper")),
                    "domain.keeper",
                    undefined("endpoint", keeper, &endpoints, false),
                );
            }
        }
        for cap in &domain.caps {
            let (what, known) = match cap.cap_type {
                CapType::Set => ("charge set", &sets),
                CapType::Domain => ("domain", &domains),
                CapType::Endpoint => ("endpoint", &endpoints),
            };
            if !known.contains(&cap.target.as_str()) {
                let reserved = cap.cap_type == CapType::Set && cap.target == KERNEL_SET;
                diagnostics.at_line(
                    Some(cap.line),
                    "domain.caps",
                    format!(
                        "in `{}:{}`: {}",
                        cap.cap_type.prefix(),
                        cap.target,
                        undefined(what, &cap.target, known, reserved)
                    ),
                );
            }
        }
    }

    for expect in &config.expects {
        check_expect(expect, &sets, &domains, diagnostics);
    }
}

/// Flags duplicate names; returns the names, first occurrence of each, in config order.
fn unique<'c>(
    items: impl Iterator<Item = (&'c str, usize)>,
    what: &str,
    diagnostics: &mut Diagnostics<'_>,
) -> Vec<&'c str> {
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    let mut names = Vec::new();
    for (name, line) in items {
        match first_line.get(name) {
            Some(first) => diagnostics.at_line(
                Some(line),
                &format!("{what}.name"),
                format!("duplicate {what} name `{name}` (first defined at line {first})"),
            ),
            None => {
                first_line.insert(name, line);
                names.push(name);
            }
        }
    }
    names
}

fn undefined(what: &str, name: &str, defined: &[&str], reserved_kernel: bool) -> String {
    if reserved_kernel {
        return format!(
            "`{KERNEL_SET}` is the built-in kernel reserve set: it cannot be a parent, hold domains or be handed out; defined charge sets: {}",
            choices(defined)
        );
    }
    format!(
        "undefined {what} `{name}`{}; defined: {}",
        did_you_mean(name, defined),
        choices(defined)
    )
}

fn check_program(
    domain: &Domain,
    programs: &Result<Vec<String>, String>,
    diagnostics: &mut Diagnostics<'_>,
) {
    match programs {
        Ok(programs) if programs.contains(&domain.program) => {}
        Ok(programs) => diagnostics.at_line(
            Some(domain.lines.of("program")),
            "domain.program",
            format!(
                "unknown program `{}`{}; valid programs (user/src/bin/*.rs): {}",
                domain.program,
                did_you_mean(&domain.program, programs),
                choices(programs)
            ),
        ),
        Err(why) => diagnostics.at_line(
            Some(domain.lines.of("program")),
            "domain.program",
            format!("cannot check program `{}`: {why}", domain.program),
        ),
    }
}

/// Reports each cycle once, at the set whose `parent` closes it.
fn check_cycles(sets: &[ChargeSet], diagnostics: &mut Diagnostics<'_>) {
    let parent_of = |name: &str| -> Option<&ChargeSet> {
        let set = sets.iter().find(|s| s.name == name)?;
        let parent = set.parent.as_deref()?;
        sets.iter().find(|s| s.name == parent)
    };
    let mut reported: Vec<&str> = Vec::new();
    for start in sets {
        let mut path = vec![start.name.as_str()];
        let mut current = start;
        while let Some(parent) = parent_of(&current.name) {
            if let Some(position) = path.iter().position(|n| *n == parent.name) {
                let cycle = &path[position..];
                if position == 0 && !cycle.iter().any(|name| reported.contains(name)) {
                    reported.extend_from_slice(cycle);
                    let mut shown: Vec<&str> = cycle.to_vec();
                    shown.push(cycle[0]);
                    diagnostics.at_line(
                        Some(current.lines.of("parent")),
                        "charge_set.parent",
                        format!(
                            "cycle in the charge-set tree: {} (each arrow points to the parent)",
                            shown.join(" -> ")
                        ),
                    );
                }
                break;
            }
            path.push(&parent.name);
            current = parent;
        }
    }
}

fn check_expect(
    expect: &Expect,
    sets: &[&str],
    domains: &[&str],
    diagnostics: &mut Diagnostics<'_>,
) {
    let line_of = |key: &str| Some(expect.lines.of(key));
    let segments: Vec<&str> = expect.field.split('.').collect();
    match &expect.subject {
        Subject::ChargeSet(set) => {
            let mut valid = sets.to_vec();
            valid.push(KERNEL_SET);
            // A set a program creates at run time (`set_create`) may be named: any
            // well-formed name that is not a near miss of a defined one. A set that does not
            // exist fails the run's check ("no set").
            let near_miss = !did_you_mean(set, &valid).is_empty();
            if !valid.contains(&set.as_str()) && (near_miss || !is_valid_name(set)) {
                diagnostics.at_line(
                    line_of("set"),
                    "expect.set",
                    format!(
                        "undefined charge set `{set}`{}; defined: {} (a set created at run time may have any other valid name)",
                        did_you_mean(set, &valid),
                        choices(&valid)
                    ),
                );
            }
            let field_error = match segments[..] {
                [first, ..] if !SET_FIELDS.contains(&first) => Some(format!(
                    "unknown charge-set field `{first}`{}; valid fields: {}",
                    did_you_mean(first, &SET_FIELDS),
                    choices(&SET_FIELDS)
                )),
                [first, kind]
                    if PER_KIND_FIELDS.contains(&first)
                        && kind != TOTAL
                        && !KINDS.contains(&kind) =>
                {
                    Some(format!(
                        "unknown kind `{kind}` in `{}`{}; valid kinds: {}, {TOTAL}",
                        expect.field,
                        did_you_mean(kind, &KINDS),
                        choices(&KINDS)
                    ))
                }
                [first] if PER_KIND_FIELDS.contains(&first) => Some(format!(
                    "`{first}` needs a kind: `{first}.KIND` with KIND one of {}, {TOTAL}",
                    choices(&KINDS)
                )),
                // Domains may be spawned at run time, so any well-formed name can be a causer.
                ["paid_for", causer] if !is_valid_name(causer) => Some(format!(
                    "invalid domain name `{causer}` in `{}` ([a-z0-9_-]{{1,{NAME_MAX_BYTES}}})",
                    expect.field
                )),
                ["paid_for"] => Some(format!(
                    "`paid_for` needs a domain: `paid_for.DOMAIN`, e.g. one of {}",
                    choices(domains)
                )),
                ["caused", causer, kind] if is_valid_name(causer) && (kind == TOTAL || KINDS.contains(&kind)) => None,
                ["caused", ..] => Some(format!(
                    "`caused` needs a domain and a kind: `caused.DOMAIN.KIND` with KIND one of {}, {TOTAL}, e.g. `caused.{}.anon`",
                    choices(&KINDS),
                    domains.first().copied().unwrap_or("parent")
                )),
                ["events", event] if crate::report::EVENTS.contains(&event) => None,
                ["events", ..] => Some(format!(
                    "`events` needs a counter: `events.NAME` with NAME one of {}",
                    choices(&crate::report::EVENTS)
                )),
                _ => None,
            };
            if let Some(message) = field_error {
                diagnostics.at_line(line_of("field"), "expect.field", message);
            }
        }
        Subject::Domain(domain) => {
            // Domains may be spawned at run time (a parent spawning `child`), so only the
            // name's form can be checked here; a missing domain fails the run's check.
            if !is_valid_name(domain) {
                diagnostics.at_line(
                    line_of("domain"),
                    "expect.domain",
                    format!(
                        "invalid domain name `{domain}` ([a-z0-9_-]{{1,{NAME_MAX_BYTES}}}); domains in this config: {}",
                        choices(domains)
                    ),
                );
            }
            if let ["last_denial", field] = segments[..] {
                if !DENIAL_FIELDS.contains(&field) {
                    diagnostics.at_line(
                        line_of("field"),
                        "expect.field",
                        format!(
                            "unknown field `{field}` of `last_denial`{}; valid fields: {}",
                            did_you_mean(field, &DENIAL_FIELDS),
                            choices(&DENIAL_FIELDS)
                        ),
                    );
                }
            } else if let ["keeper_choices", field] = segments[..] {
                if !CHOICE_FIELDS.contains(&field) {
                    diagnostics.at_line(
                        line_of("field"),
                        "expect.field",
                        format!(
                            "unknown field `{field}` of `keeper_choices`{}; valid fields: {}",
                            did_you_mean(field, &CHOICE_FIELDS),
                            choices(&CHOICE_FIELDS)
                        ),
                    );
                }
            } else if segments.len() != 1 || !DOMAIN_FIELDS.contains(&segments[0]) {
                diagnostics.at_line(
                    line_of("field"),
                    "expect.field",
                    format!(
                        "unknown domain field `{}`{}; valid fields: {}",
                        expect.field,
                        did_you_mean(&expect.field, &DOMAIN_FIELDS),
                        choices(&DOMAIN_FIELDS)
                    ),
                );
            }
        }
    }
}

/// The charge sets in config order, except that a set's parent (and its parent's parent, ...)
/// is pulled ahead of it. Cycles (rejected by [`check`]) are broken where they are met.
pub(super) fn parents_first(sets: &[ChargeSet]) -> Vec<&ChargeSet> {
    fn place<'c>(set: &'c ChargeSet, sets: &'c [ChargeSet], placed: &mut Vec<&'c ChargeSet>) {
        if placed.iter().any(|p| p.name == set.name) {
            return;
        }
        // Mark before recursing so that a cycle terminates.
        placed.push(set);
        let at = placed.len() - 1;
        if let Some(parent) = set.parent.as_ref() {
            if let Some(parent) = sets.iter().find(|s| &s.name == parent) {
                place(parent, sets, placed);
            }
        }
        // Move the set behind everything its recursion placed.
        let set = placed.remove(at);
        placed.push(set);
    }
    let mut placed = Vec::with_capacity(sets.len());
    for set in sets {
        place(set, sets, &mut placed);
    }
    placed
}
