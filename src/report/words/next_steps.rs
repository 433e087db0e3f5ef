//! What is still for a human once killswitch is done, most urgent first: per kind of
//! containment, per outcome, and what the chat card says when the report has no step of its
//! own. Pure.

use crate::incident::{AccessKeyId, AccountId, Incident, Trigger};
use crate::policy;
use crate::report::{Report, Status};
use crate::vocab::{Deny, Plan, Step};

/// A GuardDuty sample's only step.
pub const SAMPLE: &str =
    "Nothing: this proves the GuardDuty -> EventBridge -> killswitch -> SNS path works.";

/// What the org quarantine SCP does not reach (the quarantine step's detail says it too).
pub const QUARANTINE_NOT_COVERED: &str = "An SCP does not restrict the management account or service-linked roles, and it does not reach sessions the user minted with GetFederationToken (their ARN is federated-user/NAME): the inline deny covers those.";

/// The card's last step for the short notice: the rest is on its way.
pub const FULL_REPORT_FOLLOWS: &str =
    "The full report (re-check, what the key did, undo commands) follows in this thread.";

/// The report's next steps, from what happened. `undo` is already final: a member account's
/// commands need that account's credentials.
pub(super) fn after(
    report: &Report,
    incident: &Incident,
    plan: Option<&Plan>,
    member: Option<&AccountId>,
) -> Vec<String> {
    let key = &incident.key;
    let mut next = plan
        .map(|plan| for_plan(plan, key, minted_by_a_leaked_key(&incident.trigger)))
        .unwrap_or_default();
    if report
        .steps
        .iter()
        .any(|s| s.step == Step::Quarantine && s.outcome.in_place())
    {
        next.push(format!(
            "The org quarantine SCP (above) denies this principal from outside the account, whatever an admin there changes; it stays until killswitch restore. {QUARANTINE_NOT_COVERED}"
        ));
    }
    match report.status {
        // Nothing was changed: no advice about a state that does not exist.
        Status::DryRun => {
            next = vec![format!(
                "Nothing was changed. To contain for real, send the same request without dry run (killswitch respond --access-key-id {key} --reason WHY)."
            )]
        }
        Status::Failed => next.insert(0, failed(plan, key)),
        Status::Refused => next.insert(
            0,
            format!(
                "Decide by hand what to do with key {key}: killswitch did not change anything."
            ),
        ),
        Status::Contained
        | Status::AlreadyContained
        | Status::Contested
        | Status::Rejected
        | Status::Sample
        | Status::KeyNotFound
        | Status::Restored => {}
    }
    if let Some(account) = member
        && !report.undo.is_empty()
    {
        next.push(format!(
            "The undo commands below act in member account {account}: run them with that account's credentials."
        ));
    }
    if report.status == Status::Rejected {
        let account = report.account.as_deref().unwrap_or("the key's account");
        next.push(format!(
            "Nothing was changed. To contain {key}, run it with credentials for account {account} (killswitch respond --access-key-id {key} --reason WHY --profile PROFILE), or make {account} a member account: deploy the member-role template there and add the account to KILLSWITCH_MEMBER_ACCOUNTS."
        ));
    }
    next
}

/// A key the leaked key minted: its user may be one the key's holder created.
fn minted_by_a_leaked_key(trigger: &Trigger) -> bool {
    match trigger {
        Trigger::Pivot { .. } => true,
        Trigger::GuardDuty { .. } | Trigger::Health { .. } | Trigger::Manual { .. } => false,
    }
}

/// What containment of this kind leaves for a human: the principal's other uses, how it leaked.
fn for_plan(plan: &Plan, key: &AccessKeyId, minted: bool) -> Vec<String> {
    match plan {
        Plan::User { user, deny, .. } => vec![
            if minted {
                format!(
                    "Key {key} was minted by the leaked key. If user {user} is one the key's holder created (see the leaked key's report), delete that user; otherwise rotate the key's uses and give {user} a new key only after the leak is understood."
                )
            } else {
                format!(
                    "Find and rotate every place key {key} is used (it stays Inactive; do not reactivate it). Give {user} a new key only after the leak is understood."
                )
            },
            user_denied(user, *deny),
        ],
        Plan::Role {
            role,
            session: Some(session),
            ..
        } => vec![
            format!(
                "Only session {session} of role {role} is denied, also when it fetches fresh credentials: for an instance role that session IS the instance's own workload (session name = instance ID), which now fails too. Replace or isolate that instance; the role's other sessions keep working."
            ),
            how_the_role_leaked(role),
        ],
        Plan::Portal {
            role,
            user,
            user_id,
            policy_arn,
            ..
        } => {
            let whom = match user_id {
                Some(id) => format!(
                    "Identity Center user {user} (identitystore:UserId {id}) is denied in this account with every permission set that references the deny policy (a permission set without the reference still works: the set-up puts it on all)"
                ),
                None => format!(
                    "Identity Center user {user} is denied only through role {role} in this account (the user ID was not looked up: other permission sets still work)"
                ),
            };
            vec![
                format!(
                    "{whom}, by {policy_arn}, which every permission set references. Their portal sessions in OTHER accounts are not denied: disable the user in Identity Center (Users > Disable user access) and end their active sessions if the leak may reach further."
                ),
                format!(
                    "Find how {user}'s portal credentials leaked (`aws configure export-credentials`, the portal's access-keys page, a shell history), and have them sign in again (MFA) only once it is understood."
                ),
            ]
        }
        Plan::Role { role, .. } => vec![
            format!(
                "EVERY session of role {role} issued before the cutoff is denied, whoever uses it: workloads on this role fail until they get fresh credentials (they will on their next refresh)."
            ),
            how_the_role_leaked(role),
        ],
    }
}

