//! On-call commands: `status` (what killswitch did to a key) and `restore` (undo exactly that).
//! They run with the engineer's own credentials; their write permissions are never granted to
//! the function.

use serde::Serialize;

use crate::config::Config;
use crate::error::Error;
use crate::incident::AccessKeyId;
use crate::playbook::{deactivate_key, deny_user, revoke_role};
use crate::policy;
use crate::ports::{
    Identity, IncidentStore, KeyStatus, KeyUsage, Notifier, Operator, PolicyTarget,
};
use crate::record::{Records, Restore};
use crate::report::{sanitize_subject, ts};

/// Actions `restore` needs (operator-only), beyond the reads of `status`.
pub const OPERATOR_PERMISSIONS: [&str; 9] = [
    "iam:GetAccessKeyLastUsed",
    "iam:ListAccessKeys",
    "iam:GetUserPolicy",
    "iam:GetRolePolicy",
    "iam:UpdateAccessKey",
    "iam:DeleteUserPolicy",
    "iam:DeleteRolePolicy",
    // The restore log in the incident table (`KILLSWITCH_INCIDENT_TABLE`).
    "dynamodb:GetItem",
    "dynamodb:PutItem",
];

#[derive(Debug, Serialize)]
pub struct KeyState {
    pub access_key_id: String,
    pub user_name: Option<String>,
    pub key_status: Option<KeyStatus>,
    pub last_used: Option<KeyUsage>,
    /// Policies killswitch placed that are there now.
    pub killswitch_policies: Vec<String>,
    pub role_name: Option<String>,
    /// The session cutoff on the role, if killswitch revoked its sessions.
    pub role_sessions_revoked_before: Option<String>,
}

/// The key's state, owner, our policies and last use.
pub async fn status<C: Identity>(
    cloud: &C,
    key: &AccessKeyId,
    user: Option<&str>,
    role: Option<&str>,
) -> Result<KeyState, Error> {
    let usage = cloud.key_usage(key).await?;
    let user_name = user
        .map(str::to_owned)
        .or_else(|| usage.as_ref().map(|u| u.user_name.clone()));
    let mut state = KeyState {
        access_key_id: key.to_string(),
        user_name: user_name.clone(),
        key_status: None,
        last_used: usage,
        killswitch_policies: Vec::new(),
        role_name: role.map(str::to_owned),
        role_sessions_revoked_before: None,
    };
    if let Some(u) = &user_name {
        state.key_status = cloud.key_status(u, key).await?;
        if let Some(doc) = cloud
            .read_policy(&PolicyTarget::User(u.clone()), policy::USER_POLICY_NAME)
            .await?
            && policy::is_deny_all(&doc)
        {
            state
                .killswitch_policies
                .push(format!("user/{u}: {}", policy::USER_POLICY_NAME));
        }
    }
    if let Some(r) = role
        && let Some(doc) = cloud
            .read_policy(&PolicyTarget::Role(r.to_owned()), policy::ROLE_POLICY_NAME)
            .await?
    {
        state
            .killswitch_policies
            .push(format!("role/{r}: {}", policy::ROLE_POLICY_NAME));
        state.role_sessions_revoked_before = policy::revocation_cutoff(&doc).map(ts);
    }
    Ok(state)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RestoreAction {
    ReactivateKey {
        user_name: String,
        access_key_id: String,
    },
    DeletePolicy {
        target: PolicyTarget,
        policy_name: String,
    },
}

impl std::fmt::Display for RestoreAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestoreAction::ReactivateKey {
                user_name,
                access_key_id,
            } => {
                write!(f, "reactivate key {access_key_id} of user {user_name}")
            }
            RestoreAction::DeletePolicy {
                target,
                policy_name,
            } => {
                write!(f, "delete inline policy {policy_name} from {target}")
            }
        }
    }
}

/// What `restore` would change: only what killswitch placed, nothing else.
pub fn restore_plan(state: &KeyState) -> Vec<RestoreAction> {
    let mut plan = Vec::new();
    if let Some(u) = &state.user_name {
        if matches!(state.key_status, Some(KeyStatus::Inactive)) {
            plan.push(RestoreAction::ReactivateKey {
                user_name: u.clone(),
                access_key_id: state.access_key_id.clone(),
            });
        }
        if state
            .killswitch_policies
            .iter()
            .any(|p| p.starts_with("user/"))
        {
            plan.push(RestoreAction::DeletePolicy {
                target: PolicyTarget::User(u.clone()),
                policy_name: policy::USER_POLICY_NAME.into(),
            });
        }
    }
    if let Some(r) = &state.role_name
        && state
            .killswitch_policies
            .iter()
            .any(|p| p.starts_with("role/"))
    {
        plan.push(RestoreAction::DeletePolicy {
            target: PolicyTarget::Role(r.clone()),
            policy_name: policy::ROLE_POLICY_NAME.into(),
        });
    }
    plan
}

