//! Entity tags (RFC 9110) and the lists of `If-Match` / `If-None-Match`.

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::headers::{header_value, is_ows, split_list};

/// An entity tag: an opaque validator of a representation, strong or weak (RFC 9110).
///
/// The tag is kept without its quotes and is always valid: it consists of `etagc` characters
/// (`!`, `#` to `~`, and non-ASCII), never a double quote, a space or a control character. So
/// [`to_header_value`](Self::to_header_value) cannot fail.
///
/// ```
/// use axum_cache::conditional::EntityTag;
///
/// let strong = EntityTag::strong("v1").unwrap();
/// let weak = EntityTag::parse(r#"W/"v1""#).unwrap();
/// assert_eq!(strong.to_string(), r#""v1""#);
/// assert!(weak.is_weak() && weak.tag() == "v1");
/// assert!(strong.weak_eq(&weak));
/// assert!(!strong.strong_eq(&weak));
/// assert!(EntityTag::strong("has \"quotes\"").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntityTag {
    weak: bool,
    tag: String,
}

/// A string that cannot be an entity tag: it holds a double quote, a space or a control
/// character.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid entity tag: only `!`, `#` to `~` and non-ASCII characters are allowed")]
#[non_exhaustive]
pub struct InvalidEntityTag;

/// Whether `byte` may appear in an entity tag: `etagc = %x21 / %x23-7E / obs-text`.
fn is_etagc(byte: u8) -> bool {
    byte == 0x21 || (0x23..=0x7e).contains(&byte) || byte >= 0x80
}

fn is_valid_tag(tag: &str) -> bool {
    tag.bytes().all(is_etagc)
}

impl EntityTag {
    fn new(weak: bool, tag: String) -> Result<Self, InvalidEntityTag> {
        if is_valid_tag(&tag) {
            Ok(Self { weak, tag })
        } else {
            Err(InvalidEntityTag)
        }
    }

    /// A strong tag: `"tag"`. Fails when `tag` holds a character an entity tag cannot (a double
    /// quote, a space, a control character).
    pub fn strong(tag: impl Into<String>) -> Result<Self, InvalidEntityTag> {
        Self::new(false, tag.into())
    }

    /// A weak tag: `W/"tag"`. Fails like [`strong`](Self::strong).
    pub fn weak(tag: impl Into<String>) -> Result<Self, InvalidEntityTag> {
        Self::new(true, tag.into())
    }

    /// Parses one entity tag, `"x"` or `W/"x"`, with optional whitespace around it. Anything
    /// else is `None`.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim_matches(is_ows);
        let (weak, quoted) = match value.strip_prefix("W/") {
            Some(quoted) => (true, quoted),
            None => (false, value),
        };
        let tag = quoted.strip_prefix('"')?.strip_suffix('"')?;
        Self::new(weak, tag.to_owned()).ok()
    }

    /// An entity tag from what an application computed: Django's `quote_etag`.
    ///
    /// A valid quoted tag, weak or strong, is kept as it is. Anything else becomes a strong tag of
    /// the value, with every character a tag cannot hold (double quote, space, control
    /// characters) and `%` itself written as `%XX` of its bytes. The escaping is one-to-one, so
    /// two different values never give the same tag.
    ///
    /// ```
    /// use axum_cache::conditional::EntityTag;
    ///
    /// assert_eq!(EntityTag::quote("etag").to_string(), r#""etag""#);
    /// assert_eq!(EntityTag::quote(r#""etag""#).to_string(), r#""etag""#);
    /// assert_eq!(EntityTag::quote(r#"W/"etag""#).to_string(), r#"W/"etag""#);
    /// assert_eq!(EntityTag::quote("a \"b\" 100%").to_string(), r#""a%20%22b%22%20100%25""#);
    /// ```
    pub fn quote(value: &str) -> Self {
        if let Some(tag) = Self::parse(value) {
            return tag;
        }
        let mut tag = String::with_capacity(value.len() + 2);
        for c in value.chars() {
            if c != '%' && (!c.is_ascii() || is_etagc(c as u8)) {
                tag.push(c);
            } else {
                let mut buffer = [0; 4];
                for byte in c.encode_utf8(&mut buffer).bytes() {
                    tag.push_str(&format!("%{byte:02X}"));
                }
            }
        }
        Self { weak: false, tag }
    }

    /// Whether the tag is weak (`W/"…"`).
    pub fn is_weak(&self) -> bool {
        self.weak
    }

    /// The opaque tag, without quotes or `W/`.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Strong comparison, for `If-Match`: both strong and the same tag.
    pub fn strong_eq(&self, other: &Self) -> bool {
        !self.weak && !other.weak && self.tag == other.tag
    }

    /// Weak comparison, for `If-None-Match`: the same tag, whether weak or strong.
    pub fn weak_eq(&self, other: &Self) -> bool {
        self.tag == other.tag
    }

    /// The header value: `"tag"` or `W/"tag"`.
    pub fn to_header_value(&self) -> HeaderValue {
        header_value(self.to_string().into_bytes())
    }
}

