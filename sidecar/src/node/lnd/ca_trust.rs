//! TLS to lnd by certificate authority, the alternative to pinning for a hosted lnd (Voltage and
//! the like) whose CA-signed certificate is renewed: the chain is verified by webpki against the
//! system's CA store or a given CA bundle, and the certificate must name the host of the REST
//! URL, so a renewal by the same CA keeps working with nothing copied. It never accepts lnd's
//! own self-signed `tls.cert` as a server certificate (CA-flagged: pin that one instead).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Which certificate authorities to trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaRoots {
    /// The system's CA bundle (`SSL_CERT_FILE`, else the distribution's usual file).
    System,
    /// A PEM file with one or more CA certificates.
    File(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum CaTrustError {
    #[error("reading the CA bundle {path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error("the CA bundle {path} holds no usable CA certificate")]
    Empty { path: PathBuf },
    #[error(
        "no system CA bundle found (set SSL_CERT_FILE, install ca-certificates, or give \
         node.lnd.tls_ca a CA file)"
    )]
    NoSystemBundle,
    #[error("building the TLS client: {0}")]
    Tls(#[from] rustls::Error),
}

/// The bundle files distributions keep their CA store in, as OpenSSL's probe looks for them:
/// Debian, Ubuntu and distroless (the sidecar's image), Fedora/RHEL, Alpine, openSUSE.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// The system bundle: `SSL_CERT_FILE` when set (OpenSSL's convention), else the first of
/// [`SYSTEM_BUNDLES`] that exists.
pub fn system_bundle(
    ssl_cert_file: Option<PathBuf>,
    exists: impl Fn(&Path) -> bool,
) -> Option<PathBuf> {
    ssl_cert_file
        .filter(|p| !p.as_os_str().is_empty())
        .or_else(|| SYSTEM_BUNDLES.iter().map(PathBuf::from).find(|p| exists(p)))
}

impl CaRoots {
    /// The bundle file this trust reads.
    pub fn bundle_path(&self) -> Result<PathBuf, CaTrustError> {
        match self {
            CaRoots::File(path) => Ok(path.clone()),
            CaRoots::System => system_bundle(
                std::env::var_os("SSL_CERT_FILE").map(PathBuf::from),
                Path::exists,
            )
            .ok_or(CaTrustError::NoSystemBundle),
        }
    }

    fn load(&self) -> Result<RootCertStore, CaTrustError> {
        let path = self.bundle_path()?;
        let pem = std::fs::read(&path).map_err(|e| CaTrustError::Read {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CaTrustError::Read {
                path: path.clone(),
                detail: format!("{e:?}"),
            })?;
        let mut roots = RootCertStore::empty();
        // A system bundle can hold certificates webpki cannot parse; skip those, as browsers do.
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(CaTrustError::Empty { path });
        }
        Ok(roots)
    }
}

/// A rustls client config that verifies lnd's chain and name against `roots` (ring provider,
/// the one reqwest's `rustls-tls` feature uses).
pub fn client_config(roots: &CaRoots) -> Result<rustls::ClientConfig, CaTrustError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots.load()?)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_cert_file_wins_then_the_first_bundle_that_exists() {
        let env = Some(PathBuf::from("/custom/ca.pem"));
        assert_eq!(system_bundle(env, |_| true), Some("/custom/ca.pem".into()));
        let rhel = |p: &Path| p == Path::new("/etc/pki/tls/certs/ca-bundle.crt");
        assert_eq!(
            system_bundle(None, rhel),
            Some("/etc/pki/tls/certs/ca-bundle.crt".into())
        );
        assert_eq!(system_bundle(Some(PathBuf::new()), |_| false), None);
    }
}
