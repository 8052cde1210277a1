//! The part of [`Cache`] that the rest of the crate (the response cache) uses beyond the public
//! API: store keys built in one buffer, the digests of request values, tag checks and the count
//! of store errors. The other files of this module keep their helpers to themselves.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::Cache;
use super::tags::{tag_allows, tag_birth};
use crate::key::{self, Digester};
use crate::stampede::Stampede;
use crate::store::{LocalStore, StoreError};

impl Cache {
    /// What makes the digests that stand for request values in page keys and stored pages.
    pub(crate) fn digester(&self) -> &Digester {
        &self.shared.digester
    }

    /// `prefix:version:`, what the default key function puts before every key; `None` with a
    /// custom key function.
    pub(crate) fn default_key_head(&self) -> Option<String> {
        if self.shared.key_fn.is_some() {
            return None;
        }
        let mut head = String::with_capacity(self.shared.key_prefix.len() + 8);
        key::push_default_head(&mut head, &self.shared.key_prefix, self.version);
        Some(head)
    }

    /// The store key for the key that `push` writes, built in one buffer when the default key
    /// function is in use. `verbatim` skips the digest, for in-process stores, which hold keys
    /// of any length and content.
    pub(crate) fn store_key_with(&self, verbatim: bool, push: impl FnOnce(&mut String)) -> String {
        let full = match &self.shared.key_fn {
            Some(key_fn) => {
                let mut key = String::new();
                push(&mut key);
                key_fn(&key, &self.shared.key_prefix, self.version)
            }
            None => {
                let mut full = String::with_capacity(self.shared.key_prefix.len() + 96);
                key::push_default_head(&mut full, &self.shared.key_prefix, self.version);
                push(&mut full);
                full
            }
        };
        if verbatim {
            full
        } else {
            key::store_safe(full)
        }
    }

    /// Counts and logs a store failure about the page at URL path `path`, if any.
    pub(crate) fn note_store_error_at(
        &self,
        operation: &'static str,
        path: Option<&str>,
        key: &str,
        error: &StoreError,
    ) {
        self.shared.store_errors.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("axum_cache_store_errors_total", "operation" => operation).increment(1);
        crate::log::store_failure(operation, path, key, error);
    }

    /// The store key holding the last invalidation time of `tag`: the tag through the key
    /// function (so under this cache's prefix, whatever the handle's version), in the crate's
    /// own key space.
    pub(crate) fn tag_store_key(&self, tag: &str) -> String {
        key::internal_key("tag", &self.full_key(tag, 0))
    }

    /// Whether an entry with `tags`, whose computation started at `started_micros`, is still
    /// valid: each tag's key exists (it is created with an entry and an eviction counts as an
    /// invalidation) and was last invalidated before the entry's computation started. `None` when the store failed: the
    /// entry cannot be used now, but it is not known to be dead either.
    pub(crate) async fn tags_current(&self, tags: &[String], started_micros: u64) -> Option<bool> {
        let keys: Vec<String> = tags.iter().map(|tag| self.tag_store_key(tag)).collect();
        match self.shared.store.get_many(&keys).await {
            Ok(times) => Some(
                times
                    .iter()
                    .all(|time| tag_allows(time.as_deref(), started_micros)),
            ),
            Err(error) => {
                self.note_store_error("get_many", keys.first().map_or("", String::as_str), &error);
                None
            }
        }
    }

    /// [`tags_current`](Cache::tags_current) read from an in-process store, which answers at
    /// once and cannot fail.
    pub(crate) fn tags_current_in(
        &self,
        local: &dyn LocalStore,
        tags: &[String],
        started_micros: u64,
    ) -> bool {
        tags.iter().all(|tag| {
            let time = local.get_bytes(&self.tag_store_key(tag));
            tag_allows(time.as_deref(), started_micros)
        })
    }

    /// The records that a new entry with `tags`, whose computation started at
    /// `started_micros`, needs in the store: the key of each tag and the value to `add` there
    /// (an existing one is kept).
    pub(crate) fn tag_births<'a>(
        &'a self,
        tags: &'a [String],
        started_micros: u64,
    ) -> impl Iterator<Item = (String, Bytes)> + 'a {
        tags.iter()
            .map(move |tag| (self.tag_store_key(tag), tag_birth(started_micros)))
    }

    /// The cache's stampede settings, which its response caches start from.
    pub(crate) fn stampede(&self) -> Stampede {
        self.shared.stampede
    }
}
