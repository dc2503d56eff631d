//! Tally's charge policies, one file each, and the registry that finds one by its config name.
//!
//! Invariants: every policy is a pure function from [`accounting::ChargeEvent`] to
//! [`accounting::Decision`] (no state, no side effects); for every key the registry lists the
//! default first; names are unique per key and equal the policy's own [`Policy::name`].
//!
//! | key | values (first is the default) |
//! |---|---|
//! | `cow` | `writer`, `holder`, `split`, `holder-else-writer`, `keeper` |
//! | `msgbuf` | `sender`, `receiver`, `split`, `kernel`, `receiver-else-sender`, `keeper` |
//! | `pagetable` | `owner`, `causer` |
//! | `release` | `migrate`, `stay` |
//! | `kernel` | `self`, `spawner` |
//! | `move` | `stay`, `migrate` |
//!
//! # Adding a policy
//!
//! 1. Add one file `src/KEY_NAME.rs` (copy `cow_writer.rs`): a `pub const NAME`, a unit struct
//!    implementing [`accounting::Policy`], and `pub static POLICY`. Its `decide` returns one of
//!    the roles the ledger understands for that key (see [`accounting::EventKind`]).
//! 2. Add one `mod` line and one registry line `(KEY_NAME::NAME, &KEY_NAME::POLICY)` to the
//!    key's table below (`COW`, `MSGBUF`, `PAGETABLE`, `RELEASE`, `KERNEL` or `MOVE`).
//!
//! Nothing else changes: the host tool and the kernel find policies through [`lookup`] and
//! [`valid_names`], and the registry tests check every entry.
//!
//! # Presets
//!
//! [`presets`] names one value per key (and an IPC transfer mode) for each real system a
//! config can ask for with `preset = "NAME"`: `linux-memcg`, `sel4`, `keykos`, `zircon`
//! ([`PRESETS`], [`preset`]). Why each value, with sources: docs/presets.md.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use accounting::{Policy, PolicyKey};
use core::fmt;

pub mod cow_holder;
pub mod cow_holder_else_writer;
pub mod cow_keeper;
pub mod cow_split;
pub mod cow_writer;
pub mod kernel_self;
pub mod kernel_spawner;
pub mod move_migrate;
pub mod move_stay;
pub mod msgbuf_keeper;
pub mod msgbuf_kernel;
pub mod msgbuf_receiver;
pub mod msgbuf_receiver_else_sender;
pub mod msgbuf_sender;
pub mod msgbuf_split;
pub mod pagetable_causer;
pub mod pagetable_owner;
pub mod presets;
pub mod release_migrate;
pub mod release_stay;

pub use accounting::Policies;
pub use presets::{preset, Preset, PRESETS, PRESET_NAMES};

/// One registry entry: the config name and the policy.
pub type Entry = (&'static str, &'static dyn Policy);

/// The config keys, in config order.
pub const KEYS: [&str; 6] = ["cow", "msgbuf", "pagetable", "release", "kernel", "move"];

/// `cow` policies, default first.
pub const COW: &[Entry] = &[
    (cow_writer::NAME, &cow_writer::POLICY),
    (cow_holder::NAME, &cow_holder::POLICY),
    (cow_split::NAME, &cow_split::POLICY),
    (
        cow_holder_else_writer::NAME,
        &cow_holder_else_writer::POLICY,
    ),
    (cow_keeper::NAME, &cow_keeper::POLICY),
];

/// `msgbuf` policies, default first.
pub const MSGBUF: &[Entry] = &[
    (msgbuf_sender::NAME, &msgbuf_sender::POLICY),
    (msgbuf_receiver::NAME, &msgbuf_receiver::POLICY),
    (msgbuf_split::NAME, &msgbuf_split::POLICY),
    (msgbuf_kernel::NAME, &msgbuf_kernel::POLICY),
    (
        msgbuf_receiver_else_sender::NAME,
        &msgbuf_receiver_else_sender::POLICY,
    ),
    (msgbuf_keeper::NAME, &msgbuf_keeper::POLICY),
];

