//! The parsers under attack: one test each, with the valid values its inputs are mutated from
//! and what it may allocate.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, IF_NONE_MATCH, VARY};
use http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{Target, run};
use crate::conditional::{EntityTag, parse_etag_list};
use crate::headers::{
    CacheControl, fmt_http_date, has_vary_header, latest_http_date, parse_http_date,
    parse_http_date_at, patch_cache_control, patch_vary_headers, vary,
};
use crate::{Cache, codec, page, redact};

/// Text inputs as the parsers take them: bytes that are not UTF-8 replaced.
fn text(input: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(input)
}

/// The input as field lines of `name`: split at line feeds, each line keeping the bytes a
/// header value can hold (which include bytes that are not UTF-8). Built outside the
/// allocation count: the map is the test's, not the parser's.
fn headers(name: http::HeaderName, input: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    allocation_counter::opt_out(|| headers = lines(name, input));
    headers
}

fn lines(name: http::HeaderName, input: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in input.split(|&byte| byte == b'\n') {
        let line: Vec<u8> = line
            .iter()
            .copied()
            .filter(|&byte| (byte >= 0x20 && byte != 0x7f) || byte == b'\t')
            .collect();
        if let Ok(value) = HeaderValue::from_bytes(&line) {
            headers.append(name.clone(), value);
        }
    }
    headers
}

fn seeds(values: &[&[u8]]) -> Vec<Vec<u8>> {
    values.iter().map(|value| value.to_vec()).collect()
}

#[test]
fn cache_control() {
    run(Target {
        name: "cache_control",
        seeds: seeds(&[
            b"max-age=60, public",
            b"private=\"Set-Cookie, Authorization\", no-cache=\"x\", max-age=0",
            b"no-store\nMax-Age=31536000, immutable, s-maxage=99999999999999999999",
            b"stale-while-revalidate=30, stale-if-error=86400, must-revalidate, x-ext=\"a\\\"b\"",
            b"community=\"UCI\", proxy-revalidate, no-transform, must-understand",
        ]),
        dictionary: &[
            b"max-age",
            b"s-maxage",
            b"private",
            b"public",
            b"no-cache",
            b"no-store",
            b"immutable",
            b"stale-while-revalidate",
            b"stale-if-error",
            b"=",
            b", ",
            b",",
            b"\"",
            b"\\\"",
            b"60",
            b"99999999999999999999",
            b"\"Set-Cookie, Vary\"",
            b"\n",
        ],
        max_len: 4096,
        // Each two-byte item (`0,`) is a directive of about fifty bytes, held by both parses
        // and by the patch's copies at once.
        per_byte: 256,
        fixed: 4096,
        check: |input| {
            let parsed = CacheControl::parse(&text(input));
            let lines = headers(CACHE_CONTROL, input);
            let all = CacheControl::from_headers(&lines);
            for cc in [&parsed, &all] {
                let _ = (cc.max_age(), cc.s_maxage(), cc.stale_while_revalidate());
                let _ = (cc.stale_if_error(), cc.is_public(), cc.is_no_store());
                let _ = (cc.private_fields(), cc.no_cache_fields(), cc.is_private());
                let _ = cc.get("max-age");
                assert!(
                    cc.max_age()
                        .is_none_or(|age| age <= Duration::from_secs(1 << 31))
                );
                let _ = cc.to_header_value();
            }
            let mut patched = lines;
            patch_cache_control(&mut patched, &parsed);
        },
    });
}

#[test]
fn vary_lists() {
    run(Target {
        name: "vary",
        seeds: seeds(&[
            b"Accept-Encoding, Cookie",
            b"*",
            b"cookie\nACCEPT-language ,  , x-custom",
            b" * , Accept",
        ]),
        dictionary: &[
            b"Accept-Encoding",
            b"cookie",
            b"*",
            b",",
            b" ",
            b"\t",
            b"\n",
            b"x-",
        ],
        max_len: 4096,
        per_byte: 160,
        fixed: 4096,
        check: |input| {
            let mut lines = headers(VARY, input);
            let _ = vary(&lines);
            let _ = has_vary_header(&lines, "cookie");
            let text = text(input);
            patch_vary_headers(&mut lines, text.split(','));
            let _ = vary(&lines);
        },
    });
}

