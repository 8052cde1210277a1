//! The encoding of typed values.
//!
//! - A value that serializes as a single integer that fits `i64` is stored as ASCII decimal, the
//!   form every store's `incr` works on (Redis `INCRBY`, memcached `incr`). So `set("n", &41)`
//!   followed by `incr("n", 1)` works on every store, and `get::<u32>("n")` reads 42 back.
//! - Anything else is a tag byte, [`TAG_MSGPACK`], followed by MessagePack with named struct
//!   fields: compact, self-describing (untagged enums and `serde_json::Value` work), and a
//!   reordered or renamed field makes the old entry fail to decode instead of decoding wrongly.
//!
//! - A value written with tags (see [`Cache::with_tags`](crate::Cache::with_tags)) is wrapped:
//!   [`TAG_TAGGED`], the number of tags, each tag (u16 length, bytes), the time its computation
//!   started (u64 microseconds since the epoch, big-endian), then the value in one of the forms
//!   above.
//!
//! The first byte tells the forms apart: a decimal integer starts with `-` or a digit, and the
//! tags are neither. Any other first byte is a value this crate did not write.
//!
//! Stored bytes are not trusted: MessagePack nested deeper than [`MAX_DEPTH`], or with a
//! collection that claims more elements than its bytes could hold, is an error before serde
//! recurses or reserves memory for it.

use std::fmt;

use bytes::Bytes;
use serde::de::{DeserializeOwned, IntoDeserializer, value::Error as ValueError};
use serde::ser::{self, Impossible, Serialize};

use crate::binary::Writer;

/// First byte of a MessagePack-encoded value (an ASCII control character, so never the start
/// of an integer).
const TAG_MSGPACK: u8 = 0x01;
/// First byte of a value wrapped with its tags.
const TAG_TAGGED: u8 = 0x02;

/// How deep MessagePack values may nest, as in `serde_json`: decoding recurses once per
/// level, and a damaged value nested deeper could overflow the stack of the thread reading it.
const MAX_DEPTH: usize = 128;

/// The tags a value was written with, and when its computation started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tagged {
    pub(crate) tags: Vec<String>,
    pub(crate) started_micros: u64,
}

/// Wraps an encoded value with its tags. More than 255 tags, or a tag over 65,535 bytes, is an
/// error: dropping or cutting one would leave the value alive after its tag is invalidated.
pub(crate) fn wrap(tagged: &Tagged, inner: &[u8]) -> Result<Bytes, String> {
    let tags: usize = tagged.tags.iter().map(|tag| tag.len() + 2).sum();
    let mut out = Writer::with_capacity(inner.len() + 10 + tags);
    out.u8(TAG_TAGGED);
    out.count8("tags", tagged.tags.len())
        .map_err(|error| error.to_string())?;
    for tag in &tagged.tags {
        out.bytes16("a tag", tag.as_bytes())
            .map_err(|error| error.to_string())?;
    }
    out.u64(tagged.started_micros);
    out.raw(inner);
    Ok(out.finish())
}

/// Splits a tagged value into its tags and the value inside; `Ok(None)` for an untagged value,
/// `Err` for a damaged wrapper.
pub(crate) fn unwrap(bytes: &[u8]) -> Result<Option<(Tagged, &[u8])>, String> {
    let Some((&TAG_TAGGED, rest)) = bytes.split_first() else {
        return Ok(None);
    };
    let damaged = || "damaged tag header".to_owned();
    let (&count, mut rest) = rest.split_first().ok_or_else(damaged)?;
    let mut tags = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let (len, after) = rest.split_first_chunk::<2>().ok_or_else(damaged)?;
        let (tag, after) = after
            .split_at_checked(usize::from(u16::from_be_bytes(*len)))
            .ok_or_else(damaged)?;
        tags.push(String::from_utf8(tag.to_vec()).map_err(|_| damaged())?);
        rest = after;
    }
    let (started, inner) = rest.split_first_chunk::<8>().ok_or_else(damaged)?;
    let tagged = Tagged {
        tags,
        started_micros: u64::from_be_bytes(*started),
    };
    Ok(Some((tagged, inner)))
}

