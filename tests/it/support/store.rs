//! The incident table (the `IncidentStore` port) and the follow-up queue (`FollowUpQueue`).

use std::time::Duration;

use killswitch::error::Error;
use killswitch::ports::{FollowUpQueue, IncidentStore, Listed};

use super::FakeCloud;

/// How a claim is kept in the fake's items (DynamoDB keeps its `claimed_at` attribute).
const CLAIMED: &str = "claimed at ";

/// A claim item taken at `at`, as the fake stores it.
fn claimed_at(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("{CLAIMED}{}", at.to_rfc3339())
}

impl IncidentStore for FakeCloud {
    async fn load_record(&self, id: &str) -> Result<Option<String>, Error> {
        self.rtt().await;
        let s = self.enter("dynamodb:GetItem", id)?;
        Ok(s.items.get(id).cloned())
    }

    async fn save_record(&self, id: &str, record: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("dynamodb:PutItem", id)?;
        s.items.insert(id.into(), record.into());
        Ok(())
    }

    async fn claim(&self, id: &str) -> Result<bool, Error> {
        self.rtt().await;
        tokio::task::yield_now().await;
        let mut s = self.enter("dynamodb:PutItem", id)?;
        if s.items.contains_key(id) {
            return Ok(false);
        }
        s.items.insert(id.into(), claimed_at(chrono::Utc::now()));
        Ok(true)
    }

    async fn claim_slot(&self, id: &str, _expires: i64) -> Result<bool, Error> {
        self.rtt().await;
        let mut s = self.state.lock().unwrap();
        if let Some(code) = s.fail.get("dynamodb:PutItem(slot)") {
            return Err(Error::Aws {
                op: "dynamodb:PutItem",
                code: Some(code.clone()),
                source: code.clone().into(),
            });
        }
        Ok(s.slots.insert(id.to_owned()))
    }

    async fn release(&self, id: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("dynamodb:DeleteItem", id)?;
        // One table in DynamoDB: a slot is an item like any other.
        s.items.remove(id);
        s.slots.remove(id);
        Ok(())
    }

    async fn scan(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        self.rtt().await;
        let s = self.enter("dynamodb:Scan", prefix)?;
        let mut listed: Vec<Listed> = s
            .items
            .iter()
            .filter(|(id, _)| id.starts_with(prefix))
            .map(|(id, item)| Listed {
                id: id.clone(),
                claimed_at: item
                    .strip_prefix(CLAIMED)
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&chrono::Utc)),
            })
            .collect();
        // DynamoDB promises no order: neither does the fake (a map), but a test reads better sorted.
        listed.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(listed)
    }

    fn seals(&self) -> bool {
        self.state.lock().unwrap().record_key.is_some()
    }

    async fn seal(&self, text: &str) -> Result<Option<String>, Error> {
        if !self.seals() {
            return Ok(None);
        }
        self.rtt().await;
        let s = self.enter("kms:GenerateMac", "record key")?;
        Ok(s.record_key.as_deref().map(|k| fake_mac(k, text)))
    }

    async fn verify_seal(&self, text: &str, mac: &str) -> Result<Option<bool>, Error> {
        if !self.seals() {
            return Ok(None);
        }
        self.rtt().await;
        let s = self.enter("kms:VerifyMac", "record key")?;
        Ok(s.record_key.as_deref().map(|k| fake_mac(k, text) == mac))
    }
}

impl FollowUpQueue for FakeCloud {
    async fn hand_off(&self, body: &str, delay: Duration) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("sqs:SendMessage", "")?;
        s.queued.push((body.into(), delay));
        Ok(())
    }
}

/// A MAC only the holder of the record key's secret can make (the fake KMS HMAC key).
fn fake_mac(secret: &str, text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(format!("{secret}\n{text}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
