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

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Step;
use super::lease::Lease;
use crate::config::IdentityCenter;
use crate::error::Error;
use crate::ports::{Assignment, Directory, Identity, IdentityCenterAdmin, IncidentStore};
pub use crate::record::Removed;
use crate::report::{Outcome, Report};

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

const SID_USERS: &str = "KillSwitchIdentityCenterUsers";
const SID_SESSIONS: &str = "KillSwitchIdentityCenterSessions";

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

/// One denied principal in the policy.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// Every session of an Identity Center user (`identitystore:UserId`).
    User { user_id: String },
    /// One permission set's sessions of the user (`aws:userid` = `ROLE-ID:user-name`).
    Session { userid: String },
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::User { user_id } => write!(f, "identitystore:UserId {user_id}"),
            Entry::Session { userid } => write!(f, "aws:userid {userid}"),
        }
    }
}

/// The entries a portal plan denies.
pub fn entries(session: &str, user_id: Option<&str>) -> Vec<Entry> {
    let mut out = vec![Entry::Session {
        userid: session.to_owned(),
    }];
    if let Some(id) = user_id {
        out.push(Entry::User {
            user_id: id.to_owned(),
        });
    }
    out
}

/// Identity store user IDs: `[0-9a-f-]` and an optional `NNNNNNNNNN-` store prefix.
fn is_user_id(id: &str) -> bool {
    (1..=47).contains(&id.len()) && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

fn is_userid(u: &str) -> bool {
    u.split_once(':').is_some_and(|(id, session)| {
        crate::trigger::is_role_id(id) && crate::trigger::is_session_name(session)
    })
}

/// What the deny policy holds: our entries, the statements not ours (the set-up placeholder,
/// anything an administrator added: kept untouched), and whether a statement under our Sids is
/// not exactly what we write (a decoy or an edit that may deny nobody: rewritten, never trusted).
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub entries: Vec<Entry>,
    pub others: Vec<Value>,
    pub tampered: bool,
}

pub fn parse(document: &str) -> Parsed {
    let Ok(doc) = serde_json::from_str::<Value>(document) else {
        return Parsed {
            tampered: true,
            ..Parsed::default()
        };
    };
    let statements = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    };
    let mut out = Parsed::default();
    for st in statements {
        let sid = st.get("Sid").and_then(Value::as_str).unwrap_or("");
        let (key, make): (&str, fn(String) -> Entry) = match sid {
            SID_USERS => ("identitystore:UserId", |user_id| Entry::User { user_id }),
            SID_SESSIONS => ("aws:userid", |userid| Entry::Session { userid }),
            _ => {
                // Every permission set references this policy: an Allow planted here would grant
                // its access to all of them. Only denies are kept; anything else is dropped.
                if st.get("Effect").and_then(Value::as_str) == Some("Deny") {
                    out.others.push(st);
                } else {
                    out.tampered = true;
                }
                continue;
            }
        };
        let values: Vec<String> = match st.pointer(&format!("/Condition/StringEquals/{key}")) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        let valid: Vec<String> = values
            .into_iter()
            .filter(|v| {
                if sid == SID_USERS {
                    is_user_id(v)
                } else {
                    is_userid(v)
                }
            })
            .collect();
        let found: Vec<Entry> = valid.into_iter().map(make).collect();
        let canonical: Value = serde_json::from_str(&document_for(&found, &[])).unwrap_or_default();
        if !canonical["Statement"]
            .as_array()
            .is_some_and(|c| c.len() == 1 && c[0] == st)
        {
            out.tampered = true;
        }
        out.entries.extend(found);
    }
    out.entries.sort();
    out.entries.dedup();
    out
}

