//! GuardDuty Extended Threat Detection's `AttackSequence:IAM/CompromisedCredentials`: the
//! credentials a sequence names, each with who holds it. The finding's `resource` says only
//! `AttackSequence`; its details are under `service.detection.sequence` (GuardDuty API
//! reference: `Sequence`, `Actor`, `User`, `ResourceV2`, `ResourceData`, `AccessKey`).
//!
//! Where the key ID sits is not stated plainly there, so two places are read and both must hold
//! a well-formed key ID when present: `actors[].user.credentialUid` ("the credentials of the user
//! ID"; Security Hub's copy: "unique identifier of the threat actor's user credentials") and the
//! `uid` of a `resources[]` entry of type `ACCESS_KEY` (required; its `data.accessKey` carries
//! the principal ID, user name and user type, and no key ID of its own). Anything else is refused
//! naming the field, never guessed at.

use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;
use crate::incident::{AccessKeyId, Principal, truncate};

use super::super::{is_placeholder_key_id, within_key_cap};
use super::{AccessKeyDetails, guardduty_principal};

/// The `resource.resourceType` of every attack sequence finding.
pub(super) const RESOURCE_TYPE: &str = "AttackSequence";

/// The one attack sequence about credentials; the others (S3 data, EKS, ECS, EC2) are not keys
/// to contain.
pub(super) const CREDENTIALS_TYPE: &str = "AttackSequence:IAM/CompromisedCredentials";

const SEQUENCE: &str = "service.detection.sequence";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detection {
    sequence: Option<Sequence>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sequence {
    uid: Option<String>,
    #[serde(default)]
    actors: Vec<Actor>,
    #[serde(default)]
    resources: Vec<Resource>,
    signals: Option<Vec<Value>>,
}

#[derive(Deserialize)]
struct Actor {
    user: Option<User>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct User {
    name: Option<String>,
    uid: Option<String>,
    #[serde(rename = "type")]
    user_type: Option<String>,
    credential_uid: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Resource {
    uid: Option<String>,
    resource_type: Option<String>,
    data: Option<ResourceData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceData {
    access_key: Option<AccessKeyDetails>,
}

/// What a sequence says about one credential, before it is parsed.
struct Named<'a> {
    field: String,
    raw: &'a str,
    holder: AccessKeyDetails,
}

/// Whether the sequence names a sample's placeholder key ID (only key IDs, never names).
pub(super) fn names_placeholder(detection: Option<&Value>) -> bool {
    let Some(sequence) = detection.and_then(|d| d.get("sequence")) else {
        return false;
    };
    let actors = sequence.get("actors").and_then(Value::as_array);
    let resources = sequence.get("resources").and_then(Value::as_array);
    let in_actors = actors
        .into_iter()
        .flatten()
        .filter_map(|a| a.pointer("/user/credentialUid").and_then(Value::as_str));
    let in_resources = resources
        .into_iter()
        .flatten()
        .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("ACCESS_KEY"))
        .filter_map(|r| r.get("uid").and_then(Value::as_str));
    in_actors.chain(in_resources).any(is_placeholder_key_id)
}

/// Every credential the sequence names, once each, with its holder as the sequence says.
pub(super) fn credentials(
    finding_id: &str,
    finding_type: &str,
    detection: Option<&Value>,
) -> Result<Vec<(AccessKeyId, Principal)>, Error> {
    let id = truncate(finding_id, 64);
    if finding_type != CREDENTIALS_TYPE {
        return Err(Error::BadEvent(format!(
            "GuardDuty attack sequence {id} is of type {:?}; only {CREDENTIALS_TYPE} names credentials to contain",
            truncate(finding_type, 64)
        )));
    }
    let sequence = read_sequence(&id, detection)?;
    let named = named(&sequence)?;
    if named.is_empty() {
        return Err(Error::BadEvent(format!(
            "GuardDuty attack sequence {id} names no credential: no {SEQUENCE}.actors[].user.credentialUid and no {SEQUENCE}.resources[] of type ACCESS_KEY"
        )));
    }
    // Counted before any key is parsed: each would cost a guard's reads.
    let mut distinct: Vec<&str> = named.iter().map(|n| n.raw).collect();
    distinct.sort_unstable();
    distinct.dedup();
    within_key_cap(distinct.len(), "GuardDuty attack sequence")?;
    let mut out: Vec<(AccessKeyId, Principal)> = Vec::new();
    for n in named {
        let key = AccessKeyId::parse(n.raw).map_err(|e| {
            Error::BadEvent(format!(
                "GuardDuty attack sequence {id}: {} is not an access key ID ({e})",
                n.field
            ))
        })?;
        // The first naming wins: a resource's `data.accessKey` (the documented holder) comes
        // before an actor's user.
        if !out.iter().any(|(k, _)| *k == key) {
            let principal = guardduty_principal(&n.holder)?;
            out.push((key, principal));
        }
    }
    Ok(out)
}

fn read_sequence(id: &str, detection: Option<&Value>) -> Result<Sequence, Error> {
    let detection: Detection = match detection {
        Some(d) => serde_json::from_value(d.clone())
            .map_err(|e| Error::BadEvent(format!("GuardDuty attack sequence {id}: {e}")))?,
        None => Detection { sequence: None },
    };
    let sequence = detection.sequence.ok_or_else(|| {
        Error::BadEvent(format!("GuardDuty attack sequence {id} has no {SEQUENCE}"))
    })?;
    if sequence.uid.as_deref().is_none_or(str::is_empty) {
        return Err(Error::BadEvent(format!(
            "GuardDuty attack sequence {id} has no {SEQUENCE}.uid"
        )));
    }
    if sequence.signals.as_ref().is_none_or(Vec::is_empty) {
        return Err(Error::BadEvent(format!(
            "GuardDuty attack sequence {id} has no {SEQUENCE}.signals (GuardDuty sends 1 to 100)"
        )));
    }
    Ok(sequence)
}

/// The credentials in order: access-key resources first (they carry the holder), then actors.
fn named(sequence: &Sequence) -> Result<Vec<Named<'_>>, Error> {
    let mut out = Vec::new();
    for (i, r) in sequence.resources.iter().enumerate() {
        if r.resource_type.as_deref() != Some("ACCESS_KEY") {
            continue;
        }
        let field = format!("{SEQUENCE}.resources[{i}]");
        let raw = r
            .uid
            .as_deref()
            .ok_or_else(|| Error::BadEvent(format!("{field}.uid is missing")))?;
        let holder = r.data.as_ref().and_then(|d| d.access_key.as_ref());
        let holder =
            holder.ok_or_else(|| Error::BadEvent(format!("{field}.data.accessKey is missing")))?;
        out.push(Named {
            field: format!("{field}.uid"),
            raw,
            holder: AccessKeyDetails {
                access_key_id: Some(raw.to_owned()),
                principal_id: holder.principal_id.clone(),
                user_name: holder.user_name.clone(),
                user_type: holder.user_type.clone(),
            },
        });
    }
    for (i, a) in sequence.actors.iter().enumerate() {
        let Some(user) = &a.user else { continue };
        let Some(raw) = user.credential_uid.as_deref() else {
            continue;
        };
        out.push(Named {
            field: format!("{SEQUENCE}.actors[{i}].user.credentialUid"),
            raw,
            holder: AccessKeyDetails {
                access_key_id: Some(raw.to_owned()),
                principal_id: user.uid.clone(),
                user_name: user.name.clone(),
                user_type: user.user_type.clone(),
            },
        });
    }
    Ok(out)
}
