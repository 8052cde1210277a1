//! Fragments (Django's `{% cache %}`), tags, pattern deletes and versioned keys, on the memory
//! store and on a real Redis; template fragments through MiniJinja.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::Extension;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum_cache::store::MemoryStore;
use axum_cache::{Cache, CacheLayer, CacheStatus, CacheTags, Timeout};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Counts renders.
#[derive(Clone, Default)]
struct Renders(Arc<AtomicUsize>);

impl Renders {
    fn render(&self, text: &str) -> String {
        self.0.fetch_add(1, Ordering::SeqCst);
        text.to_owned()
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

mod fragments {
    use super::*;

    #[test]
    fn keys_are_unambiguous() {
        let key = |name: &str, vary: &[&axum_cache::VaryOn]| Cache::fragment_key(name, vary);
        assert!(key("a.fragment", &[]).starts_with("template.cache.a.fragment."));
        assert_ne!(key("foo", &[&"abc"]), key("foo", &[&"abc", &""]));
        assert_ne!(key("foo", &[&"abc:def"]), key("foo", &[&"abc", &"def"]));
        assert_ne!(key("foo", &[&1, &2]), key("foo", &[&12]));
        assert_ne!(key("foo", &[&"x"]), key("bar", &[&"x"]));
        assert_eq!(key("foo", &[&"42º", &"😀"]), key("foo", &[&"42º", &"😀"]));
        let poem = "x".repeat(10_000);
        assert!(key("foo", &[&poem]).len() < 100, "long values are hashed");
    }

    #[test]
    fn handlers_awaiting_fragments_stay_send() {
        fn is_send<T: Send>(_: &T) {}
        let cache = Cache::new(MemoryStore::new());
        let user = String::from("ada");
        // The vary-on array is a temporary that lives across the `.await`.
        let handler = async {
            cache
                .fragment("sidebar", &[&user, &7], Timeout::Default, || async {
                    String::new()
                })
                .await
        };
        is_send(&handler);
    }

    #[tokio::test]
    async fn the_same_name_and_values_render_once() {
        // Django: {% cache 2 test %}cache03 then a second template → the cached cache03.
        let cache = Cache::new(MemoryStore::new());
        let renders = Renders::default();
        let first = cache
            .fragment("test", &[], Timeout::secs(2), || async {
                renders.render("cache03")
            })
            .await
            .unwrap();
        let second = cache
            .fragment("test", &[], Timeout::secs(2), || async {
                renders.render("cache04")
            })
            .await
            .unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("cache03", "cache03"));
        assert_eq!(renders.count(), 1);
    }

    #[tokio::test]
    async fn vary_on_values_select_the_entry() {
        let cache = Cache::new(MemoryStore::new());
        let renders = Renders::default();
        let render = |foo: i32, text: &'static str| {
            let (cache, renders) = (cache.clone(), renders.clone());
            async move {
                cache
                    .fragment("test", &[&foo], Timeout::Default, || async move {
                        renders.render(text)
                    })
                    .await
                    .unwrap()
            }
        };
        assert_eq!(render(1, "cache05").await, "cache05");
        assert_eq!(render(1, "cache06").await, "cache05", "same value, cached");
        assert_eq!(
            render(2, "cache07").await,
            "cache07",
            "another value, another entry"
        );
        assert_eq!(renders.count(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn timeouts_expire_and_never_keeps_forever() {
        let cache = Cache::new(MemoryStore::new());
        let renders = Renders::default();
        cache
            .fragment("short", &[], Timeout::secs(2), || async {
                renders.render("a")
            })
            .await
            .unwrap();
        cache
            .fragment("forever", &[], Timeout::Never, || async {
                renders.render("b")
            })
            .await
            .unwrap();
        tokio::time::advance(std::time::Duration::from_secs(3)).await;
        let short = cache
            .fragment("short", &[], Timeout::secs(2), || async {
                renders.render("c")
            })
            .await
            .unwrap();
        let forever = cache
            .fragment("forever", &[], Timeout::Never, || async {
                renders.render("d")
            })
            .await
            .unwrap();
        assert_eq!((short.as_str(), forever.as_str()), ("c", "b"));
    }

    #[tokio::test]
    async fn invalidate_fragment_removes_one_entry() {
        let cache = Cache::new(MemoryStore::new());
        let renders = Renders::default();
        for user in ["ada", "bob"] {
            cache
                .fragment("sidebar", &[&user], Timeout::Default, || async {
                    renders.render(user)
                })
                .await
                .unwrap();
        }
        assert!(
            cache
                .invalidate_fragment("sidebar", &[&"ada"])
                .await
                .unwrap()
        );
        assert!(
            !cache
                .invalidate_fragment("sidebar", &[&"ada"])
                .await
                .unwrap()
        );
        for user in ["ada", "bob"] {
            cache
                .fragment("sidebar", &[&user], Timeout::Default, || async {
                    renders.render(user)
                })
                .await
                .unwrap();
        }
        assert_eq!(renders.count(), 3, "ada rendered again, bob still cached");
    }

    #[tokio::test]
    async fn versioned_keys_follow_updates() {
        // The `updated_at` technique: a new version of the object is a new key.
        let cache = Cache::new(MemoryStore::new());
        let renders = Renders::default();
        let card = |updated_at: u64, text: &'static str| {
            let (cache, renders) = (cache.clone(), renders.clone());
            async move {
                cache
                    .fragment("card", &[&7, &updated_at], Timeout::Never, || async move {
                        renders.render(text)
                    })
                    .await
                    .unwrap()
            }
        };
        assert_eq!(card(100, "v1").await, "v1");
        assert_eq!(card(100, "v1 again").await, "v1");
        assert_eq!(card(200, "v2").await, "v2", "edited: new key");
        assert_eq!(renders.count(), 2);
    }
}

mod tags {
    use super::*;

    #[tokio::test]
    async fn invalidating_a_tag_misses_every_entry_that_carries_it() {
        let cache = Cache::new(MemoryStore::new());
        let articles = cache.with_tags(["articles"]);
        articles
            .set("article:1", "one", Timeout::Never)
            .await
            .unwrap();
        cache
            .with_tags(["articles", "user:7"])
            .set("article:2", "two", Timeout::Never)
            .await
            .unwrap();
        cache
            .with_tags(["user:7"])
            .set("profile:7", "ada", Timeout::Never)
            .await
            .unwrap();
        cache.set("untagged", "kept", Timeout::Never).await.unwrap();
        cache.invalidate_tag("articles").await.unwrap();
        assert_eq!(cache.get::<String>("article:1").await.unwrap(), None);
        assert_eq!(cache.get::<String>("article:2").await.unwrap(), None);
        assert_eq!(
            cache.get::<String>("profile:7").await.unwrap().as_deref(),
            Some("ada")
        );
        assert_eq!(
            cache.get::<String>("untagged").await.unwrap().as_deref(),
            Some("kept")
        );
        // Written after the invalidation: valid.
        articles
            .set("article:1", "one again", Timeout::Never)
            .await
            .unwrap();
        assert_eq!(
            cache.get::<String>("article:1").await.unwrap().as_deref(),
            Some("one again")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_value_computed_before_an_invalidation_is_not_served() {
        let cache = Cache::new(MemoryStore::new());
        let tagged = cache.with_tags(["prices"]);
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let computing = {
            let (tagged, gate, started) = (tagged.clone(), Arc::clone(&gate), Arc::clone(&started));
            tokio::spawn(async move {
                tagged
                    .get_or_set("price", Timeout::Never, || async move {
                        started.store(1, Ordering::SeqCst);
                        drop(gate.acquire().await.unwrap());
                        10
                    })
                    .await
                    .unwrap()
            })
        };
        // The computation has started; the price changes meanwhile.
        while started.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        cache.invalidate_tag("prices").await.unwrap();
        gate.add_permits(1);
        assert_eq!(
            computing.await.unwrap(),
            10,
            "the caller gets what it computed"
        );
        assert_eq!(
            cache.get::<i32>("price").await.unwrap(),
            None,
            "but it is not served again"
        );
    }

    #[tokio::test]
    async fn an_evicted_tag_invalidates_rather_than_revives() {
        let cache = Cache::new(MemoryStore::new());
        cache
            .with_tags(["articles"])
            .set("article:1", "one", Timeout::Never)
            .await
            .unwrap();
        // Remove the tag's key (the crate's own `#tag:` key space) as an eviction would.
        let removed = cache.store().delete_pattern("#tag:*").await.unwrap();
        assert_eq!(removed, 1);
        // A new entry brings the tag's key back (before anything reads, and so deletes, the
        // old one): the old entry stays dead, the new one lives.
        cache
            .with_tags(["articles"])
            .set("article:2", "two", Timeout::Never)
            .await
            .unwrap();
        assert_eq!(cache.get::<String>("article:1").await.unwrap(), None);
        assert_eq!(
            cache.get::<String>("article:2").await.unwrap().as_deref(),
            Some("two")
        );
    }

    /// An invalidated tag whose key is then evicted and brought back by a new tagged entry
    /// never revives an invalidated page.
    #[tokio::test]
    async fn an_invalidated_page_stays_dead_after_its_tag_key_comes_back() {
        for cache in [
            Cache::new(MemoryStore::new()),
            Cache::new(support::stores::BytesOnly::default()),
        ] {
            let renders = Renders::default();
            let app = tagged_site(&cache, &renders);
            fetch(&app, "/articles/7").await;
            assert_eq!(fetch(&app, "/articles/7").await.0, Some(CacheStatus::Hit));
            cache.invalidate_tag("articles").await.unwrap();
            cache.store().delete_pattern("#tag:*").await.unwrap();
            cache
                .with_tags(["articles", "article:7"])
                .set("unrelated", "x", Timeout::Never)
                .await
                .unwrap();
            assert_eq!(
                fetch(&app, "/articles/7").await.0,
                Some(CacheStatus::Stored),
                "the invalidated page was served"
            );
            assert_eq!(renders.count(), 2);
        }
    }

    /// After `invalidate_tag`, `has_key`, `touch` and `add` agree with `get`: the entry is gone.
    #[tokio::test]
    async fn an_invalidated_entry_is_gone_for_has_key_touch_and_add() {
        let cache = Cache::new(MemoryStore::new());
        let tagged = cache.with_tags(["t"]);
        for key in ["a", "b", "c"] {
            tagged.set(key, "old", Timeout::Never).await.unwrap();
        }
        assert!(cache.has_key("a").await.unwrap());
        cache.invalidate_tag("t").await.unwrap();
        assert!(!cache.has_key("a").await.unwrap());
        assert!(!cache.touch("b", Timeout::secs(60)).await.unwrap());
        assert!(cache.add("c", "new", Timeout::Never).await.unwrap());
        assert_eq!(
            cache.get::<String>("c").await.unwrap().as_deref(),
            Some("new")
        );
        assert!(!cache.add("c", "newer", Timeout::Never).await.unwrap());
    }

    /// More tags than a value can carry is an error, never a tag dropped (which would keep the
    /// value alive after that tag's invalidation).
    #[tokio::test]
    async fn too_many_tags_is_an_error() {
        let cache = Cache::new(MemoryStore::new());
        let tags: Vec<String> = (0..300).map(|i| format!("t{i}")).collect();
        let error = cache
            .with_tags(tags)
            .set("k", "v", Timeout::Never)
            .await
            .unwrap_err();
        assert!(matches!(error, axum_cache::Error::Encode { .. }), "{error}");
        assert_eq!(cache.get::<String>("k").await.unwrap(), None);
    }

    /// As documented: a counter written through a tagged handle is not an integer to `incr`.
    #[tokio::test]
    async fn a_tagged_integer_is_not_a_counter() {
        let cache = Cache::new(MemoryStore::new());
        cache
            .with_tags(["t"])
            .set("n", &41, Timeout::Never)
            .await
            .unwrap();
        let error = cache.incr("n", 1).await.unwrap_err();
        assert!(
            matches!(error, axum_cache::Error::NotAnInteger { .. }),
            "{error}"
        );
        assert_eq!(cache.get::<i64>("n").await.unwrap(), Some(41));
        cache.set("n", &41, Timeout::Never).await.unwrap();
        assert_eq!(cache.incr("n", 1).await.unwrap(), 42);
    }

    /// Tags that cannot be checked (the store failed) make a miss, but the value is kept: it is
    /// not known to be dead.
    #[tokio::test]
    async fn a_failed_tag_check_is_a_miss_that_keeps_the_value() {
        let store = support::stores::BytesOnly::default();
        let cache = Cache::builder(store.clone()).ignore_errors(true).build();
        cache
            .with_tags(["t"])
            .set("k", "kept", Timeout::Never)
            .await
            .unwrap();
        store.fail_get_many.store(true, Ordering::SeqCst);
        assert_eq!(cache.get::<String>("k").await.unwrap(), None);
        store.fail_get_many.store(false, Ordering::SeqCst);
        assert_eq!(
            cache.get::<String>("k").await.unwrap().as_deref(),
            Some("kept")
        );
    }

    /// The crate's own records (tag times, locks) live where no application key can reach
    /// them: not `axum-cache.tag:t` at version 0, not `k|lock`.
    #[tokio::test]
    async fn application_keys_never_reach_the_crates_own_records() {
        let store = support::stores::BytesOnly::default();
        let cache = Cache::builder(store)
            .lock_across_processes(
                std::time::Duration::from_secs(5),
                std::time::Duration::from_secs(5),
            )
            .build();
        cache
            .with_tags(["t"])
            .set("article", "one", Timeout::Never)
            .await
            .unwrap();
        assert!(
            !cache
                .with_version(0)
                .has_key("axum-cache.tag:t")
                .await
                .unwrap()
        );
        assert!(!cache.with_version(0).has_key("t").await.unwrap());
        let during = cache
            .get_or_set("k", Timeout::Default, || async {
                // The lock of `k` is held now.
                cache.has_key("k|lock").await.unwrap()
            })
            .await
            .unwrap();
        assert!(!during, "an application key saw the lock of `k`");
        assert_eq!(
            cache.get::<String>("article").await.unwrap().as_deref(),
            Some("one")
        );
    }

    #[tokio::test]
    async fn fragments_and_get_or_set_carry_tags() {
        let cache = Cache::new(MemoryStore::new());
        let renders = Renders::default();
        let tagged = cache.with_tags(["menu"]);
        for _ in 0..2 {
            tagged
                .fragment("menu", &[], Timeout::Never, || async {
                    renders.render("menu")
                })
                .await
                .unwrap();
        }
        assert_eq!(renders.count(), 1);
        cache.invalidate_tag("menu").await.unwrap();
        tagged
            .fragment("menu", &[], Timeout::Never, || async {
                renders.render("menu")
            })
            .await
            .unwrap();
        assert_eq!(renders.count(), 2);
    }

    pub(super) fn tagged_site(cache: &Cache, renders: &Renders) -> Router {
        let (a, b) = (renders.clone(), renders.clone());
        Router::new()
            .route(
                "/articles/7",
                get(move || {
                    let text = a.render("article 7");
                    async move { (Extension(CacheTags::new(["articles", "article:7"])), text) }
                }),
            )
            .route(
                "/about",
                get(move || {
                    let text = b.render("about");
                    async move { ([("cache-tag", "pages, about")], text) }
                }),
            )
            .layer(CacheLayer::new(cache.clone()))
    }

    pub(super) async fn fetch(app: &Router, path: &str) -> (Option<CacheStatus>, bool, String) {
        let request = Request::builder()
            .uri(path)
            .header("host", "example.com")
            .body(Body::empty())
            .unwrap();
        let tasks = support::tasks::Tasks::now();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let status = response.extensions().get::<CacheStatus>().copied();
        let leaked = response.headers().contains_key("cache-tag");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        // Let a remote-store write spawned at the end of the body land before the next request.
        tasks.wait_for().await;
        (status, leaked, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn tagged_pages_are_regenerated_after_an_invalidation() {
        for cache in [
            Cache::new(MemoryStore::new()),
            Cache::new(support::stores::BytesOnly::default()),
        ] {
            let renders = Renders::default();
            let app = tagged_site(&cache, &renders);
            for path in ["/articles/7", "/about", "/articles/7", "/about"] {
                let (_, leaked, _) = fetch(&app, path).await;
                assert!(!leaked, "the Cache-Tag header never reaches the client");
            }
            assert_eq!(renders.count(), 2);
            cache.invalidate_tag("article:7").await.unwrap();
            let (status, _, body) = fetch(&app, "/articles/7").await;
            assert_eq!(
                (status, body.as_str()),
                (Some(CacheStatus::Stored), "article 7")
            );
            assert_eq!(
                fetch(&app, "/about").await.0,
                Some(CacheStatus::Hit),
                "other tags kept"
            );
            assert_eq!(fetch(&app, "/articles/7").await.0, Some(CacheStatus::Hit));
            cache.invalidate_tag("pages").await.unwrap();
            assert_eq!(
                fetch(&app, "/about").await.0,
                Some(CacheStatus::Stored),
                "header tags"
            );
            assert_eq!(renders.count(), 4);
        }
    }

    /// A page with more tags than a stored page can count reaches the client whole and is not
    /// stored, rather than stored in a form that cannot be read back.
    #[tokio::test]
    async fn a_page_with_more_tags_than_the_stored_form_holds_is_passed_on_unstored() {
        let store = support::stores::BytesOnly::default();
        let cache = Cache::new(store.clone());
        let renders = Renders::default();
        let counted = renders.clone();
        let app = Router::new()
            .route(
                "/tagged",
                get(move || {
                    let text = counted.render("many tags");
                    let tags = CacheTags::new((0..70_000).map(|i| format!("t{i}")));
                    async move { (Extension(tags), text) }
                }),
            )
            .layer(CacheLayer::new(cache));
        for _ in 0..2 {
            let (_, leaked, body) = fetch(&app, "/tagged").await;
            assert_eq!(body, "many tags");
            assert!(!leaked);
        }
        assert_eq!(
            renders.count(),
            2,
            "nothing was stored, so both requests rendered"
        );
        assert!(
            store.written().iter().all(|key| !key.contains("/tagged")),
            "no record of the page was written: {:?}",
            store.written()
        );
    }
}

mod patterns {
    use super::*;

    #[tokio::test]
    async fn delete_pattern_removes_only_matching_keys_of_this_cache() {
        let store = MemoryStore::new();
        let cache = Cache::builder(store.clone()).key_prefix("site").build();
        let other = Cache::builder(store).key_prefix("other").build();
        for key in ["user:1:profile", "user:1:posts", "user:2:profile", "users"] {
            cache.set(key, &1, Timeout::Never).await.unwrap();
            other.set(key, &1, Timeout::Never).await.unwrap();
        }
        assert_eq!(cache.delete_pattern("user:1:*").await.unwrap(), 2);
        assert!(!cache.has_key("user:1:profile").await.unwrap());
        assert!(cache.has_key("user:2:profile").await.unwrap());
        assert!(cache.has_key("users").await.unwrap());
        assert!(
            other.has_key("user:1:profile").await.unwrap(),
            "another prefix is untouched"
        );
        assert_eq!(
            cache.with_version(2).delete_pattern("*").await.unwrap(),
            0,
            "another version"
        );
    }

    #[tokio::test]
    async fn a_prefix_with_glob_characters_matches_only_itself() {
        let store = MemoryStore::new();
        let starred = Cache::builder(store.clone()).key_prefix("a*").build();
        let plain = Cache::builder(store).key_prefix("abc").build();
        starred.set("k", &1, Timeout::Never).await.unwrap();
        plain.set("k", &1, Timeout::Never).await.unwrap();
        assert_eq!(starred.delete_pattern("*").await.unwrap(), 1);
        assert!(plain.has_key("k").await.unwrap());
    }

    #[tokio::test]
    async fn a_custom_key_function_cannot_delete_by_pattern() {
        let cache = Cache::builder(MemoryStore::new())
            .key_function(|key, _, _| key.to_owned())
            .build();
        assert!(cache.delete_pattern("*").await.is_err());
    }
}

#[cfg(feature = "redis")]
mod on_redis {
    use super::*;
    use axum_cache::store::RedisStore;
    use support::redis;

    async fn cache(url: &str) -> Cache {
        let store = RedisStore::builder(url)
            .prefix("invalidation")
            .command_timeout(std::time::Duration::from_secs(5))
            .build()
            .await
            .unwrap();
        Cache::builder(store).key_prefix("app").build()
    }

    #[tokio::test]
    async fn a_tag_invalidated_by_one_instance_misses_in_another() {
        let Some(server) = redis::redis() else { return };
        let (a, b) = (cache(&server.url()).await, cache(&server.url()).await);
        a.with_tags(["articles"])
            .set("article:1", "one", Timeout::Never)
            .await
            .unwrap();
        assert_eq!(
            b.get::<String>("article:1").await.unwrap().as_deref(),
            Some("one")
        );
        b.invalidate_tag("articles").await.unwrap();
        assert_eq!(a.get::<String>("article:1").await.unwrap(), None);
    }

    #[tokio::test]
    async fn pages_on_redis_follow_tags() {
        let Some(server) = redis::redis() else { return };
        let (a, b) = (cache(&server.url()).await, cache(&server.url()).await);
        let renders = Renders::default();
        let app = super::tags::tagged_site(&a, &renders);
        for _ in 0..2 {
            super::tags::fetch(&app, "/articles/7").await;
        }
        assert_eq!(renders.count(), 1);
        b.invalidate_tag("articles").await.unwrap();
        super::tags::fetch(&app, "/articles/7").await;
        assert_eq!(renders.count(), 2);
    }

    #[tokio::test]
    async fn delete_pattern_on_redis() {
        let Some(server) = redis::redis() else { return };
        let cache = cache(&server.url()).await;
        for key in ["user:1:profile", "user:1:posts", "user:2:profile"] {
            cache.set(key, &1, Timeout::Never).await.unwrap();
        }
        assert_eq!(cache.delete_pattern("user:1:*").await.unwrap(), 2);
        assert!(cache.has_key("user:2:profile").await.unwrap());
    }
}

#[cfg(feature = "minijinja")]
mod templates {
    use super::*;
    use axum_cache::Caches;
    use minijinja::{Environment, context};

    fn environment(cache: Cache, renders: &Renders) -> Environment<'static> {
        let mut env = Environment::new();
        axum_cache::template::register(&mut env, cache);
        let renders = renders.clone();
        env.add_function("expensive", move |text: String| renders.render(&text));
        env
    }

    #[test]
    fn a_template_rendered_twice_renders_the_cached_block_once() {
        let cache = Cache::new(MemoryStore::new());
        let renders = Renders::default();
        let mut env = environment(cache.clone(), &renders);
        env.add_template(
            "page",
            r#"<h1>{{ title }}</h1>{% call cache(500, "sidebar", user) %}<aside>{{ expensive("for " ~ user) }}</aside>{% endcall %}"#,
        )
        .unwrap();
        let page = env.get_template("page").unwrap();
        let first = page
            .render(context! { title => "One", user => "ada" })
            .unwrap();
        let second = page
            .render(context! { title => "Two", user => "ada" })
            .unwrap();
        assert_eq!(first, "<h1>One</h1><aside>for ada</aside>");
        assert_eq!(second, "<h1>Two</h1><aside>for ada</aside>");
        assert_eq!(renders.count(), 1, "the block rendered once");
        page.render(context! { title => "Three", user => "bob" })
            .unwrap();
        assert_eq!(renders.count(), 2, "another vary-on value renders again");
    }

    #[test]
    fn templates_share_entries_with_the_fragment_api() {
        let cache = Cache::new(MemoryStore::new());
        let renders = Renders::default();
        let mut env = environment(cache.clone(), &renders);
        env.add_template(
            "a",
            r#"{% call cache(none, "test", foo) %}cache08{% endcall %}"#,
        )
        .unwrap();
        env.add_template(
            "b",
            r#"{% call cache(none, "test", foo) %}cache09{% endcall %}"#,
        )
        .unwrap();
        assert_eq!(
            env.get_template("a")
                .unwrap()
                .render(context! { foo => 1 })
                .unwrap(),
            "cache08"
        );
        assert_eq!(
            env.get_template("b")
                .unwrap()
                .render(context! { foo => 1 })
                .unwrap(),
            "cache08"
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(
            runtime
                .block_on(cache.invalidate_fragment("test", &[&1]))
                .unwrap()
        );
        assert_eq!(
            env.get_template("b")
                .unwrap()
                .render(context! { foo => 1 })
                .unwrap(),
            "cache09"
        );
    }

    #[test]
    fn bad_timeouts_are_errors() {
        let cache = Cache::new(MemoryStore::new());
        let env = {
            let mut env = environment(cache, &Renders::default());
            env.add_template("undefined", r#"{% call cache(nope, "x") %}x{% endcall %}"#)
                .unwrap();
            env.add_template("text", r#"{% call cache("fail", "x") %}x{% endcall %}"#)
                .unwrap();
            env.add_template("list", r#"{% call cache([], "x") %}x{% endcall %}"#)
                .unwrap();
            env.add_template("missing", r#"{% call cache(1) %}x{% endcall %}"#)
                .unwrap();
            env
        };
        for name in ["undefined", "text", "list", "missing"] {
            assert!(
                env.get_template(name).unwrap().render(context! {}).is_err(),
                "{name}"
            );
        }
    }

    #[test]
    fn using_picks_a_named_cache() {
        let caches = Caches::builder()
            .cache("default", Cache::new(MemoryStore::new()))
            .cache("long", Cache::new(MemoryStore::new()))
            .build()
            .unwrap();
        let mut env = Environment::new();
        axum_cache::template::register_caches(&mut env, caches.clone());
        env.add_template(
            "a",
            r#"{% call cache(60, "f", using="long") %}a{% endcall %}"#,
        )
        .unwrap();
        env.add_template("b", r#"{% call cache(60, "f") %}b{% endcall %}"#)
            .unwrap();
        env.add_template(
            "c",
            r#"{% call cache(60, "f", using="unknown") %}c{% endcall %}"#,
        )
        .unwrap();
        assert_eq!(
            env.get_template("a").unwrap().render(context! {}).unwrap(),
            "a"
        );
        assert_eq!(
            env.get_template("b").unwrap().render(context! {}).unwrap(),
            "b",
            "separate"
        );
        assert!(env.get_template("c").unwrap().render(context! {}).is_err());
    }

    /// Renders a cached block twice over a store that always has to wait, and returns how many
    /// times the block itself rendered.
    fn renders_over_a_waiting_store() -> usize {
        let cache = Cache::new(support::stores::Slow::default());
        let renders = Renders::default();
        let mut env = environment(cache, &renders);
        env.add_template(
            "p",
            r#"{% call cache(60, "f") %}{{ expensive("x") }}{% endcall %}"#,
        )
        .unwrap();
        for _ in 0..2 {
            assert_eq!(
                env.get_template("p").unwrap().render(context! {}).unwrap(),
                "x"
            );
        }
        renders.count()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_store_that_must_wait_on_a_current_thread_runtime_renders_without_the_cache() {
        assert_eq!(
            renders_over_a_waiting_store(),
            2,
            "correct output, uncached"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_that_must_wait_on_a_multi_thread_runtime_is_used() {
        assert_eq!(
            renders_over_a_waiting_store(),
            1,
            "cached through the waiting store"
        );
    }

    /// A block nested in a render of the same fragment renders without the cache instead of
    /// waiting for itself: outside a runtime (where waiting would need a timer)...
    #[test]
    fn a_nested_block_of_the_same_fragment_renders_outside_a_runtime() {
        let cache = Cache::new(MemoryStore::new());
        let renders = Renders::default();
        let mut env = environment(cache, &renders);
        env.add_template(
            "nested",
            r#"{% call cache(60, "x") %}[{% call cache(60, "x") %}{{ expensive("in") }}{% endcall %}]{% endcall %}"#,
        )
        .unwrap();
        for _ in 0..2 {
            let html = env
                .get_template("nested")
                .unwrap()
                .render(context! {})
                .unwrap();
            assert_eq!(html, "[in]");
        }
        assert_eq!(renders.count(), 1, "the outer block was stored");
    }

    /// ...and on a multi-threaded runtime, where waiting would last the whole wait timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_nested_block_of_the_same_fragment_does_not_wait_for_itself() {
        let cache = Cache::builder(MemoryStore::new())
            .wait_timeout(std::time::Duration::from_secs(3600))
            .build();
        let renders = Renders::default();
        let mut env = environment(cache, &renders);
        env.add_template(
            "nested",
            r#"{% call cache(60, "x") %}[{% call cache(60, "x") %}{{ expensive("in") }}{% endcall %}]{% endcall %}"#,
        )
        .unwrap();
        let render = tokio::task::spawn_blocking(move || {
            env.get_template("nested")
                .unwrap()
                .render(context! {})
                .unwrap()
        });
        let html = tokio::time::timeout(std::time::Duration::from_secs(60), render)
            .await
            .expect("the nested block waited for itself")
            .unwrap();
        assert_eq!(html, "[in]");
    }

    /// Two threads rendering the same fragment at once, with no runtime: the second cannot wait
    /// for the first (that needs a timer), so it renders its own copy.
    #[test]
    fn concurrent_renders_of_one_fragment_outside_a_runtime() {
        use std::sync::mpsc;
        use std::time::Duration;

        let cache = Cache::new(MemoryStore::new());
        let renders = Renders::default();
        let mut env = environment(cache, &renders);
        // Each render checks in, then waits (bounded) for the other to check in too, so both
        // are inside the block at the same time.
        let (to_first, from_second) = mpsc::channel::<()>();
        let (to_second, from_first) = mpsc::channel::<()>();
        let peers = std::sync::Mutex::new(Some((to_second, from_second)));
        let others = std::sync::Mutex::new(Some((to_first, from_first)));
        env.add_function("rendezvous", move || -> Result<String, minijinja::Error> {
            let pair = peers
                .lock()
                .unwrap()
                .take()
                .or_else(|| others.lock().unwrap().take());
            let (tell, hear) = pair.expect("two renders");
            tell.send(()).unwrap();
            hear.recv_timeout(Duration::from_secs(30)).map_err(|_| {
                minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, "alone")
            })?;
            Ok("met".to_owned())
        });
        env.add_template(
            "p",
            r#"{% call cache(60, "y") %}{{ rendezvous() }}{% endcall %}"#,
        )
        .unwrap();
        let env = std::sync::Arc::new(env);
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let env = std::sync::Arc::clone(&env);
                std::thread::spawn(move || {
                    env.get_template("p").unwrap().render(context! {}).unwrap()
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().expect("no panic"), "met");
        }
    }
}
