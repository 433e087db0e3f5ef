//! A payload shaped like a finding is a claim, not a finding: in the function's own account an
//! identity policy is enough to invoke it, and `aws.*` sources can be written into a direct
//! invoke's payload. Every GuardDuty finding (native, or imported into Security Hub) is read back
//! at GuardDuty in the guard's first wave, before any write, and acted on as GuardDuty holds it.
//!
//! Only identity fields are compared (finding ID, type, account, Region, key, principal, sample
//! marker): re-emits change counts and timestamps. An attack sequence is one incident per
//! credential it names, each compared with the credential of the same key in GuardDuty's copy.

use crate::error::Error;
use crate::incident::{Incident, Received, SourceCheck, Trigger};
use crate::ports::FindingSource;
use crate::trigger;
use crate::vocab::{Arn, is_region_name};

/// What the source said, before it is compared with the payload.
enum Reread {
    /// The source's copy, parsed like the payload; `at` says where it was read.
    Held { copy: Received, at: String },
    /// The source answered and holds no such finding (or the payload cannot name one).
    Absent(String),
    /// The source could not be asked, or did not answer.
    Unreadable(String),
}

/// A check and, when it verified the finding, the source's copy of the incident.
pub type Checked = (SourceCheck, Option<Incident>);

/// Reads the incident's finding back at GuardDuty. `None`: the trigger is not a finding.
///
/// A Security Hub import is read back at GuardDuty too, where it was raised: its ID is
/// GuardDuty's finding ARN, and Security Hub's own copy is one that `BatchUpdateFindings` (a
/// permission many more principals hold) can rewrite in part.
pub async fn check<C: FindingSource>(cloud: &C, incident: &Incident) -> Option<Checked> {
    let Trigger::GuardDuty { region, .. } = &incident.trigger else {
        return None;
    };
    let region = match &incident.finding {
        Some(f) if via_security_hub(incident) => Some(f.region.as_str()),
        _ => region.as_deref(),
    };
    let reread = match guardduty_id(incident) {
        Some(id) => guardduty(cloud, incident, &id, region).await,
        None => Reread::Absent(
            "the payload's finding is not GuardDuty's (its ID, product, account and Region do not agree)".into(),
        ),
    };
    Some(match reread {
        Reread::Held { copy, at } => compare(incident, copy, &at),
        Reread::Absent(why) => (SourceCheck::Forged(why), None),
        Reread::Unreadable(why) => (SourceCheck::Unchecked(why), None),
    })
}

/// GuardDuty's own ID of the incident's finding: the trigger's, or for a Security Hub import
/// the last part of GuardDuty's finding ARN, which is the import's ID.
fn guardduty_id(incident: &Incident) -> Option<String> {
    if !via_security_hub(incident) {
        return match &incident.trigger {
            Trigger::GuardDuty { finding_id, .. } => Some(finding_id.clone()),
            Trigger::Health { .. } | Trigger::Manual { .. } | Trigger::Pivot { .. } => None,
        };
    }
    let arn = &incident.finding.as_ref()?.id;
    let (_, id) = arn.rsplit_once("/finding/")?;
    (!id.is_empty()).then(|| id.to_owned())
}

/// Reads back every incident of a delivery at once.
pub async fn check_all<C: FindingSource>(
    cloud: &C,
    incidents: &[Incident],
) -> Vec<Option<Checked>> {
    futures::future::join_all(incidents.iter().map(|i| check(cloud, i))).await
}

/// The incident to act on: the source's copy when it matched, the payload as word only when the
/// source could not be read, the payload marked forged otherwise.
pub fn settle(mut incident: Incident, checked: Option<Checked>) -> Incident {
    match checked {
        None => incident,
        Some((check, Some(copy))) => Incident {
            source: Some(check),
            ..copy
        },
        Some((check, None)) => {
            if let SourceCheck::Unchecked(_) = &check {
                // Word only: the payload's principal is not believed; IAM's owner of the key is.
                incident.principal = crate::incident::Principal::Unresolved;
            }
            // Nor its finding: a Security Hub update would be aimed where the payload says.
            incident.finding = None;
            incident.source = Some(check);
            incident
        }
    }
}

/// Security Hub imports carry GuardDuty's finding ARN as their ID (`trigger::security_hub`).
fn via_security_hub(incident: &Incident) -> bool {
    incident.id.starts_with("securityhub:")
}

