//! The scheme in page keys: set on the layer, or named by a trusted proxy's header, never read
//! from the request's URI.

use http::{HeaderMap, HeaderName};

/// Where the scheme in a page's key comes from.
///
/// Not from the request's own URI: HTTP/1.1 requests arrive without a scheme while HTTP/2
/// requests carry one, so the same page fetched over both would be keyed twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyScheme {
    /// Every request is keyed with this scheme (by default `http`).
    Fixed(String),
    /// A header set by a trusted proxy names the scheme (`X-Forwarded-Proto: https`); requests
    /// without a usable value are keyed as `http`.
    Header(HeaderName),
}

impl Default for KeyScheme {
    fn default() -> KeyScheme {
        KeyScheme::Fixed("http".to_owned())
    }
}

impl KeyScheme {
    /// The scheme a request is keyed with.
    pub(super) fn of_request<'a>(&'a self, headers: &HeaderMap) -> &'a str {
        match self {
            KeyScheme::Fixed(scheme) => scheme,
            KeyScheme::Header(name) => {
                let mut lines = headers.get_all(name).iter();
                match (lines.next(), lines.next()) {
                    (Some(line), None) => forwarded_scheme(line.as_bytes()),
                    _ => "http",
                }
            }
        }
    }

    /// The scheme the page at an absolute URL is keyed with: the configured one, or with a
    /// trusted header, the URL's own.
    pub(super) fn of_url<'a>(&'a self, uri: &'a http::Uri) -> &'a str {
        match self {
            KeyScheme::Fixed(scheme) => scheme,
            KeyScheme::Header(_) => forwarded_scheme(uri.scheme_str().unwrap_or("http").as_bytes()),
        }
    }
}

/// `https` or `http` from a forwarded-protocol value (the first of a list, as proxies append
/// theirs); anything else is `http`.
fn forwarded_scheme(value: &[u8]) -> &'static str {
    let first = value.split(|byte| *byte == b',').next().unwrap_or_default();
    if first.trim_ascii().eq_ignore_ascii_case(b"https") {
        "https"
    } else {
        "http"
    }
}

#[cfg(test)]
mod tests {
    use super::super::key::Url;
    use super::*;

    #[test]
    fn the_scheme_comes_from_the_setting_never_from_the_request_uri() {
        let scheme_of = |uri: &str, headers: &[(&str, &str)], scheme: &KeyScheme| {
            let mut builder = http::Request::builder().uri(uri);
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            let parts = builder.body(()).unwrap().into_parts().0;
            let url = Url::of_request(&parts, &[], scheme).unwrap();
            url.scheme.to_owned()
        };
        let default = KeyScheme::default();
        // HTTP/2 carries a scheme, HTTP/1.1 does not: both key alike.
        assert_eq!(scheme_of("https://h/p", &[], &default), "http");
        assert_eq!(scheme_of("/p", &[("host", "h")], &default), "http");
        let https = KeyScheme::Fixed("https".to_owned());
        assert_eq!(scheme_of("http://h/p", &[], &https), "https");
        let header = KeyScheme::Header(HeaderName::from_static("x-forwarded-proto"));
        let forwarded = |value: &str| {
            scheme_of(
                "/p",
                &[("host", "h"), ("x-forwarded-proto", value)],
                &header,
            )
        };
        assert_eq!(forwarded("https"), "https");
        assert_eq!(forwarded(" HTTPS , http"), "https");
        assert_eq!(forwarded("http"), "http");
        assert_eq!(forwarded("gopher"), "http");
        assert_eq!(scheme_of("https://h/p", &[], &header), "http");
        // An absolute URL to delete is keyed as its requests: by the setting, or by its scheme
        // when a header names the scheme.
        let uri: http::Uri = "https://h/p".parse().unwrap();
        assert_eq!(Url::parse(&uri, &[], &default).unwrap().scheme, "http");
        assert_eq!(Url::parse(&uri, &[], &header).unwrap().scheme, "https");
    }
}
