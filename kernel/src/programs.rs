//! The user programs embedded in the kernel image (ELF files from `user/`, see build.rs).

include!(concat!(env!("OUT_DIR"), "/programs.rs"));

/// The ELF image of the program called `name`.
pub fn find(name: &str) -> Option<&'static [u8]> {
    PROGRAMS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, image)| *image)
}
