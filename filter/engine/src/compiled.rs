//! A service and its ports as compiled for deciding: the types the policy, the endpoint choice
//! and the route all read. Built by `compile`; nothing here decides.

use warden_bundle::{LocalityMapping, Protocol, TargetPort};

use crate::endpoint::CompiledEndpoint;
use crate::name::ResourceName;
use crate::outlier::OutlierSettings;
use crate::ranking::Ranked;

/// A service's ports.
pub(crate) type Ports = smallvec::SmallVec<[CompiledPort; 2]>;

/// How a service's ports are read back: pushed one by one, nothing reserved for the length
/// the bytes announce (`smallvec`'s own reading reserves it, whatever it is).
mod ports_form {
    use std::fmt;

    use serde::de::{SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    use super::Ports;

    pub(super) fn serialize<S: Serializer>(ports: &Ports, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(ports.iter())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Ports, D::Error> {
        struct Each;
        impl<'de> Visitor<'de> for Each {
            type Value = Ports;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a service's ports")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ports, A::Error> {
                let mut ports = Ports::new();
                while let Some(port) = seq.next_element()? {
                    ports.push(port);
                }
                Ok(ports)
            }
        }
        d.deserialize_seq(Each)
    }
}

/// A service's `host` when it has no exact host (a host table never holds 2^32 - 1 keys).
const NO_HOST: u32 = u32::MAX;

/// A service as the policy holds it. What most services lack (endpoints, virtual addresses,
/// failover, outlier settings of their own) is kept apart, behind one pointer, so that a
/// registry of plain hosts and networks costs only what it uses: a VM holds 100,000 of these.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct CompiledService {
    /// The first exact host, by its position in the policy's host table: where a connection
    /// to a virtual address goes when the service has no endpoints ([`NO_HOST`]: none). (Its
    /// name is at its index in the policy's name table.)
    host: u32,
    /// The workspace views that see this service (indices into the policy's views); empty:
    /// every view.
    pub(crate) views: Box<[u16]>,
    /// Most services have one or two ports: held in place, not in an allocation of their own.
    #[serde(with = "ports_form")]
    pub(crate) ports: Ports,
    /// `None`: no endpoints, no virtual addresses, no failover, default outlier settings.
    routing: Option<Box<ServiceRouting>>,
}

/// A service with its name (from the policy's name table): what decisions and the endpoint
/// choice read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Service<'p> {
    pub(crate) name: &'p ResourceName,
    pub(crate) compiled: &'p CompiledService,
}

impl std::ops::Deref for Service<'_> {
    type Target = CompiledService;

    fn deref(&self) -> &CompiledService {
        self.compiled
    }
}

