//! The incident record: what killswitch applied, verified, notified and restored for one key,
//! kept in the responder's own table (`KILLSWITCH_INCIDENT_TABLE`) where the key's holder cannot
//! write. Without a table everything still works, minus de-duplication and the restore history.
//!
//! Two items per key, so their writers never overwrite each other: the record the function
//! writes (`incident#ACCOUNT#KEY`), and the restore log only `killswitch restore` writes
//! (`restores#ACCOUNT#KEY`). Once-only claims are items of their own (`…#g<generation>#what`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::warn;

use crate::analysis::Pivot;
use crate::config::Config;
use crate::error::Error;
use crate::incident::{AccessKeyId, AccountId};
use crate::vocab::Plan;

mod kept;
mod seal;
use crate::ports::IncidentStore;
pub use kept::{Entry, Quarantined, Removed};

/// Hand-off digests kept per key (a key sees a handful of incidents, not hundreds).
const MAX_HANDOFFS: usize = 20;

/// One key's history. A restore starts a new generation: what was claimed before it (notices,
/// the hand-off) does not silence the next containment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentRecord {
    pub access_key_id: String,
    pub account: String,
    /// From the restore log, not stored in this item.
    #[serde(skip)]
    pub generation: u32,
    pub applied: Option<Applied>,
    #[serde(default)]
    pub verified_at: Option<DateTime<Utc>>,
    /// From the restore log, not stored in this item.
    #[serde(skip)]
    pub restores: Vec<Restore>,
    #[serde(default)]
    pub notices: Vec<String>,
    /// CloudTrail event IDs the latest follow-through read (its last lag-minutes): a later sweep
    /// reports only what is new since (CloudTrail delivers events minutes late).
    #[serde(default)]
    pub first_pass_event_ids: Vec<String>,
    /// When the sweep (the second search) ran and closed the search.
    #[serde(default)]
    pub swept_at: Option<DateTime<Utc>>,
    /// SHA-256 of every follow-up this function handed to the queue: a follow-up is carried out
    /// only when its digest is here, so a hand-crafted SQS-shaped invocation changes nothing.
    #[serde(default)]
    pub handoffs: Vec<String>,
    /// The org-level quarantine placed for this key (kept until `killswitch restore` lifts it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<Quarantined>,
    /// The Identity Center account assignment removed for this key (restore puts it back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<Removed>,
    /// Credentials the investigation found minted or opened with the key (its pivots), from
    /// every pass, once each: `restore` checks that none is still live before it lifts anything.
    /// A pivot this release cannot read is dropped, never the record.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "readable_pivots"
    )]
    pub pivots: Vec<Pivot>,
    /// Pivots found but not kept (the record's size limit): `restore` says it could not check them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pivots_not_kept: u32,
    /// Users the key's holder created (`iam:CreateUser`), with when: `restore` checks them for
    /// credentials, whoever made those.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created_users: Vec<(String, DateTime<Utc>)>,
    /// Why the record read from the store was not trusted (its seal did not verify): this one
    /// is a fresh record standing in for it. Never stored.
    #[serde(skip)]
    pub untrusted: Option<String>,
}

/// What the pivots of one record may take of the item (DynamoDB items end at 400 KB).
const MAX_PIVOT_BYTES: usize = 64 * 1024;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn readable_pivots<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Pivot>, D::Error> {
    let raw: Vec<serde_json::Value> = Deserialize::deserialize(d)?;
    Ok(raw
        .into_iter()
        .filter_map(|v| match serde_json::from_value(v) {
            Ok(p) => Some(p),
            Err(e) => {
                warn!(error = %e, "a pivot in the incident record is unreadable; dropped");
                None
            }
        })
        .collect())
}

