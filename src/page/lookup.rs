//! Finding a request's entry: the primary record, then the variant, then how fresh it is.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header;
use http::request::Parts;

use super::entry::{Entry, Record};
use super::key::{Class, RequestValues, Url, class_of, push_url};
use super::stats::Event;
use super::status::MissKind;
use super::{Bypass, Config, Pending};
use crate::log::PageSpan;
use crate::store::LocalStore;

thread_local! {
    /// Where primary keys are built for in-process lookups, reused from request to request.
    static KEY_BUFFER: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// A usable entry, with what answering a request from it needs from the lookup.
pub(crate) struct Hit {
    pub(crate) entry: Arc<Entry>,
    /// When the request was looked up: the entry's `Age` is counted up to here.
    pub(crate) now: SystemTime,
    /// Whether the request carries `If-None-Match` or `If-Modified-Since`.
    pub(crate) conditional: bool,
}

/// The result of looking a request up.
pub(crate) enum Lookup {
    /// A fresh entry.
    Hit(Hit),
    /// An entry to serve now while the page is fetched again in the background: stale within
    /// `stale-while-revalidate`, or fresh but close to expiry with early refresh on.
    Refresh {
        hit: Hit,
        stale: bool,
        pending: Box<Pending>,
    },
    /// No usable entry: the origin answers. `pending.stale` holds an entry that may stand in if
    /// the origin fails.
    Miss(Box<Pending>),
    /// Not a cacheable request.
    Bypass(Bypass),
}

/// How usable an entry is now.
enum Freshness {
    Fresh,
    RefreshEarly,
    StaleWhileRevalidate,
    StaleIfError,
    Expired,
}

impl Config {
    fn freshness(&self, entry: &Entry, now: SystemTime) -> Freshness {
        let age = now.duration_since(entry.stored_at).unwrap_or_default();
        let lifetime = &entry.lifetime;
        if age < lifetime.fresh {
            let early = self
                .refresh_before
                .is_some_and(|window| age.saturating_add(window) >= lifetime.fresh);
            return if early {
                Freshness::RefreshEarly
            } else {
                Freshness::Fresh
            };
        }
        let stale_for = age.saturating_sub(lifetime.fresh);
        if stale_for < lifetime.stale_while_revalidate {
            Freshness::StaleWhileRevalidate
        } else if stale_for < lifetime.stale_if_error {
            Freshness::StaleIfError
        } else {
            Freshness::Expired
        }
    }
}

/// One class's primary record and, through it, the entry stored for requests like this one.
struct Probe {
    primary: String,
    /// The primary record as read.
    found: Option<Record>,
    /// The variant key, when the primary record is a variant list.
    variant: Option<String>,
    entry: Option<Arc<Entry>>,
}

impl Probe {
    /// Interprets the primary record; the variant key to read next is in `variant`.
    fn start(
        config: &Config,
        primary: String,
        record: Option<Record>,
        request: &mut RequestValues<'_>,
        extra: &str,
    ) -> Probe {
        match record {
            None => Probe {
                primary,
                found: None,
                variant: None,
                entry: None,
            },
            Some(Record::Entry(entry)) => Probe {
                primary,
                entry: entry.matches(extra, request).then(|| Arc::clone(&entry)),
                found: Some(Record::Entry(entry)),
                variant: None,
            },
            Some(Record::Variants(variants)) => {
                let variant = config.variant_store_key(
                    &primary,
                    variants.generation,
                    extra,
                    &variants.names,
                    request,
                );
                Probe {
                    primary,
                    found: Some(Record::Variants(variants)),
                    variant: Some(variant),
                    entry: None,
                }
            }
        }
    }

    fn read_variant(
        &mut self,
        entry: Option<Arc<Entry>>,
        request: &mut RequestValues<'_>,
        extra: &str,
    ) {
        self.entry = entry.filter(|entry| entry.matches(extra, request));
    }

    /// The flight key: the variant key when known; otherwise the primary key with what every
    /// entry must match (the extra key part, the digest of `Authorization`), so requests that
    /// could never share an entry never wait for each other.
    fn flight_key(&self, request: &mut RequestValues<'_>, extra: &str) -> String {
        if let Some(variant) = &self.variant {
            return variant.clone();
        }
        let mut key = self.primary.clone();
        key.push('\0');
        key.push_str(extra);
        key.push('\0');
        if let Some(digest) = request.digest(&header::AUTHORIZATION) {
            crate::util::push_hex(&mut key, &digest);
        }
        key
    }
}

/// Which validators a request carries, in one pass over its header names (cheaper than four
/// lookups when, as on most requests, there are none): `Err` for `If-Match` or
/// `If-Unmodified-Since`, which only the origin can evaluate; otherwise whether there is an
/// `If-None-Match` or `If-Modified-Since` for a hit to answer.
pub(crate) fn request_validators(headers: &HeaderMap) -> Result<bool, Bypass> {
    let mut conditional = false;
    for name in headers.keys() {
        if name == header::IF_MATCH || name == header::IF_UNMODIFIED_SINCE {
            return Err(Bypass::Precondition);
        }
        conditional |= name == header::IF_NONE_MATCH || name == header::IF_MODIFIED_SINCE;
    }
    Ok(conditional)
}

/// The classes a request is looked up in: `GET` entries, then for `HEAD` also the entries
/// stored from `HEAD` misses.
fn classes(class: Class) -> &'static [Class] {
    match class {
        Class::Get => &[Class::Get],
        Class::Head => &[Class::Get, Class::Head],
    }
}