/// The part of a service only internal hostnames and virtual addresses use.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct ServiceRouting {
    /// The addresses that stand for the service's hosts (canonical).
    pub(crate) virtual_addresses: Box<[std::net::IpAddr]>,
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
    pub(crate) fn new(
        host: Option<u32>,
        views: Box<[u16]>,
        ports: Ports,
        routing: ServiceRouting,
    ) -> Self {
        let plain = routing.virtual_addresses.is_empty()
            && routing.endpoints.is_empty()
            && routing.failover.is_empty()
            && routing.outlier == OutlierSettings::DEFAULT;
        Self {
            host: host.unwrap_or(NO_HOST),
            views,
            ports,
            routing: (!plain).then(|| Box::new(routing)),
        }
    }

    /// The first exact host, by its position in the policy's host table.
    pub(crate) fn host(&self) -> Option<u32> {
        (self.host != NO_HOST).then_some(self.host)
    }

    /// Names the first exact host by its position in the host table.
    pub(crate) fn set_host(&mut self, host: Option<u32>) {
        self.host = host.unwrap_or(NO_HOST);
    }

    /// The addresses that stand for the service's hosts (canonical).
    pub(crate) fn virtual_addresses(&self) -> &[std::net::IpAddr] {
        self.routing.as_ref().map_or(&[], |r| &r.virtual_addresses)
    }

    /// When endpoints are ejected.
    pub(crate) fn outlier(&self) -> &OutlierSettings {
        self.routing
            .as_ref()
            .map_or(&OutlierSettings::DEFAULT, |r| &r.outlier)
    }

    /// The endpoints an internal hostname stands for (empty: traffic goes to the host).
    pub(crate) fn endpoints(&self) -> &[CompiledEndpoint] {
        self.routing.as_ref().map_or(&[], |r| &r.endpoints)
    }

    /// The endpoints ranked for [`Policy::prepared_for`], once prepared.
    pub(crate) fn ranked(&self) -> Option<&Ranked> {
        self.routing.as_ref().and_then(|r| r.ranked.as_ref())
    }

    /// Failover targets by proxy locality (`FailoverPolicy`).
    pub(crate) fn failover(&self) -> &[LocalityMapping] {
        self.routing.as_ref().map_or(&[], |r| &r.failover)
    }

    /// The routing part, for ranking endpoints (`None`: the service has none).
    pub(crate) fn routing_mut(&mut self) -> Option<&mut ServiceRouting> {
        self.routing.as_deref_mut()
    }

    /// Gives the service `outlier` settings, valid or not (for tests of decoded tables).
    #[cfg(test)]
    pub(crate) fn set_outlier_for_test(&mut self, outlier: OutlierSettings) {
        let mut routing = self.routing.take().map_or_else(
            || ServiceRouting {
                virtual_addresses: Box::default(),
                outlier,
                endpoints: Box::default(),
                ranked: None,
                failover: Box::default(),
            },
            |r| *r,
        );
        routing.outlier = outlier;
        self.routing = Some(Box::new(routing));
    }

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

/// A service's port. What few ports have (TLS origination, another endpoint port, access
/// policies) is kept apart, behind one pointer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct CompiledPort {
    pub(crate) number: u16,
    pub(crate) protocol: Protocol,
    pub(crate) via_gateway: bool,
    /// The port workloads send to through the gateway (`portMatch`), when not `number`.
    pub(crate) port_match: Option<u16>,
    /// `None`: plain, the same endpoint port, no access policy.
    extra: Option<Box<PortExtra>>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct PortExtra {
    tls_cluster: Option<Box<str>>,
    target: Option<TargetPort>,
    policies: Box<[u32]>,
}

impl CompiledPort {
    pub(crate) fn new(
        number: u16,
        protocol: Protocol,
        port_match: Option<u16>,
        via_gateway: bool,
        tls_cluster: Option<Box<str>>,
        target: Option<TargetPort>,
    ) -> Self {
        let mut port = Self {
            number,
            protocol,
            via_gateway,
            port_match,
            extra: None,
        };
        port.set_extra(PortExtra {
            tls_cluster,
            target,
            policies: Box::default(),
        });
        port
    }

    fn set_extra(&mut self, extra: PortExtra) {
        let plain =
            extra.tls_cluster.is_none() && extra.target.is_none() && extra.policies.is_empty();
        self.extra = (!plain).then(|| Box::new(extra));
    }

    /// The cluster an egress gateway originates TLS through (absent: plain, or `DISABLE`).
    pub(crate) fn tls_cluster(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.tls_cluster.as_deref())
    }

    /// The endpoint port, when it is not `number`.
    pub(crate) fn target(&self) -> Option<&TargetPort> {
        self.extra.as_ref().and_then(|e| e.target.as_ref())
    }

    /// Indices of the access policies that apply to this port.
    pub(crate) fn policies(&self) -> &[u32] {
        self.extra.as_ref().map_or(&[], |e| &e.policies)
    }

    pub(crate) fn set_policies(&mut self, policies: Box<[u32]>) {
        let mut extra = self.extra.take().map(|e| *e).unwrap_or_default();
        extra.policies = policies;
        self.set_extra(extra);
    }
}