/// What the last containment wrote, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub incident_id: String,
    /// The trigger's identity across re-deliveries (`Incident::dedupe_key`).
    #[serde(default)]
    pub trigger: String,
    /// The restore-log generation it was applied in: a restore makes it history.
    #[serde(default)]
    pub generation: u32,
    pub plan: Plan,
    pub at: DateTime<Utc>,
    /// When the trigger first saw the key in use: `restore` looks for keys and passwords
    /// created since.
    #[serde(default)]
    pub first_seen: Option<DateTime<Utc>>,
    /// The GuardDuty finding's count last reported: a re-emit with a higher count (the key's
    /// holder still trying) gets a short notice, a plain re-emit none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The Security Hub finding set to NOTIFIED: a restore adds its note there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<crate::incident::FindingRef>,
}

/// An operator's `killswitch restore`, recorded before it acts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Restore {
    pub by: String,
    pub operator_arn: Option<String>,
    pub reason: String,
    pub at: DateTime<Utc>,
    pub actions: Vec<String>,
}

/// The restore log item: written by operators only.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct RestoreLog {
    generation: u32,
    restores: Vec<Restore>,
}

impl IncidentRecord {
    pub fn new(account: &AccountId, key: &AccessKeyId) -> Self {
        Self {
            access_key_id: key.to_string(),
            account: account.to_string(),
            ..Self::default()
        }
    }

    pub fn id(&self) -> String {
        record_id(&self.account, &self.access_key_id)
    }

    /// The restore that explains containment being gone since `since`, if one was recorded.
    pub fn restored_since(&self, since: DateTime<Utc>) -> Option<&Restore> {
        self.restores.iter().rev().find(|r| r.at >= since)
    }

    /// The claim that makes a notice or hand-off once-only within this generation.
    pub fn claim_id(&self, what: &str) -> String {
        format!("{}#g{}#{what}", self.id(), self.generation)
    }

    /// Notes a follow-up handed to the queue.
    pub fn note_hand_off(&mut self, body: &str) {
        self.handoffs.push(digest(body));
        if self.handoffs.len() > MAX_HANDOFFS {
            self.handoffs.remove(0);
        }
    }

    pub fn handed_off(&self, body: &str) -> bool {
        self.handoffs.contains(&digest(body))
    }

    /// Keeps the pivots a pass found (each once, as first seen), so that `restore` can check
    /// them later. Sessions the user's deny covers are left out (restore keeps them revoked);
    /// past the size limit a pivot is counted, not kept.
    pub fn note_pivots<'p>(&mut self, found: impl IntoIterator<Item = &'p Pivot>) {
        let mut bytes: usize = self
            .pivots
            .iter()
            .map(|p| serde_json::to_string(p).map_or(0, |t| t.len()))
            .sum();
        for p in found {
            if p.kind.covered_by_user_deny()
                || self.pivots.iter().any(|k| k.identity() == p.identity())
            {
                continue;
            }
            let size = serde_json::to_string(p).map_or(usize::MAX, |t| t.len());
            if bytes.saturating_add(size) > MAX_PIVOT_BYTES {
                self.pivots_not_kept = self.pivots_not_kept.saturating_add(1);
                continue;
            }
            bytes += size;
            self.pivots.push(p.clone());
        }
    }

    /// Keeps the users a pass saw the key's holder create (each once; at most 100).
    pub fn note_created_users(&mut self, found: impl IntoIterator<Item = (String, DateTime<Utc>)>) {
        for (user, at) in found {
            if self.created_users.len() < 100
                && !self
                    .created_users
                    .iter()
                    .any(|(u, _)| u.eq_ignore_ascii_case(&user))
            {
                self.created_users.push((user, at));
            }
        }
    }

    /// What this generation's containment applied, if it was for this trigger.
    pub fn applied_for(&self, trigger: &str) -> Option<&Applied> {
        self.applied
            .as_ref()
            .filter(|a| a.trigger == trigger && a.generation == self.generation)
    }

    /// The role cutoff this generation's containment wrote, whatever the trigger: the only
    /// cutoff killswitch trusts to cover an incident (a cutoff the key's holder planted, even a
    /// well-formed one, is no proof that its newer sessions are revoked).
    pub fn applied_cutoff(&self, role: &str) -> Option<DateTime<Utc>> {
        match &self.applied {
            Some(Applied {
                plan:
                    Plan::Role {
                        role: r,
                        cutoff: Some(cutoff),
                        ..
                    },
                generation,
                ..
            }) if r == role && *generation == self.generation => Some(*cutoff),
            _ => None,
        }
    }
}

