//! A service and its ports as compiled for deciding: the types the policy, the endpoint choice
//! and the route all read. Built by `compile`; nothing here decides.

use warden_bundle::{LocalityMapping, Protocol, TargetPort};

use crate::endpoint::CompiledEndpoint;
use crate::name::ResourceName;
use crate::outlier::OutlierSettings;
use crate::ranking::Ranked;

#[derive(Debug, Clone)]
pub(crate) struct CompiledService {
    pub(crate) name: ResourceName,
    /// The first exact host: where a connection to a virtual address goes when the service
    /// has no endpoints.
    pub(crate) host: Option<Box<str>>,
    /// The addresses that stand for the service's hosts (canonical).
    pub(crate) virtual_addresses: Box<[std::net::IpAddr]>,
    pub(crate) ports: Box<[CompiledPort]>,
    /// When endpoints are ejected.
    pub(crate) outlier: OutlierSettings,
    /// The endpoints an internal hostname stands for (empty: traffic goes to the host).
    pub(crate) endpoints: Box<[CompiledEndpoint]>,
    /// The endpoints ranked for [`Policy::prepared_for`].
    pub(crate) ranked: Option<Ranked>,
    /// Failover targets by proxy locality (`FailoverPolicy`).
    pub(crate) failover: Box<[LocalityMapping]>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledPort {
    pub(crate) number: u16,
    pub(crate) protocol: Protocol,
    pub(crate) via_gateway: bool,
    /// The cluster an egress gateway originates TLS through (absent: plain, or `DISABLE`).
    pub(crate) tls_cluster: Option<Box<str>>,
    /// The endpoint port, when it is not `number`.
    pub(crate) target: Option<TargetPort>,
    /// Indices of the access policies that apply to this port.
    pub(crate) policies: Box<[u32]>,
}
