//! RTMPS certificates: a TLS acceptor (rustls with the `ring` provider) from PEM files, with
//! errors that name the file and what is wrong with it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("reading the certificate chain {path}: {reason}")]
    Certificates { path: PathBuf, reason: String },
    #[error("{0}: no certificate in the file (expected PEM \"BEGIN CERTIFICATE\" blocks)")]
    NoCertificate(PathBuf),
    #[error("reading the private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the certificate and the key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A TLS acceptor serving the certificate chain in `cert` (PEM, leaf first) with the private key
/// in `key` (PEM: PKCS#8, PKCS#1 or SEC1).
pub fn acceptor_from_pem_files(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsConfigError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsConfigError::Certificates { path: cert.into(), reason: e.to_string() })?;
    if chain.is_empty() {
        return Err(TlsConfigError::NoCertificate(cert.into()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsConfigError::Key { path: key.into(), reason: e.to_string() })?;
    let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_malformed_files_are_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("rill-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let err = acceptor_from_pem_files(&missing, &missing).err().unwrap().to_string();
        assert!(err.contains("missing.pem"), "{err}");
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let err = acceptor_from_pem_files(&garbage, &garbage).err().unwrap().to_string();
        assert!(err.contains("no certificate"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
