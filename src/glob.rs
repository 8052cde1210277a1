//! Glob patterns as Redis reads them (`KEYS`/`SCAN MATCH`), so that a pattern deletes the same
//! keys from the memory store as from Redis.
//!
//! `*` matches any run of bytes, `?` one byte, `[abc]`, `[a-z]` and `[^a]` one byte of (or not
//! of) a set, and `\` makes the next byte literal.

/// Escapes `text` so that it matches only itself.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// One step of a pattern: each consumes exactly one byte, except `Any`.
#[derive(Debug, PartialEq)]
enum Token {
    Any,
    One,
    Byte(u8),
    Set { negated: bool, items: Vec<(u8, u8)> },
}

fn tokens(pattern: &[u8]) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&byte) = pattern.get(i) {
        i += 1;
        tokens.push(match byte {
            b'*' => {
                // Consecutive stars match what one does.
                if tokens.last() != Some(&Token::Any) {
                    Token::Any
                } else {
                    continue;
                }
            }
            b'?' => Token::One,
            b'\\' => match pattern.get(i) {
                Some(&escaped) => {
                    i += 1;
                    Token::Byte(escaped)
                }
                None => Token::Byte(b'\\'),
            },
            b'[' => {
                let negated = pattern.get(i) == Some(&b'^');
                if negated {
                    i += 1;
                }
                let mut items = Vec::new();
                while let Some(&member) = pattern.get(i) {
                    i += 1;
                    match member {
                        b']' => break,
                        b'\\' => {
                            let literal = pattern.get(i).copied().unwrap_or(b'\\');
                            i += 1;
                            items.push((literal, literal));
                        }
                        _ if pattern.get(i) == Some(&b'-')
                            && pattern.get(i + 1).is_some_and(|&end| end != b']') =>
                        {
                            let end = pattern.get(i + 1).copied().unwrap_or(member);
                            i += 2;
                            items.push((member.min(end), member.max(end)));
                        }
                        _ => items.push((member, member)),
                    }
                }
                Token::Set { negated, items }
            }
            other => Token::Byte(other),
        });
    }
    tokens
}

impl Token {
    fn matches_byte(&self, byte: u8) -> bool {
        match self {
            Token::Any | Token::One => true,
            Token::Byte(expected) => *expected == byte,
            Token::Set { negated, items } => {
                items
                    .iter()
                    .any(|(low, high)| (*low..=*high).contains(&byte))
                    != *negated
            }
        }
    }
}

/// Whether `text` matches the glob `pattern`.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let tokens = tokens(pattern.as_bytes());
    let text = text.as_bytes();
    let (mut t, mut p) = (0, 0);
    // Where to resume after the last star: the token after it, and the text it has taken so far.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match (tokens.get(p), text.get(t)) {
            (Some(Token::Any), _) => {
                star = Some((p + 1, t));
                p += 1;
            }
            (Some(token), Some(&byte)) if token.matches_byte(byte) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((after, taken)) => {
                    // Let the star take one more byte and try again.
                    star = Some((after, taken + 1));
                    p = after;
                    t = taken + 1;
                }
                None => return false,
            },
        }
    }
    tokens
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|token| *token == Token::Any))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_and_question_marks() {
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("user:*", "user:7"));
        assert!(matches("user:*", "user:"));
        assert!(!matches("user:*", "users:7"));
        assert!(matches("*:7", "user:7"));
        assert!(matches("u*r:*7", "user:17"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("h?llo", "hello"));
        assert!(!matches("h?llo", "hllo"));
        assert!(matches("**a**", "xxaxx"));
        assert!(matches("*a*a*a*b", "aaaaaaaaaaaaaaab"));
        assert!(!matches("*a*a*a*b", "aaaaaaaaaaaaaaaa"));
    }

    #[test]
    fn sets_ranges_and_negation() {
        assert!(matches("h[ae]llo", "hallo"));
        assert!(!matches("h[ae]llo", "hillo"));
        assert!(matches("h[^e]llo", "hallo"));
        assert!(!matches("h[^e]llo", "hello"));
        assert!(matches("v[0-9]", "v7"));
        assert!(!matches("v[0-9]", "vx"));
        assert!(matches("v[9-0]", "v5"), "reversed ranges are normalised");
        assert!(matches("a[-]b", "a-b"));
        assert!(matches("a[x-]b", "a-b"));
    }

    #[test]
    fn escapes_make_bytes_literal() {
        assert!(matches(r"a\*b", "a*b"));
        assert!(!matches(r"a\*b", "axb"));
        assert!(matches(r"a\?", "a?"));
        assert!(matches(r"[\]]", "]"));
        assert!(matches(r"end\", r"end\"));
    }

    #[test]
    fn escape_round_trips() {
        for text in ["plain", "a*b?c[d]e\\f", "", "*"] {
            assert!(matches(&escape(text), text), "{text:?}");
            assert!(!matches(&escape(text), &format!("{text}x")), "{text:?}");
        }
        assert!(!matches(&escape("a*"), "abc"));
    }

    #[test]
    fn unclosed_sets_never_panic() {
        for pattern in ["[", "[a", "[a-", "[^", "\\", "a[b-"] {
            let _ = matches(pattern, "abc");
        }
    }
}
