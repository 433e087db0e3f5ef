//! Records sealed with a key only the responder may sign with (`KILLSWITCH_RECORD_KEY_ARN`, a
//! KMS HMAC key): an item anyone else wrote fails the check and is never trusted.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{IncidentRecord, Records};
use crate::error::Error;
use crate::incident::{AccessKeyId, AccountId};
use crate::ports::IncidentStore;

/// How a sealed record is stored: its exact text and the record key's MAC of it.
#[derive(Serialize, Deserialize)]
struct Sealed {
    sealed: String,
    mac: String,
}

impl IncidentRecord {
    /// Says in the report, once, that the stored record was not trusted and why.
    pub fn report_trust(&self, report: &mut crate::report::Report) {
        let Some(why) = &self.untrusted else { return };
        let said = report
            .steps
            .iter()
            .any(|s| s.step == crate::vocab::Step::Record && s.detail.contains("NOT TRUSTED"));
        if !said {
            report.record(
                crate::vocab::Step::Record,
                crate::report::Outcome::Failed,
                format!("the incident record in the table is NOT TRUSTED ({why}); it was set aside and containment acted as if there were none: find who wrote the item (CloudTrail, dynamodb data events if logged)"),
                Utc::now(),
            );
        }
    }
}

impl<S: IncidentStore> Records<'_, S> {
    /// `text` as stored: sealed with a key only the responder may sign with, when one is
    /// configured, so that an item written by anyone else (a PartiQL write, an operator's role)
    /// fails the check and is never trusted.
    pub(super) async fn sealed(&self, text: String) -> Result<String, Error> {
        Ok(match self.store.seal(&text).await? {
            Some(mac) => serde_json::to_string(&Sealed { sealed: text, mac }).unwrap_or_default(),
            None => text,
        })
    }

    /// A stored item's text, checked: with a record key configured, only an item sealed with it
    /// is trusted (`Err` says why not); without one, items are read as they were before sealing.
    pub(super) async fn unsealed(&self, stored: &str) -> Result<String, String> {
        match (serde_json::from_str::<Sealed>(stored), self.store.seals()) {
            (Ok(s), true) => match self.store.verify_seal(&s.sealed, &s.mac).await {
                Ok(Some(true)) => Ok(s.sealed),
                Ok(Some(false) | None) => Err(
                    "its seal is not the record key's: someone other than the function wrote it"
                        .into(),
                ),
                Err(e) => Err(format!("its seal could not be checked ({})", e.chain())),
            },
            (Err(_), true) => Err(
                "it is not sealed: written by someone other than the function, or before records were sealed"
                    .into(),
            ),
            // Sealed, but this process has no key to check it with (an operator's shell without
            // KILLSWITCH_RECORD_KEY_ARN): not trusted, and the fix is said.
            (Ok(_), false) => Err(
                "it is sealed, but KILLSWITCH_RECORD_KEY_ARN is not set here to check it (the stack's RecordKeyArn output)"
                    .into(),
            ),
            (Err(_), false) => Ok(stored.to_owned()),
        }
    }

    /// A stored record, checked ([`Self::unsealed`]); one not trusted is reported and replaced
    /// by a fresh record saying why.
    pub(super) async fn open(
        &self,
        text: &str,
        account: &AccountId,
        key: &AccessKeyId,
    ) -> IncidentRecord {
        let untrusted = |why: String| {
            warn!(reason = %why, "incident record not trusted");
            IncidentRecord {
                untrusted: Some(why),
                ..IncidentRecord::new(account, key)
            }
        };
        let body = match self.unsealed(text).await {
            Ok(body) => body,
            Err(why) => return untrusted(why),
        };
        let record: IncidentRecord = serde_json::from_str(&body).unwrap_or_else(|e| {
            warn!(error = %e, "incident record unreadable; starting a new one");
            IncidentRecord::new(account, key)
        });
        // The seal covers the record's text, and the text names its key: another key's sealed
        // record copied under this key's ID is no record of this key.
        if record.access_key_id != key.as_str() || record.account != account.as_str() {
            return untrusted(format!(
                "it is the sealed record of key {} in account {}, stored under this key's ID",
                record.access_key_id, record.account
            ));
        }
        record
    }
}