/// The policy document: the others first, then one statement per condition key (compact).
pub fn document_for(entries: &[Entry], others: &[Value]) -> String {
    let deny = |sid: &str, key: &str, values: Vec<&str>| {
        json!({"Sid": sid, "Effect": "Deny", "Action": "*", "Resource": "*",
               "Condition": {"StringEquals": {key: values}}})
    };
    let mut statements: Vec<Value> = others.to_vec();
    let users: Vec<&str> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::User { user_id } => Some(user_id.as_str()),
            Entry::Session { .. } => None,
        })
        .collect();
    if !users.is_empty() {
        statements.push(deny(SID_USERS, "identitystore:UserId", users));
    }
    let sessions: Vec<&str> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Session { userid } => Some(userid.as_str()),
            Entry::User { .. } => None,
        })
        .collect();
    if !sessions.is_empty() {
        statements.push(deny(SID_SESSIONS, "aws:userid", sessions));
    }
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// IAM counts a managed policy's size without whitespace.
fn size(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
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
                policy_arn.rsplit('/').next().unwrap_or(policy_arn)
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

fn list(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" and ")
}

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
    if e.aws_code() == Some("NoSuchEntity") {
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
            Err(e) if e.aws_code() == Some("LimitExceeded") && attempt + 1 < ATTEMPTS => continue,
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
        Err(e) if e.aws_code() == Some("NoSuchEntity") => Ok(()),
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

/// How long the contain phase waits for the identity store: the `aws:userid` deny goes out
/// without the user ID rather than late.
const LOOKUP_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// The user's identity store ID for the contain phase, or `None` (the step says why).
pub async fn lookup<H: IdentityCenterAdmin>(
    home: &H,
    config: &IdentityCenter,
    user_name: &str,
    incident: &crate::incident::Incident,
    report: &mut Report,
) -> Option<String> {
    let session = super::locate::session_name(incident);
    let found = tokio::time::timeout(
        LOOKUP_BUDGET,
        resolve_user(home, config, user_name, &session),
    )
    .await;
    let (outcome, detail, id) = match found {
        Ok(Ok(id)) => (
            Outcome::Done,
            format!(
                "Identity Center user {user_name} is identitystore:UserId {id}: denied with every permission set that references the deny policy"
            ),
            Some(id),
        ),
        Ok(Err(e)) => (
            Outcome::Failed,
            format!(
                "Identity Center user {user_name} NOT looked up ({}): only this permission set's sessions (aws:userid) are denied",
                e.chain()
            ),
            None,
        ),
        Err(_) => (
            Outcome::Failed,
            format!(
                "Identity Center did not answer within {} s: only this permission set's sessions (aws:userid) are denied",
                LOOKUP_BUDGET.as_secs()
            ),
            None,
        ),
    };
    report.record(Step::ResolveOwner, outcome, detail, Utc::now());
    id
}

/// The user's identity store ID, through the Identity Center role.
pub async fn resolve_user<H: IdentityCenterAdmin>(
    home: &H,
    config: &IdentityCenter,
    user_name: &str,
    session_name: &str,
) -> Result<String, Error> {
    let dir = home
        .enter_identity_center(
            &config.role_arn,
            &config.external_id,
            session_name,
            config.region.as_deref(),
        )
        .await?;
    let instance = dir.instance().await?;
    dir.user_id(&instance.identity_store_id, user_name)
        .await?
        .ok_or_else(|| Error::BadEvent(format!("the identity store has no user named {user_name}")))
}

/// Removes the user's direct assignment of the role's permission set to the account (new portal
/// sessions stop; the deny already covers those and the running ones). Group assignments are
/// reported, never removed: they give access to everyone in the group.
#[allow(clippy::too_many_arguments)]
pub async fn remove_assignment<H: IdentityCenterAdmin>(
    home: &H,
    config: &IdentityCenter,
    account: &str,
    role: &str,
    user_id: &str,
    user_name: &str,
    session_name: &str,
    report: &mut Report,
) -> Option<Removed> {
    let at = Utc::now();
    let result = async {
        let Some(name) = permission_set_name(role) else {
            return Err(Error::BadEvent(format!(
                "role {role} does not name a permission set (AWSReservedSSO_NAME_HASH)"
            )));
        };
        let dir = home
            .enter_identity_center(
                &config.role_arn,
                &config.external_id,
                session_name,
                config.region.as_deref(),
            )
            .await?;
        let instance = dir.instance().await?;
        let Some(ps) = dir.permission_set(&instance.arn, name).await? else {
            return Err(Error::BadEvent(format!(
                "Identity Center has no permission set named {name}"
            )));
        };
        let assignments = dir.assignments(&instance.arn, account, &ps).await?;
        let groups: Vec<String> = assignments
            .iter()
            .filter(|a| a.principal_type == "GROUP")
            .map(|a| a.principal_id.clone())
            .collect();
        let direct = assignments
            .iter()
            .any(|a| a.principal_type == "USER" && a.principal_id == user_id);
        if direct {
            dir.delete_assignment(&instance.arn, account, &ps, &Assignment::user(user_id))
                .await?;
        }
        Ok((
            direct.then(|| Removed {
                instance_arn: instance.arn.clone(),
                account: account.to_owned(),
                permission_set_arn: ps.clone(),
                permission_set: name.to_owned(),
                user_id: user_id.to_owned(),
                user_name: user_name.to_owned(),
                at: Utc::now(),
            }),
            name.to_owned(),
            groups,
        ))
    }
    .await;
    let groups_note = |groups: &[String]| {
        if groups.is_empty() {
            String::new()
        } else {
            format!(
                " Group assignment(s) of this permission set to the account stay ({}): if {user_name} is in one of them they can still start sessions from the portal (denied by the policy); remove them from the group in Identity Center.",
                groups.join(", ")
            )
        }
    };
    match result {
        Ok((Some(removed), name, groups)) => {
            report.record(
                Step::RemoveAssignment,
                Outcome::Done,
                format!(
                    "removed {user_name}'s direct assignment of permission set {name} to account {account} (recorded: killswitch restore puts it back).{}",
                    groups_note(&groups)
                ),
                at,
            );
            Some(removed)
        }
        Ok((None, name, groups)) => {
            report.record(
                Step::RemoveAssignment,
                Outcome::Skipped,
                format!(
                    "{user_name} has no direct assignment of permission set {name} to account {account}: nothing removed.{}",
                    groups_note(&groups)
                ),
                at,
            );
            None
        }
        Err(e) => {
            report.record(
                Step::RemoveAssignment,
                Outcome::Failed,
                format!(
                    "the assignment was NOT removed (the deny stands): {}",
                    e.chain()
                ),
                at,
            );
            None
        }
    }
}

/// Creates the removed assignment again, through the operators' Restore role.
pub async fn put_back<H: IdentityCenterAdmin>(
    home: &H,
    config: &IdentityCenter,
    removed: &Removed,
) -> Result<String, Error> {
    let Some(role) = &config.restore_role_arn else {
        return Err(Error::BadEvent(format!(
            "KILLSWITCH_IDENTITY_CENTER_RESTORE_ROLE_ARN is not set: put it back by hand: {}",
            manual_put_back(removed)
        )));
    };
    let dir = home
        .enter_identity_center(
            role,
            &config.external_id,
            "killswitch-restore",
            config.region.as_deref(),
        )
        .await?;
    let existing = dir
        .assignments(
            &removed.instance_arn,
            &removed.account,
            &removed.permission_set_arn,
        )
        .await?;
    if existing
        .iter()
        .any(|a| a.principal_type == "USER" && a.principal_id == removed.user_id)
    {
        return Ok(format!(
            "{}'s assignment of {} to {} is already there",
            removed.user_name, removed.permission_set, removed.account
        ));
    }
    dir.create_assignment(
        &removed.instance_arn,
        &removed.account,
        &removed.permission_set_arn,
        &Assignment::user(&removed.user_id),
    )
    .await?;
    Ok(format!(
        "assigned permission set {} to {} in account {} again",
        removed.permission_set, removed.user_name, removed.account
    ))
}

pub fn manual_put_back(r: &Removed) -> String {
    format!(
        "aws sso-admin create-account-assignment --instance-arn {} --target-type AWS_ACCOUNT --target-id {} --permission-set-arn {} --principal-type USER --principal-id {}",
        r.instance_arn, r.account, r.permission_set_arn, r.user_id
    )
}

/// What on-call does by hand when killswitch is not set up to contain portal sessions.
pub fn manual_steps(role: &str, session: Option<&str>, account: &str) -> String {
    let user = session.unwrap_or("<user name: the session name in the finding's principalId>");
    let ps = permission_set_name(role).unwrap_or("<permission set>");
    format!(
        "role {role} belongs to IAM Identity Center and IAM refuses edits to it. By hand, now: (1) in the Identity Center console find user {user} and note their user ID; (2) add to permission set {ps}'s inline policy a Deny of \"*\" on \"*\" with Condition StringEquals identitystore:UserId = that ID (AWS: \"Revoke active IAM role sessions created by permission sets\"), then provision the permission set (to account {account} first); (3) remove the user's assignment or disable the user, and end their sessions (Identity Center > Users > Active sessions). To let killswitch do this: deploy identity-center-policy.yaml in every account, reference KillSwitchDeny from every permission set, deploy identity-center-role.yaml and set IdentityCenterRoleArn"
    )
}