#[test]
fn entity_tag_lists() {
    run(Target {
        name: "etag",
        seeds: seeds(&[
            b"\"a\", W/\"b\", \"c,d\"",
            b"*",
            b"W/\"xyzzy\"\n\"r2d2xxxx\", \"c3piozzzz\"",
            b"spam, \"e\"t\"ag\", W/\"",
        ]),
        dictionary: &[b"\"", b"W/", b"w/", b",", b"*", b" ", b"\n", b"abc"],
        max_len: 4096,
        per_byte: 160,
        fixed: 4096,
        check: |input| {
            let text = text(input);
            let single = EntityTag::parse(&text);
            if let Some(tag) = &single {
                assert_eq!(EntityTag::parse(&tag.to_string()).as_ref(), Some(tag));
            }
            let quoted = EntityTag::quote(&text);
            let _ = quoted.to_header_value();
            let lines = headers(IF_NONE_MATCH, input);
            if let Some(list) = parse_etag_list(&lines, IF_NONE_MATCH) {
                for current in [single.as_ref(), Some(&quoted), None] {
                    let _ = (list.matches_strong(current), list.matches_weak(current));
                }
            }
        },
    });
}

#[test]
fn http_dates() {
    run(Target {
        name: "http_date",
        seeds: seeds(&[
            b"Sun, 06 Nov 1994 08:49:37 GMT",
            b"Sunday, 06-Nov-94 08:49:37 GMT",
            b"Sun Nov  6 08:49:37 1994",
            b"Fri, 31 Dec 9999 23:59:59 GMT",
            b"  Thu, 01 Jan 1970 00:00:00 GMT\t",
        ]),
        dictionary: &[
            b"Sun, ",
            b"Monday, ",
            b"Feb",
            b"29",
            b"-",
            b" ",
            b":",
            b"GMT",
            b"1994",
            b"99999999999999999999",
            b"00",
            b"23:59:60",
        ],
        max_len: 256,
        per_byte: 16,
        fixed: 1024,
        check: |input| {
            let text = text(input);
            let now = parse_http_date(&text);
            for at in [UNIX_EPOCH, latest_http_date()] {
                let _ = parse_http_date_at(&text, at);
            }
            // A date in the range that can be written reads back as itself.
            if let Some(time) = now
                && (UNIX_EPOCH..=latest_http_date()).contains(&time)
            {
                assert_eq!(parse_http_date(&fmt_http_date(time)), Some(time));
            }
        },
    });
}

#[test]
fn cache_urls() {
    run(Target {
        name: "cache_url",
        seeds: seeds(&[
            b"memory://?max_entries=10000&max_bytes=32MiB&timeout=60&key_prefix=app&version=2",
            b"memory://",
            b"dummy://?ignore_errors=true&timeout=never",
            b"locmem://?max_bytes=2 GiB&version=99999999999999999999",
            b"MEMORY://user:s3cr3t@host/0?password=x&sentinelPassword=y",
            b"dummy://h:1?timeout=1.5&version=1&version=2",
        ]),
        dictionary: &[
            b"memory://",
            b"dummy://",
            b"redis://",
            b"?",
            b"&",
            b"=",
            b"%",
            b"%40",
            b"@",
            b":",
            b"max_entries",
            b"max_bytes",
            b"timeout",
            b"never",
            b"key_prefix",
            b"version",
            b"ignore_errors",
            b"sentinelPassword",
            b"KiB",
        ],
        max_len: 1024,
        per_byte: 64,
        // A memory store is sized by its settings, not by its URL.
        fixed: 256 << 10,
        check: |input| {
            let url = text(input);
            let redacted = redact::redact_url(&url);
            assert!(redacted.len() <= url.len() + 3 * url.len().div_ceil(2) + 3);
            #[cfg(feature = "redis")]
            {
                let _ = crate::store::normalize_url(&url);
                let _ = redact::scrub(&url, &url);
            }
            // A Redis URL would connect: only the other schemes are built.
            let redis = redact::split_scheme(&url).is_some_and(|(scheme, _)| {
                let scheme = scheme.to_ascii_lowercase();
                scheme.starts_with("redis") || scheme.starts_with("valkey")
            });
            if !redis {
                RUNTIME.with(|runtime| {
                    let _ = runtime.block_on(Cache::from_url(&url));
                });
            }
        },
    });
}

thread_local! {
    /// A runtime per parser thread, built before the first measurement.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
}

