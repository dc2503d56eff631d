//! `tally profile`: the per-function guest-instruction profile of a window of a run, from a
//! QEMU TCG plugin (tools/profile-plugin/tally-profile.c, built with `cc` at first use) that
//! counts the instructions retired at each PC under each call stack. The counts are symbolized
//! with the kernel ELF and the user programs' ELFs (symbol tables through `object`, inlined
//! frames from DWARF through `addr2line`) into tables (self by symbol, self by innermost
//! inlined function, inclusive) and folded stacks for flame graphs. docs/profiling.md has the
//! method and a worked example.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

use crate::config::{Config, PolicyOverrides};
use crate::exit::{self, Failure};
use crate::session::{self, RunOptions};

/// The plugin's source, compiled into `build/profile/` when it is missing or older.
pub const PLUGIN_SOURCE: &str = include_str!("../../profile-plugin/tally-profile.c");
/// The plugin's API declarations (QEMU 7.2, plugin API version 1).
pub const PLUGIN_HEADER: &str = include_str!("../../profile-plugin/qemu-plugin-api.h");

/// The lowest kernel virtual address (the upper half).
pub const KERNEL_MIN: u64 = 0x8000_0000_0000_0000;

/// `tally profile`'s arguments.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// The config to boot (a bench config profiles its measured window by default).
    #[arg(long, default_value = "bench/ipc-registers.toml")]
    pub config: PathBuf,
    /// Kernel image (a relative path missing here is looked up in the checkout).
    #[arg(long, default_value = "build/tally.bin")]
    pub kernel: PathBuf,
    /// The kernel's ELF (symbols, DWARF); default: KERNEL with .elf for .bin.
    #[arg(long)]
    pub elf: Option<PathBuf>,
    /// The window, START..STOP (either side may be empty: boot, exit), each `pmu:N` (the N-th
    /// EL0 counter read, as the bench programs' instructions()), `kpmu:N` (kernel reads too),
    /// `0xADDR[:N]` or `SYMBOL[+OFF][@PROGRAM][:N]` (the N-th execution), or `all` for the
    /// whole run. Default: the bench config's measured window, else the whole run.
    #[arg(long, value_name = "START..STOP")]
    pub window: Option<String>,
    /// A second window subtracted from the first, as a bench figure is a difference (bench
    /// memory: the faulting pass minus the same pass over present pages).
    #[arg(long, value_name = "START..STOP")]
    pub baseline: Option<String>,
    /// Divide every figure by N (the operations in the window).
    #[arg(long, value_name = "N")]
    pub per: Option<u64>,
    /// The bench figure (`BENCH NAME` on the console) the window measures: checked against the
    /// window's total (exit 1 if they differ).
    #[arg(long, value_name = "NAME")]
    pub figure: Option<String>,
    /// Rows per table.
    #[arg(long, default_value_t = 25)]
    pub top: usize,
    /// Write folded stacks (`a;b;c count`, for flamegraph.pl or inferno-flamegraph) to FILE.
    #[arg(long, value_name = "FILE")]
    pub folded: Option<PathBuf>,
    /// Inlined functions as frames of their own in the folded stacks and the inclusive table.
    #[arg(long)]
    pub inlined: bool,
    /// Also the inclusive table (each function with everything it called).
    #[arg(long)]
    pub inclusive: bool,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Keep the plugin's raw output in FILE.
    #[arg(long, value_name = "FILE")]
    pub raw: Option<PathBuf>,
    /// Guest RAM; default: the config's.
    #[arg(long)]
    pub mem: Option<String>,
    /// Host timeout in seconds; default: the config's.
    #[arg(long)]
    pub timeout: Option<u64>,
}

/// What a bench config's measured window is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchWindow {
    /// The bench config's file stem.
    pub bench: &'static str,
    /// The window.
    pub window: &'static str,
    /// The window subtracted from it, if any.
    pub baseline: Option<&'static str>,
    /// Operations in the window.
    pub per: u64,
    /// The `BENCH` figure it gives.
    pub figure: &'static str,
}

