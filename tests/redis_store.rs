//! `RedisStore` against real servers: the conformance suite on a standalone server and on a
//! three-primary cluster, prefixes, pattern deletes, foreign data, the lock, and outages.
#![cfg(feature = "redis")]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum_cache::store::conformance::{self, TestClock};
use axum_cache::store::{RedisOptions, RedisStore, Store, StoreError};
use axum_cache::{Cache, Timeout};
use bytes::Bytes;
use support::redis::{self, RedisServer};
use support::tasks::eventually;

/// Generous: these tests check behaviour, not speed, on a busy two-core machine.
const RELAXED: Duration = Duration::from_secs(5);

fn b(value: &str) -> Bytes {
    Bytes::copy_from_slice(value.as_bytes())
}

async fn store(url: &str, prefix: &str) -> RedisStore {
    RedisStore::builder(url)
        .prefix(prefix)
        .command_timeout(RELAXED)
        .build()
        .await
        .expect("connects")
}

/// Writes `"hello"` under `"greeting"` through `cache` and reads it back.
async fn greets(cache: &Cache) {
    cache
        .set("greeting", "hello", Timeout::Default)
        .await
        .unwrap();
    assert_eq!(
        cache.get::<String>("greeting").await.unwrap().as_deref(),
        Some("hello")
    );
}

mod standalone {
    use super::*;

