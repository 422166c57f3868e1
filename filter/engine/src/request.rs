//! What the filter knows about one request or connection.

use std::net::IpAddr;

use warden_bundle::Locality;

/// The protocol the filter sees the traffic in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestProtocol {
    /// An HTTP request: the host is the `:authority`.
    #[default]
    Http,
    /// A TCP connection: only addresses and ports are known.
    Tcp,
    /// A TLS connection seen before termination: the host is the SNI.
    Tls,
}

impl RequestProtocol {
    /// The port a request of this protocol goes to when nothing names one.
    pub fn default_port(self) -> Option<u16> {
        match self {
            Self::Http => Some(80),
            Self::Tls => Some(443),
            Self::Tcp => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }
}

/// One request or connection, as the filter (or `explain`) describes it to the engine.
/// Borrowed fields: building a request never allocates.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    pub protocol: RequestProtocol,
    /// The HTTP authority or `Host`, possibly with a port; for TLS, use `sni`.
    pub host: Option<&'a str>,
    /// The TLS server name the client sent.
    pub sni: Option<&'a str>,
    /// The address the client connected to.
    pub destination: Option<IpAddr>,
    /// The port the client connected to. When absent, the host's port, then the protocol's
    /// default.
    pub port: Option<u16>,
    /// The client's SPIFFE ID.
    pub client: Option<&'a str>,
    /// The client's own address.
    pub source: Option<IpAddr>,
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
    /// The proxy's locality, for endpoint choice.
    pub locality: Option<&'a Locality>,
    /// HTTP under Istio: the cluster Istio's route chose (`outbound|PORT|SUBSET|HOST`,
    /// `PassthroughCluster`), which says where the request will really go.
    pub cluster: Option<&'a str>,
}
