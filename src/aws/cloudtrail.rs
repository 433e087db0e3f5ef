//! `ActivityLog` over CloudTrail `LookupEvents`, one Region per call.

use aws_sdk_cloudtrail::config::Region;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use serde_json::Value;

use super::{AwsClients, aws_err, to_chrono};
use crate::error::Error;
use crate::ports::{ActivityLog, ActivityPage, ApiCall, LookupQuery};

/// LookupEvents returns at most 50 events per call.
pub const PAGE_SIZE: i32 = 50;

impl AwsClients {
    fn cloudtrail_in(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        let conf = self
            .cloudtrail
            .config()
            .to_builder()
            .region(Region::new(region.to_owned()))
            .build();
        aws_sdk_cloudtrail::Client::from_conf(conf)
    }
}

impl ActivityLog for AwsClients {
    async fn lookup_page(&self, q: LookupQuery<'_>) -> Result<ActivityPage, Error> {
        let attribute = LookupAttribute::builder()
            .attribute_key(LookupAttributeKey::AccessKeyId)
            .attribute_value(q.key.as_str())
            .build()
            .map_err(|e| Error::Aws {
                op: "cloudtrail:LookupEvents",
                code: None,
                source: Box::new(e),
            })?;
        let out = self
            .cloudtrail_in(q.region)
            .lookup_events()
            .lookup_attributes(attribute)
            .start_time(aws_smithy_types::DateTime::from_secs(q.start.timestamp()))
            .end_time(aws_smithy_types::DateTime::from_secs(q.end.timestamp()))
            .max_results(PAGE_SIZE)
            .set_next_token(q.next_token)
            .send()
            .await
            .map_err(aws_err("cloudtrail:LookupEvents"))?;
        let calls = out
            .events()
            .iter()
            .filter_map(|e| {
                let detail: Value = e
                    .cloud_trail_event()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or(Value::Null);
                let text = |k: &str| detail.get(k).and_then(Value::as_str).map(str::to_owned);
                Some(ApiCall {
                    time: e.event_time().and_then(to_chrono)?,
                    event_name: e.event_name().unwrap_or("unknown").to_owned(),
                    event_source: e.event_source().unwrap_or("unknown").to_owned(),
                    region: text("awsRegion").unwrap_or_else(|| q.region.to_owned()),
                    source_ip: text("sourceIPAddress"),
                    user_agent: text("userAgent"),
                    error_code: text("errorCode"),
                    read_only: detail
                        .get("readOnly")
                        .and_then(Value::as_bool)
                        .or_else(|| e.read_only().map(|r| r == "true")),
                })
            })
            .collect();
        Ok(ActivityPage {
            calls,
            next_token: out.next_token().map(str::to_owned),
        })
    }
}
