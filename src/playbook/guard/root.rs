//! Root access keys. No IAM policy restricts the root user, so the only way to act on a member
//! account's root key from outside is Organizations' centralized root access: `sts:AssumeRoot`
//! with the root-task policy `IAMDeleteRootUserCredentials`, which can DELETE a root key but not
//! deactivate it (its document allows `iam:DeleteAccessKey`, not `iam:UpdateAccessKey`).
//! Deleting is irreversible and goes against deactivate-never-delete, so it is opt-in
//! (`KILLSWITCH_ROOT_KEYS=delete`), done only on a GuardDuty finding read back at GuardDuty, and
//! the notice names the key removed and when. Otherwise: notify, with the manual steps.

use chrono::{DateTime, Utc};

use super::refuse;
use crate::config::{Quarantine, RootKeys};
use crate::incident::{AccountId, Incident, KeyKind, SourceCheck, Trigger};
use crate::playbook::{Context, Step, dry_run};
use crate::ports::{DELETE_ROOT_CREDENTIALS, KeyStatus, RootAccess, RootCredentials};
use crate::report::{Outcome, Report, Status};

/// What a human does when killswitch does not delete the key itself.
pub fn manual_steps(account: Option<&AccountId>, key: &str) -> String {
    let account = account.map_or("ACCOUNT", AccountId::as_str);
    format!(
        "Root keys are contained by hand: as the root user of {account}, console > account menu > Security credentials > Access keys > {key} > Actions > Deactivate (reversible), then delete it once nothing legitimate uses it; or, with centralized root access, from the management account or IAM's delegated administrator: \
         aws sts assume-root --region us-east-1 --target-principal {account} --task-policy-arn arn={DELETE_ROOT_CREDENTIALS} --duration-seconds 900, \
         then with those credentials aws iam list-access-keys and aws iam delete-access-key --access-key-id {key} (a root session can delete a root key, never deactivate it: irreversible). \
         Then review the account's CloudTrail for the key's calls."
    )
}

/// Why this root key is not deleted, or the account and the role to start the root session from.
pub fn route<'a>(
    incident: &Incident,
    ctx: &Context<'a>,
) -> Result<(AccountId, &'a Quarantine), String> {
    if ctx.config.root_keys == RootKeys::Notify {
        return Err("KILLSWITCH_ROOT_KEYS is `notify`: root keys are never deleted on their own (deletion is irreversible, and a root key cannot be deactivated from outside)".into());
    }
    let (finding_type, custom) = match (&incident.trigger, &incident.source) {
        (
            Trigger::GuardDuty {
                finding_type,
                custom,
                ..
            },
            Some(SourceCheck::Verified(_)),
        ) => (finding_type, custom),
        (
            Trigger::GuardDuty { .. }
            | Trigger::Health { .. }
            | Trigger::Manual { .. }
            | Trigger::Pivot { .. },
            _,
        ) => {
            return Err("only a GuardDuty finding read back at GuardDuty deletes a root key; this trigger is word only".into());
        }
    };
    if let Some(why) = custom
        && !ctx.config.act_on_custom_findings
    {
        return Err(format!(
            "the finding was {why}, which anyone who can edit them can cause on purpose, and a deletion cannot be undone"
        ));
    }
    if finding_type.starts_with("Policy:") {
        // RootCredentialUsage and its kind report that the root user was used, which its owner
        // does too: not a reason for a deletion nobody can undo.
        return Err(format!(
            "{finding_type} reports that the root user was used, not that its key is compromised; only a threat finding deletes a root key"
        ));
    }
    if incident.key.kind() == KeyKind::Temporary {
        return Err(format!(
            "{} is a root session's temporary key: it is in no key list and cannot be deleted; it expires on its own (console sessions within hours). Reset the root password and MFA at once, then delete any root access key",
            incident.key
        ));
    }
    let Some(account) = incident.account.clone() else {
        return Err("the finding names no account".into());
    };
    let ours = account == ctx.responder.account
        || ctx
            .config
            .members
            .as_ref()
            .is_some_and(|m| m.allows(&account));
    if !ours {
        return Err(format!(
            "account {account} is neither this account nor an allowed member account"
        ));
    }
    let Some(role) = ctx.config.quarantine.as_ref() else {
        return Err(
            "no organization role (KILLSWITCH_QUARANTINE_ROLE_ARN) to start a root session from"
                .into(),
        );
    };
    Ok((account, role))
}

