//! Configuration, from `KILLSWITCH_*` environment variables only. Bad values fail at start-up,
//! naming the variable.
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `KILLSWITCH_TOPIC_ARN` | required | SNS topic for summaries |
//! | `KILLSWITCH_PROTECTED_PRINCIPALS` | empty | comma-separated user/role names or ARNs never touched |
//! | `KILLSWITCH_DRY_RUN` | `false` | compute and report, make no IAM write |
//! | `KILLSWITCH_LOOKBACK_HOURS` | `24` | CloudTrail window, 1–2160 (90 days) |
//! | `KILLSWITCH_VERIFY_DELAY_SECONDS` | `10` | second read-back after IAM's propagation window, 0–600 |
//! | `KILLSWITCH_REGIONS` | empty = every enabled Region (`account:ListRegions`) | Regions to search instead of discovering them; us-east-1 and the key's hinted Regions are always added |
//! | `KILLSWITCH_FOLLOW_PIVOTS` | `false` | also contain the keys and role sessions the attacker minted |
//! | `KILLSWITCH_MAX_EVENTS_PER_REGION` | `1000` | CloudTrail events read per Region, 50–100000 |
//! | `KILLSWITCH_INVESTIGATION_SECONDS` | `60` | time budget for CloudTrail, 1–840 |
//! | `KILLSWITCH_MEMBER_ROLE_NAME` | empty = this account only | role assumed in a finding's account when it is not this one (`member-role.yaml`) |
//! | `KILLSWITCH_MEMBER_EXTERNAL_ID` | required with the role name | `sts:ExternalId` the member role's trust policy demands |
//! | `KILLSWITCH_MEMBER_ACCOUNTS` | required with the role name | comma-separated account IDs the function may enter (no "any account") |
//! | `KILLSWITCH_ROLE_WIDE_REVOCATION` | empty = exact session | `*` or comma-separated role names whose findings revoke EVERY session of the role (`aws:TokenIssueTime` cutoff) instead of the leaked session only |
//! | `KILLSWITCH_FUNCTION_TIMEOUT_SECONDS` | unset (command line) | the Lambda timeout; the verification delay must fit in it with 30 s to spare |
//! | `KILLSWITCH_FOLLOW_UP_QUEUE_URL` | empty = follow through inline | SQS queue the follow-through (delayed re-check, CloudTrail, full report) is handed to |
//! | `KILLSWITCH_INCIDENT_TABLE` | empty = no incident store | DynamoDB table of per-incident state (de-duplication, restores) |
//! | `KILLSWITCH_CHAT_TOPIC_ARN` | empty = no chat | SNS topic the chat integration (Amazon Q Developer in chat applications) reads: every notice goes there too, as a custom-notification card |
//! | `KILLSWITCH_SECURITY_HUB_UPDATES` | `true` | set the Security Hub finding of a GuardDuty or Security Hub incident to NOTIFIED, with a note, once containment holds |
//! | `KILLSWITCH_QUARANTINE_ROLE_ARN` | empty = no org quarantine | Organizations role (`quarantine-role.yaml`, management account or delegated policy administrator) that attaches the quarantine SCP |
//! | `KILLSWITCH_QUARANTINE_EXTERNAL_ID` | required with the role | `sts:ExternalId` that role's trust policy demands |
//! | `KILLSWITCH_IDENTITY_CENTER_ROLE_ARN` | empty = Identity Center sessions notify-only | the responder role of `identity-center-role.yaml` (Identity Center's administrator account): with it, leaked portal sessions are contained through the deny policy |
//! | `KILLSWITCH_IDENTITY_CENTER_EXTERNAL_ID` | required with the role | `sts:ExternalId` its trust policy demands |
//! | `KILLSWITCH_IDENTITY_CENTER_REGION` | the function's | Identity Center's home Region |
//! | `KILLSWITCH_IDENTITY_CENTER_POLICY` | `KillSwitchDeny` | the customer-managed policy every permission set references (`identity-center-policy.yaml`) |
//! | `KILLSWITCH_IDENTITY_CENTER_REMOVE_ASSIGNMENTS` | `false` | also remove the user's direct account assignment of the permission set (recorded; restore puts it back) |
//! | `KILLSWITCH_IDENTITY_CENTER_RESTORE_ROLE_ARN` | empty | the operators' Restore role (restore only): puts removed assignments back |

