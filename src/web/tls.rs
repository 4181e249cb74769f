//! Direct TLS for the console (`[web] tls_cert`, `tls_key`): the rustls and axum-server
//! adapter. The certificate chain and key are PEM files read once at start (a bad file stops
//! the start with what is wrong), served with rustls' safe defaults (TLS 1.2 and 1.3, ring's
//! algorithms), HTTP/2 or HTTP/1.1 by ALPN.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the console's certificate cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("web.tls_cert {path}: {reason}")]
    Cert { path: String, reason: String },
    #[error("web.tls_key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("web.tls_cert and web.tls_key do not make a server certificate: {0}")]
    Pair(rustls::Error),
}

/// The console's certificate and key, ready to serve.
#[derive(Clone)]
pub struct Served(Arc<rustls::ServerConfig>);

/// The server's TLS configuration from a PEM certificate chain (leaf first) and its key
/// (PKCS#8, PKCS#1 or SEC1).
pub fn server_config(cert: &Path, key: &Path) -> Result<Served, TlsError> {
    let cert_error = |reason: String| TlsError::Cert {
        path: cert.display().to_string(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("holds no PEM certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(TlsError::Pair)?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(TlsError::Pair)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Served(Arc::new(config)))
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves, then lets the open
/// requests finish (up to 5 s).
pub async fn serve(
    listener: tokio::net::TcpListener,
    served: Served,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(served.0);
    axum_server::from_tcp_rustls(listener.into_std()?, tls)?
        .handle(handle)
        .serve(router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
}
