//! Template fragments: Django's `{% cache %}` over [`Cache::get_or_set`].

use std::future::Future;

use super::Cache;
use crate::{Error, Timeout};

/// A vary-on value of a fragment: anything displayable (and shareable between threads, so that
/// the futures of handlers that pass them stay `Send`).
pub type VaryOn = dyn std::fmt::Display + Sync;

impl Cache {
    /// The key of a template fragment: Django's `make_template_fragment_key`, without its
    /// ambiguity. The vary-on values are hashed (SHA-256) length-prefixed, so `["a:b"]` and
    /// `["a", "b"]` get different keys.
    ///
    /// ```
    /// # use axum_cache::Cache;
    /// let key = Cache::fragment_key("sidebar", &[&"ada", &42]);
    /// assert!(key.starts_with("template.cache.sidebar."));
    /// assert_ne!(Cache::fragment_key("f", &[&"a:b"]), Cache::fragment_key("f", &[&"a", &"b"]));
    /// ```
    pub fn fragment_key(name: &str, vary_on: &[&VaryOn]) -> String {
        use sha2::{Digest, Sha256};
        let mut digest = Sha256::new();
        for value in vary_on {
            let text = value.to_string();
            digest.update((text.len() as u64).to_be_bytes());
            digest.update(text.as_bytes());
        }
        let mut key = format!("template.cache.{name}.");
        crate::util::push_hex(&mut key, &digest.finalize());
        key
    }

    /// A rendered fragment of a page (Django's `{% cache %}`): the cached text for `name` and
    /// the `vary_on` values, or `render`'s result, stored for `timeout`. Single-flight like
    /// [`get_or_set`](Cache::get_or_set); tagged like any write through
    /// [`with_tags`](Cache::with_tags).
    ///
    /// ```
    /// # use axum_cache::{Cache, Timeout, store::MemoryStore};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), axum_cache::Error> {
    /// let cache = Cache::new(MemoryStore::new());
    /// let user = "ada";
    /// let sidebar = cache
    ///     .fragment("sidebar", &[&user], Timeout::secs(500), || async move {
    ///         format!("<aside>Hello {user}</aside>")
    ///     })
    ///     .await?;
    /// assert_eq!(sidebar, "<aside>Hello ada</aside>");
    /// # Ok(()) }
    /// ```
    pub fn fragment<'a, F, Fut>(
        &'a self,
        name: &str,
        vary_on: &[&VaryOn],
        timeout: Timeout,
        render: F,
    ) -> impl Future<Output = Result<String, Error>> + use<'a, F, Fut>
    where
        F: FnOnce() -> Fut + 'a,
        Fut: Future<Output = String> + 'a,
    {
        // The key is made now, so that the future does not borrow the values.
        let key = Cache::fragment_key(name, vary_on);
        async move { self.get_or_set(&key, timeout, render).await }
    }

    /// Deletes the cached fragment for `name` and `vary_on`; returns whether there was one.
    pub fn invalidate_fragment<'a>(
        &'a self,
        name: &str,
        vary_on: &[&VaryOn],
    ) -> impl Future<Output = Result<bool, Error>> + use<'a> {
        let key = Cache::fragment_key(name, vary_on);
        async move { self.delete(&key).await }
    }
}