/// `"tag"` for a strong tag, `W/"tag"` for a weak one.
impl fmt::Display for EntityTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.weak {
            f.write_str("W/")?;
        }
        write!(f, "\"{}\"", self.tag)
    }
}

/// The value of an `If-Match` or `If-None-Match` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntityTagList {
    /// `*`: any current representation.
    Any,
    /// These tags, in the order sent; never empty when it comes from [`parse_etag_list`].
    Tags(Vec<EntityTag>),
}

impl EntityTagList {
    /// Whether `current` passes `If-Match`: it exists, and the list is `*` or holds a tag equal
    /// to it under strong comparison (so a weak `current` never passes a list of tags).
    pub fn matches_strong(&self, current: Option<&EntityTag>) -> bool {
        current.is_some_and(|current| match self {
            EntityTagList::Any => true,
            EntityTagList::Tags(tags) => tags.iter().any(|tag| tag.strong_eq(current)),
        })
    }

    /// Whether `current` matches an `If-None-Match` list: it exists, and the list is `*` or holds
    /// a tag equal to it under weak comparison.
    pub fn matches_weak(&self, current: Option<&EntityTag>) -> bool {
        current.is_some_and(|current| match self {
            EntityTagList::Any => true,
            EntityTagList::Tags(tags) => tags.iter().any(|tag| tag.weak_eq(current)),
        })
    }
}

