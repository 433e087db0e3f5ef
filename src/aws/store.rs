//! `IncidentStore` over DynamoDB and `FollowUpQueue` over SQS, both in the function's own stack.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::MacAlgorithmSpec;

use super::{AwsClients, aws_err};
use crate::error::Error;
use crate::ports::{FollowUpQueue, IncidentStore, Listed};

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

    fn seals(&self) -> bool {
        self.record_key_arn.is_some()
    }

    async fn seal(&self, text: &str) -> Result<Option<String>, Error> {
        let Some(key) = self.record_key_arn.as_deref() else {
            return Ok(None);
        };
        let out = self
            .kms
            .generate_mac()
            .key_id(key)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(text.as_bytes()))
            .send()
            .await
            .map_err(aws_err("kms:GenerateMac"))?;
        Ok(out.mac().map(|m| hex(m.as_ref())))
    }

    async fn verify_seal(&self, text: &str, mac: &str) -> Result<Option<bool>, Error> {
        let Some(key) = self.record_key_arn.as_deref() else {
            return Ok(None);
        };
        let Some(mac) = unhex(mac) else {
            return Ok(Some(false));
        };
        let verified = self
            .kms
            .verify_mac()
            .key_id(key)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(text.as_bytes()))
            .mac(Blob::new(mac))
            .send()
            .await;
        match verified {
            Ok(out) => Ok(Some(out.mac_valid())),
            // KMS answers KMSInvalidMacException for a MAC that is not the key's.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_kms_invalid_mac_exception()) =>
            {
                Ok(Some(false))
            }
            Err(e) => Err(aws_err("kms:VerifyMac")(e)),
        }
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

    async fn scan(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        let table = self.table("dynamodb:Scan")?;
        let mut listed = Vec::new();
        let mut start = None;
        loop {
            // Consistent: a claim the watchdog took a minute ago must be seen as taken.
            let page = self
                .dynamodb
                .scan()
                .table_name(table)
                .consistent_read(true)
                .filter_expression("begins_with(pk, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
                .projection_expression("pk, claimed_at")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(aws_err("dynamodb:Scan"))?;
            listed.extend(page.items().iter().filter_map(|item| {
                let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok());
                Some(Listed {
                    id: text("pk")?.clone(),
                    claimed_at: text("claimed_at")
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&chrono::Utc)),
                })
            }));
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                Some(_) | None => return Ok(listed),
            }
        }
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 256 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
