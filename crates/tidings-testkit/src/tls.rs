//! A throwaway certificate authority and a server certificate it signed, for
//! engines started with TLS.

use std::fs;
use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tempfile::TempDir;

/// PEM files in a temporary directory, removed on drop: `ca.pem`, the CA that
/// clients must trust, and `server.pem` with `server.key`, a certificate for
/// `127.0.0.1` and `localhost` signed by it.
pub struct Certificates {
    dir: TempDir,
}

impl Certificates {
    /// Generates a new CA and a server certificate signed by it.
    pub fn generate() -> Certificates {
        let dir = tempfile::Builder::new()
            .prefix("tidings-tls-")
            .tempdir()
            .expect("create a temp dir");
        let ca_key = KeyPair::generate().expect("generate the CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "tidings test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("sign the CA certificate");

        let server_key = KeyPair::generate().expect("generate the server key");
        let mut server = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("server parameters");
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let issuer = Issuer::from_params(&ca, &ca_key);
        let server_cert = server
            .signed_by(&server_key, &issuer)
            .expect("sign the server certificate");

        let write = |name: &str, pem: String| {
            fs::write(dir.path().join(name), pem).unwrap_or_else(|e| panic!("write {name}: {e}"));
        };
        write("ca.pem", ca_cert.pem());
        write("server.pem", server_cert.pem());
        write("server.key", server_key.serialize_pem());
        Certificates { dir }
    }

    /// The CA certificate, which clients must trust.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's certificate, for 127.0.0.1 and localhost.
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server certificate's private key.
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}