/// Reads an `If-Match` or `If-None-Match` request header (all its field lines).
///
/// A value that is `*` after trimming gives [`EntityTagList::Any`]. Otherwise the list is split at
/// commas outside quotes and the valid entity tags are kept; invalid items (`spam`, `"e"t"ag"`)
/// are dropped silently, as in Django. `None` when the header is absent or nothing valid remains:
/// there is no condition to evaluate.
///
/// ```
/// use axum_cache::conditional::{EntityTag, EntityTagList, parse_etag_list};
/// use http::{HeaderMap, HeaderValue, header::IF_NONE_MATCH};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(IF_NONE_MATCH, HeaderValue::from_static(r#""a", spam, W/"b""#));
/// assert_eq!(
///     parse_etag_list(&headers, IF_NONE_MATCH),
///     Some(EntityTagList::Tags(vec![
///         EntityTag::strong("a").unwrap(),
///         EntityTag::weak("b").unwrap(),
///     ]))
/// );
/// ```
pub fn parse_etag_list(headers: &HeaderMap, name: HeaderName) -> Option<EntityTagList> {
    let lines: Vec<_> = headers
        .get_all(&name)
        .iter()
        .map(|line| String::from_utf8_lossy(line.as_bytes()))
        .collect();
    if let [line] = lines.as_slice()
        && line.trim_matches(is_ows) == "*"
    {
        return Some(EntityTagList::Any);
    }
    let tags: Vec<EntityTag> = lines
        .iter()
        .flat_map(|line| split_list(line, false))
        .filter_map(EntityTag::parse)
        .collect();
    (!tags.is_empty()).then_some(EntityTagList::Tags(tags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::IF_MATCH;

    fn list(lines: &[&[u8]]) -> Option<EntityTagList> {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(IF_MATCH, HeaderValue::from_bytes(line).unwrap());
        }
        parse_etag_list(&headers, IF_MATCH)
    }

    fn tags(tags: &[&str]) -> Option<EntityTagList> {
        Some(EntityTagList::Tags(
            tags.iter().map(|t| EntityTag::parse(t).unwrap()).collect(),
        ))
    }

    #[test]
    fn constructors_reject_what_a_tag_cannot_hold() {
        for bad in ["a\"b", "a b", "a\tb", "\u{7f}", "\n"] {
            assert_eq!(EntityTag::strong(bad), Err(InvalidEntityTag), "{bad:?}");
            assert_eq!(EntityTag::weak(bad), Err(InvalidEntityTag), "{bad:?}");
        }
        for good in ["", "!", "~", "a,b", "W/x", "é", "\\"] {
            assert_eq!(EntityTag::strong(good).unwrap().tag(), good);
        }
    }

    #[test]
    fn parse_takes_exactly_one_tag() {
        assert_eq!(EntityTag::parse(" \"a\"\t"), EntityTag::strong("a").ok());
        assert_eq!(EntityTag::parse("W/\"\""), EntityTag::weak("").ok());
        for bad in [
            "",
            "a",
            "\"",
            "\"a",
            "a\"",
            "w/\"a\"",
            "W/a",
            "W/ \"a\"",
            "\"a\"b",
            "\"a\" \"b\"",
            "\"a\"b\"",
            "*",
        ] {
            assert_eq!(EntityTag::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn quote_escapes_one_to_one() {
        assert_eq!(EntityTag::quote("a b").tag(), "a%20b");
        assert_eq!(EntityTag::quote("a%20b").tag(), "a%2520b");
        assert_eq!(EntityTag::quote("\"x").tag(), "%22x");
        assert_eq!(EntityTag::quote("\u{0}é\u{7f}").tag(), "%00é%7F");
        assert_eq!(EntityTag::quote("").tag(), "");
        assert_eq!(EntityTag::quote(" \"a\" ").tag(), "a");
        assert!(!EntityTag::quote("W/x").is_weak());
    }

    #[test]
    fn lists_keep_commas_inside_quotes() {
        assert_eq!(list(&[br#""a,b", "c""#]), tags(&[r#""a,b""#, r#""c""#]));
        assert_eq!(list(&[br#""a\", "b""#]), tags(&[r#""a\""#, r#""b""#]));
    }

    #[test]
    fn lists_read_every_line_and_star_only_alone() {
        assert_eq!(list(&[b"\"a\"", b"W/\"b\""]), tags(&["\"a\"", "W/\"b\""]));
        assert_eq!(list(&[b" * "]), Some(EntityTagList::Any));
        assert_eq!(list(&[b"*, \"a\""]), tags(&["\"a\""]));
        assert_eq!(list(&[b"*", b"*"]), None);
        assert_eq!(list(&[]), None);
        assert_eq!(list(&[b"spam", b""]), None);
    }

    #[test]
    fn non_utf8_tags_are_kept_lossily() {
        let parsed = list(&[b"\"\xff\""]);
        assert_eq!(parsed, tags(&["\"\u{fffd}\""]));
    }

    #[test]
    fn comparisons_follow_rfc_9110() {
        let strong = EntityTag::strong("1").unwrap();
        let weak = EntityTag::weak("1").unwrap();
        let other = EntityTag::strong("2").unwrap();
        assert!(strong.strong_eq(&strong));
        assert!(!weak.strong_eq(&weak));
        assert!(!weak.strong_eq(&strong));
        assert!(weak.weak_eq(&strong) && weak.weak_eq(&weak));
        assert!(!strong.weak_eq(&other));

        let any = EntityTagList::Any;
        assert!(any.matches_strong(Some(&weak)) && any.matches_weak(Some(&weak)));
        assert!(!any.matches_strong(None) && !any.matches_weak(None));
        let listed = EntityTagList::Tags(vec![weak.clone(), other.clone()]);
        assert!(!listed.matches_strong(Some(&strong)));
        assert!(listed.matches_strong(Some(&other)));
        assert!(listed.matches_weak(Some(&strong)));
    }

    #[test]
    fn header_values_are_the_display_form() {
        assert_eq!(EntityTag::weak("é").unwrap().to_header_value(), "W/\"é\"");
        assert_eq!(
            EntityTag::quote("x\ny").to_header_value().to_str().unwrap(),
            "\"x%0Ay\""
        );
    }
}
