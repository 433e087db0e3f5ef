//! The function's permissions, simulated (`iam:SimulatePrincipalPolicy`) for every action the
//! code calls, on the kind of resource it calls it on and with the condition keys its calls
//! carry: the template scopes most actions to resources and some to one policy ARN, so an action
//! simulated on `*` would prove nothing.

use std::collections::BTreeMap;

use super::{Check, Decided, Place, Preflight, Probe, read_fix};
use crate::config::Config;
use crate::error::AwsFailure;
use crate::playbook::{member_permissions, required_permissions};

/// The name the probes give the user and role they simulate on (no principal is created). The
/// template denies edits to its own stack's roles (`role/STACK-*`, a stack named `killswitch`
/// covers every `killswitch-…`); a stack name starts with a letter, so this one never matches.
const PROBE_NAME: &str = "_killswitch-doctor-probe";

/// The path of killswitch's own managed policies (`playbook::revoke_role`'s managed fallback).
const OWN_DENY_PATH: &str = "killswitch/";

/// What the code calls an action on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum On {
    /// An IAM user (the key's owner).
    User,
    /// The user, when the boundary is AWSDenyAll (the template allows only that one).
    UserBoundary,
    /// The user, when the policy attached is AWSDenyAll (ditto).
    UserDenyAll,
    /// An IAM role (the leaked session's).
    Role,
    /// The role, when the policy attached is killswitch's own managed deny.
    RoleOwnDeny,
    /// The Identity Center deny policy (`KILLSWITCH_IDENTITY_CENTER_POLICY`).
    DenyPolicy,
    /// killswitch's managed deny for a role whose inline quota is full (`policy/killswitch/…`).
    OwnDenyPolicy,
    /// A permission set's role (`/aws-reserved/sso.amazonaws.com/`).
    PermissionSetRole,
    /// No resource-level permissions, or granted on `*`.
    Anything,
    /// The notice topics.
    Topic,
    /// Security Hub's hub in the function's Region.
    Hub,
    /// The incident table.
    Table,
    /// The follow-up queue.
    Queue,
    /// The roles it enters: member roles, the quarantine and Identity Center roles.
    RolesEntered,
    /// The record key (`KILLSWITCH_RECORD_KEY_ARN`) that seals incident records.
    RecordKey,
    /// The chat topic's customer key, which only the template knows (`ChatTopicKmsKeyArn`):
    /// not probed.
    ChatTopicKey,
}

/// Every action the code calls, and on what (some on two kinds of resource). A new action fails
/// the unit test until it is here.
fn on(action: &str) -> Option<&'static [On]> {
    Some(match action {
        "iam:GetAccessKeyLastUsed"
        | "iam:ListAccessKeys"
        | "iam:UpdateAccessKey"
        | "iam:GetUserPolicy"
        | "iam:PutUserPolicy"
        | "iam:ListAttachedUserPolicies"
        | "iam:DeleteLoginProfile"
        | "iam:GetLoginProfile"
        | "iam:GetUser"
        | "iam:TagUser"
        | "iam:ListUserTags" => &[On::User],
        "iam:PutUserPermissionsBoundary" => &[On::UserBoundary],
        "iam:AttachUserPolicy" => &[On::UserDenyAll],
        "iam:GetRole" | "iam:GetRolePolicy" | "iam:PutRolePolicy" | "iam:TagRole"
        | "iam:ListRoleTags" => &[On::Role],
        "iam:AttachRolePolicy" => &[On::RoleOwnDeny],
        "iam:ListAttachedRolePolicies" => &[On::Role, On::PermissionSetRole],
        "iam:GetPolicy"
        | "iam:GetPolicyVersion"
        | "iam:ListPolicyVersions"
        | "iam:CreatePolicyVersion"
        | "iam:DeletePolicyVersion" => &[On::DenyPolicy, On::OwnDenyPolicy],
        "iam:CreatePolicy" => &[On::OwnDenyPolicy],
        "iam:ListRoles"
        | "cloudtrail:LookupEvents"
        | "account:ListRegions"
        | "sts:GetAccessKeyInfo"
        | "guardduty:ListDetectors"
        | "guardduty:GetFindings" => &[On::Anything],
        "sns:Publish" => &[On::Topic],
        "securityhub:BatchUpdateFindings" => &[On::Hub],
        "dynamodb:GetItem" | "dynamodb:PutItem" | "dynamodb:DeleteItem" | "dynamodb:Scan" => {
            &[On::Table]
        }
        "kms:GenerateMac" | "kms:VerifyMac" => &[On::RecordKey],
        "kms:GenerateDataKey" | "kms:Decrypt" => &[On::ChatTopicKey],
        "sqs:SendMessage" => &[On::Queue],
        "sts:AssumeRole" => &[On::RolesEntered],
        _ => return None,
    })
}

