//! The incident table (the `IncidentStore` port) and the follow-up queue (`FollowUpQueue`).

use std::time::Duration;

use killswitch::error::Error;
use killswitch::ports::{FollowUpQueue, IncidentStore};

use super::FakeCloud;

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
        s.items.insert(id.into(), "claimed".into());
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
}

impl FollowUpQueue for FakeCloud {
    async fn hand_off(&self, body: &str, delay: Duration) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("sqs:SendMessage", "")?;
        s.queued.push((body.into(), delay));
        Ok(())
    }
}
