//! Walking the keyspace with `SCAN` on every primary: pattern deletes, clearing the prefix, and
//! flushing the database.

use fred::interfaces::ClusterInterface;
use fred::prelude::{ClientLike, Key, KeysInterface, Server, Value};
use fred::types::{ClusterHash, CustomCommand};

use super::RedisStore;
use super::command::fred;
use super::reply::{bytes_reply, unexpected};
use crate::store::StoreError;

/// Keys asked for per `SCAN` page, and so deleted per `UNLINK` batch.
const SCAN_COUNT: u32 = 1000;

impl RedisStore {
    /// Removes every key of this store that matches the glob `pattern` (Redis `MATCH` syntax:
    /// `*`, `?`, `[abc]`, `\` to escape), applied to the key after the prefix, and returns how
    /// many were removed.
    ///
    /// **Expensive:** Redis has no index by pattern, so this walks every key of the database
    /// (of every primary, in a cluster) with `SCAN`, a page of 1,000 at a time, and `UNLINK`s
    /// the matches page by page. It never blocks Redis the way `KEYS` would, but it takes time
    /// proportional to the whole database, not to the matches. Keys written during the walk may
    /// survive it. Each page is bounded by the command timeout; a failure part-way leaves the
    /// keys removed so far removed.
    ///
    /// Keys reach the store already made by a [`Cache`](crate::Cache) (`{key_prefix}:{version}:{key}`
    /// by default), so a pattern for the cache key `user:*` at version 1 with no key prefix is
    /// `":1:user:*"`.
    pub async fn delete_pattern(&self, pattern: &str) -> Result<u64, StoreError> {
        let mut full = crate::glob::escape(&self.inner.prefix);
        full.push(':');
        full.push_str(pattern);
        self.scan_unlink(full).await
    }

    /// Empties the whole Redis database (`FLUSHDB ASYNC`; on every primary of a cluster),
    /// including keys of other prefixes and of other applications. Django's `clear()` does this;
    /// [`clear`](crate::store::Store::clear) removes only this store's prefix.
    pub async fn flush_db(&self) -> Result<(), StoreError> {
        let command = || CustomCommand::new_static("FLUSHDB", ClusterHash::Random, false);
        for node in self.nodes()? {
            let client = self.client_for(node);
            let _: Value = self
                .run(fred(client.custom(command(), vec![Value::from("ASYNC")])))
                .await?;
        }
        Ok(())
    }

    /// The primaries to walk: `None` (whichever server) for a single server, every primary of
    /// a cluster.
    fn nodes(&self) -> Result<Vec<Option<Server>>, StoreError> {
        if !self.clustered() {
            return Ok(vec![None]);
        }
        let routing = self.inner.pool.cached_cluster_state().ok_or_else(|| {
            StoreError::Unavailable("the cluster's layout is not known yet".to_owned())
        })?;
        Ok(routing
            .unique_primary_nodes()
            .into_iter()
            .map(Some)
            .collect())
    }

    /// `SCAN`s every primary for `pattern` and `UNLINK`s each page of matches.
    async fn scan_unlink(&self, pattern: String) -> Result<u64, StoreError> {
        let mut removed = 0;
        for node in self.nodes()? {
            let client = self.client_for(node);
            let mut cursor = "0".to_owned();
            loop {
                let page: Value = self
                    .run(fred(client.scan_page(
                        cursor.clone(),
                        pattern.clone(),
                        Some(SCAN_COUNT),
                        None,
                    )))
                    .await?;
                let (next, keys) = scan_reply(page)?;
                removed += self.unlink(keys).await?;
                if next == "0" {
                    break;
                }
                cursor = next;
            }
        }
        Ok(removed)
    }
}

/// A `SCAN` reply: the next cursor and the page of keys.
fn scan_reply(reply: Value) -> Result<(String, Vec<Key>), StoreError> {
    let Value::Array(parts) = reply else {
        return Err(unexpected("SCAN", &reply));
    };
    let mut parts = parts.into_iter();
    let (Some(cursor), Some(Value::Array(keys)), None) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(StoreError::Backend("malformed SCAN reply".into()));
    };
    let cursor = match bytes_reply(cursor)? {
        Some(cursor) => String::from_utf8_lossy(&cursor).into_owned(),
        None => return Err(StoreError::Backend("SCAN returned no cursor".into())),
    };
    let keys = keys
        .into_iter()
        .map(|key| match bytes_reply(key)? {
            Some(key) => Ok(Key::from(key)),
            None => Err(StoreError::Backend("SCAN returned a nil key".into())),
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((cursor, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_escaped() {
        assert_eq!(crate::glob::escape("app"), "app");
        assert_eq!(crate::glob::escape(r"a*b?c[d]\e"), r"a\*b\?c\[d\]\\e");
    }

    #[test]
    fn scan_replies_parse_strictly() {
        assert!(scan_reply(Value::Array(vec![Value::from("0")])).is_err());
        let (cursor, keys) = scan_reply(Value::Array(vec![
            Value::from("17"),
            Value::Array(vec![Value::from("k")]),
        ]))
        .unwrap();
        assert_eq!((cursor.as_str(), keys.len()), ("17", 1));
    }
}
