//! Atomicity under real concurrency: racing `add`s, concurrent `incr`s, and readers beside
//! writers.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Barrier;

use super::{SECOND, b};
use crate::store::Store;

const TASKS: usize = 1_000;

/// 1,000 tasks `add` the same key at once: exactly one succeeds and its value is stored.
pub async fn add_race_has_one_winner(store: Arc<dyn Store>) {
    store.delete("c:race:add").await.unwrap();
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                let won = store
                    .add("c:race:add", Bytes::from(i.to_string()), Some(60 * SECOND))
                    .await
                    .unwrap();
                won.then_some(i)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.expect("task panicked"));
    }
    assert_eq!(winners.len(), 1, "exactly one add may win, got {winners:?}");
    let stored = store.get("c:race:add").await.unwrap();
    assert_eq!(
        stored,
        Some(Bytes::from(winners[0].to_string())),
        "winner's value stored"
    );
}

/// 1,000 concurrent `incr(1)` on one key: every result is distinct and the total is exact.
pub async fn incr_loses_no_update(store: Arc<dyn Store>) {
    store
        .set("c:race:incr", b("0"), Some(60 * SECOND))
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                store.incr("c:race:incr", 1).await.unwrap()
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for task in tasks {
        let value = task.await.expect("task panicked");
        assert!(seen.insert(value), "two increments returned {value}");
    }
    let expected: HashSet<i64> = (1..=TASKS as i64).collect();
    assert_eq!(seen, expected, "increments must return 1..=1000");
    assert_eq!(
        store.get("c:race:incr").await.unwrap(),
        Some(Bytes::from(TASKS.to_string()))
    );
}

/// Concurrent writers of whole values and readers: a reader only ever sees a value some writer
/// wrote in full.
pub async fn readers_never_see_torn_values(store: Arc<dyn Store>) {
    let value = |i: usize| Bytes::from(vec![b'a' + (i % 26) as u8; 4096 + i]);
    store.set("c:race:torn", value(0), None).await.unwrap();
    let writers = (1..50).map(|i| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store.set("c:race:torn", value(i), None).await.unwrap();
        })
    });
    let readers = (0..50).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let read = store.get("c:race:torn").await.unwrap().expect("present");
            let i = read.len().checked_sub(4096).expect("value too short");
            assert_eq!(read, value(i), "torn value of length {}", read.len());
        })
    });
    let tasks: Vec<_> = writers.chain(readers).collect();
    for task in tasks {
        task.await.expect("task panicked");
    }
}
