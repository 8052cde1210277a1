//! Keeping secrets out of messages. A cache URL can carry a password in its userinfo
//! (`redis://user:password@host`) and in query parameters (`sentinelPassword=…`); every `Debug`
//! output and error message that shows a URL, or text another library wrote about one, goes
//! through this module, so there is one rule for what is secret.
//!
//! - The userinfo's password is secret: everything after its first `:`, or the whole userinfo
//!   when it has no `:` (a lone `redis://secret@host` is taken for a password).
//! - A query parameter is secret when its name, percent-decoded and in any case, contains
//!   `pass`, `pwd`, `secret`, `token`, `auth` or `credential`, or ends in `key` (`key`,
//!   `apikey`, `access_key`). So `sentinelPassword` is hidden, while `key_prefix` and
//!   `tls_key_file` (a prefix and a file's path) and `sentinelUsername` are shown.
//! - A URL that can be read two ways is hidden both ways: the userinfo as a URL parser reads
//!   it (up to the last `@` of the authority) and up to the last `@` anywhere, so a password
//!   with `@`, `/` or `?` written without percent-encoding is hidden whole; secret parameters
//!   from the first `?` and from the first `?` after the last `@`. When in doubt, more is hidden.

use std::ops::Range;

/// What a secret is replaced with.
const HIDDEN: &str = "***";

/// Parts of a parameter name that make its value secret.
const SECRET_NAME_PARTS: &[&str] = &["pass", "pwd", "secret", "token", "auth", "credential"];

/// Whether the query parameter `name` (already decoded) holds a secret.
pub(crate) fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAME_PARTS.iter().any(|part| name.contains(part)) || name.ends_with("key")
}

/// The scheme of `url` and what follows its `://`, when the text before the first `://` is a
/// scheme: a letter, then letters, digits, `+`, `-` or `.`.
pub(crate) fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// `url` with its secrets replaced by `***`, for messages and `Debug` output.
pub(crate) fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut shown = 0;
    for range in hidden(url) {
        out.push_str(url.get(shown..range.start).unwrap_or_default());
        out.push_str(HIDDEN);
        shown = range.end;
    }
    out.push_str(url.get(shown..).unwrap_or_default());
    out
}

/// `message` with every secret of `url` replaced by `***`, as written in the URL and
/// percent-decoded: for text that other code wrote about the URL (a client library's error),
/// which may quote the URL or any part of it.
#[cfg(feature = "redis")]
pub(crate) fn scrub(message: &str, url: &str) -> String {
    let mut secrets: Vec<String> = Vec::new();
    for range in hidden(url) {
        let raw = url.get(range).unwrap_or_default();
        for secret in [
            raw.to_owned(),
            percent_decode(raw, false),
            percent_decode(raw, true),
        ] {
            if !secret.is_empty() && !secrets.contains(&secret) {
                secrets.push(secret);
            }
        }
    }
    // Longest first, so a secret that contains another is replaced whole.
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    let mut message = message.to_owned();
    for secret in &secrets {
        if message.contains(secret.as_str()) {
            message = message.replace(secret.as_str(), HIDDEN);
        }
    }
    message
}