/// Deletes the finding's root key through a root session when [`route`] allows it; otherwise
/// refuses with the manual steps. Only the finding's key: a root user may hold a second one.
pub async fn delete_root_key<C: RootAccess>(
    cloud: &C,
    incident: &Incident,
    ctx: &Context<'_>,
    report: &mut Report,
) {
    let now = ctx.now;
    report.principal = "root user".into();
    let steps = manual_steps(incident.account.as_ref(), incident.key.as_str());
    let (account, role) = match route(incident, ctx) {
        Ok(found) => found,
        Err(why) => {
            refuse(
                report,
                Step::ResolveOwner,
                format!(
                    "the key belongs to the root user, which IAM policies cannot restrict; {why}. {steps}"
                ),
                now,
            );
            return;
        }
    };
    if dry_run(incident, ctx) {
        report.status = Status::DryRun;
        report.summary = format!(
            "Dry run: would DELETE root access key {} of account {account} through sts:AssumeRoot (irreversible).",
            incident.key
        );
        report.record(
            Step::DeactivateKey,
            Outcome::WouldDo,
            report.summary.clone(),
            now,
        );
        return;
    }
    let session = match cloud
        .assume_root(&role.role_arn, &role.external_id, &account)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            report.record(Step::EnterAccount, Outcome::Failed, e.chain(), now);
            fail(
                report,
                format!(
                    "no root session in {account} (centralized root access not enabled, not the management account or IAM's delegated administrator, or a standalone account?): {}. {steps}",
                    e.chain()
                ),
            );
            return;
        }
    };
    report.record(
        Step::EnterAccount,
        Outcome::Done,
        format!("root session in {account} (sts:AssumeRoot, {DELETE_ROOT_CREDENTIALS}, 900 s)"),
        now,
    );
    delete_listed(&session, incident, &account, report, now, &steps).await;
}

/// The key is deleted only if the root user's own list holds it: that list, not the payload,
/// says the key is this root user's.
async fn delete_listed<S: RootCredentials>(
    session: &S,
    incident: &Incident,
    account: &AccountId,
    report: &mut Report,
    now: DateTime<Utc>,
    steps: &str,
) {
    let key = &incident.key;
    let listed = match session.root_keys().await {
        Ok(keys) => keys,
        Err(e) => {
            report.record(Step::DeactivateKey, Outcome::Failed, e.chain(), now);
            fail(
                report,
                format!(
                    "could not list the root user's keys: {}. {steps}",
                    e.chain()
                ),
            );
            return;
        }
    };
    let Some(info) = listed.iter().find(|k| &k.id == key) else {
        report.status = Status::KeyNotFound;
        report.summary =
            format!("The root user of {account} holds no access key {key}: nothing deleted.");
        report.record(
            Step::DeactivateKey,
            Outcome::NotFound,
            report.summary.clone(),
            now,
        );
        return;
    };
    let was = match info.status {
        KeyStatus::Active => "Active",
        KeyStatus::Inactive => "Inactive",
        KeyStatus::Other => "not usable",
    };
    let deleted = session.delete_root_key(key).await;
    // When IAM answered: the notice's time, and the drill's time to contain.
    let answered = Utc::now();
    match deleted {
        Ok(true) => {
            let what = format!(
                "DELETED root access key {key} of account {account} at {} (it was {was}; deletion is irreversible: the root user must create a new key if one is needed)",
                answered.to_rfc3339()
            );
            report.status = Status::Contained;
            report.summary = format!("Contained: {what}.");
            report.record(Step::DeactivateKey, Outcome::Done, what, answered);
        }
        Ok(false) => {
            report.status = Status::AlreadyContained;
            report.summary =
                format!("Root access key {key} of account {account} was already gone.");
            report.record(
                Step::DeactivateKey,
                Outcome::AlreadyDone,
                report.summary.clone(),
                answered,
            );
        }
        Err(e) => {
            report.record(Step::DeactivateKey, Outcome::Failed, e.chain(), answered);
            fail(
                report,
                format!("deleting root key {key} failed: {}. {steps}", e.chain()),
            );
        }
    }
}

fn fail(report: &mut Report, why: String) {
    tracing::error!(reason = %why, "root key not contained");
    report.status = Status::Failed;
    report.summary = format!("CONTAINMENT FAILED: {why}");
}