/// Encodes a typed value for a store.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, String> {
    if let Ok(integer) = value.serialize(IntegerProbe) {
        return Ok(Bytes::from(integer.to_string()));
    }
    let mut buffer = vec![TAG_MSGPACK];
    value
        .serialize(&mut rmp_serde::Serializer::new(&mut buffer).with_struct_map())
        .map_err(|error| error.to_string())?;
    Ok(Bytes::from(buffer))
}

/// Decodes what [`encode`] wrote, inside a tag wrapper or not. Any other bytes, or bytes of
/// another type, are an error.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let bytes = match unwrap(bytes)? {
        Some((_, inner)) => inner,
        None => bytes,
    };
    match bytes.split_first() {
        Some((&TAG_MSGPACK, mut rest)) => {
            check_counts(rest)?;
            let mut deserializer = rmp_serde::Deserializer::new(&mut rest);
            deserializer.set_max_depth(MAX_DEPTH);
            let value = T::deserialize(&mut deserializer).map_err(|error| error.to_string())?;
            if rest.is_empty() {
                Ok(value)
            } else {
                Err(format!("{} trailing bytes after the value", rest.len()))
            }
        }
        Some((b'-' | b'0'..=b'9', _)) => {
            let integer = std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| text.parse::<i64>().ok())
                .ok_or_else(|| "not a decimal integer".to_owned())?;
            T::deserialize(IntoDeserializer::<ValueError>::into_deserializer(integer))
                .map_err(|error| error.to_string())
        }
        Some((first, _)) => Err(format!("unknown value encoding (first byte {first:#04x})")),
        None => Err("empty value".to_owned()),
    }
}

/// Checks that no array or map in the MessagePack value at the start of `bytes` claims more
/// elements than the bytes after it could hold (each takes at least one byte), before serde
/// reserves room by the claimed count: it reserves up to a megabyte per collection, so a
/// damaged or hostile value of a few bytes per nesting level could otherwise make a decode
/// allocate that much per level. With the check, everything reserved at once adds up to at most
/// one element per byte of the value. Only markers and lengths are read; what follows the
/// value is for the decoder to refuse.
fn check_counts(bytes: &[u8]) -> Result<(), String> {
    let damaged = || "damaged MessagePack value".to_owned();
    let mut rest = bytes;
    // Values still to read: the first, then the elements of every collection opened so far.
    let mut pending: u64 = 1;
    while pending > 0 {
        let (&marker, after) = rest.split_first().ok_or_else(damaged)?;
        rest = after;
        pending -= 1;
        // The elements it opens, and the bytes it occupies after its marker and length.
        let (elements, skip): (u64, u64) = match marker {
            // Fixed integers, nil, false, true.
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => (0, 0),
            0x80..=0x8f => (2 * u64::from(marker & 0x0f), 0),
            0x90..=0x9f => (u64::from(marker & 0x0f), 0),
            0xa0..=0xbf => (0, u64::from(marker & 0x1f)),
            // bin8/16/32, ext8/16/32 (a type byte after the length), str8/16/32.
            0xc4 | 0xd9 => (0, read_be(&mut rest, 1)?),
            0xc5 | 0xda => (0, read_be(&mut rest, 2)?),
            0xc6 | 0xdb => (0, read_be(&mut rest, 4)?),
            0xc7 => (0, read_be(&mut rest, 1)? + 1),
            0xc8 => (0, read_be(&mut rest, 2)? + 1),
            0xc9 => (0, read_be(&mut rest, 4)? + 1),
            // float32/64, uint8…64, int8…64.
            0xca => (0, 4),
            0xcb => (0, 8),
            0xcc | 0xd0 => (0, 1),
            0xcd | 0xd1 => (0, 2),
            0xce | 0xd2 => (0, 4),
            0xcf | 0xd3 => (0, 8),
            // fixext 1, 2, 4, 8, 16: a type byte and the data.
            0xd4 => (0, 2),
            0xd5 => (0, 3),
            0xd6 => (0, 5),
            0xd7 => (0, 9),
            0xd8 => (0, 17),
            0xdc => (read_be(&mut rest, 2)?, 0),
            0xdd => (read_be(&mut rest, 4)?, 0),
            0xde => (2 * read_be(&mut rest, 2)?, 0),
            0xdf => (2 * read_be(&mut rest, 4)?, 0),
            // 0xc1 is never used.
            _ => return Err(damaged()),
        };
        let skip = usize::try_from(skip).map_err(|_| damaged())?;
        rest = rest.get(skip..).ok_or_else(damaged)?;
        pending += elements;
        if pending > rest.len() as u64 {
            return Err(format!(
                "damaged MessagePack value: {pending} elements claimed in {} bytes",
                rest.len()
            ));
        }
    }
    Ok(())
}

