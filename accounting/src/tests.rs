//! Unit tests of the ledger's rules, one test per rule, with fixed test policies (the real
//! ones live in the `policies` crate, which depends on this one).
//!
//! Invariant: every test ends with a full [`Ledger::audit`].

extern crate std;

use crate::*;
use core::cell::RefCell;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

struct Fixed {
    key: PolicyKey,
    name: &'static str,
    decision: Decision,
}

impl Policy for Fixed {
    fn key(&self) -> PolicyKey {
        self.key
    }
    fn name(&self) -> &'static str {
        self.name
    }
    fn decide(&self, _event: &ChargeEvent) -> Decision {
        self.decision
    }
}

macro_rules! fixed {
    ($id:ident, $key:ident, $name:literal, $decision:ident) => {
        static $id: Fixed = Fixed {
            key: PolicyKey::$key,
            name: $name,
            decision: Decision::$decision,
        };
    };
}

fixed!(COW_WRITER, Cow, "writer", Writer);
fixed!(COW_HOLDER, Cow, "holder", Holder);
fixed!(COW_SPLIT, Cow, "split", Split);
fixed!(MSG_SENDER, Msgbuf, "sender", Sender);
fixed!(MSG_RECEIVER, Msgbuf, "receiver", Receiver);
fixed!(MSG_SPLIT, Msgbuf, "split", Split);
fixed!(MSG_KERNEL, Msgbuf, "kernel", Kernel);
fixed!(PT_OWNER, PageTable, "owner", Owner);
fixed!(PT_CAUSER, PageTable, "causer", Causer);
fixed!(REL_MIGRATE, Release, "migrate", Migrate);
fixed!(REL_STAY, Release, "stay", Stay);
fixed!(KERNEL_SELF, Kernel, "self", Owner);
fixed!(MOVE_STAY, Move, "stay", Stay);
fixed!(MOVE_MIGRATE, Move, "migrate", Migrate);
fixed!(BOGUS, PageTable, "bogus", Sender);
fixed!(BOGUS_MSGBUF, Msgbuf, "bogus", Owner);

fn policies(cow: &str, msgbuf: &str, pagetable: &str, release: &str) -> Policies {
    Policies {
        cow: match cow {
            "writer" => &COW_WRITER,
            "holder" => &COW_HOLDER,
            _ => &COW_SPLIT,
        },
        msgbuf: match msgbuf {
            "sender" => &MSG_SENDER,
            "receiver" => &MSG_RECEIVER,
            "split" => &MSG_SPLIT,
            _ => &MSG_KERNEL,
        },
        pagetable: match pagetable {
            "owner" => &PT_OWNER,
            _ => &PT_CAUSER,
        },
        release: match release {
            "migrate" => &REL_MIGRATE,
            _ => &REL_STAY,
        },
        kernel: &KERNEL_SELF,
        moves: &MOVE_STAY,
    }
}

fn defaults() -> Policies {
    policies("writer", "sender", "owner", "migrate")
}

const PAGE: u64 = FRAME_BYTES;

fn f(index: u32) -> FrameIndex {
    FrameIndex(index)
}

/// Two root sets `a` (domains a1, a2) and `b` (domain b1), each limited as given.
fn two_sets(ledger: &mut Ledger<'_>, limit_a: Option<u64>, limit_b: Option<u64>) -> [DomainId; 3] {
    let a = ledger.create_set("a", None, limit_a).unwrap();
    let b = ledger.create_set("b", None, limit_b).unwrap();
    [
        ledger.create_domain("a1", a).unwrap(),
        ledger.create_domain("a2", a).unwrap(),
        ledger.create_domain("b1", b).unwrap(),
    ]
}

fn current(ledger: &Ledger<'_>, set: u16, kind: Kind) -> u64 {
    ledger.set(SetId(set)).unwrap().current_of(kind)
}

fn ok(ledger: &Ledger<'_>) {
    assert_eq!(ledger.audit(), Ok(()));
    assert!(ledger.conservation().ok);
}

#[test]
fn kernel_set_is_built_in() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let ledger = Ledger::new(&mut frames, defaults());
    let kernel = ledger.set(SetId::KERNEL).unwrap();
    assert_eq!(kernel.name.as_str(), "kernel");
    assert_eq!(kernel.parent, None);
    assert_eq!(kernel.limit_bytes, None);
    assert_eq!(ledger.set_by_name("kernel"), Some(SetId::KERNEL));
    ok(&ledger);
}

#[test]
fn names_ids_and_depth_are_checked() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, defaults());
    assert_eq!(ledger.create_set("Big", None, None), Err(Error::BadName));
    assert_eq!(ledger.create_set("", None, None), Err(Error::BadName));
    assert_eq!(
        ledger.create_set("abcdefghijklmnopqrstuvwx", None, None),
        Err(Error::BadName)
    );
    assert_eq!(
        ledger.create_set("kernel", None, None),
        Err(Error::DuplicateName)
    );
    assert_eq!(
        ledger.create_set("x", Some(SetId(9)), None),
        Err(Error::UnknownSet(SetId(9)))
    );
    let mut parent = None;
    for depth in 1..=MAX_DEPTH {
        parent = Some(
            ledger
                .create_set(&std::format!("d{depth}"), parent, None)
                .unwrap(),
        );
    }
    assert_eq!(
        ledger.create_set("deeper", parent, None),
        Err(Error::TooDeep)
    );
    // The decode-time check answers as create_set would, and changes nothing.
    let sets = ledger.sets().len();
    assert_eq!(ledger.check_new_set("deeper", parent), Err(Error::TooDeep));
    assert_eq!(ledger.check_new_set("d1", None), Err(Error::DuplicateName));
    assert_eq!(ledger.check_new_set("Big", None), Err(Error::BadName));
    assert_eq!(
        ledger.check_new_set("x", Some(SetId(99))),
        Err(Error::UnknownSet(SetId(99)))
    );
    assert_eq!(ledger.check_new_set("fresh", Some(SetId(1))), Ok(2));
    assert_eq!(ledger.sets().len(), sets);
    assert_eq!(
        ledger.create_domain("x", SetId(99)),
        Err(Error::UnknownSet(SetId(99)))
    );
    let domain = ledger.create_domain("x", SetId(1)).unwrap();
    assert_eq!(
        ledger.create_domain("x", SetId(1)),
        Err(Error::DuplicateName)
    );
    assert_eq!(
        ledger.new_anon(f(0), DomainId(7)),
        Err(Error::UnknownDomain(DomainId(7)))
    );
    assert_eq!(
        ledger.new_anon(f(8), domain),
        Err(Error::FrameOutOfRange(f(8)))
    );
    assert_eq!(
        ledger.new_kernel(f(0), SetId(77), None),
        Err(Error::UnknownSet(SetId(77)))
    );
    assert_eq!(ledger.unmap(f(3), domain), Err(Error::FrameFree(f(3))));
    assert_eq!(ledger.free(f(3)), Err(Error::FrameFree(f(3))));
    assert_eq!(ledger.free(f(300)), Err(Error::FrameOutOfRange(f(300))));
    assert_eq!(
        ledger.set_domain_state(DomainId(50), DomainState::Exited),
        Err(Error::UnknownDomain(DomainId(50)))
    );
    assert_eq!(ledger.mappers(f(100)), Err(Error::FrameOutOfRange(f(100))));
    ok(&ledger);
}

#[test]
fn set_and_domain_tables_are_bounded() {
    let mut frames = vec![FrameEntry::FREE; 1];
    let mut ledger = Ledger::new(&mut frames, defaults());
    for index in 1..MAX_SETS {
        ledger
            .create_set(&std::format!("s{index}"), None, None)
            .unwrap();
    }
    assert_eq!(
        ledger.create_set("one-more", None, None),
        Err(Error::TooManySets)
    );
    assert_eq!(
        ledger.check_new_set("one-more", None),
        Err(Error::TooManySets)
    );
    for index in 0..MAX_DOMAINS {
        ledger
            .create_domain(&std::format!("d{index}"), SetId(1))
            .unwrap();
    }
    assert_eq!(
        ledger.create_domain("one-more", SetId(1)),
        Err(Error::TooManyDomains)
    );
}

#[test]
fn new_anon_is_paid_by_the_mappers_set() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, defaults());
    let [a1, ..] = two_sets(&mut ledger, None, None);
    ledger.new_anon(f(1), a1).unwrap();
    assert_eq!(current(&ledger, 1, Kind::Anon), PAGE);
    assert_eq!(ledger.mappers(f(1)), Ok(1));
    assert_eq!(ledger.maps(f(1), a1), Ok(true));
    assert_eq!(ledger.new_anon(f(1), a1), Err(Error::FrameInUse(f(1))));
    let set = ledger.set(SetId(1)).unwrap();
    assert_eq!(set.peak()[Kind::Anon.index()], PAGE);
    assert_eq!(set.charged_total_bytes(), PAGE);
    // Its own domain caused it: a by-causer entry, nothing paid for others.
    assert_eq!(set.caused_by(a1.index()), PAGE);
    assert_eq!(ledger.unmap(f(1), a1), Ok(Unmapped::Freed));
    let set = ledger.set(SetId(1)).unwrap();
    assert_eq!(set.current_bytes(), 0);
    assert_eq!(set.peak()[Kind::Anon.index()], PAGE);
    assert_eq!(set.uncharged_total_bytes, PAGE);
    assert!(ledger.entry(f(1)).unwrap().is_free());
    ok(&ledger);
}

#[test]
fn boot_frames_are_counted_apart_and_never_charged() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, defaults());
    let [a1, ..] = two_sets(&mut ledger, None, None);
    ledger.mark_boot_range(f(0), 3).unwrap();
    assert_eq!(ledger.boot_frames(), 3);
    assert_eq!(ledger.frames_in_use(), 0);
    assert_eq!(ledger.new_anon(f(2), a1), Err(Error::BootFrame(f(2))));
    assert_eq!(ledger.free(f(2)), Err(Error::BootFrame(f(2))));
    assert_eq!(ledger.unmap(f(2), a1), Err(Error::BootFrame(f(2))));
    // All or none.
    ledger.new_anon(f(5), a1).unwrap();
    assert_eq!(
        ledger.mark_boot_range(f(4), 2),
        Err(Error::FrameInUse(f(5)))
    );
    assert!(ledger.entry(f(4)).unwrap().is_free());
    assert!(ledger.mark_boot_range(f(6), 5).is_err());
    assert_eq!(ledger.conservation().in_use_bytes, PAGE);
    ok(&ledger);
}

