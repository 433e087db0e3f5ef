//! Identity Center portal sessions: `ASIA…` keys of an `AWSReservedSSO_<PermissionSet>_…` role.
//! IAM refuses any edit to those roles (only Identity Center changes them), so the deny lives in
//! a customer-managed policy that every permission set references once, at set-up
//! (`identity-center-policy.yaml`, `KillSwitchDeny`). At incident time the member role writes a
//! new default version of that policy in the affected account: the least power that contains.
//!
//! Two statements, exact like every deny killswitch writes:
//! * `identitystore:UserId` — the user, with every permission set that references the policy,
//!   however they are renamed; AWS's documented way to revoke permission-set sessions. Needs the
//!   Identity Center role to look the user up;
//! * `aws:userid` = `ROLE-ID:user-name` — the finding's own principal: written always, so the
//!   leaked session is denied even when the lookup fails.
//!
//! Optionally (off by default) the user's direct account assignment for the permission set is
//! removed through the Identity Center role, and recorded for `killswitch restore`.

mod assignment;
mod policy;

use chrono::Utc;
use serde_json::json;

use super::Step;
use super::lease::Lease;
use crate::error::{AwsFailure, Error};
use crate::ports::{Identity, IncidentStore};
pub use crate::record::Removed;
use crate::report::{Outcome, Report};
use crate::vocab::Arn;
pub use assignment::{lookup, manual_put_back, put_back, remove_assignment, resolve_user};
pub use policy::{Entry, Parsed, document_for, entries, parse};
use policy::{list, size};

/// What the member role (and the function in its own account) calls on the deny policy.
pub const POLICY_PERMISSIONS: &[&str] = Step::DenyPortalUser.permissions();

/// What the Identity Center role (`identity-center-role.yaml`) grants the responder.
pub const IDENTITY_CENTER_PERMISSIONS: [&str; 2] = ["sso:ListInstances", "identitystore:GetUserId"];

/// Added to it when assignment removal is on (`RemoveAssignments`).
pub const REMOVE_PERMISSIONS: [&str; 5] = [
    "sso:ListPermissionSets",
    "sso:DescribePermissionSet",
    "sso:ListAccountAssignments",
    "sso:DeleteAccountAssignment",
    "sso:DescribeAccountAssignmentDeletionStatus",
];

/// What the operators' Restore role grants: putting an assignment back can grant any permission
/// set anywhere, so the function never holds it.
pub const RESTORE_PERMISSIONS: [&str; 4] = [
    "sso:ListInstances",
    "sso:ListAccountAssignments",
    "sso:CreateAccountAssignment",
    "sso:DescribeAccountAssignmentCreationStatus",
];

/// IAM's limit on a managed policy document, whitespace not counted (we write none).
pub const MAX_POLICY_CHARS: usize = 6144;
/// IAM keeps at most this many versions of a managed policy.
pub const MAX_VERSIONS: usize = 5;

pub use crate::vocab::IDENTITY_CENTER_ROLE_PREFIX as ROLE_PREFIX;

/// Read-writes that lose a concurrent writer's entry are redone this often.
const ATTEMPTS: usize = 3;

pub fn is_identity_center_role(role: &str) -> bool {
    role.get(..ROLE_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(ROLE_PREFIX))
}

pub use crate::vocab::permission_set_name;

/// The incident index every key of one Identity Center user is noted in (beside the role
/// indexes): a restore for one key must not lift the entries another open incident relies on.
pub fn index_name(user: &str) -> String {
    format!("identity-center-user/{}", user.to_ascii_lowercase())
}

pub fn policy_arn(partition: &str, account: &str, name: &str) -> String {
    format!("arn:{partition}:iam::{account}:policy/{name}")
}

/// Whether the policy's default version denies every wanted entry exactly, and the role has the
/// policy attached (a permission set without the reference makes the deny deny nobody).
pub async fn read_back<I: Identity>(
    iam: &I,
    role: &str,
    policy_arn: &str,
    wanted: &[Entry],
) -> (bool, String) {
    let (current, attached) = tokio::join!(
        iam.policy_default(policy_arn),
        iam.role_managed_policies(role)
    );
    let held = match &current {
        Ok(Some(v)) => {
            let p = parse(&v.document);
            wanted.iter().all(|e| p.entries.contains(e)) && !p.tampered
        }
        _ => false,
    };
    let attached_ok = attached
        .as_ref()
        .is_ok_and(|a| a.iter().any(|x| x == policy_arn));
    let note = match (&current, &attached) {
        (Err(e), _) | (_, Err(e)) => format!("deny policy not read back: {}", e.chain()),
        (Ok(None), _) => format!("deny policy {policy_arn} is GONE"),
        (Ok(Some(v)), Ok(_)) if !held => format!(
            "deny policy {policy_arn} (default version {}) does NOT deny {}",
            v.version,
            list(wanted)
        ),
        (Ok(Some(_)), Ok(_)) if !attached_ok => format!(
            "deny policy {policy_arn} is NOT attached to role {role}: its permission set does not reference it"
        ),
        (Ok(Some(v)), Ok(_)) => format!(
            "deny policy {policy_arn} (default version {}) denies {}, attached to {role}",
            v.version,
            list(wanted)
        ),
    };
    (held && attached_ok, note)
}

