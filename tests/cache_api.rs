//! Django's backend API cases through the typed `Cache` handle and a real store.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum_cache::store::{DummyStore, MemoryStore, Store, StoreError};
use axum_cache::{Cache, CacheBuilder, Error, Timeout};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use support::stores::DownStore;

fn cache() -> Cache {
    Cache::new(MemoryStore::new())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Article {
    id: u32,
    title: String,
    tags: Vec<String>,
    published: bool,
    rating: Option<f32>,
}

fn article() -> Article {
    Article {
        id: 7,
        title: "Iñtërnâtiônàlizætiøn".into(),
        tags: vec!["rust".into(), "cache".into()],
        published: true,
        rating: None,
    }
}

mod basics {
    use super::*;

    #[tokio::test]
    async fn set_then_get() {
        let cache = cache();
        cache.set("key", "value", Timeout::Default).await.unwrap();
        assert_eq!(
            cache.get::<String>("key").await.unwrap().as_deref(),
            Some("value")
        );
    }

    #[tokio::test]
    async fn a_stored_none_is_a_value_not_a_miss() {
        let cache = cache();
        cache
            .set("null", &None::<u32>, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(cache.get::<Option<u32>>("null").await.unwrap(), Some(None));
        assert_eq!(cache.get::<Option<u32>>("missing").await.unwrap(), None);
        assert!(cache.has_key("null").await.unwrap());
        let default = cache
            .get::<Option<u32>>("null")
            .await
            .unwrap()
            .unwrap_or(Some(5));
        assert_eq!(
            default, None,
            "Django: get(k, default) returns the stored None"
        );
    }

    #[tokio::test]
    async fn add_does_not_overwrite() {
        let cache = cache();
        assert!(
            cache
                .add("addkey1", "value", Timeout::Default)
                .await
                .unwrap()
        );
        assert!(
            !cache
                .add("addkey1", "newvalue", Timeout::Default)
                .await
                .unwrap()
        );
        assert_eq!(
            cache.get::<String>("addkey1").await.unwrap().as_deref(),
            Some("value")
        );
    }

    #[tokio::test]
    async fn caches_with_different_prefixes_are_isolated_on_one_store() {
        // MemoryStore is a shared handle: clones see the same entries.
        let store = MemoryStore::new();
        let plain = Cache::new(store.clone());
        let prefixed = Cache::builder(store).key_prefix("cacheprefix").build();
        plain
            .set("somekey", "value", Timeout::Default)
            .await
            .unwrap();
        assert!(!prefixed.has_key("somekey").await.unwrap());
        prefixed
            .set("somekey", "value2", Timeout::Default)
            .await
            .unwrap();
        assert_eq!(
            plain.get::<String>("somekey").await.unwrap().as_deref(),
            Some("value")
        );
        assert_eq!(
            prefixed.get::<String>("somekey").await.unwrap().as_deref(),
            Some("value2")
        );
    }

    #[tokio::test]
    async fn missing_keys_give_none() {
        assert_eq!(cache().get::<String>("does_not_exist").await.unwrap(), None);
    }

    #[tokio::test]
    async fn get_many_returns_present_keys_by_original_name() {
        let cache = cache();
        cache.set("a", "a", Timeout::Default).await.unwrap();
        cache.set("b", "b", Timeout::Default).await.unwrap();
        cache.set("c", "c", Timeout::Default).await.unwrap();
        let found: HashMap<String, String> = cache.get_many(["a", "b", "e"]).await.unwrap();
        assert_eq!(
            found,
            HashMap::from([("a".into(), "a".into()), ("b".into(), "b".into())])
        );
        let from_iterator: HashMap<String, String> = cache
            .get_many(["a", "b", "e"].iter().copied())
            .await
            .unwrap();
        assert_eq!(from_iterator.len(), 2);
        let none: HashMap<String, String> = cache.get_many(Vec::<String>::new()).await.unwrap();
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn get_many_includes_stored_nones() {
        let cache = cache();
        cache
            .set("x", &None::<i32>, Timeout::Default)
            .await
            .unwrap();
        cache.set("y", &Some(1), Timeout::Default).await.unwrap();
        let found: HashMap<String, Option<i32>> = cache.get_many(["x", "y"]).await.unwrap();
        assert_eq!(
            found,
            HashMap::from([("x".into(), None), ("y".into(), Some(1))])
        );
    }

    #[tokio::test]
    async fn delete_removes_only_that_key() {
        let cache = cache();
        cache.set("key1", "spam", Timeout::Default).await.unwrap();
        cache.set("key2", "eggs", Timeout::Default).await.unwrap();
        assert!(cache.delete("key1").await.unwrap());
        assert_eq!(cache.get::<String>("key1").await.unwrap(), None);
        assert_eq!(
            cache.get::<String>("key2").await.unwrap().as_deref(),
            Some("eggs")
        );
        assert!(
            !cache.delete("key1").await.unwrap(),
            "nothing left to delete"
        );
    }

    #[tokio::test]
    async fn has_key_sees_never_expiring_and_none_values() {
        let cache = cache();
        cache
            .set("hello1", "goodbye1", Timeout::Default)
            .await
            .unwrap();
        assert!(cache.has_key("hello1").await.unwrap());
        assert!(!cache.has_key("goodbye1").await.unwrap());
        cache
            .set("no_expiry", "here", Timeout::Never)
            .await
            .unwrap();
        assert!(cache.has_key("no_expiry").await.unwrap());
        cache.set("null", &(), Timeout::Default).await.unwrap();
        assert!(cache.has_key("null").await.unwrap());
    }

    #[tokio::test]
    async fn incr_and_decr() {
        let cache = cache();
        cache.set("answer", &41, Timeout::Default).await.unwrap();
        assert_eq!(cache.incr("answer", 1).await.unwrap(), 42);
        assert_eq!(cache.get::<i64>("answer").await.unwrap(), Some(42));
        assert_eq!(cache.incr("answer", 10).await.unwrap(), 52);
        assert_eq!(cache.incr("answer", -10).await.unwrap(), 42);
        assert_eq!(cache.decr("answer", 1).await.unwrap(), 41);
        assert_eq!(cache.decr("answer", 10).await.unwrap(), 31);
        assert_eq!(cache.decr("answer", -10).await.unwrap(), 41);
        for result in [
            cache.incr("does_not_exist", 1).await,
            cache.decr("does_not_exist", 1).await,
        ] {
            assert!(matches!(result, Err(Error::NotFound { ref key }) if key == "does_not_exist"));
        }
        assert!(
            !cache.has_key("does_not_exist").await.unwrap(),
            "incr must not create"
        );
        cache
            .set("null", &None::<i32>, Timeout::Default)
            .await
            .unwrap();
        assert!(matches!(
            cache.incr("null", 1).await,
            Err(Error::NotAnInteger { .. })
        ));
        assert!(matches!(
            cache.decr("answer", i64::MIN).await,
            Err(Error::Overflow { .. })
        ));
    }

    #[tokio::test]
    async fn data_types_round_trip() {
        let cache = cache();
        cache
            .set("article", &article(), Timeout::Default)
            .await
            .unwrap();
        assert_eq!(
            cache.get::<Article>("article").await.unwrap(),
            Some(article())
        );
        let nested = BTreeMap::from([("list".to_owned(), vec![(1u8, 'x'), (2, 'y')])]);
        cache
            .set("nested", &nested, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(cache.get("nested").await.unwrap(), Some(nested));
        cache.set("float", &1.5f64, Timeout::Default).await.unwrap();
        assert_eq!(cache.get::<f64>("float").await.unwrap(), Some(1.5));
        cache.set("bool", &false, Timeout::Default).await.unwrap();
        assert_eq!(cache.get::<bool>("bool").await.unwrap(), Some(false));
        cache.set("big", &u64::MAX, Timeout::Default).await.unwrap();
        assert_eq!(cache.get::<u64>("big").await.unwrap(), Some(u64::MAX));
    }

    #[tokio::test]
    async fn unicode_keys_and_values() {
        let cache = cache();
        let stuff = [
            ("ascii", "ascii_value".to_owned()),
            ("unicode_ascii", "Iñtërnâtiônàlizætiøn1".to_owned()),
            ("Iñtërnâtiônàlizætiøn", "Iñtërnâtiônàlizætiøn2".to_owned()),
            ("key with spaces and 清", "清".to_owned()),
        ];
        for (key, value) in &stuff {
            cache.set(key, value, Timeout::Default).await.unwrap();
            assert_eq!(
                cache.get::<String>(key).await.unwrap().as_ref(),
                Some(value)
            );
            cache.delete(key).await.unwrap();
            assert!(cache.add(key, value, Timeout::Default).await.unwrap());
            assert_eq!(
                cache.get::<String>(key).await.unwrap().as_ref(),
                Some(value)
            );
        }
        cache
            .delete_many(stuff.iter().map(|(k, _)| *k))
            .await
            .unwrap();
        assert!(
            cache
                .set_many(stuff.clone(), Timeout::Default)
                .await
                .unwrap()
                .is_empty()
        );
        for (key, value) in &stuff {
            assert_eq!(
                cache.get::<String>(key).await.unwrap().as_ref(),
                Some(value)
            );
        }
    }

    #[tokio::test]
    async fn binary_values_round_trip_typed_and_raw() {
        let cache = cache();
        let compressed: Vec<u8> = (0..=255u8).rev().chain(0..=255).collect();
        cache
            .set("binary1", &compressed, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(
            cache.get::<Vec<u8>>("binary1").await.unwrap(),
            Some(compressed.clone())
        );
        let raw = Bytes::from(compressed);
        cache
            .set_raw("raw", raw.clone(), Timeout::Default)
            .await
            .unwrap();
        assert_eq!(cache.get_raw("raw").await.unwrap(), Some(raw.clone()));
        assert!(
            !cache
                .add_raw("raw", Bytes::new(), Timeout::Default)
                .await
                .unwrap()
        );
        assert!(
            cache
                .add_raw("raw2", raw.clone(), Timeout::Default)
                .await
                .unwrap()
        );
        assert_eq!(cache.get_raw("raw2").await.unwrap(), Some(raw));
    }

    #[tokio::test]
    async fn set_many_then_get_and_delete_many() {
        let cache = cache();
        let failed = cache
            .set_many(
                [("key1", "spam"), ("key2", "eggs"), ("key3", "ham")],
                Timeout::Default,
            )
            .await
            .unwrap();
        assert!(failed.is_empty());
        assert_eq!(
            cache.get::<String>("key1").await.unwrap().as_deref(),
            Some("spam")
        );
        assert_eq!(
            cache.delete_many(["key1", "key2", "nope"]).await.unwrap(),
            2
        );
        assert_eq!(cache.get::<String>("key1").await.unwrap(), None);
        assert_eq!(
            cache.get::<String>("key3").await.unwrap().as_deref(),
            Some("ham")
        );
        assert_eq!(cache.delete_many(Vec::<&str>::new()).await.unwrap(), 0);
        let empty: [(&str, u8); 0] = [];
        assert!(
            cache
                .set_many(empty, Timeout::Default)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn set_many_reports_the_callers_keys_that_failed() {
        let cache = Cache::new(MemoryStore::builder().max_bytes(2048).build());
        let big = vec![1u8; 4096];
        let small = vec![1u8; 4];
        let failed = cache
            .set_many([("small", &small), ("big key", &big)], Timeout::Default)
            .await
            .unwrap();
        assert_eq!(failed, ["big key"]);
        assert_eq!(cache.get::<Vec<u8>>("small").await.unwrap(), Some(small));
    }

    #[tokio::test]
    async fn clear_removes_everything() {
        let cache = cache();
        cache
            .set_many([("a", 1), ("b", 2)], Timeout::Default)
            .await
            .unwrap();
        cache
            .with_version(2)
            .set("c", &3, Timeout::Default)
            .await
            .unwrap();
        cache.clear().await.unwrap();
        let found: HashMap<String, i32> = cache.get_many(["a", "b"]).await.unwrap();
        assert!(found.is_empty());
        assert!(!cache.with_version(2).has_key("c").await.unwrap());
    }
}

mod expiry {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expired_values_are_gone_and_add_can_replace_them() {
        let cache = cache();
        cache
            .set("expire1", "very quickly", Timeout::secs(1))
            .await
            .unwrap();
        cache
            .set("expire2", "very quickly", Timeout::secs(1))
            .await
            .unwrap();
        cache
            .set("expire3", "very quickly", Timeout::secs(1))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(cache.get::<String>("expire1").await.unwrap(), None);
        assert!(
            cache
                .add("expire2", "newvalue", Timeout::Default)
                .await
                .unwrap()
        );
        assert_eq!(
            cache.get::<String>("expire2").await.unwrap().as_deref(),
            Some("newvalue")
        );
        assert!(!cache.has_key("expire3").await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn the_default_timeout_is_300_seconds() {
        let cache = cache();
        assert_eq!(cache.default_timeout(), Some(Duration::from_secs(300)));
        cache.set("k", &1, Timeout::Default).await.unwrap();
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(cache.has_key("k").await.unwrap());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!cache.has_key("k").await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_never_default_timeout_keeps_values() {
        let cache = Cache::builder(MemoryStore::new())
            .default_timeout(Timeout::Never)
            .build();
        assert_eq!(cache.default_timeout(), None);
        cache.set("k", &1, Timeout::Default).await.unwrap();
        tokio::time::advance(Duration::from_secs(365 * 24 * 3600)).await;
        assert!(cache.has_key("k").await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn touch_extends_or_ends_a_value() {
        let cache = cache();
        cache
            .set("expire1", "very quickly", Timeout::secs(1))
            .await
            .unwrap();
        assert!(cache.touch("expire1", Timeout::secs(4)).await.unwrap());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(cache.has_key("expire1").await.unwrap());
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(!cache.has_key("expire1").await.unwrap());

        cache
            .set("expire2", "very quickly", Timeout::secs(1))
            .await
            .unwrap();
        assert!(cache.touch("expire2", Timeout::Default).await.unwrap());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(
            cache.has_key("expire2").await.unwrap(),
            "touch() uses the default timeout"
        );

        assert!(!cache.touch("nonexistent", Timeout::Default).await.unwrap());

        cache.set("persist", &1, Timeout::secs(1)).await.unwrap();
        assert!(cache.touch("persist", Timeout::Never).await.unwrap());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(
            cache.has_key("persist").await.unwrap(),
            "touch(None) makes it persistent"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn set_many_values_expire() {
        let cache = cache();
        cache
            .set_many([("key1", "spam"), ("key2", "eggs")], Timeout::secs(1))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(cache.get::<String>("key1").await.unwrap(), None);
        assert_eq!(cache.get::<String>("key2").await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn timeouts_over_thirty_days_work() {
        let cache = cache();
        let month = Timeout::After(Duration::from_secs(30 * 24 * 3600 + 1));
        cache.set("key1", "eggs", month).await.unwrap();
        assert!(cache.add("key2", "ham", month).await.unwrap());
        cache
            .set_many([("key3", "sausage"), ("key4", "lobster bisque")], month)
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(30 * 24 * 3600)).await;
        let found: HashMap<String, String> = cache
            .get_many(["key1", "key2", "key3", "key4"])
            .await
            .unwrap();
        assert_eq!(found.len(), 4);
        tokio::time::advance(Duration::from_secs(2)).await;
        let found: HashMap<String, String> = cache
            .get_many(["key1", "key2", "key3", "key4"])
            .await
            .unwrap();
        assert!(found.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn never_means_forever() {
        let cache = cache();
        cache.set("key1", "eggs", Timeout::Never).await.unwrap();
        assert!(cache.add("key2", "ham", Timeout::Never).await.unwrap());
        assert!(!cache.add("key2", "spam", Timeout::Never).await.unwrap());
        cache
            .set_many([("key3", "x")], Timeout::Never)
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(10 * 365 * 24 * 3600)).await;
        assert_eq!(
            cache.get::<String>("key2").await.unwrap().as_deref(),
            Some("ham")
        );
        let found: HashMap<String, String> = cache.get_many(["key1", "key3"]).await.unwrap();
        assert_eq!(found.len(), 2);
    }

    #[tokio::test]
    async fn zero_and_negative_timeouts_keep_nothing() {
        let cache = cache();
        for timeout in [Timeout::secs(0), Timeout::secs(-1), Timeout::secs_f64(-0.5)] {
            cache.set("key1", "eggs", Timeout::Default).await.unwrap();
            cache.set("key1", "spam", timeout).await.unwrap();
            assert_eq!(
                cache.get::<String>("key1").await.unwrap(),
                None,
                "{timeout:?}"
            );
            assert!(cache.add("key2", "ham", timeout).await.unwrap());
            assert_eq!(cache.get::<String>("key2").await.unwrap(), None);
            cache
                .set_many([("key3", "x"), ("key4", "y")], timeout)
                .await
                .unwrap();
            let found: HashMap<String, String> = cache.get_many(["key3", "key4"]).await.unwrap();
            assert!(found.is_empty());
            cache
                .set("key5", "belgian fries", Timeout::Default)
                .await
                .unwrap();
            assert!(cache.touch("key5", timeout).await.unwrap());
            assert_eq!(cache.get::<String>("key5").await.unwrap(), None);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn float_and_huge_timeouts_are_accepted() {
        let cache = cache();
        cache
            .set("key1", "spam", Timeout::secs_f64(100.2))
            .await
            .unwrap();
        cache
            .set("key2", "eggs", Timeout::secs(i64::MAX))
            .await
            .unwrap();
        cache
            .set("key3", "ham", Timeout::secs_f64(f64::MAX))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(100)).await;
        assert!(cache.has_key("key1").await.unwrap());
        tokio::time::advance(Duration::from_millis(300)).await;
        assert!(!cache.has_key("key1").await.unwrap(), "the fraction counts");
        assert!(cache.has_key("key2").await.unwrap());
        assert!(cache.has_key("key3").await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn incr_keeps_the_expiry() {
        let cache = cache();
        cache.set("n", &1, Timeout::secs(10)).await.unwrap();
        tokio::time::advance(Duration::from_secs(6)).await;
        cache.incr("n", 1).await.unwrap();
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(cache.get::<i64>("n").await.unwrap(), None);
    }
}

mod keys {
    use super::*;

    #[tokio::test]
    async fn keys_no_store_could_hold_still_work_and_stay_distinct() {
        let cache = cache();
        let long = "a".repeat(250);
        let long_unicode = format!("{}清", "a".repeat(250));
        let just_too_long = "a".repeat(249);
        let keys = [
            "key with spaces and 清",
            "tab\tand\nnewline",
            "nul\0byte",
            long.as_str(),
            long_unicode.as_str(),
            just_too_long.as_str(),
            "#looks-hashed",
        ];
        for (i, key) in keys.iter().enumerate() {
            let made = cache.make_key(key);
            assert!(made.len() <= axum_cache::MAX_KEY_LEN, "{key:?} → {made:?}");
            assert!(!made.bytes().any(|b| b <= b' ' || b == 0x7f), "{made:?}");
            cache.set(key, &i, Timeout::Default).await.unwrap();
        }
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(cache.get::<usize>(key).await.unwrap(), Some(i), "{key:?}");
            assert!(cache.has_key(key).await.unwrap());
            assert!(cache.touch(key, Timeout::Default).await.unwrap());
        }
        let found: HashMap<String, usize> = cache.get_many(keys).await.unwrap();
        assert_eq!(found.len(), keys.len());
        assert_eq!(found[long_unicode.as_str()], 4);
        assert_eq!(cache.delete_many(keys).await.unwrap(), keys.len() as u64);
    }

    #[tokio::test]
    async fn a_key_at_the_limit_is_kept_verbatim() {
        let cache = cache();
        let key = "a".repeat(axum_cache::MAX_KEY_LEN - 3);
        assert_eq!(cache.make_key(&key), format!(":1:{key}"));
        assert_ne!(cache.make_key(&format!("{key}a")), format!(":1:{key}a"));
    }

    #[tokio::test]
    async fn custom_key_functions_separate_entries() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let custom =
            |key: &str, prefix: &str, version: i64| format!("CUSTOM-{prefix}-{version}-{key}");
        let default = CacheBuilder::from_arc(Arc::clone(&store)).build();
        let first = CacheBuilder::from_arc(Arc::clone(&store))
            .key_function(custom)
            .build();
        let second = CacheBuilder::from_arc(store).key_function(custom).build();
        first.set("answer1", &42, Timeout::Default).await.unwrap();
        assert_eq!(default.get::<i32>("answer1").await.unwrap(), None);
        assert_eq!(second.get::<i32>("answer1").await.unwrap(), Some(42));
        assert_eq!(first.make_key("k"), "CUSTOM--1-k");
    }
}

mod versions {
    use super::*;

    fn pair() -> (Cache, Cache) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let v1 = CacheBuilder::from_arc(Arc::clone(&store)).build();
        let v2 = CacheBuilder::from_arc(store).version(2).build();
        (v1, v2)
    }

    #[tokio::test]
    async fn get_and_set_per_version() {
        let (cache, v2cache) = pair();
        cache.set("answer1", &42, Timeout::Default).await.unwrap();
        assert_eq!(cache.get::<i32>("answer1").await.unwrap(), Some(42));
        assert_eq!(
            cache.with_version(1).get::<i32>("answer1").await.unwrap(),
            Some(42)
        );
        assert_eq!(
            cache.with_version(2).get::<i32>("answer1").await.unwrap(),
            None
        );
        assert_eq!(v2cache.get::<i32>("answer1").await.unwrap(), None);
        assert_eq!(
            v2cache.with_version(1).get::<i32>("answer1").await.unwrap(),
            Some(42)
        );

        cache
            .with_version(2)
            .set("answer2", &42, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(cache.get::<i32>("answer2").await.unwrap(), None);
        assert_eq!(v2cache.get::<i32>("answer2").await.unwrap(), Some(42));

        v2cache.set("answer3", &42, Timeout::Default).await.unwrap();
        assert_eq!(
            cache.with_version(2).get::<i32>("answer3").await.unwrap(),
            Some(42)
        );
        assert_eq!(cache.get::<i32>("answer3").await.unwrap(), None);
    }

    #[tokio::test]
    async fn add_has_key_delete_incr_per_version() {
        let (cache, v2cache) = pair();
        assert!(cache.add("answer1", &42, Timeout::Default).await.unwrap());
        assert!(
            cache
                .with_version(2)
                .add("answer1", &37, Timeout::Default)
                .await
                .unwrap()
        );
        assert!(!v2cache.add("answer1", &99, Timeout::Default).await.unwrap());
        assert_eq!(cache.get::<i32>("answer1").await.unwrap(), Some(42));
        assert_eq!(v2cache.get::<i32>("answer1").await.unwrap(), Some(37));
        assert!(v2cache.has_key("answer1").await.unwrap());
        assert!(!cache.with_version(3).has_key("answer1").await.unwrap());

        assert_eq!(v2cache.incr("answer1", 6).await.unwrap(), 43);
        assert_eq!(
            cache.get::<i32>("answer1").await.unwrap(),
            Some(42),
            "v1 unchanged"
        );

        assert!(cache.delete("answer1").await.unwrap());
        assert!(
            v2cache.has_key("answer1").await.unwrap(),
            "delete removes only v1"
        );
        assert!(cache.with_version(2).delete("answer1").await.unwrap());
        assert!(!v2cache.has_key("answer1").await.unwrap());
    }

    #[tokio::test]
    async fn get_many_and_set_many_per_version() {
        let (cache, v2cache) = pair();
        cache
            .set_many([("ford1", 37), ("arthur1", 42)], Timeout::Default)
            .await
            .unwrap();
        let v1: HashMap<String, i32> = cache.get_many(["ford1", "arthur1"]).await.unwrap();
        let v2: HashMap<String, i32> = v2cache.get_many(["ford1", "arthur1"]).await.unwrap();
        assert_eq!((v1.len(), v2.len()), (2, 0));
        v2cache
            .set_many([("ford2", 37)], Timeout::Default)
            .await
            .unwrap();
        let v1: HashMap<String, i32> = cache.get_many(["ford2"]).await.unwrap();
        let v2: HashMap<String, i32> = cache.with_version(2).get_many(["ford2"]).await.unwrap();
        assert_eq!((v1.len(), v2.len()), (0, 1));
    }

    #[tokio::test]
    async fn incr_version_moves_the_value() {
        let (cache, v2cache) = pair();
        cache
            .with_version(2)
            .set("answer", &42, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(
            cache
                .with_version(2)
                .incr_version("answer", 1)
                .await
                .unwrap(),
            3
        );
        assert_eq!(
            cache.with_version(2).get::<i32>("answer").await.unwrap(),
            None
        );
        assert_eq!(
            cache.with_version(3).get::<i32>("answer").await.unwrap(),
            Some(42)
        );

        v2cache.set("answer2", &42, Timeout::Default).await.unwrap();
        assert_eq!(v2cache.incr_version("answer2", 1).await.unwrap(), 3);
        assert_eq!(
            v2cache.with_version(3).get::<i32>("answer2").await.unwrap(),
            Some(42)
        );

        assert!(matches!(
            cache.incr_version("does_not_exist", 1).await,
            Err(Error::NotFound { .. })
        ));

        cache
            .set("null", &None::<i32>, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(cache.incr_version("null", 1).await.unwrap(), 2);
        assert_eq!(
            cache
                .with_version(2)
                .get::<Option<i32>>("null")
                .await
                .unwrap(),
            Some(None)
        );
    }

    /// When the key does not change (a delta of 0, or a key function without the version),
    /// the value stays where it is instead of being stored and then deleted.
    #[tokio::test]
    async fn incr_version_that_moves_nothing_keeps_the_value() {
        let (cache, _) = pair();
        cache.set("k", &7, Timeout::Default).await.unwrap();
        assert_eq!(cache.incr_version("k", 0).await.unwrap(), 1);
        assert_eq!(cache.get::<i32>("k").await.unwrap(), Some(7));

        let unversioned = Cache::builder(MemoryStore::new())
            .key_function(|key, prefix, _version| format!("{prefix}:{key}"))
            .build();
        unversioned.set("k", &8, Timeout::Default).await.unwrap();
        assert_eq!(unversioned.incr_version("k", 1).await.unwrap(), 2);
        assert_eq!(unversioned.get::<i32>("k").await.unwrap(), Some(8));
    }

    #[tokio::test]
    async fn decr_version_moves_the_value_back() {
        let (cache, v2cache) = pair();
        cache
            .with_version(2)
            .set("answer", &42, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(
            cache
                .with_version(2)
                .decr_version("answer", 1)
                .await
                .unwrap(),
            1
        );
        assert_eq!(cache.get::<i32>("answer").await.unwrap(), Some(42));
        assert_eq!(
            cache.with_version(2).get::<i32>("answer").await.unwrap(),
            None
        );
        v2cache.set("answer2", &42, Timeout::Default).await.unwrap();
        assert_eq!(v2cache.decr_version("answer2", 1).await.unwrap(), 1);
        assert!(matches!(
            cache.decr_version("nope", 1).await,
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            cache.with_version(i64::MIN).decr_version("x", 1).await,
            Err(Error::Overflow { .. })
        ));
    }
}

mod get_or_set {
    use super::*;

    #[tokio::test]
    async fn stores_and_returns_the_computed_value() {
        let cache = cache();
        assert_eq!(cache.get::<i32>("projector").await.unwrap(), None);
        let value = cache
            .get_or_set("projector", Timeout::Default, || async { 42 })
            .await
            .unwrap();
        assert_eq!(value, 42);
        assert_eq!(cache.get::<i32>("projector").await.unwrap(), Some(42));
        let value = cache
            .get_or_set("projector", Timeout::Default, || async { 43 })
            .await
            .unwrap();
        assert_eq!(value, 42, "a later call returns the stored value");
    }

    #[tokio::test]
    async fn a_none_result_is_stored() {
        let cache = cache();
        let value: Option<i32> = cache
            .get_or_set("null", Timeout::Default, || async { None })
            .await
            .unwrap();
        assert_eq!(value, None);
        assert_eq!(cache.get::<Option<i32>>("null").await.unwrap(), Some(None));
        let again: Option<i32> = cache
            .get_or_set("null", Timeout::Default, || async { Some(1) })
            .await
            .unwrap();
        assert_eq!(again, None, "the stored None is a hit");
    }

    #[tokio::test]
    async fn versions_are_separate() {
        let cache = cache();
        let v2 = cache.with_version(2);
        assert_eq!(
            v2.get_or_set("brian", Timeout::Default, || async { 1979 })
                .await
                .unwrap(),
            1979
        );
        assert_eq!(cache.get::<i32>("brian").await.unwrap(), None);
        assert_eq!(
            cache
                .get_or_set("brian", Timeout::Default, || async { 42 })
                .await
                .unwrap(),
            42
        );
        assert_eq!(v2.get::<i32>("brian").await.unwrap(), Some(1979));
        assert_eq!(
            cache.with_version(3).get::<i32>("brian").await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn a_failed_computation_stores_nothing() {
        let cache = cache();
        let result: Result<i32, Error> = cache
            .get_or_try_set("k", Timeout::Default, || async {
                Err(Error::Config("boom".into()))
            })
            .await;
        assert!(matches!(result, Err(Error::Config(_))));
        assert!(!cache.has_key("k").await.unwrap());
    }

    #[tokio::test]
    async fn an_undecodable_entry_is_recomputed() {
        let cache = cache();
        cache.set("k", "text", Timeout::Default).await.unwrap();
        let value: i32 = cache
            .get_or_set("k", Timeout::Default, || async { 7 })
            .await
            .unwrap();
        assert_eq!(value, 7);
        assert_eq!(cache.get::<i32>("k").await.unwrap(), Some(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_run_the_closure_once() {
        const TASKS: usize = 1000;
        let cache = cache();
        let calls = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        // The computation stays open until every task has started asking.
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (cache, calls, started, gate) = (
                    cache.clone(),
                    Arc::clone(&calls),
                    Arc::clone(&started),
                    Arc::clone(&gate),
                );
                tokio::spawn(async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    cache
                        .get_or_set("slow", Timeout::Default, || async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            gate.acquire().await.unwrap().forget();
                            String::from("computed")
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        while started.load(Ordering::SeqCst) < TASKS || calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // Enough permits for every task, so that a broken single flight fails the count below
        // instead of hanging.
        gate.add_permits(TASKS);
        for task in tasks {
            assert_eq!(task.await.unwrap(), "computed");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_leader_hands_over_to_a_waiter() {
        let cache = cache();
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (cache, calls) = (cache.clone(), Arc::clone(&calls));
                tokio::spawn(async move {
                    cache
                        .get_or_try_set("flaky", Timeout::Default, || async move {
                            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                                Err(Error::Config("first attempt fails".into()))
                            } else {
                                Ok(5)
                            }
                        })
                        .await
                })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(value) => {
                    assert_eq!(value, 5);
                    ok += 1;
                }
                Err(error) => assert!(matches!(error, Error::Config(_))),
            }
        }
        assert_eq!(ok, 49, "only the failing call may fail");
        assert_eq!(cache.get::<i32>("flaky").await.unwrap(), Some(5));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "one failure, then one success"
        );
    }
}

mod bad_input {
    use super::*;

    /// A value that does not decode as the type asked for is a miss for that reader and stays
    /// in the store: during a rolling deploy the other version, which wrote it, still reads it.
    #[tokio::test]
    async fn a_value_of_another_type_is_a_miss_and_stays_for_its_writer() {
        let cache = cache();
        cache
            .set("k", "not a number", Timeout::Default)
            .await
            .unwrap();
        assert_eq!(cache.get::<u32>("k").await.unwrap(), None);
        assert!(cache.has_key("k").await.unwrap(), "the value stays");
        assert_eq!(
            cache.get::<String>("k").await.unwrap().as_deref(),
            Some("not a number")
        );
        let found: HashMap<String, u32> = cache.get_many(["k"]).await.unwrap();
        assert!(found.is_empty());
        assert_eq!(
            cache.get::<String>("k").await.unwrap().as_deref(),
            Some("not a number")
        );
    }

    #[tokio::test]
    async fn foreign_bytes_are_a_miss_and_stay() {
        let cache = cache();
        for garbage in [&b"\xff\xfe"[..], b"", b"plain text", b"\x01\xc1", b"12x"] {
            cache
                .set_raw("k", Bytes::copy_from_slice(garbage), Timeout::Default)
                .await
                .unwrap();
            assert_eq!(
                cache.get::<Article>("k").await.unwrap(),
                None,
                "{garbage:?}"
            );
            assert_eq!(
                cache.get_raw("k").await.unwrap().as_deref(),
                Some(garbage),
                "{garbage:?}"
            );
        }
        cache
            .set_raw("many", Bytes::from_static(b"\xff"), Timeout::Default)
            .await
            .unwrap();
        let found: HashMap<String, Article> = cache.get_many(["many"]).await.unwrap();
        assert!(found.is_empty());
        assert!(cache.has_key("many").await.unwrap());
    }

    #[tokio::test]
    async fn an_unencodable_value_is_an_error_and_writes_nothing() {
        struct Unencodable;
        impl Serialize for Unencodable {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("refuses to serialize"))
            }
        }
        let cache = cache();
        let error = cache
            .set("k", &Unencodable, Timeout::Default)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::Encode { key, .. } if key == "k"),
            "{error}"
        );
        assert!(error.to_string().contains("refuses to serialize"));
        assert!(matches!(
            cache.add("k", &Unencodable, Timeout::Default).await,
            Err(Error::Encode { .. })
        ));
        let result = cache.set_many([("a", Unencodable)], Timeout::Default).await;
        assert!(matches!(result, Err(Error::Encode { .. })));
        assert!(!cache.has_key("k").await.unwrap());
        assert!(!cache.has_key("a").await.unwrap());
    }

    #[tokio::test]
    async fn a_full_store_evicts_instead_of_failing() {
        let cache = Cache::new(MemoryStore::builder().max_entries(10).build());
        for i in 0..100 {
            cache
                .set(&format!("k{i}"), &i, Timeout::Default)
                .await
                .unwrap();
        }
        assert_eq!(cache.get::<i32>("k99").await.unwrap(), Some(99));
    }

    #[tokio::test]
    async fn a_value_over_the_store_limit_is_a_store_error() {
        let cache = Cache::new(MemoryStore::builder().max_bytes(1024).build());
        cache.set("k", "old", Timeout::Default).await.unwrap();
        let error = cache
            .set("k", &vec![0u8; 4096], Timeout::Default)
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::Store(StoreError::ValueTooLarge { .. })),
            "{error}"
        );
        assert_eq!(cache.get::<String>("k").await.unwrap(), None);
    }
}

mod store_failures {
    use super::*;

    #[tokio::test]
    async fn are_errors_by_default() {
        let cache = Cache::new(DownStore);
        assert!(matches!(
            cache.get::<i32>("k").await,
            Err(Error::Store(StoreError::Unavailable(_)))
        ));
        assert!(matches!(
            cache.set("k", &1, Timeout::Default).await,
            Err(Error::Store(_))
        ));
        assert!(matches!(cache.has_key("k").await, Err(Error::Store(_))));
        assert!(matches!(cache.clear().await, Err(Error::Store(_))));
        let result = cache
            .get_or_set("k", Timeout::Default, || async { 1 })
            .await;
        assert!(matches!(result, Err(Error::Store(_))));
        assert_eq!(cache.store_errors(), 5);
    }

    #[tokio::test]
    async fn are_misses_and_no_ops_when_ignored() {
        let cache = Cache::builder(DownStore).ignore_errors(true).build();
        assert_eq!(cache.get::<i32>("k").await.unwrap(), None);
        cache.set("k", &1, Timeout::Default).await.unwrap();
        assert!(!cache.add("k", &1, Timeout::Default).await.unwrap());
        assert!(!cache.has_key("k").await.unwrap());
        assert!(!cache.delete("k").await.unwrap());
        assert!(!cache.touch("k", Timeout::Default).await.unwrap());
        assert_eq!(cache.delete_many(["a", "b"]).await.unwrap(), 0);
        cache.clear().await.unwrap();
        let found: HashMap<String, i32> = cache.get_many(["a"]).await.unwrap();
        assert!(found.is_empty());
        let mut failed = cache
            .set_many([("a", 1), ("b", 2)], Timeout::Default)
            .await
            .unwrap();
        failed.sort();
        assert_eq!(failed, ["a", "b"], "every key failed");
        assert!(
            matches!(cache.incr("k", 1).await, Err(Error::Store(_))),
            "incr has no fallback"
        );
        assert_eq!(cache.store_errors(), 11);
    }

    #[tokio::test]
    async fn get_or_set_still_returns_the_computed_value() {
        let cache = Cache::builder(DownStore).ignore_errors(true).build();
        let value = cache
            .get_or_set("k", Timeout::Default, || async { 9 })
            .await
            .unwrap();
        assert_eq!(value, 9);
        assert_eq!(
            cache.store_errors(),
            3,
            "two failed reads and the failed write"
        );
    }
}

mod dummy {
    use super::*;

    #[tokio::test]
    async fn behaves_like_djangos_dummy_cache() {
        let cache = Cache::new(DummyStore);
        cache.set("key", "value", Timeout::Default).await.unwrap();
        assert_eq!(cache.get::<String>("key").await.unwrap(), None);
        assert!(
            cache
                .add("addkey1", "value", Timeout::Default)
                .await
                .unwrap()
        );
        assert!(
            cache
                .add("addkey1", "newvalue", Timeout::Default)
                .await
                .unwrap()
        );
        assert_eq!(cache.get::<String>("addkey1").await.unwrap(), None);
        let found: HashMap<String, String> = cache.get_many(["a", "b"]).await.unwrap();
        assert!(found.is_empty());
        assert!(!cache.delete("key").await.unwrap());
        assert!(!cache.has_key("key").await.unwrap());
        assert!(matches!(
            cache.incr("answer", 1).await,
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            cache.decr("answer", 1).await,
            Err(Error::NotFound { .. })
        ));
        assert!(!cache.touch("key", Timeout::Default).await.unwrap());
        assert!(
            cache
                .set_many([("a", 1)], Timeout::secs(2))
                .await
                .unwrap()
                .is_empty()
        );
        cache.delete_many(["a"]).await.unwrap();
        cache.clear().await.unwrap();
        assert!(matches!(
            cache.incr_version("answer", 1).await,
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            cache.decr_version("answer", 1).await,
            Err(Error::NotFound { .. })
        ));
        let value = cache
            .get_or_set("mykey", Timeout::Default, || async { "default".to_owned() })
            .await
            .unwrap();
        assert_eq!(value, "default");
        let value: Option<i32> = cache
            .get_or_set("mykey", Timeout::Default, || async { None })
            .await
            .unwrap();
        assert_eq!(value, None);
    }
}

#[test]
fn futures_are_send() {
    fn is_send<T: Send>(_: T) {}
    let cache = cache();
    is_send(cache.get::<String>("k"));
    is_send(cache.set("k", "v", Timeout::Default));
    is_send(cache.add("k", "v", Timeout::Default));
    is_send(cache.get_or_set("k", Timeout::Default, || async { 1 }));
    is_send(cache.get_many::<i32, _, _>(["k"]));
    is_send(cache.set_many([("k", 1)], Timeout::Default));
    is_send(cache.delete("k"));
    is_send(cache.delete_many(["k"]));
    is_send(cache.incr("k", 1));
    is_send(cache.touch("k", Timeout::Default));
    is_send(cache.has_key("k"));
    is_send(cache.clear());
    is_send(cache.incr_version("k", 1));
    is_send(cache.get_raw("k"));
}
