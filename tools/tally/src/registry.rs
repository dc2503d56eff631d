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
