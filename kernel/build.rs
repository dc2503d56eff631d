//! Build script: links with ../aarch64.ld and embeds the user programs.
//!
//! The Makefile builds `user/` first and sets `TALLY_USER_DIR` to the directory holding the
//! program ELF files; every program named in `user/src/bin/*.rs` is embedded from there. With
//! the variable unset (e.g. `cargo clippy`), no program is embedded and every config naming one
//! is rejected at boot.

use std::env;
use std::fmt::Write;
use std::fs;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    let script = root.join("aarch64.ld");
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-env-changed=TALLY_USER_DIR");

    let bin_dir = root.join("user/src/bin");
    println!("cargo:rerun-if-changed={}", bin_dir.display());
    let mut names: Vec<String> = fs::read_dir(&bin_dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".rs"))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();

    let user_dir = env::var("TALLY_USER_DIR").ok().map(PathBuf::from);
    // Each image is 16-byte aligned (the loader copies it with aligned word accesses).
    let mut table = String::from(
        "#[repr(C)]\nstruct Aligned<B: ?Sized> {\n    _align: [u128; 0],\n    bytes: B,\n}\n\n",
    );
    let mut entries = String::new();
    if let Some(dir) = &user_dir {
        for (number, name) in names.iter().enumerate() {
            let path = dir.join(name);
            if !path.exists() {
                panic!(
                    "TALLY_USER_DIR has no program {} (build user/ first)",
                    path.display()
                );
            }
            println!("cargo:rerun-if-changed={}", path.display());
            writeln!(
                table,
                "static PROGRAM_{number}: &Aligned<[u8]> = &Aligned {{ _align: [], bytes: *include_bytes!({:?}) }};",
                path.display().to_string()
            )
            .unwrap();
            writeln!(entries, "    ({name:?}, &PROGRAM_{number}.bytes),").unwrap();
        }
    }
    table.push_str(
        "/// The embedded programs, by name.\npub static PROGRAMS: &[(&str, &[u8])] = &[\n",
    );
    table.push_str(&entries);
    table.push_str("];\n");
    writeln!(table, "/// Every program name, sorted.").unwrap();
    let quoted: Vec<String> = if user_dir.is_some() {
        names.iter().map(|n| format!("{n:?}")).collect()
    } else {
        Vec::new()
    };
    writeln!(
        table,
        "pub static NAMES: &[&str] = &[{}];",
        quoted.join(", ")
    )
    .unwrap();
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("programs.rs");
    fs::write(out, table).unwrap();
}
