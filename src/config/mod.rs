//! Configuration, from `KILLSWITCH_*` environment variables only. Bad values fail at start-up,
//! naming the variable. Every setting is declared once in [`settings::SETTINGS`] (default,
//! range, whether it is secret, how `template.yaml` sets it); `docs/configuration.md` explains
//! each, and tests hold both to the declaration.

pub mod accepts;
pub mod jobs;
mod parse;
mod root_keys;
pub mod settings;
#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::error::Error;
pub use crate::vocab::is_region_name;
use crate::vocab::{AccountId, Arn};
use parse::{Pair, Vars, incident_table, is_role_arn, is_role_name, record_key};
pub use root_keys::RootKeys;
use root_keys::root_keys;

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub topic_arn: String,
    pub protected: Vec<String>,
    pub dry_run: bool,
    pub lookback: Duration,
    pub verify_delay: Duration,
    /// How long after containment the follow-through watches it (`playbook::follow::watch`).
    pub watch: Duration,
    pub regions: Vec<String>,
    pub max_events_per_region: usize,
    pub investigation_budget: Duration,
    pub follow_pivots: bool,
    /// `None`: keys of other accounts are rejected.
    pub members: Option<Members>,
    /// `None`: the follow-through runs in the same invocation.
    pub follow_up_queue_url: Option<String>,
    /// `None`: no incident store (no de-duplication of notices, no restore history).
    pub incident_table: Option<String>,
    pub jobs: jobs::Jobs,
    /// `None`: records are not sealed (and records read are trusted as they are).
    pub record_key_arn: Option<String>,
    /// Roles whose findings revoke every session (`["*"]` = all); the others lose the leaked
    /// session only.
    pub role_wide: Vec<String>,
    /// How long after the first report the second CloudTrail search (the sweep) runs.
    pub sweep_after: Duration,
    /// How late CloudTrail may deliver an event: the sweep re-reads this much before the first
    /// search's end.
    pub cloudtrail_lag: Duration,
    /// Without a queue, this process waits for the sweep and runs it (`respond` without
    /// `--no-sweep`).
    pub sweep_inline: bool,
    /// Page KEY NOT FOUND (a key IAM does not know). A command-line request does not unless
    /// asked (`--notify-not-found`): a typo in a key ID is not an incident.
    pub page_key_not_found: bool,
    /// `None`: notices go to the email topic only.
    pub chat_topic_arn: Option<String>,
    /// Update the Security Hub finding's workflow (never suppress it).
    pub security_hub_updates: bool,
    /// Contain on findings an insider can cause on purpose (`…Custom` types, custom detection
    /// rules); otherwise they are notify-only.
    pub act_on_custom_findings: bool,
    /// `None`: no organization-level quarantine.
    pub quarantine: Option<Quarantine>,
    /// What a verified finding on a member account's root access key does.
    pub root_keys: RootKeys,
    /// `None`: Identity Center sessions are notify-only (with the manual steps).
    pub identity_center: Option<IdentityCenter>,
    pub accepts: accepts::Accepts,
}

/// How killswitch contains IAM Identity Center portal sessions.
#[derive(Clone, PartialEq)]
pub struct IdentityCenter {
    /// `identity-center-role.yaml`'s responder role, in Identity Center's administrator account.
    pub role_arn: String,
    pub external_id: String,
    /// Identity Center's home Region, when it is not the function's.
    pub region: Option<String>,
    /// The customer-managed policy every permission set references.
    pub policy_name: String,
    /// Also remove the user's direct account assignment (recorded for restore).
    pub remove_assignments: bool,
    /// The operators' Restore role (restore only).
    pub restore_role_arn: Option<String>,
}

impl std::fmt::Debug for IdentityCenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityCenter")
            .field("role_arn", &self.role_arn)
            .field("external_id", &"<redacted>")
            .field("region", &self.region)
            .field("policy_name", &self.policy_name)
            .field("remove_assignments", &self.remove_assignments)
            .field("restore_role_arn", &self.restore_role_arn)
            .finish()
    }
}

/// The Organizations role that attaches the quarantine SCP.
#[derive(Clone, PartialEq)]
pub struct Quarantine {
    pub role_arn: String,
    pub external_id: String,
}

impl std::fmt::Debug for Quarantine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quarantine")
            .field("role_arn", &self.role_arn)
            .field("external_id", &"<redacted>")
            .finish()
    }
}

impl Config {
    /// Whether a finding on `role` revokes every session of the role.
    pub fn role_wide(&self, role: &str) -> bool {
        self.role_wide
            .iter()
            .any(|r| r == "*" || r.eq_ignore_ascii_case(role))
    }
}

