//! The policy keys and their valid names, as the config validator sees them.
//!
//! The source of truth is the `policies` crate's registry (`policies::KEYS`,
//! `policies::valid_names`); this module is the one place the host tool asks it, so the rest of
//! the tool never spells a policy name. The first name of each key is its default.

/// Every policy key, in the order the boot arguments and reports list them.
pub fn keys() -> &'static [&'static str] {
    &policies::KEYS
}

/// The valid names of a policy key, default first; `None` for an unknown key.
pub fn valid_names(key: &str) -> Option<&'static [&'static str]> {
    policies::valid_names(key)
}

/// The default name of a policy key (the first valid name).
pub fn default_name(key: &str) -> Option<&'static str> {
    valid_names(key).and_then(|names| names.first().copied())
}

/// The key that names a preset (`[policy] preset = "NAME"`, `--policy preset=NAME`,
/// `vary = ["preset"]`, `when = { preset = "NAME" }`): not a policy key, but a set of them.
pub const PRESET: &str = "preset";

/// The preset names, in the order docs/presets.md describes them.
pub fn preset_names() -> &'static [&'static str] {
    &policies::PRESET_NAMES
}

/// The preset called `name`: a name per policy key, in [`keys`] order, and a transfer mode.
pub fn preset(name: &str) -> Option<&'static policies::Preset> {
    policies::preset(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_default() {
        for key in keys() {
            assert!(default_name(key).is_some(), "{key}");
        }
        assert_eq!(valid_names("nonsense"), None);
    }

    /// Every preset expands to names the validator accepts, for every key in order, and to a
    /// transfer mode the boot config knows.
    #[test]
    fn every_preset_expands_to_valid_names() {
        for name in preset_names() {
            let preset = preset(name).unwrap();
            let listed: Vec<&str> = preset.policy.iter().map(|(key, _)| *key).collect();
            assert_eq!(listed, keys(), "{name}");
            for (key, value) in preset.policy {
                assert!(
                    valid_names(key).unwrap().contains(&value),
                    "{name}: {key}={value}"
                );
            }
            assert!(
                crate::config::TRANSFERS.contains(&preset.transfer),
                "{name}: {}",
                preset.transfer
            );
        }
        assert_eq!(policies::presets::TRANSFERS, crate::config::TRANSFERS);
        assert!(preset("nonsense").is_none());
    }

    /// Every name the validator accepts is one the kernel's registry can look up.
    #[test]
    fn every_valid_name_looks_up() {
        for key in keys() {
            for name in valid_names(key).unwrap() {
                assert!(policies::lookup(key, name).is_ok(), "{key}={name}");
            }
        }
    }
}