/// A page entry in the version 2 layout documented in `page/entry.rs`: request values as
/// 32-byte digests (any bytes will do here).
fn entry_v2(headers: &[(&[u8], &[u8])], vary: &[(&[u8], Option<u8>)], body: &[u8]) -> Vec<u8> {
    let mut out = vec![2, 0];
    out.extend_from_slice(&200u16.to_be_bytes());
    for number in [
        1_468_749_600_123u64,
        60_000,
        30_000,
        86_400_000,
        1_468_749_600_000_001,
    ] {
        out.extend_from_slice(&number.to_be_bytes());
    }
    let bytes16 = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    let bytes32 = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    out.extend_from_slice(&2u16.to_be_bytes());
    bytes16(&mut out, b"articles");
    bytes16(&mut out, b"user:7");
    bytes32(&mut out, b"en");
    out.push(1);
    out.extend_from_slice(&[0xab; 32]);
    out.extend_from_slice(&(vary.len() as u16).to_be_bytes());
    for (name, digest) in vary {
        bytes16(&mut out, name);
        match digest {
            Some(byte) => {
                out.push(1);
                out.extend_from_slice(&[*byte; 32]);
            }
            None => out.push(0),
        }
    }
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, value) in headers {
        bytes16(&mut out, name);
        bytes32(&mut out, value);
    }
    bytes32(&mut out, body);
    out
}

/// A variant list in the version 2 layout.
fn variants_v2(names: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![2, 1];
    out.extend_from_slice(&0xdead_beef_u64.to_be_bytes());
    out.extend_from_slice(&2_000_000_000_000u64.to_be_bytes());
    out.extend_from_slice(&(names.len() as u16).to_be_bytes());
    for name in names {
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
    }
    out
}

#[test]
fn page_entries() {
    let mut entries = vec![
        entry_v2(
            &[
                (b"content-type", b"text/html"),
                (b"set-cookie", b"a=1"),
                (b"set-cookie", b"b=2"),
                (b"x-raw", b"caf\xe9"),
                (b"etag", b"\"v1\""),
                (b"last-modified", b"Sun, 17 Jul 2016 10:00:00 GMT"),
            ],
            &[(b"cookie", None), (b"accept-encoding", Some(0x5a))],
            b"<p>hello</p>",
        ),
        entry_v2(&[], &[], b""),
        variants_v2(&[b"cookie", b"x-a"]),
        variants_v2(&[]),
    ];
    // The crate's own encoding of the same records, whatever version it writes now.
    let reencoded: Vec<Vec<u8>> = entries
        .iter()
        .map(|bytes| {
            let record = page::decode_entry(&Bytes::copy_from_slice(bytes))
                .expect("the version 2 seeds decode");
            page::encode_entry(&record)
                .expect("a decoded record encodes")
                .to_vec()
        })
        .collect();
    entries.extend(reencoded);
    run(Target {
        name: "page_entry",
        seeds: entries,
        dictionary: &[
            b"\x01",
            b"\x00",
            b"\x02\x00",
            b"\x02\x01",
            b"\x01\x00",
            b"\x00\x00\x00\x00",
            b"\xff\xff\xff\xff",
            b"\x00\x04etag",
            b"\x00\x04vary",
            b"\x00\x00\x00\x01\"",
        ],
        max_len: 1024,
        per_byte: 128,
        fixed: 16 << 10,
        check: |input| {
            let bytes = Bytes::copy_from_slice(input);
            if let Some(record) = page::decode_entry(&bytes) {
                let again =
                    page::encode_entry(&record).expect("a record decoded from the input encodes");
                assert!(
                    page::decode_entry(&again).is_some(),
                    "a record decoded from the input does not decode once encoded again"
                );
            }
        },
    });
}

/// A value an application might cache, with the shapes serde handles differently.
#[derive(Deserialize)]
struct Page {
    title: String,
    views: u64,
    tags: Vec<String>,
    meta: Option<BTreeMap<String, i32>>,
    kind: Kind,
}

