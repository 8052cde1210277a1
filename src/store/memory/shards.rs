//! The sharded map behind a [`MemoryStore`](super::MemoryStore): its entries, their expiry and
//! size, and every operation on them, each under one shard lock.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use foldhash::fast::RandomState;
use indexmap::IndexMap;
use tokio::time::Instant;

use crate::store::{LocalValue, StoreError, Ttl};

/// Bytes charged for each entry on top of its key and value: the map slot, the expiry and the
/// reference bit, rounded up. It keeps a flood of tiny entries within `max_bytes` too.
const ENTRY_OVERHEAD: usize = 64;

/// The entries of one store, spread over shards by key, and the totals its bounds are checked
/// against.
pub(super) struct Inner {
    pub(super) shards: Box<[RwLock<Shard>]>,
    /// Picks the shard. Seeded apart from the maps' own hashers so that a shard's keys do not
    /// all share the low hash bits its map indexes by.
    shard_hasher: RandomState,
    pub(super) max_entries: usize,
    pub(super) max_bytes: usize,
    pub(super) entries: AtomicUsize,
    pub(super) bytes: AtomicUsize,
}

/// One lock's share of the entries, in insertion-indexed order for the CLOCK hand.
pub(super) struct Shard {
    pub(super) map: IndexMap<Box<str>, Slot, RandomState>,
    /// Position of the CLOCK hand among the map's indices.
    pub(super) hand: usize,
}

/// One entry: its value, its expiry and its reference bit.
pub(super) struct Slot {
    value: Value,
    expires_at: Option<Instant>,
    /// Set when the entry is used; the eviction hand clears it and spares the entry once.
    pub(super) referenced: AtomicBool,
}

/// What a slot holds: bytes from the [`Store`](crate::store::Store) API, or an object from the
/// [`LocalStore`](crate::store::LocalStore) API.
pub(super) enum Value {
    Bytes(Bytes),
    Object { object: LocalValue, size: usize },
}

impl Value {
    pub(super) fn size(&self) -> usize {
        match self {
            Value::Bytes(bytes) => bytes.len(),
            Value::Object { size, .. } => *size,
        }
    }
}

impl Slot {
    pub(super) fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }

    pub(super) fn charge(key: &str, value: &Value) -> usize {
        key.len()
            .saturating_add(value.size())
            .saturating_add(ENTRY_OVERHEAD)
    }

    /// Marks the slot used. Only writes when the bit changes, so that hot keys read by many
    /// threads do not bounce its cache line between cores.
    fn mark_used(&self) {
        if !self.referenced.load(Ordering::Relaxed) {
            self.referenced.store(true, Ordering::Relaxed);
        }
    }
}

/// What a write does when the key already holds a live value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Overwrite,
    OnlyIfAbsent,
}

impl Inner {
    /// An empty map of `shards` shards (a power of two) under the given bounds.
    pub(super) fn new(shards: usize, max_entries: usize, max_bytes: usize) -> Inner {
        let shards = (0..shards)
            .map(|_| {
                RwLock::new(Shard {
                    map: IndexMap::with_hasher(RandomState::default()),
                    hand: 0,
                })
            })
            .collect();
        Inner {
            shards,
            shard_hasher: RandomState::default(),
            max_entries,
            max_bytes,
            entries: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
        }
    }

    pub(super) fn shard_index(&self, key: &str) -> usize {
        // The shard count is a power of two; the top bits are the best mixed.
        let hash = self.shard_hasher.hash_one(key);
        let bits = self.shards.len().trailing_zeros();
        if bits == 0 {
            0
        } else {
            (hash >> (64 - bits)) as usize
        }
    }

    fn lock(&self, index: usize) -> &RwLock<Shard> {
        // There is at least one shard, so the remainder is always in bounds.
        #[allow(clippy::indexing_slicing)]
        &self.shards[index % self.shards.len()]
    }

    // No code panics while holding a shard lock, and every update leaves a shard consistent, so
    // a poisoned lock (a panic elsewhere in the thread) is safe to keep using.
    fn read(&self, index: usize) -> RwLockReadGuard<'_, Shard> {
        self.lock(index)
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn write(&self, index: usize) -> RwLockWriteGuard<'_, Shard> {
        self.lock(index)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads a live slot's value with `read`, marking the slot used if `read` finds what it
    /// wants.
    fn read_live<T>(&self, key: &str, read: impl FnOnce(&Value) -> Option<T>) -> Option<T> {
        let shard = self.read(self.shard_index(key));
        let slot = shard.map.get(key)?;
        if slot.expires_at.is_some() && !slot.is_live(Instant::now()) {
            return None;
        }
        let found = read(&slot.value)?;
        slot.mark_used();
        Some(found)
    }

    pub(super) fn get(&self, key: &str) -> Option<Bytes> {
        self.read_live(key, |value| match value {
            Value::Bytes(bytes) => Some(bytes.clone()),
            Value::Object { .. } => None,
        })
    }

    pub(super) fn get_object(&self, key: &str) -> Option<LocalValue> {
        self.read_live(key, |value| match value {
            Value::Object { object, .. } => Some(Arc::clone(object)),
            Value::Bytes(_) => None,
        })
    }

    pub(super) fn has_key(&self, key: &str) -> bool {
        let shard = self.read(self.shard_index(key));
        shard
            .map
            .get(key)
            .is_some_and(|slot| slot.is_live(Instant::now()))
    }