/// The probes for the function's role: `required_permissions()` on what this configuration
/// calls them on. An action the configuration never calls (no table, no member accounts) is
/// not probed.
pub fn function_probes(config: &Config, at: Place<'_>) -> Vec<Probe> {
    probes(required_permissions(), config, at)
}

/// The probes for a member role (`member_permissions()`), in that member account.
pub fn member_probes(config: &Config, at: Place<'_>) -> Vec<Probe> {
    probes(member_permissions(), config, at)
}

fn probes(
    actions: impl IntoIterator<Item = &'static str>,
    config: &Config,
    at: Place<'_>,
) -> Vec<Probe> {
    let mut by_kind: BTreeMap<Option<On>, Vec<&'static str>> = BTreeMap::new();
    for action in actions {
        match on(action) {
            Some(kinds) => {
                for kind in kinds {
                    by_kind.entry(Some(*kind)).or_default().push(action);
                }
            }
            // Not yet said: simulated on `*` meanwhile (the unit test asks for it).
            None => by_kind.entry(None).or_default().push(action),
        }
    }
    let mut out = Vec::new();
    for (kind, actions) in by_kind {
        for (resource, context) in targets(kind, config, at) {
            out.push(Probe {
                actions: actions.clone(),
                resource,
                context,
            });
        }
    }
    out
}