pub fn record_id(account: &str, key: &str) -> String {
    format!("incident#{account}#{key}")
}

/// Role names are unique regardless of case.
fn role_index_id(account: &str, role: &str) -> String {
    format!("role#{account}#{}", role.to_ascii_lowercase())
}

/// The keys whose containment put a role-wide cutoff on one role: a restore lifts the cutoff
/// only when no other open incident relies on it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct RoleIndex {
    /// The item's own ID, so that a sealed index copied under another role's ID is told apart.
    #[serde(default)]
    id: String,
    keys: Vec<String>,
}

fn restore_log_id(account: &str, key: &str) -> String {
    format!("restores#{account}#{key}")
}

fn digest(body: &str) -> String {
    Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The store, if the deployment has one.
pub struct Records<'a, S> {
    pub store: &'a S,
    pub enabled: bool,
}

impl<'a, S: IncidentStore> Records<'a, S> {
    pub fn new(store: &'a S, config: &Config) -> Self {
        Self {
            store,
            enabled: config.incident_table.is_some(),
        }
    }

    /// The record (with its restore log), or a fresh one. A read failure is logged and treated
    /// as "no history": the response must not wait on the store.
    pub async fn load(&self, account: &AccountId, key: &AccessKeyId) -> Option<IncidentRecord> {
        if !self.enabled {
            return None;
        }
        let (record_key, log_key) = (
            record_id(account.as_str(), key.as_str()),
            restore_log_id(account.as_str(), key.as_str()),
        );
        let (record, log) = tokio::join!(
            self.store.load_record(&record_key),
            self.store.load_record(&log_key)
        );
        let mut record = match record {
            Ok(Some(text)) => self.open(&text, account, key).await,
            Ok(None) => IncidentRecord::new(account, key),
            Err(e) => {
                warn!(error = %e.chain(), "incident store unreadable");
                return None;
            }
        };
        match log {
            Ok(Some(text)) => {
                let log: RestoreLog = serde_json::from_str(&text).unwrap_or_default();
                record.generation = log.generation;
                record.restores = log.restores;
            }
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e.chain(), "restore log unreadable");
                return None;
            }
        }
        Some(record)
    }

    pub async fn save(&self, record: &IncidentRecord) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        let text = serde_json::to_string(record).unwrap_or_default();
        let stored = self.sealed(text).await?;
        self.store.save_record(&record.id(), &stored).await
    }

    /// Adds `key` to the role's index of contained keys. Writers may race (two incidents on one role at
    /// once), so the write is read back and retried until it holds the key.
    pub async fn note_role_incident(
        &self,
        account: &AccountId,
        role: &str,
        key: &AccessKeyId,
    ) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        let id = role_index_id(account.as_str(), role);
        for _ in 0..4 {
            let mut index = self.role_index(&id).await?;
            if index.keys.iter().any(|k| k == key.as_str()) {
                return Ok(());
            }
            index.keys.push(key.to_string());
            index.id.clone_from(&id);
            let text = self
                .sealed(serde_json::to_string(&index).unwrap_or_default())
                .await?;
            self.store.save_record(&id, &text).await?;
        }
        Err(Error::BadEvent(format!(
            "the role index {id} kept losing key {key} to concurrent writers"
        )))
    }

    /// The role's index of contained keys; one that fails the seal check is an error (restore
    /// must not lift what another incident may rely on).
    async fn role_index(&self, id: &str) -> Result<RoleIndex, Error> {
        Ok(match self.store.load_record(id).await? {
            Some(text) => {
                let untrusted = |why: &str| {
                    Error::BadEvent(format!("the role index {id} is not trusted: {why}"))
                };
                let body = self.unsealed(&text).await.map_err(|why| untrusted(&why))?;
                let index: RoleIndex = serde_json::from_str(&body).unwrap_or_default();
                if self.store.seals() && index.id != id {
                    return Err(untrusted("it is another role's sealed index"));
                }
                index
            }
            None => RoleIndex::default(),
        })
    }

    /// Other keys whose open incident (contained, not restored since) relies on what `relies`
    /// picks out of its plan on `role`: the role-wide cutoff, or one denied session.
    pub async fn others_relying(
        &self,
        account: &AccountId,
        role: &str,
        key: &AccessKeyId,
        relies: impl Fn(&Plan) -> bool,
    ) -> Result<Vec<String>, Error> {
        if !self.enabled {
            return Ok(Vec::new());
        }
        let index = self
            .role_index(&role_index_id(account.as_str(), role))
            .await?;
        let mut relying = Vec::new();
        for other in index.keys.iter().filter(|k| *k != key.as_str()) {
            let Ok(other_key) = AccessKeyId::parse(other) else {
                continue;
            };
            let Some(record) = self.load(account, &other_key).await else {
                return Err(Error::BadEvent(format!(
                    "the incident record of {other} could not be read"
                )));
            };
            // A record set aside says nothing of what that incident relies on.
            if let Some(why) = &record.untrusted {
                return Err(Error::BadEvent(format!(
                    "the incident record of {other} is not trusted ({why})"
                )));
            }
            if record.applied.as_ref().is_some_and(|a| {
                a.generation == record.generation && on_role_index(&a.plan, role) && relies(&a.plan)
            }) {
                relying.push(other.clone());
            }
        }
        Ok(relying)
    }

    /// Appends a restore to the key's restore log and starts a new generation. Only operators
    /// call this; the function never writes the log.
    pub async fn record_restore(
        &self,
        account: &AccountId,
        key: &AccessKeyId,
        restore: Restore,
    ) -> Result<(), Error> {
        if !self.enabled {
            return Err(Error::Config {
                name: "KILLSWITCH_INCIDENT_TABLE",
                reason: "not set: the restore cannot be recorded".into(),
            });
        }
        let id = restore_log_id(account.as_str(), key.as_str());
        let mut log: RestoreLog = match self.store.load_record(&id).await? {
            Some(text) => serde_json::from_str(&text).unwrap_or_default(),
            None => RestoreLog::default(),
        };
        log.restores.push(restore);
        log.generation += 1;
        let text = serde_json::to_string(&log).unwrap_or_default();
        self.store.save_record(&id, &text).await
    }

    /// Whether a queue message with this body was queued by this function (its digest is in the
    /// key's record); `true` without a store, which has nothing to check against.
    pub async fn handed_off(&self, account: &AccountId, key: &AccessKeyId, body: &str) -> bool {
        !self.enabled
            || self
                .load(account, key)
                .await
                .is_some_and(|r| r.handed_off(body))
    }

    /// `true` when the caller may go ahead (claimed now, or no store to ask).
    pub async fn claim(&self, record: Option<&IncidentRecord>, what: &str) -> bool {
        let Some(record) = record.filter(|_| self.enabled) else {
            return true;
        };
        match self.store.claim(&record.claim_id(what)).await {
            Ok(taken) => taken,
            Err(e) => {
                // Better a duplicate notice than a lost one.
                warn!(error = %e.chain(), claim = what, "could not claim; going ahead");
                true
            }
        }
    }

    pub async fn release(&self, record: Option<&IncidentRecord>, what: &str) {
        if let Some(record) = record.filter(|_| self.enabled)
            && let Err(e) = self.store.release(&record.claim_id(what)).await
        {
            warn!(error = %e.chain(), claim = what, "could not release a claim");
        }
    }
}

/// Whether a plan is kept in this role's index: a role plan on it, or any portal plan (the
/// portal's index is its user's, noted beside the role's).
fn on_role_index(plan: &Plan, role: &str) -> bool {
    match plan {
        Plan::Role { role: r, .. } => r.eq_ignore_ascii_case(role),
        Plan::Portal { .. } => true,
        Plan::User { .. } => false,
    }
}