fn how_the_role_leaked(role: &str) -> String {
    format!(
        "Find how the session credentials of role {role} leaked (instance metadata, CI logs, a developer laptop)."
    )
}

/// What denies the user, and what that blocks besides the leaked key.
fn user_denied(user: &str, deny: Deny) -> String {
    match deny {
        Deny::Inline => format!(
            "{} blocks ALL of user {user}'s access, including any other key: remove it once legitimate keys are rotated.",
            policy::USER_POLICY_NAME
        ),
        Deny::Managed => format!(
            "The AWS-managed AWSDenyAll is attached to user {user} (its inline-policy quota was full: look for the policies that filled it, they may be the attacker's) and blocks ALL of its access: detach it once legitimate keys are rotated."
        ),
        Deny::LockedOut => format!(
            "EVERY access key of user {user} is deactivated and its console password deleted (both policy quotas were full: look for what filled them). Reactivate only keys you trust; the password can only be reset. Sessions it minted with GetSessionToken/GetFederationToken may still work (up to 36 h): check the activity below."
        ),
        Deny::LockedOutBounded => format!(
            "EVERY access key of user {user} is deactivated, its console password deleted and AWSDenyAll set as its permissions boundary (both policy quotas were full: look for what filled them). Reactivate only keys you trust; the password can only be reset."
        ),
    }
}

/// The first step when containment failed: what to do by hand for this kind.
fn failed(plan: Option<&Plan>, key: &AccessKeyId) -> String {
    match plan {
        Some(Plan::Portal { role, user, .. }) => format!(
            "CONTAINMENT FAILED: disable Identity Center user {user} now (Identity Center > Users > Disable user access), end their active sessions, and add a Deny with identitystore:UserId to the inline policy of the permission set behind {role}, then provision it; read the failed steps above."
        ),
        Some(Plan::User { .. } | Plan::Role { .. }) | None => format!(
            "CONTAINMENT FAILED: deactivate {key} by hand now (aws iam update-access-key --status Inactive ...) and read the failed steps above."
        ),
    }
}

/// A card always says what to do: for the outcomes the report gives no step of its own.
pub fn when_none(report: &Report) -> String {
    let key = &report.access_key_id;
    match report.status {
        Status::Rejected => format!(
            "Nothing was changed: key {key} is not this account's. To contain it, run killswitch respond --access-key-id {key} --reason WHY with credentials for the account it belongs to, or (multi-account) add that account to KILLSWITCH_MEMBER_ACCOUNTS, with member-role.yaml deployed in it, and send the finding or request again."
        ),
        Status::Sample => "Nothing to do: a GuardDuty sample finding is never acted on.".to_owned(),
        Status::KeyNotFound => format!(
            "Nothing was changed. Check the key ID {key}; if the key was deleted while sessions it minted may live, deny its user by hand."
        ),
        Status::Contained
        | Status::AlreadyContained
        | Status::Contested
        | Status::Failed
        | Status::Refused
        | Status::DryRun
        | Status::Restored => "The email report has every detail.".to_owned(),
    }
}

/// The step after a restore: run it again once the refusal is dealt with, or contain the key
/// again if the restore was not expected. `key` is a parsed access key ID.
pub fn after_restore(refused: bool, key: &str) -> String {
    if refused {
        format!(
            "Nothing was changed: key {key} stays contained. If the restore is wanted, close what the refusal lists, then run it again: killswitch restore --access-key-id {key} --requested-by YOU --reason WHY (--force goes ahead despite the refusal: only if you are sure)."
        )
    } else {
        format!(
            "If this restore was not expected, contain the key again now: killswitch respond --access-key-id {key} --reason WHY"
        )
    }
}