use std::time::Duration;

use crate::error::Error;
use crate::vocab::AccountId;
pub use crate::vocab::is_region_name;

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub topic_arn: String,
    pub protected: Vec<String>,
    pub dry_run: bool,
    pub lookback: Duration,
    pub verify_delay: Duration,
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
    /// `None`: no organization-level quarantine.
    pub quarantine: Option<Quarantine>,
    /// `None`: Identity Center sessions are notify-only (with the manual steps).
    pub identity_center: Option<IdentityCenter>,
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
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let topic_arn = match var("KILLSWITCH_TOPIC_ARN") {
            Some(t) => t,
            None if !topic_required => String::new(),
            None => {
                return Err(Error::Config {
                    name: "KILLSWITCH_TOPIC_ARN",
                    reason: "required (the SNS topic ARN for incident summaries; respond --dry-run, respond --no-notify, restore --dry-run and status need none)".into(),
                });
            }
        };
        let parts: Vec<&str> = topic_arn.split(':').collect();
        if !topic_arn.is_empty()
            && (parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" || parts[5].is_empty())
        {
            return Err(Error::Config {
                name: "KILLSWITCH_TOPIC_ARN",
                reason: format!(
                    "{topic_arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
                ),
            });
        }

        let protected: Vec<String> = var("KILLSWITCH_PROTECTED_PRINCIPALS")
            .map(|v| items(&v).map(str::to_owned).collect())
            .unwrap_or_default();
        // An entry that can never match protects nothing while looking like it does.
        if let Some(bad) = protected.iter().find(|p| {
            let resource = p.splitn(6, ':').nth(5).unwrap_or("");
            p.starts_with("arn:")
                && !(resource.starts_with("user/") || resource.starts_with("role/"))
        }) {
            return Err(Error::Config {
                name: "KILLSWITCH_PROTECTED_PRINCIPALS",
                reason: format!(
                    "{bad:?} is not a user or role ARN (arn:aws:iam::ACCOUNT:user/NAME or :role/NAME; for a role session name its role)"
                ),
            });
        }

        let flag = |name: &'static str| match var(name).as_deref() {
            None => Ok(false),
            Some(v) => parse_bool(v).ok_or(Error::Config {
                name,
                reason: format!("{v:?} is not true/false"),
            }),
        };
        let dry_run = flag("KILLSWITCH_DRY_RUN")?;
        let follow_pivots = flag("KILLSWITCH_FOLLOW_PIVOTS")?;

        let lookback_hours = number(&var, "KILLSWITCH_LOOKBACK_HOURS", 24, 1, 2160)?;
        let verify_delay = number(&var, "KILLSWITCH_VERIFY_DELAY_SECONDS", 10, 0, 600)?;
        let max_events = number(&var, "KILLSWITCH_MAX_EVENTS_PER_REGION", 1000, 50, 100_000)?;
        let budget = number(&var, "KILLSWITCH_INVESTIGATION_SECONDS", 60, 1, 840)?;
        let sweep_minutes = number(&var, "KILLSWITCH_SWEEP_MINUTES", 15, 5, 60)?;
        // Shorter sweeps are for tests and drills on the local AWS only: real CloudTrail needs
        // minutes to deliver.
        let sweep_secs = number(
            &var,
            "KILLSWITCH_SWEEP_SECONDS",
            sweep_minutes * 60,
            1,
            3600,
        )?;
        let lag_minutes = number(&var, "KILLSWITCH_CLOUDTRAIL_LAG_MINUTES", 15, 1, 60)?;

        let regions = var("KILLSWITCH_REGIONS")
            .map(|v| {
                items(&v)
                    .map(|r| {
                        if is_region_name(r) {
                            Ok(r.to_owned())
                        } else {
                            Err(Error::Config {
                                name: "KILLSWITCH_REGIONS",
                                reason: format!("{r:?} is not a Region name like eu-west-1"),
                            })
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();

        let members = match (
            var("KILLSWITCH_MEMBER_ROLE_NAME"),
            var("KILLSWITCH_MEMBER_EXTERNAL_ID"),
        ) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(Error::Config {
                    name: "KILLSWITCH_MEMBER_ROLE_NAME",
                    reason: "required when KILLSWITCH_MEMBER_EXTERNAL_ID is set".into(),
                });
            }
            (Some(_), None) => {
                return Err(Error::Config {
                    name: "KILLSWITCH_MEMBER_EXTERNAL_ID",
                    reason: "required with KILLSWITCH_MEMBER_ROLE_NAME: the member role trusts only callers that present it".into(),
                });
            }
            (Some(role_name), Some(external_id)) => {
                if !is_role_name(&role_name) {
                    return Err(Error::Config {
                        name: "KILLSWITCH_MEMBER_ROLE_NAME",
                        reason: format!("{role_name:?} is not an IAM role name"),
                    });
                }
                if !valid_external_id(&external_id) {
                    return Err(Error::Config {
                        name: "KILLSWITCH_MEMBER_EXTERNAL_ID",
                        reason: "must be 2-1224 characters of letters, digits and +=,.@:/-_".into(),
                    });
                }
                let accounts = var("KILLSWITCH_MEMBER_ACCOUNTS")
                    .map(|v| {
                        items(&v)
                            .map(|a| {
                                AccountId::parse(a).map_err(|_| Error::Config {
                                    name: "KILLSWITCH_MEMBER_ACCOUNTS",
                                    reason: format!("{a:?} is not a 12-digit account ID"),
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .transpose()?
                    .unwrap_or_default();
                if accounts.is_empty() {
                    return Err(Error::Config {
                        name: "KILLSWITCH_MEMBER_ACCOUNTS",
                        reason: "required with KILLSWITCH_MEMBER_ROLE_NAME: list the account IDs the function may enter (there is no \"any account\")".into(),
                    });
                }
                Some(Members {
                    role_name,
                    external_id,
                    accounts,
                })
            }
        };
        if members.is_none() && var("KILLSWITCH_MEMBER_ACCOUNTS").is_some() {
            return Err(Error::Config {
                name: "KILLSWITCH_MEMBER_ACCOUNTS",
                reason: "needs KILLSWITCH_MEMBER_ROLE_NAME and KILLSWITCH_MEMBER_EXTERNAL_ID"
                    .into(),
            });
        }

        let follow_up_queue_url = var("KILLSWITCH_FOLLOW_UP_QUEUE_URL");
        if let Some(url) = &follow_up_queue_url
            && queue_arn(url).is_none()
        {
            return Err(Error::Config {
                name: "KILLSWITCH_FOLLOW_UP_QUEUE_URL",
                reason: format!(
                    "{url:?} is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"
                ),
            });
        }
        let incident_table = var("KILLSWITCH_INCIDENT_TABLE");
        if let Some(t) = &incident_table
            && !(3..=255).contains(&t.len())
        {
            return Err(Error::Config {
                name: "KILLSWITCH_INCIDENT_TABLE",
                reason: format!("{t:?} is not a DynamoDB table name"),
            });
        }

        let role_wide: Vec<String> = var("KILLSWITCH_ROLE_WIDE_REVOCATION")
            .map(|v| items(&v).map(str::to_owned).collect())
            .unwrap_or_default();
        if let Some(bad) = role_wide.iter().find(|r| *r != "*" && !is_role_name(r)) {
            return Err(Error::Config {
                name: "KILLSWITCH_ROLE_WIDE_REVOCATION",
                reason: format!("{bad:?} is neither * nor a role name"),
            });
        }
        let chat_topic_arn = var("KILLSWITCH_CHAT_TOPIC_ARN");
        if let Some(t) = &chat_topic_arn
            && crate::vocab::Arn::parse(t)
                .filter(|a| a.service == "sns" && is_region_name(a.region))
                .is_none_or(|_| t.split(':').count() != 6)
        {
            return Err(Error::Config {
                name: "KILLSWITCH_CHAT_TOPIC_ARN",
                reason: format!("{t:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
            });
        }
        let security_hub_updates = match var("KILLSWITCH_SECURITY_HUB_UPDATES") {
            None => true,
            Some(_) => flag("KILLSWITCH_SECURITY_HUB_UPDATES")?,
        };
        let quarantine = match (
            var("KILLSWITCH_QUARANTINE_ROLE_ARN"),
            var("KILLSWITCH_QUARANTINE_EXTERNAL_ID"),
        ) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(Error::Config {
                    name: "KILLSWITCH_QUARANTINE_ROLE_ARN",
                    reason: "required when KILLSWITCH_QUARANTINE_EXTERNAL_ID is set".into(),
                });
            }
            (Some(_), None) => {
                return Err(Error::Config {
                    name: "KILLSWITCH_QUARANTINE_EXTERNAL_ID",
                    reason: "required with KILLSWITCH_QUARANTINE_ROLE_ARN: the quarantine role trusts only callers that present it".into(),
                });
            }
            (Some(role_arn), Some(external_id)) => {
                let parts: Vec<&str> = role_arn.split(':').collect();
                if parts.len() != 6
                    || parts[0] != "arn"
                    || parts[2] != "iam"
                    || AccountId::parse(parts[4]).is_err()
                    || !parts[5]
                        .strip_prefix("role/")
                        .and_then(|p| p.rsplit('/').next())
                        .is_some_and(is_role_name)
                {
                    return Err(Error::Config {
                        name: "KILLSWITCH_QUARANTINE_ROLE_ARN",
                        reason: format!(
                            "{role_arn:?} is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
                        ),
                    });
                }
                if !valid_external_id(&external_id) {
                    return Err(Error::Config {
                        name: "KILLSWITCH_QUARANTINE_EXTERNAL_ID",
                        reason: "must be 2-1224 characters of letters, digits and +=,.@:/-_".into(),
                    });
                }
                Some(Quarantine {
                    role_arn,
                    external_id,
                })
            }
        };
        let identity_center = identity_center(&var, &flag)?;
        // Global Health RISK events reach EventBridge only in us-east-1 (backup us-west-2): a
        // function deployed elsewhere with the Health trigger would wait for events that never
        // come. Refusing to start makes that loud.
        if flag("KILLSWITCH_HEALTH_TRIGGER")?
            && let Some(region) = var("AWS_REGION")
            && !HEALTH_REGIONS.contains(&region.as_str())
        {
            return Err(Error::Config {
                name: "KILLSWITCH_HEALTH_TRIGGER",
                reason: format!(
                    "AWS Health credential-risk events arrive only in us-east-1 (backup us-west-2), not in {region}: deploy there or turn the Health trigger off"
                ),
            });
        }
        if let Some(timeout) = var("KILLSWITCH_FUNCTION_TIMEOUT_SECONDS") {
            let timeout: u64 = timeout.parse().map_err(|_| Error::Config {
                name: "KILLSWITCH_FUNCTION_TIMEOUT_SECONDS",
                reason: format!("{timeout:?} is not a number of seconds"),
            })?;
            if verify_delay + VERIFY_HEADROOM_SECS > timeout {
                return Err(Error::Config {
                    name: "KILLSWITCH_VERIFY_DELAY_SECONDS",
                    reason: format!(
                        "{verify_delay} s does not fit in the function's {timeout} s timeout with {VERIFY_HEADROOM_SECS} s to spare for the re-check and the notice"
                    ),
                });
            }
        }

        Ok(Self {
            role_wide,
            follow_up_queue_url,
            incident_table,
            topic_arn,
            protected,
            dry_run,
            lookback: Duration::from_secs(lookback_hours * 3600),
            verify_delay: Duration::from_secs(verify_delay),
            regions,
            max_events_per_region: max_events as usize,
            investigation_budget: Duration::from_secs(budget),
            follow_pivots,
            members,
            sweep_after: Duration::from_secs(sweep_secs),
            cloudtrail_lag: Duration::from_secs(lag_minutes * 60),
            sweep_inline: true,
            page_key_not_found: true,
            chat_topic_arn,
            security_hub_updates,
            quarantine,
            identity_center,
        })
    }
}

/// Where EventBridge receives global AWS Health events.
pub const HEALTH_REGIONS: [&str; 2] = ["us-east-1", "us-west-2"];

/// What a follow-through needs after the verification delay, at least: the re-check, a
/// re-apply, the notice.
pub const VERIFY_HEADROOM_SECS: u64 = 30;

fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "iam"
        && AccountId::parse(parts[4]).is_ok()
        && parts[5]
            .strip_prefix("role/")
            .and_then(|p| p.rsplit('/').next())
            .is_some_and(is_role_name)
}

fn identity_center(
    var: &impl Fn(&str) -> Option<String>,
    flag: &impl Fn(&'static str) -> Result<bool, Error>,
) -> Result<Option<IdentityCenter>, Error> {
    let bad = |name: &'static str, reason: String| Err(Error::Config { name, reason });
    let Some(role_arn) = var("KILLSWITCH_IDENTITY_CENTER_ROLE_ARN") else {
        for name in [
            "KILLSWITCH_IDENTITY_CENTER_EXTERNAL_ID",
            "KILLSWITCH_IDENTITY_CENTER_REMOVE_ASSIGNMENTS",
        ] {
            if var(name).is_some() {
                return bad(
                    "KILLSWITCH_IDENTITY_CENTER_ROLE_ARN",
                    format!("required when {name} is set"),
                );
            }
        }
        return Ok(None);
    };
    if !is_role_arn(&role_arn) {
        return bad(
            "KILLSWITCH_IDENTITY_CENTER_ROLE_ARN",
            format!("{role_arn:?} is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)"),
        );
    }
    let Some(external_id) = var("KILLSWITCH_IDENTITY_CENTER_EXTERNAL_ID") else {
        return bad(
            "KILLSWITCH_IDENTITY_CENTER_EXTERNAL_ID",
            "required with KILLSWITCH_IDENTITY_CENTER_ROLE_ARN: the role trusts only callers that present it".into(),
        );
    };
    if !valid_external_id(&external_id) {
        return bad(
            "KILLSWITCH_IDENTITY_CENTER_EXTERNAL_ID",
            "must be 2-1224 characters of letters, digits and +=,.@:/-_".into(),
        );
    }
    let region = var("KILLSWITCH_IDENTITY_CENTER_REGION");
    if let Some(r) = region.as_deref().filter(|r| !is_region_name(r)) {
        return bad(
            "KILLSWITCH_IDENTITY_CENTER_REGION",
            format!("{r:?} is not a Region name"),
        );
    }
    let policy_name =
        var("KILLSWITCH_IDENTITY_CENTER_POLICY").unwrap_or_else(|| "KillSwitchDeny".into());
    if policy_name.len() > 128
        || !policy_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    {
        return bad(
            "KILLSWITCH_IDENTITY_CENTER_POLICY",
            format!(
                "{policy_name:?} is not a managed policy name (1-128 of letters, digits and +=,.@_-)"
            ),
        );
    }
    let restore_role_arn = var("KILLSWITCH_IDENTITY_CENTER_RESTORE_ROLE_ARN");
    if let Some(r) = restore_role_arn.as_deref().filter(|r| !is_role_arn(r)) {
        return bad(
            "KILLSWITCH_IDENTITY_CENTER_RESTORE_ROLE_ARN",
            format!("{r:?} is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)"),
        );
    }
    Ok(Some(IdentityCenter {
        role_arn,
        external_id,
        region,
        policy_name,
        remove_assignments: flag("KILLSWITCH_IDENTITY_CENTER_REMOVE_ASSIGNMENTS")?,
        restore_role_arn,
    }))
}

/// The entries of a comma-separated value, trimmed, empty ones dropped.
fn items(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// `sts:AssumeRole`'s own limits for `ExternalId`.
fn valid_external_id(id: &str) -> bool {
    (2..=1224).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c))
}

/// IAM's rule for role names: 1-64 of letters, digits and `+=,.@_-`.
fn is_role_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

fn number(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, Error> {
    let Some(raw) = var(name) else {
        return Ok(default);
    };
    match raw.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Error::Config {
            name,
            reason: format!("{raw:?} is not a whole number from {min} to {max}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, Error> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const TOPIC: (&str, &str) = (
        "KILLSWITCH_TOPIC_ARN",
        "arn:aws:sns:us-east-1:123456789012:killswitch",
    );

    #[test]
    fn defaults_apply_when_only_the_topic_is_set() {
        let c = config(&[TOPIC]).unwrap();
        assert!(!c.dry_run);
        assert_eq!(c.lookback, Duration::from_secs(24 * 3600));
        assert_eq!(c.verify_delay, Duration::from_secs(10));
        assert!(c.protected.is_empty() && c.regions.is_empty());
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (pairs, name) in [
            (vec![], "KILLSWITCH_TOPIC_ARN"),
            (
                vec![("KILLSWITCH_TOPIC_ARN", "arn:aws:sqs:us-east-1:1:q")],
                "KILLSWITCH_TOPIC_ARN",
            ),
            (
                vec![TOPIC, ("KILLSWITCH_DRY_RUN", "maybe")],
                "KILLSWITCH_DRY_RUN",
            ),
            (
                vec![TOPIC, ("KILLSWITCH_LOOKBACK_HOURS", "9999")],
                "KILLSWITCH_LOOKBACK_HOURS",
            ),
            (
                vec![TOPIC, ("KILLSWITCH_VERIFY_DELAY_SECONDS", "-1")],
                "KILLSWITCH_VERIFY_DELAY_SECONDS",
            ),
            (
                vec![TOPIC, ("KILLSWITCH_REGIONS", "us-east-1,mars")],
                "KILLSWITCH_REGIONS",
            ),
            (
                vec![TOPIC, ("KILLSWITCH_MEMBER_ROLE_NAME", "KillSwitchMember")],
                "KILLSWITCH_MEMBER_EXTERNAL_ID",
            ),
            (
                vec![TOPIC, ("KILLSWITCH_MEMBER_EXTERNAL_ID", "abc123")],
                "KILLSWITCH_MEMBER_ROLE_NAME",
            ),
            (
                vec![
                    TOPIC,
                    ("KILLSWITCH_MEMBER_ROLE_NAME", "role/KillSwitchMember"),
                    ("KILLSWITCH_MEMBER_EXTERNAL_ID", "abc123"),
                ],
                "KILLSWITCH_MEMBER_ROLE_NAME",
            ),
            (
                vec![
                    TOPIC,
                    ("KILLSWITCH_MEMBER_ROLE_NAME", "KillSwitchMember"),
                    ("KILLSWITCH_MEMBER_EXTERNAL_ID", "has space"),
                ],
                "KILLSWITCH_MEMBER_EXTERNAL_ID",
            ),
            (
                vec![
                    TOPIC,
                    ("KILLSWITCH_MEMBER_ROLE_NAME", "KillSwitchMember"),
                    ("KILLSWITCH_MEMBER_EXTERNAL_ID", "abc123"),
                    ("KILLSWITCH_MEMBER_ACCOUNTS", "111122223333,12345"),
                ],
                "KILLSWITCH_MEMBER_ACCOUNTS",
            ),
            (
                vec![TOPIC, ("KILLSWITCH_MEMBER_ACCOUNTS", "111122223333")],
                "KILLSWITCH_MEMBER_ACCOUNTS",
            ),
        ] {
            match config(&pairs) {
                Err(Error::Config { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{pairs:?}: expected a config error, got {other:?}"),
            }
        }
    }

    #[test]
    fn lists_and_flags_are_parsed() {
        let c = config(&[
            TOPIC,
            ("KILLSWITCH_DRY_RUN", "TRUE"),
            (
                "KILLSWITCH_PROTECTED_PRINCIPALS",
                " break-glass , arn:aws:iam::123456789012:role/deployer,",
            ),
            ("KILLSWITCH_REGIONS", "eu-west-1, us-gov-west-1"),
        ])
        .unwrap();
        assert!(c.dry_run);
        assert_eq!(
            c.protected,
            vec!["break-glass", "arn:aws:iam::123456789012:role/deployer"]
        );
        assert_eq!(c.regions, vec!["eu-west-1", "us-gov-west-1"]);
        assert!(c.members.is_none());
    }

    #[test]
    fn member_accounts_are_opt_in_and_the_external_id_is_never_printed() {
        let c = config(&[
            TOPIC,
            ("KILLSWITCH_MEMBER_ROLE_NAME", "KillSwitchMember"),
            ("KILLSWITCH_MEMBER_EXTERNAL_ID", "s3cr3t-ext-id"),
            ("KILLSWITCH_MEMBER_ACCOUNTS", "111122223333, 444455556666"),
        ])
        .unwrap();
        let m = c.members.clone().unwrap();
        assert_eq!(m.role_name, "KillSwitchMember");
        assert!(m.allows(&AccountId::parse("444455556666").unwrap()));
        assert!(!m.allows(&AccountId::parse("999999999999").unwrap()));
        assert!(!format!("{c:?}").contains("s3cr3t"));
        // No "any account": the allow-list is required.
        let any = config(&[
            TOPIC,
            ("KILLSWITCH_MEMBER_ROLE_NAME", "KillSwitchMember"),
            ("KILLSWITCH_MEMBER_EXTERNAL_ID", "s3cr3t-ext-id"),
        ]);
        assert!(
            matches!(
                any,
                Err(Error::Config {
                    name: "KILLSWITCH_MEMBER_ACCOUNTS",
                    ..
                })
            ),
            "{any:?}"
        );
    }

    #[test]
    fn protected_entries_that_can_never_match_are_refused() {
        for bad in [
            "arn:aws:sts::123456789012:assumed-role/admin/session",
            "arn:aws:iam::123456789012:group/admins",
        ] {
            assert!(
                matches!(
                    config(&[TOPIC, ("KILLSWITCH_PROTECTED_PRINCIPALS", bad)]),
                    Err(Error::Config {
                        name: "KILLSWITCH_PROTECTED_PRINCIPALS",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert!(
            config(&[
                TOPIC,
                (
                    "KILLSWITCH_PROTECTED_PRINCIPALS",
                    "breakglass, arn:aws:iam::123456789012:role/path/Admin"
                )
            ])
            .is_ok()
        );
    }

    #[test]
    fn role_wide_revocation_is_opt_in_per_role_case_insensitively() {
        let c = config(&[TOPIC]).unwrap();
        assert!(!c.role_wide("web-tier"));
        let c = config(&[
            TOPIC,
            ("KILLSWITCH_ROLE_WIDE_REVOCATION", "CI-Deployer, batch"),
        ])
        .unwrap();
        assert!(c.role_wide("ci-deployer") && c.role_wide("batch") && !c.role_wide("web-tier"));
        assert!(
            config(&[TOPIC, ("KILLSWITCH_ROLE_WIDE_REVOCATION", "*")])
                .unwrap()
                .role_wide("x")
        );
        assert!(config(&[TOPIC, ("KILLSWITCH_ROLE_WIDE_REVOCATION", "a b")]).is_err());
    }

    #[test]
    fn the_health_trigger_refuses_a_region_where_its_events_never_arrive() {
        let health = ("KILLSWITCH_HEALTH_TRIGGER", "true");
        assert!(config(&[TOPIC, health, ("AWS_REGION", "us-east-1")]).is_ok());
        assert!(config(&[TOPIC, health, ("AWS_REGION", "us-west-2")]).is_ok());
        assert!(matches!(
            config(&[TOPIC, health, ("AWS_REGION", "eu-west-1")]),
            Err(Error::Config {
                name: "KILLSWITCH_HEALTH_TRIGGER",
                ..
            })
        ));
        assert!(config(&[TOPIC, ("AWS_REGION", "eu-west-1")]).is_ok());
    }

    #[test]
    fn the_verification_delay_fits_in_the_function_timeout() {
        let fits = config(&[
            TOPIC,
            ("KILLSWITCH_VERIFY_DELAY_SECONDS", "90"),
            ("KILLSWITCH_FUNCTION_TIMEOUT_SECONDS", "120"),
        ]);
        assert!(fits.is_ok(), "{fits:?}");
        let too_long = config(&[
            TOPIC,
            ("KILLSWITCH_VERIFY_DELAY_SECONDS", "91"),
            ("KILLSWITCH_FUNCTION_TIMEOUT_SECONDS", "120"),
        ]);
        assert!(
            matches!(
                too_long,
                Err(Error::Config {
                    name: "KILLSWITCH_VERIFY_DELAY_SECONDS",
                    ..
                })
            ),
            "{too_long:?}"
        );
        assert!(config(&[TOPIC, ("KILLSWITCH_FUNCTION_TIMEOUT_SECONDS", "soon")]).is_err());
    }
}
