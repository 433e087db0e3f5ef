//! The checks on the wave's answers, in the order they can refuse. Each returns `None` when the
//! incident stops there, with the report saying why.

use chrono::{DateTime, Utc};

use super::{Reads, plans, protected_reason, refuse, reject};
use crate::incident::{Incident, KeyKind, Principal, SourceCheck, Trigger};
use crate::playbook::{Context, Plan, Responder, Step};
use crate::ports::{Caller, KeyUsage};
use crate::report::{Outcome, Report, Status};

/// Decides on the reads: a plan, or `None` with the report saying why.
pub fn decide(
    incident: &Incident,
    reads: &Reads,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<Plan> {
    let now = ctx.now;
    believed_at_source(incident, ctx, report, now)?;
    containable_principal(incident, report, now)?;
    trigger_in_this_account(incident, ctx.responder, report, now)?;
    key_in_this_account(reads, ctx.responder, report, now)?;
    let usage = owner_usage(reads, report, now);
    no_role_named_for_user_key(incident, report, now)?;
    let session_seen = confirm_owner(incident, reads, report, now)?;
    let plan = plans::plan(incident, reads, usage.as_ref(), session_seen, ctx, report)?;
    // Refused or not, the notice names whose key it is as IAM says.
    report.principal = plan.principal();
    if let Some(reason) = protected_reason(&plan, &ctx.responder.account, ctx) {
        refuse(report, Step::ResolveOwner, reason, now);
        return None;
    }
    if plan
        .user()
        .is_some_and(|user| user.eq_ignore_ascii_case("root") || user == "<root_account>")
    {
        refuse(
            report,
            Step::ResolveOwner,
            "the key belongs to the root user, which IAM policies cannot restrict".into(),
            now,
        );
        return None;
    }
    Some(plan)
}

/// A finding is acted on as its source holds it (`playbook::source`): one it does not hold is
/// rejected unchanged; one that could not be read back is word only (the key and IAM's owner of
/// it); one an insider can raise on purpose is notify-only unless configured otherwise.
fn believed_at_source(
    incident: &Incident,
    ctx: &Context<'_>,
    report: &mut Report,
    now: DateTime<Utc>,
) -> Option<()> {
    match &incident.source {
        None => {}
        Some(SourceCheck::Forged(why)) => {
            reject_forged(report, why, now);
            return None;
        }
        Some(SourceCheck::Unchecked(why)) => {
            report.record(
                Step::CheckFinding,
                Outcome::Failed,
                format!("NOT CHECKED: {why}; acting on the key and the owner IAM gives for it only, never on the principal the payload names"),
                now,
            );
            if incident.key.kind() == KeyKind::Temporary {
                // IAM cannot name a session key's owner: nothing can be done on the payload's
                // word, so Lambda retries (the read-back may work then) and humans are told.
                report.status = Status::Failed;
                report.summary = format!(
                    "Not contained: the finding could not be read back at GuardDuty ({why}), and a session key's owner is only the payload's word; Lambda will retry. If it keeps failing, contain it by hand: killswitch respond --access-key-id {} --role-name ROLE",
                    incident.key
                );
                return None;
            }
        }
        Some(SourceCheck::Verified(at)) => {
            report.record(Step::CheckFinding, Outcome::Done, at.clone(), now);
        }
    }
    let custom = match &incident.trigger {
        Trigger::GuardDuty { custom, .. } => custom.as_deref(),
        Trigger::Health { .. } | Trigger::Manual { .. } | Trigger::Pivot { .. } => None,
    };
    if let Some(reason) = custom
        && !ctx.config.act_on_custom_findings
    {
        refuse(
            report,
            Step::CheckFinding,
            format!(
                "notify-only: the finding was {reason}, which anyone who can edit them can cause on purpose (KILLSWITCH_ACT_ON_CUSTOM_FINDINGS=true contains on them)"
            ),
            now,
        );
        return None;
    }
    Some(())
}

/// Not a finding its source holds: nothing changes, and the notice says it looked forged.
fn reject_forged(report: &mut Report, why: &str, now: DateTime<Utc>) {
    tracing::warn!(reason = %why, "payload looked forged");
    report.status = Status::Rejected;
    report.summary = format!(
        "Rejected: the payload looked forged ({why}). Nothing was changed. Whoever invoked the function with it can invoke it: find the call in CloudTrail (lambda Invoke) and check who holds lambda:InvokeFunction."
    );
    report.record(Step::CheckFinding, Outcome::Skipped, why.to_owned(), now);
}

/// Root and principal types killswitch does not contain are refused on the trigger's word.
fn containable_principal(
    incident: &Incident,
    report: &mut Report,
    now: DateTime<Utc>,
) -> Option<()> {
    match &incident.principal {
        Principal::Root => {
            // `root::delete_root_key` acts on it when KILLSWITCH_ROOT_KEYS=delete allows.
            let steps = super::root::manual_steps(incident.account.as_ref(), incident.key.as_str());
            refuse(
                report,
                Step::ResolveOwner,
                format!(
                    "the key belongs to the root user, which IAM policies cannot restrict. {steps}"
                ),
                now,
            );
            None
        }
        Principal::Other { user_type } => {
            refuse(
                report,
                Step::ResolveOwner,
                format!("principal type {user_type} is not something killswitch contains"),
                now,
            );
            None
        }
        Principal::IamUser { .. } | Principal::AssumedRole { .. } | Principal::Unresolved => {
            Some(())
        }
    }
}

fn trigger_in_this_account(
    incident: &Incident,
    me: &Responder,
    report: &mut Report,
    now: DateTime<Utc>,
) -> Option<()> {
    if let Some(acct) = &incident.account
        && acct != &me.account
    {
        reject(
            report,
            format!(
                "the trigger is for account {acct}, this function runs in {}",
                me.account
            ),
            now,
        );
        return None;
    }
    Some(())
}

/// The key's account as STS tells it must be ours.
fn key_in_this_account(
    reads: &Reads,
    me: &Responder,
    report: &mut Report,
    now: DateTime<Utc>,
) -> Option<()> {
    match &reads.account {
        Some(Ok(owner)) if owner == &me.account => {
            report.record(
                Step::CheckAccount,
                Outcome::Done,
                format!("key belongs to this account ({owner})"),
                now,
            );
            Some(())
        }
        Some(Ok(owner)) => {
            reject(
                report,
                format!("the key belongs to account {owner}, not to {}", me.account),
                now,
            );
            None
        }
        Some(Err(e)) => {
            report.record(Step::CheckAccount, Outcome::Failed, e.chain(), now);
            report.status = Status::Failed;
            report.summary = "Could not confirm the key belongs to this account, so nothing was changed; Lambda will retry.".into();
            None
        }
        None => {
            report.record(
                Step::CheckAccount,
                Outcome::Failed,
                "the key's account was not read",
                now,
            );
            report.status = Status::Failed;
            report.summary = "Could not confirm the key belongs to this account, so nothing was changed; Lambda will retry.".into();
            None
        }
    }
}

/// IAM's owner of a long-term key, when it was read and known.
fn owner_usage(reads: &Reads, report: &mut Report, now: DateTime<Utc>) -> Option<KeyUsage> {
    match &reads.usage {
        None => None,
        Some(Ok(u)) => u.clone(),
        Some(Err(e)) => {
            report.record(Step::ResolveOwner, Outcome::Failed, e.chain(), now);
            None
        }
    }
}

/// A long-term key belongs to an IAM user: a role named for it is a mistake (or a way to put a
/// deny on a role while the key stays active).
fn no_role_named_for_user_key(
    incident: &Incident,
    report: &mut Report,
    now: DateTime<Utc>,
) -> Option<()> {
    if matches!(incident.principal, Principal::AssumedRole { .. })
        && incident.key.kind() == KeyKind::LongTerm
    {
        reject(
            report,
            format!(
                "{} names a role, but {} is a long-term (AKIA) key of an IAM user: name the user, or no principal and IAM will tell",
                incident.principal, incident.key
            ),
            now,
        );
        return None;
    }
    Some(())
}

/// What CloudTrail says of a manual request's owner. Returns the principal ID of the session
/// seen signing (`Some(None)` when none was), or `None` when CloudTrail shows someone else.
fn confirm_owner(
    incident: &Incident,
    reads: &Reads,
    report: &mut Report,
    now: DateTime<Utc>,
) -> Option<Option<String>> {
    match &reads.owner_seen {
        None => Some(None),
        Some(Ok(Some(seen))) if is_named(&incident.principal, seen) => {
            report.record(
                Step::ResolveOwner,
                Outcome::Done,
                format!(
                    "owner confirmed: CloudTrail shows the key signing calls as {}",
                    describe(seen)
                ),
                now,
            );
            Some(seen.principal_id.clone())
        }
        Some(Ok(Some(seen))) => {
            reject(
                report,
                format!(
                    "the request names {} but CloudTrail shows key {} signing calls as {}: a request is not proof of ownership",
                    incident.principal,
                    incident.key,
                    describe(seen)
                ),
                now,
            );
            None
        }
        Some(Ok(None)) => {
            report.record(
                Step::ResolveOwner,
                Outcome::Done,
                format!("owner UNCONFIRMED: no CloudTrail event of this key yet (Event history lags minutes), so acting on the request's word that it is {}", incident.principal),
                now,
            );
            Some(None)
        }
        // A failed lookup is not "no event yet": anyone who can flood LookupEvents (2 calls per
        // second per Region) could make it fail on purpose and have a request's word deny
        // someone else.
        Some(Err(e)) => {
            reject(
                report,
                format!(
                    "the CloudTrail lookup that checks who signs with {} failed ({}): the request's word that it is {} is not acted on; nothing changed, send the request again",
                    incident.key,
                    e.chain(),
                    incident.principal
                ),
                now,
            );
            None
        }
    }
}

/// Whether CloudTrail's signer is the principal a request names (names are unique regardless
/// of case).
fn is_named(principal: &Principal, seen: &Caller) -> bool {
    let name = seen.name.as_deref().unwrap_or("");
    match principal {
        Principal::AssumedRole {
            role_name,
            session_name,
            ..
        } => {
            // A named session must be the one that signs: denying another session of the role
            // would leave the leaked one working.
            let session_ok = session_name.as_deref().is_none_or(|wanted| {
                seen.principal_id
                    .as_deref()
                    .and_then(|p| p.split_once(':'))
                    .is_some_and(|(_, s)| s == wanted)
            });
            seen.kind == "AssumedRole" && name.eq_ignore_ascii_case(role_name) && session_ok
        }
        Principal::IamUser { user_name } => {
            matches!(seen.kind.as_str(), "IAMUser" | "FederatedUser")
                && name.eq_ignore_ascii_case(user_name)
        }
        Principal::Root | Principal::Other { .. } | Principal::Unresolved => false,
    }
}

fn describe(seen: &Caller) -> String {
    let name = crate::report::quoted(seen.name.as_deref().unwrap_or("?"));
    match seen.kind.as_str() {
        "AssumedRole" => format!("role {name}"),
        "IAMUser" => format!("IAM user {name}"),
        other => format!("{} {name}", crate::report::quoted(other)),
    }
}
