//! The incident record: what killswitch applied, verified, notified and restored for one key,
//! kept in the responder's own table (`KILLSWITCH_INCIDENT_TABLE`) where the key's holder cannot
//! write. Without a table everything still works, minus de-duplication and the restore history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::config::Config;
use crate::incident::{AccessKeyId, AccountId};
use crate::playbook::Plan;
use crate::ports::IncidentStore;

/// One key's history. A restore starts a new generation: what was claimed before it (notices,
/// the hand-off) does not silence the next containment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentRecord {
    pub access_key_id: String,
    pub account: String,
    #[serde(default)]
    pub generation: u32,
    pub applied: Option<Applied>,
    #[serde(default)]
    pub verified_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub restores: Vec<Restore>,
    #[serde(default)]
    pub notices: Vec<String>,
}

/// What the last containment wrote, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub incident_id: String,
    pub plan: Plan,
    pub at: DateTime<Utc>,
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
}

pub fn record_id(account: &str, key: &str) -> String {
    format!("incident#{account}#{key}")
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

    /// The record, or a fresh one. A read failure is logged and treated as "no history": the
    /// response must not wait on the store.
    pub async fn load(&self, account: &AccountId, key: &AccessKeyId) -> Option<IncidentRecord> {
        if !self.enabled {
            return None;
        }
        let id = record_id(account.as_str(), key.as_str());
        match self.store.load_record(&id).await {
            Ok(Some(text)) => match serde_json::from_str(&text) {
                Ok(r) => Some(r),
                Err(e) => {
                    warn!(error = %e, "incident record unreadable; starting a new one");
                    Some(IncidentRecord::new(account, key))
                }
            },
            Ok(None) => Some(IncidentRecord::new(account, key)),
            Err(e) => {
                warn!(error = %e.chain(), "incident store unreadable");
                None
            }
        }
    }

    pub async fn save(&self, record: &IncidentRecord) -> Result<(), crate::error::Error> {
        if !self.enabled {
            return Ok(());
        }
        let text = serde_json::to_string(record).unwrap_or_default();
        self.store.save_record(&record.id(), &text).await
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
