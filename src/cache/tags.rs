//! Tagged values: each carries its tags and when its computation started, and a tag's
//! invalidation time makes every value computed before it a miss.

use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;

use super::{Cache, encode};
use crate::util::now_micros;
use crate::{Error, codec};

impl Cache {
    /// The same cache, writing every value with these tags, so that
    /// [`invalidate_tag`](Cache::invalidate_tag) can make them all misses at once. Reads through
    /// any handle check the tags of what they find.
    ///
    /// A tagged value carries its tags in front of it, so it is no longer decimal text:
    /// [`incr`](Cache::incr) on an integer written through a tagged handle fails with
    /// [`Error::NotAnInteger`]. Keep counters untagged.
    ///
    /// ```
    /// # use axum_cache::{Cache, Timeout, store::MemoryStore};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), axum_cache::Error> {
    /// let cache = Cache::new(MemoryStore::new());
    /// cache.with_tags(["articles"]).set("article:1", "Hello", Timeout::Never).await?;
    /// cache.with_tags(["articles"]).set("article:2", "World", Timeout::Never).await?;
    /// cache.invalidate_tag("articles").await?;
    /// assert_eq!(cache.get::<String>("article:1").await?, None);
    /// assert_eq!(cache.get::<String>("article:2").await?, None);
    /// # Ok(()) }
    /// ```
    pub fn with_tags<I, T>(&self, tags: I) -> Cache
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let tags: Arc<[String]> = tags.into_iter().map(Into::into).collect();
        Cache {
            shared: Arc::clone(&self.shared),
            version: self.version,
            tags: (!tags.is_empty()).then_some(tags),
        }
    }

    /// Makes every value and page written with `tag` (through any cache sharing this store and
    /// key prefix, in any process) a miss from now on. Costs one write, however many entries
    /// carry the tag.
    ///
    /// Entries remember when their computation started; the tag remembers when it was last
    /// invalidated. An entry is served only if it started after that, so a value computed by
    /// [`get_or_set`](Cache::get_or_set), [`fragment`](Cache::fragment) or a page before an
    /// invalidation and stored after it is still a miss. ([`set`](Cache::set) counts from the
    /// write. Across machines this relies on their clocks agreeing to within the time a
    /// computation takes.)
    pub async fn invalidate_tag(&self, tag: &str) -> Result<(), Error> {
        let key = self.tag_store_key(tag);
        let now = Bytes::from(now_micros().to_string());
        self.shared
            .store
            .set(&key, now, None)
            .await
            .map_err(|error| {
                self.note_store_error("set", &key, &error);
                Error::Store(error)
            })
    }

    /// Whether stored bytes are a live value: untagged, or with every tag still current.
    /// `None` when the tags could not be checked.
    pub(super) async fn live(&self, bytes: &[u8]) -> Option<bool> {
        match codec::unwrap(bytes) {
            Ok(Some((tagged, _))) => self.tags_current(&tagged.tags, tagged.started_micros).await,
            // Untagged, or a damaged envelope that decoding will reject.
            Ok(None) | Err(_) => Some(true),
        }
    }

    /// Whether the value stored under `store_key` is live; one whose tag was invalidated is
    /// deleted on the way. Tags that cannot be checked count as not live (a miss), without a
    /// delete.
    pub(super) async fn live_or_evict(&self, store_key: &str, bytes: &[u8]) -> bool {
        match self.live(bytes).await {
            Some(true) => true,
            Some(false) => {
                self.evict(store_key).await;
                false
            }
            None => false,
        }
    }

    pub(super) async fn evict(&self, store_key: &str) {
        if let Err(error) = self.shared.store.delete(store_key).await {
            self.note_store_error("delete", store_key, &error);
        }
    }

    /// Creates the keys of the tags a new entry carries, where missing; see [`tag_birth`].
    pub(super) async fn register_tags(
        &self,
        tags: &[String],
        started_micros: u64,
    ) -> Result<(), Error> {
        for tag in tags {
            let key = self.tag_store_key(tag);
            if let Err(error) = self
                .shared
                .store
                .add(&key, tag_birth(started_micros), None)
                .await
            {
                self.note_store_error("add", &key, &error);
                return Err(Error::Store(error));
            }
        }
        Ok(())
    }

    /// Encodes a value, wrapped with this handle's tags (registering them) if it has any.
    pub(super) async fn encode_value<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        started_micros: u64,
    ) -> Result<Bytes, Error> {
        let inner = encode(key, value)?;
        let Some(tags) = &self.tags else {
            return Ok(inner);
        };
        let tagged = codec::Tagged {
            tags: tags.to_vec(),
            started_micros,
        };
        let wrapped = codec::wrap(&tagged, &inner).map_err(|reason| Error::Encode {
            key: key.to_owned(),
            reason,
        })?;
        self.register_tags(tags, started_micros).await?;
        Ok(wrapped)
    }
}

/// The value a missing tag key is created with by an entry whose computation started at
/// `started_micros`: "invalidated just before". A tag key goes missing only by eviction (or
/// `clear`), which counts as an invalidation, so every entry computed earlier stays dead, even
/// once a new entry brings the key back; the new entry itself is live.
pub(crate) fn tag_birth(started_micros: u64) -> Bytes {
    Bytes::from(started_micros.saturating_sub(1).to_string())
}

/// Whether a tag's stored invalidation time (`None`: the tag key is gone) allows an entry whose
/// computation started at `started_micros`.
pub(crate) fn tag_allows(invalidated: Option<&[u8]>, started_micros: u64) -> bool {
    invalidated
        .and_then(|time| std::str::from_utf8(time).ok())
        .and_then(|time| time.parse::<u64>().ok())
        .is_some_and(|invalidated| invalidated < started_micros)
}