/// The bench windows `tally profile` knows (the counter reads in user/src/bin/bench_*.rs), the
/// first of each bench its default; `--figure NAME` picks the window of that figure. Figures
/// that combine windows with other weights (`pagetable_frame`, `ool_per_page`, the two-stage
/// ones) have none: give `--window`/`--baseline`/`--per` for them.
pub const BENCH_WINDOWS: [BenchWindow; 9] = [
    BenchWindow {
        bench: "memory",
        window: "pmu:3..pmu:4",
        baseline: Some("pmu:5..pmu:6"),
        per: 256,
        figure: "demand_zero_fault",
    },
    BenchWindow {
        bench: "ipc-registers",
        window: "pmu:3..pmu:4",
        baseline: None,
        per: 1000,
        figure: "ipc_roundtrip_registers",
    },
    BenchWindow {
        bench: "ipc",
        window: "pmu:7..pmu:8",
        baseline: None,
        per: 1000,
        figure: "ipc_roundtrip_64",
    },
    BenchWindow {
        bench: "ipc",
        window: "pmu:3..pmu:4",
        baseline: None,
        per: 1000,
        figure: "ipc_roundtrip_0",
    },
    BenchWindow {
        bench: "calibrate",
        window: "pmu:3..pmu:4",
        baseline: Some("pmu:1..pmu:2"),
        per: 1,
        figure: "calibration_loop",
    },
    // bench_fork reads the counter around its two spawns (1, 2: alone; 3, 4: sharing), then
    // its sharing child around its faulting pass (5, 6) and the same pass again (7, 8).
    BenchWindow {
        bench: "fork",
        window: "pmu:5..pmu:6",
        baseline: Some("pmu:7..pmu:8"),
        per: 256,
        figure: "cow_fault",
    },
    BenchWindow {
        bench: "fork",
        window: "pmu:3..pmu:4",
        baseline: Some("pmu:1..pmu:2"),
        per: 1024,
        figure: "spawn_share_per_page",
    },
    BenchWindow {
        bench: "fork",
        window: "pmu:3..pmu:4",
        baseline: None,
        per: 1,
        figure: "spawn_share_4mib",
    },
    BenchWindow {
        bench: "fork",
        window: "pmu:1..pmu:2",
        baseline: None,
        per: 1,
        figure: "spawn",
    },
];

// ------------------------------------------------------------------------------------ ELF

/// One ELF: its function symbols, its code bytes and (when it has DWARF) its inlined frames.
pub struct Elf {
    /// (start, end, demangled name), sorted by start.
    symbols: Vec<(u64, u64, String)>,
    /// (address, bytes) of each allocated code or data section with contents.
    sections: Vec<(u64, Vec<u8>)>,
    dwarf: Option<addr2line::Loader>,
    frames: std::cell::RefCell<HashMap<u64, Vec<String>>>,
}

/// A symbol name demangled without its hash.
pub fn demangle(name: &str) -> String {
    let name = name.split(".llvm.").next().unwrap_or(name);
    format!("{:#}", rustc_demangle::demangle(name)).replace(';', ",")
}

impl Elf {
    /// Reads `path`.
    pub fn open(path: &Path) -> Result<Elf, String> {
        let data =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut elf = Elf::parse(&data).map_err(|e| format!("{}: {e}", path.display()))?;
        elf.dwarf = addr2line::Loader::new(path).ok();
        Ok(elf)
    }

    /// Parses ELF bytes (no DWARF: that needs [`Elf::open`]).
    pub fn parse(data: &[u8]) -> Result<Elf, String> {
        let file = object::File::parse(data).map_err(|e| format!("not an ELF file: {e}"))?;
        let mut symbols = Vec::new();
        for symbol in file.symbols() {
            let Ok(name) = symbol.name() else { continue };
            let start = symbol.address();
            if name.is_empty() || name.starts_with('$') || name.starts_with(".L") || start == 0 {
                continue;
            }
            let Some(index) = symbol.section_index() else {
                continue;
            };
            let executable = file
                .section_by_index(index)
                .is_ok_and(|s| s.kind() == SectionKind::Text);
            match symbol.kind() {
                SymbolKind::Text if executable => {}
                SymbolKind::Unknown | SymbolKind::Label if executable => {}
                _ => continue,
            }
            symbols.push((start, start + symbol.size(), demangle(name)));
        }
        symbols.sort();
        symbols.dedup_by(|b, a| a.0 == b.0 && a.2 == b.2);
        // A label without a size (assembly) runs to the next symbol.
        for i in 0..symbols.len() {
            if symbols[i].1 == symbols[i].0 {
                let next = symbols[i + 1..]
                    .iter()
                    .map(|s| s.0)
                    .find(|&s| s > symbols[i].0)
                    .unwrap_or(symbols[i].0 + 4);
                symbols[i].1 = next;
            }
        }
        let sections = file
            .sections()
            .filter(|s| matches!(s.kind(), SectionKind::Text | SectionKind::ReadOnlyData))
            .filter_map(|s| Some((s.address(), s.data().ok()?.to_vec())))
            .collect();
        Ok(Elf {
            symbols,
            sections,
            dwarf: None,
            frames: Default::default(),
        })
    }

    /// The 32-bit word at `address` in a code section.
    pub fn word(&self, address: u64) -> Option<u32> {
        self.sections.iter().find_map(|(start, bytes)| {
            let offset = usize::try_from(address.checked_sub(*start)?).ok()?;
            let word = bytes.get(offset..offset + 4)?;
            Some(u32::from_le_bytes(word.try_into().ok()?))
        })
    }

    /// The function symbol containing `address` (the innermost, when symbols nest).
    pub fn symbol(&self, address: u64) -> Option<&str> {
        let end = self.symbols.partition_point(|s| s.0 <= address);
        self.symbols[..end]
            .iter()
            .rev()
            .take(64)
            .find(|s| s.0 <= address && address < s.1)
            .map(|s| s.2.as_str())
    }

