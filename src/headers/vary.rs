//! `Vary`: which request headers select among a URL's responses.

use http::header::VARY;
use http::{HeaderMap, HeaderName};

use super::header_value;

/// What a response's `Vary` header says (RFC 9110).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Vary {
    /// `*`: the response depends on more than request headers, so no stored copy can be reused.
    Any,
    /// The request headers the response depends on: lower-case, without duplicates, sorted.
    /// Empty when the response has no `Vary`.
    Names(Vec<HeaderName>),
}

/// The entries of every `Vary` field line, split at commas and trimmed, empty ones left out.
fn entries(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(VARY)
        .into_iter()
        .flat_map(|line| line.as_bytes().split(|&byte| byte == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|entry| !entry.is_empty())
}

/// Reads the response's `Vary` header, all field lines of it.
///
/// A `*` entry anywhere (surrounding whitespace allowed) gives [`Vary::Any`]. Otherwise the
/// names are lower-cased, deduplicated and sorted, so two spellings or orders of one list compare
/// equal; entries that are not header names are ignored.
///
/// ```
/// use axum_cache::headers::{Vary, vary};
/// use http::{HeaderMap, HeaderValue, header::{ACCEPT_ENCODING, COOKIE, VARY}};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(VARY, HeaderValue::from_static("Cookie, accept-encoding, COOKIE"));
/// assert_eq!(vary(&headers), Vary::Names(vec![ACCEPT_ENCODING, COOKIE]));
///
/// headers.append(VARY, HeaderValue::from_static(" * "));
/// assert_eq!(vary(&headers), Vary::Any);
/// ```
pub fn vary(headers: &HeaderMap) -> Vary {
    let mut names = Vec::new();
    for entry in entries(headers) {
        if entry == b"*" {
            return Vary::Any;
        }
        if let Ok(name) = HeaderName::from_bytes(entry) {
            names.push(name);
        }
    }
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    Vary::Names(names)
}

/// Adds header names to the response's `Vary`: Django's `patch_vary_headers`, also used by
/// `vary_on_headers` and `vary_on_cookie`.
///
/// The current entries keep their order and spelling (whitespace around them is dropped); a new
/// name is appended unless it is already there, compared case-insensitively, including names added
/// earlier in the same call. Names that are neither header names nor `*` are ignored. When any
/// entry is `*` (after trimming), the header becomes just `*`. All field lines are replaced by
/// one. When there is nothing to write, the headers are left as they are.
///
/// ```
/// use axum_cache::headers::patch_vary_headers;
/// use http::{HeaderMap, HeaderValue, header::VARY};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(VARY, HeaderValue::from_static("Cookie    ,     Accept-Encoding"));
/// patch_vary_headers(&mut headers, ["accept-encoding", "Accept-Language"]);
/// assert_eq!(headers[VARY], "Cookie, Accept-Encoding, Accept-Language");
/// ```
pub fn patch_vary_headers<I, N>(headers: &mut HeaderMap, names: I)
where
    I: IntoIterator<Item = N>,
    N: AsRef<str>,
{
    let mut list: Vec<Vec<u8>> = entries(headers).map(<[u8]>::to_vec).collect();
    for name in names {
        let name = name.as_ref().trim_ascii().as_bytes();
        let valid = name == b"*" || HeaderName::from_bytes(name).is_ok();
        if valid && !list.iter().any(|entry| entry.eq_ignore_ascii_case(name)) {
            list.push(name.to_vec());
        }
    }
    if list.is_empty() {
        return;
    }
    let value = if list.iter().any(|entry| entry == b"*") {
        b"*".to_vec()
    } else {
        list.join(&b", "[..])
    };
    headers.insert(VARY, header_value(value));
}

/// Whether the response's `Vary` names `name`: entries and `name` are compared trimmed and
/// case-insensitively, so `" * "` counts as `*`. Django's `has_vary_header`.
///
/// ```
/// use axum_cache::headers::has_vary_header;
/// use http::{HeaderMap, HeaderValue, header::VARY};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(VARY, HeaderValue::from_static("Cookie , * "));
/// assert!(has_vary_header(&headers, "cookie"));
/// assert!(has_vary_header(&headers, "*"));
/// assert!(!has_vary_header(&headers, "Accept"));
/// ```
pub fn has_vary_header(headers: &HeaderMap, name: &str) -> bool {
    let name = name.trim_ascii().as_bytes();
    entries(headers).any(|entry| entry.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_vary(lines: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(VARY, HeaderValue::from_bytes(line).unwrap());
        }
        headers
    }

    fn names(list: &[&'static str]) -> Vary {
        Vary::Names(list.iter().map(|n| HeaderName::from_static(n)).collect())
    }

    #[test]
    fn vary_reads_every_line_and_ignores_invalid_names() {
        let headers = with_vary(&[b"Cookie, , bad name", b"Accept-Encoding,cookie", b"\xff"]);
        assert_eq!(vary(&headers), names(&["accept-encoding", "cookie"]));
        assert_eq!(vary(&HeaderMap::new()), Vary::Names(Vec::new()));
        assert_eq!(vary(&with_vary(&[b""])), Vary::Names(Vec::new()));
    }

    #[test]
    fn a_star_anywhere_means_any() {
        for line in [&b"*"[..], b" *", b"Cookie, * ", b"Cookie,*,Accept"] {
            assert_eq!(vary(&with_vary(&[line])), Vary::Any);
        }
        assert_eq!(vary(&with_vary(&[b"Cookie", b"*"])), Vary::Any);
        assert_eq!(vary(&with_vary(&[b"**, x*"])), names(&["**", "x*"]));
    }

    #[test]
    fn patch_adds_a_repeated_name_once() {
        let mut headers = HeaderMap::new();
        patch_vary_headers(&mut headers, ["Accept", "accept", " ACCEPT "]);
        assert_eq!(headers[VARY], "Accept");
    }

    #[test]
    fn patch_detects_a_star_after_trimming() {
        let mut headers = with_vary(&[b"Cookie,  * "]);
        patch_vary_headers(&mut headers, ["Accept"]);
        assert_eq!(headers[VARY], "*");
        let mut headers = with_vary(&[b"Cookie"]);
        patch_vary_headers(&mut headers, [" * "]);
        assert_eq!(headers[VARY], "*");
    }

    #[test]
    fn patch_ignores_invalid_names_and_writes_nothing_for_nothing() {
        let mut headers = HeaderMap::new();
        patch_vary_headers(&mut headers, ["", "bad name", "a\nb", "é"]);
        assert!(headers.get(VARY).is_none());
        let mut headers = with_vary(&[b"  "]);
        patch_vary_headers(&mut headers, Vec::<String>::new());
        assert_eq!(headers[VARY], "  ");
    }

    #[test]
    fn patch_joins_lines_and_keeps_odd_bytes_of_current_entries() {
        let mut headers = with_vary(&[b"Cookie", b"X-\xff"]);
        patch_vary_headers(&mut headers, ["cookie", "Accept"]);
        assert_eq!(headers.get_all(VARY).iter().count(), 1);
        assert_eq!(headers[VARY].as_bytes(), b"Cookie, X-\xff, Accept");
    }

    #[test]
    fn has_vary_header_needs_a_vary() {
        assert!(!has_vary_header(&HeaderMap::new(), "*"));
        assert!(!has_vary_header(&with_vary(&[b""]), ""));
        assert!(has_vary_header(&with_vary(&[b"A", b" b "]), " B"));
    }
}