/// A lookup's progress over the classes: the first usable entry wins; otherwise the last
/// class's probe becomes the miss, with any stale entry seen on the way.
struct Search<'a> {
    config: &'a Config,
    parts: &'a Parts,
    class: Class,
    extra: String,
    /// The request's header values, digested as keys and entries need them.
    values: RequestValues<'a>,
    conditional: bool,
    stale: Option<Arc<Entry>>,
}

impl<'a> Search<'a> {
    fn new(config: &'a Config, parts: &'a Parts) -> Result<(Search<'a>, Url<'a>), Lookup> {
        let Some(class) = class_of(&parts.method) else {
            return Err(Lookup::Bypass(Bypass::Method));
        };
        let conditional = request_validators(&parts.headers).map_err(Lookup::Bypass)?;
        let url = Url::of_request(parts, &config.ignored_params, &config.scheme)
            .map_err(Lookup::Bypass)?;
        let search = Search {
            config,
            parts,
            class,
            extra: config.extra(parts),
            values: RequestValues::new(&parts.headers, config.cache.digester()),
            conditional,
            stale: None,
        };
        Ok((search, url))
    }

    /// A hit on `entry`, looked up at `now`.
    fn hit(&self, entry: Arc<Entry>, now: SystemTime) -> Hit {
        Hit {
            entry,
            now,
            conditional: self.conditional,
        }
    }

    /// What a probe of `class` found, judged at `now`: a result to return now, or `None` to go
    /// on.
    fn judge(&mut self, probe: &mut Probe, class: Class, now: SystemTime) -> Option<Lookup> {
        let entry = probe.entry.take()?;
        match self.config.freshness(&entry, now) {
            Freshness::Fresh => Some(Lookup::Hit(self.hit(entry, now))),
            // A `HEAD` request cannot refresh a `GET` entry (its answer has no body): a fresh
            // entry is served as it is, a stale one is left to the next `GET`, and this request
            // goes on to the `HEAD` entries and, failing those, to the origin.
            Freshness::RefreshEarly if class != self.class => {
                Some(Lookup::Hit(self.hit(entry, now)))
            }
            Freshness::StaleWhileRevalidate if class != self.class => None,
            freshness @ (Freshness::RefreshEarly | Freshness::StaleWhileRevalidate) => {
                let pending = self.pending(probe);
                Some(Lookup::Refresh {
                    hit: self.hit(entry, now),
                    stale: matches!(freshness, Freshness::StaleWhileRevalidate),
                    pending,
                })
            }
            Freshness::StaleIfError => {
                self.stale = Some(entry);
                None
            }
            Freshness::Expired => None,
        }
    }

    fn pending(&mut self, probe: &Probe) -> Box<Pending> {
        let miss = match probe.found {
            None => MissKind::Uri,
            Some(_) => MissKind::Vary,
        };
        Box::new(Pending {
            class: self.class,
            primary: probe.primary.clone(),
            found: probe.found.clone(),
            path: self.parts.uri.path().to_owned(),
            headers: self.parts.headers.clone(),
            extra: self.extra.clone(),
            miss,
            flight_key: probe.flight_key(&mut self.values, &self.extra),
            // A miss: the origin is asked after this, so now is when its computation starts.
            started_micros: crate::util::now_micros(),
            stale: self.stale.take(),
            leader: None,
            lock: None,
            span: PageSpan::current(),
        })
    }

    fn miss(mut self, last: Option<Probe>) -> Lookup {
        match last {
            Some(probe) => Lookup::Miss(self.pending(&probe)),
            None => Lookup::Bypass(Bypass::Method),
        }
    }
}

impl Config {
    /// Looks a request up in an in-process store, without waiting.
    pub(crate) fn lookup_local(&self, local: &dyn LocalStore, parts: &Parts) -> Lookup {
        let (mut search, url) = match Search::new(self, parts) {
            Ok(start) => start,
            Err(lookup) => return lookup,
        };
        let now = self.now();
        let mut last = None;
        for &class in classes(search.class) {
            let (primary, record) =
                match self.read_primary_local(local, class, &url, &mut search, now) {
                    Ok(entry) => return Lookup::Hit(search.hit(entry, now)),
                    Err(read) => read,
                };
            let mut probe = Probe::start(self, primary, record, &mut search.values, &search.extra);
            if let Some(variant) = &probe.variant {
                let entry = local
                    .get_object(variant)
                    .and_then(|value| value.downcast::<Entry>().ok());
                probe.read_variant(entry, &mut search.values, &search.extra);
            }
            if probe
                .entry
                .as_ref()
                .is_some_and(|entry| !self.tags_current_now(local, entry))
            {
                probe.entry = None;
            }
            if let Some(found) = search.judge(&mut probe, class, now) {
                return found;
            }
            last = Some(probe);
        }
        search.miss(last)
    }