/// `pagetable` policies, default first.
pub const PAGETABLE: &[Entry] = &[
    (pagetable_owner::NAME, &pagetable_owner::POLICY),
    (pagetable_causer::NAME, &pagetable_causer::POLICY),
];

/// `release` policies, default first.
pub const RELEASE: &[Entry] = &[
    (release_migrate::NAME, &release_migrate::POLICY),
    (release_stay::NAME, &release_stay::POLICY),
];

/// `kernel` policies, default first.
pub const KERNEL: &[Entry] = &[
    (kernel_self::NAME, &kernel_self::POLICY),
    (kernel_spawner::NAME, &kernel_spawner::POLICY),
];

/// `move` policies, default first.
pub const MOVE: &[Entry] = &[
    (move_stay::NAME, &move_stay::POLICY),
    (move_migrate::NAME, &move_migrate::POLICY),
];

/// Copies the names out of a registry table (at compile time).
const fn names<const N: usize>(entries: &[Entry]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut index = 0;
    while index < N {
        out[index] = entries[index].0;
        index += 1;
    }
    out
}

static COW_NAMES: [&str; COW.len()] = names(COW);
static MSGBUF_NAMES: [&str; MSGBUF.len()] = names(MSGBUF);
static PAGETABLE_NAMES: [&str; PAGETABLE.len()] = names(PAGETABLE);
static RELEASE_NAMES: [&str; RELEASE.len()] = names(RELEASE);
static KERNEL_NAMES: [&str; KERNEL.len()] = names(KERNEL);
static MOVE_NAMES: [&str; MOVE.len()] = names(MOVE);

/// The registry table of `key`, if `key` is a config key.
pub fn entries(key: &str) -> Option<&'static [Entry]> {
    match key {
        "cow" => Some(COW),
        "msgbuf" => Some(MSGBUF),
        "pagetable" => Some(PAGETABLE),
        "release" => Some(RELEASE),
        "kernel" => Some(KERNEL),
        "move" => Some(MOVE),
        _ => None,
    }
}

/// The valid policy names of `key`, default first; `None` for an unknown key.
pub fn valid_names(key: &str) -> Option<&'static [&'static str]> {
    match key {
        "cow" => Some(&COW_NAMES),
        "msgbuf" => Some(&MSGBUF_NAMES),
        "pagetable" => Some(&PAGETABLE_NAMES),
        "release" => Some(&RELEASE_NAMES),
        "kernel" => Some(&KERNEL_NAMES),
        "move" => Some(&MOVE_NAMES),
        _ => None,
    }
}

/// Longest key or name quoted back in a [`LookupError`], in bytes (longer input is cut).
pub const QUOTED_BYTES: usize = 32;

/// Text quoted back from the caller's input.
pub type Quoted = heapless::String<QUOTED_BYTES>;

/// Why [`lookup`] found no policy. Display:
/// `unknown cow policy "foo"; valid: writer, holder, split` or
/// `unknown policy key "foo"; valid: cow, msgbuf, pagetable, release`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// The key is not one of [`KEYS`].
    UnknownKey {
        /// The key asked for (cut to [`QUOTED_BYTES`]).
        key: Quoted,
    },
    /// The name is not a policy of `key`.
    UnknownName {
        /// The (valid) key.
        key: &'static str,
        /// The name asked for (cut to [`QUOTED_BYTES`]).
        name: Quoted,
        /// The valid names of the key, default first.
        valid: &'static [&'static str],
    },
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::UnknownKey { key } => {
                write!(f, "unknown policy key \"{key}\"; valid: ")?;
                write_list(f, &KEYS)
            }
            LookupError::UnknownName { key, name, valid } => {
                write!(f, "unknown {key} policy \"{name}\"; valid: ")?;
                write_list(f, valid)
            }
        }
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, names: &[&str]) -> fmt::Result {
    for (index, name) in names.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        f.write_str(name)?;
    }
    Ok(())
}

