//! `restore`'s first half: what it would change, and what must stop it without `--force`.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::action::RestoreAction;
use super::changes;
use super::pivots::live_pivots;
use super::role::{assess_portal, assess_role};
use super::status::{KeyState, status};
use super::user::assess_user;
use crate::config::Config;
use crate::error::Error;
use crate::incident::{AccessKeyId, AccountId};
use crate::playbook::Plan;
use crate::ports::{ActivityLog, Identity, IncidentStore, Organization};
use crate::record::{IncidentRecord, Records};

/// What the operator asked to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    pub user_name: Option<String>,
    pub role_name: Option<String>,
    /// The role session to stop denying, when the incident record does not say.
    pub session: Option<String>,
    /// Also reactivate the leaked key (otherwise it stays Inactive).
    pub reactivate_key: bool,
}

/// What `restore` would change, and why it must not go ahead without `--force`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Assessment {
    pub plan: Vec<RestoreAction>,
    pub refusals: Vec<String>,
    /// What the restore could not check and does not wait for (said, never a refusal).
    pub unchecked: Vec<String>,
    /// IAM knows the key, or the incident record names what was contained (`status`'s `exists`).
    pub key_found: bool,
    /// What the incident record says killswitch applied, when there is one.
    pub recorded_plan: Option<Plan>,
    /// The Security Hub finding set to NOTIFIED: the restore adds its note there.
    pub finding: Option<crate::incident::FindingRef>,
}

/// What the assessment read, for each of its steps.
pub(super) struct Facts<'a> {
    /// The operator's account: the incident record's and the role index's.
    pub account: AccountId,
    pub key: &'a AccessKeyId,
    pub req: &'a RestoreRequest,
    pub state: KeyState,
    pub record: Option<IncidentRecord>,
    pub began: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

impl Facts<'_> {
    /// What the incident record says killswitch applied.
    pub fn recorded_plan(&self) -> Option<&Plan> {
        self.record
            .as_ref()
            .and_then(|r| r.applied.as_ref())
            .map(|ap| &ap.plan)
    }

    /// When the incident record says killswitch contained the key.
    pub fn applied_at(&self) -> Option<DateTime<Utc>> {
        self.record
            .as_ref()
            .and_then(|r| r.applied.as_ref())
            .map(|ap| ap.at)
    }
}

/// Reads the key, its owner, the incident record and what an attacker may have left, and works
/// out the restore: only what killswitch placed, nothing else.
pub async fn assess<C: Identity + IncidentStore + Organization + ActivityLog>(
    cloud: &C,
    config: &Config,
    key: &AccessKeyId,
    req: &RestoreRequest,
) -> Result<Assessment, Error> {
    let (account, _) = cloud.caller().await?;
    let records = Records::new(cloud, config);
    let (state, record) = tokio::join!(
        status(
            cloud,
            config,
            key,
            req.user_name.as_deref(),
            req.role_name.as_deref()
        ),
        records.load(&account, key)
    );
    let now = Utc::now();
    let facts = Facts {
        began: incident_began(record.as_ref(), config, now),
        account,
        key,
        req,
        state: state?,
        record,
        now,
    };
    let mut a = Assessment::from(&facts);
    if let Some(why) = facts.record.as_ref().and_then(|r| r.untrusted.as_deref()) {
        // A forged record could steer the restore (a permission set to grant, a cutoff nobody
        // else relies on): nothing it says is acted on.
        a.refusals.push(format!(
            "the incident record is NOT TRUSTED ({why}): what it says was applied cannot be believed; find who wrote the item, then restore with --force only if you are sure"
        ));
    }
    let mut flagged = HashSet::new();
    if let Some(user) = &facts.state.user_name {
        flagged = assess_user(cloud, &facts, user, &mut a).await?;
    }
    check_pivots(cloud, config, &facts, &mut flagged, &mut a).await;
    changes::check(cloud, config, &facts, &mut flagged, &mut a).await;
    if let Some(q) = facts.record.as_ref().and_then(|r| r.quarantine.clone()) {
        a.plan
            .push(RestoreAction::LiftQuarantine { quarantined: q });
    }
    if let Some(p) = &facts.state.identity_center {
        assess_portal(&records, &facts, p, &mut a).await?;
    }
    if let Some(role) = &facts.state.role_name {
        assess_role(&records, &facts, role, &mut a).await?;
    }
    Ok(a)
}

impl From<&Facts<'_>> for Assessment {
    /// Nothing planned or refused yet: what the key's state and the record say.
    fn from(facts: &Facts<'_>) -> Self {
        Assessment {
            key_found: facts.state.exists,
            recorded_plan: facts.recorded_plan().cloned(),
            finding: facts
                .record
                .as_ref()
                .and_then(|r| r.applied.as_ref())
                .and_then(|ap| ap.finding.clone()),
            ..Assessment::default()
        }
    }
}

/// The credentials the incident record's pivots name, each still live one a refusal; without
/// a record, said unchecked. `flagged`: what the user's checks already refused.
async fn check_pivots<C: Identity>(
    cloud: &C,
    config: &Config,
    facts: &Facts<'_>,
    flagged: &mut HashSet<String>,
    a: &mut Assessment,
) {
    let Some(r) = &facts.record else {
        a.unchecked.push(if config.incident_table.is_some() {
            "the incident record could not be read: the credentials the investigation found minted with the key (the reports' STILL OPEN items) are not checked".into()
        } else {
            "no incident record (KILLSWITCH_INCIDENT_TABLE not set): the credentials the investigation found minted with the key (the reports' STILL OPEN items) are not checked".into()
        });
        return;
    };
    let mut live = live_pivots(cloud, facts, r, flagged).await;
    a.refusals.append(&mut live);
    if r.pivots_not_kept > 0 {
        a.unchecked.push(format!(
            "up to {} more credential(s) the investigation found minted with the key did not fit in the incident record: check them in the incident's reports (STILL OPEN)",
            r.pivots_not_kept
        ));
    }
}

/// The start of the incident: the trigger's first sighting, else the containment time minus the
/// investigation's lookback (a key the holder created before we arrived must count).
fn incident_began(
    record: Option<&IncidentRecord>,
    config: &Config,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let lookback = TimeDelta::from_std(config.lookback).unwrap_or(TimeDelta::hours(24));
    // GuardDuty's first sighting can be later than the holder's first use: whichever is earlier.
    match record.and_then(|r| r.applied.as_ref()) {
        Some(applied) => {
            let window = applied.at - lookback;
            applied.first_seen.map_or(window, |seen| seen.min(window))
        }
        None => now - lookback,
    }
}
