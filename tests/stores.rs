//! The store conformance suite against the bundled stores, and what is particular to each.

use std::sync::Arc;
use std::time::Duration;

use axum_cache::store::conformance::{self, TestClock};
use axum_cache::store::{DummyStore, MemoryStore, Store, StoreError};
use bytes::Bytes;

fn b(value: &str) -> Bytes {
    Bytes::copy_from_slice(value.as_bytes())
}

#[tokio::test(start_paused = true)]
async fn memory_store_conforms() {
    let store = MemoryStore::new();
    conformance::run(&store, &TestClock::new(tokio::time::advance)).await;
}

#[tokio::test(start_paused = true)]
async fn a_single_shard_memory_store_conforms() {
    // Fewer than 32 entries gives one shard: the eviction paths differ, the rules must not.
    let store = MemoryStore::builder().max_entries(30).build();
    conformance::run(&store, &TestClock::new(tokio::time::advance)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms_under_concurrency() {
    conformance::run_concurrent(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_shard_memory_store_conforms_under_concurrency() {
    conformance::run_concurrent(Arc::new(MemoryStore::builder().max_entries(20).build())).await;
}

#[tokio::test]
async fn the_entry_bound_holds_after_every_write() {
    let store = MemoryStore::builder().max_entries(30).build();
    for i in 0..49 {
        store.set(&format!("k{i}"), b("v"), None).await.unwrap();
        assert!(store.entry_count() <= 30, "after write {i}: {:?}", store);
    }
    // Django's cull test writes 49 keys into MAX_ENTRIES=30 and keeps 29; the bound is exact
    // here, and the newest key always survives its own write.
    assert_eq!(store.entry_count(), 30);
    assert_eq!(store.get("k48").await.unwrap(), Some(b("v")));
    let keys: Vec<String> = (0..49).map(|i| format!("k{i}")).collect();
    let present = store.get_many(&keys).await.unwrap();
    assert_eq!(present.iter().flatten().count(), 30);
}

#[tokio::test]
async fn the_byte_bound_holds_across_shards() {
    // Many shards (large entry bound) and a small byte bound: eviction must reach other shards.
    let store = MemoryStore::builder()
        .max_entries(1_000_000)
        .max_bytes(64 << 10)
        .build();
    let value = Bytes::from(vec![7u8; 1000]);
    for i in 0..1000 {
        store
            .set(&format!("key:{i}"), value.clone(), None)
            .await
            .unwrap();
        assert!(store.size_bytes() <= 64 << 10, "after write {i}: {store:?}");
    }
    assert!(
        store.entry_count() >= 50,
        "bound must not over-evict: {store:?}"
    );
    assert_eq!(store.get("key:999").await.unwrap(), Some(value));
}

#[tokio::test]
async fn size_accounting_follows_overwrites_deletes_and_clear() {
    let store = MemoryStore::builder().max_bytes(1 << 20).build();
    store
        .set("a", Bytes::from(vec![0u8; 100]), None)
        .await
        .unwrap();
    let one = store.size_bytes();
    assert!(one >= 101, "key and value are counted: {one}");
    store
        .set("a", Bytes::from(vec![0u8; 10]), None)
        .await
        .unwrap();
    assert_eq!(
        store.size_bytes(),
        one - 90,
        "overwrite replaces the charge"
    );
    store.set("n", b("9"), None).await.unwrap();
    let before = store.size_bytes();
    store.incr("n", 1).await.unwrap();
    assert_eq!(
        store.size_bytes(),
        before + 1,
        "incr to 10 grows the value by a byte"
    );
    store.delete("a").await.unwrap();
    store.clear().await.unwrap();
    assert_eq!((store.entry_count(), store.size_bytes()), (0, 0));
}

#[tokio::test]
async fn an_oversized_value_is_refused_and_removes_the_old_one() {
    let store = MemoryStore::builder().max_bytes(4096).build();
    store.set("page", b("old"), None).await.unwrap();
    let error = store
        .set("page", Bytes::from(vec![0u8; 8192]), None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::ValueTooLarge { limit: 4096, .. }),
        "{error:?}"
    );
    assert_eq!(
        store.get("page").await.unwrap(),
        None,
        "stale value survived"
    );

    let failed = store
        .set_many(
            vec![
                ("small".to_owned(), b("ok")),
                ("big".to_owned(), Bytes::from(vec![0u8; 8192])),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(failed, ["big"]);
    assert_eq!(store.get("small").await.unwrap(), Some(b("ok")));
    assert!(matches!(
        store.add("big", Bytes::from(vec![0u8; 8192]), None).await,
        Err(StoreError::ValueTooLarge { .. })
    ));
}

#[tokio::test]
async fn a_zero_entry_bound_still_keeps_one_entry() {
    let store = MemoryStore::builder().max_entries(0).build();
    store.set("a", b("1"), None).await.unwrap();
    store.set("b", b("2"), None).await.unwrap();
    assert_eq!(store.entry_count(), 1);
    assert_eq!(store.get("b").await.unwrap(), Some(b("2")));
}

/// Django's LocMem LRU tests (MAX_ENTRIES 9). Django culls a third of the entries at once; this
/// store evicts exactly one, always among the least recently used.
mod lru {
    use super::*;

    async fn nine() -> MemoryStore {
        let store = MemoryStore::builder().max_entries(9).build();
        for i in 0..9 {
            store
                .set(&i.to_string(), Bytes::from(i.to_string()), None)
                .await
                .unwrap();
        }
        store
    }

    async fn present(store: &MemoryStore) -> Vec<i32> {
        let mut present = Vec::new();
        for i in 0..10 {
            if store.has_key(&i.to_string()).await.unwrap() {
                present.push(i);
            }
        }
        present
    }

    #[tokio::test]
    async fn reads_protect_entries() {
        let store = nine().await;
        for i in 0..6 {
            store.get(&i.to_string()).await.unwrap();
        }
        store.set("9", b("9"), None).await.unwrap();
        let present = present(&store).await;
        assert_eq!(present.len(), 9);
        for i in [0, 1, 2, 3, 4, 5, 9] {
            assert!(
                present.contains(&i),
                "{i} was used and must stay: {present:?}"
            );
        }
    }

    #[tokio::test]
    async fn overwrites_protect_entries() {
        let store = nine().await;
        for i in 3..9 {
            store.set(&i.to_string(), b("again"), None).await.unwrap();
        }
        store.set("9", b("9"), None).await.unwrap();
        let present = present(&store).await;
        assert_eq!(present.len(), 9);
        for i in 3..10 {
            assert!(
                present.contains(&i),
                "{i} was used and must stay: {present:?}"
            );
        }
    }

    #[tokio::test]
    async fn increments_protect_entries_and_keep_values() {
        let store = nine().await;
        for i in 0..6 {
            store.incr(&i.to_string(), 1).await.unwrap();
        }
        store.set("9", b("9"), None).await.unwrap();
        for i in 0..6 {
            let value = store.get(&i.to_string()).await.unwrap();
            assert_eq!(value, Some(Bytes::from((i + 1).to_string())));
        }
        assert_eq!(present(&store).await.len(), 9);
    }

    #[tokio::test]
    async fn touch_and_has_key_do_not_protect() {
        let store = nine().await;
        for i in 1..9 {
            store.get(&i.to_string()).await.unwrap();
        }
        store.touch("0", None).await.unwrap();
        store.has_key("0").await.unwrap();
        store.set("9", b("9"), None).await.unwrap();
        assert_eq!(store.get("0").await.unwrap(), None, "0 was only touched");
    }

    #[tokio::test(start_paused = true)]
    /// Every entry has been read, so only the expired one is not spared by the hand.
    async fn an_expired_entry_is_never_spared() {
        let store = MemoryStore::builder().max_entries(9).build();
        for i in 0..9 {
            let ttl = (i == 7).then_some(Duration::from_secs(1));
            store.set(&i.to_string(), b("v"), ttl).await.unwrap();
            store.get(&i.to_string()).await.unwrap();
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        store.set("9", b("9"), None).await.unwrap();
        let present = present(&store).await;
        assert_eq!(present, [0, 1, 2, 3, 4, 5, 6, 8, 9]);
        assert_eq!(
            store.entry_count(),
            9,
            "the expired entry was the one evicted"
        );
    }
}

/// Django's DummyCacheTests, at the store level.
mod dummy {
    use super::*;

    #[tokio::test]
    async fn keeps_nothing_and_says_so() {
        let store = DummyStore;
        store.set("k", b("v"), None).await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), None);
        assert!(store.add("k", b("v"), None).await.unwrap());
        assert!(
            store.add("k", b("v"), None).await.unwrap(),
            "add succeeds every time"
        );
        assert_eq!(store.get("k").await.unwrap(), None);
        assert!(!store.has_key("k").await.unwrap());
        assert!(!store.delete("k").await.unwrap());
        assert!(!store.touch("k", None).await.unwrap());
        let keys = ["a".to_owned(), "b".to_owned()];
        assert_eq!(store.get_many(&keys).await.unwrap(), [None, None]);
        let entries = vec![("a".to_owned(), b("1"))];
        assert!(store.set_many(entries, None).await.unwrap().is_empty());
        assert_eq!(store.delete_many(&keys).await.unwrap(), 0);
        store.clear().await.unwrap();
    }

    #[tokio::test]
    async fn incr_finds_nothing() {
        let store = DummyStore;
        store.set("n", b("1"), None).await.unwrap();
        for delta in [1, -1] {
            assert!(matches!(
                store.incr("n", delta).await,
                Err(StoreError::NotFound)
            ));
        }
    }
}

#[test]
fn stores_are_usable_as_trait_objects() {
    let stores: Vec<Arc<dyn Store>> = vec![Arc::new(MemoryStore::new()), Arc::new(DummyStore)];
    assert!(format!("{stores:?}").contains("MemoryStore"));
}
