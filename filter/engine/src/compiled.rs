//! A service and its ports as compiled for deciding: the types the policy, the endpoint choice
//! and the route all read. Built by `compile`; nothing here decides.

use warden_bundle::{LocalityMapping, Protocol, TargetPort};

use crate::endpoint::CompiledEndpoint;
use crate::name::ResourceName;
use crate::outlier::OutlierSettings;
use crate::ranking::Ranked;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct CompiledService {
    pub(crate) name: ResourceName,
    /// The first exact host: where a connection to a virtual address goes when the service
    /// has no endpoints.
    pub(crate) host: Option<Box<str>>,
    /// The addresses that stand for the service's hosts (canonical).
    pub(crate) virtual_addresses: Box<[std::net::IpAddr]>,
    /// The workspace views that see this service (indices into the policy's views); empty:
    /// every view.
    pub(crate) views: Box<[u16]>,
    pub(crate) ports: Box<[CompiledPort]>,
    /// When endpoints are ejected.
    pub(crate) outlier: OutlierSettings,
    /// The endpoints an internal hostname stands for (empty: traffic goes to the host).
    pub(crate) endpoints: Box<[CompiledEndpoint]>,
    /// The endpoints ranked for [`Policy::prepared_for`].
    #[serde(skip)]
    pub(crate) ranked: Option<Ranked>,
    /// Failover targets by proxy locality (`FailoverPolicy`).
    #[serde(with = "crate::locality_form::mappings")]
    pub(crate) failover: Box<[LocalityMapping]>,
}

impl CompiledService {
    /// Whether a caller in `view` sees this service (`None`: the bundle has one view).
    pub(crate) fn visible_in(&self, view: Option<u16>) -> bool {
        match view {
            None => true,
            Some(v) => self.views.is_empty() || self.views.contains(&v),
        }
    }

    /// The port declared as `number`.
    pub(crate) fn declared_port(&self, number: u16) -> Option<&CompiledPort> {
        self.ports.iter().find(|p| p.number == number)
    }

    /// The gateway-routed port whose `portMatch` is `number`.
    pub(crate) fn matched_port(&self, number: u16) -> Option<&CompiledPort> {
        self.ports.iter().find(|p| p.port_match == Some(number))
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct CompiledPort {
    pub(crate) number: u16,
    pub(crate) protocol: Protocol,
    pub(crate) via_gateway: bool,
    /// The port workloads send to through the gateway (`portMatch`), when not `number`.
    pub(crate) port_match: Option<u16>,
    /// The cluster an egress gateway originates TLS through (absent: plain, or `DISABLE`).
    pub(crate) tls_cluster: Option<Box<str>>,
    /// The endpoint port, when it is not `number`.
    pub(crate) target: Option<TargetPort>,
    /// Indices of the access policies that apply to this port.
    pub(crate) policies: Box<[u32]>,
}
