//! Checking Redis replies: each reply is read strictly, and one this store did not ask for is an
//! error rather than a guess.

use bytes::Bytes;
use fred::prelude::Value;

use crate::store::StoreError;

pub(super) fn unexpected(what: &str, reply: &Value) -> StoreError {
    StoreError::Backend(format!("unexpected Redis reply to {what}: {reply:?}").into())
}

/// A `SET` reply: `OK` when the value was written, nil when a condition (`NX`) kept it from
/// being written. Anything else (a peer that is not Redis) is an error rather than taken for
/// success: an `add` or a lock must never believe it won on a reply that says nothing.
pub(super) fn set_reply(reply: &Value) -> Result<bool, StoreError> {
    match reply {
        Value::Null => Ok(false),
        Value::String(text) if &**text == "OK" => Ok(true),
        Value::Bytes(bytes) if &bytes[..] == b"OK" => Ok(true),
        _ => Err(unexpected("SET", reply)),
    }
}

/// A bulk-string reply as bytes; nil as `None`.
pub(super) fn bytes_reply(reply: Value) -> Result<Option<Bytes>, StoreError> {
    match reply {
        Value::Null => Ok(None),
        Value::Bytes(bytes) => Ok(Some(bytes)),
        Value::String(text) => Ok(Some(text.into_inner())),
        other => Err(unexpected("a read", &other)),
    }
}

/// An integer reply.
pub(super) fn int_reply(reply: Value) -> Result<i64, StoreError> {
    match reply {
        Value::Integer(n) => Ok(n),
        other => Err(unexpected("a count", &other)),
    }
}

/// An array reply of bulk strings (`MGET`).
pub(super) fn values_reply(
    reply: Value,
    expected: usize,
) -> Result<Vec<Option<Bytes>>, StoreError> {
    match reply {
        Value::Array(values) if values.len() == expected => {
            values.into_iter().map(bytes_reply).collect()
        }
        other => Err(unexpected("MGET", &other)),
    }
}

pub(super) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_strictly() {
        assert_eq!(bytes_reply(Value::Null).unwrap(), None);
        assert_eq!(
            bytes_reply(Value::from("v")).unwrap(),
            Some(Bytes::from_static(b"v"))
        );
        assert!(bytes_reply(Value::Integer(1)).is_err());
        assert!(values_reply(Value::Array(vec![Value::Null]), 2).is_err());
    }
}