/// How to reach the other accounts of an organization.
#[derive(Clone, PartialEq)]
pub struct Members {
    pub role_name: String,
    pub external_id: String,
    /// The accounts the function may enter; never empty (no "any account").
    pub accounts: Vec<AccountId>,
}

impl Members {
    pub fn allows(&self, account: &AccountId) -> bool {
        self.accounts.contains(account)
    }
}

// The external ID is not a secret in IAM's model, but it is one of the two keys to every member
// account: it stays out of logs and reports.
impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members")
            .field("role_name", &self.role_name)
            .field("external_id", &"<redacted>")
            .field("accounts", &self.accounts)
            .finish()
    }
}

/// The `ACCOUNT:NAME` tail of a queue's ARN, from its URL (`…/ACCOUNT/NAME`): what an SQS
/// event's `eventSourceARN` must end with.
pub fn queue_arn(url: &str) -> Option<String> {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let account = parts
        .next()
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))?;
    Some(format!(":{account}:{name}"))
}

impl Config {
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// For the command line's dry runs, `--no-notify` and `status`: without
    /// `KILLSWITCH_TOPIC_ARN` the notices are printed, not published.
    pub fn from_env_without_topic() -> Result<Self, Error> {
        Self::from_lookup_with(|k| std::env::var(k).ok(), false)
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        Self::from_lookup_with(get, true)
    }

    fn from_lookup_with(
        get: impl Fn(&str) -> Option<String>,
        topic_required: bool,
    ) -> Result<Self, Error> {
        let vars = Vars::new(&get);
        let verify_delay = vars.number("KILLSWITCH_VERIFY_DELAY_SECONDS")?;
        let watch = vars.number("KILLSWITCH_WATCH_SECONDS")?;
        let sweep_minutes = vars.number("KILLSWITCH_SWEEP_MINUTES")?;
        // Shorter sweeps are for tests and drills on the local AWS only: real CloudTrail needs
        // minutes to deliver.
        let sweep_secs = vars.number_or("KILLSWITCH_SWEEP_SECONDS", sweep_minutes * 60)?;
        let config = Self {
            topic_arn: topic_arn(&vars, topic_required)?,
            protected: protected(&vars)?,
            dry_run: vars.flag("KILLSWITCH_DRY_RUN")?,
            follow_pivots: vars.flag("KILLSWITCH_FOLLOW_PIVOTS")?,
            lookback: hours(vars.number("KILLSWITCH_LOOKBACK_HOURS")?),
            verify_delay: Duration::from_secs(verify_delay),
            watch: Duration::from_secs(watch),
            max_events_per_region: vars.number("KILLSWITCH_MAX_EVENTS_PER_REGION")? as usize,
            investigation_budget: Duration::from_secs(
                vars.number("KILLSWITCH_INVESTIGATION_SECONDS")?,
            ),
            cloudtrail_lag: minutes(vars.number("KILLSWITCH_CLOUDTRAIL_LAG_MINUTES")?),
            sweep_after: Duration::from_secs(sweep_secs),
            regions: regions(&vars)?,
            members: members(&vars)?,
            follow_up_queue_url: follow_up_queue_url(&vars)?,
            incident_table: incident_table(&vars)?,
            jobs: jobs::parse(&vars)?,
            record_key_arn: record_key(&vars)?,
            role_wide: role_wide(&vars)?,
            chat_topic_arn: chat_topic_arn(&vars)?,
            security_hub_updates: vars.flag("KILLSWITCH_SECURITY_HUB_UPDATES")?,
            act_on_custom_findings: vars.flag("KILLSWITCH_ACT_ON_CUSTOM_FINDINGS")?,
            quarantine: quarantine(&vars)?,
            root_keys: root_keys(&vars)?,
            identity_center: identity_center(&vars)?,
            accepts: accepts::parse(&vars)?,
            sweep_inline: true,
            page_key_not_found: true,
        };
        health_trigger_region(&vars)?;
        verify_delay_fits(&vars, watch + verify_delay)?;
        Ok(config)
    }
}

fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3600)
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

pub(super) fn bad<T>(name: &'static str, reason: String) -> Result<T, Error> {
    Err(Error::Config { name, reason })
}

