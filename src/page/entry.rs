//! Stored responses and variant lists, and their versioned binary encoding.
//!
//! An in-process store keeps [`Record`]s as objects, so a hit clones a prepared response. A
//! remote store keeps them as bytes in the format below; the first byte is the format version,
//! so a record written by another version of this crate is read if its format is known and is
//! otherwise a miss, never misread.
//!
//! ```text
//! version 2, then kind: 0 = entry, 1 = variant list
//! entry:    status u16 · stored_at u64 (ms since the epoch) · fresh for u64 (ms)
//!           · stale-while-revalidate u64 (ms) · stale-if-error u64 (ms)
//!           · started u64 (µs since the epoch) · tags u16 × bytes16 · extra bytes
//!           · authorization opt-digest · vary u16 × (name bytes16, value opt-digest)
//!           · headers u32 × (name bytes16, value bytes) · body bytes
//! variants: generation u64 · expires_at u64 (ms) · names u16 × bytes16
//! bytes = u32 length + data; bytes16 = u16 length + data;
//! opt-digest = u8 flag (0/1) + 32 bytes when 1
//! ```
//!
//! All integers are big-endian. Header field lines keep their order, repeats and non-UTF-8 bytes.
//! The request values an entry was stored for (its `Authorization`, the headers it varies on)
//! are kept only as digests, so a stored page never holds a request's secrets. (Version 1 kept
//! them in clear; its records now read as misses.)

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::binary::{Reader, TooLarge, Writer};
use crate::conditional::{EntityTag, parse_http_date};
use crate::store::LocalValue;

use super::key::RequestValues;
use crate::key::ValueDigest;

const FORMAT: u8 = 2;
const KIND_ENTRY: u8 = 0;
const KIND_VARIANTS: u8 = 1;

/// What a key holds: a response, or the list of headers a URL's responses vary on. The one
/// description of a stored page, whether it was written, read back, or found by a lookup.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    Entry(Arc<Entry>),
    Variants(Variants),
}

impl Record {
    /// The record an in-process store holds as an object.
    pub(crate) fn from_local(value: LocalValue) -> Option<Record> {
        match value.downcast::<Entry>() {
            Ok(entry) => Some(Record::Entry(entry)),
            Err(value) => value
                .downcast::<Variants>()
                .ok()
                .map(|variants| Record::Variants((*variants).clone())),
        }
    }

    pub(crate) fn into_entry(self) -> Option<Arc<Entry>> {
        match self {
            Record::Entry(entry) => Some(entry),
            Record::Variants(_) => None,
        }
    }
}

/// A stored response with what it was stored for.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) status: StatusCode,
    /// The headers a hit sends (without `Age`, which is computed per hit).
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) stored_at: SystemTime,
    /// How long after `stored_at` the entry is fresh, and the windows after that in which it
    /// may still be served stale.
    pub(crate) lifetime: Lifetime,
    /// The tags the response carried, and when its request started (for tag invalidation).
    pub(crate) tags: Vec<String>,
    pub(crate) started_micros: u64,
    /// The extra key part of the request it was stored for.
    pub(crate) extra: String,
    /// The digest of the request's `Authorization`, which a hit must repeat exactly.
    pub(crate) authorization: Option<ValueDigest>,
    /// The digest of the request's value of each header the URL varies on.
    pub(crate) vary: Vec<(HeaderName, Option<ValueDigest>)>,
    /// Validators parsed once, for answering conditional requests on hits.
    pub(crate) etag: Option<EntityTag>,
    pub(crate) last_modified: Option<SystemTime>,
}

/// How long an entry is fresh, and how long after that it may be served stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Lifetime {
    pub(crate) fresh: Duration,
    pub(crate) stale_while_revalidate: Duration,
    pub(crate) stale_if_error: Duration,
}

impl Lifetime {
    /// How long the store keeps the entry: fresh, then as long as it may be served stale.
    pub(crate) fn kept(&self) -> Duration {
        self.fresh
            .saturating_add(self.stale_while_revalidate.max(self.stale_if_error))
    }
}