#[test]
fn limits_deny_atomically_and_count_one_denial_on_the_payer() {
    let mut frames = vec![FrameEntry::FREE; 16];
    let mut ledger = Ledger::new(&mut frames, defaults());
    let root = ledger.create_set("root", None, Some(3 * PAGE)).unwrap();
    let child = ledger
        .create_set("child", Some(root), Some(10 * PAGE))
        .unwrap();
    let d = ledger.create_domain("d", child).unwrap();
    for index in 0..3 {
        ledger.new_anon(f(index), d).unwrap();
    }
    let before: Vec<_> = ledger.frames().to_vec();
    let sets_before: Vec<_> = ledger.sets().iter().map(|set| set.current).collect();
    // A fault needing two page tables and a page: denied as a whole by the root's limit.
    let mut plan = Plan::new();
    plan.push(Op::PageTable {
        frame: f(5),
        owner: d,
        causer: d,
    })
    .unwrap()
    .push(Op::Anon {
        frame: f(6),
        domain: d,
    })
    .unwrap();
    let Err(Error::OverLimit(denial)) = ledger.apply(&plan) else {
        panic!("expected a denial");
    };
    assert_eq!(denial.payer, child);
    assert_eq!(denial.limit_set, root);
    assert!(!denial.kind_limit);
    assert_eq!(denial.causer, Some(d));
    assert_eq!(ledger.frames(), &before[..]);
    let sets_after: Vec<_> = ledger.sets().iter().map(|set| set.current).collect();
    assert_eq!(sets_after, sets_before);
    let child_set = ledger.set(child).unwrap();
    let denied: u64 = child_set.denied.iter().sum();
    assert_eq!(denied, 1);
    assert_eq!(ledger.set(root).unwrap().denied, [0; Kind::COUNT]);
    // The limit that failed is the ancestor's: counted there, and remembered on the causer.
    assert_eq!(ledger.set(root).unwrap().limit_hits[denial.kind.index()], 1);
    assert_eq!(child_set.limit_hits, [0; Kind::COUNT]);
    assert_eq!(ledger.domain(d).unwrap().last_denial, Some(denial));
    // Raise the limit: now it fits.
    ledger.set_limit(root, Some(5 * PAGE)).unwrap();
    ledger.apply(&plan).unwrap();
    assert_eq!(ledger.set(root).unwrap().subtree_bytes(), 5 * PAGE);
    assert_eq!(ledger.set(root).unwrap().current_bytes(), 0);
    ok(&ledger);
}

#[test]
fn a_set_over_its_limit_never_grows_but_can_shrink() {
    let mut frames = vec![FrameEntry::FREE; 16];
    let mut ledger = Ledger::new(&mut frames, defaults());
    let [a1, ..] = two_sets(&mut ledger, None, None);
    for index in 0..4 {
        ledger.new_anon(f(index), a1).unwrap();
    }
    ledger.set_limit(SetId(1), Some(PAGE)).unwrap();
    assert!(matches!(
        ledger.new_anon(f(9), a1),
        Err(Error::OverLimit(_))
    ));
    assert_eq!(ledger.unmap(f(0), a1), Ok(Unmapped::Freed));
    assert!(matches!(
        ledger.new_anon(f(9), a1),
        Err(Error::OverLimit(_))
    ));
    assert_eq!(ledger.set(SetId(1)).unwrap().denied[Kind::Anon.index()], 2);
    ok(&ledger);
}

#[test]
fn per_kind_sub_limits_apply_to_payer_and_ancestors() {
    let mut frames = vec![FrameEntry::FREE; 32];
    let mut ledger = Ledger::new(&mut frames, defaults());
    let root = ledger.create_set("root", None, None).unwrap();
    let child = ledger.create_set("child", Some(root), None).unwrap();
    let sender = ledger.create_domain("sender", child).unwrap();
    let receiver = ledger.create_domain("receiver", root).unwrap();
    ledger
        .set_kind_limit(root, Kind::Msgbuf, Some(48 * 1024))
        .unwrap();
    for index in 0..12 {
        ledger.new_msgbuf(f(index), sender, receiver).unwrap();
    }
    let Err(Error::OverLimit(denial)) = ledger.new_msgbuf(f(12), sender, receiver) else {
        panic!("expected a denial");
    };
    assert!(denial.kind_limit);
    assert_eq!(denial.kind, Kind::Msgbuf);
    assert_eq!(denial.payer, child);
    assert_eq!(denial.limit_set, root);
    // Other kinds are not limited by it.
    ledger.new_anon(f(20), sender).unwrap();
    ok(&ledger);
}

#[test]
fn page_tables_follow_the_pagetable_policy() {
    for (policy, payer) in [("owner", 1), ("causer", 2)] {
        let mut frames = vec![FrameEntry::FREE; 8];
        let mut ledger = Ledger::new(&mut frames, policies("writer", "sender", policy, "migrate"));
        let [a1, _, b1] = two_sets(&mut ledger, None, None);
        ledger.new_page_table(f(1), a1, b1).unwrap();
        assert_eq!(current(&ledger, payer, Kind::PageTables), PAGE);
        let paid_for = ledger.set(SetId(1)).unwrap().caused_by(b1.index());
        assert_eq!(paid_for, if payer == 1 { PAGE } else { 0 });
        assert_eq!(ledger.mappers(f(1)), Ok(0));
        assert_eq!(ledger.share(f(1), a1), Err(Error::WrongKind(f(1))));
        assert_eq!(ledger.unmap(f(1), a1), Err(Error::WrongKind(f(1))));
        ledger.free(f(1)).unwrap();
        assert_eq!(ledger.set(SetId(1)).unwrap().caused_by(b1.index()), 0);
        ok(&ledger);
    }
}

#[test]
fn kernel_objects_are_paid_by_the_named_set() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, defaults());
    let [a1, ..] = two_sets(&mut ledger, None, Some(PAGE));
    ledger.new_kernel(f(1), SetId(2), Some(a1)).unwrap();
    assert_eq!(current(&ledger, 2, Kind::Kernel), PAGE);
    assert_eq!(ledger.set(SetId(2)).unwrap().caused_by(a1.index()), PAGE);
    assert!(matches!(
        ledger.new_kernel(f(2), SetId(2), None),
        Err(Error::OverLimit(_))
    ));
    ledger.new_kernel(f(2), SetId::KERNEL, None).unwrap();
    ledger.free(f(1)).unwrap();
    ledger.free(f(2)).unwrap();
    assert_eq!(ledger.conservation().charged_bytes, 0);
    ok(&ledger);
}

#[test]
fn message_buffers_follow_the_msgbuf_policy() {
    for (policy, a, b, kernel) in [
        ("sender", PAGE, 0, 0),
        ("receiver", 0, PAGE, 0),
        ("split", 2048, 2048, 0),
        ("kernel", 0, 0, PAGE),
    ] {
        let mut frames = vec![FrameEntry::FREE; 8];
        let mut ledger = Ledger::new(&mut frames, policies("writer", policy, "owner", "migrate"));
        let [a1, _, b1] = two_sets(&mut ledger, None, None);
        ledger.new_msgbuf(f(3), a1, b1).unwrap();
        assert_eq!(current(&ledger, 1, Kind::Msgbuf), a, "{policy}");
        assert_eq!(current(&ledger, 2, Kind::Msgbuf), b, "{policy}");
        assert_eq!(current(&ledger, 0, Kind::Msgbuf), kernel, "{policy}");
        // The receiver's and the kernel's bytes were caused by the sender.
        assert_eq!(ledger.set(SetId(2)).unwrap().caused_by(a1.index()), b);
        assert_eq!(
            ledger.set(SetId::KERNEL).unwrap().caused_by(a1.index()),
            kernel
        );
        ok(&ledger);
        ledger.free(f(3)).unwrap();
        assert_eq!(ledger.conservation().charged_bytes, 0);
        assert_eq!(ledger.sharer_lists_in_use(), 0);
        ok(&ledger);
    }
}

#[test]
fn sharing_under_writer_or_holder_charges_nothing_new() {
    for cow in ["writer", "holder"] {
        let mut frames = vec![FrameEntry::FREE; 8];
        let mut ledger = Ledger::new(&mut frames, policies(cow, "sender", "owner", "migrate"));
        let [a1, _, b1] = two_sets(&mut ledger, None, Some(0));
        ledger.new_anon(f(1), a1).unwrap();
        // b's limit is 0, yet sharing fits: b pays nothing.
        ledger.share(f(1), b1).unwrap();
        assert_eq!(ledger.mappers(f(1)), Ok(2));
        assert_eq!(current(&ledger, 1, Kind::Anon), PAGE);
        assert_eq!(current(&ledger, 2, Kind::Anon), 0);
        assert_eq!(ledger.share(f(1), b1), Err(Error::AlreadyMapped(f(1), b1)));
        ok(&ledger);
    }
}

