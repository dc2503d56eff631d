//! Presets: named sets of policy values that approximate real systems (`[policy] preset =
//! "linux-memcg"` in a config). A preset is data, not a policy: it names one value for every
//! config key and the IPC transfer mode it models; explicit keys override it. Why each value
//! was chosen, with sources and where Tally only approximates the real system, is
//! docs/presets.md.
//!
//! | preset | cow | msgbuf | pagetable | release | kernel | move | transfer |
//! |---|---|---|---|---|---|---|---|
//! | `linux-memcg` | writer | sender | causer | stay | spawner | stay | two-stage |
//! | `sel4` | holder | kernel | causer | stay | spawner | stay | direct |
//! | `keykos` | writer | kernel | owner | stay | self | stay | direct |
//! | `zircon` | split | kernel | owner | migrate | self | migrate | two-stage |
//!
//! Invariants (checked by the tests): every preset names every key of [`crate::KEYS`] once, in
//! that order, each with a name the registry knows; preset names are unique; the transfer mode
//! is one of [`TRANSFERS`].

use crate::{with_overrides, LookupError, Policies, KEYS};

/// The IPC transfer modes a preset may name (the boot config's names, default first).
pub const TRANSFERS: [&str; 2] = ["direct", "two-stage"];

/// One preset: the system it models and the values it expands to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preset {
    /// The config name (`preset = "NAME"`).
    pub name: &'static str,
    /// The real system, in a few words.
    pub system: &'static str,
    /// One `(key, name)` per config key, in [`KEYS`] order.
    pub policy: [(&'static str, &'static str); KEYS.len()],
    /// The IPC transfer mode (`ipc.transfer`), one of [`TRANSFERS`].
    pub transfer: &'static str,
}

impl Preset {
    /// The policy name this preset gives `key`, if `key` is a config key.
    pub fn name_of(&self, key: &str) -> Option<&'static str> {
        self.policy
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, name)| *name)
    }

    /// The policies this preset expands to.
    pub fn policies(&self) -> Result<Policies, LookupError> {
        with_overrides(&self.policy)
    }
}

/// Linux's memory cgroup (cgroup v2 `memory` controller).
pub const LINUX_MEMCG: Preset = Preset {
    name: "linux-memcg",
    system: "Linux memory cgroup (cgroup v2)",
    policy: [
        ("cow", "writer"),
        ("msgbuf", "sender"),
        ("pagetable", "causer"),
        ("release", "stay"),
        ("kernel", "spawner"),
        ("move", "stay"),
    ],
    transfer: "two-stage",
};

/// seL4: every object retyped from untyped memory by whoever holds it (here: the spawner or
/// pager).
pub const SEL4: Preset = Preset {
    name: "sel4",
    system: "seL4 (untyped memory held by the parent/pager)",
    policy: [
        ("cow", "holder"),
        ("msgbuf", "kernel"),
        ("pagetable", "causer"),
        ("release", "stay"),
        ("kernel", "spawner"),
        ("move", "stay"),
    ],
    transfer: "direct",
};

/// KeyKOS (and EROS): pages and nodes bought from space banks.
pub const KEYKOS: Preset = Preset {
    name: "keykos",
    system: "KeyKOS/EROS (space banks)",
    policy: [
        ("cow", "writer"),
        ("msgbuf", "kernel"),
        ("pagetable", "owner"),
        ("release", "stay"),
        ("kernel", "self"),
        ("move", "stay"),
    ],
    transfer: "direct",
};

/// Zircon (Fuchsia): VMO pages attributed to the processes that map them.
pub const ZIRCON: Preset = Preset {
    name: "zircon",
    system: "Zircon (Fuchsia) memory attribution",
    policy: [
        ("cow", "split"),
        ("msgbuf", "kernel"),
        ("pagetable", "owner"),
        ("release", "migrate"),
        ("kernel", "self"),
        ("move", "migrate"),
    ],
    transfer: "two-stage",
};

/// Every preset, in documentation order.
pub const PRESETS: &[Preset] = &[LINUX_MEMCG, SEL4, KEYKOS, ZIRCON];

/// The preset names, in [`PRESETS`] order.
pub static PRESET_NAMES: [&str; PRESETS.len()] = {
    let mut out = [""; PRESETS.len()];
    let mut index = 0;
    while index < PRESETS.len() {
        out[index] = PRESETS[index].name;
        index += 1;
    }
    out
};

/// The preset called `name`.
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|preset| preset.name == name)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::{lookup, valid_names};
    use std::string::ToString;

    #[test]
    fn every_preset_names_every_key_in_order_with_a_known_name() {
        for preset in PRESETS {
            let keys: std::vec::Vec<&str> = preset.policy.iter().map(|(k, _)| *k).collect();
            assert_eq!(keys, KEYS, "{}", preset.name);
            for (key, name) in preset.policy {
                assert!(lookup(key, name).is_ok(), "{}: {key}={name}", preset.name);
                assert!(valid_names(key).unwrap().contains(&name));
            }
            assert!(TRANSFERS.contains(&preset.transfer), "{}", preset.name);
            assert!(preset.policies().is_ok());
        }
    }

    #[test]
    fn names_are_unique_and_found() {
        let mut names = PRESET_NAMES.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), PRESETS.len());
        for name in PRESET_NAMES {
            assert_eq!(preset(name).unwrap().name, name);
        }
        assert_eq!(preset("linux"), None);
        assert_eq!(
            PRESET_NAMES,
            ["linux-memcg", "sel4", "keykos", "zircon"],
            "the documented order"
        );
    }

    /// The values docs/presets.md argues for; a change here must change that page.
    #[test]
    fn presets_expand_to_the_documented_values() {
        let expanded = |name: &str| {
            let preset = preset(name).unwrap();
            (preset.policies().unwrap().to_string(), preset.transfer)
        };
        assert_eq!(
            expanded("linux-memcg"),
            (
                "cow=writer msgbuf=sender pagetable=causer release=stay kernel=spawner move=stay"
                    .to_string(),
                "two-stage"
            )
        );
        assert_eq!(
            expanded("sel4"),
            (
                "cow=holder msgbuf=kernel pagetable=causer release=stay kernel=spawner move=stay"
                    .to_string(),
                "direct"
            )
        );
        assert_eq!(
            expanded("keykos"),
            (
                "cow=writer msgbuf=kernel pagetable=owner release=stay kernel=self move=stay"
                    .to_string(),
                "direct"
            )
        );
        assert_eq!(
            expanded("zircon"),
            (
                "cow=split msgbuf=kernel pagetable=owner release=migrate kernel=self move=migrate"
                    .to_string(),
                "two-stage"
            )
        );
        assert_eq!(ZIRCON.name_of("cow"), Some("split"));
        assert_eq!(ZIRCON.name_of("colour"), None);
    }
}
