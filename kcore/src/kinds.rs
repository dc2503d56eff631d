//! The two spellings of a frame's kind: the ABI's (`abi::Kind`, the order of every per-kind
//! array user programs see) and the ledger's (`accounting::Kind`). One mapping, tested to
//! agree in order and in report key, so the kernel never converts by index.

/// The ledger's kind for an ABI kind.
pub const fn ledger_kind(kind: abi::Kind) -> accounting::Kind {
    match kind {
        abi::Kind::Anon => accounting::Kind::Anon,
        abi::Kind::PageTables => accounting::Kind::PageTables,
        abi::Kind::Kernel => accounting::Kind::Kernel,
        abi::Kind::Msgbuf => accounting::Kind::Msgbuf,
        abi::Kind::Cow => accounting::Kind::Cow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_abi_and_the_ledger_agree_on_every_kind() {
        assert_eq!(abi::Kind::ALL.len(), accounting::Kind::ALL.len());
        for (abi_kind, ledger) in abi::Kind::ALL.into_iter().zip(accounting::Kind::ALL) {
            assert_eq!(ledger_kind(abi_kind), ledger);
            // The same position in every per-kind array, and the same report key.
            assert_eq!(abi_kind as usize, ledger.index());
            assert_eq!(abi_kind.key(), ledger.key());
        }
    }
}