#[test]
fn split_charges_every_sharer_with_the_remainder_to_the_holder() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, policies("split", "sender", "owner", "migrate"));
    let a = ledger.create_set("a", None, None).unwrap();
    let b = ledger.create_set("b", None, None).unwrap();
    let c = ledger.create_set("c", None, None).unwrap();
    let a1 = ledger.create_domain("a1", a).unwrap();
    let b1 = ledger.create_domain("b1", b).unwrap();
    let c1 = ledger.create_domain("c1", c).unwrap();
    ledger.new_anon(f(1), a1).unwrap();
    ledger.share(f(1), b1).unwrap();
    assert_eq!(current(&ledger, 1, Kind::Anon), 2048);
    assert_eq!(current(&ledger, 2, Kind::Anon), 2048);
    ledger.share(f(1), c1).unwrap();
    assert_eq!(current(&ledger, 1, Kind::Anon), 1366);
    assert_eq!(current(&ledger, 2, Kind::Anon), 1365);
    assert_eq!(current(&ledger, 3, Kind::Anon), 1365);
    // b and c pay for a frame a1 caused.
    assert_eq!(ledger.set(b).unwrap().caused_by(a1.index()), 1365);
    // a's share of it is its own domain's doing: in the by-causer table, not paid for others.
    assert_eq!(ledger.set(a).unwrap().caused_by(a1.index()), 1366);
    // The holder's set saw its charge shrink, not an extra uncharge/charge churn.
    assert_eq!(ledger.set(a).unwrap().uncharged_total_bytes, PAGE - 1366);
    ok(&ledger);
    // A departure recomputes (migrate): b leaves, a and c pay 2048 each.
    assert_eq!(ledger.unmap(f(1), b1), Ok(Unmapped::StillMapped));
    assert_eq!(current(&ledger, 1, Kind::Anon), 2048);
    assert_eq!(current(&ledger, 2, Kind::Anon), 0);
    assert_eq!(current(&ledger, 3, Kind::Anon), 2048);
    ok(&ledger);
    // The holder leaves: c pays it all.
    assert_eq!(ledger.unmap(f(1), a1), Ok(Unmapped::StillMapped));
    assert_eq!(current(&ledger, 3, Kind::Anon), PAGE);
    assert_eq!(ledger.sharer_lists_in_use(), 0);
    ok(&ledger);
}

#[test]
fn split_sharing_can_be_denied() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, policies("split", "sender", "owner", "migrate"));
    let [a1, _, b1] = two_sets(&mut ledger, None, Some(1000));
    ledger.new_anon(f(1), a1).unwrap();
    let before = ledger.frames().to_vec();
    let Err(Error::OverLimit(denial)) = ledger.share(f(1), b1) else {
        panic!("expected a denial");
    };
    assert_eq!(denial.payer, SetId(2));
    assert_eq!(denial.kind, Kind::Anon);
    assert_eq!(ledger.frames(), &before[..]);
    assert_eq!(ledger.mappers(f(1)), Ok(1));
    ok(&ledger);
}

#[test]
fn cow_copies_follow_the_cow_policy() {
    // (policy, set paying the copy)
    for (cow, copy_payer) in [("writer", 2), ("holder", 1), ("split", 2)] {
        let mut frames = vec![FrameEntry::FREE; 8];
        let mut ledger = Ledger::new(&mut frames, policies(cow, "sender", "owner", "migrate"));
        let [a1, _, b1] = two_sets(&mut ledger, None, None);
        ledger.new_anon(f(1), a1).unwrap();
        ledger.share(f(1), b1).unwrap();
        ledger.cow_copy(f(1), f(2), b1).unwrap();
        assert_eq!(current(&ledger, copy_payer, Kind::Cow), PAGE, "{cow}");
        // The writer left the original; a pays it whole again.
        assert_eq!(ledger.mappers(f(1)), Ok(1));
        assert_eq!(ledger.maps(f(1), b1), Ok(false));
        assert_eq!(current(&ledger, 1, Kind::Anon), PAGE, "{cow}");
        assert_eq!(current(&ledger, 2, Kind::Anon), 0, "{cow}");
        assert_eq!(ledger.maps(f(2), b1), Ok(true));
        // The copy was caused by the writer.
        let holder_paid = ledger.set(SetId(1)).unwrap().caused_by(b1.index());
        assert_eq!(holder_paid, if copy_payer == 1 { PAGE } else { 0 });
        // A write fault on a frame no longer shared: no copy.
        assert_eq!(ledger.cow_copy(f(1), f(3), a1), Err(Error::NotShared(f(1))));
        assert_eq!(
            ledger.cow_copy(f(2), f(3), a1),
            Err(Error::NotMapped(f(2), a1))
        );
        ok(&ledger);
    }
}

#[test]
fn cow_copy_can_be_denied_and_changes_nothing() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(
        &mut frames,
        policies("writer", "sender", "owner", "migrate"),
    );
    let [a1, _, b1] = two_sets(&mut ledger, None, Some(0));
    ledger.new_anon(f(1), a1).unwrap();
    ledger.share(f(1), b1).unwrap();
    let before = ledger.frames().to_vec();
    let Err(Error::OverLimit(denial)) = ledger.cow_copy(f(1), f(2), b1) else {
        panic!("expected a denial");
    };
    assert_eq!(denial.kind, Kind::Cow);
    assert_eq!(ledger.set(SetId(2)).unwrap().denied[Kind::Cow.index()], 1);
    assert_eq!(ledger.frames(), &before[..]);
    assert_eq!(ledger.mappers(f(1)), Ok(2));
    assert_eq!(ledger.cow_copy(f(1), f(1), b1), Err(Error::BadPlan));
    ok(&ledger);
}

#[test]
fn release_migrate_moves_the_charge_to_the_first_survivor() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(
        &mut frames,
        policies("writer", "sender", "owner", "migrate"),
    );
    let [a1, _, b1] = two_sets(&mut ledger, None, None);
    ledger.new_anon(f(1), a1).unwrap();
    ledger.share(f(1), b1).unwrap();
    assert_eq!(ledger.unmap(f(1), a1), Ok(Unmapped::StillMapped));
    assert_eq!(current(&ledger, 1, Kind::Anon), 0);
    assert_eq!(current(&ledger, 2, Kind::Anon), PAGE);
    // b now pays for a frame a1 caused.
    assert_eq!(ledger.set(SetId(2)).unwrap().caused_by(a1.index()), PAGE);
    assert_eq!(ledger.unmap(f(1), b1), Ok(Unmapped::Freed));
    assert_eq!(ledger.conservation().charged_bytes, 0);
    ok(&ledger);
}

#[test]
fn release_stay_keeps_the_charge_until_the_frame_is_freed() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, policies("writer", "sender", "owner", "stay"));
    let [a1, _, b1] = two_sets(&mut ledger, None, None);
    ledger.new_anon(f(1), a1).unwrap();
    ledger.share(f(1), b1).unwrap();
    assert_eq!(ledger.unmap(f(1), a1), Ok(Unmapped::StillMapped));
    assert_eq!(current(&ledger, 1, Kind::Anon), PAGE);
    assert_eq!(current(&ledger, 2, Kind::Anon), 0);
    assert_eq!(ledger.mappers(f(1)), Ok(1));
    // With one mapper left a write fault is no copy; holder = the staying set.
    assert_eq!(ledger.cow_copy(f(1), f(2), b1), Err(Error::NotShared(f(1))));
    assert_eq!(ledger.unmap(f(1), b1), Ok(Unmapped::Freed));
    assert_eq!(current(&ledger, 1, Kind::Anon), 0);
    assert_eq!(ledger.sharer_lists_in_use(), 0);
    ok(&ledger);
}

#[test]
fn split_stay_keeps_the_departed_share() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, policies("split", "sender", "owner", "stay"));
    let [a1, _, b1] = two_sets(&mut ledger, None, None);
    ledger.new_anon(f(1), a1).unwrap();
    ledger.share(f(1), b1).unwrap();
    ledger.unmap(f(1), a1).unwrap();
    assert_eq!(current(&ledger, 1, Kind::Anon), 2048);
    assert_eq!(current(&ledger, 2, Kind::Anon), 2048);
    ok(&ledger);
}

#[test]
fn a_migration_that_does_not_fit_stays() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(
        &mut frames,
        policies("writer", "sender", "owner", "migrate"),
    );
    let [a1, _, b1] = two_sets(&mut ledger, None, Some(0));
    ledger.new_anon(f(1), a1).unwrap();
    ledger.share(f(1), b1).unwrap();
    // b cannot take the page: the departure is not denied, the charge stays with a.
    assert_eq!(ledger.unmap(f(1), a1), Ok(Unmapped::StillMapped));
    assert_eq!(current(&ledger, 1, Kind::Anon), PAGE);
    assert_eq!(current(&ledger, 2, Kind::Anon), 0);
    assert_eq!(ledger.set(SetId(2)).unwrap().denied, [0; Kind::COUNT]);
    ok(&ledger);
}

#[test]
fn migration_between_siblings_does_not_count_twice_at_the_parent() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(
        &mut frames,
        policies("writer", "sender", "owner", "migrate"),
    );
    let parent = ledger.create_set("parent", None, Some(PAGE)).unwrap();
    let left = ledger.create_set("left", Some(parent), None).unwrap();
    let right = ledger.create_set("right", Some(parent), None).unwrap();
    let l = ledger.create_domain("l", left).unwrap();
    let r = ledger.create_domain("r", right).unwrap();
    ledger.new_anon(f(1), l).unwrap();
    ledger.share(f(1), r).unwrap();
    // The parent is full, but the move nets out there: it migrates.
    ledger.unmap(f(1), l).unwrap();
    assert_eq!(ledger.set(right).unwrap().current_bytes(), PAGE);
    assert_eq!(ledger.set(parent).unwrap().subtree_bytes(), PAGE);
    ok(&ledger);
}

#[test]
fn a_payer_domain_leaving_while_its_set_still_maps_moves_nothing() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(
        &mut frames,
        policies("writer", "sender", "owner", "migrate"),
    );
    let [a1, a2, b1] = two_sets(&mut ledger, None, None);
    ledger.new_anon(f(1), a1).unwrap();
    ledger.share(f(1), b1).unwrap();
    ledger.share(f(1), a2).unwrap();
    ledger.unmap(f(1), a1).unwrap();
    assert_eq!(current(&ledger, 1, Kind::Anon), PAGE);
    assert_eq!(current(&ledger, 2, Kind::Anon), 0);
    assert_eq!(ledger.frame_state(f(1)).unwrap().slots[0].domain, Some(a2));
    ok(&ledger);
}