/// The permission sets' roles in the account that do not have the deny policy attached: with
/// those, a denied user still works (when assigned). Checked after the deny holds.
pub async fn uncovered<I: Identity>(iam: &I, policy_arn: &str) -> Result<Vec<String>, Error> {
    let roles = iam.identity_center_roles().await?;
    let attached =
        futures::future::join_all(roles.iter().map(|r| iam.role_managed_policies(r))).await;
    let mut out = Vec::new();
    for (role, policies) in roles.into_iter().zip(attached) {
        if !policies?.iter().any(|p| p == policy_arn) {
            out.push(role);
        }
    }
    Ok(out)
}

/// Records in the report whether every permission set in the account is covered.
pub async fn coverage<I: Identity>(iam: &I, policy_arn: &str, user: &str, report: &mut Report) {
    let at = Utc::now();
    match uncovered(iam, policy_arn).await {
        Ok(missing) if missing.is_empty() => report.record(
            Step::Verify,
            Outcome::Done,
            format!("every permission set's role in this account references {policy_arn}"),
            at,
        ),
        Ok(missing) => report.record(
            Step::Verify,
            Outcome::Failed,
            format!(
                "{UNCOVERED_PREFIX} {}: {user} can still sign in with those if assigned. Add the {} reference to their permission sets and provision them",
                missing.join(", "),
                Arn::parse(policy_arn).map_or(policy_arn, |arn| arn.name())
            ),
            at,
        ),
        Err(e) => report.record(
            Step::Verify,
            Outcome::Failed,
            format!("{UNCOVERED_PREFIX} unknown (the roles could not be listed: {})", e.chain()),
            at,
        ),
    }
}

pub use crate::report::UNCOVERED_PREFIX;

/// Adds the entries to the deny policy (a new default version) and reads it back. Returns the
/// outcome for the contain step and its detail. Writers of one account's policy take turns
/// through [`lease`], taken by the caller.
pub async fn apply<I: Identity>(
    iam: &I,
    account: &str,
    role: &str,
    policy_arn: &str,
    wanted: &[Entry],
    dry_run: bool,
) -> (Outcome, String) {
    if dry_run {
        return (
            Outcome::Skipped,
            format!(
                "dry run: would add {} to {policy_arn} (a new default version)",
                list(wanted)
            ),
        );
    }
    match write(iam, policy_arn, wanted).await {
        Ok((changed, rewrote)) => {
            let (ok, note) = read_back(iam, role, policy_arn, wanted).await;
            let outcome = if !ok {
                Outcome::Failed
            } else if changed {
                Outcome::Done
            } else {
                Outcome::AlreadyDone
            };
            let tamper = if rewrote {
                " A statement under killswitch's name was TAMPERED OR DECOY (not what killswitch writes) and was rewritten: find who changed the policy."
            } else {
                ""
            };
            (outcome, format!("{note}.{tamper}"))
        }
        Err(e) => (Outcome::Failed, explain(&e, policy_arn, account)),
    }
}

fn explain(e: &Error, policy_arn: &str, account: &str) -> String {
    let chain = e.chain();
    if e.is(AwsFailure::NotFound) {
        format!(
            "deny policy {policy_arn} does not exist in account {account}: deploy identity-center-policy.yaml there and reference it from every permission set ({chain})"
        )
    } else {
        format!("deny policy {policy_arn} NOT written: {chain}")
    }
}

