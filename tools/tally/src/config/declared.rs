//! Whether each boot domain's config agrees with its program's own declaration
//! (`user::program!`, decoded by `kcore::program` from the built image): every argument in
//! `args` is one the program reads (else the closest declared name is suggested), every
//! capability in `caps` is of the kind the program expects at its index, and none it needs is
//! missing. A program that would silently ignore a misspelt argument, or fail at its first
//! system call on a capability of the wrong kind, is refused here with the line.
//!
//! Like the start-cost check, this needs the built images; a program whose image is missing or
//! carries no declaration is not checked (`tally programs` and the catalogue test report it).

use std::path::Path;

use kcore::program::{CapKind, Mismatch};

use super::diagnostic::Diagnostics;
use super::*;

fn kind(cap_type: CapType) -> CapKind {
    match cap_type {
        CapType::Set => CapKind::Set,
        CapType::Domain => CapKind::Domain,
        CapType::Endpoint => CapKind::Endpoint,
    }
}

/// Checks every boot domain's `args` and `caps` against its program's declaration.
pub(super) fn check(config: &Config, dir: &Path, diagnostics: &mut Diagnostics<'_>) {
    for domain in &config.domains {
        let Ok(bytes) = std::fs::read(dir.join(&domain.program)) else {
            continue;
        };
        let Ok(declaration) = kcore::program::from_image(&bytes) else {
            continue;
        };
        let mut found = Vec::new();
        declaration.check_domain(
            domain.caps.iter().map(|cap| kind(cap.cap_type)),
            domain.args.iter().map(|(name, _)| name.as_str()),
            |mismatch| found.push(mismatch),
        );
        for mismatch in found {
            let (line, key) = match mismatch {
                Mismatch::UndeclaredArg { .. } => (domain.lines.of("args"), "domain.args"),
                Mismatch::CapKind { index, .. } => (
                    domain
                        .caps
                        .get(index)
                        .map_or(domain.lines.of("caps"), |cap| cap.line),
                    "domain.caps",
                ),
                Mismatch::MissingCap(_) => (domain.lines.of("caps"), "domain.caps"),
            };
            let declared = match mismatch {
                Mismatch::UndeclaredArg { .. } if declaration.args.is_empty() => {
                    "; it reads no arguments".to_string()
                }
                Mismatch::UndeclaredArg { .. } => {
                    let names: Vec<&str> = declaration.args.iter().map(|a| a.name).collect();
                    format!("; it reads: {}", names.join(", "))
                }
                _ => String::new(),
            };
            diagnostics.at_line(
                Some(line),
                key,
                format!(
                    "domain `{}` runs `{}`: {mismatch}{declared} (`tally programs {}` lists what it takes)",
                    domain.name, domain.program, domain.program
                ),
            );
        }
    }
}