#[derive(Deserialize)]
enum Kind {
    Plain,
    Numbered(u8),
    Named { name: String },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Loose {
    Number(f64),
    Text(String),
    List(Vec<Loose>),
}

/// A value that nests as deep as its input says.
#[derive(Deserialize)]
struct Tree {
    label: String,
    children: Vec<Tree>,
}

/// How many bytes of input a decoded value needs at least: what it holds can never be more
/// than its input.
trait Weight {
    fn weight(&self) -> usize;
}

impl Weight for Page {
    fn weight(&self) -> usize {
        let views = usize::from(self.views > 0);
        let tags: usize = self.tags.iter().map(|tag| 1 + tag.len()).sum();
        let meta = self.meta.as_ref().map_or(0, |meta| {
            meta.iter()
                .map(|(key, value)| 2 + key.len() + usize::from(*value > 0))
                .sum()
        });
        let kind = match &self.kind {
            Kind::Plain => 1,
            Kind::Numbered(number) => 1 + usize::from(*number > 0),
            Kind::Named { name } => 1 + name.len(),
        };
        self.title.len() + views + tags + meta + kind
    }
}

impl Weight for Loose {
    fn weight(&self) -> usize {
        match self {
            Loose::Number(number) => usize::from(number.is_nan()),
            Loose::Text(text) => text.len(),
            Loose::List(items) => items.iter().map(|item| 1 + item.weight()).sum(),
        }
    }
}

impl Weight for Tree {
    fn weight(&self) -> usize {
        1 + self.label.len() + self.children.iter().map(Weight::weight).sum::<usize>()
    }
}

/// Decodes `input` as a `T`, which must hold no more than the input does.
fn decode_as<T: DeserializeOwned + Weight>(input: &[u8]) {
    if let Ok(value) = codec::decode::<T>(input) {
        assert!(
            value.weight() <= input.len(),
            "a value heavier than its input"
        );
    }
}

/// Decodes `input` as a `T` whose size serde checks by itself.
fn decode_plain<T: DeserializeOwned>(input: &[u8]) {
    let _ = codec::decode::<T>(input);
}

/// Valid stored values, plain and wrapped with tags.
fn value_seeds() -> Vec<Vec<u8>> {
    let tagged = |inner: &[u8]| {
        let tags = codec::Tagged {
            tags: vec!["articles".to_owned(), "user:7".to_owned()],
            started_micros: 1_468_749_600_000_001,
        };
        codec::wrap(&tags, inner).unwrap().to_vec()
    };
    let mut values: Vec<Vec<u8>> = vec![
        codec::encode(&42i64).unwrap().to_vec(),
        codec::encode(&-7i64).unwrap().to_vec(),
        codec::encode(&u64::MAX).unwrap().to_vec(),
        codec::encode("a string").unwrap().to_vec(),
        codec::encode(&vec!["a".to_owned(), "b".to_owned()])
            .unwrap()
            .to_vec(),
        codec::encode(&BTreeMap::from([("k".to_owned(), vec![1u32, 2, 3])]))
            .unwrap()
            .to_vec(),
        codec::encode(&(1.5f64, 'x', Some(true), ()))
            .unwrap()
            .to_vec(),
    ];
    // A `Page`, a `Loose` list and a `Tree` in MessagePack, written out by hand (the test types
    // only deserialize): struct fields by name, enums as { variant: value }.
    values.push(
        b"\x01\x85\xa5title\xa2hi\xa5views\xcd\x01\x00\xa4tags\x92\xa1a\xa1b\
          \xa4meta\x81\xa1k\xd0\xff\xa4kind\x81\xa5Named\x81\xa4name\xa1n"
            .to_vec(),
    );
    values.push(b"\x01\x93\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00\xa1x\x91\x90".to_vec());
    values.push(
        b"\x01\x82\xa5label\xa4root\xa8children\x91\x82\xa5label\xa4leaf\xa8children\x90".to_vec(),
    );
    let wrapped: Vec<Vec<u8>> = values.iter().map(|value| tagged(value)).collect();
    values.extend(wrapped);
    values
}

/// MessagePack markers and lengths that lie.
const VALUE_PIECES: &[&[u8]] = &[
    b"\x01",
    b"\x02",
    b"\x02\xff",
    b"\x90",
    b"\x9f",
    b"\xdc\xff\xff",
    b"\xdd\xff\xff\xff\xff",
    b"\xde\xff\xff",
    b"\xdf\xff\xff\xff\xff",
    b"\xc6\xff\xff\xff\xff",
    b"\xdb\xff\xff\xff\xff",
    b"\xa5label",
    b"\xa8children",
    b"\x81\xa5Named",
    b"-",
    b"99999999999999999999",
];

#[test]
fn stored_values() {
    run(Target {
        name: "stored_value",
        seeds: value_seeds(),
        dictionary: VALUE_PIECES,
        max_len: 1024,
        per_byte: 64,
        fixed: 16 << 10,
        check: |input| {
            let _ = codec::unwrap(input);
            decode_plain::<i64>(input);
            decode_plain::<u32>(input);
            decode_plain::<String>(input);
            decode_plain::<Vec<u8>>(input);
            decode_plain::<Option<bool>>(input);
            decode_plain::<Vec<String>>(input);
            decode_plain::<BTreeMap<String, Vec<u32>>>(input);
            decode_plain::<(f64, char, Option<bool>, ())>(input);
            decode_as::<Page>(input);
            decode_as::<Tree>(input);
        },
    });
}

/// A recursive untagged enum: serde buffers the value and, at each level, copies the level's
/// subtree again to try the variants, so what it holds at once grows with the depth times the
/// size. The decoder's depth limit (128 levels) is what bounds it.
#[test]
fn stored_untagged_values() {
    run(Target {
        name: "stored_untagged_value",
        seeds: value_seeds(),
        dictionary: VALUE_PIECES,
        max_len: 1024,
        per_byte: 64 * 128,
        fixed: 16 << 10,
        check: |input| decode_as::<Loose>(input),
    });
}