#[derive(Debug, Serialize)]
pub struct Restored {
    pub operator_arn: Option<String>,
    pub recorded: bool,
    pub done: Vec<String>,
    pub failed: Vec<String>,
    pub notified: bool,
}

/// Records the restore in the incident store (so the follow-through does not take it for
/// tampering), applies the plan and tells the on-call channel who restored what, and why.
/// `force`: restore even when the restore cannot be recorded (a table is configured but not
/// writable by these credentials).
pub async fn restore<C: Operator + Notifier + Identity + IncidentStore>(
    cloud: &C,
    config: &Config,
    key: &AccessKeyId,
    plan: &[RestoreAction],
    requested_by: &str,
    reason: &str,
    force: bool,
) -> Restored {
    let operator = cloud.caller().await.ok();
    let records = Records::new(cloud, config);
    let recording = match &operator {
        Some((account, arn)) => {
            let restore = Restore {
                by: requested_by.to_owned(),
                operator_arn: Some(arn.clone()),
                reason: reason.to_owned(),
                at: chrono::Utc::now(),
                actions: plan.iter().map(ToString::to_string).collect(),
            };
            records.record_restore(account, key, restore).await
        }
        None => Err(Error::BadEvent(
            "sts:GetCallerIdentity failed: the restore cannot name who made it".into(),
        )),
    };
    let recorded = recording.is_ok();
    if let Err(e) = &recording
        && records.enabled
        && !force
    {
        // Unrecorded, a follow-through still in flight would take the restore for tampering
        // and contain the key again; and the history would not say who lifted it.
        return Restored {
            operator_arn: operator.map(|(_, arn)| arn),
            recorded: false,
            done: Vec::new(),
            failed: vec![format!(
                "nothing restored: the restore could not be recorded in the incident table ({}); run it as the incident-response role, or pass --force",
                e.chain()
            )],
            notified: false,
        };
    }
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for action in plan {
        let result = match action {
            RestoreAction::ReactivateKey { user_name, .. } => {
                deactivate_key::undo(cloud, user_name, key).await
            }
            RestoreAction::DeletePolicy {
                target: PolicyTarget::User(user),
                ..
            } => deny_user::undo(cloud, user).await,
            RestoreAction::DeletePolicy {
                target: PolicyTarget::Role(role),
                ..
            } => revoke_role::undo(cloud, role).await,
        };
        match result {
            Ok(()) => done.push(action.to_string()),
            Err(e) => failed.push(format!("{action}: {}", e.chain())),
        }
    }
    let subject = sanitize_subject(&format!(
        "[killswitch] RESTORED{}: {key} by {requested_by}",
        if failed.is_empty() { "" } else { " (PARTLY)" }
    ));
    let operator_arn = operator
        .as_ref()
        .map(|(_, arn)| arn.as_str())
        .unwrap_or("(unknown: sts:GetCallerIdentity failed)");
    let mut body = format!(
        "Containment of {key} was undone by hand.\n\nBy:     {requested_by}\nAs:     {operator_arn}\nReason: {reason}\nRecorded in the incident store: {}\n\nDone:\n",
        if recorded {
            "yes"
        } else if config.incident_table.is_some() {
            "NO (the store could not be written)"
        } else {
            "no store configured"
        }
    );
    for d in &done {
        body.push_str(&format!("  - {d}\n"));
    }
    if !failed.is_empty() {
        body.push_str("Failed:\n");
        for f in &failed {
            body.push_str(&format!("  - {f}\n"));
        }
    }
    body.push_str("\nNothing else was changed. If this was not expected, contain the key again.\n");
    let notified = match cloud.publish(&subject, &body).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e.chain(), "could not publish the restore notice");
            false
        }
    };
    Restored {
        operator_arn: operator.map(|(_, arn)| arn),
        recorded,
        done,
        failed,
        notified,
    }
}