    pub(super) fn insert(
        &self,
        key: &str,
        value: Value,
        ttl: Ttl,
        mode: Mode,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let index = self.shard_index(key);
        let mut shard = self.write(index);
        let existing = shard.map.get_index_of(key);
        let live = existing
            .and_then(|i| shard.map.get_index(i))
            .is_some_and(|(_, slot)| slot.is_live(now));
        if mode == Mode::OnlyIfAbsent && live {
            return Ok(false);
        }
        let expires_at = match ttl {
            Some(ttl) if ttl.is_zero() => {
                if let Some(i) = existing {
                    self.remove_at(&mut shard, i);
                }
                return Ok(true);
            }
            Some(ttl) => now.checked_add(ttl),
            None => None,
        };
        let charge = Slot::charge(key, &value);
        if charge > self.max_bytes {
            if let Some(i) = existing {
                self.remove_at(&mut shard, i);
            }
            return Err(StoreError::ValueTooLarge {
                size: charge,
                limit: self.max_bytes,
            });
        }
        let slot = Slot {
            value,
            expires_at,
            // Overwriting counts as use (Django's LRU moves a re-set key to the front); a new
            // entry has to be read before the hand spares it.
            referenced: AtomicBool::new(existing.is_some()),
        };
        match existing.and_then(|i| shard.map.get_index_mut(i)) {
            Some((old_key, old)) => {
                let old_charge = Slot::charge(old_key, &old.value);
                *old = slot;
                self.bytes.fetch_sub(old_charge, Ordering::Relaxed);
            }
            None => {
                shard.map.insert(key.into(), slot);
                self.entries.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.bytes.fetch_add(charge, Ordering::Relaxed);
        self.evict(&mut shard, Some(key), now);
        drop(shard);
        self.evict_elsewhere(index, now);
        Ok(true)
    }

    pub(super) fn delete(&self, key: &str) -> bool {
        let mut shard = self.write(self.shard_index(key));
        match shard.map.get_full(key) {
            Some((i, _, slot)) => {
                let live = slot.is_live(Instant::now());
                self.remove_at(&mut shard, i);
                live
            }
            None => false,
        }
    }

    pub(super) fn incr(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        let now = Instant::now();
        let index = self.shard_index(key);
        let mut shard = self.write(index);
        let Some((i, _, slot)) = shard.map.get_full_mut(key) else {
            return Err(StoreError::NotFound);
        };
        if !slot.is_live(now) {
            self.remove_at(&mut shard, i);
            return Err(StoreError::NotFound);
        }
        let Value::Bytes(current) = &slot.value else {
            return Err(StoreError::NotAnInteger);
        };
        let current = std::str::from_utf8(current)
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or(StoreError::NotAnInteger)?;
        let new = current.checked_add(delta).ok_or(StoreError::Overflow)?;
        let value = Value::Bytes(Bytes::from(new.to_string()));
        let (old_len, new_len) = (slot.value.size(), value.size());
        slot.value = value;
        *slot.referenced.get_mut() = true;
        self.bytes.fetch_add(new_len, Ordering::Relaxed);
        self.bytes.fetch_sub(old_len, Ordering::Relaxed);
        // A longer number can take the store over its byte bound, like any write.
        self.evict(&mut shard, Some(key), now);
        drop(shard);
        self.evict_elsewhere(index, now);
        Ok(new)
    }

    pub(super) fn touch(&self, key: &str, ttl: Ttl) -> bool {
        let now = Instant::now();
        let mut shard = self.write(self.shard_index(key));
        let Some((i, _, slot)) = shard.map.get_full_mut(key) else {
            return false;
        };
        if !slot.is_live(now) {
            self.remove_at(&mut shard, i);
            return false;
        }
        match ttl {
            Some(ttl) if ttl.is_zero() => {
                self.remove_at(&mut shard, i);
            }
            ttl => slot.expires_at = ttl.and_then(|ttl| now.checked_add(ttl)),
        }
        true
    }

    pub(super) fn clear(&self) {
        for index in 0..self.shards.len() {
            let mut shard = self.write(index);
            let charge: usize = shard
                .map
                .iter()
                .map(|(key, slot)| Slot::charge(key, &slot.value))
                .sum();
            self.entries.fetch_sub(shard.map.len(), Ordering::Relaxed);
            self.bytes.fetch_sub(charge, Ordering::Relaxed);
            shard.map.clear();
            shard.hand = 0;
        }
    }

    pub(super) fn delete_pattern(&self, pattern: &str) -> u64 {
        let now = Instant::now();
        let mut deleted = 0;
        for index in 0..self.shards.len() {
            let mut shard = self.write(index);
            let mut i = 0;
            while let Some((key, slot)) = shard.map.get_index(i) {
                if crate::glob::matches(pattern, key) {
                    deleted += u64::from(slot.is_live(now));
                    // The last entry moves into `i`: look at `i` again.
                    self.remove_at(&mut shard, i);
                } else {
                    i += 1;
                }
            }
        }
        deleted
    }

    pub(super) fn remove_at(&self, shard: &mut Shard, index: usize) {
        if let Some((key, slot)) = shard.map.swap_remove_index(index) {
            self.entries.fetch_sub(1, Ordering::Relaxed);
            self.bytes
                .fetch_sub(Slot::charge(&key, &slot.value), Ordering::Relaxed);
        }
    }
}
