//! Values and counters: reads, writes, `add`, the batch operations, `delete` and `incr`.

use bytes::Bytes;

use super::{SECOND, assert_get, b, keys};
use crate::store::{Store, StoreError};

/// `set` then `get` returns the value; `set` again replaces it; unknown keys are `None`.
pub async fn set_get_and_overwrite(store: &dyn Store) {
    assert_get(store, "c:missing", None, "missing key").await;
    store.set("c:key", b("value"), None).await.unwrap();
    assert_get(store, "c:key", Some(b("value")), "set then get").await;
    assert!(store.has_key("c:key").await.unwrap(), "has_key after set");
    assert!(
        !store.has_key("c:missing").await.unwrap(),
        "has_key of missing key"
    );
    store
        .set("c:key", b("other"), Some(60 * SECOND))
        .await
        .unwrap();
    assert_get(store, "c:key", Some(b("other")), "overwrite").await;
}

/// Every byte value round-trips, an empty value is present (not missing), and keys may be any
/// UTF-8 without spaces or control characters.
pub async fn binary_empty_and_unicode(store: &dyn Store) {
    let every_byte: Bytes = (0..=255u8).collect::<Vec<_>>().into();
    store
        .set("c:binary", every_byte.clone(), None)
        .await
        .unwrap();
    assert_get(store, "c:binary", Some(every_byte), "binary value").await;

    store.set("c:empty", Bytes::new(), None).await.unwrap();
    assert_get(store, "c:empty", Some(Bytes::new()), "empty value").await;
    assert!(
        store.has_key("c:empty").await.unwrap(),
        "an empty value is present"
    );

    for key in ["c:Iñtërnâtiônàlizætiøn", "c:ключ", "c:😀", "c:a/b?c=d&e"] {
        let value = Bytes::from(format!("value of {key}"));
        store.set(key, value.clone(), None).await.unwrap();
        assert_get(store, key, Some(value), &format!("key {key:?}")).await;
    }
}

/// A value of 1 MiB round-trips intact.
pub async fn large_values(store: &dyn Store) {
    let large: Bytes = (0..1 << 20)
        .map(|i: u32| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    store.set("c:large", large.clone(), None).await.unwrap();
    assert_get(store, "c:large", Some(large), "1 MiB value").await;
    assert!(store.delete("c:large").await.unwrap());
}

/// `add` stores only into a free key, never overwrites, and works again after a delete.
pub async fn add_only_when_absent(store: &dyn Store) {
    assert!(
        store.add("c:add", b("first"), None).await.unwrap(),
        "add to free key"
    );
    assert!(
        !store.add("c:add", b("second"), None).await.unwrap(),
        "add to taken key"
    );
    assert_get(store, "c:add", Some(b("first")), "add must not overwrite").await;
    store.delete("c:add").await.unwrap();
    assert!(
        store.add("c:add", b("third"), None).await.unwrap(),
        "add after delete"
    );
    assert_get(store, "c:add", Some(b("third")), "add after delete stores").await;
}

/// `get_many` answers position by position, with `None` for missing keys.
pub async fn get_many_in_order(store: &dyn Store) {
    store.set("c:many:a", b("a"), None).await.unwrap();
    store.set("c:many:b", b("b"), None).await.unwrap();
    let found = store
        .get_many(&keys(&["c:many:b", "c:many:x", "c:many:a", "c:many:b"]))
        .await
        .unwrap();
    assert_eq!(
        found,
        [Some(b("b")), None, Some(b("a")), Some(b("b"))],
        "get_many"
    );
    assert!(
        store.get_many(&[]).await.unwrap().is_empty(),
        "get_many of nothing"
    );
}

/// `set_many` stores every pair and reports no failure; `delete_many` removes only the listed
/// keys and counts them.
pub async fn set_many_and_delete_many(store: &dyn Store) {
    let entries = vec![
        ("c:sm:a".to_owned(), b("1")),
        ("c:sm:b".to_owned(), b("2")),
        ("c:sm:c".to_owned(), b("3")),
    ];
    let failed = store.set_many(entries, None).await.unwrap();
    assert!(failed.is_empty(), "set_many failed for {failed:?}");
    assert!(store.set_many(Vec::new(), None).await.unwrap().is_empty());
    for (key, value) in [("c:sm:a", "1"), ("c:sm:b", "2"), ("c:sm:c", "3")] {
        assert_get(store, key, Some(b(value)), &format!("set_many {key}")).await;
    }
    let deleted = store
        .delete_many(&keys(&["c:sm:a", "c:sm:b", "c:sm:missing"]))
        .await
        .unwrap();
    assert_eq!(deleted, 2, "delete_many counts live keys removed");
    assert_get(store, "c:sm:a", None, "listed key deleted").await;
    assert_get(store, "c:sm:b", None, "listed key deleted").await;
    assert_get(store, "c:sm:c", Some(b("3")), "unlisted key kept").await;
    assert_eq!(store.delete_many(&[]).await.unwrap(), 0);
}

/// `delete` reports whether it removed something and leaves other keys alone.
pub async fn delete_reports_live_values(store: &dyn Store) {
    store.set("c:del:a", b("a"), None).await.unwrap();
    store.set("c:del:b", b("b"), None).await.unwrap();
    assert!(
        store.delete("c:del:a").await.unwrap(),
        "delete of a present key"
    );
    assert!(
        !store.delete("c:del:a").await.unwrap(),
        "delete of a missing key"
    );
    assert_get(store, "c:del:a", None, "deleted key gone").await;
    assert_get(store, "c:del:b", Some(b("b")), "other key kept").await;
}

/// `incr` adds to decimal integers, fails on missing keys without creating them, and refuses
/// anything that is not an integer or would overflow.
pub async fn incr_and_decr(store: &dyn Store) {
    store.set("c:n", b("41"), None).await.unwrap();
    assert_eq!(store.incr("c:n", 1).await.unwrap(), 42);
    assert_eq!(store.incr("c:n", 10).await.unwrap(), 52);
    assert_eq!(store.incr("c:n", -10).await.unwrap(), 42);
    assert_eq!(store.incr("c:n", -50).await.unwrap(), -8);
    assert_get(store, "c:n", Some(b("-8")), "stored as decimal").await;

    for delta in [1, -1] {
        let error = store.incr("c:n:missing", delta).await.unwrap_err();
        assert!(
            matches!(error, StoreError::NotFound),
            "missing key: {error:?}"
        );
    }
    assert_get(store, "c:n:missing", None, "incr must not create").await;

    for (key, value) in [
        ("c:n:text", "abc"),
        ("c:n:blank", ""),
        ("c:n:spaced", "4 2"),
    ] {
        store.set(key, b(value), None).await.unwrap();
        let error = store.incr(key, 1).await.unwrap_err();
        assert!(
            matches!(error, StoreError::NotAnInteger),
            "{value:?}: {error:?}"
        );
        assert_get(store, key, Some(b(value)), "unchanged").await;
    }

    store
        .set("c:n:max", Bytes::from(i64::MAX.to_string()), None)
        .await
        .unwrap();
    let error = store.incr("c:n:max", 1).await.unwrap_err();
    assert!(matches!(error, StoreError::Overflow), "overflow: {error:?}");
    assert_get(
        store,
        "c:n:max",
        Some(Bytes::from(i64::MAX.to_string())),
        "overflow leaves the value",
    )
    .await;
}
