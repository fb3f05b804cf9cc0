//! TLS for `mqtts://`: the rustls, ring and root certificates the HTTP output already links,
//! so MQTT over TLS adds no crypto of its own. A private CA (`ca_file`) replaces the system
//! roots; a client certificate and key (`client_cert`, `client_key`) give mutual TLS, which AWS
//! IoT Core and most managed brokers require.

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where Debian and Raspberry Pi OS keep the system's CA bundle.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The board file's TLS choices for the broker.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsFiles {
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// Why a TLS configuration could not be built from the files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM {what} in it")]
    Empty { path: PathBuf, what: &'static str },
    #[error("{path}: {source}")]
    Pem { path: PathBuf, source: pem::Error },
    #[error("client_cert and client_key go together; only one is set")]
    HalfPair,
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("broker host {0:?} is not a valid TLS server name")]
    ServerName(String),
}

/// A client configuration, built once and shared by every connection.
pub fn client_config(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match &files.ca_file {
        Some(path) => add_certs(&mut roots, path)?,
        None if Path::new(SYSTEM_CA_BUNDLE).exists() => {
            add_certs(&mut roots, Path::new(SYSTEM_CA_BUNDLE))?
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match (&files.client_cert, &files.client_key) {
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(certs(cert)?, private_key(key)?)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(TlsError::HalfPair),
    };
    Ok(Arc::new(config))
}

/// The name the broker's certificate must carry.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_string()).map_err(|_| TlsError::ServerName(host.to_string()))
}

fn add_certs(roots: &mut rustls::RootCertStore, path: &Path) -> Result<(), TlsError> {
    // Bundles may hold certificates rustls cannot use; the ones it can are enough.
    let _ = roots.add_parsable_certificates(certs(path)?);
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: path.to_path_buf(),
            what: "certificates",
        });
    }
    Ok(certs)
}

/// The first private key in the file: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::Empty {
            path: path.to_path_buf(),
            what: "private key",
        },
        source => TlsError::Pem {
            path: path.to_path_buf(),
            source,
        },
    })
}