/// The headers a URL's responses vary on, and the generation that names its current variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Variants {
    pub(crate) names: Vec<HeaderName>,
    pub(crate) generation: u64,
    pub(crate) expires_at: SystemTime,
}

impl Entry {
    /// Parses the validators a hit answers conditional requests with.
    pub(crate) fn validators(headers: &HeaderMap) -> (Option<EntityTag>, Option<SystemTime>) {
        let etag = headers
            .get(http::header::ETAG)
            .and_then(|value| value.to_str().ok())
            .and_then(EntityTag::parse);
        let last_modified = headers
            .get(http::header::LAST_MODIFIED)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_http_date);
        (etag, last_modified)
    }

    /// Whether this entry was stored for a request like this one: same extra key part, same
    /// `Authorization`, and the same value (or absence) of every header it varies on, compared
    /// by digest.
    pub(crate) fn matches(&self, extra: &str, request: &mut RequestValues<'_>) -> bool {
        let authorization = &http::header::AUTHORIZATION;
        same_text(&self.extra, extra)
            && same_value(request, authorization, self.authorization.as_ref())
            && self
                .vary
                .iter()
                .all(|(name, value)| same_value(request, name, value.as_ref()))
    }

    /// Approximate memory held, for the store's byte bound.
    pub(crate) fn size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 32)
            .sum();
        let vary: usize = self
            .vary
            .iter()
            .map(|(name, _)| name.as_str().len() + 40)
            .sum();
        let tags: usize = self.tags.iter().map(|tag| tag.len() + 24).sum();
        self.body.len() + headers + vary + tags + self.extra.len() + 128
    }
}

impl Variants {
    pub(crate) fn size(&self) -> usize {
        self.names
            .iter()
            .map(|name| name.as_str().len() + 16)
            .sum::<usize>()
            + 64
    }
}

/// Whether two strings are equal. Empty strings (the usual extra key part) are settled by their
/// length alone, without calling the byte comparison, which is slow on some platforms for the
/// dangling pointer of an empty `String`; this runs on every hit.
fn same_text(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}

/// Whether the digest of the request's value of `name` is `expected` (`None`: absent). The
/// usual absent header costs no digest.
fn same_value(
    request: &mut RequestValues<'_>,
    name: &HeaderName,
    expected: Option<&ValueDigest>,
) -> bool {
    match expected {
        None => !request.has(name),
        Some(expected) => request.digest(name).as_ref() == Some(expected),
    }
}

