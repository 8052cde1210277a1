//! The error types: [`Error`] of the typed cache API, and [`StoreError`] of the stores under it.

/// Why a [`Cache`](crate::Cache) or [`Caches`](crate::Caches) operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `incr`, `decr` or `incr_version` on a key that is missing or expired.
    #[error("key {key:?} not found")]
    NotFound {
        /// The key as the caller gave it.
        key: String,
    },
    /// `incr` or `decr` on a value that is not an integer.
    #[error("the value under {key:?} is not an integer")]
    NotAnInteger {
        /// The key as the caller gave it.
        key: String,
    },
    /// `incr`, `decr` or `incr_version` would leave the range of `i64`.
    #[error("changing {key:?} would overflow")]
    Overflow {
        /// The key as the caller gave it.
        key: String,
    },
    /// The value could not be serialized.
    #[error("cannot encode the value for {key:?}: {reason}")]
    Encode {
        /// The key as the caller gave it.
        key: String,
        /// What the serializer reported.
        reason: String,
    },
    /// The store failed (unreachable, timed out, value too large, …). With
    /// [`ignore_errors`](crate::CacheBuilder::ignore_errors) most operations report a miss
    /// instead.
    #[error("cache store failed: {0}")]
    Store(#[from] StoreError),
    /// [`Caches::get`](crate::Caches::get) with a name that is not configured.
    #[error("the cache {0:?} does not exist")]
    UnknownCache(String),
    /// A cache URL or setting is invalid.
    #[error("invalid cache configuration: {0}")]
    Config(String),
}

impl Error {
    /// Turns a store error from an operation on `key` into the matching variant.
    pub(crate) fn from_store(key: &str, error: StoreError) -> Self {
        let key = key.to_owned();
        match error {
            StoreError::NotFound => Error::NotFound { key },
            StoreError::NotAnInteger => Error::NotAnInteger { key },
            StoreError::Overflow => Error::Overflow { key },
            other => Error::Store(other),
        }
    }
}

/// Why a [`Store`](crate::store::Store) operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// [`Store::incr`](crate::store::Store::incr) on a key that is missing or expired.
    #[error("key not found")]
    NotFound,
    /// [`Store::incr`](crate::store::Store::incr) on a value that is not an integer in ASCII decimal.
    #[error("the stored value is not an integer")]
    NotAnInteger,
    /// [`Store::incr`](crate::store::Store::incr) would leave the range of `i64`.
    #[error("integer overflow")]
    Overflow,
    /// The value is larger than the store accepts. Any value previously stored under the key has
    /// been removed, so a stale value cannot outlive a failed write.
    #[error("value of {size} bytes exceeds the store's limit of {limit} bytes")]
    ValueTooLarge {
        /// Size of the rejected entry in bytes.
        size: usize,
        /// The most the store accepts.
        limit: usize,
    },
    /// The store did not answer in time.
    #[error("the store timed out")]
    Timeout,
    /// The store is unreachable, or is being skipped after repeated failures.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The store cannot do this operation.
    #[error("the store does not support {0}")]
    Unsupported(&'static str),
    /// Any other failure of the backend.
    #[error("store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}
