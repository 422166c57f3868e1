//! Gloo's resilience policies: `OutlierDetectionPolicy` (when the endpoints of the services it
//! selects are ejected) and `FailoverPolicy` (where a proxy's traffic fails over to).

use warden_bundle::{Locality, LocalityMapping, OutlierDetection};

use super::policies::selects;
use super::services::BuiltService;
use super::workspaces::Workspaces;
use crate::diagnostic::{Diagnostics, Severity};
use crate::manifest::kinds::{DestinationSelector, FailoverPolicySpec, OutlierDetectionPolicySpec};
use crate::manifest::load::Located;

/// A duration as Gloo writes them: `30s`, `500ms`, `1m`, `1.5s`; in milliseconds.
pub fn millis(text: &str) -> Option<u64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
    let factor = match unit {
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    Some((value * factor).round() as u64)
}

/// Policies in namespace/name order: the first of two that select one service wins.
fn by_name<Spec>(policies: &[Located<Spec>]) -> Vec<&Located<Spec>> {
    let mut ordered: Vec<&Located<Spec>> = policies.iter().collect();
    ordered.sort_by(|a, b| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())));
    ordered
}

/// Applies `set` to every service one of `destinations` selects (seen from the policy's
/// workspace); a service `set` declines (it already has a setting) is reported. Warns when
/// nothing is selected.
fn for_each_selected<Spec>(
    policy: &Located<Spec>,
    destinations: &[DestinationSelector],
    services: &mut [BuiltService<'_>],
    workspaces: &Workspaces,
    diagnostics: &mut Diagnostics,
    what: &str,
    mut set: impl FnMut(&mut BuiltService<'_>) -> bool,
) {
    let workspace = workspaces.workspace_of(policy.namespace()).to_owned();
    let mut selected = 0;
    for s in services.iter_mut() {
        let picked = destinations.iter().any(|d| {
            d.kind.as_deref().is_none_or(|k| k == "EXTERNAL_SERVICE")
                && selects(&d.selector, s, workspaces, &workspace)
        });
        if !picked {
            continue;
        }
        selected += 1;
        if !set(s) {
            diagnostics.push(policy.diagnostic(
                "conflicting-policy",
                Severity::Warning,
                "spec.applyToDestinations",
                format!(
                    "{} already has {what} from another policy; that one applies",
                    s.resource.display()
                ),
            ));
        }
    }
    if selected == 0 {
        diagnostics.push(policy.diagnostic(
            "selects-nothing",
            Severity::Warning,
            "spec.applyToDestinations",
            "selects no ExternalService; the policy has no effect",
        ));
    }
}

/// Sets `outlierDetection` on every service a policy selects. A service selected by two
/// policies keeps the first (by namespace/name); the second is reported.
pub fn apply(
    policies: &[Located<OutlierDetectionPolicySpec>],
    services: &mut [BuiltService<'_>],
    workspaces: &Workspaces,
    diagnostics: &mut Diagnostics,
) {
    for policy in by_name(policies) {
        let config = &policy.manifest.spec.config;
        if config.interval.is_some() {
            diagnostics.push(policy.diagnostic(
                "not-applied",
                Severity::Warning,
                "spec.config.interval",
                "detection is passive (consecutive errors on live traffic); interval is not used",
            ));
        }
        let base = match config.base_ejection_time.as_deref() {
            None => None,
            Some(text) => match millis(text) {
                Some(ms) => Some(ms),
                None => {
                    diagnostics.push(policy.diagnostic(
                        "invalid-field",
                        Severity::Error,
                        "spec.config.baseEjectionTime",
                        format!("{text:?} is not a duration; write it as 30s, 500ms or 1m"),
                    ));
                    continue;
                }
            },
        };
        if config.max_ejection_percent.is_some_and(|p| p > 100) {
            diagnostics.push(policy.diagnostic(
                "invalid-field",
                Severity::Error,
                "spec.config.maxEjectionPercent",
                "a percentage is 0 to 100",
            ));
            continue;
        }
        let settings = OutlierDetection {
            consecutive_errors: config.consecutive_errors,
            consecutive_gateway_errors: config.consecutive_gateway_errors,
            base_ejection_millis: base,
            max_ejection_percent: config.max_ejection_percent,
        };
        for_each_selected(
            policy,
            &policy.manifest.spec.apply_to_destinations,
            services,
            workspaces,
            diagnostics,
            "outlier detection",
            |s| {
                if s.service.outlier_detection.is_some() {
                    return false;
                }
                s.service.outlier_detection = Some(settings.clone());
                true
            },
        );
    }
}

/// Sets `failover` on every service a `FailoverPolicy` selects (the first policy by
/// namespace/name wins; a second is reported).
pub fn apply_failover(
    policies: &[Located<FailoverPolicySpec>],
    services: &mut [BuiltService<'_>],
    workspaces: &Workspaces,
    diagnostics: &mut Diagnostics,
) {
    for policy in by_name(policies) {
        let mut mappings = Vec::new();
        let mut valid = true;
        for (m, mapping) in policy
            .manifest
            .spec
            .config
            .locality_mappings
            .iter()
            .enumerate()
        {
            let at = format!("spec.config.localityMappings[{m}]");
            if mapping.from.region.is_empty() {
                diagnostics.push(policy.diagnostic(
                    "invalid-field",
                    Severity::Error,
                    &format!("{at}.from.region"),
                    "a mapping's from names at least a region",
                ));
                valid = false;
                continue;
            }
            let mut to = Vec::new();
            for (t, target) in mapping.to.iter().enumerate() {
                if target.region.is_empty() {
                    diagnostics.push(policy.diagnostic(
                        "invalid-field",
                        Severity::Error,
                        &format!("{at}.to[{t}].region"),
                        "a failover target names at least a region",
                    ));
                    valid = false;
                }
                if target.weight.is_some() {
                    diagnostics.push(policy.diagnostic("not-applied", 
                        Severity::Warning,
                        &format!("{at}.to[{t}].weight"),
                        "weights between failover targets are not applied yet: targets are tried in order",
                    ));
                }
                to.push(Locality {
                    region: target.region.clone(),
                    zone: target.zone.clone(),
                    sub_zone: target.sub_zone.clone(),
                });
            }
            let from = Locality {
                region: mapping.from.region.clone(),
                zone: mapping.from.zone.clone(),
                sub_zone: mapping.from.sub_zone.clone(),
            };
            mappings.push(LocalityMapping { from, to });
        }
        if !valid {
            continue;
        }
        for_each_selected(
            policy,
            &policy.manifest.spec.apply_to_destinations,
            services,
            workspaces,
            diagnostics,
            "failover mappings",
            |s| {
                if !s.service.failover.is_empty() {
                    return false;
                }
                s.service.failover = mappings.clone();
                true
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::millis;

    /// Gloo's duration forms, and what is refused.
    #[test]
    fn durations() {
        assert_eq!(millis("30s"), Some(30_000));
        assert_eq!(millis("500ms"), Some(500));
        assert_eq!(millis("1.5s"), Some(1_500));
        assert_eq!(millis("2m"), Some(120_000));
        assert_eq!(millis("30"), None);
        assert_eq!(millis("-1s"), None);
        assert_eq!(millis("1d"), None);
    }
}
