//! Fragment caching in [MiniJinja](https://docs.rs/minijinja) templates, Django's `{% cache %}`.
//!
//! ```jinja
//! {% call cache(500, "sidebar", user.username) %}
//!   ... expensive markup ...
//! {% endcall %}
//! ```
//!
//! caches the block's output for 500 seconds under the name `sidebar` and the vary-on values
//! (`none` caches it forever), in the same entries [`Cache::fragment`] and
//! [`Cache::invalidate_fragment`] use. With [`register_caches`], `using="name"` picks a named
//! cache; by default the `"template_fragments"` cache if there is one, else `"default"`.
//!
//! # How synchronous rendering meets an asynchronous store
//!
//! MiniJinja renders synchronously, and has no custom block tags, so the block is a `call` block
//! whose body arrives as `caller`, and the function has to reach the store without `.await`:
//!
//! 1. It first polls the lookup once, in place. An in-process store answers at once, so with a
//!    [`MemoryStore`](crate::store::MemoryStore) every render is served or stored this way, on
//!    any runtime.
//! 2. If the store has to wait (Redis), and the template renders on a multi-threaded tokio
//!    runtime, it blocks this worker with `tokio::task::block_in_place` until the store answers.
//!    Other tasks move to the other workers meanwhile.
//! 3. Otherwise (a current-thread runtime, no runtime, or another render of the same fragment
//!    in flight) the block is rendered without the cache, so the page is still right.
//!
//! For remote stores, render templates on a multi-threaded runtime (axum's default) or inside
//! `tokio::task::spawn_blocking`. Store failures also fall back to rendering the block.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

use crate::{Cache, Caches, Timeout};

/// Registers the `cache` function, caching into `cache`.
///
/// ```
/// use axum_cache::{Cache, store::MemoryStore};
///
/// let cache = Cache::new(MemoryStore::new());
/// let mut env = minijinja::Environment::new();
/// axum_cache::template::register(&mut env, cache);
/// env.add_template("page", r#"{% call cache(60, "greeting", name) %}Hello {{ name }}{% endcall %}"#)
///     .unwrap();
/// let html = env.get_template("page").unwrap().render(minijinja::context! { name => "Ada" }).unwrap();
/// assert_eq!(html, "Hello Ada");
/// ```
pub fn register(env: &mut Environment<'_>, cache: Cache) {
    env.add_function(
        "cache",
        move |state: &mut State<'_, '_>,
              expire: Value,
              name: String,
              vary_on: Rest<Value>,
              kwargs: Kwargs| {
            if kwargs.has("using") {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "using= needs the caches registered with register_caches",
                ));
            }
            cached_block(&cache, state, &expire, &name, &vary_on, &kwargs)
        },
    );
}

/// Registers the `cache` function over named caches: `using="long"` picks one; without it, the
/// `"template_fragments"` cache if configured, else `"default"`.
pub fn register_caches(env: &mut Environment<'_>, caches: Caches) {
    env.add_function(
        "cache",
        move |state: &mut State<'_, '_>,
              expire: Value,
              name: String,
              vary_on: Rest<Value>,
              kwargs: Kwargs| {
            let cache = match kwargs.get::<Option<String>>("using")? {
                Some(alias) => caches
                    .get(&alias)
                    .map_err(|error| Error::new(ErrorKind::InvalidOperation, error.to_string()))?,
                None => caches
                    .get("template_fragments")
                    .unwrap_or_else(|_| caches.default()),
            };
            cached_block(cache, state, &expire, &name, &vary_on, &kwargs)
        },
    );
}

/// The timeout a template gave: a whole number of seconds, or `none` for no expiry.
fn timeout(expire: &Value) -> Result<Timeout, Error> {
    if expire.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "the cache timeout is undefined",
        ));
    }
    if expire.is_none() {
        return Ok(Timeout::Never);
    }
    match (expire.kind(), expire.as_i64()) {
        (ValueKind::Number, Some(secs)) => Ok(Timeout::secs(secs)),
        _ => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("the cache timeout must be a whole number of seconds or none, not {expire}"),
        )),
    }
}

/// Why a cached render did not produce text.
enum Failure {
    Cache,
    Render(Error),
}

impl From<crate::Error> for Failure {
    fn from(_: crate::Error) -> Self {
        Failure::Cache
    }
}

fn cached_block(
    cache: &Cache,
    state: &mut State<'_, '_>,
    expire: &Value,
    name: &str,
    vary_on: &[Value],
    kwargs: &Kwargs,
) -> Result<Value, Error> {
    let caller: Value = kwargs.get("caller")?;
    kwargs.assert_all_used()?;
    let timeout = timeout(expire)?;
    let texts: Vec<String> = vary_on.iter().map(ToString::to_string).collect();
    let displays: Vec<&crate::cache::VaryOn> = texts.iter().map(|text| text as _).collect();
    let key = Cache::fragment_key(name, &displays);
    let attempt = {
        let (caller, state) = (&caller, &mut *state);
        let render = move || async move {
            caller
                .call(state, &[])
                .map(|rendered| rendered.to_string())
                .map_err(Failure::Render)
        };
        run(cache.get_or_try_set(&key, timeout, render))
    };
    match attempt {
        Some(Ok(text)) => Ok(Value::from_safe_string(text)),
        Some(Err(Failure::Render(error))) => Err(error),
        // The store failed or could not be reached without waiting: render without it.
        Some(Err(Failure::Cache)) | None => {
            let rendered = caller.call(state, &[])?;
            Ok(Value::from_safe_string(rendered.to_string()))
        }
    }
}

/// Runs a future to completion without `.await`: polled once in place, then, if it must wait,
/// blocked on where tokio allows it. `None` when it cannot finish here.
fn run<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    if let Poll::Ready(output) = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        return Some(output);
    }
    let handle = tokio::runtime::Handle::try_current().ok()?;
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return None;
    }
    Some(tokio::task::block_in_place(|| handle.block_on(future)))
}
