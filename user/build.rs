//! Links every user program with user.ld.
fn main() {
    let script =
        std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("user.ld");
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    // The kernel embeds every program: keep them small.
    println!("cargo:rustc-link-arg-bins=--strip-debug");
    println!("cargo:rerun-if-changed={}", script.display());
}