fn topic_arn(vars: &Vars<'_>, required: bool) -> Result<String, Error> {
    const NAME: &str = "KILLSWITCH_TOPIC_ARN";
    let topic_arn = match vars.text(NAME) {
        Some(t) => t,
        None if !required => return Ok(String::new()),
        None => return bad(
            NAME,
            "required (the SNS topic ARN for incident summaries; respond --dry-run, respond --no-notify, restore --dry-run and status need none)".into(),
        ),
    };
    if !is_topic_arn(&topic_arn, false) {
        return bad(
            NAME,
            format!("{topic_arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
        );
    }
    Ok(topic_arn)
}

/// `arn:PARTITION:sns:REGION:ACCOUNT:NAME`, the Region checked when `region_checked`.
fn is_topic_arn(text: &str, region_checked: bool) -> bool {
    Arn::parse(text).is_some_and(|a| {
        a.service == "sns"
            && !a.resource.is_empty()
            && !a.resource.contains(':')
            && (!region_checked || is_region_name(a.region))
    })
}

fn protected(vars: &Vars<'_>) -> Result<Vec<String>, Error> {
    let protected = vars.list("KILLSWITCH_PROTECTED_PRINCIPALS");
    // An entry that can never match protects nothing while looking like it does.
    if let Some(bad_entry) = protected.iter().find(|p| {
        p.starts_with("arn:")
            && Arn::parse(p).is_none_or(|a| a.of_type("user").or(a.of_type("role")).is_none())
    }) {
        return bad(
            "KILLSWITCH_PROTECTED_PRINCIPALS",
            format!(
                "{bad_entry:?} is not a user or role ARN (arn:aws:iam::ACCOUNT:user/NAME or :role/NAME; for a role session name its role)"
            ),
        );
    }
    Ok(protected)
}

fn regions(vars: &Vars<'_>) -> Result<Vec<String>, Error> {
    let regions = vars.list("KILLSWITCH_REGIONS");
    match regions.iter().find(|r| !is_region_name(r)) {
        Some(r) => bad(
            "KILLSWITCH_REGIONS",
            format!("{r:?} is not a Region name like eu-west-1"),
        ),
        None => Ok(regions),
    }
}

fn members(vars: &Vars<'_>) -> Result<Option<Members>, Error> {
    const ACCOUNTS: &str = "KILLSWITCH_MEMBER_ACCOUNTS";
    let Some(access) = vars.role_access(Pair {
        role: "KILLSWITCH_MEMBER_ROLE_NAME",
        external_id: "KILLSWITCH_MEMBER_EXTERNAL_ID",
        trusted_by: "the member role",
        role_ok: is_role_name,
        role_shape: "an IAM role name",
    })?
    else {
        if vars.text(ACCOUNTS).is_some() {
            return bad(
                ACCOUNTS,
                "needs KILLSWITCH_MEMBER_ROLE_NAME and KILLSWITCH_MEMBER_EXTERNAL_ID".into(),
            );
        }
        return Ok(None);
    };
    let accounts = vars
        .list(ACCOUNTS)
        .iter()
        .map(|a| {
            AccountId::parse(a).map_err(|_| Error::Config {
                name: ACCOUNTS,
                reason: format!("{a:?} is not a 12-digit account ID"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if accounts.is_empty() {
        return bad(
            ACCOUNTS,
            "required with KILLSWITCH_MEMBER_ROLE_NAME: list the account IDs the function may enter (there is no \"any account\")".into(),
        );
    }
    Ok(Some(Members {
        role_name: access.role,
        external_id: access.external_id,
        accounts,
    }))
}

fn follow_up_queue_url(vars: &Vars<'_>) -> Result<Option<String>, Error> {
    let url = vars.text("KILLSWITCH_FOLLOW_UP_QUEUE_URL");
    match &url {
        Some(u) if queue_arn(u).is_none() => bad(
            "KILLSWITCH_FOLLOW_UP_QUEUE_URL",
            format!(
                "{u:?} is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"
            ),
        ),
        Some(_) | None => Ok(url),
    }
}

fn role_wide(vars: &Vars<'_>) -> Result<Vec<String>, Error> {
    let roles = vars.list("KILLSWITCH_ROLE_WIDE_REVOCATION");
    match roles.iter().find(|r| *r != "*" && !is_role_name(r)) {
        Some(r) => bad(
            "KILLSWITCH_ROLE_WIDE_REVOCATION",
            format!("{r:?} is neither * nor a role name"),
        ),
        None => Ok(roles),
    }
}

fn chat_topic_arn(vars: &Vars<'_>) -> Result<Option<String>, Error> {
    let topic = vars.text("KILLSWITCH_CHAT_TOPIC_ARN");
    match &topic {
        Some(t) if !is_topic_arn(t, true) => bad(
            "KILLSWITCH_CHAT_TOPIC_ARN",
            format!("{t:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
        ),
        Some(_) | None => Ok(topic),
    }
}

const ROLE_ARN_SHAPE: &str = "a role ARN (arn:aws:iam::ACCOUNT:role/NAME)";

fn quarantine(vars: &Vars<'_>) -> Result<Option<Quarantine>, Error> {
    Ok(vars
        .role_access(Pair {
            role: "KILLSWITCH_QUARANTINE_ROLE_ARN",
            external_id: "KILLSWITCH_QUARANTINE_EXTERNAL_ID",
            trusted_by: "the quarantine role",
            role_ok: is_role_arn,
            role_shape: ROLE_ARN_SHAPE,
        })?
        .map(|a| Quarantine {
            role_arn: a.role,
            external_id: a.external_id,
        }))
}

fn identity_center(vars: &Vars<'_>) -> Result<Option<IdentityCenter>, Error> {
    const ROLE: &str = "KILLSWITCH_IDENTITY_CENTER_ROLE_ARN";
    const REMOVE: &str = "KILLSWITCH_IDENTITY_CENTER_REMOVE_ASSIGNMENTS";
    if vars.text(ROLE).is_none() && vars.text(REMOVE).is_some() {
        return bad(ROLE, format!("required when {REMOVE} is set"));
    }
    let Some(access) = vars.role_access(Pair {
        role: ROLE,
        external_id: "KILLSWITCH_IDENTITY_CENTER_EXTERNAL_ID",
        trusted_by: "the role",
        role_ok: is_role_arn,
        role_shape: ROLE_ARN_SHAPE,
    })?
    else {
        return Ok(None);
    };
    let region = vars.text("KILLSWITCH_IDENTITY_CENTER_REGION");
    if let Some(r) = region.as_deref().filter(|r| !is_region_name(r)) {
        return bad(
            "KILLSWITCH_IDENTITY_CENTER_REGION",
            format!("{r:?} is not a Region name"),
        );
    }
    let restore_role_arn = vars.text("KILLSWITCH_IDENTITY_CENTER_RESTORE_ROLE_ARN");
    if let Some(r) = restore_role_arn.as_deref().filter(|r| !is_role_arn(r)) {
        return bad(
            "KILLSWITCH_IDENTITY_CENTER_RESTORE_ROLE_ARN",
            format!("{r:?} is not {ROLE_ARN_SHAPE}"),
        );
    }
    Ok(Some(IdentityCenter {
        role_arn: access.role,
        external_id: access.external_id,
        region,
        policy_name: identity_center_policy(vars)?,
        remove_assignments: vars.flag(REMOVE)?,
        restore_role_arn,
    }))
}

fn identity_center_policy(vars: &Vars<'_>) -> Result<String, Error> {
    let name = vars
        .text("KILLSWITCH_IDENTITY_CENTER_POLICY")
        .unwrap_or_else(|| "KillSwitchDeny".into());
    if name.len() > 128
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    {
        return bad(
            "KILLSWITCH_IDENTITY_CENTER_POLICY",
            format!("{name:?} is not a managed policy name (1-128 of letters, digits and +=,.@_-)"),
        );
    }
    Ok(name)
}

/// Global Health RISK events reach EventBridge only in us-east-1 (backup us-west-2): a function
/// deployed elsewhere with the Health trigger would wait for events that never come. Refusing
/// to start makes that loud.
fn health_trigger_region(vars: &Vars<'_>) -> Result<(), Error> {
    if vars.flag("KILLSWITCH_HEALTH_TRIGGER")?
        && let Some(region) = vars.text("AWS_REGION")
        && !HEALTH_REGIONS.contains(&region.as_str())
    {
        return bad(
            "KILLSWITCH_HEALTH_TRIGGER",
            format!(
                "AWS Health credential-risk events arrive only in us-east-1 (backup us-west-2), not in {region}: deploy there or turn the Health trigger off"
            ),
        );
    }
    Ok(())
}

fn verify_delay_fits(vars: &Vars<'_>, verify_delay: u64) -> Result<(), Error> {
    let Some(timeout) = vars.text("KILLSWITCH_FUNCTION_TIMEOUT_SECONDS") else {
        return Ok(());
    };
    let timeout: u64 = timeout.parse().map_err(|_| Error::Config {
        name: "KILLSWITCH_FUNCTION_TIMEOUT_SECONDS",
        reason: format!("{timeout:?} is not a number of seconds"),
    })?;
    if verify_delay + VERIFY_HEADROOM_SECS > timeout {
        return bad(
            "KILLSWITCH_VERIFY_DELAY_SECONDS",
            format!(
                "{verify_delay} s (the first-minute watch and the verification delay after it) does not fit in the function's {timeout} s timeout with {VERIFY_HEADROOM_SECS} s to spare for the re-check and the notice"
            ),
        );
    }
    Ok(())
}

/// Where EventBridge receives global AWS Health events.
pub const HEALTH_REGIONS: [&str; 2] = ["us-east-1", "us-west-2"];

/// What a follow-through needs after the verification delay, at least: the re-check, a
/// re-apply, the notice.
pub const VERIFY_HEADROOM_SECS: u64 = 30;
