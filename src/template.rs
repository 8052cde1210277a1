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
//! 1. On a multi-threaded tokio runtime (axum's default), it polls the lookup once in place;
//!    if the store has to wait (Redis), or another thread is rendering the same fragment, it
//!    blocks this worker with `tokio::task::block_in_place` until the answer comes. Other tasks
//!    move to the other workers meanwhile.
//! 2. Anywhere else (a current-thread runtime, or no runtime at all), an in-process store such
//!    as [`MemoryStore`](crate::store::MemoryStore) still answers at once, so the block is
//!    served or stored as usual; only, if another render of the same fragment is in flight,
//!    this one renders and stores its own copy instead of waiting for it. A remote store is not
//!    asked there at all: the block is rendered without the cache.
//! 3. A block nested in a render of the same fragment (same name and values) renders without
//!    the cache: waiting for the outer one would wait for itself.
//!
//! For remote stores, render templates on a multi-threaded runtime or inside
//! `tokio::task::spawn_blocking`. Store failures also fall back to rendering the block.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

use crate::cache::Patience;
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
    add_cache_function(env, move |kwargs| {
        if kwargs.has("using") {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "using= needs the caches registered with register_caches",
            ));
        }
        Ok(cache.clone())
    });
}

/// Registers the `cache` function over named caches: `using="long"` picks one; without it, the
/// `"template_fragments"` cache if configured, else `"default"`.
pub fn register_caches(env: &mut Environment<'_>, caches: Caches) {
    add_cache_function(env, move |kwargs| {
        Ok(match kwargs.get::<Option<String>>("using")? {
            Some(alias) => caches
                .get(&alias)
                .map_err(|error| Error::new(ErrorKind::InvalidOperation, error.to_string()))?
                .clone(),
            None => caches
                .get("template_fragments")
                .unwrap_or_else(|_| caches.default())
                .clone(),
        })
    });
}

/// Adds the `cache` function, caching into the cache `pick` chooses from the call's keyword
/// arguments.
fn add_cache_function<P>(env: &mut Environment<'_>, pick: P)
where
    P: Fn(&Kwargs) -> Result<Cache, Error> + Send + Sync + 'static,
{
    env.add_function(
        "cache",
        move |state: &mut State<'_, '_>,
              expire: Value,
              name: String,
              vary_on: Rest<Value>,
              kwargs: Kwargs| {
            let cache = pick(&kwargs)?;
            cached_block(&cache, state, &expire, &name, &vary_on, &kwargs)
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
    let can_block = tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    let usable = can_block || cache.store().as_local().is_some();
    let attempt = match Rendering::enter(&key) {
        Some(_rendering) if usable => {
            let (caller, state) = (&caller, &mut *state);
            let render = move || async move {
                caller
                    .call(state, &[])
                    .map(|rendered| rendered.to_string())
                    .map_err(Failure::Render)
            };
            let patience = if can_block {
                Patience::Wait
            } else {
                Patience::Never
            };
            run(
                cache.get_or_try_set_with(&key, timeout, render, patience),
                can_block,
            )
        }
        _ => None,
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

/// Runs a future to completion without `.await`: polled once in place, then, if it must wait
/// and `can_block` (a multi-threaded runtime), blocked on. `None` when it cannot finish here.
fn run<F: Future>(future: F, can_block: bool) -> Option<F::Output> {
    let mut future = pin!(future);
    if let Poll::Ready(output) = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        return Some(output);
    }
    if !can_block {
        return None;
    }
    let handle = tokio::runtime::Handle::try_current().ok()?;
    Some(tokio::task::block_in_place(|| handle.block_on(future)))
}

thread_local! {
    /// The fragment keys this thread is rendering, outermost first.
    static RENDERING: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// A fragment being rendered on this thread, from [`enter`](Rendering::enter) until dropped
/// (also when the render panics).
struct Rendering;

impl Rendering {
    /// `None` when this thread is already rendering `key`: a nested block of the same fragment.
    fn enter(key: &str) -> Option<Rendering> {
        RENDERING.with_borrow_mut(|keys| {
            if keys.iter().any(|rendering| rendering == key) {
                None
            } else {
                keys.push(key.to_owned());
                Some(Rendering)
            }
        })
    }
}

impl Drop for Rendering {
    fn drop(&mut self) {
        RENDERING.with_borrow_mut(|keys| {
            keys.pop();
        });
    }
}
