//! A service and its ports as compiled for deciding: the types the policy, the endpoint choice
//! and the route all read. Built by `compile`; nothing here decides.

use warden_bundle::{LocalityMapping, Protocol, TargetPort};

use crate::endpoint::CompiledEndpoint;
use crate::name::ResourceName;
use crate::outlier::OutlierSettings;
use crate::ranking::Ranked;

/// A service's `host` when it has no exact host (a host table never holds 2^32 - 1 keys).
const NO_HOST: u32 = u32::MAX;

/// A service as the policy holds it: 16 bytes in the filter's 32-bit wasm, what the service
/// names (its name, ports, workspace views) being in the policy's tables. What most services
/// lack (endpoints, virtual addresses, failover, outlier settings of their own) is kept
/// apart, behind one pointer, so that a registry of plain hosts and networks costs only what
/// it uses: a VM holds 100,000 of these.
#[derive(Debug, Clone)]
pub(crate) struct CompiledService {
    /// The first exact host, by its position in the policy's host table: where a connection
    /// to a virtual address goes when the service has no endpoints ([`NO_HOST`]: none).
    host: u32,
    /// Where the service's ports end in the policy's port table; they start where the
    /// previous service's end.
    pub(crate) ports_end: u32,
    /// The workspace views that see the service: 0, every view; `n`, the policy's view list
    /// `n - 1`.
    pub(crate) views: u32,
    /// `None`: no endpoints, no virtual addresses, no failover, default outlier settings.
    routing: Option<Box<ServiceRouting>>,
}

/// How the services are written: each with its number of ports (small numbers, which
/// compress), not where its ports end (which grows with every service: a fifth more
/// compressed bytes at 100,000 services). Read back into one allocation of the announced
/// length, as [`crate::exact_seq`] reads lists.
pub(crate) mod services_form {
    use std::fmt;

    use serde::de::{SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{CompiledService, ServiceRouting};

    #[derive(Serialize)]
    struct Written<'a> {
        host: u32,
        ports: u32,
        views: u32,
        routing: &'a Option<Box<ServiceRouting>>,
    }

    #[derive(Deserialize)]
    struct Read {
        host: u32,
        ports: u32,
        views: u32,
        routing: Option<Box<ServiceRouting>>,
    }

    pub(crate) fn serialize<S: Serializer>(
        services: &[CompiledService],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(services.len()))?;
        let mut start = 0u32;
        for service in services {
            seq.serialize_element(&Written {
                host: service.host,
                ports: service.ports_end.wrapping_sub(start),
                views: service.views,
                routing: &service.routing,
            })?;
            start = service.ports_end;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Box<[CompiledService]>, D::Error> {
        struct Services;

        impl<'de> Visitor<'de> for Services {
            type Value = Box<[CompiledService]>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the services")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let announced = seq.size_hint().unwrap_or(0);
                let reserved = crate::exact_seq::grant(announced, size_of::<CompiledService>());
                let mut services = Vec::with_capacity(reserved);
                let mut end = 0u32;
                while let Some(read) = seq.next_element::<Read>()? {
                    end = end.checked_add(read.ports).ok_or_else(|| {
                        crate::decode_error::refuse("the services have over 2^32 ports")
                    })?;
                    services.push(CompiledService {
                        host: read.host,
                        ports_end: end,
                        views: read.views,
                        routing: read.routing,
                    });
                }
                Ok(services.into_boxed_slice())
            }
        }

        d.deserialize_seq(Services)
    }
}

/// A service with what the policy's tables hold for it (its name and ports): what decisions
/// and the endpoint choice read. Which workspace views see it is `Policy::sees`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Service<'p> {
    pub(crate) name: &'p ResourceName,
    pub(crate) compiled: &'p CompiledService,
    pub(crate) ports: &'p [CompiledPort],
    /// Where `ports` start in the policy's port table.
    pub(crate) ports_start: u32,
    /// The policy's port extras, by port position, ascending.
    pub(crate) extras: &'p [(u32, PortExtra)],
}

