//! What a proxy knows about one request or connection, and the one way it becomes an engine
//! [`Request`]: the filter's HTTP and TCP paths and `bundle-builder explain` all build requests
//! here, so they cannot drift apart.

use std::net::IpAddr;

use warden_bundle::{Locality, Role};

use crate::request::{Request, RequestProtocol};
use crate::route::{parse_gateway_server_name, Listener};

/// The facts a proxy gathers, before any is interpreted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    pub role: Role,
    /// HTTP (`Listener::Http`) or a connection (any other listener).
    pub listener: Option<Listener>,
    /// HTTP: the `:authority`, else `Host`.
    pub authority: Option<&'a str>,
    /// The TLS server name the client sent (empty counts as none).
    pub server_name: Option<&'a str>,
    /// The address the client connected to, where that says where it is going (traffic
    /// capture, a local TCP listener); `None` for an explicit local HTTP proxy.
    pub destination: Option<IpAddr>,
    /// The port the client connected to, with the same proviso.
    pub port: Option<u16>,
    /// The caller's identity from its certificate (the egress gateway's callers).
    pub peer: Option<&'a str>,
    /// The workload's own identity (a sidecar).
    pub identity: Option<&'a str>,
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
    pub locality: Option<&'a Locality>,
    /// HTTP under Istio: the cluster Istio's route chose.
    pub cluster: Option<&'a str>,
}

impl<'a> Facts<'a> {
    /// The listener the facts were gathered on (HTTP unless told otherwise).
    pub fn listener(&self) -> Listener {
        self.listener.unwrap_or(Listener::Http)
    }

    /// The engine request these facts describe.
    ///
    /// - The client is the certificate's identity at the gateway, the workload's elsewhere.
    /// - HTTP: the host is the authority. The server name counts only at the gateway (where
    ///   it must agree with the authority); a sidecar's clients speak plain HTTP to it.
    /// - A connection: a server name makes it TLS. At the gateway the destination is in the
    ///   server name (`outbound_.PORT_._.HOST`, or a plain name on the TLS port); the listener's
    ///   own address is no destination.
    pub fn request(&self) -> Request<'a> {
        let gateway = self.role == Role::Gateway;
        let server_name = self.server_name.filter(|s| !s.is_empty());
        let mut request = Request {
            client: if gateway { self.peer } else { self.identity },
            method: self.method,
            path: self.path,
            locality: self.locality,
            ..Request::default()
        };
        if self.listener() == Listener::Http {
            request.protocol = RequestProtocol::Http;
            request.host = self.authority;
            request.sni = server_name.filter(|_| gateway);
            request.destination = self.destination;
            request.port = self.port;
            request.cluster = self.cluster;
            return request;
        }
        request.protocol = if server_name.is_some() {
            RequestProtocol::Tls
        } else {
            RequestProtocol::Tcp
        };
        // Only the gateway's passthrough listener takes the destination from the server name;
        // any other TCP listener, on any proxy, goes where the client dialled.
        let passthrough = gateway && self.listener() == Listener::GatewayPassthrough;
        match (server_name, passthrough) {
            (Some(name), true) => {
                let (host, port) = parse_gateway_server_name(name);
                request.sni = Some(host);
                request.port = port.or(self.port);
            }
            (_, true) => request.port = self.port,
            (name, false) => {
                request.sni = name;
                request.destination = self.destination;
                request.port = self.port;
            }
        }
        request
    }
}