/// `(changed, rewrote a tampered statement)`.
async fn write<I: Identity>(
    iam: &I,
    policy_arn: &str,
    wanted: &[Entry],
) -> Result<(bool, bool), Error> {
    let mut changed = false;
    let mut rewrote = false;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(300 * attempt as u64)).await;
        }
        let (current, versions) = tokio::join!(
            iam.policy_default(policy_arn),
            iam.policy_versions(policy_arn)
        );
        let Some(current) = current? else {
            return Err(Error::Aws {
                op: "iam:GetPolicy",
                code: Some("NoSuchEntity".into()),
                source: format!("no policy {policy_arn}").into(),
            });
        };
        let parsed = parse(&current.document);
        if wanted.iter().all(|e| parsed.entries.contains(e)) && !parsed.tampered {
            return Ok((changed, rewrote));
        }
        rewrote |= parsed.tampered;
        let mut all = parsed.entries;
        all.extend(wanted.iter().cloned());
        all.sort();
        all.dedup();
        let document = document_for(&all, &parsed.others);
        if size(&document) > MAX_POLICY_CHARS {
            return Err(Error::BadEvent(format!(
                "LimitExceeded: {} denied principals need {} characters, over IAM's {MAX_POLICY_CHARS} for a managed policy: restore old incidents to free it",
                all.len(),
                size(&document)
            )));
        }
        make_room(iam, policy_arn, &versions?).await?;
        match iam.create_policy_version(policy_arn, &document).await {
            Ok(_) => changed = true,
            // Another writer filled the fifth slot meanwhile: read again.
            Err(e) if e.is(AwsFailure::LimitExceeded) && attempt + 1 < ATTEMPTS => continue,
            Err(e) => return Err(e),
        }
        // A writer without the lease (no incident table) can still drop ours: read again.
        let back = iam.policy_default(policy_arn).await?;
        if back.is_some_and(|b| {
            let p = parse(&b.document);
            wanted.iter().all(|e| p.entries.contains(e)) && !p.tampered
        }) {
            return Ok((changed, rewrote));
        }
    }
    Err(Error::BadEvent(format!(
        "the deny policy {policy_arn} did not hold the entries after {ATTEMPTS} read-writes (concurrent changes)"
    )))
}

/// At IAM's 5 versions, deletes the oldest non-default one so the next can be created.
async fn make_room<I: Identity>(
    iam: &I,
    policy_arn: &str,
    versions: &[crate::ports::VersionInfo],
) -> Result<(), Error> {
    let Some(oldest) = versions
        .iter()
        .filter(|v| !v.default)
        .min_by_key(|v| (v.created, v.version.clone()))
        .filter(|_| versions.len() >= MAX_VERSIONS)
    else {
        return Ok(());
    };
    match iam.delete_policy_version(policy_arn, &oldest.version).await {
        // A concurrent writer made room first.
        Err(e) if e.is(AwsFailure::NotFound) => Ok(()),
        other => other,
    }
}

/// Takes the entries out again (`killswitch restore`): a new default version without them.
pub async fn lift<I: Identity>(
    iam: &I,
    policy_arn: &str,
    entries: &[Entry],
) -> Result<String, Error> {
    let (current, versions) = tokio::join!(
        iam.policy_default(policy_arn),
        iam.policy_versions(policy_arn)
    );
    let Some(current) = current? else {
        return Ok(format!("deny policy {policy_arn} is gone"));
    };
    let parsed = parse(&current.document);
    if !entries.iter().any(|e| parsed.entries.contains(e)) {
        return Ok(format!(
            "{policy_arn} already denies none of {}",
            list(entries)
        ));
    }
    let kept: Vec<Entry> = parsed
        .entries
        .iter()
        .filter(|e| !entries.contains(e))
        .cloned()
        .collect();
    let mut others = parsed.others;
    if kept.is_empty() && others.is_empty() {
        // A managed policy needs a statement: the set-up's placeholder again.
        others.push(
            json!({"Sid": "KillSwitchNobodyYet", "Effect": "Deny", "Action": "*", "Resource": "*",
                           "Condition": {"StringEquals": {"aws:userid": "killswitch-nobody"}}}),
        );
    }
    make_room(iam, policy_arn, &versions?).await?;
    iam.create_policy_version(policy_arn, &document_for(&kept, &others))
        .await?;
    Ok(format!(
        "took {} out of {policy_arn} ({} other entr{} stay)",
        list(entries),
        kept.len(),
        if kept.len() == 1 { "y" } else { "ies" }
    ))
}

/// Writers of one account's deny policy take turns (IAM has no conditional write): this lease,
/// in the incident table when there is one.
pub async fn lease<'a, S: IncidentStore>(store: Option<&'a S>, account: &str) -> Lease<'a, S> {
    Lease::take(
        store,
        format!("identity-center-lease#{account}"),
        std::time::Duration::from_millis(100),
    )
    .await
}

/// What on-call does by hand when killswitch is not set up to contain portal sessions.
pub fn manual_steps(role: &str, session: Option<&str>, account: &str) -> String {
    let user = session.unwrap_or("<user name: the session name in the finding's principalId>");
    let ps = permission_set_name(role).unwrap_or("<permission set>");
    format!(
        "role {role} belongs to IAM Identity Center and IAM refuses edits to it. By hand, now: (1) in the Identity Center console find user {user} and note their user ID; (2) add to permission set {ps}'s inline policy a Deny of \"*\" on \"*\" with Condition StringEquals identitystore:UserId = that ID (AWS: \"Revoke active IAM role sessions created by permission sets\"), then provision the permission set (to account {account} first); (3) remove the user's assignment or disable the user, and end their sessions (Identity Center > Users > Active sessions). To let killswitch do this: deploy identity-center-policy.yaml in every account, reference KillSwitchDeny from every permission set, deploy identity-center-role.yaml and set IdentityCenterRoleArn"
    )
}