/// Copies `text` into a [`Quoted`], cut at a character boundary if too long.
fn quote(text: &str) -> Quoted {
    let mut quoted = Quoted::new();
    for character in text.chars() {
        if quoted.push(character).is_err() {
            break;
        }
    }
    quoted
}

/// Finds the policy `name` of config key `key` (e.g. `lookup("cow", "split")`).
pub fn lookup(key: &str, name: &str) -> Result<&'static dyn Policy, LookupError> {
    let (Some(table), Some(valid)) = (entries(key), valid_names(key)) else {
        return Err(LookupError::UnknownKey { key: quote(key) });
    };
    table
        .iter()
        .find(|(entry_name, _)| *entry_name == name)
        .map(|(_, policy)| *policy)
        .ok_or_else(|| LookupError::UnknownName {
            key: KEYS
                .iter()
                .copied()
                .find(|known| *known == key)
                .unwrap_or(""),
            name: quote(name),
            valid,
        })
}

/// The default policy of every key: `cow=writer msgbuf=sender pagetable=owner release=migrate
/// kernel=self move=stay`.
pub fn defaults() -> Policies {
    Policies {
        cow: COW[0].1,
        msgbuf: MSGBUF[0].1,
        pagetable: PAGETABLE[0].1,
        release: RELEASE[0].1,
        kernel: KERNEL[0].1,
        moves: MOVE[0].1,
    }
}

/// The default policies with the ones named in `overrides` (`(key, name)` pairs) swapped in.
pub fn with_overrides(overrides: &[(&str, &str)]) -> Result<Policies, LookupError> {
    let mut policies = defaults();
    for (key, name) in overrides {
        let policy = lookup(key, name)?;
        match policy.key() {
            PolicyKey::Cow => policies.cow = policy,
            PolicyKey::Msgbuf => policies.msgbuf = policy,
            PolicyKey::PageTable => policies.pagetable = policy,
            PolicyKey::Release => policies.release = policy,
            PolicyKey::Kernel => policies.kernel = policy,
            PolicyKey::Move => policies.moves = policy,
        }
    }
    Ok(policies)
}

