//! Counted nouns for messages: `1 snapshot`, `2 snapshots`.

/// `count` and `noun`, the noun in the plural unless the count is one (`noun` + `s`, which
/// covers every noun the tool counts: snapshot, charge set, domain, run, expectation, …).
pub fn count(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1, "charge set"), "1 charge set");
        assert_eq!(count(0, "domain"), "0 domains");
        assert_eq!(count(2, "snapshot"), "2 snapshots");
    }
}