#[test]
fn plans_are_atomic_and_name_each_frame_once() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, defaults());
    let [a1, ..] = two_sets(&mut ledger, None, None);
    let mut plan = Plan::new();
    plan.push(Op::Anon {
        frame: f(1),
        domain: a1,
    })
    .unwrap()
    .push(Op::Anon {
        frame: f(1),
        domain: a1,
    })
    .unwrap();
    assert_eq!(ledger.apply(&plan), Err(Error::BadPlan));
    // A bad second operation fails the whole plan.
    plan.clear();
    plan.push(Op::Anon {
        frame: f(1),
        domain: a1,
    })
    .unwrap()
    .push(Op::Anon {
        frame: f(99),
        domain: a1,
    })
    .unwrap();
    assert_eq!(ledger.apply(&plan), Err(Error::FrameOutOfRange(f(99))));
    assert_eq!(ledger.frames_in_use(), 0);
    // A dropped reservation changes nothing.
    plan.clear();
    plan.push(Op::Anon {
        frame: f(1),
        domain: a1,
    })
    .unwrap();
    let reservation = ledger.reserve(&plan).unwrap();
    drop(reservation);
    assert_eq!(ledger.frames_in_use(), 0);
    let mut full = Plan::new();
    for index in 0..PLAN_OPS as u32 {
        full.push(Op::Anon {
            frame: f(index),
            domain: a1,
        })
        .unwrap();
    }
    assert!(full
        .push(Op::Anon {
            frame: f(0),
            domain: a1
        })
        .is_err());
    ok(&ledger);
}

#[test]
fn a_bad_policy_decision_is_an_error() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut bad = defaults();
    bad.pagetable = &BOGUS;
    bad.msgbuf = &BOGUS_MSGBUF;
    bad.cow = &BOGUS;
    let mut ledger = Ledger::new(&mut frames, bad);
    let [a1, _, b1] = two_sets(&mut ledger, None, None);
    assert_eq!(ledger.new_page_table(f(1), a1, a1), Err(Error::BadDecision));
    ledger.new_anon(f(1), a1).unwrap();
    assert_eq!(ledger.share(f(1), b1), Err(Error::BadDecision));
    assert_eq!(ledger.new_msgbuf(f(2), b1, a1), Err(Error::BadDecision));
    ok(&ledger);
}

#[test]
fn share_many_is_hash_consed_and_atomic() {
    let mut frames = vec![FrameEntry::FREE; 300];
    let mut ledger = Ledger::new(&mut frames, policies("split", "sender", "owner", "migrate"));
    let [a1, _, b1] = two_sets(&mut ledger, None, Some(100 * 2048));
    let region: Vec<FrameIndex> = (0..200).map(f).collect();
    for frame in &region {
        ledger.new_anon(*frame, a1).unwrap();
    }
    // 200 half pages do not fit under 100 × 2048: nothing is shared.
    assert!(matches!(
        ledger.share_many(&region, b1),
        Err(Error::OverLimit(_))
    ));
    assert_eq!(ledger.sharer_lists_in_use(), 0);
    assert_eq!(current(&ledger, 2, Kind::Anon), 0);
    ledger.share_many(&region[..100], b1).unwrap();
    assert_eq!(ledger.sharer_lists_in_use(), 1);
    assert_eq!(current(&ledger, 2, Kind::Anon), 100 * 2048);
    ok(&ledger);
    for frame in &region[..100] {
        ledger.unmap(*frame, b1).unwrap();
    }
    assert_eq!(ledger.sharer_lists_in_use(), 0);
    ok(&ledger);
}

/// The books and every frame's parties, for comparing two ledgers (sharer-list ids aside).
fn books(ledger: &Ledger<'_>) -> (Vec<ChargeSet>, Vec<Result<FrameState, Error>>, usize) {
    let states = (0..ledger.frame_count() as u32)
        .map(|index| ledger.frame_state(f(index)))
        .collect();
    (ledger.sets().to_vec(), states, ledger.sharer_lists_in_use())
}

#[test]
fn share_many_in_runs_matches_one_share_at_a_time() {
    // A region whose frames come in runs of equal entries and runs of different ones: pages
    // faulted by a1, by a2 (another causer), copies (kind cow), frames shared with a2 already.
    for cow in ["writer", "split"] {
        let mut results = Vec::new();
        for one_at_a_time in [false, true] {
            let mut frames = vec![FrameEntry::FREE; 64];
            let mut ledger = Ledger::new(&mut frames, policies(cow, "sender", "owner", "stay"));
            let [a1, a2, b1] = two_sets(&mut ledger, None, None);
            let c = ledger.create_set("c", None, None).unwrap();
            let c1 = ledger.create_domain("c1", c).unwrap();
            for index in 0..8 {
                ledger.new_anon(f(index), a1).unwrap();
            }
            for index in 8..12 {
                ledger.new_anon(f(index), a2).unwrap();
            }
            for index in 12..16 {
                ledger.new_anon(f(index), a1).unwrap();
                ledger.share(f(index), c1).unwrap();
            }
            // Copies: c1 writes 12..14 and gets private cow frames 40..42.
            for index in 12..14 {
                ledger.cow_copy(f(index), f(28 + index), c1).unwrap();
            }
            for index in 16..20 {
                ledger.new_anon(f(index), a1).unwrap();
            }
            let region: Vec<FrameIndex> = [0, 1, 2, 3, 8, 9, 4, 5, 12, 13, 14, 15, 40, 41]
                .into_iter()
                .chain(16..20)
                .map(f)
                .collect();
            if one_at_a_time {
                for frame in &region {
                    ledger.share(*frame, b1).unwrap();
                }
            } else {
                ledger.share_many(&region, b1).unwrap();
            }
            ok(&ledger);
            assert!(region
                .iter()
                .all(|frame| ledger.maps(*frame, b1) == Ok(true)));
            results.push(books(&ledger));
            // Everyone leaves: the books go back to zero.
            for domain in [a1, a2, b1, c1] {
                let mapped: Vec<FrameIndex> = ledger.frames_mapped_by(domain).collect();
                for frame in mapped {
                    ledger.unmap(frame, domain).unwrap();
                }
            }
            ok(&ledger);
            assert_eq!(ledger.frames_in_use(), 0);
            assert_eq!(ledger.sharer_lists_in_use(), 0);
        }
        assert_eq!(results[0], results[1], "cow = {cow}");
    }
}

#[test]
fn share_many_naming_a_frame_twice_shares_it_once() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, policies("split", "sender", "owner", "migrate"));
    let [a1, a2, b1] = two_sets(&mut ledger, None, None);
    ledger.new_anon(f(0), b1).unwrap();
    ledger.share(f(0), a1).unwrap();
    // The frame's new list can take the id its old one frees: the second mention must still
    // be seen as shared already.
    ledger.share_many(&[f(0), f(0)], a2).unwrap();
    assert_eq!(ledger.mappers(f(0)), Ok(3));
    assert_eq!(current(&ledger, 1, Kind::Anon), 1365 + 1365);
    assert_eq!(current(&ledger, 2, Kind::Anon), 1366);
    ok(&ledger);
}

#[test]
fn a_freed_sharer_list_is_not_remembered() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, policies("writer", "split", "owner", "migrate"));
    let [a1, _, b1] = two_sets(&mut ledger, None, None);
    for index in 0..2 {
        ledger.new_anon(f(index), a1).unwrap();
    }
    // [a1, b1] is made (and remembered as "a1's page shared with b1"), then freed; a split
    // message buffer's list takes its id.
    ledger.share(f(0), b1).unwrap();
    ledger.unmap(f(0), b1).unwrap();
    ledger.new_msgbuf(f(2), a1, b1).unwrap();
    // Sharing another a1 page with b1 must make [a1, b1] again.
    ledger.share(f(1), b1).unwrap();
    let slots = ledger.frame_state(f(1)).unwrap().slots;
    assert_eq!(slots[0].domain, Some(a1));
    assert_eq!(slots[1].domain, Some(b1));
    assert_eq!(ledger.mappers(f(2)), Ok(0));
    ok(&ledger);
}

#[test]
fn the_sharer_pool_keeps_a_reserve_for_departures() {
    // Every frame gets a distinct sharer list: [a-slot, b-slot, one of many domains].
    let mut frames = vec![FrameEntry::FREE; SHARER_LISTS + 8];
    let mut ledger = Ledger::new(&mut frames, defaults());
    let a = ledger.create_set("a", None, None).unwrap();
    let a1 = ledger.create_domain("a1", a).unwrap();
    let mut sharers = Vec::new();
    for index in 0..(MAX_DOMAINS - 1) {
        sharers.push(ledger.create_domain(&std::format!("s{index}"), a).unwrap());
    }
    let mut shared = 0;
    let mut failure = None;
    'outer: for first in 0..sharers.len() {
        for second in (first + 1)..sharers.len() {
            let frame = f(shared);
            ledger.new_anon(frame, a1).unwrap();
            ledger.share(frame, sharers[first]).unwrap();
            if let Err(error) = ledger.share(frame, sharers[second]) {
                failure = Some(error);
                break 'outer;
            }
            shared += 1;
        }
    }
    assert_eq!(failure, Some(Error::PoolFull));
    assert!(ledger.sharer_lists_in_use() <= SHARER_LISTS - POOL_DEPARTURE_RESERVE + 64);
    ok(&ledger);
}

#[test]
fn too_many_sharers_is_an_error() {
    let mut frames = vec![FrameEntry::FREE; 4];
    let mut ledger = Ledger::new(&mut frames, defaults());
    let a = ledger.create_set("a", None, None).unwrap();
    let mut domains = Vec::new();
    for index in 0..=MAX_SHARERS {
        domains.push(ledger.create_domain(&std::format!("d{index}"), a).unwrap());
    }
    ledger.new_anon(f(0), domains[0]).unwrap();
    for domain in &domains[1..MAX_SHARERS] {
        ledger.share(f(0), *domain).unwrap();
    }
    assert_eq!(
        ledger.share(f(0), domains[MAX_SHARERS]),
        Err(Error::TooManySharers)
    );
    ok(&ledger);
}

#[test]
fn the_empty_ledger_is_const_and_resets() {
    const EMPTY: Ledger<'static> = Ledger::empty();
    let mut ledger = EMPTY;
    assert_eq!(ledger.frame_count(), 0);
    assert_eq!(
        ledger.new_anon(f(0), DomainId(0)),
        Err(Error::FrameOutOfRange(f(0)))
    );
    let frames: &'static mut [FrameEntry] = vec![FrameEntry::BOOT; 4].leak();
    ledger.reset(frames, defaults());
    assert_eq!(ledger.frame_count(), 4);
    assert_eq!(ledger.boot_frames(), 0);
    assert!(ledger.entry(f(0)).unwrap().is_free());
    ok(&ledger);
}

