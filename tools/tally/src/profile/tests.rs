use super::*;

/// A minimal little-endian AArch64 ELF64 executable: one `.text` section at `address` holding
/// `code`, and function symbols (name, address, size).
fn tiny_elf(address: u64, code: &[u32], symbols: &[(&str, u64, u64)]) -> Vec<u8> {
    let text: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; 24];
    for (name, value, size) in symbols {
        let offset = strtab.len() as u32;
        strtab.extend(name.as_bytes());
        strtab.push(0);
        symtab.extend(offset.to_le_bytes());
        symtab.push(0x12); // STB_GLOBAL, STT_FUNC
        symtab.push(0);
        symtab.extend(1u16.to_le_bytes()); // .text
        symtab.extend(value.to_le_bytes());
        symtab.extend(size.to_le_bytes());
    }
    let shstrtab = b"\0.text\0.symtab\0.strtab\0.shstrtab\0".to_vec();
    let mut file = vec![0u8; 64];
    let text_off = file.len();
    file.extend(&text);
    let symtab_off = file.len();
    file.extend(&symtab);
    let strtab_off = file.len();
    file.extend(&strtab);
    let shstrtab_off = file.len();
    file.extend(&shstrtab);
    while !file.len().is_multiple_of(8) {
        file.push(0);
    }
    let shoff = file.len();
    // (name, type, flags, addr, offset, size, link, info, align, entsize)
    #[allow(clippy::type_complexity)]
    let sections: [(u32, u32, u64, u64, usize, usize, u32, u32, u64, u64); 5] = [
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        (1, 1, 6, address, text_off, text.len(), 0, 0, 4, 0),
        (7, 2, 0, 0, symtab_off, symtab.len(), 3, 1, 8, 24),
        (15, 3, 0, 0, strtab_off, strtab.len(), 0, 0, 1, 0),
        (23, 3, 0, 0, shstrtab_off, shstrtab.len(), 0, 0, 1, 0),
    ];
    for (name, kind, flags, addr, offset, size, link, info, align, entsize) in sections {
        file.extend(name.to_le_bytes());
        file.extend(kind.to_le_bytes());
        file.extend(flags.to_le_bytes());
        file.extend(addr.to_le_bytes());
        file.extend((offset as u64).to_le_bytes());
        file.extend((size as u64).to_le_bytes());
        file.extend(link.to_le_bytes());
        file.extend(info.to_le_bytes());
        file.extend(align.to_le_bytes());
        file.extend(entsize.to_le_bytes());
    }
    let mut header = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    header.resize(16, 0);
    header.extend(2u16.to_le_bytes()); // ET_EXEC
    header.extend(183u16.to_le_bytes()); // EM_AARCH64
    header.extend(1u32.to_le_bytes());
    header.extend(address.to_le_bytes()); // entry
    header.extend(0u64.to_le_bytes()); // phoff
    header.extend((shoff as u64).to_le_bytes());
    header.extend(0u32.to_le_bytes()); // flags
    header.extend(64u16.to_le_bytes()); // ehsize
    header.extend(56u16.to_le_bytes());
    header.extend(0u16.to_le_bytes());
    header.extend(64u16.to_le_bytes()); // shentsize
    header.extend(5u16.to_le_bytes());
    header.extend(4u16.to_le_bytes()); // shstrndx
    file[..64].copy_from_slice(&header);
    file
}

const K: u64 = 0xffff_ff80_4000_0000;
const NOP: u32 = 0xd503_201f;
const BL: u32 = 0x9400_0004;
const RET: u32 = 0xd65f_03c0;

/// A kernel with `entry` (0x00..0x10, calling `helper`) and `helper` (0x10..0x20); two user
/// programs at 0x1000 whose `_start` is the same code and whose next function differs.
fn symbolizer() -> Symbolizer {
    let kernel = tiny_elf(
        K,
        &[NOP, BL, NOP, RET, NOP, NOP, NOP, RET],
        &[
            ("_ZN5tally6kernel5entry17h0123456789abcdefE", K, 16),
            ("helper", K + 16, 16),
        ],
    );
    let a = tiny_elf(
        0x1000,
        &[BL, NOP, NOP, 0xd400_0001],
        &[("_start", 0x1000, 8), ("a_main", 0x1008, 8)],
    );
    let b = tiny_elf(
        0x1000,
        &[BL, NOP, RET, RET],
        &[("_start", 0x1000, 8), ("b_main", 0x1008, 8)],
    );
    Symbolizer {
        kernel: Elf::parse(&kernel).unwrap(),
        programs: vec![
            ("prog_a".into(), Elf::parse(&a).unwrap()),
            ("prog_b".into(), Elf::parse(&b).unwrap()),
        ],
    }
}

#[test]
fn the_elf_reader_finds_symbols_words_and_demangles() {
    let s = symbolizer();
    assert_eq!(s.kernel.symbol(K + 4), Some("tally::kernel::entry"));
    assert_eq!(s.kernel.symbol(K + 0x1c), Some("helper"));
    assert_eq!(s.kernel.symbol(K + 0x20), None);
    assert_eq!(s.kernel.word(K + 4), Some(BL));
    assert_eq!(s.kernel.find("entry"), Ok(K));
    assert!(s.kernel.find("nothing").is_err());
    // No DWARF: the inlined frames are the symbol alone.
    assert_eq!(s.kernel.frames(K + 20), vec!["helper".to_string()]);
    assert_eq!(
        demangle("_ZN4core3ptr13drop_in_place17h0123456789abcdefE.llvm.42"),
        "core::ptr::drop_in_place"
    );
}

