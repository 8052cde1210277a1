//! The embedded in-process store.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use foldhash::fast::RandomState;
use indexmap::IndexMap;
use tokio::time::Instant;

use super::{LocalStore, LocalValue, Store, StoreError, StoreFuture, Ttl, ready};

/// Bytes charged for each entry on top of its key and value: the map slot, the expiry and the
/// reference bit, rounded up. It keeps a flood of tiny entries within `max_bytes` too.
const ENTRY_OVERHEAD: usize = 64;
/// Default bound on the number of entries.
const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// Default bound on the total size of keys, values and overhead.
const DEFAULT_MAX_BYTES: usize = 64 << 20;
/// Fewest entries a shard is sized for; smaller stores get fewer shards, down to one, so that
/// eviction order stays close to exact LRU.
const MIN_ENTRIES_PER_SHARD: usize = 16;
const MAX_SHARDS: usize = 64;

/// The embedded default store: a bounded, sharded map in this process.
///
/// - **Bounded** by entry count ([`max_entries`](MemoryStoreBuilder::max_entries)) and by bytes
///   ([`max_bytes`](MemoryStoreBuilder::max_bytes); keys, values and 64 bytes of bookkeeping per
///   entry). A write that goes over either bound evicts other entries until both hold.
/// - **Eviction** follows the CLOCK approximation of least-recently-used: an entry read, or
///   overwritten, since the eviction hand last passed it is skipped once; an expired entry is
///   never skipped. The hand does not search for expired entries, so a live entry it reaches
///   first, unused since its last pass, may go before an expired one further on. `touch` and
///   `has_key` do not count as use, as in Django.
/// - **Expiry** is per entry and follows [tokio's clock](tokio::time::Instant), so
///   `tokio::time::pause()` and `advance()` expire entries in tests without sleeping. Expired
///   entries are invisible at once and their memory is reclaimed by the next writes that pass
///   them.
/// - **Atomic** `add` and `incr`: each runs under its shard's write lock. No lock is held across
///   an `.await`; every operation completes synchronously.
///
/// `MemoryStore` is a cheap handle: clones share the same entries. Each store built with
/// [`new`](MemoryStore::new) or [`builder`](MemoryStore::builder) is its own namespace, and
/// [`clear`](Store::clear) empties only it.
///
/// # Example
///
/// ```
/// use axum_cache::{Cache, store::MemoryStore};
///
/// let store = MemoryStore::builder()
///     .max_entries(10_000)
///     .max_bytes(32 << 20)
///     .build();
/// let cache = Cache::new(store);
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

/// Configures a [`MemoryStore`]; made by [`MemoryStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MemoryStoreBuilder {
    max_entries: usize,
    max_bytes: usize,
}

struct Inner {
    shards: Box<[RwLock<Shard>]>,
    /// Picks the shard. Seeded apart from the maps' own hashers so that a shard's keys do not
    /// all share the low hash bits its map indexes by.
    shard_hasher: RandomState,
    max_entries: usize,
    max_bytes: usize,
    entries: AtomicUsize,
    bytes: AtomicUsize,
}

struct Shard {
    map: IndexMap<Box<str>, Slot, RandomState>,
    /// Position of the CLOCK hand among the map's indices.
    hand: usize,
}

struct Slot {
    value: Value,
    expires_at: Option<Instant>,
    /// Set when the entry is used; the eviction hand clears it and spares the entry once.
    referenced: AtomicBool,
}

/// What a slot holds: bytes from the [`Store`] API, or an object from the [`LocalStore`] API.
enum Value {
    Bytes(Bytes),
    Object { object: LocalValue, size: usize },
}

impl Value {
    fn size(&self) -> usize {
        match self {
            Value::Bytes(bytes) => bytes.len(),
            Value::Object { size, .. } => *size,
        }
    }
}

impl Slot {
    fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }

    fn charge(key: &str, value: &Value) -> usize {
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

impl MemoryStore {
    /// A store with the default bounds: 100,000 entries and 64 MiB.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Starts configuring a store.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// Number of entries held, including expired ones whose memory has not been reclaimed yet.
    pub fn entry_count(&self) -> usize {
        self.inner.entries.load(Ordering::Relaxed)
    }

    /// Bytes charged against [`max_bytes`](MemoryStoreBuilder::max_bytes): keys, values and
    /// bookkeeping of every entry held.
    pub fn size_bytes(&self) -> usize {
        self.inner.bytes.load(Ordering::Relaxed)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.entry_count())
            .field("bytes", &self.size_bytes())
            .field("max_entries", &self.inner.max_entries)
            .field("max_bytes", &self.inner.max_bytes)
            .field("shards", &self.inner.shards.len())
            .finish()
    }
}

impl MemoryStoreBuilder {
    /// The most entries the store holds (default 100,000). Values below 1 are raised to 1.
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries.max(1);
        self
    }

    /// The most bytes the store holds, counting keys, values and 64 bytes of bookkeeping per
    /// entry (default 64 MiB). A single entry larger than this is refused with
    /// [`StoreError::ValueTooLarge`].
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        let parallelism = std::thread::available_parallelism().map_or(1, usize::from);
        let mut shards = (parallelism * 4).next_power_of_two().min(MAX_SHARDS);
        while shards > 1 && self.max_entries / shards < MIN_ENTRIES_PER_SHARD {
            shards /= 2;
        }
        let shards = (0..shards)
            .map(|_| {
                RwLock::new(Shard {
                    map: IndexMap::with_hasher(RandomState::default()),
                    hand: 0,
                })
            })
            .collect();
        MemoryStore {
            inner: Arc::new(Inner {
                shards,
                shard_hasher: RandomState::default(),
                max_entries: self.max_entries,
                max_bytes: self.max_bytes,
                entries: AtomicUsize::new(0),
                bytes: AtomicUsize::new(0),
            }),
        }
    }
}

