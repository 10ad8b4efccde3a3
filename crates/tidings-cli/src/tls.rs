//! TLS for `tidings serve`: a certificate from files, or a self-signed one
//! for localhost so a browser gets HTTP/2 in development.

use crate::serve::ServeArgs;
use anyhow::Context;
use base64::Engine;
use rcgen::PublicKeyData;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// The TLS a hub serves: the acceptor for TCP, and its configuration, which
/// HTTP/3 shares with its own ALPN.
pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub config: Arc<ServerConfig>,
    pub self_signed: bool,
    /// For a generated certificate: base64 of the SHA-256 of its public key
    /// (SubjectPublicKeyInfo), which Chromium's
    /// `--ignore-certificate-errors-spki-list` takes.
    pub spki: Option<String>,
}

/// The TLS of `args`, if any.
pub fn acceptor(args: &ServeArgs) -> anyhow::Result<Option<Tls>> {
    let (chain, key, spki) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .with_context(|| format!("cannot read certificates from {}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("cannot read a private key from {}", key.display()))?;
            (chain, key, None)
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
            let spki = Sha256::digest(generated.signing_key.subject_public_key_info());
            let spki = base64::engine::general_purpose::STANDARD.encode(spki);
            (vec![generated.cert.der().clone()], key, Some(spki))
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
    let config = Arc::new(config);
    Ok(Some(Tls {
        acceptor: TlsAcceptor::from(config.clone()),
        config,
        self_signed: spki.is_some(),
        spki,
    }))
}
