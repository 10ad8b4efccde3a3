//! TLS for `tidings serve`: a certificate from files, or a self-signed one
//! for localhost so a browser gets HTTP/2 in development.

use crate::serve::ServeArgs;
use anyhow::Context;
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// The acceptor, and whether its certificate is self-signed.
pub fn acceptor(args: &ServeArgs) -> anyhow::Result<Option<(TlsAcceptor, bool)>> {
    let (chain, key, self_signed) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .with_context(|| format!("cannot read certificates from {}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("cannot read a private key from {}", key.display()))?;
            (chain, key, false)
        }
        _ if args.tls_self_signed.unwrap_or(false) => {
            let names = vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
            ];
            let generated = rcgen::generate_simple_self_signed(names)
                .context("cannot generate a certificate")?;
            let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
                .map_err(|e| anyhow::anyhow!("generated key unusable: {e}"))?;
            eprintln!("tidings: serving a self-signed certificate for localhost; browsers will ask you to accept it");
            (vec![generated.cert.der().clone()], key, true)
        }
        _ => return Ok(None),
    };
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some((TlsAcceptor::from(Arc::new(config)), self_signed)))
}
