//! How the bundle's `Locality` travels in the compiled tables (`crate::compact`): three
//! strings, always present (the bundle's JSON form leaves empty ones out, which a positional
//! encoding cannot).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use warden_bundle::{Locality, LocalityMapping};

type Parts<'a> = (&'a str, &'a str, &'a str);
type Owned = (String, String, String);

fn parts(l: &Locality) -> Parts<'_> {
    (&l.region, &l.zone, &l.sub_zone)
}

fn from_owned((region, zone, sub_zone): Owned) -> Locality {
    Locality {
        region,
        zone,
        sub_zone,
    }
}

pub(crate) mod one {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(l: &Locality, s: S) -> Result<S::Ok, S::Error> {
        parts(l).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Locality, D::Error> {
        Owned::deserialize(d).map(from_owned)
    }
}

pub(crate) mod optional {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(l: &Option<Locality>, s: S) -> Result<S::Ok, S::Error> {
        l.as_ref().map(parts).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Locality>, D::Error> {
        Option::<Owned>::deserialize(d).map(|l| l.map(from_owned))
    }
}

pub(crate) mod mappings {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        mappings: &[LocalityMapping],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            mappings
                .iter()
                .map(|m| (parts(&m.from), m.to.iter().map(parts).collect::<Vec<_>>())),
        )
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Box<[LocalityMapping]>, D::Error> {
        let raw = Vec::<(Owned, Vec<Owned>)>::deserialize(d)?;
        Ok(raw
            .into_iter()
            .map(|(from, to)| LocalityMapping {
                from: from_owned(from),
                to: to.into_iter().map(from_owned).collect(),
            })
            .collect())
    }
}