/// Reads a big-endian unsigned number of `width` bytes off the front of `bytes`.
fn read_be(bytes: &mut &[u8], width: usize) -> Result<u64, String> {
    let (number, rest) = bytes
        .split_at_checked(width)
        .ok_or_else(|| "damaged MessagePack value".to_owned())?;
    *bytes = rest;
    Ok(number
        .iter()
        .fold(0, |value, &byte| (value << 8) | u64::from(byte)))
}

/// A serializer that succeeds only for a lone integer within `i64`, and returns it.
struct IntegerProbe;

#[derive(Debug)]
struct NotAnInteger;

impl fmt::Display for NotAnInteger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an integer")
    }
}

impl std::error::Error for NotAnInteger {}

impl ser::Error for NotAnInteger {
    fn custom<M: fmt::Display>(_msg: M) -> Self {
        NotAnInteger
    }
}

macro_rules! not_an_integer {
    ($($method:ident($($arg:ty),*) -> $ok:ty;)*) => {
        $(
            fn $method(self $(, _: $arg)*) -> Result<$ok, NotAnInteger> {
                Err(NotAnInteger)
            }
        )*
    };
}

impl ser::Serializer for IntegerProbe {
    type Ok = i64;
    type Error = NotAnInteger;
    type SerializeSeq = Impossible<i64, NotAnInteger>;
    type SerializeTuple = Impossible<i64, NotAnInteger>;
    type SerializeTupleStruct = Impossible<i64, NotAnInteger>;
    type SerializeTupleVariant = Impossible<i64, NotAnInteger>;
    type SerializeMap = Impossible<i64, NotAnInteger>;
    type SerializeStruct = Impossible<i64, NotAnInteger>;
    type SerializeStructVariant = Impossible<i64, NotAnInteger>;

