//! `ActivityLog` over CloudTrail `LookupEvents`, one Region per call.

use aws_sdk_account::types::RegionOptStatus;
use aws_sdk_cloudtrail::config::Region;
use aws_sdk_cloudtrail::config::retry::RetryConfig;
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
            // The investigation paces and retries itself: SDK retries would break the 2 calls/s.
            .retry_config(RetryConfig::disabled())
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
                let record: Option<Value> = e
                    .cloud_trail_event()
                    .and_then(|s| serde_json::from_str(s).ok());
                match record.as_ref().and_then(ApiCall::from_record) {
                    Some(mut call) => {
                        if call.region.is_empty() {
                            call.region = q.region.to_owned();
                        }
                        Some(call)
                    }
                    // Summary fields only, when the record is missing or unreadable.
                    None => Some(ApiCall {
                        event_id: e.event_id().map(str::to_owned),
                        time: e.event_time().and_then(to_chrono)?,
                        event_name: e.event_name().unwrap_or("unknown").to_owned(),
                        event_source: e.event_source().unwrap_or("unknown").to_owned(),
                        region: q.region.to_owned(),
                        source_ip: None,
                        user_agent: None,
                        error_code: None,
                        read_only: e.read_only().map(|r| r == "true"),
                        request_parameters: None,
                        response_elements: None,
                        caller: None,
                    }),
                }
            })
            .collect();
        Ok(ActivityPage {
            calls,
            next_token: out.next_token().map(str::to_owned),
        })
    }

    async fn enabled_regions(&self) -> Result<Vec<String>, Error> {
        let mut regions = Vec::new();
        let mut pages = self
            .account
            .list_regions()
            .region_opt_status_contains(RegionOptStatus::Enabled)
            .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(aws_err("account:ListRegions"))?;
            regions.extend(
                page.regions()
                    .iter()
                    .filter_map(|r| r.region_name().map(str::to_owned)),
            );
        }
        Ok(regions)
    }
}
