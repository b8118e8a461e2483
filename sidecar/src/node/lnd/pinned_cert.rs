//! TLS to lnd by certificate pinning. lnd's self-signed `tls.cert` has `CA:true`, which webpki
//! refuses as a server leaf (`CaUsedAsEndEntity`), so the presented end-entity certificate is
//! compared byte for byte with the one in `tls.cert` instead, and the handshake signatures are
//! still verified with it. It must never accept a certificate that is not in the file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("reading lnd's TLS certificate {path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error("lnd's TLS certificate file {path} holds no PEM certificate")]
    Empty { path: PathBuf },
    #[error("building the TLS client: {0}")]
    Tls(#[from] rustls::Error),
}

/// Accepts exactly the certificates in `tls.cert`, re-reading the file when the server presents
/// another one: lnd regenerates its cert (on expiry, or when `tlsextraip` changes).
#[derive(Debug)]
pub struct PinnedCertVerifier {
    path: PathBuf,
    pinned: RwLock<Vec<CertificateDer<'static>>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedCertVerifier {
    pub fn load(path: &Path, provider: &CryptoProvider) -> Result<Self, PinError> {
        Ok(Self {
            path: path.to_path_buf(),
            pinned: RwLock::new(read_certs(path)?),
            algorithms: provider.signature_verification_algorithms,
        })
    }

    fn is_pinned(&self, presented: &CertificateDer<'_>) -> bool {
        let pinned = self.pinned.read().unwrap_or_else(|e| e.into_inner());
        // Public data: no need for a constant-time comparison. Validity dates are deliberately
        // not checked: the pin is the trust decision, as with lnd's own clients (lncli).
        pinned
            .iter()
            .any(|cert| cert.as_ref() == presented.as_ref())
    }

    fn reload(&self) {
        match read_certs(&self.path) {
            Ok(certs) => *self.pinned.write().unwrap_or_else(|e| e.into_inner()) = certs,
            Err(e) => {
                tracing::warn!(error = %e, "lnd: re-reading the pinned TLS certificate failed")
            }
        }
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PinError> {
    let read_err = |detail: String| PinError::Read {
        path: path.to_path_buf(),
        detail,
    };
    let pem = std::fs::read(path).map_err(|e| read_err(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_err(format!("{e:?}")))?;
    if certs.is_empty() {
        return Err(PinError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.is_pinned(end_entity) {
            return Ok(ServerCertVerified::assertion());
        }
        self.reload();
        if self.is_pinned(end_entity) {
            tracing::info!(path = %self.path.display(), "lnd: TLS certificate changed; reloaded the pin");
            return Ok(ServerCertVerified::assertion());
        }
        Err(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A rustls client config that trusts only the certificates in `tls.cert` (ring provider, the
/// one reqwest's `rustls-tls` feature uses).
pub fn client_config(cert_path: &Path) -> Result<rustls::ClientConfig, PinError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedCertVerifier::load(cert_path, &provider)?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}
