//! The decoded form of entries recently read from a remote store.
//!
//! Every hit from Redis reads the entry's bytes; decoding them again (header names and values
//! validated one by one, a header map built) is most of the work a hit does in this process. A
//! hot page comes back as the very same bytes from one read to the next, so the decoded entry of
//! the last bytes read under a key is kept and reused when the new bytes are equal to them.
//! Equality of the whole record, not the key, decides: a changed or replaced entry always
//! decodes afresh, and nothing is served that the store does not hold right now.

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use foldhash::fast::RandomState;

use super::entry::{self, Entry, Record};

/// Slots, each holding the entry last decoded for the keys that map to it.
const SLOTS: usize = 64;
/// Records larger than this are decoded on every read and never kept. Kept records are copies
/// of their own size, so the memo holds at most `SLOTS × MAX_RECORD` (4 MiB) per layer.
const MAX_RECORD: usize = 64 << 10;

/// Decoded entries by the bytes they were decoded from.
pub(crate) struct Memo {
    slots: Box<[Mutex<Option<Slot>>]>,
    hasher: RandomState,
}

struct Slot {
    raw: Bytes,
    entry: Arc<Entry>,
}

impl Default for Memo {
    fn default() -> Memo {
        Memo {
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
            hasher: RandomState::default(),
        }
    }
}

impl Memo {
    /// Decodes the record read under `key`, reusing the entry decoded from equal bytes before.
    pub(crate) fn decode(&self, key: &str, raw: &Bytes) -> Option<Record> {
        if raw.len() > MAX_RECORD {
            return entry::decode(raw);
        }
        let index = usize::try_from(self.hasher.hash_one(key) % SLOTS as u64).unwrap_or_default();
        let slot = self.slots.get(index)?;
        // Compared outside the lock, so that a large record holds no other request up.
        let kept = slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|kept| (kept.raw.clone(), Arc::clone(&kept.entry)));
        if let Some((kept_raw, entry)) = kept
            && kept_raw == *raw
        {
            return Some(Record::Entry(entry));
        }
        // Decoded from a copy of its own size: what a store reads is often a slice of a larger
        // read buffer, which a kept entry (its body and header values are slices of the bytes
        // it was decoded from) would otherwise keep alive.
        let owned = Bytes::copy_from_slice(raw);
        let record = entry::decode(&owned)?;
        if let Record::Entry(entry) = &record {
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(Slot {
                raw: owned,
                entry: Arc::clone(entry),
            });
        }
        Some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::{Duration, UNIX_EPOCH};

    use http::{HeaderMap, HeaderValue, StatusCode};

    use crate::page::entry::{Lifetime, encode};

    fn entry(body: impl Into<Bytes>, stored_secs: u64) -> Bytes {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        encode(&Record::Entry(Arc::new(Entry {
            status: StatusCode::OK,
            headers,
            body: body.into(),
            stored_at: UNIX_EPOCH + Duration::from_secs(stored_secs),
            lifetime: Lifetime {
                fresh: Duration::from_secs(60),
                ..Lifetime::default()
            },
            tags: Vec::new(),
            started_micros: 0,
            extra: String::new(),
            authorization: None,
            vary: Vec::new(),
            etag: None,
            last_modified: None,
        })))
        .expect("encodes")
    }

    fn decoded(memo: &Memo, key: &str, raw: &Bytes) -> Arc<Entry> {
        match memo.decode(key, raw) {
            Some(Record::Entry(entry)) => entry,
            other => panic!("not an entry: {other:?}"),
        }
    }

    #[test]
    fn equal_bytes_reuse_the_decoded_entry() {
        let memo = Memo::default();
        let raw = entry(&b"page"[..], 1_000);
        let first = decoded(&memo, "k", &raw);
        // A new read of the same record: other memory, equal bytes.
        let again = decoded(&memo, "k", &Bytes::copy_from_slice(&raw));
        assert!(Arc::ptr_eq(&first, &again));
    }

    #[test]
    fn changed_bytes_decode_afresh() {
        let memo = Memo::default();
        let old = decoded(&memo, "k", &entry(&b"old page"[..], 1_000));
        let new = decoded(&memo, "k", &entry(&b"new page"[..], 2_000));
        assert!(!Arc::ptr_eq(&old, &new));
        assert_eq!(&new.body[..], b"new page");
        assert_eq!(new.stored_at, UNIX_EPOCH + Duration::from_secs(2_000));
        // The same body stored at another time is another record.
        let restored = decoded(&memo, "k", &entry(&b"new page"[..], 3_000));
        assert_eq!(restored.stored_at, UNIX_EPOCH + Duration::from_secs(3_000));
    }

    #[test]
    fn keys_sharing_a_slot_each_get_their_own_page() {
        // More keys than slots: some share one, and take turns in it.
        let memo = Memo::default();
        let pages: Vec<(String, Bytes)> = (0..=SLOTS)
            .map(|n| (format!("key {n}"), entry(format!("page {n}"), 1_000)))
            .collect();
        for _ in 0..2 {
            for (n, (key, raw)) in pages.iter().enumerate() {
                let body = decoded(&memo, key, raw).body.clone();
                assert_eq!(body, format!("page {n}").as_bytes());
            }
        }
    }

    #[test]
    fn a_kept_entry_holds_no_more_than_its_record() {
        // A read returns a slice of a larger buffer, as a client's read buffer.
        let memo = Memo::default();
        let record = entry(&b"page"[..], 1_000);
        let mut buffer = record.to_vec();
        buffer.resize(1 << 20, 0);
        let buffer = Bytes::from(buffer);
        let kept = decoded(&memo, "k", &buffer.slice(..record.len()));
        assert_eq!(&kept.body[..], b"page");
        assert!(!buffer.as_ptr_range().contains(&kept.body.as_ptr()));
    }

    #[test]
    fn large_and_undecodable_records_are_not_kept() {
        let memo = Memo::default();
        assert!(memo.decode("k", &Bytes::from_static(b"garbage")).is_none());
        let raw = entry(vec![b'x'; MAX_RECORD + 1], 1_000);
        let first = decoded(&memo, "k", &raw);
        let again = decoded(&memo, "k", &raw);
        assert!(!Arc::ptr_eq(&first, &again));
        assert_eq!(again.body.len(), MAX_RECORD + 1);
    }
}
