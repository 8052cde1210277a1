//! Writing what the update step decided to store: at once into an in-process store, in a
//! bounded background task into a remote one, then releasing the requests that wait for it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::entry::{self, Record};
use super::flight::PageLeader;
use super::stats::Event;
use super::{Config, Pending};
use crate::log::PageSpan;
use crate::stampede::HeldLock;
use crate::store::{LocalValue, Ttl};

/// What waits on a write: the waiters of this page's flight and the lock held for other
/// processes. Both are released when the write is done (or dropped with it when it fails).
#[derive(Default)]
pub(super) struct Waiting {
    leader: Option<PageLeader>,
    lock: Option<HeldLock>,
}

impl Waiting {
    pub(super) fn take(pending: &mut Pending) -> Waiting {
        Waiting {
            leader: pending.leader.take(),
            lock: pending.lock.take(),
        }
    }

    /// Releases the waiters: a stored page is there to be found; after a failed write they go
    /// to the origin themselves, and the page skips coalescing for a while.
    pub(super) fn done(self, stored: bool, pass: Duration) {
        if let Some(leader) = self.leader {
            if stored {
                leader.stored();
            } else {
                leader.not_storable(pass);
            }
        }
        drop(self.lock);
    }
}

impl Config {
    /// Writes records: at once into an in-process store, in a bounded background task into a
    /// remote one, then releases whoever waits on them. Failures are counted and logged, never
    /// raised. `path` names the page in diagnostics; `span` is its request's.
    pub(super) fn write(
        &self,
        path: &str,
        span: &PageSpan,
        writes: Vec<(String, Record, Duration)>,
        waiting: Waiting,
    ) {
        // The body ended outside the request's span: its diagnostics belong to the request.
        let _entered = span.enter();
        for (key, _, ttl) in &writes {
            crate::log::page_stored(path, key, *ttl);
        }
        // The keys of the stored entry's tags must exist for the entry to count as valid; a
        // missing one is created as `tag_birth` says.
        let tag_keys: Vec<(String, Bytes)> = writes
            .iter()
            .filter_map(|(_, record, _)| match record {
                Record::Entry(entry) => Some(entry),
                Record::Variants(_) => None,
            })
            .flat_map(|entry| self.cache.tag_births(&entry.tags, entry.started_micros))
            .collect();
        let pass = self.pass_timeout;
        if let Some(local) = self.local() {
            let mut stored = true;
            for (key, birth) in &tag_keys {
                if let Err(error) = local.add_bytes(key, birth.clone(), None) {
                    self.cache
                        .note_store_error_at("add", Some(path), key, &error);
                    stored = false;
                }
            }
            for (key, record, ttl) in writes {
                let (object, size): (LocalValue, usize) = match record {
                    Record::Entry(entry) => {
                        let size = entry.size();
                        (entry, size)
                    }
                    Record::Variants(variants) => {
                        let size = variants.size();
                        (Arc::new(variants), size)
                    }
                };
                if let Err(error) = local.set_object(&key, object, size, Some(ttl)) {
                    self.cache
                        .note_store_error_at("set", Some(path), &key, &error);
                    stored = false;
                }
            }
            self.count(Event::Written(stored));
            waiting.done(stored, pass);
            return;
        }
        let mut encoded: Vec<(String, Bytes, Ttl)> = Vec::with_capacity(writes.len());
        for (key, record, ttl) in writes {
            match entry::encode(&record) {
                Ok(bytes) => encoded.push((key, bytes, Some(ttl))),
                Err(too_large) => {
                    crate::log::unencodable(path, &key, &too_large);
                    self.count(Event::Written(false));
                    waiting.done(false, pass);
                    return;
                }
            }
        }
        let cache = self.cache.clone();
        let path = path.to_owned();
        let (counters, name) = (
            Arc::clone(&self.counters),
            Arc::clone(&self.cache_status_name),
        );
        let written = move |ok: bool| counters.event(Event::Written(ok), &name);
        // If the write is skipped or stopped, `waiting` is dropped with it: the waiters look
        // again (and one of them leads), and the page is not marked as not storable.
        self.background.spawn(span.clone().instrument(async move {
            for (key, birth) in tag_keys {
                if let Err(error) = cache.store().add(&key, birth, None).await {
                    cache.note_store_error_at("add", Some(&path), &key, &error);
                    written(false);
                    waiting.done(false, pass);
                    return;
                }
            }
            for (key, bytes, ttl) in encoded {
                if let Err(error) = cache.store().set(&key, bytes, ttl).await {
                    cache.note_store_error_at("set", Some(&path), &key, &error);
                    written(false);
                    waiting.done(false, pass);
                    return;
                }
            }
            written(true);
            waiting.done(true, pass);
        }));
    }
}
