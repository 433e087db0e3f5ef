//! The canary (a scheduled rule, `{"killswitch": "canary"}`): proves the chain end to end at the
//! interval the stack chooses. The rule fires, the function starts with its live configuration,
//! its role writes an inline deny on a user (the call that contains a leaked user's key,
//! `iam:PutUserPolicy`) and IAM reads it back; then the function says so with a heartbeat
//! metric, which an alarm watches: it pages when a run fails **or when none comes** (missing data
//! is breaching), so a disabled rule, a function that cannot start or is throttled to zero, a
//! role that lost its rights or a dry run switched on in the live configuration all page.
//!
//! The heartbeat is a CloudWatch embedded-metric-format line on stdout: Lambda sends stdout to
//! the function's log group and CloudWatch Logs turns the line into the metric, so the role needs
//! no `cloudwatch:PutMetricData` and the function no other client.
//!
//! The canary writes on `KILLSWITCH_CANARY_USER` only (the stack's `<stack>-canary`: no policy,
//! no key, `AWSDenyAll` as its boundary), never on a name from its payload: anyone allowed to
//! invoke the function may send `{"killswitch": "canary"}`, and it changes nothing else.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tracing::{error, info};

use crate::config::Config;
use crate::error::Error;
use crate::ports::{Identity, Notifier, PolicyTarget};
use crate::report::ts;

/// The inline policy the canary writes on its user (never `KillSwitchDenyAll`: the canary user is
/// not contained, and `status` must not say so).
pub const POLICY_NAME: &str = "KillSwitchCanary";
/// Where the heartbeat metric lives; `template.yaml`'s canary alarm reads the same.
pub const NAMESPACE: &str = "Killswitch";
/// 1 for a run that passed, 0 for one that failed; no value at all when no run came.
pub const METRIC: &str = "CanaryPassed";
/// The metric's one dimension: the function's name.
pub const DIMENSION: &str = "FunctionName";

/// What one canary run did.
#[derive(Debug, Serialize)]
pub struct CanaryRun {
    pub user: String,
    pub policy: &'static str,
    /// A HEARTBEAT notice went to the alert topic (`KILLSWITCH_CANARY_NOTICE`).
    pub notice: bool,
    /// The embedded-metric-format line written to stdout.
    pub heartbeat: String,
}

/// Runs the canary at `now` as `function` (the metric's dimension). A failure is paged at once
/// and returned as `ContainmentFailed`: containment of a real key would fail the same way.
pub async fn run<C: Identity + Notifier>(
    cloud: &C,
    config: &Config,
    function: &str,
    now: DateTime<Utc>,
) -> Result<CanaryRun, Error> {
    let Some(user) = config.jobs.canary_user.clone() else {
        return Err(Error::Config {
            name: "KILLSWITCH_CANARY_USER",
            reason: "not set: this function has no canary".into(),
        });
    };
    let mut checked = check(cloud, &user, config.dry_run, now).await;
    if checked.is_ok() && config.jobs.canary_notice {
        checked = announce(cloud, &user, now).await;
    }
    let heartbeat = heartbeat(function, checked.is_ok(), now);
    // The metric is the log line itself (embedded metric format), on stdout as Lambda wants it.
    println!("{heartbeat}");
    match checked {
        Ok(()) => {
            info!(user = %user, "canary passed");
            Ok(CanaryRun {
                user,
                policy: POLICY_NAME,
                notice: config.jobs.canary_notice,
                heartbeat,
            })
        }
        Err(failure) => {
            error!(user = %user, failure = %failure, "canary FAILED");
            page_failure(cloud, &user, &failure, now).await;
            Err(Error::ContainmentFailed(format!("canary: {failure}")))
        }
    }
}