    #[tokio::test]
    async fn conforms() {
        let Some(redis) = redis::redis() else { return };
        let store = store(&redis.url(), "conformance").await;
        conformance::run(&store, &TestClock::new(tokio::time::sleep)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conforms_under_concurrency() {
        let Some(redis) = redis::redis() else { return };
        let store = store(&redis.url(), "concurrency").await;
        conformance::run_concurrent(Arc::new(store)).await;
    }

    /// As the configuration chapter says: caches from URLs on one database clear each other
    /// unless each has a `store_prefix` of its own.
    #[tokio::test]
    async fn caches_from_urls_clear_separately_with_their_own_store_prefix() {
        let Some(redis) = redis::redis() else { return };
        let url = |query: &str| format!("{}?{query}", redis.url());
        let pages = Cache::from_url(&url("store_prefix=pages")).await.unwrap();
        let sessions = Cache::from_url(&url("store_prefix=sessions"))
            .await
            .unwrap();
        sessions
            .set("user:1", "ada", Timeout::Default)
            .await
            .unwrap();
        pages.set("home", "<h1>", Timeout::Default).await.unwrap();
        pages.clear().await.unwrap();
        assert_eq!(pages.get::<String>("home").await.unwrap(), None);
        assert_eq!(
            sessions.get::<String>("user:1").await.unwrap().as_deref(),
            Some("ada")
        );

        // With only key prefixes, they share the store's namespace.
        let a = Cache::from_url(&url("key_prefix=a&store_prefix=shared"))
            .await
            .unwrap();
        let b = Cache::from_url(&url("key_prefix=b&store_prefix=shared"))
            .await
            .unwrap();
        b.set("k", "v", Timeout::Default).await.unwrap();
        a.clear().await.unwrap();
        assert_eq!(b.get::<String>("k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn prefixes_isolate_and_clear_only_its_own() {
        let Some(redis) = redis::redis() else { return };
        let url = redis.url();
        let ours = store(&url, "iso:ours").await;
        let theirs = store(&url, "iso:theirs").await;
        // Glob characters in a prefix match only themselves.
        let starred = store(&url, "iso:o*").await;
        for store in [&ours, &theirs, &starred] {
            store.clear().await.unwrap();
            store.set("k", b(store.prefix()), None).await.unwrap();
        }
        assert_eq!(ours.get("k").await.unwrap(), Some(b("iso:ours")));
        assert_eq!(theirs.get("k").await.unwrap(), Some(b("iso:theirs")));
        redis.cli(&["SET", "iso:oursx", "foreign"]);
        redis.cli(&["SET", "iso:ours", "foreign"]);
        redis.cli(&["SET", "iso:foreign", "foreign"]);

        starred.clear().await.unwrap();
        assert_eq!(starred.get("k").await.unwrap(), None);
        assert_eq!(
            ours.get("k").await.unwrap(),
            Some(b("iso:ours")),
            "o* is literal"
        );

        ours.clear().await.unwrap();
        assert_eq!(ours.get("k").await.unwrap(), None);
        assert_eq!(theirs.get("k").await.unwrap(), Some(b("iso:theirs")));
        for key in ["iso:oursx", "iso:ours", "iso:foreign"] {
            assert_eq!(redis.cli(&["GET", key]), "foreign", "{key} kept");
        }
        assert_eq!(
            redis.cli(&["GET", "iso:ours:k"]),
            "",
            "stored as prefix:key"
        );
        assert_eq!(redis.cli(&["GET", "iso:theirs:k"]), "iso:theirs");
    }

    #[tokio::test]
    async fn clear_pages_through_many_keys() {
        let Some(redis) = redis::redis() else { return };
        let store = store(&redis.url(), "many").await;
        let entries: Vec<(String, Bytes)> = (0..2500).map(|i| (format!("k{i}"), b("v"))).collect();
        assert!(store.set_many(entries, None).await.unwrap().is_empty());
        redis.cli(&["SET", "manyother", "kept"]);
        store.clear().await.unwrap();
        assert!(!store.has_key("k0").await.unwrap());
        assert!(!store.has_key("k2499").await.unwrap());
        assert_eq!(redis.cli(&["GET", "manyother"]), "kept");
    }

    #[tokio::test]
    async fn delete_pattern_removes_matches_in_this_prefix_only() {
        let Some(redis) = redis::redis() else { return };
        let url = redis.url();
        let store = store(&url, "pat").await;
        let other = store_with_same_keys(&url).await;
        for key in ["user:1", "user:2", "user:1:posts", "post:1", "users"] {
            store.set(key, b("v"), None).await.unwrap();
        }
        assert_eq!(store.delete_pattern("user:*").await.unwrap(), 3);
        assert_eq!(store.delete_pattern("user:*").await.unwrap(), 0);
        assert!(store.has_key("post:1").await.unwrap());
        assert!(store.has_key("users").await.unwrap());
        assert!(
            other.has_key("user:1").await.unwrap(),
            "other prefix untouched"
        );
        assert_eq!(store.delete_pattern("?ost:[0-9]").await.unwrap(), 1);

        store.set("a*b", b("v"), None).await.unwrap();
        store.set("axb", b("v"), None).await.unwrap();
        assert_eq!(store.delete_pattern(r"a\*b").await.unwrap(), 1);
        assert!(store.has_key("axb").await.unwrap());
    }

    async fn store_with_same_keys(url: &str) -> RedisStore {
        let other = store(url, "pat-other").await;
        other.set("user:1", b("v"), None).await.unwrap();
        other
    }

    #[tokio::test]
    async fn keys_and_values_are_binary_safe() {
        let Some(redis) = redis::redis() else { return };
        let store = store(&redis.url(), "bin").await;
        let every_byte: Bytes = (0..=255u8).rev().collect::<Vec<_>>().into();
        let keys = [
            "nul\0inside",
            "crlf\r\n*3\r\n$3\r\nDEL\r\n",
            "spaces and\ttabs",
            "glob*?[x]\\",
            "ключ😀",
            "",
        ];
        for key in keys {
            store.set(key, every_byte.clone(), None).await.unwrap();
            assert_eq!(
                store.get(key).await.unwrap(),
                Some(every_byte.clone()),
                "{key:?}"
            );
        }
        let many: Vec<String> = keys.iter().map(|key| (*key).to_owned()).collect();
        let found = store.get_many(&many).await.unwrap();
        assert!(
            found
                .iter()
                .all(|value| value.as_ref() == Some(&every_byte))
        );
        assert_eq!(store.delete_pattern(r"glob\*\?\[x\]\\").await.unwrap(), 1);
        assert_eq!(
            store.delete_many(&many).await.unwrap(),
            keys.len() as u64 - 1
        );
        // A value that is not UTF-8 and looks like a number to no one.
        store
            .set("n", Bytes::from_static(&[0xff, b'1']), None)
            .await
            .unwrap();
        assert!(matches!(
            store.incr("n", 1).await,
            Err(StoreError::NotAnInteger)
        ));
    }

    #[tokio::test]
    async fn foreign_data_is_an_error_or_a_miss_never_a_panic() {
        let Some(redis) = redis::redis() else { return };
        let store = store(&redis.url(), "junk").await;
        redis.cli(&["HSET", "junk:hash", "field", "value"]);
        redis.cli(&["RPUSH", "junk:list", "a", "b"]);
        redis.cli(&["SET", "junk:text", "forty-two"]);
        redis.cli(&["SET", "junk:float", "12.5"]);
        redis.cli(&["SET", "junk:huge", "99999999999999999999"]);
        redis.cli(&["SET", "junk:spaced", " 7"]);

        assert!(matches!(
            store.get("hash").await,
            Err(StoreError::Backend(_))
        ));
        assert!(matches!(
            store.get("list").await,
            Err(StoreError::Backend(_))
        ));
        let found = store
            .get_many(&["hash".to_owned(), "text".to_owned(), "list".to_owned()])
            .await
            .unwrap();
        assert_eq!(found, [None, Some(b("forty-two")), None]);
        for key in ["hash", "list", "text", "float", "huge", "spaced"] {
            let error = store.incr(key, 1).await.unwrap_err();
            assert!(
                matches!(error, StoreError::NotAnInteger),
                "{key}: {error:?}"
            );
        }
        assert_eq!(
            redis.cli(&["GET", "junk:text"]),
            "forty-two",
            "incr changed nothing"
        );
        assert!(store.has_key("hash").await.unwrap());
        assert!(
            store
                .touch("list", Some(Duration::from_secs(60)))
                .await
                .unwrap()
        );
        assert!(store.touch("hash", None).await.unwrap());
        assert!(!store.add("hash", b("mine"), None).await.unwrap());
        store.set("hash", b("mine"), None).await.unwrap();
        assert_eq!(
            store.get("hash").await.unwrap(),
            Some(b("mine")),
            "set overwrites"
        );
        assert!(store.delete("list").await.unwrap());
        store.clear().await.unwrap();
        assert_eq!(redis.cli(&["EXISTS", "junk:float"]), "0");
    }

    #[tokio::test]
    async fn touch_reports_existence_whatever_the_expiry() {
        let Some(redis) = redis::redis() else { return };
        let store = store(&redis.url(), "touch").await;
        store.set("persistent", b("v"), None).await.unwrap();
        // PERSIST alone would answer 0 here.
        assert!(store.touch("persistent", None).await.unwrap());
        assert!(!store.touch("missing", None).await.unwrap());
        store
            .set("k", b("v"), Some(Duration::from_secs(60)))
            .await
            .unwrap();
        assert!(store.touch("k", None).await.unwrap());
        assert_eq!(redis.cli(&["TTL", "touch:k"]), "-1");
        assert!(
            store
                .touch("k", Some(Duration::from_millis(1500)))
                .await
                .unwrap()
        );
        let pttl: i64 = redis.cli(&["PTTL", "touch:k"]).parse().unwrap();
        assert!((1..=1500).contains(&pttl), "{pttl}");
    }

    /// How many times the server ran each command since its statistics were last reset
    /// (`CONFIG RESETSTAT`), commands run by scripts included.
    fn command_calls(server: &RedisServer) -> HashMap<String, u64> {
        server
            .cli(&["INFO", "commandstats"])
            .lines()
            .filter_map(|line| {
                let (name, stats) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = stats
                    .split(',')
                    .find_map(|stat| stat.strip_prefix("calls="))?;
                Some((name.to_owned(), calls.parse().ok()?))
            })
            .collect()
    }

    /// Runs `operation` and returns the commands the server ran for it.
    async fn commands_of<T>(
        server: &RedisServer,
        operation: impl Future<Output = T>,
    ) -> HashMap<String, u64> {
        server.cli(&["CONFIG", "RESETSTAT"]);
        operation.await;
        let mut calls = command_calls(server);
        // The statistics' own readers.
        calls.remove("config|resetstat");
        calls.remove("info");
        calls
    }

    fn only(commands: &[(&str, u64)]) -> HashMap<String, u64> {
        commands
            .iter()
            .map(|&(name, calls)| (name.to_owned(), calls))
            .collect()
    }

    /// The atomic, non-blocking commands the store's documentation names: one `MGET` for many
    /// keys, `UNLINK` (never `DEL`), `SCAN` (never `KEYS`, never a flush) for prefixes and
    /// patterns, and a sub-millisecond expiry rounded up rather than turned into a delete.
    #[tokio::test]
    async fn each_operation_sends_the_commands_the_docs_name() {
        let Some(server) = redis::own_server() else {
            return;
        };
        let store = store(&server.url(), "cmds").await;
        let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
        let minute = Some(Duration::from_secs(60));
        let entries = keys.iter().map(|key| (key.clone(), b("v"))).collect();
        let calls = commands_of(&server, store.set_many(entries, minute)).await;
        assert_eq!(calls, only(&[("set", 20)]));
        let calls = commands_of(&server, store.get_many(&keys)).await;
        assert_eq!(calls, only(&[("mget", 1)]));
        let calls = commands_of(&server, store.add("k0", b("w"), minute)).await;
        assert_eq!(calls, only(&[("set", 1)]));
        let calls = commands_of(&server, store.delete_many(&keys[..5])).await;
        assert_eq!(calls, only(&[("unlink", 1)]));
        let calls = commands_of(&server, store.touch("k5", minute)).await;
        assert_eq!(calls, only(&[("pexpire", 1)]));
        let calls = commands_of(
            &server,
            store.set("tiny", b("v"), Some(Duration::from_micros(1))),
        )
        .await;
        assert_eq!(calls, only(&[("set", 1)]), "rounded up, not a delete");

        let calls = commands_of(&server, store.delete_pattern("k1*")).await;
        assert_eq!(calls, only(&[("scan", 1), ("unlink", 1)]));
        server.cli(&["SET", "foreign", "kept"]);
        let calls = commands_of(&server, store.clear()).await;
        assert_eq!(calls, only(&[("scan", 1), ("unlink", 1)]));
        assert_eq!(server.cli(&["DBSIZE"]), "1", "only the foreign key is left");
    }

    /// A proxy to `port` that adds `latency` to everything the server sends, as a distant
    /// server would: a command that waits for its answer before the next is sent pays it once
    /// per command, a pipeline once in all. Returns the proxy's port.
    async fn distant(port: u16, latency: Duration) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                    continue;
                };
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
                });
                let (chunks, mut delayed) = tokio::sync::mpsc::unbounded_channel();
                tokio::spawn(async move {
                    let mut buffer = vec![0; 64 << 10];
                    while let Ok(read @ 1..) = from_server.read(&mut buffer).await {
                        let due = tokio::time::Instant::now() + latency;
                        if chunks.send((due, buffer[..read].to_vec())).is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    while let Some((due, chunk)) = delayed.recv().await {
                        tokio::time::sleep_until(due).await;
                        if to_client.write_all(&chunk).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        proxy_port
    }

    /// `set_many` and `get_many` take one round trip however many keys they have.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_keys_take_one_round_trip() {
        let Some(server) = redis::own_server() else {
            return;
        };
        let latency = Duration::from_millis(100);
        let port = distant(server.port(), latency).await;
        let store = RedisStore::builder(format!("redis://127.0.0.1:{port}"))
            .prefix("trips")
            .command_timeout(RELAXED)
            .connect_timeout(RELAXED)
            .build()
            .await
            .unwrap();
        let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        let entries = keys.iter().map(|key| (key.clone(), b("v"))).collect();
        // One key at a time, 40 round trips would take 4 s.
        let started = Instant::now();
        assert!(store.set_many(entries, None).await.unwrap().is_empty());
        let set = started.elapsed();
        let started = Instant::now();
        let found = store.get_many(&keys).await.unwrap();
        let get = started.elapsed();
        assert!(
            found
                .iter()
                .all(|value| value.as_deref() == Some(&b"v"[..]))
        );
        for took in [set, get] {
            assert!(
                (latency..latency * 10).contains(&took),
                "set_many {set:?}, get_many {get:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_default_pool_and_command_timeout_take_effect() {
        let Some(server) = redis::own_server() else {
            return;
        };
        let store = RedisStore::builder(server.url()).build().await.unwrap();
        let clients = server.cli(&["CLIENT", "LIST"]);
        let connections = clients
            .lines()
            .filter(|client| !client.contains("cmd=client|list"))
            .count();
        assert_eq!(connections, RedisStore::DEFAULT_POOL_SIZE, "{clients}");

        server.pause();
        let started = Instant::now();
        let result = store.get("k").await;
        let waited = started.elapsed();
        server.resume();
        assert!(matches!(result, Err(StoreError::Timeout)), "{result:?}");
        assert!(
            (RedisStore::DEFAULT_COMMAND_TIMEOUT..RELAXED).contains(&waited),
            "{waited:?}"
        );
        assert_eq!(store.stats().timeouts, 1);
    }

    #[tokio::test]
    async fn flush_db_empties_the_whole_database() {
        let Some(server) = redis::own_server() else {
            return;
        };
        let store = store(&server.url(), "flush").await;
        store.set("k", b("v"), None).await.unwrap();
        server.cli(&["SET", "foreign", "v"]);
        store.flush_db().await.unwrap();
        assert_eq!(server.cli(&["DBSIZE"]), "0");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exactly_one_concurrent_locker_wins() {
        let Some(redis) = redis::redis() else { return };
        let store = store(&redis.url(), "locks").await;
        store.clear().await.unwrap();
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.lock("job", Duration::from_secs(30)).await })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            if let Some(lock) = task.await.unwrap().unwrap() {
                winners.push(lock);
            }
        }
        assert_eq!(winners.len(), 1, "exactly one winner");
        let lock = winners.pop().unwrap();
        assert_eq!(lock.key(), "job");
        assert!(store.lock("job", RELAXED).await.unwrap().is_none());
        assert!(lock.release().await.unwrap());
        assert!(
            store.lock("job", RELAXED).await.unwrap().is_some(),
            "free again"
        );

        // Extreme expiries are clamped into what Redis accepts, never an error.
        let forever = store.lock("forever", Duration::MAX).await.unwrap().unwrap();
        assert!(forever.extend(Duration::MAX).await.unwrap());
        assert!(
            forever.extend(Duration::ZERO).await.unwrap(),
            "1 ms at least"
        );
    }

    #[tokio::test]
    async fn only_the_holder_releases_or_extends() {
        let Some(redis) = redis::redis() else { return };
        let store = store(&redis.url(), "holder").await;
        store.clear().await.unwrap();
        let first = store
            .lock("job", Duration::from_millis(200))
            .await
            .unwrap()
            .expect("free");
        // Once the first lock expires, another holder can take it.
        let started = Instant::now();
        let second = loop {
            if let Some(lock) = store.lock("job", Duration::from_secs(30)).await.unwrap() {
                break lock;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the expired lock is taken"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            !first.extend(Duration::from_secs(60)).await.unwrap(),
            "not ours"
        );
        assert!(!first.release().await.unwrap(), "not ours");
        assert!(
            store.lock("job", RELAXED).await.unwrap().is_none(),
            "still held"
        );

        assert!(second.extend(Duration::from_secs(120)).await.unwrap());
        let pttl: i64 = redis.cli(&["PTTL", "holder:job"]).parse().unwrap();
        assert!(pttl > 60_000, "extended: {pttl}");
        assert!(second.release().await.unwrap());
        assert_eq!(redis.cli(&["EXISTS", "holder:job"]), "0");
    }

    #[tokio::test]
    async fn a_store_over_your_own_pool() {
        use fred::prelude::{Builder, ClientLike, Config};
        let Some(redis) = redis::redis() else { return };
        let pool = Builder::from_config(Config::from_url(&redis.url()).unwrap())
            .build_pool(2)
            .unwrap();
        pool.init().await.unwrap();
        let store =
            RedisStore::from_pool(pool.clone(), RedisOptions::new().prefix("pool")).unwrap();
        store.set("k", b("v"), None).await.unwrap();
        assert_eq!(redis.cli(&["GET", "pool:k"]), "v");
        assert!(RedisStore::from_pool(pool.clone(), RedisOptions::new().prefix("")).is_err());
        drop(store);
        // The store never closes a pool it did not make.
        let still: Option<String> = fred::prelude::KeysInterface::get(&pool, "pool:k")
            .await
            .unwrap();
        assert_eq!(still.as_deref(), Some("v"));
    }

    #[tokio::test]
    async fn cache_urls_build_a_redis_store() {
        let Some(redis) = redis::redis() else { return };
        let url = format!(
            "{}/0?store_prefix=fromurl&command_timeout_ms=2000&connect_timeout_ms=2000\
             &pool_size=2&failure_threshold=3&cool_down_ms=500&reconnect_min_ms=20\
             &reconnect_max_ms=300&key_prefix=app&timeout=60",
            redis.url()
        );
        let cache = Cache::from_url(&url).await.unwrap();
        greets(&cache).await;
        assert_eq!(redis.cli(&["EXISTS", "fromurl:app:1:greeting"]), "1");
        let ttl: i64 = redis
            .cli(&["TTL", "fromurl:app:1:greeting"])
            .parse()
            .unwrap();
        assert!((1..=60).contains(&ttl), "{ttl}");
        let debug = format!("{cache:?}");
        assert!(debug.contains("RedisStore"), "{debug}");
        assert!(debug.contains("command_timeout: 2s"), "{debug}");
        assert!(debug.contains("pool_size: 2"), "{debug}");
        assert!(debug.contains("min_delay: 20, max_delay: 300"), "{debug}");
        for (bad, needle) in [
            ("?pool_size=many", "pool_size"),
            ("?command_timeout_ms=", "command_timeout_ms"),
            ("?store_prefix=", "prefix"),
            ("?sotre_prefix=x", "unknown parameter"),
        ] {
            let error = Cache::from_url(&format!("{}{bad}", redis.url()))
                .await
                .unwrap_err()
                .to_string();
            assert!(error.contains(needle), "{bad}: {error}");
        }
    }
}

mod configuration {
    use super::*;

    #[tokio::test]
    async fn unix_and_foreign_urls_are_refused_clearly() {
        for (url, needle) in [
            ("redis+unix:///tmp/redis.sock", "Unix"),
            ("memcached://127.0.0.1", "not a Redis URL scheme"),
            #[cfg(not(feature = "redis-tls"))]
            ("rediss://127.0.0.1:6380", "`redis-tls` feature"),
        ] {
            let error = RedisStore::builder(url)
                .build()
                .await
                .unwrap_err()
                .to_string();
            assert!(error.contains(needle), "{url}: {error}");
        }
    }

    #[tokio::test]
    async fn building_without_a_server_fails_within_the_connect_timeout() {
        // A port nobody listens on: bind it, read it, let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = Instant::now();
        let result = RedisStore::builder(format!("redis://127.0.0.1:{port}"))
            .connect_timeout(Duration::from_millis(300))
            .build()
            .await;
        assert!(
            matches!(
                result,
                Err(axum_cache::Error::Store(
                    StoreError::Unavailable(_) | StoreError::Timeout
                ))
            ),
            "{result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    /// A peer that accepts the connection and never answers (a hung server, or something else
    /// on the port): only the connect timeout can end the build.
    #[tokio::test]
    async fn building_against_a_silent_peer_fails_at_the_connect_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let timeout = Duration::from_millis(300);
        let started = Instant::now();
        let result = RedisStore::builder(format!("redis://127.0.0.1:{port}"))
            .connect_timeout(timeout)
            .build()
            .await;
        let waited = started.elapsed();
        silent.abort();
        assert!(
            matches!(
                result,
                Err(axum_cache::Error::Store(
                    StoreError::Timeout | StoreError::Unavailable(_)
                ))
            ),
            "{result:?}"
        );
        assert!(waited >= timeout, "gave up before the timeout: {waited:?}");
        assert!(waited < RELAXED, "{waited:?}");
    }
}

/// Something on the port that speaks the protocol but is not Redis: it answers `+PONG` to every
/// command. Returns its port.
async fn impostor() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut received = Vec::new();
                let mut buffer = [0; 4096];
                while let Ok(read @ 1..) = socket.read(&mut buffer).await {
                    received.extend_from_slice(&buffer[..read]);
                    let (commands, used) = whole_commands(&received);
                    received.drain(..used);
                    if socket
                        .write_all(&b"+PONG\r\n".repeat(commands))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// How many whole commands (arrays of bulk strings) `bytes` starts with, and their length.
fn whole_commands(bytes: &[u8]) -> (usize, usize) {
    fn line(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
        let end = at
            + bytes
                .get(at..)?
                .windows(2)
                .position(|pair| pair == b"\r\n")?;
        let number = std::str::from_utf8(bytes.get(at + 1..end)?)
            .ok()?
            .parse()
            .ok()?;
        Some((number, end + 2))
    }
    fn command(bytes: &[u8], at: usize) -> Option<usize> {
        let (parts, mut at) = line(bytes, at)?;
        for _ in 0..parts {
            let (length, start) = line(bytes, at)?;
            at = start + length + 2;
            bytes.get(..at)?;
        }
        Some(at)
    }
    let (mut count, mut used) = (0, 0);
    while let Some(end) = command(bytes, used) {
        (count, used) = (count + 1, end);
    }
    (count, used)
}

/// Replies that are not what Redis would send are errors (never a write, an `add` or a lock
/// taken for done), and not outages: the breaker stays closed.
#[tokio::test]
async fn a_peer_that_is_not_redis_never_passes_for_success() {
    let port = impostor().await;
    let store = RedisStore::builder(format!("redis://127.0.0.1:{port}"))
        .command_timeout(RELAXED)
        .build()
        .await
        .expect("connects");
    let set = store.set("k", b("v"), None).await;
    assert!(matches!(set, Err(StoreError::Backend(_))), "{set:?}");
    let add = store.add("k", b("v"), None).await;
    assert!(matches!(add, Err(StoreError::Backend(_))), "{add:?}");
    let lock = store.lock("job", RELAXED).await;
    assert!(matches!(lock, Err(StoreError::Backend(_))), "{lock:?}");
    let entries = vec![("a".to_owned(), b("1")), ("b".to_owned(), b("2"))];
    assert_eq!(
        store.set_many(entries, None).await.unwrap(),
        ["a", "b"],
        "none stored"
    );
    let deleted = store.delete("k").await;
    assert!(
        matches!(deleted, Err(StoreError::Backend(_))),
        "{deleted:?}"
    );
    let stats = store.stats();
    assert_eq!(
        (stats.failures, stats.breaker_open),
        (0, false),
        "{stats:?}"
    );
}

#[cfg(feature = "redis-tls")]
mod tls {
    use super::*;
    use axum_cache::Error;

    /// Whether building failed in the TLS handshake, for `reason`.
    fn refused(result: &Result<RedisStore, Error>, reason: &str) -> bool {
        matches!(result, Err(Error::Store(StoreError::Unavailable(message))) if message.contains(reason))
    }

    #[tokio::test]
    async fn conforms_over_tls() {
        let Some(tls) = redis::tls_server(false) else {
            return;
        };
        let store = RedisStore::builder(tls.url())
            .prefix("tls")
            .command_timeout(RELAXED)
            .tls_root_certificates_pem(tls.pem("ca.crt"))
            .build()
            .await
            .expect("connects over TLS");
        conformance::run(&store, &TestClock::new(tokio::time::sleep)).await;
        store.set("k", b("through TLS"), None).await.unwrap();
        // The plain port of the same server sees what went through the TLS one.
        assert_eq!(tls.server.cli(&["GET", "tls:k"]), "through TLS");
    }

    #[tokio::test]
    async fn a_certificate_from_another_authority_is_refused() {
        let Some(tls) = redis::tls_server(false) else {
            return;
        };
        let untrusted = RedisStore::builder(tls.url())
            .connect_timeout(RELAXED)
            .tls_root_certificates_pem(tls.pem("other-ca.crt"))
            .build()
            .await;
        assert!(
            refused(&untrusted, "UnknownIssuer"),
            "connected to an unverified server: {untrusted:?}"
        );
        // The system's authorities do not know the test authority either (or there are none,
        // which is a configuration error): no connection in both cases.
        let system = RedisStore::builder(tls.url())
            .connect_timeout(RELAXED)
            .build()
            .await;
        assert!(
            matches!(system, Err(Error::Config(_))) || refused(&system, "UnknownIssuer"),
            "connected to a server no system authority vouches for: {system:?}"
        );
    }

    #[tokio::test]
    async fn a_server_that_verifies_clients_needs_the_identity() {
        let Some(tls) = redis::tls_server(true) else {
            return;
        };
        let anonymous = RedisStore::builder(tls.url())
            .connect_timeout(RELAXED)
            .tls_root_certificates_pem(tls.pem("ca.crt"))
            .build()
            .await;
        assert!(
            refused(&anonymous, "CertificateRequired"),
            "a client without a certificate got in: {anonymous:?}"
        );
        let store = RedisStore::builder(tls.url())
            .prefix("mtls")
            .command_timeout(RELAXED)
            .tls_root_certificates_pem(tls.pem("ca.crt"))
            .tls_client_identity_pem(tls.pem("client.crt"), tls.pem("client.key"))
            .build()
            .await
            .expect("connects with a client certificate");
        assert!(store.add("n", b("41"), None).await.unwrap());
        assert_eq!(store.incr("n", 1).await.unwrap(), 42);
        assert_eq!(tls.server.cli(&["GET", "mtls:n"]), "42");
    }

    #[tokio::test]
    async fn cache_urls_name_the_certificate_files() {
        let Some(tls) = redis::tls_server(true) else {
            return;
        };
        let file = |name: &str| tls.file(name).to_str().expect("UTF-8 path").to_owned();
        let url = format!(
            "{}?store_prefix=viaurl&tls_ca_file={}&tls_cert_file={}&tls_key_file={}",
            tls.url(),
            file("ca.crt"),
            file("client.crt"),
            file("client.key")
        );
        let cache = Cache::from_url(&url).await.expect("connects over TLS");
        cache.set("k", "v", Timeout::Default).await.unwrap();
        assert_eq!(
            cache.get::<String>("k").await.unwrap().as_deref(),
            Some("v")
        );
        assert_eq!(tls.server.cli(&["EXISTS", "viaurl::1:k"]), "1");
    }

    #[tokio::test]
    async fn tls_settings_on_a_plain_url_are_refused() {
        let error = RedisStore::builder("redis://127.0.0.1:9")
            .tls_root_certificates_pem(b"-----BEGIN CERTIFICATE-----".to_vec())
            .build()
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{error}");
        assert!(error.to_string().contains("rediss://"), "{error}");
    }
}

mod cluster {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conforms_across_slots() {
        let Some(cluster) = redis::cluster() else {
            return;
        };
        let store = store(&cluster.url(), "cluster").await;
        assert!(format!("{store:?}").contains("clustered: true"));
        conformance::run(&store, &TestClock::new(tokio::time::sleep)).await;
        conformance::run_concurrent(Arc::new(store.clone())).await;

        // Keys spread over every primary.
        store.clear().await.unwrap();
        let keys: Vec<String> = (0..300).map(|i| format!("spread:{i}")).collect();
        let entries = keys
            .iter()
            .map(|key| (key.clone(), Bytes::from(key.clone())))
            .collect();
        assert!(store.set_many(entries, None).await.unwrap().is_empty());
        let counts = cluster.key_counts();
        assert!(counts.iter().all(|&count| count > 0), "{counts:?}");
        let found = store.get_many(&keys).await.unwrap();
        for (key, value) in keys.iter().zip(&found) {
            assert_eq!(value.as_deref(), Some(key.as_bytes()));
        }

        cluster.cli(&["SET", "foreign", "kept"]);
        let other = super::store(&cluster.url(), "cluster-other").await;
        other.set("spread:1", b("other"), None).await.unwrap();
        assert_eq!(store.delete_pattern("spread:1*").await.unwrap(), 111);
        assert_eq!(store.delete_many(&keys).await.unwrap(), 300 - 111);
        assert!(
            store
                .set_many(vec![("a".into(), b("1")), ("b".into(), b("2"))], None)
                .await
                .unwrap()
                .is_empty()
        );
        store.clear().await.unwrap();
        assert_eq!(
            store
                .get_many(&["a".to_owned(), "b".to_owned()])
                .await
                .unwrap(),
            [None, None]
        );
        assert_eq!(other.get("spread:1").await.unwrap(), Some(b("other")));
        assert_eq!(cluster.cli(&["GET", "foreign"]), "kept");

        let lock = store.lock("job", RELAXED).await.unwrap().expect("free");
        assert!(store.lock("job", RELAXED).await.unwrap().is_none());
        assert!(lock.release().await.unwrap());

        // The cluster's URL form, as `Cache::from_url` takes it.
        let url = format!(
            "{}&store_prefix=fromurl&command_timeout_ms=5000",
            cluster.url()
        );
        let cache = Cache::from_url(&url).await.unwrap();
        assert!(format!("{cache:?}").contains("clustered: true"));
        greets(&cache).await;
        assert_eq!(cluster.cli(&["EXISTS", "fromurl::1:greeting"]), "1");

        // Asked for explicitly, a flush empties every primary, other prefixes' keys included.
        let entries = keys.iter().map(|key| (key.clone(), b("v"))).collect();
        assert!(store.set_many(entries, None).await.unwrap().is_empty());
        assert!(cluster.key_counts().iter().all(|&count| count > 0));
        store.flush_db().await.unwrap();
        let counts = cluster.key_counts();
        assert!(counts.iter().all(|&count| count == 0), "{counts:?}");
    }
}

mod sentinel {
    use super::*;

    #[tokio::test]
    async fn connects_to_the_primary_that_sentinel_names() {
        let Some(sentinel) = redis::sentinel() else {
            return;
        };
        let store = store(&sentinel.url(), "sentinel").await;
        store.set("k", b("v"), None).await.unwrap();
        assert_eq!(sentinel.primary.cli(&["GET", "sentinel:k"]), "v");
        assert!(store.add("n", b("1"), None).await.unwrap());
        assert_eq!(store.incr("n", 41).await.unwrap(), 42);
        assert_eq!(store.delete_pattern("*").await.unwrap(), 2);
        let cache = Cache::from_url(&format!("{}&store_prefix=viaurl", sentinel.url()))
            .await
            .unwrap();
        cache.set("k", "v", Timeout::Default).await.unwrap();
        assert_eq!(sentinel.primary.cli(&["EXISTS", "viaurl::1:k"]), "1");
    }
}

mod outages {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(200);
    /// Scheduling slack on a busy machine.
    const MARGIN: Duration = Duration::from_millis(150);

    async fn fragile_store(server: &RedisServer, failures: u32) -> RedisStore {
        RedisStore::builder(server.url())
            .prefix("outage")
            .command_timeout(TIMEOUT)
            .breaker(failures, Duration::from_millis(500))
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
            .build()
            .await
            .expect("connects")
    }

    fn is_outage(result: &Result<impl Sized, StoreError>) -> bool {
        matches!(
            result,
            Err(StoreError::Timeout | StoreError::Unavailable(_))
        )
    }

    async fn recovers(store: &RedisStore) -> Duration {
        eventually(Duration::from_secs(10), "recovery", || async {
            store.set("after", b("v"), None).await.is_ok()
        })
        .await
    }

    #[tokio::test]
    async fn a_killed_server_fails_fast_then_recovers_without_restart() {
        let Some(mut server) = redis::own_server() else {
            return;
        };
        let store = fragile_store(&server, 5).await;
        store.set("k", b("v"), None).await.unwrap();
        server.kill();

        for attempt in 0..5 {
            let started = Instant::now();
            let result = store.get("k").await;
            let took = started.elapsed();
            assert!(is_outage(&result), "attempt {attempt}: {result:?}");
            assert!(took <= TIMEOUT + MARGIN, "attempt {attempt} took {took:?}");
        }
        let stats = store.stats();
        assert!(stats.breaker_open, "{stats:?}");
        assert_eq!((stats.failures, stats.breaker_opens), (5, 1), "{stats:?}");

        // Open: refused without asking Redis.
        for _ in 0..100 {
            let started = Instant::now();
            assert!(matches!(
                store.get("k").await,
                Err(StoreError::Unavailable(_))
            ));
            assert!(started.elapsed() < Duration::from_millis(10));
        }
        assert!(store.stats().fast_failed >= 100);

        server.restart();
        let took = recovers(&store).await;
        assert!(took < Duration::from_secs(5), "recovered after {took:?}");
        assert_eq!(store.get("after").await.unwrap(), Some(b("v")));
        assert!(!store.stats().breaker_open);
    }

    #[tokio::test]
    async fn a_hung_server_costs_at_most_the_timeout_per_call() {
        let Some(server) = redis::own_server() else {
            return;
        };
        let store = fragile_store(&server, 3).await;
        store.set("k", b("v"), None).await.unwrap();
        server.pause();

        for attempt in 0..3 {
            let started = Instant::now();
            let result = store.set("k", b("w"), None).await;
            let took = started.elapsed();
            assert!(
                matches!(result, Err(StoreError::Timeout)),
                "attempt {attempt}: {result:?}"
            );
            assert!(took >= TIMEOUT - Duration::from_millis(20), "{took:?}");
            assert!(took <= TIMEOUT + MARGIN, "attempt {attempt} took {took:?}");
        }
        let started = Instant::now();
        assert!(matches!(
            store.incr("n", 1).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(
            started.elapsed() < Duration::from_millis(10),
            "breaker open"
        );
        assert_eq!(store.stats().timeouts, 3);

        server.resume();
        let took = recovers(&store).await;
        assert!(took < Duration::from_secs(5), "recovered after {took:?}");
        assert!(!store.stats().breaker_open);
    }

    #[tokio::test]
    async fn a_cache_that_ignores_errors_misses_while_redis_is_down() {
        let Some(mut server) = redis::own_server() else {
            return;
        };
        let store = fragile_store(&server, 5).await;
        let cache = Cache::builder(store.clone()).ignore_errors(true).build();
        cache.set("k", "v", Timeout::Default).await.unwrap();
        server.kill();

        let started = Instant::now();
        for _ in 0..20 {
            assert_eq!(cache.get::<String>("k").await.unwrap(), None);
            cache.set("k", "w", Timeout::Default).await.unwrap();
            assert!(!cache.add("other", "x", Timeout::Default).await.unwrap());
        }
        // Five calls may wait for the timeout; the breaker answers the other 55 at once.
        assert!(
            started.elapsed() < TIMEOUT * 5 + MARGIN * 3,
            "{:?}",
            started.elapsed()
        );
        assert_eq!(cache.store_errors(), 60);
        assert!(
            cache.incr("n", 1).await.is_err(),
            "incr still reports the error"
        );

        server.restart();
        recovers(&store).await;
        cache.set("k", "back", Timeout::Default).await.unwrap();
        assert_eq!(
            cache.get::<String>("k").await.unwrap().as_deref(),
            Some("back")
        );
    }
}
