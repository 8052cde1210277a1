//! CLOCK eviction: which entries go when a write takes the store over its bounds.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::shards::{Inner, Shard};

impl Inner {
    fn over_budget(&self) -> bool {
        self.entries.load(Ordering::Relaxed) > self.max_entries
            || self.bytes.load(Ordering::Relaxed) > self.max_bytes
    }

    /// Evicts from `shard` until the store is within its bounds or only `keep` is left.
    pub(super) fn evict(&self, shard: &mut Shard, keep: Option<&str>, now: Instant) {
        while self.over_budget() {
            match shard.victim(keep, now) {
                Some(index) => self.remove_at(shard, index),
                None => break,
            }
        }
    }

    /// Evicts from the other shards when the one written could not make room by itself. Takes
    /// one shard lock at a time.
    pub(super) fn evict_elsewhere(&self, written: usize, now: Instant) {
        let count = self.shards.len();
        for step in 1..count {
            if !self.over_budget() {
                return;
            }
            let mut shard = self.write((written + step) % count);
            self.evict(&mut shard, None, now);
        }
    }
}

impl Shard {
    /// The entry the CLOCK hand stops at: the first, from the hand on, that is expired or not
    /// used since the hand last passed. Two sweeps suffice, as the first clears every reference bit.
    fn victim(&mut self, keep: Option<&str>, now: Instant) -> Option<usize> {
        let len = self.map.len();
        for _ in 0..=2 * len {
            if self.hand >= len {
                self.hand = 0;
            }
            let (key, slot) = self.map.get_index(self.hand)?;
            let spared = keep == Some(&**key)
                || (slot.is_live(now) && slot.referenced.swap(false, Ordering::Relaxed));
            if !spared {
                return Some(self.hand);
            }
            self.hand += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::store::MemoryStore;
    use crate::store::memory::shards::{Mode, Slot, Value};

    fn number(text: &str) -> Value {
        Value::Bytes(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn a_growing_counter_makes_room_in_other_shards() {
        let fillers = 3;
        let budget =
            Slot::charge("counter", &number("9")) + fillers * Slot::charge("f000", &number("x"));
        let store = MemoryStore::builder().max_bytes(budget).build();
        let inner = &store.inner;
        assert!(inner.shards.len() > 1, "the case needs several shards");
        // The counter alone in its shard: only other shards can make room.
        let home = inner.shard_index("counter");
        let others: Vec<String> = (0..1000)
            .map(|i| format!("f{i:03}"))
            .filter(|key| inner.shard_index(key) != home)
            .take(fillers)
            .collect();
        inner
            .insert("counter", number("9"), None, Mode::Overwrite)
            .unwrap();
        for key in &others {
            inner
                .insert(key, number("x"), None, Mode::Overwrite)
                .unwrap();
        }
        assert_eq!(store.size_bytes(), budget, "full, not over");
        assert_eq!(inner.incr("counter", 1).expect("a number"), 10);
        assert!(store.size_bytes() <= budget, "{store:?}");
        assert_eq!(store.entry_count(), fillers, "one filler made room");
        assert_eq!(inner.get("counter").as_deref(), Some(&b"10"[..]));
    }
}