#[test]
fn el0_code_is_named_from_the_programs_whose_code_matches() {
    let s = symbolizer();
    assert_eq!(s.candidates(0x1000, Some(BL)), vec![0, 1]);
    assert_eq!(s.candidates(0x100c, Some(0xd400_0001)), vec![0]);
    assert_eq!(s.candidates(0x100c, Some(RET)), vec![1]);
    let both = s.place(0x1000, &[0, 1]);
    assert_eq!(both.prefix(), "[el0 prog_a|prog_b] ");
    assert_eq!(both.symbol, "_start");
    let a = s.place(0x1008, &[0]);
    assert_eq!(
        (a.prefix().as_str(), a.symbol.as_str()),
        ("[el0 prog_a] ", "a_main")
    );
    assert_eq!(s.place(K + 16, &[]).symbol, "helper");
}

/// The plugin's output for: prog_a's `_start` calls `a_main` (node 1, site 0x1000), which
/// makes a system call (node 2, exception at 0x100c) into the kernel's `entry`, which calls
/// `helper` (node 3, site K+4). A baseline window counts the EL0 part again.
const RAW: &str = "tally-profile 1
W 0 1 1 13 4 9
W 1 1 1 2 2 0
S 100 1 0 0 2 0
P 1 10
P 2 23
I 1000 94000004
I 1008 d503201f
I 100c d4000001
I ffffff8040000000 d503201f
I ffffff8040000004 94000004
I ffffff8040000010 d503201f
N 1 0 1000 c
N 2 1 100c e
N 3 2 ffffff8040000004 c
C 0 0 1000 1
C 0 1 1008 2
C 0 1 100c 1
C 0 2 ffffff8040000000 3
C 0 2 ffffff8040000004 2
C 0 3 ffffff8040000010 4
C 1 1 1008 2
";

#[test]
fn the_plugin_output_is_read() {
    let raw = parse_raw(RAW).unwrap();
    let head = raw.windows[0].clone().unwrap();
    assert_eq!((head.instructions, head.el0, head.el1), (13, 4, 9));
    assert_eq!(raw.windows[1].as_ref().unwrap().instructions, 2);
    assert_eq!(raw.pmu, vec![10, 23]);
    assert_eq!(raw.nodes[&3], (2, K + 4, 'c'));
    assert_eq!(raw.counts.len(), 7);
    assert!(parse_raw("garbage").is_err());
    assert!(parse_raw("tally-profile 1\nW 0 1 1 x 0 0\n").is_err());
}

#[test]
fn tables_and_folded_stacks_attribute_every_instruction() {
    let raw = parse_raw(RAW).unwrap();
    let profile = build(&raw, &symbolizer(), false);
    assert_eq!(profile.total, 11);
    let sum: i64 = profile.by_symbol.iter().map(|r| r.1).sum();
    assert_eq!(sum, profile.total);
    assert_eq!(
        profile.by_symbol[0],
        ("tally::kernel::entry".to_string(), 5)
    );
    assert_eq!(profile.by_symbol[1], ("helper".to_string(), 4));
    // a_main's 2 instructions are cancelled by the baseline's.
    assert!(!profile
        .by_symbol
        .iter()
        .any(|r| r.0.contains("a_main") && r.1 != 1));
    let folded = folded_text(&profile.folded);
    assert_eq!(
        folded,
        // The lone `_start` instruction is the same code in both programs: both are named.
        "[el0 prog_a];_start;a_main 1\n\
         [el0 prog_a];_start;a_main;tally::kernel::entry 5\n\
         [el0 prog_a];_start;a_main;tally::kernel::entry;helper 4\n\
         [el0 prog_a|prog_b];_start 1\n"
    );
    let inclusive: HashMap<_, _> = profile.inclusive.iter().cloned().collect();
    assert_eq!(inclusive["_start"], 11);
    assert_eq!(inclusive["[el0 prog_a]"], 10);
    assert_eq!(inclusive["tally::kernel::entry"], 9);
    assert_eq!(inclusive["helper"], 4);
}

#[test]
fn markers_windows_and_figures_are_read() {
    let s = symbolizer();
    let m = |spec: &str| marker(spec, &s.kernel, &s.programs);
    assert_eq!(m("pmu:3").unwrap(), "pmu:3");
    assert!(m("pmu:0").is_err());
    assert_eq!(m("0x40:2").unwrap(), "0x40:2");
    assert_eq!(
        m("helper").unwrap(),
        format!("0x{:x}/0x{NOP:08x}:1", K + 16)
    );
    assert_eq!(
        m("entry+4:7").unwrap(),
        format!("0x{:x}/0x{BL:08x}:7", K + 4)
    );
    assert_eq!(m("b_main@prog_b").unwrap(), format!("0x1008/0x{RET:08x}:1"));
    assert!(m("b_main@nobody").is_err());
    assert_eq!(
        split_window("pmu:3..pmu:4"),
        Ok((Some("pmu:3"), Some("pmu:4")))
    );
    assert_eq!(split_window("..helper"), Ok((None, Some("helper"))));
    assert_eq!(split_window("all"), Ok((None, None)));
    assert!(split_window("pmu:3").is_err());
    assert_eq!(per_op(949_004, 1000), "949.00");
    assert_eq!(per_op(204_800, 256), "800.00");
    assert_eq!(per_op(-5, 2), "-2.50");
    let figures =
        bench_figures("[client] BENCH ipc_roundtrip_registers 949.00\nother\nBENCH x 1.50\n");
    assert_eq!(figures["ipc_roundtrip_registers"], "949.00");
    assert_eq!(figures["x"], "1.50");
}

#[test]
fn every_bench_window_names_a_bench_config() {
    let root = crate::workspace::root().expect("the checkout");
    for window in BENCH_WINDOWS {
        assert!(
            root.join(format!("bench/{}.toml", window.bench)).is_file(),
            "{window:?}"
        );
        assert!(split_window(window.window).is_ok());
    }
}