impl<'p> Service<'p> {
    /// The port declared as `number`.
    pub(crate) fn declared_port(&self, number: u16) -> Option<Port<'p>> {
        self.port_where(|p| p.number == number)
    }

    /// The gateway-routed port whose `portMatch` is `number`.
    pub(crate) fn matched_port(&self, number: u16) -> Option<Port<'p>> {
        self.port_where(|p| p.port_match() == Some(number))
    }

    fn port_where(&self, wanted: impl Fn(&CompiledPort) -> bool) -> Option<Port<'p>> {
        let (at, port) = (0u32..).zip(self.ports).find(|(_, p)| wanted(p))?;
        // A port flagged as having extras whose extras are missing is no port at all (its
        // access policies must not silently go), whatever `Policy::check` let through.
        let extra = if port.has_extra() {
            let position = self.ports_start.saturating_add(at);
            let found = self.extras.binary_search_by_key(&position, |(p, _)| *p);
            Some(&self.extras.get(found.ok()?)?.1)
        } else {
            None
        };
        Some(Port { port, extra })
    }
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
        views: u32,
        ports_end: u32,
        routing: ServiceRouting,
    ) -> Self {
        let plain = routing.virtual_addresses.is_empty()
            && routing.endpoints.is_empty()
            && routing.failover.is_empty()
            && routing.outlier == OutlierSettings::DEFAULT;
        Self {
            host: host.unwrap_or(NO_HOST),
            ports_end,
            views,
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
}

const _: () = assert!(size_of::<CompiledPort>() == 6);

/// A service's port: 6 bytes. What few ports have (TLS origination, another endpoint port,
/// access policies) is in the policy's port extras, by the port's position.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(crate) struct CompiledPort {
    pub(crate) number: u16,
    /// The port workloads send to through the gateway (`portMatch`), when not `number`; 0:
    /// none.
    port_match: u16,
    pub(crate) protocol: Protocol,
    /// [`VIA_GATEWAY`], [`HAS_EXTRA`].
    flags: u8,
}

/// Traffic to the port goes through the egress gateway.
const VIA_GATEWAY: u8 = 1;
/// The port has an entry in the policy's port extras.
pub(crate) const HAS_EXTRA: u8 = 2;

/// What few ports have.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct PortExtra {
    tls_cluster: Option<Box<str>>,
    target: Option<TargetPort>,
    pub(crate) policies: Box<[u32]>,
}

impl PortExtra {
    pub(crate) fn new(tls_cluster: Option<Box<str>>, target: Option<TargetPort>) -> Self {
        Self {
            tls_cluster,
            target,
            policies: Box::default(),
        }
    }

    /// Whether a port with this needs no entry at all.
    pub(crate) fn is_plain(&self) -> bool {
        self.tls_cluster.is_none() && self.target.is_none() && self.policies.is_empty()
    }
}

impl CompiledPort {
    /// A port; `port_match` is never 0 (compile refuses it).
    pub(crate) fn new(
        number: u16,
        protocol: Protocol,
        port_match: Option<u16>,
        via_gateway: bool,
    ) -> Self {
        Self {
            number,
            port_match: port_match.unwrap_or(0),
            protocol,
            flags: if via_gateway { VIA_GATEWAY } else { 0 },
        }
    }

    pub(crate) fn via_gateway(&self) -> bool {
        self.flags & VIA_GATEWAY != 0
    }

    /// The port workloads send to through the gateway (`portMatch`), when not `number`.
    pub(crate) fn port_match(&self) -> Option<u16> {
        (self.port_match != 0).then_some(self.port_match)
    }

    pub(crate) fn has_extra(&self) -> bool {
        self.flags & HAS_EXTRA != 0
    }

    /// Marks the port as having an entry in the port extras.
    pub(crate) fn set_has_extra(&mut self) {
        self.flags |= HAS_EXTRA;
    }

    /// Whether the flags are ones compiling sets, and a `portMatch` only on a port routed
    /// through the gateway. For decoded tables.
    pub(crate) fn is_well_formed(&self) -> bool {
        self.flags & !(VIA_GATEWAY | HAS_EXTRA) == 0 && (self.port_match == 0 || self.via_gateway())
    }

    /// Sets the flags, valid or not (for tests of decoded tables).
    #[cfg(test)]
    pub(crate) fn set_flags_for_test(&mut self, flags: u8) {
        self.flags = flags;
    }
}

/// A port with its extras, as decisions read it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Port<'p> {
    pub(crate) port: &'p CompiledPort,
    extra: Option<&'p PortExtra>,
}

impl<'p> Port<'p> {
    /// The cluster an egress gateway originates TLS through (absent: plain, or `DISABLE`).
    pub(crate) fn tls_cluster(&self) -> Option<&'p str> {
        self.extra.and_then(|e| e.tls_cluster.as_deref())
    }

    /// The endpoint port, when it is not `number`.
    pub(crate) fn target(&self) -> Option<&'p TargetPort> {
        self.extra.and_then(|e| e.target.as_ref())
    }

    /// Indices of the access policies that apply to this port.
    pub(crate) fn policies(&self) -> &'p [u32] {
        self.extra.map_or(&[], |e| &e.policies)
    }
}

impl std::ops::Deref for Port<'_> {
    type Target = CompiledPort;

    fn deref(&self) -> &CompiledPort {
        self.port
    }
}
