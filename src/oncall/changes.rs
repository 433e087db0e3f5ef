//! Changes IAM keeps no date for, found in CloudTrail: an access key set back to Active, a
//! console password changed in place, a service-specific credential reset, an MFA device
//! enabled. Only calls the key's holder signed are read (`LookupEvents` by access key ID: the
//! leaked key and the keys and sessions the incident's pivots name), in us-east-1 where IAM
//! logs, since the incident began. Each change still in effect is a refusal, and says that
//! CloudTrail lags.

use std::collections::HashSet;
use std::time::Duration;

use chrono::TimeDelta;
use serde_json::Value;

use super::assess::{Assessment, Facts};
use super::user::{console_id, credential_id};
use crate::analysis::PivotKind;
use crate::config::Config;
use crate::error::{AwsFailure, Error};
use crate::incident::AccessKeyId;
use crate::pacing::{Budget, Pacer};
use crate::ports::{
    ActivityLog, ApiCall, Identity, IncidentStore, KeyStatus, LookupQuery, MFA_DEVICE,
};
use crate::report::ts;

/// How late CloudTrail's event history shows a call, said wherever a check relied on it.
pub(super) const LAG: &str = "CloudTrail shows calls about 5 minutes late, up to about 15";
const LAG_MINUTES: i64 = 15;
/// IAM's calls are logged here, whatever Region they were made from.
const IAM_REGION: &str = "us-east-1";
/// The IAM changes that leave no date of their own.
const WATCHED: [&str; 4] = [
    "UpdateAccessKey",
    "UpdateLoginProfile",
    "ResetServiceSpecificCredential",
    "EnableMFADevice",
];
/// Keys read, pages per key, and the time all of it may take.
const MAX_KEYS: usize = 10;
const MAX_PAGES: usize = 10;
const TIME_BUDGET: Duration = Duration::from_secs(60);
const THROTTLE_RETRIES: u32 = 3;
/// A credential changed by the holder counts as the same one unless IAM dates it later than this
/// after the call (IAM's and CloudTrail's clocks differ by seconds).
const SLACK_MINUTES: i64 = 5;

/// Reads the holder's calls since the incident began and refuses for each change still in
/// effect. `flagged`: what other checks already refused (listed once).
pub(super) async fn check<C: Identity + ActivityLog + IncidentStore>(
    cloud: &C,
    config: &Config,
    facts: &Facts<'_>,
    flagged: &mut HashSet<String>,
    a: &mut Assessment,
) {
    let mut keys = holder_keys(facts);
    if keys.len() > MAX_KEYS {
        a.unchecked.push(format!(
            "the calls of {} more credential(s) the key's holder minted were not read from CloudTrail (at most {MAX_KEYS} are): a key set back to Active, a password changed in place, a service credential reset or an MFA device enabled with them is not checked",
            keys.len() - MAX_KEYS
        ));
        keys.truncate(MAX_KEYS);
    }
    let pacer = Pacer::new();
    let budget = Budget {
        pacer: &pacer,
        store: config.incident_table.is_some().then_some(cloud),
        account: facts.account.as_str(),
    };
    let deadline = tokio::time::Instant::now() + TIME_BUDGET;
    for key in &keys {
        let changes = match watched_calls(cloud, budget, key, facts, deadline).await {
            Ok((changes, complete)) => {
                if !complete {
                    a.unchecked.push(format!(
                        "not every call of {key} since the incident began could be read from CloudTrail in time: changes in the older ones are not checked"
                    ));
                }
                changes
            }
            Err(e) => {
                a.refusals.push(format!(
                    "the calls of {key} since the incident began at {} could not be read from CloudTrail ({}): a key it set back to Active, a password it changed in place, a service credential it reset or an MFA device it enabled would not be seen; read them (aws cloudtrail lookup-events --region {IAM_REGION} --lookup-attributes AttributeKey=AccessKeyId,AttributeValue={key}), then restore with --force",
                    ts(facts.began),
                    e.chain()
                ));
                continue;
            }
        };
        for change in changes {
            if let Some((id, why)) = still_in_effect(cloud, key, &change).await
                && flagged.insert(id)
            {
                a.refusals.push(why);
            }
        }
    }
    a.unchecked.push(format!(
        "IAM changes the key's holder made since {} (a key set back to Active, a password changed in place, a service credential reset, an MFA device enabled): {LAG}, so they may not be listed yet; run restore again later to see them",
        ts(facts.now - TimeDelta::minutes(LAG_MINUTES))
    ));
}