/// What a write does when the key already holds a live value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Overwrite,
    OnlyIfAbsent,
}

impl Inner {
    fn shard_index(&self, key: &str) -> usize {
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

    fn write(&self, index: usize) -> RwLockWriteGuard<'_, Shard> {
        self.lock(index)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn over_budget(&self) -> bool {
        self.entries.load(Ordering::Relaxed) > self.max_entries
            || self.bytes.load(Ordering::Relaxed) > self.max_bytes
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

    fn get(&self, key: &str) -> Option<Bytes> {
        self.read_live(key, |value| match value {
            Value::Bytes(bytes) => Some(bytes.clone()),
            Value::Object { .. } => None,
        })
    }

    fn get_object(&self, key: &str) -> Option<LocalValue> {
        self.read_live(key, |value| match value {
            Value::Object { object, .. } => Some(Arc::clone(object)),
            Value::Bytes(_) => None,
        })
    }

    fn has_key(&self, key: &str) -> bool {
        let shard = self.read(self.shard_index(key));
        shard
            .map
            .get(key)
            .is_some_and(|slot| slot.is_live(Instant::now()))
    }

    fn insert(&self, key: &str, value: Value, ttl: Ttl, mode: Mode) -> Result<bool, StoreError> {
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

    fn delete(&self, key: &str) -> bool {
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

    fn incr(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
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

    fn touch(&self, key: &str, ttl: Ttl) -> bool {
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

    fn clear(&self) {
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

    fn delete_pattern(&self, pattern: &str) -> u64 {
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

    fn remove_at(&self, shard: &mut Shard, index: usize) {
        if let Some((key, slot)) = shard.map.swap_remove_index(index) {
            self.entries.fetch_sub(1, Ordering::Relaxed);
            self.bytes
                .fetch_sub(Slot::charge(&key, &slot.value), Ordering::Relaxed);
        }
    }

    /// Evicts from `shard` until the store is within its bounds or only `keep` is left.
    fn evict(&self, shard: &mut Shard, keep: Option<&str>, now: Instant) {
        while self.over_budget() {
            match shard.victim(keep, now) {
                Some(index) => self.remove_at(shard, index),
                None => break,
            }
        }
    }

    /// Evicts from the other shards when the one written could not make room by itself. Takes
    /// one shard lock at a time.
    fn evict_elsewhere(&self, written: usize, now: Instant) {
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

impl Store for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        ready(Ok(self.inner.get(key)))
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Bytes>>> {
        ready(Ok(keys.iter().map(|key| self.inner.get(key)).collect()))
    }

    fn set<'a>(&'a self, key: &'a str, value: Bytes, ttl: Ttl) -> StoreFuture<'a, ()> {
        ready(
            self.inner
                .insert(key, Value::Bytes(value), ttl, Mode::Overwrite)
                .map(drop),
        )
    }

    fn set_many<'a>(
        &'a self,
        entries: Vec<(String, Bytes)>,
        ttl: Ttl,
    ) -> StoreFuture<'a, Vec<String>> {
        let failed = entries
            .into_iter()
            .filter_map(|(key, value)| {
                self.inner
                    .insert(&key, Value::Bytes(value), ttl, Mode::Overwrite)
                    .is_err()
                    .then_some(key)
            })
            .collect();
        ready(Ok(failed))
    }

    fn add<'a>(&'a self, key: &'a str, value: Bytes, ttl: Ttl) -> StoreFuture<'a, bool> {
        ready(
            self.inner
                .insert(key, Value::Bytes(value), ttl, Mode::OnlyIfAbsent),
        )
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        ready(Ok(self.inner.delete(key)))
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, u64> {
        let deleted = keys.iter().filter(|key| self.inner.delete(key)).count();
        ready(Ok(deleted as u64))
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> StoreFuture<'a, i64> {
        ready(self.inner.incr(key, delta))
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Ttl) -> StoreFuture<'a, bool> {
        ready(Ok(self.inner.touch(key, ttl)))
    }

    fn has_key<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        ready(Ok(self.inner.has_key(key)))
    }

    fn clear(&self) -> StoreFuture<'_, ()> {
        self.inner.clear();
        ready(Ok(()))
    }

    fn as_local(&self) -> Option<&dyn LocalStore> {
        Some(self)
    }

    fn delete_pattern<'a>(&'a self, pattern: &'a str) -> StoreFuture<'a, u64> {
        ready(Ok(self.inner.delete_pattern(pattern)))
    }
}

impl LocalStore for MemoryStore {
    fn get_object(&self, key: &str) -> Option<LocalValue> {
        self.inner.get_object(key)
    }

    fn set_object(
        &self,
        key: &str,
        object: LocalValue,
        size: usize,
        ttl: Ttl,
    ) -> Result<(), StoreError> {
        self.inner
            .insert(key, Value::Object { object, size }, ttl, Mode::Overwrite)
            .map(drop)
    }

    fn get_bytes(&self, key: &str) -> Option<Bytes> {
        self.inner.get(key)
    }

    fn add_bytes(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool, StoreError> {
        self.inner
            .insert(key, Value::Bytes(value), ttl, Mode::OnlyIfAbsent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
