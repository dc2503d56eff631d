//! The policy keys and their valid names, as the config validator sees them.
//!
//! The source of truth is the `policies` crate's registry (`policies::KEYS`,
//! `policies::valid_names`); this module is the one place the host tool asks it, so the rest of
//! the tool never spells a policy name. The first name of each key is its default.

/// Every policy key, in the order the boot arguments and reports list them.
pub fn keys() -> &'static [&'static str] {
    &KEYS
}

/// The valid names of a policy key, default first; `None` for an unknown key.
pub fn valid_names(key: &str) -> Option<&'static [&'static str]> {
    match key {
        "cow" => Some(&["writer", "holder", "split"]),
        "msgbuf" => Some(&["sender", "receiver", "split", "kernel"]),
        "pagetable" => Some(&["owner", "causer"]),
        "release" => Some(&["migrate", "stay"]),
        _ => None,
    }
}

const KEYS: [&str; 4] = ["cow", "msgbuf", "pagetable", "release"];

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
}
