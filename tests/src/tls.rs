//! Real TLS for the gateway tests (`rustls`): an HTTPS server that reports the server name
//! and client certificate it saw, and a client that opens mutual TLS to the gateway itself.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
};

use crate::client::Response;
use crate::pki::{Ca, Leaf};
use crate::upstream::{answer, Accepting};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &Ca) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    Arc::new(roots)
}

/// What an HTTPS upstream saw on one connection.
#[derive(Debug, Clone)]
pub struct TlsSeen {
    /// The TLS server name the client sent.
    pub sni: Option<String>,
    /// The client certificate, if the client presented one (verified against `client_ca`).
    pub client_cert: Option<CertificateDer<'static>>,
    pub host: String,
    /// Request headers, names in lowercase.
    pub headers: Vec<(String, String)>,
}

/// An HTTPS/1.1 server with `cert`, answering `200 upstream <name>`. Client certificates are
/// optional; one that is presented must chain to `client_ca`.
pub struct HttpsUpstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<TlsSeen>>>,
    _accepting: Accepting,
}

impl HttpsUpstream {
    pub fn start(name: &str, addr: SocketAddr, cert: &Leaf, client_ca: &Ca) -> Self {
        let verifier = WebPkiClientVerifier::builder_with_provider(roots(client_ca), provider())
            .allow_unauthenticated()
            .build()
            .unwrap();
        let config = Arc::new(
            ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(vec![cert.der.clone()], cert.key())
                .unwrap(),
        );
        let listener = TcpListener::bind(addr)
            .unwrap_or_else(|e| panic!("https upstream {name} on {addr}: {e}"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, body) = (seen.clone(), format!("upstream {name}"));
        let accepting = Accepting::spawn(listener, move |tcp| {
            let (config, log, body) = (config.clone(), log.clone(), body.clone());
            std::thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(conn) = ServerConnection::new(config) else {
                    return;
                };
                let mut tls = StreamOwned::new(conn, tcp);
                // A failed handshake (the client refused our certificate) ends here.
                while tls.conn.is_handshaking() {
                    if tls.conn.complete_io(&mut tls.sock).is_err() {
                        return;
                    }
                }
                let sni = tls.conn.server_name().map(str::to_owned);
                let client_cert = tls
                    .conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .cloned();
                answer(&mut tls, &body, |request| {
                    log.lock().unwrap().push(TlsSeen {
                        sni,
                        client_cert,
                        host: request.host,
                        headers: request.headers,
                    });
                });
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        });
        Self {
            addr,
            seen,
            _accepting: accepting,
        }
    }

    pub fn seen(&self) -> Vec<TlsSeen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Why a TLS client got no response.
#[derive(Debug)]
pub struct Refused(pub String);

/// Sends `GET /` with `host` over TLS to `addr`, with `sni` as server name, presenting
/// `client` (if any) and trusting `server_ca`. A handshake the server refuses is `Err`.
pub fn https_get(
    addr: SocketAddr,
    sni: &str,
    host: &str,
    client: Option<&Leaf>,
    server_ca: &Ca,
) -> Result<Response, Refused> {
    https_get_with(addr, sni, host, &[], client, server_ca)
}

/// [`https_get`] with extra request headers.
pub fn https_get_with(
    addr: SocketAddr,
    sni: &str,
    host: &str,
    headers: &[(&str, &str)],
    client: Option<&Leaf>,
    server_ca: &Ca,
) -> Result<Response, Refused> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(server_ca));
    let config = match client {
        Some(leaf) => builder
            .with_client_auth_cert(vec![leaf.der.clone()], leaf.key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    // The gateway's certificate names its SPIFFE ID, not `sni`: verify the chain only.
    let mut config = config;
    config
        .dangerous()
        .set_certificate_verifier(Arc::new(ChainOnly::new(server_ca)));
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let conn = ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    let mut request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tls.write_all(request.as_bytes())
        .map_err(|e| Refused(e.to_string()))?;
    let mut raw = Vec::new();
    // A peer that closes without close_notify after a full response is still a response.
    let read = tls.read_to_end(&mut raw);
    match (raw.is_empty(), read) {
        (false, _) => Ok(crate::client::parse(&String::from_utf8_lossy(&raw))),
        (true, Ok(_)) => Err(Refused("connection closed without a response".into())),
        (true, Err(e)) => Err(Refused(e.to_string())),
    }
}

/// Verifies the server's chain against a CA, ignoring the name it is for.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl ChainOnly {
    fn new(ca: &Ca) -> Self {
        Self {
            inner: rustls::client::WebPkiServerVerifier::builder_with_provider(
                roots(ca),
                provider(),
            )
            .build()
            .unwrap(),
        }
    }
}

impl rustls::client::danger::ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
