//! SSE subscriptions multiplexed over HTTP/3 connections, using `quinn` and
//! `h3` (the crates the hub serves HTTP/3 with).
//!
//! The hub under test serves a certificate of its own making on loopback;
//! this tool measures and does not authenticate, so it accepts whatever
//! certificate the server presents.

use crate::sse::{Event, Parser};
use anyhow::{bail, Context};
use bytes::{Buf, Bytes};
use h3::client::SendRequest;
use quinn::crypto::rustls::QuicClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// Windows large enough that a hundred busy streams per connection do not
/// wait on flow-control updates, as for HTTP/2.
const STREAM_WINDOW: u32 = 256 * 1024;

pub type Send = SendRequest<h3_quinn::OpenStreams, Bytes>;

/// One client UDP socket for every connection of a fleet.
pub fn endpoint() -> anyhow::Result<quinn::Endpoint> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
    let mut transport = quinn::TransportConfig::default();
    transport
        .stream_receive_window(STREAM_WINDOW.into())
        .max_concurrent_bidi_streams(0u32.into());
    config.transport_config(Arc::new(transport));
    let mut endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    endpoint.set_default_client_config(config);
    Ok(endpoint)
}

/// Connects to `server`. The returned future drives the connection and
/// must be spawned.
pub async fn connect(
    endpoint: &quinn::Endpoint,
    server: SocketAddr,
) -> anyhow::Result<(Send, impl Future<Output = ()>)> {
    let quic = endpoint
        .connect(server, "localhost")?
        .await
        .context("QUIC handshake")?;
    let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(quic))
        .await
        .context("HTTP/3 settings")?;
    Ok((send, async move {
        let _ = driver.wait_idle().await;
    }))
}

/// Opens one subscription stream on `send` and reads it until the server
/// ends it. `ready` is called once the server has answered 200.
pub async fn subscribe(
    mut send: Send,
    url: &str,
    extra_headers: &[(&str, &str)],
    ready: impl FnOnce(),
    mut on_event: impl FnMut(Event<'_>),
) -> anyhow::Result<()> {
    let mut builder = http::Request::get(url)
        .header("accept", "text/event-stream")
        .header("cache-control", "no-cache");
    for (name, value) in extra_headers {
        builder = builder.header(*name, *value);
    }
    let mut stream = send.send_request(builder.body(())?).await?;
    stream.finish().await?;
    let response = stream.recv_response().await?;
    if response.status() != http::StatusCode::OK {
        bail!("subscription answered {}", response.status());
    }
    ready();

    let mut parser = Parser::default();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(mut data) = stream.recv_data().await? {
        let data = data.copy_to_bytes(data.remaining());
        if pending.is_empty() {
            let used = parser.feed(&data, &mut on_event);
            pending.extend_from_slice(&data[used..]);
        } else {
            pending.extend_from_slice(&data);
            let used = parser.feed(&pending, &mut on_event);
            pending.drain(..used);
        }
    }
    Ok(())
}

/// Accepts any certificate, checking only that the handshake is signed
/// with the key it carries.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