/// Every combination of policies (4 × 5 × 2 × 2 × 2 × 2 = 320), for tests and
/// counterfactual replay.
pub fn combinations() -> impl Iterator<Item = Policies> {
    COW.iter().flat_map(|(_, cow)| {
        MSGBUF.iter().flat_map(move |(_, msgbuf)| {
            PAGETABLE.iter().flat_map(move |(_, pagetable)| {
                RELEASE.iter().flat_map(move |(_, release)| {
                    KERNEL.iter().flat_map(move |(_, kernel)| {
                        MOVE.iter().map(move |(_, moves)| Policies {
                            cow: *cow,
                            msgbuf: *msgbuf,
                            pagetable: *pagetable,
                            release: *release,
                            kernel: *kernel,
                            moves: *moves,
                        })
                    })
                })
            })
        })
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn every_entry_answers_to_its_key_and_name() {
        for key in KEYS {
            let table = entries(key).unwrap();
            let names = valid_names(key).unwrap();
            assert_eq!(table.len(), names.len());
            for ((name, policy), listed) in table.iter().zip(names) {
                assert_eq!(policy.name(), *name);
                assert_eq!(name, listed);
                assert_eq!(policy.key().name(), key);
                // Compare what the policy says, not fat pointers: vtable addresses may differ
                // between codegen units in optimised builds.
                let found = lookup(key, name).unwrap();
                assert_eq!((found.key(), found.name()), (policy.key(), policy.name()));
            }
        }
    }

    #[test]
    fn a_fixed_decision_is_what_decide_says_for_every_event_of_its_kind() {
        use accounting::{Candidates, ChargeEvent, EventKind, Headroom, Kind, SetId, FRAME_BYTES};
        let sets = [None, Some(SetId(1)), Some(SetId(2))];
        let rooms = [0, FRAME_BYTES - 1, FRAME_BYTES, Headroom::UNLIMITED];
        for key in KEYS {
            for (_, policy) in entries(key).unwrap() {
                for what in EventKind::ALL {
                    if what.key() != policy.key() {
                        continue;
                    }
                    let Some(fixed) = policy.fixed(what) else {
                        continue;
                    };
                    for chosen in sets {
                        for room in rooms {
                            let event = ChargeEvent {
                                what,
                                kind: Kind::Anon,
                                causer: None,
                                candidates: Candidates {
                                    holder: Some(SetId(1)),
                                    writer: Some(SetId(2)),
                                    sender: Some(SetId(1)),
                                    receiver: Some(SetId(2)),
                                    chosen,
                                    ..Candidates::default()
                                },
                                sharers: 2,
                                headroom: Headroom {
                                    holder: room,
                                    writer: room,
                                    sender: room,
                                    receiver: room,
                                },
                            };
                            assert_eq!(policy.decide(&event), fixed, "{}", policy.name());
                        }
                    }
                }
            }
        }
        // Policies that look at the event say so.
        for (key, name) in [
            ("cow", "holder-else-writer"),
            ("cow", "keeper"),
            ("msgbuf", "receiver-else-sender"),
            ("msgbuf", "keeper"),
        ] {
            let policy = lookup(key, name).unwrap();
            assert!(EventKind::ALL
                .iter()
                .filter(|what| what.key() == policy.key() && **what != EventKind::Share)
                .all(|&what| policy.fixed(what).is_none()));
        }
    }

    #[test]
    fn defaults_are_first() {
        assert_eq!(
            defaults().to_string(),
            "cow=writer msgbuf=sender pagetable=owner release=migrate kernel=self move=stay"
        );
        // The design's policies are all there, defaults first (a new policy only appends).
        assert_eq!(
            valid_names("cow").unwrap()[..3],
            ["writer", "holder", "split"]
        );
        assert_eq!(
            valid_names("msgbuf").unwrap()[..4],
            ["sender", "receiver", "split", "kernel"]
        );
        assert_eq!(valid_names("pagetable").unwrap()[..2], ["owner", "causer"]);
        assert_eq!(valid_names("release").unwrap()[..2], ["migrate", "stay"]);
        assert_eq!(valid_names("kernel").unwrap()[..2], ["self", "spawner"]);
        assert_eq!(valid_names("move").unwrap()[..2], ["stay", "migrate"]);
        assert_eq!(valid_names("colour"), None);
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let failure = lookup("cow", "foo").unwrap_err();
        assert_eq!(
            failure.to_string(),
            "unknown cow policy \"foo\"; valid: writer, holder, split, holder-else-writer, keeper"
        );
        let failure = lookup("colour", "red").unwrap_err();
        assert_eq!(
            failure.to_string(),
            "unknown policy key \"colour\"; valid: cow, msgbuf, pagetable, release, kernel, move"
        );
        assert!(matches!(failure, LookupError::UnknownKey { .. }));
        let long = "x".repeat(100);
        let failure = lookup("cow", &long).unwrap_err();
        assert!(failure.to_string().contains(&"x".repeat(QUOTED_BYTES)));
    }

    #[test]
    fn overrides_swap_only_their_key() {
        let policies = with_overrides(&[("cow", "holder"), ("msgbuf", "receiver")]).unwrap();
        assert_eq!(
            policies.to_string(),
            "cow=holder msgbuf=receiver pagetable=owner release=migrate kernel=self move=stay"
        );
        assert!(with_overrides(&[("release", "never")]).is_err());
    }

    #[test]
    fn combinations_are_every_product_all_distinct() {
        let all: std::vec::Vec<_> = combinations().map(|p| p.to_string()).collect();
        // 3 × 4 × 2 × 2 × 2 = 96 with the design's policies; more as policies are added.
        let expected =
            COW.len() * MSGBUF.len() * PAGETABLE.len() * RELEASE.len() * KERNEL.len() * MOVE.len();
        assert!(expected >= 96);
        assert_eq!(all.len(), expected);
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), expected);
    }
}
