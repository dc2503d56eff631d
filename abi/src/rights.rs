//! Rights: what a capability allows on its object. Each object type has its own rights; a
//! capability holds a subset of its type's. A derived or transferred capability holds the same
//! rights or fewer, never more (`cap_derive`, [`weakened`]).

use crate::Error;

/// A set of rights, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rights(pub u16);

impl Rights {
    /// Endpoint: `send` and `call` through it.
    pub const SEND: Rights = Rights(1 << 0);
    /// Endpoint: `recv` and `reply_recv` on it.
    pub const RECEIVE: Rights = Rights(1 << 1);
    /// Endpoint: send capabilities through it (a message with capabilities needs it).
    pub const GRANT: Rights = Rights(1 << 2);
    /// Region: map it (readable).
    pub const READ: Rights = Rights(1 << 3);
    /// Region: map it writable.
    pub const WRITE: Rights = Rights(1 << 4);
    /// Domain: wait for it, ask where its frames come from (`frame_info`).
    pub const INSPECT: Rights = Rights(1 << 5);
    /// Domain: move it to another set, set its keeper, map memory into it.
    pub const CONTROL: Rights = Rights(1 << 6);
    /// Charge set: read its usage (`set_query`).
    pub const QUERY: Rights = Rights(1 << 7);
    /// Charge set: change its limits (`set_limit`).
    pub const LIMIT: Rights = Rights(1 << 8);
    /// Charge set: create child sets in it, spawn or move domains into it.
    pub const CREATE: Rights = Rights(1 << 9);

    /// No rights.
    pub const NONE: Rights = Rights(0);
    /// Every right an endpoint capability can hold.
    pub const ENDPOINT: Rights = Rights(Self::SEND.0 | Self::RECEIVE.0 | Self::GRANT.0);
    /// Every right a region capability can hold.
    pub const REGION: Rights = Rights(Self::READ.0 | Self::WRITE.0);
    /// Every right a domain capability can hold.
    pub const DOMAIN: Rights = Rights(Self::INSPECT.0 | Self::CONTROL.0);
    /// Every right a charge-set capability can hold.
    pub const SET: Rights = Rights(Self::QUERY.0 | Self::LIMIT.0 | Self::CREATE.0);
    /// Every right of any type.
    pub const ALL: Rights = Rights((1 << 10) - 1);

    /// Each right with its name and the error a call gets when a capability lacks it.
    pub const NAMED: [(Rights, &'static str, Error); 10] = [
        (Self::SEND, "send", Error::NoSendRight),
        (Self::RECEIVE, "receive", Error::NoReceiveRight),
        (Self::GRANT, "grant", Error::NoGrantRight),
        (Self::READ, "read", Error::NoReadRight),
        (Self::WRITE, "write", Error::NoWriteRight),
        (Self::INSPECT, "inspect", Error::NoInspectRight),
        (Self::CONTROL, "control", Error::NoControlRight),
        (Self::QUERY, "query", Error::NoQueryRight),
        (Self::LIMIT, "limit", Error::NoLimitRight),
        (Self::CREATE, "create", Error::NoCreateRight),
    ];

    /// Whether every right of `other` is here too.
    #[inline]
    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// The rights in both.
    #[inline]
    pub const fn intersection(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }

    /// The rights in either.
    #[inline]
    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    /// Whether there are none.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `Ok` if every right of `needed` is here, else the error of the first one missing.
    #[inline]
    pub fn require(self, needed: Rights) -> Result<(), Error> {
        if self.contains(needed) {
            return Ok(());
        }
        Err(Self::NAMED
            .iter()
            .find(|(right, _, _)| needed.contains(*right) && !self.contains(*right))
            .map_or(Error::BadArgument, |(_, _, error)| *error))
    }

    /// The right of one name (`send`, `receive`, …, `create`).
    pub fn from_name(name: &str) -> Option<Rights> {
        Self::NAMED
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(right, _, _)| *right)
    }

    /// The rights of a `+`-joined list of names (`send+grant`).
    pub fn parse(text: &str) -> Option<Rights> {
        text.split('+').try_fold(Rights::NONE, |rights, name| {
            Some(rights.union(Self::from_name(name)?))
        })
    }

    /// The names of these rights in order, for `write!` (`send+grant`; `none` for none).
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMED
            .iter()
            .filter(move |(right, _, _)| self.contains(*right))
            .map(|(_, name, _)| *name)
    }
}