    /// Reads a class's primary record from an in-process store. The common hit (a fresh entry
    /// stored directly under the URL) is found with the key built in a reused buffer, without
    /// allocating; anything else returns the key and the record for the full lookup.
    fn read_primary_local(
        &self,
        local: &dyn LocalStore,
        class: Class,
        url: &Url<'_>,
        search: &mut Search<'_>,
        now: SystemTime,
    ) -> Result<Arc<Entry>, (String, Option<Record>)> {
        let Some(head) = &self.key_head else {
            let primary = self.primary_store_key(class, url);
            let record = local.get_object(&primary).and_then(Record::from_local);
            return Err((primary, record));
        };
        KEY_BUFFER.with_borrow_mut(|key| {
            key.clear();
            key.push_str(head);
            push_url(key, class, url);
            let record = local.get_object(key).and_then(Record::from_local);
            if let Some(Record::Entry(entry)) = &record
                && entry.matches(&search.extra, &mut search.values)
                && self.tags_current_now(local, entry)
                && matches!(self.freshness(entry, now), Freshness::Fresh)
            {
                return Ok(Arc::clone(entry));
            }
            Err((key.clone(), record))
        })
    }

    /// Whether an entry's tags still allow it, read from an in-process store.
    fn tags_current_now(&self, local: &dyn LocalStore, entry: &Entry) -> bool {
        self.cache
            .tags_current_in(local, &entry.tags, entry.started_micros)
    }

    /// Looks a request up in a remote store. A store error or an undecodable record is a miss.
    pub(crate) async fn lookup_remote(&self, parts: &Parts) -> Lookup {
        let (mut search, url) = match Search::new(self, parts) {
            Ok(start) => start,
            Err(lookup) => return lookup,
        };
        let mut last = None;
        for &class in classes(search.class) {
            let primary = self.primary_store_key(class, &url);
            let record = self.read_remote(parts, &primary).await;
            let mut probe = Probe::start(self, primary, record, &mut search.values, &search.extra);
            if let Some(variant) = probe.variant.clone() {
                let entry = self
                    .read_remote(parts, &variant)
                    .await
                    .and_then(Record::into_entry);
                probe.read_variant(entry, &mut search.values, &search.extra);
            }
            if let Some(entry) = &probe.entry
                && !entry.tags.is_empty()
            {
                // Boxed: only tagged pages wait for this, and inline it would add its size to
                // every lookup's future.
                let current =
                    Box::pin(self.cache.tags_current(&entry.tags, entry.started_micros)).await;
                if current != Some(true) {
                    probe.entry = None;
                }
            }
            // The clock is read once the store answered (the response time an HTTP cache ages
            // an entry from), not before asking it: a slow read must neither understate `Age` nor pass off an entry
            // that went stale meanwhile as fresh. Without an entry there is nothing to judge.
            if probe.entry.is_some()
                && let Some(found) = search.judge(&mut probe, class, self.now())
            {
                return found;
            }
            last = Some(probe);
        }
        search.miss(last)
    }

    /// Looks a request up wherever the store is.
    pub(crate) async fn lookup(&self, parts: &Parts) -> Lookup {
        match self.local() {
            Some(local) => self.lookup_local(local, parts),
            None => self.lookup_remote(parts).await,
        }
    }

    async fn read_remote(&self, parts: &Parts, key: &str) -> Option<Record> {
        let asked = std::time::Instant::now();
        let read = self.cache.store().get(key).await;
        let took = asked.elapsed();
        self.count(Event::StoreRead(took));
        crate::log::store_latency(took);
        match read {
            Ok(Some(bytes)) => {
                let record = self.memo.decode(key, &bytes);
                if record.is_none() {
                    crate::log::undecodable(Some(parts.uri.path()), key, "not a stored page");
                }
                record
            }
            Ok(None) => None,
            Err(error) => {
                self.cache
                    .note_store_error_at("get", Some(parts.uri.path()), key, &error);
                None
            }
        }
    }

    /// How long a response's lifetime lets it be served stale, from its directives or, without
    /// them, the layer's settings.
    pub(crate) fn stale_windows(
        &self,
        directive_swr: Option<Duration>,
        directive_sie: Option<Duration>,
    ) -> (Duration, Duration) {
        (
            directive_swr
                .or(self.stale_while_revalidate)
                .unwrap_or_default(),
            directive_sie.or(self.stale_if_error).unwrap_or_default(),
        )
    }
}
