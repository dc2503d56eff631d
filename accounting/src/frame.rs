//! Per-frame accounting metadata: one 8-byte [`FrameEntry`] per physical frame.
//!
//! Layout: one `u64` (so that an entry is one word to load, compare and store), its bytes in
//! little-endian order:
//!
//! | byte | field | meaning |
//! |---|---|---|
//! | 0 | `kind` | 0 = free, 1..=5 = [`Kind`] + 1, 6 = boot (the kernel's own, never charged) |
//! | 1 | `flags` | bit 0 `LIST`: `share` is a sharer-list id; bit 1 `SPLIT`: every slot pays a share |
//! | 2..4 | `payer` | the [`SetId`] of slot 0 (the holder) when `LIST` is clear |
//! | 4..6 | `causer` | the [`DomainId`] that caused the allocation, `0xFFFF` = none |
//! | 6..8 | `share` | `LIST` clear: the single mapping domain (`0xFFFF` = none); set: a list id |
//!
//! Invariants: all-zero bytes are a free frame ([`FrameEntry::FREE`], also `Default`), so the
//! kernel can build the slice over zeroed memory; a frame with one slot is stored inline, a
//! frame with two or more slots refers to a list in the [`crate::sharers::SharerPool`].

use crate::ids::{DomainId, Kind, SetId};

/// Accounting metadata of one frame; 8 bytes (`size_of::<FrameEntry>() == 8`, tested).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct FrameEntry(u64);

/// The encoding of "no domain" in a frame entry.
pub(crate) const NO_DOMAIN: u16 = u16::MAX;
const KIND_FREE: u8 = 0;
const KIND_BOOT: u8 = 6;
const FLAG_LIST: u8 = 1;
const FLAG_SPLIT: u8 = 2;

/// What a frame is, as decoded from its entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameUse {
    /// Not in use.
    Free,
    /// The kernel's own (image, frame table, boot stacks): counted as `boot`, never charged.
    Boot,
    /// In use and charged, of this kind.
    Charged(Kind),
}

impl FrameEntry {
    /// A free frame: all bytes zero.
    pub const FREE: FrameEntry = FrameEntry(0);

    pub(crate) const BOOT: FrameEntry = FrameEntry::pack(KIND_BOOT, 0, 0, NO_DOMAIN, NO_DOMAIN);

    #[inline(always)]
    const fn pack(kind: u8, flags: u8, payer: u16, causer: u16, share: u16) -> FrameEntry {
        FrameEntry(
            kind as u64
                | (flags as u64) << 8
                | (payer as u64) << 16
                | (causer as u64) << 32
                | (share as u64) << 48,
        )
    }

    #[inline(always)]
    const fn kind_code(&self) -> u8 {
        self.0 as u8
    }

    #[inline(always)]
    const fn flags(&self) -> u8 {
        (self.0 >> 8) as u8
    }

    #[inline(always)]
    const fn payer(&self) -> u16 {
        (self.0 >> 16) as u16
    }

    #[inline(always)]
    const fn causer_raw(&self) -> u16 {
        (self.0 >> 32) as u16
    }

    #[inline(always)]
    const fn share(&self) -> u16 {
        (self.0 >> 48) as u16
    }

    /// The entry's eight bytes as one number: equal entries, equal numbers.
    #[inline(always)]
    pub(crate) fn bits(&self) -> u64 {
        self.0
    }

    /// What the frame is used for.
    #[inline]
    pub fn usage(&self) -> FrameUse {
        match self.kind_code() {
            KIND_FREE => FrameUse::Free,
            KIND_BOOT => FrameUse::Boot,
            code => match Kind::from_index(usize::from(code) - 1) {
                Some(kind) => FrameUse::Charged(kind),
                // Only this module writes `kind`; an unknown code cannot occur.
                None => FrameUse::Boot,
            },
        }
    }

    /// Whether the frame is free. A free entry is all zero (only [`FrameEntry::FREE`] has
    /// the free kind code: every other entry is packed with a kind), so the whole word is
    /// compared: one load and a branch, no byte extracted.
    #[inline]
    pub fn is_free(&self) -> bool {
        debug_assert_eq!(self.0 == 0, self.kind_code() == KIND_FREE);
        self.0 == 0
    }

    /// The frame's kind, if it is charged.
    #[inline]
    pub fn kind(&self) -> Option<Kind> {
        // Free (0) wraps past every kind, boot (6) is one past the last.
        Kind::from_index(usize::from(self.kind_code()).wrapping_sub(1))
    }

    /// The domain that caused the allocation, if any.
    #[inline]
    pub fn causer(&self) -> Option<DomainId> {
        decode_domain(self.causer_raw())
    }

    /// Whether each slot pays a share (the frame is split).
    #[inline]
    pub fn is_split(&self) -> bool {
        self.flags() & FLAG_SPLIT != 0
    }

    /// The sharer-list id, if the frame has two or more slots.
    #[inline]
    pub(crate) fn list(&self) -> Option<u16> {
        (self.flags() & FLAG_LIST != 0).then_some(self.share())
    }

    /// The inline slot (payer set and mapping domain), if the frame has exactly one slot.
    #[inline]
    pub(crate) fn inline_slot(&self) -> Option<(SetId, Option<DomainId>)> {
        (self.flags() & FLAG_LIST == 0)
            .then_some((SetId(self.payer()), decode_domain(self.share())))
    }