std::thread_local! {
    static TRACE: RefCell<String> = const { RefCell::new(String::new()) };
}

fn record(record: &TraceRecord) {
    TRACE.with(|trace| {
        let mut trace = trace.borrow_mut();
        trace.push_str(&record.to_string());
        trace.push('\n');
    });
}

fn take_trace() -> String {
    TRACE.with(|trace| core::mem::take(&mut *trace.borrow_mut()))
}

fn snapshot(ledger: &Ledger<'_>, label: &str) -> String {
    let mut json = String::new();
    let header = SnapshotHeader {
        label,
        instructions: 42,
        total_frames: ledger.frame_count() as u64,
        free_frames: ledger.frame_count() as u64 - ledger.frames_in_use() - ledger.boot_frames(),
    };
    ledger.write_snapshot(&mut json, &header).unwrap();
    json
}

/// A run touching every operation; returns the snapshots it wrote.
fn tour(ledger: &mut Ledger<'_>) -> Vec<String> {
    let mut snapshots = Vec::new();
    ledger.mark_boot_range(f(0), 2).unwrap();
    let root = ledger.create_set("root", None, Some(40 * PAGE)).unwrap();
    let parent = ledger.create_set("parent", Some(root), None).unwrap();
    let child = ledger
        .create_set("child", Some(root), Some(6 * PAGE))
        .unwrap();
    ledger
        .set_kind_limit(child, Kind::Msgbuf, Some(PAGE))
        .unwrap();
    let p = ledger.create_domain("parent", parent).unwrap();
    let c = ledger.create_domain("child", child).unwrap();
    snapshots.push(snapshot(ledger, "start"));
    ledger.new_kernel(f(2), parent, Some(p)).unwrap();
    let mut fault = Plan::new();
    fault
        .push(Op::PageTable {
            frame: f(3),
            owner: p,
            causer: p,
        })
        .unwrap()
        .push(Op::Anon {
            frame: f(4),
            domain: p,
        })
        .unwrap();
    ledger.apply(&fault).unwrap();
    for index in 5..10 {
        ledger.new_anon(f(index), p).unwrap();
    }
    let region: Vec<FrameIndex> = (4..10).map(f).collect();
    let mut spawn = Plan::new();
    spawn
        .push(Op::Kernel {
            frame: f(10),
            set: child,
            causer: Some(p),
        })
        .unwrap()
        .push(Op::PageTable {
            frame: f(11),
            owner: c,
            causer: p,
        })
        .unwrap()
        .push(Op::ShareMany {
            frames: &region,
            domain: c,
        })
        .unwrap();
    let _ = ledger.apply(&spawn);
    snapshots.push(snapshot(ledger, "shared"));
    let _ = ledger.cow_copy(f(4), f(12), c);
    let _ = ledger.cow_copy(f(5), f(13), c);
    let _ = ledger.new_msgbuf(f(14), c, p);
    let _ = ledger.new_msgbuf(f(15), c, p);
    let _ = ledger.new_msgbuf(f(16), p, c);
    ledger
        .set_domain_state(c, DomainState::Stopped(StopReason::OverLimit))
        .unwrap();
    for frame in ledger.frames_mapped_by(c).collect::<Vec<_>>() {
        ledger.unmap(frame, c).unwrap();
    }
    ledger.set_limit(child, Some(PAGE)).unwrap();
    snapshots.push(snapshot(ledger, "child \"stopped\"\n"));
    for frame in ledger.frames_mapped_by(p).collect::<Vec<_>>() {
        ledger.unmap(frame, p).unwrap();
    }
    for index in 0..ledger.frame_count() as u32 {
        let _ = ledger.free(f(index));
    }
    ledger.set_domain_state(p, DomainState::Exited).unwrap();
    snapshots.push(snapshot(ledger, "final"));
    snapshots
}

#[test]
fn replay_reproduces_the_run_under_the_same_policies() {
    for cow in ["writer", "holder", "split"] {
        for msgbuf in ["sender", "receiver", "split", "kernel"] {
            for pagetable in ["owner", "causer"] {
                for release in ["migrate", "stay"] {
                    let chosen = policies(cow, msgbuf, pagetable, release);
                    let mut frames = vec![FrameEntry::FREE; 24];
                    let mut ledger = Ledger::new(&mut frames, chosen);
                    ledger.set_trace_hook(Some(record));
                    let original = tour(&mut ledger);
                    ok(&ledger);
                    let trace = take_trace();
                    assert!(trace.starts_with("ledger 24\npolicies cow="));
                    let mut replay_frames = vec![FrameEntry::FREE; 24];
                    let mut scratch = vec![FrameIndex(0); 64];
                    let mut replayer = Replayer::new(&mut replay_frames, &mut scratch, chosen);
                    let mut replayed = Vec::new();
                    let stats = replay_text(&trace, &mut replayer, |ledger, snapshot| {
                        let mut json = String::new();
                        ledger
                            .write_snapshot_json(&mut json, &snapshot.header())
                            .unwrap();
                        replayed.push(json);
                    })
                    .unwrap();
                    assert_eq!(replayed, original, "{chosen}");
                    assert_eq!(stats.diverging, 0, "{chosen}");
                    assert_eq!(replayer.ledger().audit(), Ok(()));
                }
            }
        }
    }
}

#[test]
fn a_late_hook_replays_the_tables_that_exist() {
    let mut frames = vec![FrameEntry::FREE; 16];
    let mut ledger = Ledger::new(&mut frames, defaults());
    ledger.mark_boot_range(f(0), 2).unwrap();
    ledger.mark_boot(f(5)).unwrap();
    ledger.set_limit(SetId::KERNEL, Some(PAGE)).unwrap();
    let [a1, _, b1] = two_sets(&mut ledger, Some(8 * PAGE), None);
    ledger
        .set_kind_limit(SetId(1), Kind::Cow, Some(PAGE))
        .unwrap();
    ledger.set_domain_state(b1, DomainState::Blocked).unwrap();
    ledger.set_trace_hook(Some(record));
    ledger.new_anon(f(3), a1).unwrap();
    let original = snapshot(&ledger, "late");
    let trace = take_trace();
    assert!(trace.contains("boot 0 2\nboot 5 1\n"), "{trace}");
    let mut replay_frames = vec![FrameEntry::FREE; 16];
    let mut scratch = vec![FrameIndex(0); 4];
    let mut replayer = Replayer::new(&mut replay_frames, &mut scratch, defaults());
    let mut replayed = Vec::new();
    replay_text(&trace, &mut replayer, |ledger, snapshot| {
        let mut json = String::new();
        ledger
            .write_snapshot_json(&mut json, &snapshot.header())
            .unwrap();
        replayed.push(json);
    })
    .unwrap();
    assert_eq!(replayed, [original]);
}

#[test]
fn counterfactual_replay_gives_other_numbers() {
    let mut frames = vec![FrameEntry::FREE; 24];
    let mut ledger = Ledger::new(&mut frames, defaults());
    ledger.set_trace_hook(Some(record));
    let original = tour(&mut ledger);
    let trace = std::format!("junk before\n@tally/1 run {{}}\n{}", {
        let text = take_trace();
        text.lines()
            .map(|line| std::format!("@tally/1 trace {line}\n"))
            .collect::<String>()
    });
    let mut replay_frames = vec![FrameEntry::FREE; 24];
    let mut scratch = vec![FrameIndex(0); 64];
    let split = policies("split", "split", "causer", "stay");
    let mut replayer = Replayer::new(&mut replay_frames, &mut scratch, split);
    let error = replay_text(&trace, &mut replayer, |_, _| {}).unwrap_err();
    assert_eq!(
        error.kind,
        ReplayErrorKind::Parse(ParseError::UnknownRecord)
    );
    let trace = trace.replace("junk before\n", "");
    let mut replay_frames = vec![FrameEntry::FREE; 24];
    let mut replayer = Replayer::new(&mut replay_frames, &mut scratch, split);
    let mut replayed = Vec::new();
    replay_text(&trace, &mut replayer, |ledger, snapshot| {
        assert_eq!(ledger.audit(), Ok(()));
        let mut json = String::new();
        ledger
            .write_snapshot_json(&mut json, &snapshot.header())
            .unwrap();
        replayed.push(json);
    })
    .unwrap();
    assert_eq!(replayed.len(), original.len());
    assert_ne!(replayed[1], original[1]);
    assert!(replayed[1].contains("\"cow\":\"split\""));
}

#[test]
fn replay_rejects_out_of_sequence_records() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut scratch = vec![FrameIndex(0); 2];
    let mut replayer = Replayer::new(&mut frames, &mut scratch, defaults());
    let error = replay_text("ledger 9\n", &mut replayer, |_, _| {}).unwrap_err();
    assert_eq!(error.kind, ReplayErrorKind::FrameCount);
    let error = replay_text("frames 1 2\n", &mut replayer, |_, _| {}).unwrap_err();
    assert_eq!(error.kind, ReplayErrorKind::Sequence);
    let error = replay_text("share-many 0 3\n", &mut replayer, |_, _| {}).unwrap_err();
    assert_eq!(error.kind, ReplayErrorKind::ScratchFull);
    let error = replay_text("plan 2\nanon 1 0\nfree 1\n", &mut replayer, |_, _| {}).unwrap_err();
    assert_eq!(error.kind, ReplayErrorKind::Sequence);
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut replayer = Replayer::new(&mut frames, &mut scratch, defaults());
    let error = replay_text("set 5 a - -\n", &mut replayer, |_, _| {}).unwrap_err();
    assert!(matches!(error.kind, ReplayErrorKind::Diverged(_)));
    assert!(error
        .to_string()
        .starts_with("trace record 1: replay diverged"));
}