/// The write and its read-back. `Err` says which call failed and why. A dry run writes nothing
/// and fails: switched on in the live configuration, it leaves every leaked key uncontained (a
/// stack deployed with `DryRun` has no canary).
async fn check<C: Identity>(
    cloud: &C,
    user: &str,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<(), String> {
    if dry_run {
        return Err(
            "KILLSWITCH_DRY_RUN is on: the function writes nothing, so a leaked key would NOT be contained".into(),
        );
    }
    let target = PolicyTarget::User(user.to_owned());
    let written = document(now);
    cloud
        .put_policy(&target, POLICY_NAME, &written)
        .await
        .map_err(|e| format!("writing {POLICY_NAME} on user {user}: {}", e.chain()))?;
    let read = cloud
        .read_policy(&target, POLICY_NAME)
        .await
        .map_err(|e| format!("reading {POLICY_NAME} back from user {user}: {}", e.chain()))?;
    read_back_is(read.as_deref(), &written, user)
}

/// `Ok` when what IAM returned is the document this run wrote (as JSON: IAM may lay it out
/// differently).
fn read_back_is(read: Option<&str>, written: &str, user: &str) -> Result<(), String> {
    let parsed = |d: &str| serde_json::from_str::<serde_json::Value>(d).ok();
    match read {
        Some(r) if parsed(r).is_some() && parsed(r) == parsed(written) => Ok(()),
        Some(_) => Err(format!(
            "{POLICY_NAME} read back from user {user} is not the document just written"
        )),
        None => Err(format!(
            "{POLICY_NAME} was written on user {user} but is not there when read back"
        )),
    }
}

/// A deny of everything, as containment writes it, named for this run: a read-back that finds
/// it proves this run's write, not an earlier one's.
pub fn document(now: DateTime<Utc>) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": format!("KillSwitchCanary{}", now.format("%Y%m%d%H%M%S")),
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*"
        }]
    })
    .to_string()
}

/// The heartbeat in CloudWatch's embedded metric format: `CanaryPassed` 1 or 0 for `function`.
pub fn heartbeat(function: &str, passed: bool, at: DateTime<Utc>) -> String {
    json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[DIMENSION]],
                "Metrics": [{"Name": METRIC, "Unit": "Count"}]
            }]
        },
        DIMENSION: function,
        METRIC: u8::from(passed),
    })
    .to_string()
}

/// The function's name in its ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`),
/// as the alarm's dimension names it.
pub fn function_name(arn: &str) -> &str {
    arn.split(':')
        .nth(6)
        .filter(|n| !n.is_empty())
        .unwrap_or(arn)
}

/// The HEARTBEAT notice, for a heartbeat checked from another account (`docs/protecting.md`).
async fn announce<N: Notifier>(cloud: &N, user: &str, now: DateTime<Utc>) -> Result<(), String> {
    let body = format!(
        "killswitch canary at {}: the schedule fired, the function started, wrote a deny on the canary user and read it back (user {user}, policy {POLICY_NAME}). This notice comes on every success; its absence is the alarm.",
        ts(now)
    );
    cloud
        .publish("[killswitch] HEARTBEAT ok: canary passed", &body)
        .await
        .map_err(|e| format!("publishing the HEARTBEAT notice: {}", e.chain()))
}

/// Pages a failed run at once (the alarm on the metric comes a period later).
async fn page_failure<N: Notifier>(cloud: &N, user: &str, failure: &str, now: DateTime<Utc>) {
    let body = format!(
        "The killswitch canary FAILED at {}: {failure}.\n\nThe canary makes the call that contains a leaked user's key (iam:PutUserPolicy, an inline deny) on its own user {user}, which has no permissions. If it cannot, a real key would not be contained either.\n\nCheck now:\n  killswitch doctor\nthe function's role (iam:PutUserPolicy and iam:GetUserPolicy on users, not denied by a permissions boundary or an SCP), that the user {user} still exists (the stack creates it), and the function's errors and recent configuration changes (a TAMPERING page?).",
        ts(now)
    );
    if let Err(e) = cloud
        .publish(
            "[killswitch] CANARY FAILED: the responder could not contain its canary",
            &body,
        )
        .await
    {
        error!(error = %e.chain(), "canary: the failure could not be paged; the alarm will");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_runs_document_reads_back_as_written() {
        let now = Utc::now();
        let written = document(now);
        let laid_out = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(&written).unwrap(),
        )
        .unwrap();
        assert_eq!(read_back_is(Some(&laid_out), &written, "c-canary"), Ok(()));
        let earlier = document(now - chrono::TimeDelta::hours(1));
        for read in [Some(earlier.as_str()), Some("not json"), None] {
            assert!(
                read_back_is(read, &written, "c-canary").is_err(),
                "{read:?}"
            );
        }
    }

    #[test]
    fn the_heartbeat_names_the_function_the_alarm_watches() {
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:stack-fn:live";
        assert_eq!(function_name(arn), "stack-fn");
        let beat: serde_json::Value =
            serde_json::from_str(&heartbeat(function_name(arn), false, Utc::now())).unwrap();
        assert_eq!(beat[METRIC], 0);
        assert_eq!(beat[DIMENSION], "stack-fn");
    }
}
