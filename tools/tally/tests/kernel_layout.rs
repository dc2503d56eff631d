//! The kernel's layout rules, checked on its sources (issue 9): no import cycle among the
//! kernel's generic modules (everything outside `arch/` and `board/`), and no register named
//! outside them. A module's dependencies are the `crate::…` paths and `use super::…` items its
//! code names; calling a method of `Kernel` that another module defines is not a dependency on
//! that module (Rust resolves it through the type), so operations of the one kernel state may
//! live in the module of their concern without forming a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn kernel_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernel/src")
}

/// Every `.rs` file under `dir`, with its module path (`ipc::transfer`, `object::domain`).
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("kernel/src is readable") {
        let path = entry.expect("a directory entry").path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if path.is_dir() {
            let mut inner = prefix.to_vec();
            inner.push(stem);
            modules(&path, &inner, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut name = prefix.to_vec();
            if stem != "mod" && !(prefix.is_empty() && stem == "main") {
                name.push(stem);
            }
            out.insert(name.join("::"), path);
        }
    }
}

/// The code of a file without its comments (line comments and doc comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The longest known module named by the path `segments`.
fn resolve(segments: &[&str], known: &BTreeMap<String, PathBuf>) -> Option<String> {
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|name| known.contains_key(name))
}

fn dependencies(module: &str, text: &str, known: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let code = code(text);
    let mut deps = BTreeSet::new();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    for (at, _) in code.match_indices("crate::") {
        let rest: String = code[at + "crate::".len()..]
            .chars()
            .take_while(|&c| ident(c))
            .collect();
        let segments: Vec<&str> = rest.split("::").filter(|s| !s.is_empty()).collect();
        if let Some(target) = resolve(&segments, known) {
            deps.insert(target);
        }
        // `use crate::{a, b::c}`: each item of a braced list.
        if rest.is_empty() && code[at + "crate::".len()..].starts_with('{') {
            let list = &code[at + "crate::{".len()..];
            let list = &list[..list.find('}').unwrap_or(list.len())];
            for item in list.split(',') {
                let segments: Vec<&str> = item.trim().split("::").collect();
                if let Some(target) = resolve(&segments, known) {
                    deps.insert(target);
                }
            }
        }
    }
    if code.contains("use super::") {
        let parent = module.rsplit_once("::").map_or("", |(parent, _)| parent);
        if known.contains_key(parent) {
            deps.insert(parent.to_string());
        }
    }
    deps.remove(module);
    deps
}

fn generic(module: &str) -> bool {
    !(module == "arch"
        || module.starts_with("arch::")
        || module == "board"
        || module.starts_with("board::"))
}

#[test]
fn the_kernels_generic_modules_import_each_other_in_no_circle() {
    let mut known = BTreeMap::new();
    modules(&kernel_src(), &[], &mut known);
    assert!(known.contains_key("kernel") && known.contains_key("ipc::transfer"));
    let graph: BTreeMap<String, BTreeSet<String>> = known
        .iter()
        .filter(|(name, _)| generic(name))
        .map(|(name, path)| {
            let text = std::fs::read_to_string(path).expect("a readable source file");
            let deps = dependencies(name, &text, &known)
                .into_iter()
                .filter(|d| generic(d))
                .collect();
            (name.clone(), deps)
        })
        .collect();
    // Depth-first search for a back edge; report the circle it closes.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut circle = stack[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, stack, done) {
                return Some(circle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(circle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            panic!(
                "import circle among the kernel's modules: {}",
                circle.join(" -> ")
            );
        }
    }
}

#[test]
fn no_register_is_named_outside_arch_and_board() {
    let mut known = BTreeMap::new();
    modules(&kernel_src(), &[], &mut known);
    let registers = [
        ".x[",
        ".elr",
        ".spsr",
        ".sp_el0",
        "aarch64_cpu",
        "_EL0",
        "_EL1",
        "asm!(",
    ];
    for (name, path) in known.iter().filter(|(name, _)| generic(name)) {
        let text = code(&std::fs::read_to_string(path).expect("a readable source file"));
        for register in registers {
            assert!(
                !text.contains(register),
                "module {name} names a register ({register}): only arch/ and board/ may"
            );
        }
    }
}