#[test]
fn snapshot_json_is_exact() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, defaults());
    ledger.mark_boot(f(0)).unwrap();
    let parent = ledger.create_set("parent", None, Some(1 << 20)).unwrap();
    let child = ledger.create_set("child", Some(parent), None).unwrap();
    ledger
        .set_kind_limit(child, Kind::Msgbuf, Some(49152))
        .unwrap();
    let p = ledger.create_domain("parent", parent).unwrap();
    let c = ledger.create_domain("child", child).unwrap();
    ledger.new_anon(f(1), p).unwrap();
    ledger.new_page_table(f(2), c, p).unwrap();
    ledger
        .set_domain_state(c, DomainState::Stopped(StopReason::Fault))
        .unwrap();
    let mut json = String::new();
    let header = SnapshotHeader {
        label: "a \"b\"\\\u{1}",
        instructions: 7,
        total_frames: 8,
        free_frames: 5,
    };
    ledger.write_snapshot(&mut json, &header).unwrap();
    let zero = r#"{"anon":0,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0}"#;
    let anon = r#"{"anon":4096,"pagetables":0,"kernel":0,"msgbuf":0,"cow":0}"#;
    let table = r#"{"anon":0,"pagetables":4096,"kernel":0,"msgbuf":0,"cow":0}"#;
    let both = r#"{"anon":4096,"pagetables":4096,"kernel":0,"msgbuf":0,"cow":0}"#;
    let expected = std::format!(
        concat!(
            r#"{{"label":"a \"b\"\\\u0001","instructions":7,"#,
            r#""frames":{{"total":8,"free":5,"boot":1,"in_use":2}},"#,
            r#""conservation":{{"charged_bytes":8192,"in_use_bytes":8192,"ok":true}},"#,
            r#""recount":{{"ok":true,"error":null}},"#,
            r#""policy":{{"cow":"writer","msgbuf":"sender","pagetable":"owner","release":"migrate","kernel":"self","move":"stay"}},"#,
            r#""charge_sets":["#,
            r#"{{"name":"kernel","parent":null,"limit_bytes":null,"domains":[],"current":{z},"peak":{z},"charged_total_bytes":0,"uncharged_total_bytes":0,"denied":{z},"paid_for":{{}},"caused":{{}},"charged":{z},"uncharged":{z},"limit_hits":{z},"moved_in":{z},"moved_out":{z},"moved_in_bytes":0,"moved_out_bytes":0,"events":{e0},"high_bytes":null,"subtree":{z},"subtree_bytes":0,"kind_limits":{{}}}},"#,
            r#"{{"name":"parent","parent":null,"limit_bytes":1048576,"domains":["parent"],"current":{a},"peak":{a},"charged_total_bytes":4096,"uncharged_total_bytes":0,"denied":{z},"paid_for":{{}},"caused":{{"parent":{a}}},"charged":{a},"uncharged":{z},"limit_hits":{z},"moved_in":{z},"moved_out":{z},"moved_in_bytes":0,"moved_out_bytes":0,"events":{e0},"high_bytes":null,"subtree":{b},"subtree_bytes":8192,"kind_limits":{{}}}},"#,
            r#"{{"name":"child","parent":"parent","limit_bytes":null,"domains":["child"],"current":{t},"peak":{t},"charged_total_bytes":4096,"uncharged_total_bytes":0,"denied":{z},"paid_for":{{"parent":4096}},"caused":{{"parent":{t}}},"charged":{t},"uncharged":{z},"limit_hits":{z},"moved_in":{z},"moved_out":{z},"moved_in_bytes":0,"moved_out_bytes":0,"events":{e1},"high_bytes":null,"subtree":{t},"subtree_bytes":4096,"kind_limits":{{"msgbuf":49152}}}}],"#,
            r#""domains":[{{"name":"parent","charge_set":"parent","state":"running","stop_reason":null,"exit_code":null,"keeper_faults":0,"restarts":0,"keeper_choices":{{"answered":0,"timeout":0,"wrong":0,"none":0}},"last_denial":null}},"#,
            r#"{{"name":"child","charge_set":"child","state":"stopped","stop_reason":"fault","exit_code":null,"keeper_faults":0,"restarts":0,"keeper_choices":{{"answered":0,"timeout":0,"wrong":0,"none":0}},"last_denial":null}}],"#,
            r#""sharer_lists":0,"frame_bytes":4096}}"#
        ),
        z = zero,
        a = anon,
        b = both,
        t = table,
        e0 = r#"{"denied":0,"limit_hit":0,"over_limit":0,"out_of_memory":0,"fault":0,"killed":0,"high":0,"evictions":0,"page_ins":0}"#,
        e1 = r#"{"denied":0,"limit_hit":0,"over_limit":0,"out_of_memory":0,"fault":1,"killed":0,"high":0,"evictions":0,"page_ins":0}"#
    );
    assert_eq!(json, expected);
    ok(&ledger);
}

#[test]
fn paid_for_is_reported_by_domain_name() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, defaults());
    let [a1, _, b1] = two_sets(&mut ledger, None, None);
    ledger.new_page_table(f(1), b1, a1).unwrap();
    let json = snapshot(&ledger, "x");
    assert!(json.contains(r#""paid_for":{"a1":4096}"#), "{json}");
    // The by-causer table has the same bytes, by kind.
    assert!(
        json.contains(
            r#""caused":{"a1":{"anon":0,"pagetables":4096,"kernel":0,"msgbuf":0,"cow":0}}"#
        ),
        "{json}"
    );
}

#[test]
fn a_stop_is_counted_once_at_the_domains_set() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, defaults());
    let [a1, _, _] = two_sets(&mut ledger, None, None);
    let stopped = DomainState::Stopped(StopReason::OverLimit);
    ledger.set_domain_state(a1, stopped).unwrap();
    ledger.set_domain_state(a1, stopped).unwrap();
    let set = ledger.domain(a1).unwrap().set;
    assert_eq!(ledger.set(set).unwrap().stops, [1, 0, 0, 0]);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Well-formed records with small, often invalid, ids: frames 0..20 of 16, domains 0..5
    /// of 3, sets 0..5 of 3.
    fn record() -> impl Strategy<Value = TraceRecord> {
        let frame = (0u32..20).prop_map(FrameIndex);
        let domain = (0u16..5).prop_map(DomainId);
        let set = (0u16..5).prop_map(SetId);
        let limit =
            proptest::option::of(0u64..12).prop_map(|pages| pages.map(|pages| pages * PAGE));
        prop_oneof![
            4 => (frame.clone(), domain.clone()).prop_map(|(frame, domain)| TraceRecord::Anon { frame, domain }),
            2 => (frame.clone(), domain.clone(), domain.clone())
                .prop_map(|(frame, owner, causer)| TraceRecord::PageTable { frame, owner, causer }),
            2 => (frame.clone(), set.clone(), proptest::option::of(domain.clone()))
                .prop_map(|(frame, set, causer)| TraceRecord::Kernel { frame, set, causer }),
            2 => (frame.clone(), domain.clone(), domain.clone())
                .prop_map(|(frame, sender, receiver)| TraceRecord::Msgbuf { frame, sender, receiver }),
            4 => (frame.clone(), domain.clone()).prop_map(|(frame, domain)| TraceRecord::Share { frame, domain }),
            3 => (frame.clone(), frame.clone(), domain.clone())
                .prop_map(|(original, copy, writer)| TraceRecord::Cow { original, copy, writer }),
            4 => (frame.clone(), domain.clone()).prop_map(|(frame, domain)| TraceRecord::Unmap { frame, domain }),
            2 => frame.clone().prop_map(|frame| TraceRecord::Free { frame }),
            1 => (set.clone(), limit.clone()).prop_map(|(set, limit_bytes)| TraceRecord::Limit { set, limit_bytes }),
            1 => (domain.clone(), set.clone(), 0u8..5).prop_map(|(domain, set, which)| TraceRecord::KeeperChoice {
                domain,
                choice: match which {
                    0 => Some((Kind::Cow, KeeperChoice::Answered(set))),
                    1 => Some((Kind::Msgbuf, KeeperChoice::Timeout)),
                    2 => Some((Kind::Cow, KeeperChoice::Wrong)),
                    3 => Some((Kind::Msgbuf, KeeperChoice::NoKeeper)),
                    _ => None,
                },
            }),
            1 => (set, 0usize..Kind::COUNT, limit).prop_map(|(set, kind, limit_bytes)| TraceRecord::KindLimit {
                set,
                kind: Kind::from_index(kind).unwrap(),
                limit_bytes,
            }),
            1 => (frame, 0u32..3).prop_map(|(first, count)| TraceRecord::Boot { first, count }),
            1 => domain.clone().prop_map(|domain| TraceRecord::State { domain, state: DomainState::Exited }),
            1 => (domain, proptest::bool::ANY).prop_map(|(domain, restart)| TraceRecord::KeeperFault { domain, restart }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Records naming unknown ids, frames out of range or in the wrong state never panic
        /// the ledger; every failure changes nothing and the books stay balanced.
        #[test]
        fn bad_input_never_panics(records in proptest::collection::vec(record(), 0..80)) {
            for cow in ["writer", "holder", "split"] {
                for release in ["migrate", "stay"] {
                    let mut frames = vec![FrameEntry::FREE; 16];
                    let mut scratch = vec![FrameIndex(0); 8];
                    let chosen = policies(cow, "split", "causer", release);
                    let mut replayer = Replayer::new(&mut frames, &mut scratch, chosen);
                    let prelude = "set 1 a - 40960\nset 2 b 1 -\ndom 0 a1 1\ndom 1 b1 2\ndom 2 c1 1\n";
                    replay_text(prelude, &mut replayer, |_, _| {}).unwrap();
                    for record in &records {
                        let before = replayer.ledger().frames().to_vec();
                        let stats = replayer.stats();
                        let result = replayer.feed(record);
                        // A bad id in a set-up record stops a replay; an operation's error is
                        // counted and the replay goes on.
                        let setup = matches!(
                            record,
                            TraceRecord::Limit { .. }
                                | TraceRecord::KindLimit { .. }
                                | TraceRecord::State { .. }
                                | TraceRecord::KeeperFault { .. }
                                | TraceRecord::KeeperChoice { .. }
                                | TraceRecord::Boot { .. }
                        );
                        prop_assert!(setup || result.is_ok());
                        let after = replayer.stats();
                        if after.failed > stats.failed {
                            prop_assert_eq!(replayer.ledger().frames(), &before[..]);
                        }
                        prop_assert_eq!(replayer.ledger().audit(), Ok(()));
                    }
                }
            }
        }
    }
}

#[test]
fn the_recount_catches_what_the_counters_cannot() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, defaults());
    let set = ledger.create_set("a", None, None).unwrap();
    let d = ledger.create_domain("a", set).unwrap();
    ledger.new_anon(f(1), d).unwrap();
    ledger.new_page_table(f(2), d, d).unwrap();
    assert_eq!(ledger.recount(2), Ok(()));
    // A frame the allocator handed out that nobody charged (a leak the counters never see),
    // and one freed in the allocator but still charged.
    assert_eq!(
        ledger.recount(3),
        Err("frames allocated differ from frames charged")
    );
    assert_eq!(
        ledger.recount(1),
        Err("frames allocated differ from frames charged")
    );
    // The conservation check alone balances in both cases.
    assert!(ledger.conservation().ok);
    ledger.free(f(2)).unwrap();
    assert_eq!(ledger.recount(1), Ok(()));
}

