//! TLS for `rediss://` URLs (the `redis-tls` feature): rustls with the `ring` provider.
//!
//! The client configuration is built here rather than by `fred`'s URL parsing, for two
//! reasons: the certificate authorities and the client identity come from the builder, and
//! naming the provider explicitly keeps the connection working when another crate in the
//! application enables a second rustls provider (rustls then has no single default, and
//! `fred`'s own default configuration would panic).

use std::sync::Arc;

use fred::rustls::crypto::ring;
use fred::rustls::pki_types::pem::PemObject;
use fred::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use fred::rustls::{ClientConfig, RootCertStore};
use fred::types::config::TlsConnector;

use crate::Error;

/// The TLS settings of a [`RedisStoreBuilder`](super::RedisStoreBuilder), as PEM text.
#[derive(Default, Clone)]
pub(super) struct TlsSettings {
    /// Certificate authorities to trust instead of the system's.
    pub(super) roots: Option<Vec<u8>>,
    /// A client certificate chain and its private key, for servers that verify clients.
    pub(super) identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl TlsSettings {
    pub(super) fn is_set(&self) -> bool {
        self.roots.is_some() || self.identity.is_some()
    }

    /// The connector for these settings: the server's certificate is always verified, against
    /// the given authorities or else the system's.
    pub(super) fn connector(&self) -> Result<TlsConnector, Error> {
        let roots = match &self.roots {
            Some(pem) => {
                let mut roots = RootCertStore::empty();
                for certificate in certificates(pem, "tls_root_certificates_pem")? {
                    roots.add(certificate).map_err(|error| {
                        tls_error(format!("a root certificate is not usable: {error}"))
                    })?;
                }
                roots
            }
            None => system_roots()?,
        };
        let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|error| tls_error(error.to_string()))?
            .with_root_certificates(roots);
        let config = match &self.identity {
            Some((chain, key)) => {
                let chain = certificates(chain, "tls_client_identity_pem")?;
                let key = PrivateKeyDer::from_pem_slice(key).map_err(|error| {
                    tls_error(format!(
                        "no usable private key in the client key PEM: {error}"
                    ))
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|error| tls_error(format!("the client identity: {error}")))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(TlsConnector::from(config))
    }
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key: only whether each part is there.
        f.debug_struct("TlsSettings")
            .field("custom_roots", &self.roots.is_some())
            .field("client_identity", &self.identity.is_some())
            .finish()
    }
}

/// Every certificate in `pem`; at least one, and none malformed.
fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| tls_error(format!("{what}: malformed PEM: {error}")))?;
    if certificates.is_empty() {
        return Err(tls_error(format!(
            "{what}: no CERTIFICATE block in the PEM text"
        )));
    }
    Ok(certificates)
}

/// The operating system's trusted authorities; certificates it cannot parse are skipped, as
/// browsers do.
fn system_roots() -> Result<RootCertStore, Error> {
    let found = fred::rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (_added, _skipped) = roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(tls_error(
            "no trusted root certificates found on this system: install them (Debian: \
             ca-certificates) or give the server's authority with tls_root_certificates_pem"
                .to_owned(),
        ));
    }
    Ok(roots)
}

fn tls_error(message: String) -> Error {
    Error::Config(format!("Redis TLS: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_certificates_is_a_clear_error() {
        let settings = TlsSettings {
            roots: Some(b"not a certificate".to_vec()),
            identity: None,
        };
        let error = settings.connector().unwrap_err().to_string();
        assert!(error.contains("no CERTIFICATE block"), "{error}");

        let settings = TlsSettings {
            roots: Some(b"-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n".to_vec()),
            identity: None,
        };
        let error = settings.connector().unwrap_err().to_string();
        assert!(error.contains("Redis TLS"), "{error}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let settings = TlsSettings {
            roots: None,
            identity: Some((b"chain".to_vec(), b"SECRET KEY".to_vec())),
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("client_identity: true"), "{shown}");
    }
}