    fn serialize_i8(self, v: i8) -> Result<i64, NotAnInteger> {
        Ok(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<i64, NotAnInteger> {
        Ok(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<i64, NotAnInteger> {
        Ok(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<i64, NotAnInteger> {
        Ok(v)
    }
    fn serialize_i128(self, v: i128) -> Result<i64, NotAnInteger> {
        i64::try_from(v).map_err(|_| NotAnInteger)
    }
    fn serialize_u8(self, v: u8) -> Result<i64, NotAnInteger> {
        Ok(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<i64, NotAnInteger> {
        Ok(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<i64, NotAnInteger> {
        Ok(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<i64, NotAnInteger> {
        i64::try_from(v).map_err(|_| NotAnInteger)
    }
    fn serialize_u128(self, v: u128) -> Result<i64, NotAnInteger> {
        i64::try_from(v).map_err(|_| NotAnInteger)
    }

    not_an_integer! {
        serialize_bool(bool) -> i64;
        serialize_f32(f32) -> i64;
        serialize_f64(f64) -> i64;
        serialize_char(char) -> i64;
        serialize_str(&str) -> i64;
        serialize_bytes(&[u8]) -> i64;
        serialize_none() -> i64;
        serialize_unit() -> i64;
        serialize_unit_struct(&'static str) -> i64;
        serialize_unit_variant(&'static str, u32, &'static str) -> i64;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<i64, NotAnInteger> {
        Err(NotAnInteger)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _value: &T,
    ) -> Result<i64, NotAnInteger> {
        // A newtype would not deserialize from a bare integer again.
        Err(NotAnInteger)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<i64, NotAnInteger> {
        Err(NotAnInteger)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Article {
        id: u64,
        title: String,
        tags: Vec<String>,
        score: Option<f64>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    enum Loose {
        Number(f64),
        Text(String),
    }

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + fmt::Debug>(value: T) {
        let bytes = encode(&value).unwrap();
        assert_eq!(decode::<T>(&bytes).unwrap(), value);
    }

    #[test]
    fn integers_are_ascii_decimal() {
        assert_eq!(encode(&42u8).unwrap(), "42");
        assert_eq!(encode(&-7i64).unwrap(), "-7");
        assert_eq!(encode(&i64::MIN).unwrap(), i64::MIN.to_string());
        assert_eq!(decode::<u32>(b"42").unwrap(), 42);
        assert_eq!(decode::<i64>(b"-9").unwrap(), -9);
    }

    #[test]
    fn integers_beyond_i64_use_messagepack() {
        let bytes = encode(&u64::MAX).unwrap();
        assert_eq!(bytes.first(), Some(&TAG_MSGPACK));
        assert_eq!(decode::<u64>(&bytes).unwrap(), u64::MAX);
        round_trip(i128::MIN);
    }

    #[test]
    fn structured_values_round_trip() {
        round_trip(Article {
            id: 7,
            title: "Iñtërnâtiônàlizætiøn".into(),
            tags: vec!["a".into(), String::new()],
            score: Some(0.5),
        });
        round_trip(Some(3i32));
        round_trip(None::<i32>);
        round_trip((1u8, "two".to_owned(), 3.0f32));
        round_trip(BTreeMap::from([("k".to_owned(), vec![1u16, 2])]));
        round_trip(String::new());
        round_trip(vec![0u8; 1024]);
        round_trip(true);
        round_trip(Loose::Text("x".into()));
        round_trip(Loose::Number(1.5));
    }

    #[test]
    fn a_value_of_another_type_does_not_decode() {
        let bytes = encode(&"text").unwrap();
        assert!(decode::<u32>(&bytes).is_err());
        assert!(decode::<u8>(b"300").is_err());
        assert!(decode::<String>(b"42").is_err());
        let article = encode(&Article {
            id: 1,
            title: "t".into(),
            tags: vec![],
            score: None,
        })
        .unwrap();
        assert!(decode::<Vec<u8>>(&article).is_err());
    }

    #[test]
    fn tagged_values_round_trip_and_decode_as_the_value() {
        let tagged = Tagged {
            tags: vec!["articles".into(), "user:7".into(), String::new()],
            started_micros: 1_700_000_000_123_456,
        };
        for inner in [encode(&42).unwrap(), encode(&"text").unwrap()] {
            let wrapped = wrap(&tagged, &inner).unwrap();
            let (read, rest) = unwrap(&wrapped).unwrap().unwrap();
            assert_eq!(read, tagged);
            assert_eq!(rest, &inner[..]);
        }
        assert_eq!(
            decode::<i32>(&wrap(&tagged, &encode(&42).unwrap()).unwrap()).unwrap(),
            42
        );
        assert_eq!(unwrap(&encode(&1).unwrap()).unwrap(), None);
        let wrapped = wrap(&tagged, b"7").unwrap();
        for len in 1..wrapped.len() - 1 {
            assert!(
                decode::<i32>(&wrapped[..len]).is_err(),
                "truncated to {len}"
            );
        }
    }

    #[test]
    fn tags_that_cannot_be_written_whole_are_refused() {
        let many = Tagged {
            tags: (0..256).map(|i| format!("t{i}")).collect(),
            started_micros: 1,
        };
        assert!(wrap(&many, b"7").unwrap_err().contains("255"));
        let long = Tagged {
            tags: vec!["x".repeat(70_000)],
            started_micros: 1,
        };
        assert!(wrap(&long, b"7").unwrap_err().contains("65,535"));
        let most = Tagged {
            tags: (0..255).map(|i| format!("t{i}")).collect(),
            started_micros: 1,
        };
        let (read, _) = unwrap(&wrap(&most, b"7").unwrap()).unwrap().unwrap();
        assert_eq!(read, most);
    }

    #[test]
    fn foreign_or_damaged_bytes_are_errors() {
        assert!(decode::<u32>(b"").is_err());
        assert!(decode::<String>(b"plain text").is_err());
        assert!(decode::<i64>(b"12abc").is_err());
        assert!(decode::<i64>(b"99999999999999999999999").is_err());
        let mut bytes = encode(&"hello").unwrap().to_vec();
        bytes.truncate(bytes.len() - 1);
        assert!(decode::<String>(&bytes).is_err());
        let mut bytes = encode(&"hello").unwrap().to_vec();
        bytes.push(0);
        assert!(decode::<String>(&bytes).is_err());
        assert!(decode::<String>(&[TAG_MSGPACK, 0xc1]).is_err());
    }

    /// A value as deep as its bytes say, buffered by serde (untagged) before it is matched.
    #[derive(Debug, Deserialize)]
    #[serde(untagged)]
    enum Nested {
        List(Vec<Nested>),
        Leaf(u8),
    }

    impl Nested {
        fn depth(&self) -> usize {
            match self {
                Nested::List(items) => 1 + items.iter().map(Nested::depth).max().unwrap_or(0),
                Nested::Leaf(leaf) => usize::from(*leaf > 0),
            }
        }
    }

    /// The most a decode below may allocate at once: what the values hold, and some slack.
    const SMALL: u64 = 4096;

    #[test]
    fn a_count_larger_than_the_value_reserves_nothing() {
        // An array, a map and a buffered (untagged) value that claim four billion elements.
        for bytes in [
            &b"\x01\xdd\xff\xff\xff\xff\x01"[..],
            b"\x01\xdf\xff\xff\xff\xff\xa1k\x01",
            b"\x01\xdc\xff\xff\x01\x02",
        ] {
            let info = allocation_counter::measure(|| {
                assert!(decode::<Vec<u64>>(bytes).is_err());
                assert!(decode::<BTreeMap<String, u8>>(bytes).is_err());
                assert!(decode::<Vec<Loose>>(bytes).is_err());
                assert!(decode::<Loose>(bytes).is_err());
            });
            assert!(info.bytes_max < SMALL, "{bytes:?}: {info:?}");
        }
    }

    #[test]
    fn nested_counts_cannot_add_up_to_more_than_the_value() {
        // Each level claims 65,535 elements and holds one: the next level.
        let mut bytes = vec![TAG_MSGPACK];
        for _ in 0..200 {
            bytes.extend_from_slice(b"\xdc\xff\xff");
        }
        bytes.push(0x90);
        let info = allocation_counter::measure(|| {
            assert!(decode::<Nested>(&bytes).map(|n| n.depth()).is_err());
        });
        assert!(info.bytes_max < SMALL, "{info:?}");
    }

    #[test]
    fn deep_nesting_is_refused_within_a_worker_threads_stack() {
        let nested = |depth: usize| {
            let mut bytes = vec![TAG_MSGPACK];
            bytes.extend(std::iter::repeat_n(0x91, depth));
            bytes.push(0x00);
            bytes
        };
        // A Tokio worker's stack.
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let depth = decode::<Nested>(&nested(MAX_DEPTH - 1)).map(|n| n.depth());
                assert_eq!(depth, Ok(MAX_DEPTH - 1));
                assert!(decode::<Nested>(&nested(MAX_DEPTH + 1)).is_err());
                assert!(decode::<Nested>(&nested(5_000)).is_err());
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn values_whose_counts_are_honest_still_decode() {
        round_trip(vec![vec![1u8; 3], Vec::new(), vec![7]]);
        round_trip(vec![(); 5]);
        round_trip(BTreeMap::from([("".to_owned(), ()), ("a".to_owned(), ())]));
        round_trip(vec![Vec::<u8>::new(); 40]);
        round_trip((vec![String::new(); 3], [0u8; 32]));
    }
}