#[test]
fn exit_codes_are_reported_for_exited_domains_only() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, defaults());
    let set = ledger.create_set("a", None, None).unwrap();
    let a = ledger.create_domain("a", set).unwrap();
    let b = ledger.create_domain("b", set).unwrap();
    ledger.set_domain_exited(a, -3).unwrap();
    ledger
        .set_domain_state(b, DomainState::Stopped(StopReason::OverLimit))
        .unwrap();
    let mut json = String::new();
    let header = SnapshotHeader {
        label: "x",
        instructions: 0,
        total_frames: 8,
        free_frames: 8,
    };
    ledger.write_snapshot(&mut json, &header).unwrap();
    assert!(
        json.contains(
            r#""name":"a","charge_set":"a","state":"exited","stop_reason":null,"exit_code":-3,"keeper_faults":0,"restarts":0,"keeper_choices":{"answered":0,"timeout":0,"wrong":0,"none":0},"last_denial":null}"#
        ),
        "{json}"
    );
    assert!(
        json.contains(
            r#""state":"stopped","stop_reason":"over-limit","exit_code":null,"keeper_faults":0,"restarts":0,"keeper_choices":{"answered":0,"timeout":0,"wrong":0,"none":0},"last_denial":null}"#
        ),
        "{json}"
    );
    assert!(
        json.contains(r#""recount":{"ok":true,"error":null}"#),
        "{json}"
    );
}

#[test]
fn a_domain_whose_creation_was_refused_is_forgotten() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, defaults());
    let set = ledger.create_set("small", None, Some(PAGE)).unwrap();
    let parent = ledger.create_domain("parent", set).unwrap();
    let child = ledger.create_domain("child", set).unwrap();
    // Its two kernel objects do not fit: refused, nothing charged.
    let mut plan = Plan::one(Op::DomainObject {
        frame: f(1),
        domain: child,
        spawner: Some(parent),
    });
    plan.push(Op::DomainObject {
        frame: f(2),
        domain: child,
        spawner: Some(parent),
    })
    .unwrap();
    assert!(matches!(ledger.apply(&plan), Err(Error::OverLimit(_))));
    // Not the last domain, or one that holds something, cannot be forgotten.
    assert_eq!(
        ledger.forget_domain(parent),
        Err(Error::UnknownDomain(parent))
    );
    ledger.forget_domain(child).unwrap();
    assert_eq!(ledger.domains().len(), 1);
    // The name and the id are free again.
    assert_eq!(ledger.create_domain("child", set).unwrap(), child);
    ledger.new_anon(f(3), child).unwrap();
    assert_eq!(
        ledger.forget_domain(child),
        Err(Error::UnknownDomain(child))
    );
    ok(&ledger);
}

// ---- moving a domain to another set (`move`) ------------------------------------------------

fn with_move(mut chosen: Policies, migrate: bool) -> Policies {
    chosen.moves = if migrate { &MOVE_MIGRATE } else { &MOVE_STAY };
    chosen
}

/// `a1` (set `a`) maps frame 2 (private) and frame 3 (shared with `a2`, who pays it), caused
/// a page table (frame 4, paid by `a`); `a2` caused a kernel object bound to `a` (frame 5).
fn before_move(ledger: &mut Ledger<'_>, limit_b: Option<u64>) -> [DomainId; 3] {
    let [a1, a2, b1] = two_sets(ledger, None, limit_b);
    ledger.new_anon(f(2), a1).unwrap();
    ledger.new_anon(f(3), a2).unwrap();
    ledger.share(f(3), a1).unwrap();
    ledger.new_page_table(f(4), a1, a1).unwrap();
    ledger.new_kernel(f(5), SetId(1), Some(a2)).unwrap();
    [a1, a2, b1]
}

