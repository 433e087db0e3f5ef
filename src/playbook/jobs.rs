//! The stack's scheduled jobs (`{"killswitch": "watchdog"}`, `{"killswitch": "canary"}`), run by
//! name: not incidents, and nothing in their payload but the job's name.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tracing::info;

use super::contain::Home;
use super::{canary, watchdog};
use crate::config::Config;
use crate::error::Error;
use crate::trigger::Job;

/// Runs `job` at `now` as the function `function_arn` (the invocation's ARN); its result under
/// the job's name.
pub async fn run<C: Home>(
    cloud: &C,
    config: &Config,
    job: Job,
    function_arn: &str,
    now: DateTime<Utc>,
) -> Result<Value, Error> {
    let result = match job {
        Job::Watchdog => serde_json::to_value(watchdog::run(cloud, config, now).await?),
        Job::Canary => {
            let function = canary::function_name(function_arn);
            serde_json::to_value(canary::run(cloud, config, function, now).await?)
        }
    }
    .unwrap_or_default();
    info!(job = job.name(), result = %result, "scheduled job");
    Ok(json!({ job.name(): result }))
}
