//! What a restore tells: the SNS notices before and after (or of its refusal), and the
//! operator's next steps.

use super::action::RestoreAction;
use super::assess::Assessment;
use super::restore::Restored;
use crate::incident::{AccessKeyId, AccountId};
use crate::ports::Notifier;
use crate::report::sanitize_subject;

/// Who restores which key, as which identity, and why: what every notice of it names.
pub(super) struct Who<'a> {
    pub key: &'a AccessKeyId,
    pub requested_by: &'a str,
    pub reason: &'a str,
    /// The operator's account and ARN; `None` when sts:GetCallerIdentity failed.
    pub operator: Option<(AccountId, String)>,
}

impl Who<'_> {
    pub fn operator_arn(&self) -> Option<&str> {
        self.operator.as_ref().map(|(_, arn)| arn.as_str())
    }

    /// The chat thread of the key's notices: (account, key).
    pub fn thread(&self) -> (Option<&str>, &str) {
        (
            self.operator.as_ref().map(|(a, _)| a.as_str()),
            self.key.as_str(),
        )
    }

    /// A notice's first lines: what happens, then key, who, as which identity, and why.
    fn header(&self, what: &str) -> String {
        format!(
            "{what}\n\nKey:    {}\nBy:     {}\nAs:     {}\nReason: {}\n",
            self.key,
            self.requested_by,
            self.operator_arn()
                .unwrap_or("(unknown: sts:GetCallerIdentity failed)"),
            self.reason
        )
    }
}

/// `head` and one `  - item` line per item.
fn items(body: &mut String, head: &str, items: impl IntoIterator<Item = impl std::fmt::Display>) {
    body.push_str(head);
    for item in items {
        body.push_str(&format!("  - {item}\n"));
    }
}

/// The RESTORE REFUSED notice: why, and the plan not carried out.
pub(super) fn refused(who: &Who<'_>, assessment: &Assessment) -> String {
    let key = who.key;
    let mut body = who.header(&format!(
        "A restore of {key} was REFUSED: nothing was changed."
    ));
    items(&mut body, "\nWhy:\n", &assessment.refusals);
    if !assessment.plan.is_empty() {
        items(
            &mut body,
            "\nThe plan, NOT carried out:\n",
            &assessment.plan,
        );
    }
    body.push_str(
        "\nIf this restore was not expected, someone may be trying to re-arm the key's holder.\n",
    );
    body
}

/// The RESTORING notice, sent before acting: the plan, and what `--force` went past.
pub(super) fn before(who: &Who<'_>, assessment: &Assessment, force: bool) -> String {
    let key = who.key;
    let mut body = who.header(&format!(
        "Containment of {key} is being undone by hand, now."
    ));
    items(&mut body, "\nAbout to:\n", &assessment.plan);
    if force && !assessment.refusals.is_empty() {
        items(
            &mut body,
            "\nForced past these warnings:\n",
            &assessment.refusals,
        );
    }
    body
}

/// The RESTORED notice: what was done and what failed, and what stays as it is.
pub(super) fn after(who: &Who<'_>, plan: &[RestoreAction], out: &Restored) -> String {
    let key = who.key;
    let mut body = who.header(&format!("Containment of {key} was undone by hand."));
    body.push_str(&format!(
        "Recorded in the incident store: {}\n\n",
        match &out.not_recorded {
            None => "yes".to_owned(),
            Some(why) => format!("NO: {why}"),
        }
    ));
    items(&mut body, "Done:\n", &out.done);
    if !out.failed.is_empty() {
        items(&mut body, "Failed:\n", &out.failed);
    }
    if !plan
        .iter()
        .any(|a| matches!(a, RestoreAction::ReactivateKey { .. }))
    {
        body.push_str(&format!(
            "\nKey {key} stays Inactive (reactivating it is its own flag: --reactivate-key).\n"
        ));
    }
    body.push_str("\nNothing else was changed. If this was not expected, contain the key again.\n");
    if !out.unchecked.is_empty() {
        items(&mut body, "\nNot checked:\n", &out.unchecked);
    }
    body
}

/// A user's key whose deny is lifted without `--reactivate-key`.
pub(super) fn stays_inactive(plan: &[RestoreAction]) -> bool {
    !plan
        .iter()
        .any(|a| matches!(a, RestoreAction::ReactivateKey { .. }))
        && plan
            .iter()
            .any(|a| matches!(a, RestoreAction::RevokeUserSessions { .. }))
}

/// After a refusal: fix what it lists, or `--force` and what that costs.
pub fn refused_next_steps() -> Vec<String> {
    vec![
        "Deal with each refusal listed (most name the command that does it), then run the same restore again.".into(),
        "Or add --force to restore anyway: what the refusals list stays as it is (a live credential keeps working for the key's holder), and the RESTORING notice names what was forced past.".into(),
    ]
}

/// After a restore that acted: what is left to do.
pub(super) fn done_next_steps(
    out: &Restored,
    key: &AccessKeyId,
    store: bool,
    stays_inactive: bool,
) -> Vec<String> {
    let mut next = Vec::new();
    if !out.failed.is_empty() {
        next.push(
            "Fix what FAILED says, then run the same restore again (what is done stays done)."
                .to_owned(),
        );
    }
    if !out.recorded && store {
        next.push(format!(
            "The restore is not in the incident record: a follow-through still in flight may contain {key} again; check with killswitch status --access-key-id {key} in a few minutes."
        ));
    }
    match (out.announced, out.notified) {
        (true, true) => {}
        (false, false) => next.push(
            "Tell on-call yourself: neither SNS notice (before, after) could be sent.".into(),
        ),
        (false, true) => {
            next.push("Tell on-call yourself: the notice before acting could not be sent.".into())
        }
        (true, false) => {
            next.push("Tell on-call yourself: the notice after acting could not be sent.".into())
        }
    }
    if stays_inactive {
        next.push(format!(
            "Key {key} stays Inactive: its owner needs a new key, not this one back."
        ));
    }
    next.push(format!(
        "See what is left in place: killswitch status --access-key-id {key}"
    ));
    next
}

/// A restore notice: email, and a card in the key's chat thread when a chat topic is set.
pub(super) async fn publish<N: Notifier>(
    cloud: &N,
    thread: (Option<&str>, &str),
    subject: &str,
    body: &str,
) -> bool {
    let (account, key) = thread;
    let chat = async {
        if cloud.chats() {
            let kind = if subject.contains("REFUSED") {
                "restore-refused"
            } else {
                "restore"
            };
            let card = crate::report::chat::notice_card(account, key, subject, kind, body);
            if let Err(e) = cloud.publish_chat(&card).await {
                tracing::error!(error = %e.chain(), "could not publish the restore card");
            }
        }
    };
    let subject = sanitize_subject(subject);
    let (email, ()) = tokio::join!(cloud.publish(&subject, body), chat);
    match email {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e.chain(), "could not publish the restore notice");
            false
        }
    }
}