/// The byte ranges of `url` that hold secrets, sorted and merged.
fn hidden(url: &str) -> Vec<Range<usize>> {
    let start = split_scheme(url).map_or(0, |(scheme, _)| scheme.len() + "://".len());
    let rest = url.get(start..).unwrap_or_default();
    let mut ranges = Vec::new();
    // The userinfo as a URL parser reads it: before the last `@` of the authority.
    let authority = rest
        .find(['/', '?', '#'])
        .map_or(rest, |end| rest.get(..end).unwrap_or_default());
    if let Some(at) = authority.rfind('@') {
        ranges.extend(password(start, rest.get(..at).unwrap_or_default()));
    }
    // And before the last `@` anywhere, for a password written without percent-encoding.
    let last_at = rest.rfind('@');
    if let Some(at) = last_at {
        ranges.extend(password(start, rest.get(..at).unwrap_or_default()));
    }
    // Secret parameters, with the query starting at the first `?`, and at the first `?` after
    // the last `@`.
    for from in [0, last_at.unwrap_or(0)] {
        if let Some(question) = rest.get(from..).and_then(|tail| tail.find('?')) {
            let query_start = from + question + 1;
            secret_values(
                start + query_start,
                rest.get(query_start..).unwrap_or_default(),
                &mut ranges,
            );
        }
    }
    ranges.sort_by_key(|range| range.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

/// The password of `userinfo` (which starts at `offset` in the URL): after its first `:`, or
/// all of it without one. `None` when empty.
fn password(offset: usize, userinfo: &str) -> Option<Range<usize>> {
    let from = userinfo.find(':').map_or(0, |colon| colon + 1);
    (from < userinfo.len()).then(|| offset + from..offset + userinfo.len())
}

/// Adds the value ranges of the secret parameters of `query` (which starts at `offset`).
fn secret_values(offset: usize, query: &str, ranges: &mut Vec<Range<usize>>) {
    let mut at = offset;
    for pair in query.split('&') {
        if let Some((name, value)) = pair.split_once('=')
            && !value.is_empty()
            && is_secret_param(&percent_decode(name, true))
        {
            let value_start = at + name.len() + 1;
            ranges.push(value_start..value_start + value.len());
        }
        at += pair.len() + 1;
    }
}

/// `text` with `%XX` escapes decoded (and `+` as a space in a query, with `plus_is_space`);
/// bytes that are not UTF-8 become U+FFFD.
fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        rest = after;
        match byte {
            b'%' => {
                let hex = rest
                    .get(..2)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match hex {
                    Some(decoded) => {
                        bytes.push(decoded);
                        rest = rest.get(2..).unwrap_or_default();
                    }
                    None => bytes.push(b'%'),
                }
            }
            b'+' if plus_is_space => bytes.push(b' '),
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_passwords_are_hidden_whole() {
        for (url, redacted) in [
            (
                "redis://user:secret@host:6379/0",
                "redis://user:***@host:6379/0",
            ),
            ("redis://:secret@host", "redis://:***@host"),
            ("redis://secret@host", "redis://***@host"),
            ("redis://user:@host", "redis://user:@host"),
            ("redis://u:p@ss@host", "redis://u:***@host"),
            ("redis://u:p:ss@host", "redis://u:***@host"),
            ("redis://u:p/ss@host/0", "redis://u:***@host/0"),
            ("redis://u:p%40ss@host", "redis://u:***@host"),
            ("redis://u:p?ss@host", "redis://u:***@host"),
            ("user:secret@host", "user:***@host"),
            ("redis://host:6379", "redis://host:6379"),
            ("nonsense", "nonsense"),
            ("", ""),
        ] {
            assert_eq!(redact_url(url), redacted, "{url}");
        }
    }

    #[test]
    fn secret_parameters_are_hidden_by_name() {
        assert_eq!(
            redact_url(
                "redis+sentinel://h:1?sentinelServiceName=m&sentinelUsername=u&sentinelPassword=pw"
            ),
            "redis+sentinel://h:1?sentinelServiceName=m&sentinelUsername=u&sentinelPassword=***"
        );
        assert_eq!(
            redact_url("memory://?PASSWORD=a&key_prefix=k&tls_key_file=/k.pem&api%5Fkey=b&x=1"),
            "memory://?PASSWORD=***&key_prefix=k&tls_key_file=/k.pem&api%5Fkey=***&x=1"
        );
        for name in [
            "password",
            "sentinelPassword",
            "passwd",
            "db_pwd",
            "client_secret",
            "authToken",
            "auth",
            "credentials",
            "apikey",
            "access-key",
            "KEY",
        ] {
            assert!(is_secret_param(name), "{name}");
        }
        for name in [
            "key_prefix",
            "tls_key_file",
            "store_prefix",
            "sentinelUsername",
            "node",
        ] {
            assert!(!is_secret_param(name), "{name}");
        }
    }

    #[test]
    fn an_at_sign_in_a_secret_value_hides_both_readings() {
        // `a@b` is a parameter's value to a URL parser, and `b` a host after a password here.
        assert_eq!(redact_url("redis://host?password=a@b"), "redis://***");
        assert_eq!(
            redact_url("redis://u:p@s?s@host?x=1&token=t"),
            "redis://u:***@host?x=1&token=***"
        );
    }

    #[test]
    fn schemes_are_letters_digits_and_a_few_signs() {
        assert_eq!(
            split_scheme("redis+cluster://h"),
            Some(("redis+cluster", "h"))
        );
        assert_eq!(split_scheme("u:p@h?x=redis://h"), None);
        assert_eq!(split_scheme("1x://h"), None);
        assert_eq!(split_scheme("://h"), None);
        assert_eq!(split_scheme("h"), None);
    }

    #[cfg(feature = "redis")]
    #[test]
    fn scrubbing_hides_secrets_as_written_and_decoded() {
        let url = "redis://u:p%40ss@h?sentinelPassword=a+b%21";
        let message = "bad node p@ss near p%40ss; auth a b! or a+b%21 failed for u";
        assert_eq!(
            scrub(message, url),
            "bad node *** near ***; auth *** or *** failed for u"
        );
        assert_eq!(scrub("nothing to hide", "redis://h"), "nothing to hide");
    }

    #[test]
    fn percent_decoding_keeps_what_is_not_an_escape() {
        assert_eq!(percent_decode("a%41%zz%4", false), "aA%zz%4");
        assert_eq!(percent_decode("a+b", true), "a b");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("%ff", false), "\u{fffd}");
    }
}