#[test]
fn move_stay_rebinds_and_leaves_every_charge() {
    let mut frames = vec![FrameEntry::FREE; 16];
    let mut ledger = Ledger::new(&mut frames, with_move(defaults(), false));
    let [a1, _, _] = before_move(&mut ledger, None);
    let (a, b) = (SetId(1), SetId(2));
    let before = ledger.set(a).unwrap().current;
    assert_eq!(ledger.move_domain(a1, b), Ok(0));
    ok(&ledger);
    assert_eq!(ledger.domain_set(a1), Ok(b));
    assert_eq!(ledger.set(a).unwrap().current, before);
    assert_eq!(ledger.set(b).unwrap().current_bytes(), 0);
    // What it causes from now on is charged to its new set.
    ledger.new_anon(f(6), a1).unwrap();
    assert_eq!(ledger.set(b).unwrap().current_of(Kind::Anon), PAGE);
    // A copy it makes is paid by its new set (cow = writer); the original stays with `a`.
    ledger.cow_copy(f(3), f(7), a1).unwrap();
    assert_eq!(ledger.set(b).unwrap().current_of(Kind::Cow), PAGE);
    assert_eq!(ledger.set(a).unwrap().current_of(Kind::Anon), 2 * PAGE);
    // Its old private page is still paid by `a`, and freed from there.
    assert_eq!(ledger.unmap(f(2), a1), Ok(Unmapped::Freed));
    assert_eq!(ledger.set(a).unwrap().current_of(Kind::Anon), PAGE);
    // The a1's bytes `a` still pays count as paid for a domain of another set now.
    assert_eq!(ledger.set(a).unwrap().caused_by(a1.index()), PAGE);
    assert_eq!(ledger.set(a).unwrap().moved_out, [0; Kind::COUNT]);
    ok(&ledger);
    let json = snapshot(&ledger, "moved");
    assert!(json.contains(r#""domains":["a2"]"#), "{json}");
    assert!(json.contains(r#""domains":["a1","b1"]"#), "{json}");
    assert!(json.contains(r#""paid_for":{"a1":4096}"#), "{json}");
    assert!(json.contains(r#""move":"stay""#), "{json}");
}

#[test]
fn move_migrate_takes_what_the_domain_holds_in_its_old_set() {
    let mut frames = vec![FrameEntry::FREE; 16];
    let mut ledger = Ledger::new(&mut frames, with_move(defaults(), true));
    let [a1, a2, _] = before_move(&mut ledger, None);
    let (a, b) = (SetId(1), SetId(2));
    // Its private page and the table it caused move; the shared page a2 pays and the kernel
    // object a2 caused stay.
    assert_eq!(ledger.move_domain(a1, b), Ok(2 * PAGE));
    ok(&ledger);
    let (sa, sb) = (ledger.set(a).unwrap(), ledger.set(b).unwrap());
    assert_eq!(sb.current_of(Kind::Anon), PAGE);
    assert_eq!(sb.current_of(Kind::PageTables), PAGE);
    assert_eq!(sa.current_of(Kind::Anon), PAGE);
    assert_eq!(sa.current_of(Kind::PageTables), 0);
    assert_eq!(sa.current_of(Kind::Kernel), PAGE);
    assert_eq!(sa.moved_out[Kind::Anon.index()], PAGE);
    assert_eq!(sa.moved_out[Kind::PageTables.index()], PAGE);
    assert_eq!(sb.moved_in, sa.moved_out);
    assert_eq!(sb.caused_by(a1.index()), 2 * PAGE);
    // Its slot of the shared frame names `b` now: when the payer leaves under
    // `release = migrate`, the charge goes to `b`.
    assert_eq!(ledger.unmap(f(3), a2), Ok(Unmapped::StillMapped));
    assert_eq!(ledger.set(b).unwrap().current_of(Kind::Anon), 2 * PAGE);
    ok(&ledger);
    let json = snapshot(&ledger, "moved");
    assert!(
        json.contains(r#""moved_in":{"anon":4096,"pagetables":4096,"kernel":0,"msgbuf":0,"cow":0},"moved_out":{"anon":0"#),
        "{json}"
    );
    assert!(
        json.contains(r#""moved_in_bytes":8192,"moved_out_bytes":0"#),
        "{json}"
    );
    assert!(
        json.contains(r#""moved_in_bytes":0,"moved_out_bytes":8192"#),
        "{json}"
    );
    // Moving back takes everything it holds in `b` along.
    assert_eq!(ledger.move_domain(a1, a), Ok(3 * PAGE));
    assert_eq!(ledger.set(b).unwrap().current_bytes(), 0);
    ok(&ledger);
}

#[test]
fn move_migrate_under_split_moves_only_the_share() {
    let mut frames = vec![FrameEntry::FREE; 16];
    let chosen = with_move(policies("split", "sender", "owner", "migrate"), true);
    let mut ledger = Ledger::new(&mut frames, chosen);
    let [a1, a2, b1] = two_sets(&mut ledger, None, None);
    ledger.new_anon(f(2), a2).unwrap();
    ledger.share(f(2), a1).unwrap();
    ledger.share(f(2), b1).unwrap();
    let (a, b) = (SetId(1), SetId(2));
    // 3 sharers: a2 (holder) 1366, a1 1365, b1 1365.
    assert_eq!(ledger.set(a).unwrap().current_of(Kind::Anon), 1366 + 1365);
    assert_eq!(ledger.move_domain(a1, b), Ok(1365));
    assert_eq!(ledger.set(a).unwrap().current_of(Kind::Anon), 1366);
    assert_eq!(ledger.set(b).unwrap().current_of(Kind::Anon), 2 * 1365);
    ok(&ledger);
}

#[test]
fn move_migrate_is_all_or_nothing_and_counts_the_denial_where_the_limit_failed() {
    let mut frames = vec![FrameEntry::FREE; 16];
    let mut ledger = Ledger::new(&mut frames, with_move(defaults(), true));
    let [a1, _, _] = before_move(&mut ledger, Some(PAGE));
    let (a, b) = (SetId(1), SetId(2));
    let before: Vec<_> = ledger.sets().to_vec();
    let failure = ledger.move_domain(a1, b).unwrap_err();
    let Error::OverLimit(denial) = failure else {
        panic!("{failure:?}");
    };
    assert_eq!(denial.limit_set, b);
    assert_eq!(ledger.domain_set(a1), Ok(a));
    ok(&ledger);
    let after = ledger.sets();
    for (old, new) in before.iter().zip(after) {
        assert_eq!(old.current, new.current);
        assert_eq!(old.moved_in, new.moved_in);
    }
    assert_eq!(after[b.index()].denied.iter().sum::<u64>(), 1);
    assert_eq!(after[b.index()].limit_hits.iter().sum::<u64>(), 1);
    assert_eq!(ledger.domain(a1).unwrap().last_denial, Some(denial));
    // At an ancestor's limit: the set moved to would have paid (`denied`), the limit that
    // failed is the ancestor's (`limit_hits`).
    let root = ledger.create_set("root", None, Some(PAGE)).unwrap();
    let inner = ledger.create_set("inner", Some(root), None).unwrap();
    let Err(Error::OverLimit(denial)) = ledger.move_domain(a1, inner) else {
        panic!("not denied");
    };
    assert_eq!(denial.limit_set, root);
    assert_eq!(ledger.set(root).unwrap().limit_hits.iter().sum::<u64>(), 1);
    assert_eq!(ledger.set(root).unwrap().denied.iter().sum::<u64>(), 0);
    assert_eq!(ledger.set(inner).unwrap().denied.iter().sum::<u64>(), 1);
    assert_eq!(ledger.set(inner).unwrap().limit_hits.iter().sum::<u64>(), 0);
    // Within one subtree the limit holds both ends: a move between siblings under `root`
    // changes nothing there.
    assert_eq!(ledger.move_domain(a1, a), Ok(0));
    assert_eq!(
        ledger.move_domain(a1, SetId::KERNEL),
        Err(Error::UnknownSet(SetId::KERNEL))
    );
    assert_eq!(
        ledger.move_domain(DomainId(9), b),
        Err(Error::UnknownDomain(DomainId(9)))
    );
    ok(&ledger);
}

#[test]
fn a_move_replays_under_both_move_policies() {
    for recorded in [false, true] {
        for replayed_as in [false, true] {
            let mut frames = vec![FrameEntry::FREE; 16];
            let chosen = with_move(defaults(), recorded);
            let mut ledger = Ledger::new(&mut frames, chosen);
            ledger.set_trace_hook(Some(record));
            let [a1, _, _] = before_move(&mut ledger, Some(2 * PAGE));
            ledger.move_domain(a1, SetId(2)).unwrap();
            let _ = ledger.move_domain(a1, SetId(1));
            let _ = ledger.set_limit(SetId(1), Some(0));
            // Denied under migrate (a holds too much for a limit of 0), fine under stay.
            let _ = ledger.move_domain(a1, SetId(1));
            let original = snapshot(&ledger, "after");
            let trace = take_trace();
            assert!(trace.contains("move 0 2\n"), "{trace}");
            assert!(trace.contains(" move="), "{trace}");
            let mut replay_frames = vec![FrameEntry::FREE; 16];
            let mut scratch = vec![FrameIndex(0); 4];
            let target = with_move(defaults(), replayed_as);
            let mut replayer = Replayer::new(&mut replay_frames, &mut scratch, target);
            let mut replayed = Vec::new();
            let mut json = String::new();
            let stats = replay_text(&trace, &mut replayer, |_, _| {}).unwrap();
            replayer
                .ledger()
                .write_snapshot(
                    &mut json,
                    &SnapshotHeader {
                        label: "after",
                        instructions: 42,
                        total_frames: 16,
                        free_frames: 16 - replayer.ledger().frames_in_use(),
                    },
                )
                .unwrap();
            replayed.push(json);
            assert_eq!(stats.diverging, 0);
            assert_eq!(replayer.ledger().audit(), Ok(()));
            if recorded == replayed_as {
                assert_eq!(replayed[0], original);
            }
        }
    }
}

#[test]
fn keeper_faults_and_restarts_are_counted_per_domain_and_traced() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, defaults());
    let set = ledger.create_set("a", None, None).unwrap();
    let a = ledger.create_domain("a", set).unwrap();
    ledger.note_keeper_fault(a, false).unwrap();
    ledger.note_keeper_fault(a, true).unwrap();
    let domain = ledger.domain(a).unwrap();
    assert_eq!((domain.keeper_faults, domain.restarts), (2, 1));
    assert_eq!(
        ledger.note_keeper_fault(DomainId(9), false),
        Err(Error::UnknownDomain(DomainId(9)))
    );
    let record = TraceRecord::KeeperFault {
        domain: a,
        restart: true,
    };
    assert_eq!(record.to_string(), "keeper 0 1");
    assert_eq!(TraceRecord::parse("keeper 0 1"), Ok(record));
    assert!(TraceRecord::parse("keeper 0 2").is_err());
}

#[test]
fn a_high_bound_never_denies_and_paging_is_counted_per_set_and_traced() {
    let mut frames = vec![FrameEntry::FREE; 8];
    let mut ledger = Ledger::new(&mut frames, defaults());
    let root = ledger.create_set("root", None, Some(8 * 4096)).unwrap();
    let child = ledger.create_set("child", Some(root), None).unwrap();
    let d = ledger.create_domain("d", child).unwrap();
    ledger.set_high(root, Some(4096)).unwrap();
    assert_eq!(ledger.over_high(d), None);
    ledger.new_anon(FrameIndex(0), d).unwrap();
    assert_eq!(ledger.over_high(d), None, "at the bound is not above it");
    // Above the root's bound: the charge is made (high never denies), and the root is named.
    ledger.new_anon(FrameIndex(1), d).unwrap();
    assert_eq!(ledger.over_high(d), Some((root, 8192, 4096)));
    // The nearest set above its bound comes first.
    ledger.set_high(child, Some(0)).unwrap();
    assert_eq!(ledger.over_high(d), Some((child, 8192, 0)));
    ledger.set_high(child, None).unwrap();
    assert_eq!(ledger.set(root).unwrap().high_bytes, Some(4096));
    ledger.note_paging(d, PagingEvent::OverHigh(root)).unwrap();
    ledger.note_paging(d, PagingEvent::Evict).unwrap();
    ledger.note_paging(d, PagingEvent::Evict).unwrap();
    ledger.note_paging(d, PagingEvent::PageIn).unwrap();
    let (root_set, child_set) = (ledger.set(root).unwrap(), ledger.set(child).unwrap());
    assert_eq!(
        (root_set.high_events, root_set.evictions, root_set.page_ins),
        (1, 0, 0)
    );
    assert_eq!(
        (
            child_set.high_events,
            child_set.evictions,
            child_set.page_ins
        ),
        (0, 2, 1)
    );
    assert_eq!(
        ledger.note_paging(DomainId(9), PagingEvent::Evict),
        Err(Error::UnknownDomain(DomainId(9)))
    );
    assert_eq!(
        ledger.set_high(SetId(9), None),
        Err(Error::UnknownSet(SetId(9)))
    );
    assert_eq!(ledger.audit(), Ok(()));
    for (text, record) in [
        (
            "paging 0 high 1",
            TraceRecord::Paging {
                domain: d,
                event: PagingEvent::OverHigh(root),
            },
        ),
        (
            "paging 0 evict",
            TraceRecord::Paging {
                domain: d,
                event: PagingEvent::Evict,
            },
        ),
        (
            "high 1 4096",
            TraceRecord::High {
                set: root,
                high_bytes: Some(4096),
            },
        ),
    ] {
        assert_eq!(record.to_string(), text);
        assert_eq!(TraceRecord::parse(text), Ok(record));
    }
    assert!(TraceRecord::parse("paging 0 sideways").is_err());
}

#[test]
fn a_traced_pair_copy_is_traced_once_and_replays() {
    // The straight-line pair copy declines under a trace; the general path it falls to
    // traces the copy once, as its plan, whether or not a limit exists.
    for limit in [None, Some(8 * PAGE)] {
        let mut frames = vec![FrameEntry::FREE; 16];
        let mut ledger = Ledger::new(&mut frames, defaults());
        ledger.set_trace_hook(Some(record));
        let [a1, _, b1] = two_sets(&mut ledger, limit, None);
        ledger.new_anon(f(3), a1).unwrap();
        ledger.share(f(3), b1).unwrap();
        let before = take_trace();
        ledger.cow_copy(f(3), f(4), b1).unwrap();
        let trace = take_trace();
        assert_eq!(trace.lines().count(), 1, "{before}---\n{trace}");
        assert_eq!(ledger.mappers(f(3)), Ok(1));
        assert_eq!(current(&ledger, 2, Kind::Cow), PAGE);
        ok(&ledger);
        let original = snapshot(&ledger, "copied");
        let mut replay_frames = vec![FrameEntry::FREE; 16];
        let mut scratch = vec![FrameIndex(0); 4];
        let mut replayer = Replayer::new(&mut replay_frames, &mut scratch, defaults());
        replay_text(&(before + &trace), &mut replayer, |_, _| {}).unwrap();
        assert_eq!(snapshot(replayer.ledger(), "copied"), original);
    }
}