impl core::fmt::Display for Rights {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

/// The flag of a capability word that carries a rights mask ([`weakened`]).
pub const WEAKEN: usize = 1 << 63;
/// Where the rights mask sits in a weakened capability word.
pub const WEAKEN_RIGHTS_SHIFT: u32 = 32;

/// A capability word for a message's or a spawn request's `caps`: the capability at `index`,
/// passed on with only `rights` (which it must hold). A plain index passes it on with all its
/// rights.
pub const fn weakened(index: usize, rights: Rights) -> usize {
    WEAKEN | ((rights.0 as usize) << WEAKEN_RIGHTS_SHIFT) | (index & 0xffff_ffff)
}

/// Splits a capability word into the index and, if it is [`weakened`], the rights to keep.
/// `BadArgument` for a weakened word with bits outside the index, the mask and the flag.
pub fn split_cap_word(word: usize) -> Result<(usize, Option<Rights>), Error> {
    if word & WEAKEN == 0 {
        return Ok((word, None));
    }
    let mask = (word & !WEAKEN) >> WEAKEN_RIGHTS_SHIFT;
    if mask & !(Rights::ALL.0 as usize) != 0 {
        return Err(Error::BadArgument);
    }
    Ok((word & 0xffff_ffff, Some(Rights(mask as u16))))
}

/// `cap_inspect`'s answer: the capability's type (bits 16 up) and rights (bits 0..16).
pub const CAP_TYPE_SHIFT: u32 = 16;
/// [`CAP_TYPE_SHIFT`] type: a charge set.
pub const CAP_TYPE_SET: usize = 1;
/// [`CAP_TYPE_SHIFT`] type: a domain.
pub const CAP_TYPE_DOMAIN: usize = 2;
/// [`CAP_TYPE_SHIFT`] type: an endpoint.
pub const CAP_TYPE_ENDPOINT: usize = 3;
/// [`CAP_TYPE_SHIFT`] type: a shared-memory region.
pub const CAP_TYPE_REGION: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_parse_print_and_require() {
        let rights = Rights::parse("send+grant").unwrap();
        assert_eq!(rights, Rights::SEND.union(Rights::GRANT));
        assert_eq!(Rights::parse("send+bogus"), None);
        assert_eq!(Rights::parse(""), None);
        let mut text = [0u8; 32];
        let mut cursor = Cursor(&mut text, 0);
        core::fmt::write(&mut cursor, format_args!("{rights}")).unwrap();
        let length = cursor.1;
        assert_eq!(&text[..length], b"send+grant");
        assert_eq!(rights.require(Rights::SEND), Ok(()));
        assert_eq!(rights.require(Rights::RECEIVE), Err(Error::NoReceiveRight));
        assert_eq!(
            Rights::NONE.require(Rights::REGION),
            Err(Error::NoReadRight)
        );
        for (right, name, error) in Rights::NAMED {
            assert_eq!(Rights::from_name(name), Some(right));
            assert_eq!(
                Rights::ALL.intersection(Rights(!right.0)).require(right),
                Err(error)
            );
        }
        let types = [
            Rights::ENDPOINT,
            Rights::REGION,
            Rights::DOMAIN,
            Rights::SET,
        ];
        assert_eq!(
            types.iter().fold(Rights::NONE, |a, b| a.union(*b)),
            Rights::ALL
        );
        assert!(types.iter().map(|t| t.0.count_ones()).sum::<u32>() == 10);
    }

    #[test]
    fn weakened_words_split_back() {
        assert_eq!(split_cap_word(5), Ok((5, None)));
        let word = weakened(7, Rights::READ);
        assert_eq!(split_cap_word(word), Ok((7, Some(Rights::READ))));
        assert_eq!(
            split_cap_word(weakened(7, Rights::NONE)),
            Ok((7, Some(Rights::NONE)))
        );
        assert_eq!(split_cap_word(WEAKEN | (1 << 50)), Err(Error::BadArgument));
    }

    struct Cursor<'a>(&'a mut [u8], usize);
    impl core::fmt::Write for Cursor<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            self.0[self.1..self.1 + s.len()].copy_from_slice(s.as_bytes());
            self.1 += s.len();
            Ok(())
        }
    }
}
