//! Atomicity under real concurrency: racing `add`s, concurrent `incr`s, and readers beside
//! writers.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Barrier;

use super::{SECOND, assert_get, b};
use crate::store::Store;

const TASKS: usize = 1_000;

/// Runs `task(store, i)` for each `i` below [`TASKS`], each in its own tokio task, all released
/// at once, and returns their results in order.
async fn race<T, F, Fut>(store: &Arc<dyn Store>, task: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let run = task(Arc::clone(store), i);
            tokio::spawn(async move {
                barrier.wait().await;
                run.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(TASKS);
    for task in tasks {
        results.push(task.await.expect("task panicked"));
    }
    results
}

/// 1,000 tasks `add` the same key at once: exactly one succeeds and its value is stored.
pub async fn add_race_has_one_winner(store: Arc<dyn Store>) {
    store.delete("c:race:add").await.unwrap();
    let winners: Vec<usize> = race(&store, |store, i| async move {
        let won = store
            .add("c:race:add", Bytes::from(i.to_string()), Some(60 * SECOND))
            .await
            .unwrap();
        won.then_some(i)
    })
    .await
    .into_iter()
    .flatten()
    .collect();
    assert_eq!(winners.len(), 1, "exactly one add may win, got {winners:?}");
    let winner = Some(Bytes::from(winners[0].to_string()));
    assert_get(&*store, "c:race:add", winner, "winner's value stored").await;
}

/// 1,000 concurrent `incr(1)` on one key: every result is distinct and the total is exact.
pub async fn incr_loses_no_update(store: Arc<dyn Store>) {
    store
        .set("c:race:incr", b("0"), Some(60 * SECOND))
        .await
        .unwrap();
    let results = race(&store, |store, _| async move {
        store.incr("c:race:incr", 1).await.unwrap()
    })
    .await;
    let mut seen = HashSet::new();
    for value in results {
        assert!(seen.insert(value), "two increments returned {value}");
    }
    let expected: HashSet<i64> = (1..=TASKS as i64).collect();
    assert_eq!(seen, expected, "increments must return 1..=1000");
    let total = Some(Bytes::from(TASKS.to_string()));
    assert_get(&*store, "c:race:incr", total, "every increment counted").await;
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