    /// The address of the function named `pattern` (exact demangled name, else a unique
    /// substring).
    pub fn find(&self, pattern: &str) -> Result<u64, String> {
        let exact: Vec<_> = self.symbols.iter().filter(|s| s.2 == pattern).collect();
        let hits: Vec<_> = if exact.is_empty() {
            self.symbols
                .iter()
                .filter(|s| s.2.contains(pattern))
                .collect()
        } else {
            exact
        };
        let starts: HashSet<u64> = hits.iter().map(|s| s.0).collect();
        match starts.len() {
            1 => Ok(hits[0].0),
            0 => Err(format!("no function matches `{pattern}`")),
            n => Err(format!(
                "`{pattern}` matches {n} functions: {}",
                hits.iter()
                    .take(6)
                    .map(|s| s.2.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The inlined frames at `address`, outermost first (the function, then what it inlined);
    /// the symbol alone without DWARF.
    pub fn frames(&self, address: u64) -> Vec<String> {
        if let Some(frames) = self.frames.borrow().get(&address) {
            return frames.clone();
        }
        let mut chain = Vec::new();
        if let Some(dwarf) = &self.dwarf {
            if let Ok(mut iter) = dwarf.find_frames(address) {
                while let Ok(Some(frame)) = iter.next() {
                    if let Some(function) = frame.function {
                        if let Ok(name) = function.raw_name() {
                            chain.push(demangle(&name));
                        }
                    }
                }
            }
        }
        chain.reverse();
        if chain.is_empty() {
            chain.push(
                self.symbol(address)
                    .map_or_else(|| format!("0x{address:x}"), str::to_string),
            );
        }
        self.frames.borrow_mut().insert(address, chain.clone());
        chain
    }
}

// ------------------------------------------------------------------------- plugin output

/// One window's head line.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WindowHead {
    /// Its start marker was reached (or it had none).
    pub opened: bool,
    /// Its stop marker was reached.
    pub closed: bool,
    /// Instructions counted.
    pub instructions: u64,
    /// Of which at EL0.
    pub el0: u64,
    /// Of which at EL1.
    pub el1: u64,
}

/// What the plugin wrote.
#[derive(Debug, Default)]
pub struct Raw {
    /// Window 0 (the window) and 1 (the baseline).
    pub windows: [Option<WindowHead>; 2],
    /// `S` line: seq, faults retaken, re-executions retaken, unmatched rets, switches,
    /// depth overflows.
    pub stats: Vec<u64>,
    /// The ordinal of each EL0 counter read, from the first.
    pub pmu: Vec<u64>,
    /// Opcode at each PC seen.
    pub opcodes: HashMap<u64, u32>,
    /// Call-tree nodes: id → (parent, site, kind).
    pub nodes: HashMap<u32, (u32, u64, char)>,
    /// (window, node, pc) → count.
    pub counts: Vec<(usize, u32, u64, u64)>,
}

/// Parses the plugin's output.
pub fn parse_raw(text: &str) -> Result<Raw, String> {
    let mut raw = Raw::default();
    let mut lines = text.lines();
    if lines.next() != Some("tally-profile 1") {
        return Err("not tally-profile output (no `tally-profile 1` line)".into());
    }
    for (number, line) in lines.enumerate() {
        let bad = || format!("line {}: cannot read `{line}`", number + 2);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let dec = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .ok_or_else(bad)
        };
        let hex = |i: usize| {
            fields
                .get(i)
                .and_then(|f| u64::from_str_radix(f, 16).ok())
                .ok_or_else(bad)
        };
        match fields.first().copied() {
            Some("W") => {
                let w = dec(1)? as usize;
                if w > 1 {
                    return Err(bad());
                }
                raw.windows[w] = Some(WindowHead {
                    opened: dec(2)? == 1,
                    closed: dec(3)? == 1,
                    instructions: dec(4)?,
                    el0: dec(5)?,
                    el1: dec(6)?,
                });
            }
            Some("S") => raw.stats = (1..fields.len()).map(dec).collect::<Result<_, _>>()?,
            Some("P") => raw.pmu.push(dec(2)?),
            Some("I") => {
                raw.opcodes.insert(hex(1)?, hex(2)? as u32);
            }
            Some("N") => {
                let kind = fields
                    .get(4)
                    .and_then(|k| k.chars().next())
                    .ok_or_else(bad)?;
                raw.nodes
                    .insert(dec(1)? as u32, (dec(2)? as u32, hex(3)?, kind));
            }
            Some("C") => {
                let w = dec(1)? as usize;
                if w > 1 {
                    return Err(bad());
                }
                raw.counts.push((w, dec(2)? as u32, hex(3)?, dec(4)?));
            }
            None => {}
            Some(_) => return Err(bad()),
        }
    }
    if raw.windows[0].is_none() {
        return Err("no window line".into());
    }
    Ok(raw)
}

// ----------------------------------------------------------------------------- symbolizer

/// Names the code at an address: kernel addresses from the kernel ELF, EL0 ones from the user
/// program whose code there matches the instruction executed (every program is linked at the
/// same address; where several match, the row names them all).
pub struct Symbolizer {
    /// The kernel.
    pub kernel: Elf,
    /// (program name, ELF) of the config's programs.
    pub programs: Vec<(String, Elf)>,
}

/// Where an instruction is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The user programs it may be in (empty: the kernel).
    pub el0: Vec<String>,
    /// The function symbol containing it.
    pub symbol: String,
    /// The inlined frames at it, outermost first (the first is normally `symbol`).
    pub inlined: Vec<String>,
}

impl Place {
    /// `[el0 prog] ` for EL0 code, nothing for the kernel.
    pub fn prefix(&self) -> String {
        if self.el0.is_empty() {
            String::new()
        } else {
            format!("[el0 {}] ", self.el0.join("|"))
        }
    }
}

impl Symbolizer {
    /// The programs (indices into `programs`) whose code at EL0 address `pc` is `opcode`.
    pub fn candidates(&self, pc: u64, opcode: Option<u32>) -> Vec<usize> {
        (0..self.programs.len())
            .filter(|&i| {
                let word = self.programs[i].1.word(pc);
                word.is_some() && (opcode.is_none() || word == opcode)
            })
            .collect()
    }

    /// The place of `pc`: a kernel address, or an EL0 one in the first of `programs` (the
    /// symbol names every one of them gives, when they differ).
    pub fn place(&self, pc: u64, programs: &[usize]) -> Place {
        if pc >= KERNEL_MIN {
            return Place {
                el0: Vec::new(),
                symbol: self
                    .kernel
                    .symbol(pc)
                    .map_or_else(|| format!("?kernel 0x{pc:x}"), str::to_string),
                inlined: self.kernel.frames(pc),
            };
        }
        let Some(&first) = programs.first() else {
            return Place {
                el0: vec!["?".into()],
                symbol: format!("0x{pc:x}"),
                inlined: vec![format!("0x{pc:x}")],
            };
        };
        let mut symbols: Vec<String> = Vec::new();
        for &i in programs {
            let symbol = self.programs[i].1.symbol(pc).unwrap_or("?").to_string();
            if !symbols.contains(&symbol) {
                symbols.push(symbol);
            }
        }
        Place {
            el0: programs
                .iter()
                .map(|&i| self.programs[i].0.clone())
                .collect(),
            symbol: symbols.join(" | "),
            inlined: self.programs[first].1.frames(pc),
        }
    }
}

// ------------------------------------------------------------------------------ profile

/// The symbolized profile of one run.
#[derive(Debug, Default, serde::Serialize)]
pub struct Profile {
    /// The window's head.
    pub window: WindowHead,
    /// The baseline's head, if there was one.
    pub baseline: Option<WindowHead>,
    /// Window minus baseline.
    pub total: i64,
    /// Self instructions by function symbol (EL0 rows prefixed by their program).
    pub by_symbol: Vec<(String, i64)>,
    /// Self instructions by innermost inlined function.
    pub by_inlined: Vec<(String, i64)>,
    /// Inclusive instructions by function.
    pub inclusive: Vec<(String, i64)>,
    /// Folded stacks of the window (window minus baseline with a baseline; rows that come to
    /// zero are left out, negative ones kept).
    pub folded: Vec<(String, i64)>,
}

fn sorted(map: HashMap<String, i64>) -> Vec<(String, i64)> {
    let mut rows: Vec<_> = map.into_iter().filter(|(_, c)| *c != 0).collect();
    rows.sort_by(|a, b| b.1.abs().cmp(&a.1.abs()).then_with(|| a.0.cmp(&b.0)));
    rows
}

/// The call sites of the call tree's node `node`, root first.
fn sites_of(raw: &Raw, node: u32, cache: &mut HashMap<u32, Vec<u64>>) -> Vec<u64> {
    if node == 0 {
        return Vec::new();
    }
    if let Some(sites) = cache.get(&node) {
        return sites.clone();
    }
    let mut sites = match raw.nodes.get(&node) {
        Some(&(parent, site, _)) if parent != node => {
            let mut sites = sites_of(raw, parent, cache);
            sites.push(site);
            sites
        }
        _ => Vec::new(),
    };
    sites.truncate(4096);
    cache.insert(node, sites.clone());
    sites
}

/// The programs an EL0 stack can be in: those whose code matches at every EL0 address of it,
/// else those matching the innermost one.
fn programs_of(raw: &Raw, symbolizer: &Symbolizer, pcs: &[u64]) -> Vec<usize> {
    let mut all: Option<Vec<usize>> = None;
    for &pc in pcs.iter().filter(|&&pc| pc < KERNEL_MIN) {
        let here = symbolizer.candidates(pc, raw.opcodes.get(&pc).copied());
        all = Some(match all {
            None => here,
            Some(all) => all.into_iter().filter(|p| here.contains(p)).collect(),
        });
    }
    match all {
        Some(all) if !all.is_empty() => all,
        _ => pcs
            .iter()
            .rev()
            .find(|&&pc| pc < KERNEL_MIN)
            .map(|&pc| symbolizer.candidates(pc, raw.opcodes.get(&pc).copied()))
            .unwrap_or_default(),
    }
}

/// A stack's frames, root first: the function of each call site (with `inlined`, its inlined
/// frames too), a `[el0 PROG]` frame where the stack enters EL0 code.
pub fn frames(places: &[Place], inlined: bool) -> Vec<String> {
    let mut frames = Vec::new();
    let mut in_el0 = false;
    for place in places {
        if !place.el0.is_empty() && !in_el0 {
            frames.push(place.prefix().trim_end().to_string());
            in_el0 = true;
        }
        if inlined {
            frames.extend(place.inlined.iter().cloned());
        } else {
            frames.push(place.symbol.clone());
        }
    }
    frames
}

/// Symbolizes the plugin's counts.
pub fn build(raw: &Raw, symbolizer: &Symbolizer, inlined: bool) -> Profile {
    let window = raw.windows[0].clone().unwrap_or_default();
    let baseline = raw.windows[1].clone();
    let mut by_symbol = HashMap::new();
    let mut by_inlined = HashMap::new();
    let mut folded: HashMap<String, i64> = HashMap::new();
    let mut inclusive = HashMap::new();
    let mut sites = HashMap::new();
    let mut places: HashMap<(u64, Vec<usize>), Place> = HashMap::new();
    for &(w, node, pc, count) in &raw.counts {
        let count = if w == 0 {
            count as i64
        } else {
            -(count as i64)
        };
        let mut pcs = sites_of(raw, node, &mut sites);
        pcs.push(pc);
        let programs = programs_of(raw, symbolizer, &pcs);
        let stack: Vec<Place> = pcs
            .iter()
            .map(|&pc| {
                let key = (
                    pc,
                    if pc < KERNEL_MIN {
                        programs.clone()
                    } else {
                        Vec::new()
                    },
                );
                places
                    .entry(key)
                    .or_insert_with(|| symbolizer.place(pc, &programs))
                    .clone()
            })
            .collect();
        let place = stack.last().expect("the leaf");
        let prefix = place.prefix();
        *by_symbol
            .entry(format!("{prefix}{}", place.symbol))
            .or_insert(0) += count;
        let innermost = place.inlined.last().cloned().unwrap_or_default();
        *by_inlined
            .entry(format!("{prefix}{innermost}"))
            .or_insert(0) += count;
        let frames = frames(&stack, inlined);
        let mut seen = HashSet::new();
        for frame in &frames {
            if seen.insert(frame.as_str()) {
                *inclusive.entry(frame.clone()).or_insert(0) += count;
            }
        }
        *folded.entry(frames.join(";")).or_insert(0) += count;
    }
    let mut folded: Vec<_> = folded.into_iter().filter(|(_, c)| *c != 0).collect();
    folded.sort();
    Profile {
        total: window.instructions as i64 - baseline.as_ref().map_or(0, |b| b.instructions as i64),
        window,
        baseline,
        by_symbol: sorted(by_symbol),
        by_inlined: sorted(by_inlined),
        inclusive: sorted(inclusive),
        folded,
    }
}

/// Folded stacks, one `frame;frame;… count` line each (flamegraph.pl, inferno-flamegraph).
pub fn folded_text(rows: &[(String, i64)]) -> String {
    let mut text = String::new();
    for (stack, count) in rows {
        let _ = writeln!(text, "{stack} {count}");
    }
    text
}

/// `value / per` with two decimals, rounded as the bench programs' print_bench rounds.
pub fn per_op(value: i64, per: u64) -> String {
    let per = per.max(1) as i64;
    let hundredths = (value.abs() * 100 + per / 2) / per;
    format!(
        "{}{}.{:02}",
        if value < 0 { "-" } else { "" },
        hundredths / 100,
        hundredths % 100
    )
}

fn group(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// One markdown table of `rows` (the first `top`, the rest summed in one row).
pub fn table(title: &str, rows: &[(String, i64)], total: i64, per: u64, top: usize) -> String {
    let mut text = format!("\n## {title}\n");
    let head = if per > 1 { "per op" } else { "instructions" };
    let _ = writeln!(text, "| {head:>12} | {:>6} | function |", "%");
    text.push_str("|---:|---:|---|\n");
    let show = |count: i64| {
        if per > 1 {
            per_op(count, per)
        } else {
            group(count)
        }
    };
    let share = |count: i64| {
        if total == 0 {
            0.0
        } else {
            100.0 * count as f64 / total as f64
        }
    };
    for (name, count) in rows.iter().take(top) {
        let _ = writeln!(
            text,
            "| {:>12} | {:>5.1}% | {} |",
            show(*count),
            share(*count),
            name.replace('|', "\\|")
        );
    }
    if rows.len() > top {
        let rest: i64 = rows[top..].iter().map(|r| r.1).sum();
        let _ = writeln!(
            text,
            "| {:>12} | {:>5.1}% | ({} more) |",
            show(rest),
            share(rest),
            rows.len() - top
        );
    }
    text
}

// ------------------------------------------------------------------------------- running

/// Builds the plugin into `dir` when it is missing or its source changed; its path.
pub fn build_plugin(dir: &Path) -> Result<PathBuf, Failure> {
    let so = dir.join("tally-profile.so");
    let source = dir.join("tally-profile.c");
    let header = dir.join("qemu-plugin-api.h");
    let fresh = so.is_file()
        && std::fs::read_to_string(&source).is_ok_and(|s| s == PLUGIN_SOURCE)
        && std::fs::read_to_string(&header).is_ok_and(|s| s == PLUGIN_HEADER);
    if fresh {
        return Ok(so);
    }
    let io = |e: std::io::Error| Failure::environment(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::write(&source, PLUGIN_SOURCE).map_err(io)?;
    std::fs::write(&header, PLUGIN_HEADER).map_err(io)?;
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let output = std::process::Command::new(&cc)
        .args(["-O2", "-std=c11", "-Wall", "-shared", "-fPIC", "-fvisibility=hidden", "-o"])
        .arg(&so)
        .arg(&source)
        .output()
        .map_err(|e| {
            Failure::environment(format!(
                "cannot run the C compiler `{cc}` to build the QEMU plugin: {e} (apt-get install gcc)"
            ))
        })?;
    if !output.status.success() {
        return Err(Failure::environment(format!(
            "building the QEMU plugin failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(so)
}

/// A window side as the plugin takes it: `pmu:N`, `kpmu:N`, `0xADDR[/0xOPCODE][:N]`, a symbol
/// resolved to its address (and its encoding there).
pub fn marker(spec: &str, kernel: &Elf, programs: &[(String, Elf)]) -> Result<String, String> {
    let spec = spec.trim();
    if let Some(n) = spec
        .strip_prefix("pmu:")
        .or_else(|| spec.strip_prefix("kpmu:"))
    {
        return match n.parse::<u64>() {
            Ok(n) if n > 0 => Ok(spec.to_string()),
            _ => Err(format!(
                "`{spec}`: the count after `pmu:` is a number from 1"
            )),
        };
    }
    let (body, n) = match spec.rsplit_once(':') {
        Some((body, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            (body, n.parse::<u64>().map_err(|e| e.to_string())?)
        }
        _ => (spec, 1),
    };
    if n == 0 {
        return Err(format!("`{spec}`: executions are counted from 1"));
    }
    if let Some(hex) = body.strip_prefix("0x") {
        let address =
            u64::from_str_radix(hex, 16).map_err(|_| format!("`{spec}`: not an address"))?;
        return Ok(format!("0x{address:x}:{n}"));
    }
    let (body, program) = match body.rsplit_once('@') {
        Some((body, program)) => (body, Some(program)),
        None => (body, None),
    };
    let (symbol, offset) = match body.rsplit_once('+') {
        Some((symbol, offset)) => {
            let offset = match offset.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => offset.parse(),
            }
            .map_err(|_| format!("`{spec}`: bad offset"))?;
            (symbol, offset)
        }
        None => (body, 0),
    };
    let elf = match program {
        None => kernel,
        Some(program) => programs
            .iter()
            .find(|(name, _)| name == program)
            .map(|(_, elf)| elf)
            .ok_or_else(|| format!("`{spec}`: the config runs no program `{program}`"))?,
    };
    let address = elf.find(symbol).map_err(|e| format!("`{spec}`: {e}"))? + offset;
    Ok(match elf.word(address) {
        Some(word) => format!("0x{address:x}/0x{word:08x}:{n}"),
        None => format!("0x{address:x}:{n}"),
    })
}

fn split_window(spec: &str) -> Result<(Option<&str>, Option<&str>), String> {
    if spec == "all" {
        return Ok((None, None));
    }
    let (start, stop) = spec
        .split_once("..")
        .ok_or_else(|| format!("a window is START..STOP, not `{spec}`"))?;
    fn side(s: &str) -> Option<&str> {
        (!s.trim().is_empty()).then_some(s)
    }
    Ok((side(start), side(stop)))
}

/// The `BENCH NAME VALUE` figures on a console.
pub fn bench_figures(console: &str) -> BTreeMap<String, String> {
    console
        .lines()
        .filter_map(|line| {
            let rest = &line[line.find("BENCH ")? + 6..];
            let mut words = rest.split_whitespace();
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}

/// `tally profile`.
pub fn command(args: &ProfileArgs) -> Result<u8, Failure> {
    let config_path = crate::workspace::resolve(&args.config);
    let config = Config::load(&config_path, &PolicyOverrides::default())
        .map_err(|e| Failure::config(e.render()))?;
    let kernel_image = crate::workspace::resolve(&args.kernel);
    let elf_path = match &args.elf {
        Some(elf) => crate::workspace::resolve(elf),
        None => kernel_image.with_extension("elf"),
    };
    let kernel = Elf::open(&elf_path).map_err(|e| {
        Failure::environment(format!(
            "{e} (the kernel's ELF: `make image` writes build/tally.elf)"
        ))
    })?;
    let program_dir = crate::config::program_dir(&config_path).unwrap_or_default();
    let mut programs = Vec::new();
    for domain in &config.domains {
        if programs.iter().any(|(name, _)| *name == domain.program) {
            continue;
        }
        let elf = Elf::open(&program_dir.join(&domain.program)).map_err(Failure::environment)?;
        programs.push((domain.program.clone(), elf));
    }

    let stem = config_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    let in_bench = config_path
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|p| p == "bench");
    // The window of the figure asked for, else the bench's first.
    let of_bench = |b: &&BenchWindow| in_bench && b.bench == stem && args.window.is_none();
    let preset = match args.figure.as_deref() {
        Some(figure) => BENCH_WINDOWS
            .iter()
            .filter(of_bench)
            .find(|b| b.figure == figure),
        None => BENCH_WINDOWS.iter().find(of_bench),
    };
    let window = args
        .window
        .as_deref()
        .or(preset.map(|p| p.window))
        .unwrap_or("all");
    let baseline = args.baseline.as_deref().or(preset.and_then(|p| p.baseline));
    let per = args.per.or(preset.map(|p| p.per)).unwrap_or(1);
    let figure = args.figure.as_deref().or(preset.map(|p| p.figure));

    let vbar = kernel
        .find("exception_vectors")
        .map_err(|e| Failure::environment(format!("the kernel ELF: {e}")))?;
    let mut plugin_args = vec![format!("vbar=0x{vbar:x}")];
    let marker = |s: &str| marker(s, &kernel, &programs).map_err(Failure::config);
    let (start, stop) = split_window(window).map_err(Failure::config)?;
    for (key, side) in [("start", start), ("stop", stop)] {
        if let Some(side) = side {
            plugin_args.push(format!("{key}={}", marker(side)?));
        }
    }
    if let Some(baseline) = baseline {
        let (start, stop) = split_window(baseline).map_err(Failure::config)?;
        for (key, side) in [("base_start", start), ("base_stop", stop)] {
            if let Some(side) = side {
                plugin_args.push(format!("{key}={}", marker(side)?));
            }
        }
    }

    let root = crate::workspace::root().unwrap_or_else(|| PathBuf::from("."));
    let dir = root.join("build/profile");
    let so = build_plugin(&dir)?;
    let raw_path = args
        .raw
        .clone()
        .unwrap_or_else(|| dir.join(format!("{stem}.counts")));
    let _ = std::fs::remove_file(&raw_path);
    plugin_args.insert(0, format!("out={}", raw_path.display()));
    let extra = vec![
        "-plugin".to_string(),
        format!("{},{}", so.display(), plugin_args.join(",")),
        "-d".to_string(),
        "plugin".to_string(),
        "-D".to_string(),
        dir.join("qemu-plugin.log").display().to_string(),
    ];
    let mem_bytes = match args.mem.as_deref() {
        None => None,
        Some(text) => Some(
            crate::size::parse_size(text).map_err(|e| Failure::config(format!("--mem: {e}")))?,
        ),
    };
    let options = RunOptions {
        kernel: kernel_image,
        mem_bytes,
        cpu: "cortex-a72".into(),
        timeout_seconds: args.timeout,
        gdb: false,
        out_dir: dir.join(format!("{stem}.run")),
        echo: false,
    };
    let result = session::run_config_with(&config, &options, &extra)?;
    let text = std::fs::read_to_string(&raw_path).map_err(|e| {
        Failure::new(
            exit::RUN_FAILED,
            format!(
                "the plugin wrote no counts to {} ({e}); the run: {}\n{}",
                raw_path.display(),
                session::verdict_line(&result),
                result.outcome.qemu_stderr
            ),
        )
    })?;
    let raw = parse_raw(&text)
        .map_err(|e| Failure::new(exit::RUN_FAILED, format!("{}: {e}", raw_path.display())))?;
    let symbolizer = Symbolizer { kernel, programs };
    let profile = build(&raw, &symbolizer, args.inlined);
    if let Some(path) = &args.folded {
        std::fs::write(path, folded_text(&profile.folded))
            .map_err(|e| Failure::environment(format!("cannot write {}: {e}", path.display())))?;
    }

    // Checks: the run passed, the windows opened and closed, the total is the bench figure.
    let mut problems: Vec<String> = result.problems.clone();
    for (name, head, spec) in [
        ("window", Some(&profile.window), Some(window)),
        ("baseline", profile.baseline.as_ref(), baseline),
    ] {
        let (Some(head), Some(spec)) = (head, spec) else {
            continue;
        };
        let (_, stop) = split_window(spec).unwrap_or((None, None));
        if !head.opened {
            problems.push(format!("the {name} {spec} never opened"));
        } else if stop.is_some() && !head.closed {
            problems.push(format!("the {name} {spec} never closed"));
        }
    }
    let pmu_window = |spec: &str| -> Option<i64> {
        let (start, stop) = split_window(spec).ok()?;
        let index = |s: Option<&str>| -> Option<usize> { s?.strip_prefix("pmu:")?.parse().ok() };
        let (a, b) = (index(start)?, index(stop)?);
        Some(*raw.pmu.get(b - 1)? as i64 - *raw.pmu.get(a - 1)? as i64)
    };
    let pmu_total = match (pmu_window(window), baseline.map(pmu_window)) {
        (Some(w), None) => Some(w),
        (Some(w), Some(Some(b))) => Some(w - b),
        _ => None,
    };
    if let Some(pmu_total) = pmu_total {
        if pmu_total != profile.total {
            problems.push(format!(
                "the window's counts total {} but its counter reads are {} apart",
                profile.total, pmu_total
            ));
        }
    }
    let figures = bench_figures(&result.outcome.console);
    let mut check = None;
    if let Some(name) = figure {
        match figures.get(name) {
            None => problems.push(format!("the console has no `BENCH {name}` figure")),
            Some(printed) => {
                let measured = per_op(profile.total, per);
                let same = measured == *printed;
                if !same {
                    problems.push(format!(
                        "the window's total {} / {per} = {measured}, but the bench printed {name} {printed}",
                        profile.total
                    ));
                }
                check = Some((name.to_string(), printed.clone(), measured, same));
            }
        }
    }
    let status = if problems.is_empty() {
        exit::OK
    } else {
        exit::RUN_FAILED
    };

    if args.json {
        let json = serde_json::json!({
            "schema": "tally.profile/1",
            "config": args.config.display().to_string(),
            "kernel_elf": elf_path.display().to_string(),
            "window": window,
            "baseline": baseline,
            "per": per,
            "profile": profile,
            "bench_figures": figures,
            "figure_check": check.as_ref().map(|(name, printed, measured, same)| serde_json::json!({
                "figure": name, "printed": printed, "measured": measured, "matches": same})),
            "problems": problems,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
        return Ok(status);
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# profile of {} ({}), kernel {}",
        args.config.display(),
        config.name,
        elf_path.display()
    );
    let _ = write!(out, "# window {window}");
    if let Some(baseline) = baseline {
        let _ = write!(out, " minus baseline {baseline}");
    }
    let _ = writeln!(
        out,
        "{}",
        if per > 1 {
            format!(", per {per} operations")
        } else {
            String::new()
        }
    );
    let counted = |out: &mut String, what: &str, head: &WindowHead| {
        let _ = writeln!(
            out,
            "# {what}: {} instructions (EL0 {}, EL1 {})",
            group(head.instructions as i64),
            group(head.el0 as i64),
            group(head.el1 as i64)
        );
    };
    counted(&mut out, "window", &profile.window);
    if let Some(base) = &profile.baseline {
        counted(&mut out, "baseline", base);
    }
    let _ = writeln!(
        out,
        "# total: {}{}",
        group(profile.total),
        if per > 1 {
            format!(" = {} per operation", per_op(profile.total, per))
        } else {
            String::new()
        }
    );
    if let Some(pmu_total) = pmu_total {
        let _ = writeln!(
            out,
            "# counter reads: {} apart ({})",
            group(pmu_total),
            if pmu_total == profile.total {
                "equal"
            } else {
                "DIFFERENT"
            }
        );
    }
    if let Some((name, printed, measured, same)) = &check {
        let _ = writeln!(
            out,
            "# bench figure {name}: printed {printed}, window {measured}: {}",
            if *same { "equal" } else { "DIFFERENT" }
        );
    }
    if let [seq, faults, reexec, unmatched, switches, overflows] = raw.stats[..] {
        let _ = writeln!(
            out,
            "# run: {} instructions; retaken: {faults} faults, {reexec} re-executions; \
             stacks: {switches} switches, {unmatched} unmatched returns, {overflows} overflows",
            group(seq as i64)
        );
    }
    let total = profile.total;
    out.push_str(&table(
        "self, by function symbol",
        &profile.by_symbol,
        total,
        per,
        args.top,
    ));
    out.push_str(&table(
        "self, by innermost inlined function",
        &profile.by_inlined,
        total,
        per,
        args.top,
    ));
    if args.inclusive {
        out.push_str(&table(
            if args.inlined {
                "inclusive (with callees and inlined frames)"
            } else {
                "inclusive (with callees)"
            },
            &profile.inclusive,
            total,
            per,
            args.top,
        ));
    }
    if let Some(path) = &args.folded {
        let _ = writeln!(
            out,
            "\nfolded stacks: {} ({} stacks; `flamegraph.pl {0} > profile.svg` or `inferno-flamegraph`)",
            path.display(),
            profile.folded.len()
        );
    }
    print!("{out}");
    for problem in &problems {
        eprintln!("tally profile: {problem}");
    }
    Ok(status)
}

#[cfg(test)]
mod tests;
