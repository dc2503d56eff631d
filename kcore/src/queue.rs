//! A first-in first-out queue of domain-table slots: the run queue and an endpoint's waiting
//! senders and receivers.
//!
//! The kernel's IPC fast path asks "is the run queue empty?" and "who waits first at this
//! endpoint?" on every round trip, so the queue is laid out for those questions: a length byte
//! (empty is one load and one compare), a head byte, and the slots in a ring. It answers the
//! same as `heapless::Deque<u8, N>` (the host tests compare the two on random operation
//! sequences) in fewer instructions: no `full` flag beside the indices, no wrap on both ends.
//!
//! Invariants: `len <= N`; the queued slots are `items[(head + i) % N]` for `i < len`, oldest
//! first; `N` is at most 255 (the indices are bytes).

/// A FIFO of up to `N` slots (bytes).
#[derive(Clone, Debug)]
pub struct SlotQueue<const N: usize> {
    len: u8,
    head: u8,
    items: [u8; N],
}

impl<const N: usize> Default for SlotQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> SlotQueue<N> {
    /// An empty queue.
    pub const fn new() -> Self {
        const { assert!(N > 0 && N <= u8::MAX as usize) };
        SlotQueue {
            len: 0,
            head: 0,
            items: [0; N],
        }
    }

    /// How many slots wait.
    #[inline(always)]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether none waits.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the queue holds `N` slots.
    #[inline(always)]
    pub fn is_full(&self) -> bool {
        usize::from(self.len) >= N
    }

    /// The position in `items` of the `offset`-th slot from the head.
    #[inline(always)]
    fn position(&self, offset: usize) -> usize {
        let position = usize::from(self.head) + offset;
        if N.is_power_of_two() {
            // One mask (and the compiler then knows the index is in bounds).
            position & (N - 1)
        } else if position >= N {
            position - N
        } else {
            position
        }
    }

    /// The oldest slot, if any.
    #[inline(always)]
    pub fn front(&self) -> Option<&u8> {
        if self.is_empty() {
            None
        } else {
            self.items.get(usize::from(self.head))
        }
    }

    /// Adds `slot` at the back; gives it back when the queue is full.
    #[inline(always)]
    pub fn push_back(&mut self, slot: u8) -> Result<(), u8> {
        if self.is_full() {
            return Err(slot);
        }
        let position = self.position(self.len());
        if let Some(item) = self.items.get_mut(position) {
            *item = slot;
        }
        self.len += 1;
        Ok(())
    }

    /// Adds `slot` at the front (it is the next one out); gives it back when the queue is full.
    #[inline]
    pub fn push_front(&mut self, slot: u8) -> Result<(), u8> {
        if self.is_full() {
            return Err(slot);
        }
        let head = self.position(N - 1);
        if let Some(item) = self.items.get_mut(head) {
            *item = slot;
        }
        self.head = head as u8;
        self.len += 1;
        Ok(())
    }

    /// Takes the oldest slot out.
    #[inline(always)]
    pub fn pop_front(&mut self) -> Option<u8> {
        let slot = *self.front()?;
        self.head = self.position(1) as u8;
        self.len -= 1;
        Some(slot)
    }

    /// The slots, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (0..self.len()).filter_map(|offset| self.items.get(self.position(offset)).copied())
    }

    /// Takes every occurrence of `slot` out, the others keeping their order.
    pub fn remove(&mut self, slot: u8) {
        for _ in 0..self.len() {
            if let Some(queued) = self.pop_front() {
                if queued != slot {
                    let _ = self.push_back(queued);
                }
            }
        }
    }

    /// Empties the queue.
    pub fn clear(&mut self) {
        self.len = 0;
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::vec::Vec;

    #[derive(Clone, Debug)]
    enum Op {
        PushBack(u8),
        PushFront(u8),
        PopFront,
        Remove(u8),
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..8).prop_map(Op::PushBack),
            1 => (0u8..8).prop_map(Op::PushFront),
            3 => Just(Op::PopFront),
            1 => (0u8..8).prop_map(Op::Remove),
            1 => Just(Op::Clear),
        ]
    }

    /// Runs `ops` on a queue of capacity `N` and on a `VecDeque` bounded to `N`, comparing
    /// every answer.
    fn compare<const N: usize>(ops: &[Op]) -> Result<(), TestCaseError> {
        let mut queue = SlotQueue::<N>::new();
        let mut model = VecDeque::new();
        for op in ops {
            match *op {
                Op::PushBack(slot) => {
                    let expected = if model.len() < N {
                        model.push_back(slot);
                        Ok(())
                    } else {
                        Err(slot)
                    };
                    prop_assert_eq!(queue.push_back(slot), expected);
                }
                Op::PushFront(slot) => {
                    let expected = if model.len() < N {
                        model.push_front(slot);
                        Ok(())
                    } else {
                        Err(slot)
                    };
                    prop_assert_eq!(queue.push_front(slot), expected);
                }
                Op::PopFront => prop_assert_eq!(queue.pop_front(), model.pop_front()),
                Op::Remove(slot) => {
                    queue.remove(slot);
                    model.retain(|&queued| queued != slot);
                }
                Op::Clear => {
                    queue.clear();
                    model.clear();
                }
            }
            prop_assert_eq!(queue.len(), model.len());
            prop_assert_eq!(queue.is_empty(), model.is_empty());
            prop_assert_eq!(queue.is_full(), model.len() == N);
            prop_assert_eq!(queue.front(), model.front());
            prop_assert_eq!(
                queue.iter().collect::<Vec<_>>(),
                model.iter().copied().collect::<Vec<_>>()
            );
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn a_slot_queue_answers_as_a_bounded_deque(ops in proptest::collection::vec(op(), 0..200)) {
            compare::<1>(&ops)?;
            compare::<3>(&ops)?;
            compare::<64>(&ops)?;
        }
    }

    #[test]
    fn the_oldest_slot_leaves_first_and_a_full_queue_refuses() {
        let mut queue = SlotQueue::<2>::new();
        assert_eq!(queue.front(), None);
        assert_eq!(queue.push_back(5), Ok(()));
        assert_eq!(queue.push_back(6), Ok(()));
        assert_eq!(queue.push_back(7), Err(7));
        assert_eq!(queue.pop_front(), Some(5));
        assert_eq!(queue.push_back(8), Ok(()));
        assert_eq!(queue.iter().collect::<Vec<_>>(), [6, 8]);
        assert_eq!(queue.pop_front(), Some(6));
        assert_eq!(queue.pop_front(), Some(8));
        assert_eq!(queue.pop_front(), None);
    }
}