/// The leaked key and the keys and sessions the incident's pivots name, once each.
fn holder_keys(facts: &Facts<'_>) -> Vec<AccessKeyId> {
    let mut keys = vec![facts.key.clone()];
    let minted = facts.record.iter().flat_map(|r| &r.pivots).filter(|p| {
        matches!(
            p.kind,
            PivotKind::AccessKey | PivotKind::RoleSession | PivotKind::UserSession
        )
    });
    for k in minted.filter_map(|p| AccessKeyId::parse(p.access_key_id.as_deref()?).ok()) {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

/// The successful watched IAM calls `key` signed since the incident began, and whether every
/// page was read.
async fn watched_calls<C: ActivityLog + IncidentStore>(
    cloud: &C,
    budget: Budget<'_, C>,
    key: &AccessKeyId,
    facts: &Facts<'_>,
    deadline: tokio::time::Instant,
) -> Result<(Vec<ApiCall>, bool), Error> {
    let mut out = Vec::new();
    let mut next_token = None;
    for _ in 0..MAX_PAGES {
        let page = page(cloud, budget, key, facts, next_token.take(), deadline).await?;
        let Some(page) = page else {
            return Ok((out, false));
        };
        out.extend(page.calls.into_iter().filter(|c| {
            c.event_source == "iam.amazonaws.com"
                && c.error_code.is_none()
                && c.time >= facts.began
                && WATCHED.contains(&c.event_name.as_str())
        }));
        match page.next_token {
            Some(t) => next_token = Some(t),
            None => return Ok((out, true)),
        }
    }
    Ok((out, false))
}

/// One page, in a slot of the `LookupEvents` budget, asked again when throttled. `None`: the
/// time budget ran out.
async fn page<C: ActivityLog + IncidentStore>(
    cloud: &C,
    budget: Budget<'_, C>,
    key: &AccessKeyId,
    facts: &Facts<'_>,
    next_token: Option<String>,
    deadline: tokio::time::Instant,
) -> Result<Option<crate::ports::ActivityPage>, Error> {
    let mut throttled = 0;
    loop {
        let now = tokio::time::Instant::now();
        if budget.acquire(IAM_REGION, now, deadline).await.is_none() {
            return Ok(None);
        }
        let query = LookupQuery {
            region: IAM_REGION,
            key,
            start: facts.began,
            end: facts.now,
            next_token: next_token.clone(),
        };
        match cloud.lookup_page(query).await {
            Ok(page) => return Ok(Some(page)),
            Err(e) if e.is(AwsFailure::Throttled) && throttled < THROTTLE_RETRIES => {
                throttled += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn param<'c>(call: &'c ApiCall, name: &str) -> Option<&'c str> {
    call.request_parameters
        .as_ref()
        .and_then(|p| p.get(name))
        .and_then(Value::as_str)
}

/// The user a call acted on: the one it names, else the IAM user that signed it (these calls act
/// on the caller without a user name).
fn target_user(call: &ApiCall) -> Option<String> {
    param(call, "userName").map(str::to_owned).or_else(|| {
        call.caller
            .as_ref()
            .filter(|c| c.kind == "IAMUser")
            .and_then(|c| c.name.clone())
    })
}

/// The change, when it still holds: its identity (to list it once) and the refusal.
async fn still_in_effect<C: Identity>(
    cloud: &C,
    key: &AccessKeyId,
    call: &ApiCall,
) -> Option<(String, String)> {
    let seen = format!(
        "at {} ({}, signed with {key}, in CloudTrail)",
        ts(call.time),
        call.event_name
    );
    let lag = format!("{LAG}: a later change may not be listed yet");
    let until = call.time + TimeDelta::minutes(SLACK_MINUTES);
    match call.event_name.as_str() {
        "UpdateAccessKey" => reactivated_key(cloud, call, &seen, &lag).await,
        "UpdateLoginProfile" => {
            let user = target_user(call)?;
            let held = cloud.login_profile(&user).await;
            let what = format!("the console password of user {user}");
            match held {
                Ok(Some(created)) if created <= until => Some((
                    console_id(&user),
                    format!(
                        "{what} was changed in place {seen}, a change IAM keeps no date for, and is still there: delete it first (aws iam delete-login-profile --user-name {user}); {lag}"
                    ),
                )),
                Ok(_) => None,
                Err(e) => could_not(&what, &seen, &e),
            }
        }
        "ResetServiceSpecificCredential" => reset_credential(cloud, call, &seen, &lag).await,
        "EnableMFADevice" => {
            let (user, serial) = (param(call, "userName")?, param(call, "serialNumber")?);
            let what = format!("MFA device {serial} of user {user}");
            match cloud.other_credentials(user).await {
                Ok(held)
                    if held.iter().any(|d| {
                        d.kind == MFA_DEVICE
                            && d.id == serial
                            && d.created.is_none_or(|t| t <= until)
                    }) =>
                {
                    Some((
                        serial.to_owned(),
                        format!(
                            "{what} was enabled {seen} and still is: deactivate it first (aws iam deactivate-mfa-device --user-name {user} --serial-number {serial}); {lag}"
                        ),
                    ))
                }
                Ok(_) => None,
                Err(e) if e.is(AwsFailure::NotFound) => None,
                Err(e) => could_not(&what, &seen, &e),
            }
        }
        _ => None,
    }
}

/// A key the holder set back to Active, still Active (its owner read from IAM, not the call).
async fn reactivated_key<C: Identity>(
    cloud: &C,
    call: &ApiCall,
    seen: &str,
    lag: &str,
) -> Option<(String, String)> {
    if !param(call, "status").is_some_and(|s| s.eq_ignore_ascii_case("Active")) {
        return None;
    }
    let k = AccessKeyId::parse(param(call, "accessKeyId")?).ok()?;
    let what = format!("access key {k}");
    let owner = match cloud.key_usage(&k).await {
        Ok(Some(usage)) => usage.user_name,
        Ok(None) => return None,
        Err(e) => return could_not(&what, seen, &e),
    };
    match cloud.key_status(&owner, &k).await {
        Ok(Some(KeyStatus::Active)) => Some((
            k.to_string(),
            format!(
                "{what} of user {owner} was set back to Active {seen}, a change IAM keeps no date for, and still is: deactivate it first (aws iam update-access-key --user-name {owner} --access-key-id {k} --status Inactive); {lag}"
            ),
        )),
        Ok(_) => None,
        Err(e) if e.is(AwsFailure::NotFound) => None,
        Err(e) => could_not(&what, seen, &e),
    }
}

/// A service-specific credential the holder reset (a new password it knows), still active.
async fn reset_credential<C: Identity>(
    cloud: &C,
    call: &ApiCall,
    seen: &str,
    lag: &str,
) -> Option<(String, String)> {
    let (user, id) = (
        target_user(call)?,
        param(call, "serviceSpecificCredentialId")?,
    );
    let what = format!("service-specific credential {id} of user {user}");
    match cloud.other_credentials(&user).await {
        Ok(creds) if creds.iter().any(|c| c.active && credential_id(&c.id) == id) => Some((
            id.to_owned(),
            format!(
                "{what} was reset {seen} (the holder got its new password), a change IAM keeps no date for, and is still active: deactivate it first (aws iam update-service-specific-credential --user-name {user} --service-specific-credential-id {id} --status Inactive); {lag}"
            ),
        )),
        Ok(_) => None,
        Err(e) if e.is(AwsFailure::NotFound) => None,
        Err(e) => could_not(&what, seen, &e),
    }
}

/// A change whose credential could not be read: a refusal, since it could not be shown undone.
fn could_not(what: &str, seen: &str, e: &Error) -> Option<(String, String)> {
    Some((
        format!("unreadable:{what}"),
        format!(
            "{what}, changed by the key's holder {seen}, could not be checked: {}",
            e.chain()
        ),
    ))
}
