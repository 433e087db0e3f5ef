//! `IncidentStore` over DynamoDB and `FollowUpQueue` over SQS, both in the function's own stack.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{AwsClients, aws_err};
use crate::error::Error;
use crate::ports::{FollowUpQueue, IncidentStore};

fn not_configured(op: &'static str, what: &str) -> Error {
    Error::Aws {
        op,
        code: None,
        source: format!("{what} is not configured").into(),
    }
}

impl AwsClients {
    fn table(&self, op: &'static str) -> Result<&str, Error> {
        self.incident_table
            .as_deref()
            .ok_or_else(|| not_configured(op, "KILLSWITCH_INCIDENT_TABLE"))
    }
}

impl IncidentStore for AwsClients {
    async fn load_record(&self, id: &str) -> Result<Option<String>, Error> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(self.table("dynamodb:GetItem")?)
            .key("pk", AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(aws_err("dynamodb:GetItem"))?;
        Ok(out
            .item()
            .and_then(|i| i.get("record"))
            .and_then(|v| v.as_s().ok())
            .cloned())
    }

    async fn save_record(&self, id: &str, record: &str) -> Result<(), Error> {
        self.dynamodb
            .put_item()
            .table_name(self.table("dynamodb:PutItem")?)
            .item("pk", AttributeValue::S(id.to_owned()))
            .item("record", AttributeValue::S(record.to_owned()))
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err("dynamodb:PutItem"))
    }

    async fn claim(&self, id: &str) -> Result<bool, Error> {
        self.put_if_absent(id, None).await
    }

    async fn claim_slot(&self, id: &str, expires: i64) -> Result<bool, Error> {
        self.put_if_absent(id, Some(expires)).await
    }

    async fn release(&self, id: &str) -> Result<(), Error> {
        self.dynamodb
            .delete_item()
            .table_name(self.table("dynamodb:DeleteItem")?)
            .key("pk", AttributeValue::S(id.to_owned()))
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err("dynamodb:DeleteItem"))
    }
}

impl AwsClients {
    /// A conditional put: `true` when this call created the item.
    async fn put_if_absent(&self, id: &str, expires: Option<i64>) -> Result<bool, Error> {
        let mut put = self
            .dynamodb
            .put_item()
            .table_name(self.table("dynamodb:PutItem")?)
            .item("pk", AttributeValue::S(id.to_owned()))
            .item(
                "claimed_at",
                AttributeValue::S(chrono::Utc::now().to_rfc3339()),
            )
            .condition_expression("attribute_not_exists(pk)");
        if let Some(at) = expires {
            // DynamoDB's TTL deletes expired items only eventually (often days later): a slot or
            // lease whose holder died must be free once it expires, not once it is swept.
            put = put
                .item("expires", AttributeValue::N(at.to_string()))
                .condition_expression("attribute_not_exists(pk) OR expires < :now")
                .expression_attribute_values(
                    ":now",
                    AttributeValue::N(chrono::Utc::now().timestamp().to_string()),
                );
        }
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(aws_err("dynamodb:PutItem")(e)),
        }
    }
}

impl FollowUpQueue for AwsClients {
    async fn hand_off(&self, body: &str, delay: Duration) -> Result<(), Error> {
        let url = self
            .follow_up_queue_url
            .as_deref()
            .ok_or_else(|| not_configured("sqs:SendMessage", "KILLSWITCH_FOLLOW_UP_QUEUE_URL"))?;
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .delay_seconds(i32::try_from(delay.as_secs()).unwrap_or(900))
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err("sqs:SendMessage"))
    }
}
