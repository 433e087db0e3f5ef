//! Summaries, next steps, undo commands and the notices. The wording of every notice is in
//! `report` (`Report::message`, `Report::short_message`); this decides what goes out when.

use chrono::{DateTime, Utc};
use tracing::{error, info};

use super::{Plan, deactivate_key, deny_user, revoke_role};
use crate::incident::{AccountId, Incident, SampleFinding};
use crate::policy;
use crate::ports::Notifier;
use crate::report::chat::{self, Form};
use crate::report::{Notification, Outcome, Report, Status};

/// Summary, next steps and undo commands, from what happened.
pub fn finish(
    report: &mut Report,
    incident: &Incident,
    plan: Option<&Plan>,
    member: Option<&AccountId>,
) {
    let key = &incident.key;
    if report.summary.is_empty() {
        report.summary = match report.status {
            Status::Contained => format!("Leaked key {key} is contained and verified."),
            Status::AlreadyContained => format!(
                "Key {key} was already contained; nothing had to change (repeated trigger)."
            ),
            Status::Contested => format!(
                "Containment of {key} was UNDONE shortly after it was applied (attacker still active?) and has been re-applied. Investigate now."
            ),
            Status::Failed => format!(
                "Containment of {key} did NOT complete. Act by hand now; Lambda will retry."
            ),
            Status::DryRun => format!(
                "Dry run for {key}: nothing was changed; the actions below are what would be done."
            ),
            Status::KeyNotFound => {
                format!("Key {key} does not exist for its user: nothing to contain.")
            }
            Status::Restored => format!("Containment of {key} was lifted by an operator."),
            Status::Refused | Status::Rejected | Status::Sample => String::new(),
        };
    }
    let mut next = Vec::new();
    match plan {
        Some(Plan::User {
            user,
            deactivate,
            deny,
            ..
        }) => {
            next.push(if matches!(incident.trigger, crate::incident::Trigger::Pivot { .. }) {
                // A key the leaked key minted: its user may be one the holder created.
                format!("Key {key} was minted by the leaked key. If user {user} is one the key's holder created (see the leaked key's report), delete that user; otherwise rotate the key's uses and give {user} a new key only after the leak is understood.")
            } else {
                format!("Find and rotate every place key {key} is used (it stays Inactive; do not reactivate it). Give {user} a new key only after the leak is understood.")
            });
            next.push(match deny {
                deny_user::Deny::Inline => format!("{} blocks ALL of user {user}'s access, including any other key: remove it once legitimate keys are rotated.", policy::USER_POLICY_NAME),
                deny_user::Deny::Managed => format!("The AWS-managed AWSDenyAll is attached to user {user} (its inline-policy quota was full: look for the policies that filled it, they may be the attacker's) and blocks ALL of its access: detach it once legitimate keys are rotated."),
                deny_user::Deny::LockedOut => format!("EVERY access key of user {user} is deactivated and its console password deleted (both policy quotas were full: look for what filled them). Reactivate only keys you trust; the password can only be reset. Sessions it minted with GetSessionToken/GetFederationToken may still work (up to 36 h): check the activity below."),
                deny_user::Deny::LockedOutBounded => format!("EVERY access key of user {user} is deactivated, its console password deleted and AWSDenyAll set as its permissions boundary (both policy quotas were full: look for what filled them). Reactivate only keys you trust; the password can only be reset."),
            });
            report.undo = deactivate
                .then(|| deactivate_key::undo_command(user, key))
                .into_iter()
                .chain([deny_user::undo_command(user, *deny)])
                .collect();
        }
        Some(Plan::Role {
            role,
            session: Some(session),
            ..
        }) => {
            next.push(format!("Only session {session} of role {role} is denied, also when it fetches fresh credentials: for an instance role that session IS the instance's own workload (session name = instance ID), which now fails too. Replace or isolate that instance; the role's other sessions keep working."));
            next.push(format!("Find how the session credentials of role {role} leaked (instance metadata, CI logs, a developer laptop)."));
            report.undo = vec![revoke_role::undo_session_command(role, session)];
        }
        Some(Plan::Portal {
            role,
            user,
            user_id,
            policy_arn,
            ..
        }) => {
            let whom = match user_id {
                Some(id) => format!(
                    "Identity Center user {user} (identitystore:UserId {id}) is denied in this account with every permission set that references the deny policy (a permission set without the reference still works: the set-up puts it on all)"
                ),
                None => format!(
                    "Identity Center user {user} is denied only through role {role} in this account (the user ID was not looked up: other permission sets still work)"
                ),
            };
            next.push(format!("{whom}, by {policy_arn}, which every permission set references. Their portal sessions in OTHER accounts are not denied: disable the user in Identity Center (Users > Disable user access) and end their active sessions if the leak may reach further."));
            next.push(format!("Find how {user}'s portal credentials leaked (`aws configure export-credentials`, the portal's access-keys page, a shell history), and have them sign in again (MFA) only once it is understood."));
            report.undo = vec![format!(
                "aws iam create-policy-version --policy-arn {policy_arn} --set-as-default --policy-document <the current document without {user}'s entries>   (killswitch restore does exactly that)"
            )];
        }
        Some(Plan::Role { role, .. }) => {
            next.push(format!("EVERY session of role {role} issued before the cutoff is denied, whoever uses it: workloads on this role fail until they get fresh credentials (they will on their next refresh)."));
            next.push(format!("Find how the session credentials of role {role} leaked (instance metadata, CI logs, a developer laptop)."));
            report.undo = vec![format!(
                "{}   (only if the revocation itself causes an outage)",
                revoke_role::undo_command(role)
            )];
        }
        None => {}
    }
    if report.steps.iter().any(|s| {
        s.step == super::Step::Quarantine
            && matches!(s.outcome, Outcome::Done | Outcome::AlreadyDone)
    }) {
        next.push(format!(
            "The org quarantine SCP (above) denies this principal from outside the account, whatever an admin there changes; it stays until killswitch restore. {}",
            super::quarantine::NOT_COVERED
        ));
    }
    if report.status == Status::DryRun {
        // Nothing was changed: no undo, no advice about a state that does not exist.
        report.undo.clear();
        next = vec![format!(
            "Nothing was changed. To contain for real, send the same request without dry run (killswitch respond --access-key-id {key} --reason WHY)."
        )];
    }
    if !report.undo.is_empty() {
        report.undo.insert(
            0,
            format!(
                "killswitch restore --access-key-id {key} --requested-by YOU --reason WHY   (refuses while the holder left a key or password behind and revokes the sessions it minted first; the raw commands below skip those checks)"
            ),
        );
    }
    if report.status == Status::Failed
        && let Some(Plan::Portal { role, user, .. }) = plan
    {
        next.insert(0, format!("CONTAINMENT FAILED: disable Identity Center user {user} now (Identity Center > Users > Disable user access), end their active sessions, and add a Deny with identitystore:UserId to the inline policy of the permission set behind {role}, then provision it; read the failed steps above."));
    } else if report.status == Status::Failed {
        next.insert(0, format!("CONTAINMENT FAILED: deactivate {key} by hand now (aws iam update-access-key --status Inactive ...) and read the failed steps above."));
    }
    if report.status == Status::Refused {
        next.insert(
            0,
            format!(
                "Decide by hand what to do with key {key}: killswitch did not change anything."
            ),
        );
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
    report.open = crate::report::open::items(report);
    report.next_steps = next;
}

/// Publishes the full report.
pub async fn notify<N: Notifier>(cloud: &N, report: &mut Report) {
    let subject = report.subject();
    publish(cloud, report, subject, report.message(), Form::Full).await;
}

/// The short notice right after containment: on-call knows within seconds; the full report
/// follows from the follow-through.
pub async fn announce<N: Notifier>(cloud: &N, report: &mut Report) {
    let subject = report.short_subject();
    let body = report.short_message();
    publish(cloud, report, subject, body, Form::Short).await;
}

async fn publish<N: Notifier>(
    cloud: &N,
    report: &mut Report,
    subject: String,
    body: String,
    form: Form,
) {
    // Chat and email at once: one failing or slow never holds up the other.
    let card = cloud.chats().then(|| chat::card(report, &subject, form));
    let chat_delivery = async {
        let card = card?;
        Some(match cloud.publish_chat(&card).await {
            Ok(()) => {
                info!(step = "notify", outcome = "done", "chat card published");
                Notification::Sent {
                    subject: subject.clone(),
                }
            }
            Err(e) => {
                error!(step = "notify", error = %e.chain(), "could not publish the chat card");
                Notification::Failed {
                    subject: subject.clone(),
                    error: e.chain(),
                }
            }
        })
    };
    let email = async {
        if cloud.publishes() {
            Some(cloud.publish(&subject, &body).await)
        } else {
            None
        }
    };
    let (chat_delivery, email) = tokio::join!(chat_delivery, email);
    if chat_delivery.is_some() {
        report.chat = chat_delivery;
    }
    let Some(email) = email else {
        info!(step = "notify", outcome = "not published", subject = %subject, "no topic");
        report.notification = Notification::NotPublished { subject };
        return;
    };
    match email {
        Ok(()) => {
            info!(step = "notify", outcome = "done", subject = %subject, "published");
            report.notification = Notification::Sent { subject };
        }
        Err(e) => {
            error!(step = "notify", error = %e.chain(), "could not publish");
            report.notification = Notification::Failed {
                subject,
                error: e.chain(),
            };
        }
    }
}

/// A re-emitted finding whose count grew: short, and says containment still holds.
pub async fn still_trying<N: Notifier>(cloud: &N, report: &mut Report, was: u64, now: u64) {
    let subject = report.still_trying_subject(was, now);
    let body = report.still_trying_message(was, now);
    publish(cloud, report, subject, body, Form::StillTrying { was, now }).await;
}

/// A GuardDuty sample: a notice, no IAM call.
pub async fn respond_to_sample<N: Notifier>(
    cloud: &N,
    sample: &SampleFinding,
    now: DateTime<Utc>,
) -> Report {
    let mut report = Report::sample(sample, now);
    info!(finding_id = %sample.finding_id, "sample finding ignored");
    notify(cloud, &mut report).await;
    report
}