async fn guardduty<C: FindingSource>(
    cloud: &C,
    incident: &Incident,
    finding_id: &str,
    region: Option<&str>,
) -> Reread {
    let Some(region) = region.filter(|r| is_region_name(r)) else {
        return Reread::Absent("the payload names no Region a GuardDuty finding lives in".into());
    };
    // The payload's detector is asked at once, beside the account's own: one round trip when
    // they are the same (a single account), a second only when they differ (an administrator
    // account holding a member's finding, or a detector the payload made up).
    let claimed = incident
        .finding
        .as_ref()
        .and_then(|f| Arn::parse(&f.id).and_then(|a| detector_of(a.resource)));
    let (listed, first) = tokio::join!(cloud.detector(region), async {
        match claimed {
            Some(d) => Some(cloud.guardduty_finding(region, d, finding_id).await),
            None => None,
        }
    });
    let detector = match listed {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Reread::Unreadable(format!(
                "this account has no GuardDuty detector in {region} to read finding {finding_id} back from"
            ));
        }
        Err(e) => return Reread::Unreadable(unreadable("GuardDuty ListDetectors", region, &e)),
    };
    let answer = match first {
        Some(answer) if claimed == Some(detector.as_str()) => answer,
        _ => cloud.guardduty_finding(region, &detector, finding_id).await,
    };
    let at = format!("GuardDuty detector {detector} in {region}");
    match answer {
        // Archived findings (a suppression rule, or a person who closed it) are never delivered:
        // a payload carrying one replays it.
        Ok(Some(detail))
            if detail.pointer("/service/archived") == Some(&serde_json::Value::Bool(true)) =>
        {
            Reread::Absent(format!(
                "{at} holds finding {finding_id} ARCHIVED (a suppression rule or a person closed it), and archived findings are never delivered"
            ))
        }
        Ok(Some(detail)) => held(trigger::guardduty_reread(detail, region), at),
        Ok(None) => Reread::Absent(format!("{at} holds no finding {finding_id}")),
        Err(e) => Reread::Unreadable(unreadable("GuardDuty GetFindings", region, &e)),
    }
}

fn held(parsed: Result<Received, Error>, at: String) -> Reread {
    match parsed {
        Ok(copy) => Reread::Held { copy, at },
        Err(e) => Reread::Absent(format!(
            "{at} holds it, but not as a finding about an access key ({e})"
        )),
    }
}

fn unreadable(call: &str, region: &str, e: &Error) -> String {
    format!("{call} in {region} failed ({})", e.chain())
}

/// `detector/{id}/finding/{finding}` → `{id}`.
fn detector_of(resource: &str) -> Option<&str> {
    let rest = resource.strip_prefix("detector/")?;
    let (id, _) = rest.split_once("/finding/")?;
    (!id.is_empty()).then_some(id)
}

/// The payload against the source's copy, identity fields only.
fn compare(incident: &Incident, copy: Received, at: &str) -> Checked {
    let copies = match copy {
        Received::Sample(_) => {
            let why = format!(
                "{at} holds it as a sample finding, but the payload carries no sample marker"
            );
            return (SourceCheck::Forged(why), None);
        }
        Received::Advisory(_) => {
            let why = format!("{at} holds no finding on an access key under this ID");
            return (SourceCheck::Forged(why), None);
        }
        Received::Incidents(list) => list,
    };
    // An attack sequence names several credentials: the payload's key must be one of those
    // GuardDuty's copy names, whatever else the payload lists.
    let named: Vec<String> = copies.iter().map(|c| c.key.to_string()).collect();
    let Some(copy) = copies.into_iter().find(|c| c.key == incident.key) else {
        let why = format!(
            "{at} holds the finding, but about another access key than {} (it names {})",
            incident.key,
            named.join(", ")
        );
        return (SourceCheck::Forged(why), None);
    };
    let differs = differences(incident, &copy);
    if differs.is_empty() {
        (
            SourceCheck::Verified(format!("read back at {at}")),
            Some(copy),
        )
    } else {
        let why = format!("{at} holds the finding with another {}", differs.join(", "));
        (SourceCheck::Forged(why), None)
    }
}

/// The identity fields that differ: never counts or timestamps, which re-emits change.
fn differences(payload: &Incident, copy: &Incident) -> Vec<&'static str> {
    let type_and_region = |i: &Incident| match &i.trigger {
        Trigger::GuardDuty {
            finding_type,
            region,
            ..
        } => Some((finding_type.clone(), region.clone().unwrap_or_default())),
        Trigger::Health { .. } | Trigger::Manual { .. } | Trigger::Pivot { .. } => None,
    };
    let (a, b) = (type_and_region(payload), type_and_region(copy));
    [
        ("finding ID", guardduty_id(payload) != guardduty_id(copy)),
        (
            "finding type",
            a.as_ref().map(|x| &x.0) != b.as_ref().map(|x| &x.0),
        ),
        (
            "Region",
            a.as_ref().map(|x| &x.1) != b.as_ref().map(|x| &x.1),
        ),
        ("account", payload.account != copy.account),
        ("principal", payload.principal != copy.principal),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect()
}
