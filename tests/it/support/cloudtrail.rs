//! CloudTrail's Event history as the fake plays it (the `ActivityLog` port), and the events
//! tests seed it with.

use std::time::Duration;

use chrono::{DateTime, Utc};
use killswitch::error::Error;
use killswitch::ports::{ActivityLog, ActivityPage, ApiCall, LookupQuery};

use super::FakeCloud;

impl ActivityLog for FakeCloud {
    async fn enabled_regions(&self) -> Result<Vec<String>, Error> {
        self.rtt().await;
        let s = self.enter("account:ListRegions", "")?;
        s.enabled_regions.clone().ok_or_else(|| Error::Aws {
            op: "account:ListRegions",
            code: Some("AccessDeniedException".into()),
            source: "not allowed".into(),
        })
    }

    async fn lookup_page(&self, q: LookupQuery<'_>) -> Result<ActivityPage, Error> {
        self.rtt().await;
        let mut s = self.enter("cloudtrail:LookupEvents", q.region)?;
        s.lookups
            .push((q.region.to_owned(), tokio::time::Instant::now()));
        if let Some(codes) = s.lookup_faults.get_mut(q.region)
            && !codes.is_empty()
        {
            let code = codes.remove(0);
            return Err(Error::Aws {
                op: "cloudtrail:LookupEvents",
                code: Some(code.clone()),
                source: code.into(),
            });
        }
        // The strictest reading of "2 calls per second": never a third within any 1 s window.
        let now = tokio::time::Instant::now();
        let recent = s
            .lookups_accepted
            .iter()
            .filter(|(r, at)| r == q.region && now.duration_since(*at) <= Duration::from_secs(1))
            .count();
        if recent >= 2 {
            s.lookups_throttled.push((q.region.to_owned(), now));
            return Err(Error::Aws {
                op: "cloudtrail:LookupEvents",
                code: Some("ThrottlingException".into()),
                source: "Rate exceeded".into(),
            });
        }
        s.lookups_accepted.push((q.region.to_owned(), now));
        let by_key = s
            .key_events
            .get(&(q.key.to_string(), q.region.to_owned()))
            .cloned();
        let mut all: Vec<ApiCall> = by_key
            .or_else(|| s.events.get(q.region).cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.time >= q.start && c.time <= q.end)
            .collect();
        all.sort_by_key(|c| std::cmp::Reverse(c.time));
        let offset: usize = q.next_token.as_deref().map_or(0, |t| t.parse().unwrap());
        let page: Vec<ApiCall> = all.iter().skip(offset).take(50).cloned().collect();
        let next = (offset + 50 < all.len()).then(|| (offset + 50).to_string());
        Ok(ActivityPage {
            calls: page,
            next_token: next,
        })
    }
}

pub fn api_call(name: &str, time: DateTime<Utc>, error: Option<&str>) -> ApiCall {
    ApiCall {
        event_id: Some(format!("{name}-{}", time.timestamp_millis())),
        time,
        event_name: name.into(),
        event_source: "iam.amazonaws.com".into(),
        region: "us-east-1".into(),
        source_ip: Some("203.0.113.77".into()),
        user_agent: Some("aws-cli/2.15.0".into()),
        error_code: error.map(str::to_owned),
        read_only: Some(name.starts_with("List") || name.starts_with("Get")),
        request_parameters: None,
        response_elements: None,
        caller: None,
    }
}
