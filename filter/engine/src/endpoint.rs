//! Endpoints behind internal hostnames, compiled. The compiled form is validated here, so that
//! a bundle with a bad endpoint is refused at load, not at the first request; choosing one per
//! request is [`crate::selection`].

use std::net::IpAddr;

use warden_bundle::{Endpoint, Locality};

use crate::error::CompileError;
use crate::host::{parse_host, Host, HostBuf};
use crate::name::OwnedName;

/// Where an endpoint is reached.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EndpointAddress {
    Ip(IpAddr),
    /// A host name, resolved by the proxy.
    Name(Box<str>),
}

impl std::fmt::Display for EndpointAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(std::net::IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct CompiledEndpoint {
    pub(crate) name: OwnedName,
    pub(crate) address: EndpointAddress,
    pub(crate) ports: Box<[(Option<Box<str>>, u16)]>,
    #[serde(with = "crate::locality_form::one")]
    pub(crate) locality: Locality,
    pub(crate) weight: u32,
}

impl CompiledEndpoint {
    /// The endpoint port with this name.
    pub(crate) fn port_named(&self, name: &str) -> Option<u16> {
        self.ports
            .iter()
            .find(|(n, _)| n.as_deref() == Some(name))
            .map(|&(_, number)| number)
    }
}

pub(crate) fn compile_endpoint(
    endpoint: &Endpoint,
    field: &str,
) -> Result<CompiledEndpoint, CompileError> {
    let fail = |sub: &str, problem: String| {
        CompileError::invalid(Some(&endpoint.source), format!("{field}.{sub}"), problem)
    };
    let raw = endpoint.address.as_str();
    let address = match raw.parse::<IpAddr>() {
        Ok(ip) => EndpointAddress::Ip(crate::host::canonical_ip(ip)),
        Err(_) => match parse_host(raw, &mut HostBuf::new()) {
            Ok(Host::Name(name)) => EndpointAddress::Name(name.into()),
            Ok(Host::Ip(ip)) => {
                return Err(fail(
                    "address",
                    format!("{raw:?} is a non-canonical spelling of {ip}; write {ip}"),
                ))
            }
            Err(err) => {
                return Err(fail(
                    "address",
                    format!("{raw:?} is neither an IP address nor a host name: {err}"),
                ))
            }
        },
    };
    if endpoint.ports.is_empty() {
        return Err(fail("ports", "an endpoint needs at least one port".into()));
    }
    let mut ports: Vec<(Option<Box<str>>, u16)> = Vec::with_capacity(endpoint.ports.len());
    for (i, port) in endpoint.ports.iter().enumerate() {
        if port.number == 0 {
            return Err(fail(
                &format!("ports[{i}].number"),
                "port 0 is not a port; use 1 to 65535".into(),
            ));
        }
        if let Some(name) = &port.name {
            if ports.iter().any(|(n, _)| n.as_deref() == Some(name)) {
                return Err(fail(
                    &format!("ports[{i}].name"),
                    format!("port name {name:?} is used twice"),
                ));
            }
        }
        ports.push((port.name.as_deref().map(Box::from), port.number));
    }
    Ok(CompiledEndpoint {
        name: OwnedName::new(&endpoint.source.namespace, &endpoint.source.name),
        address,
        ports: ports.into_boxed_slice(),
        locality: endpoint.locality.clone(),
        weight: endpoint.weight,
    })
}