    /// The payer of the inline slot (meaningful only when the frame has no list).
    #[inline(always)]
    pub(crate) fn payer_raw(&self) -> u16 {
        self.payer()
    }

    /// The inline slot as one number, as [`crate::Slot`] words go (meaningful only when the
    /// frame has no list).
    #[inline(always)]
    pub(crate) fn inline_word(&self) -> u32 {
        u32::from(self.payer()) << 16 | u32::from(self.share())
    }

    /// A charged frame with a single slot.
    #[inline]
    pub(crate) fn inline(
        kind: Kind,
        split: bool,
        causer: Option<DomainId>,
        payer: SetId,
        mapper: Option<DomainId>,
    ) -> FrameEntry {
        FrameEntry::pack(
            kind as u8 + 1,
            if split { FLAG_SPLIT } else { 0 },
            payer.0,
            encode_domain(causer),
            encode_domain(mapper),
        )
    }

    /// The sharer list of a mapped frame (`anon` or `cow`) that has one and is not split:
    /// one compare of the entry's low bytes (kind and flags) for both kinds.
    #[inline(always)]
    pub(crate) fn mapped_unsplit_list(&self) -> Option<u16> {
        const LISTED: u16 = (FLAG_LIST as u16) << 8;
        const ANON: u16 = LISTED | (Kind::Anon as u16 + 1);
        const COW: u16 = LISTED | (Kind::Cow as u16 + 1);
        // The two codes differ in one bit: set it, and both read as `COW`.
        const _: () = assert!(ANON | COW == COW && (COW ^ ANON).is_power_of_two());
        (self.0 as u16 | (COW ^ ANON) == COW).then_some(self.share())
    }

    /// This entry of a frame with a (not split) sharer list, turned into the entry of the
    /// same frame mapped by `domain` alone, `set` paying: kind and causer kept, the list
    /// dropped (what `inline` would pack, from the bits at hand).
    #[inline(always)]
    pub(crate) fn listed_to_inline(self, set: SetId, domain: DomainId) -> FrameEntry {
        const KEEP: u64 = 0xff | 0xffff << 32;
        FrameEntry((self.0 & KEEP) | u64::from(set.0) << 16 | u64::from(domain.0) << 48)
    }

    /// A charged frame whose slots are sharer list `list`.
    #[inline]
    pub(crate) fn listed(
        kind: Kind,
        split: bool,
        causer: Option<DomainId>,
        list: u16,
    ) -> FrameEntry {
        FrameEntry::pack(
            kind as u8 + 1,
            FLAG_LIST | if split { FLAG_SPLIT } else { 0 },
            0,
            encode_domain(causer),
            list,
        )
    }
}

#[inline]
pub(crate) fn encode_domain(domain: Option<DomainId>) -> u16 {
    domain.map_or(NO_DOMAIN, |domain| domain.0)
}

#[inline]
pub(crate) fn decode_domain(raw: u16) -> Option<DomainId> {
    (raw != NO_DOMAIN).then_some(DomainId(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_eight_bytes_and_zero_is_free() {
        assert_eq!(core::mem::size_of::<FrameEntry>(), 8);
        assert_eq!(FrameEntry::default(), FrameEntry::FREE);
        assert!(FrameEntry::FREE.is_free());
        assert_eq!(FrameEntry::FREE.usage(), FrameUse::Free);
        assert_eq!(FrameEntry::BOOT.usage(), FrameUse::Boot);
    }

    #[test]
    fn inline_round_trips() {
        for kind in Kind::ALL {
            let entry = FrameEntry::inline(kind, true, Some(DomainId(3)), SetId(7), None);
            assert_eq!(entry.kind(), Some(kind));
            assert!(entry.is_split());
            assert_eq!(entry.causer(), Some(DomainId(3)));
            assert_eq!(entry.inline_slot(), Some((SetId(7), None)));
            assert_eq!(entry.list(), None);
        }
        let entry = FrameEntry::listed(Kind::Anon, false, None, 9);
        assert_eq!(entry.list(), Some(9));
        assert_eq!(entry.inline_slot(), None);
        assert_eq!(entry.causer(), None);
    }

    #[test]
    fn a_listed_entry_turns_inline_as_inline_packs_it() {
        for kind in Kind::ALL {
            for causer in [None, Some(DomainId(0)), Some(DomainId(63))] {
                for (set, domain) in [(SetId(0), DomainId(0)), (SetId(63), DomainId(5))] {
                    let listed = FrameEntry::listed(kind, false, causer, 300);
                    assert_eq!(
                        listed.listed_to_inline(set, domain),
                        FrameEntry::inline(kind, false, causer, set, Some(domain))
                    );
                }
            }
        }
    }

    #[test]
    fn only_a_mapped_unsplit_listed_entry_names_its_list() {
        for kind in Kind::ALL {
            for split in [false, true] {
                let listed = FrameEntry::listed(kind, split, Some(DomainId(2)), 300);
                let expected = (kind.is_mapped() && !split).then_some(300);
                assert_eq!(
                    listed.mapped_unsplit_list(),
                    expected,
                    "{kind:?} split {split}"
                );
                let inline = FrameEntry::inline(kind, split, None, SetId(1), Some(DomainId(1)));
                assert_eq!(inline.mapped_unsplit_list(), None);
            }
        }
        assert_eq!(FrameEntry::FREE.mapped_unsplit_list(), None);
        assert_eq!(FrameEntry::BOOT.mapped_unsplit_list(), None);
    }
}