type Target = (String, Vec<(&'static str, String)>);

/// The resources (with condition keys) the code calls one kind of action on.
fn targets(kind: Option<On>, config: &Config, at: Place<'_>) -> Vec<Target> {
    let Place {
        partition: p,
        account: a,
        region: r,
    } = at;
    let iam = |resource: String| format!("arn:{p}:iam::{a}:{resource}");
    let deny_all = format!("arn:{p}:iam::aws:policy/AWSDenyAll");
    let bare = |resource: String| vec![(resource, Vec::new())];
    let Some(kind) = kind else {
        return bare("*".into());
    };
    match kind {
        On::User => bare(iam(format!("user/{PROBE_NAME}"))),
        On::UserBoundary => vec![(
            iam(format!("user/{PROBE_NAME}")),
            vec![("iam:PermissionsBoundary", deny_all)],
        )],
        On::UserDenyAll => vec![(
            iam(format!("user/{PROBE_NAME}")),
            vec![("iam:PolicyARN", deny_all)],
        )],
        On::Role => bare(iam(format!("role/{PROBE_NAME}"))),
        On::RoleOwnDeny => vec![(
            iam(format!("role/{PROBE_NAME}")),
            vec![(
                "iam:PolicyARN",
                iam(format!("policy/{OWN_DENY_PATH}{PROBE_NAME}")),
            )],
        )],
        On::OwnDenyPolicy => bare(iam(format!("policy/{OWN_DENY_PATH}{PROBE_NAME}"))),
        On::DenyPolicy => bare(iam(format!(
            "policy/{}",
            config
                .identity_center
                .as_ref()
                .map_or("KillSwitchDeny", |c| c.policy_name.as_str())
        ))),
        On::PermissionSetRole => bare(iam(format!(
            "role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_{PROBE_NAME}"
        ))),
        On::Anything => bare("*".into()),
        On::Topic => std::iter::once(config.topic_arn.clone())
            .chain(config.chat_topic_arn.clone())
            .filter(|t| !t.is_empty())
            .map(|t| (t, Vec::new()))
            .collect(),
        On::Hub if config.security_hub_updates => {
            bare(format!("arn:{p}:securityhub:{r}:{a}:hub/default"))
        }
        On::Hub => Vec::new(),
        On::Table => config
            .incident_table
            .iter()
            .map(|t| (format!("arn:{p}:dynamodb:{r}:{a}:table/{t}"), Vec::new()))
            .collect(),
        On::Queue => config
            .follow_up_queue_url
            .iter()
            .filter_map(|url| queue_arn(url, at))
            .map(|q| (q, Vec::new()))
            .collect(),
        On::RolesEntered => roles_entered(config, p),
        On::RecordKey => config
            .record_key_arn
            .iter()
            .map(|k| (k.clone(), Vec::new()))
            .collect(),
        On::ChatTopicKey => Vec::new(),
    }
}

/// The roles the function assumes: each member account's (only with that account as
/// `aws:ResourceAccount`, as the template conditions it), the quarantine and Identity Center ones.
fn roles_entered(config: &Config, partition: &str) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    if let Some(m) = &config.members {
        for account in &m.accounts {
            out.push((
                format!(
                    "arn:{partition}:iam::{}:role/{}",
                    account.as_str(),
                    m.role_name
                ),
                vec![("aws:ResourceAccount", account.as_str().to_owned())],
            ));
        }
    }
    out.extend(
        config
            .quarantine
            .iter()
            .map(|q| (q.role_arn.clone(), Vec::new())),
    );
    out.extend(
        config
            .identity_center
            .iter()
            .map(|c| (c.role_arn.clone(), Vec::new())),
    );
    out
}

/// `…/ACCOUNT/NAME` → the queue's ARN, in the Region its host names (else the function's).
fn queue_arn(url: &str, at: Place<'_>) -> Option<String> {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let account = parts.next()?;
    let region = url
        .split("://")
        .nth(1)
        .and_then(|host| host.split('.').nth(1))
        .filter(|r| crate::vocab::is_region_name(r))
        .unwrap_or(at.region);
    Some(format!(
        "arn:{}:sqs:{region}:{account}:{name}",
        at.partition
    ))
}

/// Simulates every probe as `principal`; fails on any action not allowed. `member`: the member
/// role may not be allowed to simulate itself (member-role.yaml does not grant it): a warning.
pub(super) async fn check<P: Preflight>(
    p: &P,
    principal: &str,
    probes: &[Probe],
    who: &str,
    member: bool,
) -> Check {
    let mut denied = Vec::new();
    let mut simulated = 0;
    for probe in probes {
        match p.simulate(principal, probe).await {
            Ok(decisions) => {
                simulated += decisions.len();
                denied.extend(
                    decisions
                        .into_iter()
                        .filter(|d| d.decided != Decided::Allowed),
                );
            }
            Err(e) if member && e.is(AwsFailure::AccessDenied) => {
                return Check::warn(
                    "permissions",
                    format!("{who} may not simulate {principal}: {}", e.chain()),
                    format!(
                        "grant iam:SimulatePrincipalPolicy on {principal} to that role to check it"
                    ),
                );
            }
            Err(e) => {
                return Check::fail(
                    "permissions",
                    format!("cannot simulate {principal}: {}", e.chain()),
                    read_fix(&e, who),
                );
            }
        }
    }
    if denied.is_empty() {
        return Check::ok(
            "permissions",
            format!(
                "{principal} is allowed every call the code makes ({simulated} action and resource pairs, {} simulations)",
                probes.len()
            ),
        );
    }
    let listed: Vec<String> = denied
        .iter()
        .map(|d| {
            let missing = if d.missing_context.is_empty() {
                String::new()
            } else {
                format!(", needs {}", d.missing_context.join(", "))
            };
            format!(
                "{} on {} ({}{missing})",
                d.action,
                d.resource,
                d.decided.as_str()
            )
        })
        .collect();
    Check::fail(
        "permissions",
        format!("{principal} may not make: {}", listed.join("; ")),
        if member {
            "grant them as member-role.yaml's KillSwitchContain policy does (redeploy it in that account)"
        } else {
            "grant them as template.yaml's ResponderRole policy does: redeploy the stack, and find who changed the role (Put/DeleteRolePolicy, DetachRolePolicy in CloudTrail)"
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_the_code_calls_has_a_resource() {
        let unknown: Vec<_> = required_permissions()
            .into_iter()
            .filter(|a| on(a).is_none())
            .collect();
        assert!(
            unknown.is_empty(),
            "say what the code calls these on: {unknown:?}"
        );
    }

    #[test]
    fn a_queue_url_becomes_its_arn() {
        let at = Place {
            partition: "aws",
            account: "111122223333",
            region: "eu-west-1",
        };
        assert_eq!(
            queue_arn(
                "https://sqs.us-east-2.amazonaws.com/111122223333/follow-up",
                at
            )
            .as_deref(),
            Some("arn:aws:sqs:us-east-2:111122223333:follow-up")
        );
        assert_eq!(
            queue_arn("http://127.0.0.1:4566/111122223333/follow-up", at).as_deref(),
            Some("arn:aws:sqs:eu-west-1:111122223333:follow-up")
        );
    }
}