/// Encodes a record for a remote store. A record with more tags, header names or bytes than
/// the format can count is an error (the page is then not stored), never one that cannot be
/// read back.
pub(crate) fn encode(record: &Record) -> Result<Bytes, TooLarge> {
    let mut out = Writer::with_capacity(match record {
        Record::Entry(entry) => entry.size(),
        Record::Variants(variants) => variants.size(),
    });
    out.u8(FORMAT);
    match record {
        Record::Entry(entry) => {
            out.u8(KIND_ENTRY);
            out.u16(entry.status.as_u16());
            out.u64(millis(entry.stored_at));
            for window in [
                entry.lifetime.fresh,
                entry.lifetime.stale_while_revalidate,
                entry.lifetime.stale_if_error,
            ] {
                out.u64(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
            }
            out.u64(entry.started_micros);
            out.count16("tags", entry.tags.len())?;
            for tag in &entry.tags {
                out.bytes16("a tag", tag.as_bytes())?;
            }
            out.bytes32("the extra key part", entry.extra.as_bytes())?;
            put_digest(&mut out, entry.authorization.as_ref());
            out.count16("varied headers", entry.vary.len())?;
            for (name, digest) in &entry.vary {
                out.bytes16("a header name", name.as_str().as_bytes())?;
                put_digest(&mut out, digest.as_ref());
            }
            out.count32("header field lines", entry.headers.len())?;
            for (name, value) in &entry.headers {
                out.bytes16("a header name", name.as_str().as_bytes())?;
                out.bytes32("a header value", value.as_bytes())?;
            }
            out.bytes32("the body", &entry.body)?;
        }
        Record::Variants(variants) => {
            out.u8(KIND_VARIANTS);
            out.u64(variants.generation);
            out.u64(millis(variants.expires_at));
            out.count16("varied headers", variants.names.len())?;
            for name in &variants.names {
                out.bytes16("a header name", name.as_str().as_bytes())?;
            }
        }
    }
    Ok(out.finish())
}

/// Decodes what [`encode`] wrote; anything else (another format version, older or newer,
/// truncated or foreign bytes, invalid header names or values) is `None`.
pub(crate) fn decode(bytes: &Bytes) -> Option<Record> {
    let mut reader = Reader::new(bytes.clone());
    if reader.u8()? != FORMAT {
        return None;
    }
    let record = match reader.u8()? {
        KIND_ENTRY => {
            let status = StatusCode::from_u16(reader.u16()?).ok()?;
            let stored_at = from_millis(reader.u64()?)?;
            let lifetime = Lifetime {
                fresh: Duration::from_millis(reader.u64()?),
                stale_while_revalidate: Duration::from_millis(reader.u64()?),
                stale_if_error: Duration::from_millis(reader.u64()?),
            };
            let started_micros = reader.u64()?;
            let mut tags = Vec::new();
            for _ in 0..reader.u16()? {
                let len = usize::from(reader.u16()?);
                tags.push(reader.text(len)?);
            }
            let len = reader.len32()?;
            let extra = reader.text(len)?;
            let authorization = read_digest(&mut reader)?;
            let mut vary = Vec::new();
            for _ in 0..reader.u16()? {
                vary.push((read_name(&mut reader)?, read_digest(&mut reader)?));
            }
            let count = reader.u32()?;
            // Never trust a count for an allocation: a damaged one is caught by the reads.
            let mut headers =
                HeaderMap::with_capacity(usize::try_from(count).map_or(0, |n| n.min(64)));
            // Most pages carry neither validator: then the map is not searched for them.
            let mut validated = false;
            for _ in 0..count {
                let name = read_name(&mut reader)?;
                let value = HeaderValue::from_maybe_shared(reader.bytes32()?).ok()?;
                validated |= name == http::header::ETAG || name == http::header::LAST_MODIFIED;
                // More distinct names than a map can hold is a damaged record, not a panic.
                headers.try_append(name, value).ok()?;
            }
            let body = reader.bytes32()?;
            let (etag, last_modified) = if validated {
                Entry::validators(&headers)
            } else {
                (None, None)
            };
            Record::Entry(Arc::new(Entry {
                status,
                headers,
                body,
                stored_at,
                lifetime,
                tags,
                started_micros,
                extra,
                authorization,
                vary,
                etag,
                last_modified,
            }))
        }
        KIND_VARIANTS => {
            let generation = reader.u64()?;
            let expires_at = from_millis(reader.u64()?)?;
            let mut names = Vec::new();
            for _ in 0..reader.u16()? {
                names.push(read_name(&mut reader)?);
            }
            Record::Variants(Variants {
                names,
                generation,
                expires_at,
            })
        }
        _ => return None,
    };
    reader.is_done().then_some(record)
}

/// The names a stored page nearly always carries, recognised without the byte-by-byte
/// validation of `HeaderName::from_bytes` (names are stored lowercase, as `HeaderName` writes
/// them; anything else takes the general path).
fn common_name(bytes: &[u8]) -> Option<HeaderName> {
    use http::header;
    Some(match bytes {
        b"age" => header::AGE,
        b"cache-control" => header::CACHE_CONTROL,
        b"content-encoding" => header::CONTENT_ENCODING,
        b"content-length" => header::CONTENT_LENGTH,
        b"content-type" => header::CONTENT_TYPE,
        b"date" => header::DATE,
        b"etag" => header::ETAG,
        b"expires" => header::EXPIRES,
        b"last-modified" => header::LAST_MODIFIED,
        b"vary" => header::VARY,
        _ => return None,
    })
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

fn from_millis(millis: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_millis(millis))
}

fn put_digest(out: &mut Writer, digest: Option<&ValueDigest>) {
    match digest {
        Some(digest) => {
            out.u8(1);
            out.raw(digest);
        }
        None => out.u8(0),
    }
}

fn read_digest(reader: &mut Reader) -> Option<Option<ValueDigest>> {
    match reader.u8()? {
        0 => Some(None),
        1 => Some(Some(reader.array()?)),
        _ => None,
    }
}

/// A header name after its length in two bytes.
fn read_name(reader: &mut Reader) -> Option<HeaderName> {
    let bytes = reader.slice16()?;
    common_name(bytes).or_else(|| HeaderName::from_bytes(bytes).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Digester;

    fn entry() -> Entry {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/html"));
        headers.append("set-cookie", HeaderValue::from_static("a=1"));
        headers.append("set-cookie", HeaderValue::from_static("b=2"));
        headers.insert("x-raw", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        headers.insert("etag", HeaderValue::from_static("\"v1\""));
        headers.insert(
            "last-modified",
            HeaderValue::from_static("Sun, 17 Jul 2016 10:00:00 GMT"),
        );
        let (etag, last_modified) = Entry::validators(&headers);
        Entry {
            status: StatusCode::OK,
            headers,
            body: Bytes::from_static(b"<p>hello</p>"),
            stored_at: UNIX_EPOCH + Duration::from_millis(1_468_749_600_123),
            lifetime: Lifetime {
                fresh: Duration::from_secs(60),
                stale_while_revalidate: Duration::from_secs(30),
                stale_if_error: Duration::from_millis(86_400_000),
            },
            tags: vec!["articles".to_owned(), "user:7".to_owned()],
            started_micros: 1_468_749_600_000_001,
            extra: "en".to_owned(),
            authorization: Some(Digester::default().digest(b"Bearer x")),
            vary: vec![
                (HeaderName::from_static("cookie"), None),
                (
                    HeaderName::from_static("accept-encoding"),
                    Some(Digester::default().digest(b"gzip")),
                ),
            ],
            etag,
            last_modified,
        }
    }

    #[test]
    fn entries_round_trip_with_repeats_and_raw_bytes() {
        let original = entry();
        let Some(Record::Entry(decoded)) =
            decode(&encode(&Record::Entry(Arc::new(entry()))).unwrap())
        else {
            panic!("did not decode");
        };
        assert_eq!(decoded.status, original.status);
        assert_eq!(decoded.headers, original.headers);
        let cookies: Vec<_> = decoded.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(decoded.body, original.body);
        assert_eq!(decoded.stored_at, original.stored_at);
        assert_eq!(decoded.lifetime, original.lifetime);
        assert_eq!(decoded.tags, original.tags);
        assert_eq!(decoded.started_micros, original.started_micros);
        assert_eq!(decoded.extra, "en");
        assert_eq!(decoded.authorization, original.authorization);
        assert_eq!(decoded.vary, original.vary);
        assert_eq!(decoded.etag, original.etag);
        assert!(decoded.etag.is_some());
        assert_eq!(decoded.last_modified, original.last_modified);
        assert!(decoded.last_modified.is_some());
    }

    /// A record naming more distinct headers than a `HeaderMap` can hold (about 24,500) is
    /// rejected, not a panic.
    #[test]
    fn a_record_with_too_many_header_names_is_rejected() {
        let mut bare = entry();
        bare.headers = HeaderMap::new();
        bare.body = Bytes::new();
        let encoded = encode(&Record::Entry(Arc::new(bare))).unwrap();
        // The record ends with the header count (0) and the body's length (0).
        let with_headers = |count: u32| {
            let mut record = Writer::with_capacity(0);
            record.raw(&encoded[..encoded.len() - 8]);
            record
                .count32("header field lines", count as usize)
                .unwrap();
            for i in 0..count {
                record
                    .bytes16("a header name", format!("x{i}").as_bytes())
                    .unwrap();
                record.bytes32("a header value", b"v").unwrap();
            }
            record.bytes32("the body", b"").unwrap();
            record.finish()
        };
        assert!(decode(&with_headers(100)).is_some());
        assert!(decode(&with_headers(30_000)).is_none());
    }

    #[test]
    fn variant_lists_round_trip() {
        let variants = Variants {
            names: vec![
                HeaderName::from_static("cookie"),
                HeaderName::from_static("x-a"),
            ],
            generation: 0xdead_beef,
            expires_at: UNIX_EPOCH + Duration::from_secs(2_000_000_000),
        };
        let Some(Record::Variants(decoded)) =
            decode(&encode(&Record::Variants(variants.clone())).unwrap())
        else {
            panic!("did not decode");
        };
        assert_eq!(decoded, variants);
    }

    #[test]
    fn common_names_are_the_names_they_spell() {
        use http::header;
        for name in [
            header::AGE,
            header::CACHE_CONTROL,
            header::CONTENT_ENCODING,
            header::CONTENT_LENGTH,
            header::CONTENT_TYPE,
            header::DATE,
            header::ETAG,
            header::EXPIRES,
            header::LAST_MODIFIED,
            header::VARY,
        ] {
            assert_eq!(common_name(name.as_str().as_bytes()), Some(name));
        }
        assert_eq!(common_name(b"Content-Type"), None);
        assert_eq!(common_name(b"x-raw"), None);
    }

    #[test]
    fn damaged_or_foreign_bytes_are_not_records() {
        let good = encode(&Record::Entry(Arc::new(entry()))).unwrap();
        for len in 0..good.len() {
            assert!(decode(&good.slice(..len)).is_none(), "truncated to {len}");
        }
        let mut longer = good.to_vec();
        longer.push(0);
        assert!(decode(&Bytes::from(longer)).is_none(), "trailing byte");
        for version in [0, 1, 3, 255] {
            let mut other_version = good.to_vec();
            other_version[0] = version;
            assert!(
                decode(&Bytes::from(other_version)).is_none(),
                "version {version}"
            );
        }
        for foreign in [&b""[..], b"hello", b"\x02\x07", b"\x02\x00\x00\x00"] {
            assert!(decode(&Bytes::copy_from_slice(foreign)).is_none());
        }
    }

    #[test]
    fn stored_entries_hold_request_values_only_as_digests() {
        let encoded = encode(&Record::Entry(Arc::new(entry()))).unwrap();
        let contains = |needle: &[u8]| encoded.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(b"Bearer x"));
        assert!(!contains(b"gzip"));
        let original = entry();
        let mut request = HeaderMap::new();
        request.insert("authorization", HeaderValue::from_static("Bearer x"));
        request.insert("accept-encoding", HeaderValue::from_static("gzip"));
        let digester = Digester::default();
        let other = Digester::new(b"other secret");
        assert!(original.matches("en", &mut RequestValues::new(&request, &digester)));
        assert!(!original.matches("en", &mut RequestValues::new(&request, &other)));
        request.insert("authorization", HeaderValue::from_static("Bearer y"));
        assert!(!original.matches("en", &mut RequestValues::new(&request, &digester)));
        request.insert("authorization", HeaderValue::from_static("Bearer x"));
        request.insert("cookie", HeaderValue::from_static("a=1"));
        assert!(!original.matches("en", &mut RequestValues::new(&request, &digester)));
    }

    #[test]
    fn invalid_header_bytes_inside_a_record_are_refused() {
        let mut bytes = encode(&Record::Entry(Arc::new(entry()))).unwrap().to_vec();
        let at = bytes
            .windows(9)
            .position(|window| window == b"text/html")
            .unwrap();
        bytes[at] = b'\n';
        assert!(decode(&Bytes::from(bytes)).is_none());
    }
}
