//! Building and editing a [`CacheControl`]: the `with_*` builders of Django's
//! `cache_control(**kwargs)`, and the edits they and the patch functions share.

use std::time::Duration;

use super::{CacheControl, Directive, FieldNames, Fields, without_controls};
use crate::headers::{is_ows, is_token};

impl CacheControl {
    /// Sets `name` (already lower-case and a token): the first occurrence takes `value` in place
    /// and later ones go; a new directive is appended.
    pub(super) fn set(&mut self, name: &str, value: Option<String>) {
        let mut value = Some(value);
        self.directives.retain_mut(|directive| {
            if directive.name != name {
                return true;
            }
            match value.take() {
                Some(value) => {
                    directive.value = value;
                    true
                }
                None => false,
            }
        });
        if let Some(value) = value {
            self.directives.push(Directive {
                name: name.to_owned(),
                value,
            });
        }
    }

    /// Adds field names (or, with `None`, the bare form) to a field-list directive, in one
    /// pass. A bare directive wins over field names; names accumulate without duplicates.
    pub(super) fn add_fields(&mut self, name: &str, fields: Option<Vec<&str>>) {
        let merged = match (self.fields(name), fields) {
            (Fields::Bare, _) | (_, None) => None,
            (current, Some(fields)) => {
                let mut names = FieldNames::default();
                if let Fields::Names(current) = current {
                    names.extend(current);
                }
                names.extend(fields);
                Some(names.names.join(", "))
            }
        };
        self.set(name, merged);
    }

    fn with_delta(mut self, name: &str, duration: Duration) -> Self {
        self.set(name, Some(duration.as_secs().to_string()));
        self
    }

    fn with_bare(mut self, name: &str) -> Self {
        self.set(name, None);
        self
    }

    /// Adds the header name `field` to the field-list directive `name`, unless `field` is not a
    /// token (a header name cannot be anything else).
    fn with_field(mut self, name: &str, field: &str) -> Self {
        let field = field.trim_matches(is_ows);
        if is_token(field) {
            self.add_fields(name, Some(vec![field]));
        }
        self
    }

    /// Sets `max-age` to `duration` in whole seconds (sub-seconds are dropped).
    pub fn with_max_age(self, duration: Duration) -> Self {
        self.with_delta("max-age", duration)
    }

    /// Sets `s-maxage` to `duration` in whole seconds.
    pub fn with_s_maxage(self, duration: Duration) -> Self {
        self.with_delta("s-maxage", duration)
    }

    /// Sets `stale-while-revalidate` to `duration` in whole seconds.
    pub fn with_stale_while_revalidate(self, duration: Duration) -> Self {
        self.with_delta("stale-while-revalidate", duration)
    }

    /// Sets `stale-if-error` to `duration` in whole seconds.
    pub fn with_stale_if_error(self, duration: Duration) -> Self {
        self.with_delta("stale-if-error", duration)
    }

    /// Adds `public`. It does not remove `private`: as in Django, asking for both in one set of
    /// directives keeps both; [`patch_cache_control`](super::patch_cache_control) makes them exclude each other across
    /// patches.
    pub fn with_public(self) -> Self {
        self.with_bare("public")
    }

    /// Sets bare `private` (the whole response), replacing any field names.
    pub fn with_private(self) -> Self {
        self.with_bare("private")
    }

    /// Adds a field name to `private="…"`. No effect when `private` is already bare, or when
    /// `name` is not a token (a header name cannot be anything else).
    pub fn with_private_field(self, name: &str) -> Self {
        self.with_field("private", name)
    }

    /// Sets bare `no-cache` (the whole response), replacing any field names.
    pub fn with_no_cache(self) -> Self {
        self.with_bare("no-cache")
    }

    /// Adds a field name to `no-cache="…"`. No effect when `no-cache` is already bare, or when
    /// `name` is not a token.
    pub fn with_no_cache_field(self, name: &str) -> Self {
        self.with_field("no-cache", name)
    }

    /// Adds `no-store`.
    pub fn with_no_store(self) -> Self {
        self.with_bare("no-store")
    }

    /// Adds `must-revalidate`.
    pub fn with_must_revalidate(self) -> Self {
        self.with_bare("must-revalidate")
    }

    /// Adds `proxy-revalidate`.
    pub fn with_proxy_revalidate(self) -> Self {
        self.with_bare("proxy-revalidate")
    }

    /// Adds `no-transform`.
    pub fn with_no_transform(self) -> Self {
        self.with_bare("no-transform")
    }

    /// Adds `must-understand`.
    pub fn with_must_understand(self) -> Self {
        self.with_bare("must-understand")
    }

    /// Adds `immutable`.
    pub fn with_immutable(self) -> Self {
        self.with_bare("immutable")
    }

    /// Sets any directive: bare with `None`, else with the argument (quoted on output when it
    /// is not a token). The name is lower-cased.
    ///
    /// A name that is not a token (letters, digits and ``!#$%&'*+-.^_`|~``) cannot be written
    /// into a header, so the call
    /// then has no effect; ASCII control characters other than tab are dropped from the argument.
    ///
    /// ```
    /// # use axum_cache::headers::CacheControl;
    /// let cc = CacheControl::new()
    ///     .with_extension("Community", Some("UCI"))
    ///     .with_extension("note", Some("a, b"))
    ///     .with_extension("bad name", None);
    /// assert_eq!(cc.to_string(), "community=UCI, note=\"a, b\"");
    /// ```
    pub fn with_extension(mut self, name: &str, value: Option<&str>) -> Self {
        if is_token(name) {
            self.set(
                &name.to_ascii_lowercase(),
                value.map(|value| without_controls(value.to_owned())),
            );
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn builders_replace_in_place() {
        let cc = CacheControl::parse("max-age=1, public, max-age=2")
            .with_max_age(secs(9))
            .with_extension("PUBLIC", Some("x"));
        assert_eq!(cc.to_string(), "max-age=9, public=x");
        let cc = CacheControl::new()
            .with_private_field("A")
            .with_private_field("a")
            .with_private()
            .with_private_field("B");
        assert_eq!(cc.to_string(), "private");
    }

    #[test]
    fn builders_ignore_what_cannot_be_written() {
        let cc = CacheControl::new()
            .with_extension("", None)
            .with_extension("a\nb", None)
            .with_private_field("a b")
            .with_no_cache_field("");
        assert!(cc.is_empty());
        let cc = CacheControl::new().with_extension("x", Some("a\r\nb\u{7f}\tc"));
        assert_eq!(cc.get("x"), Some(Some("ab\tc")));
        assert_eq!(cc.to_header_value(), "x=\"ab\tc\"");
    }

    #[test]
    fn sub_seconds_are_dropped() {
        let cc = CacheControl::new().with_max_age(Duration::from_millis(1999));
        assert_eq!(cc.to_string(), "max-age=1");
    }
}
