//! The words of a pivot event's notice. Text the holder chose (names, IDs) goes through
//! `defang`, as in every notice.

use super::{Answer, Outcome, UnderContainment, confirm};
use crate::analysis::PivotKind;
use crate::report::words::undo::lift_session_deny;
use crate::report::{PivotReport, defang, sanitize_subject, ts};
use crate::trigger::ApiCallEvent;

/// The notice's subject and body.
pub(super) fn notice(
    under: &UnderContainment,
    call: &ApiCallEvent,
    answer: &Answer,
    contained: &[String],
) -> (String, String) {
    let what = match &answer.outcome {
        Outcome::Reapplied { holds: true } => "CONTESTED, re-applied",
        Outcome::Reapplied { holds: false } => "CONTESTED, NOT holding",
        Outcome::Holds
        | Outcome::Restored { .. }
        | Outcome::DryRun { .. }
        | Outcome::NotUnderContainment { .. } => "pivot contained",
    };
    let subject = sanitize_subject(&format!(
        "[killswitch] {what} (CloudTrail {}): {} ({}) acct {}",
        call.event_name,
        under.key,
        under.applied.plan.principal(),
        call.account
    ));
    let mut body = format!(
        "A CloudTrail event shows {} signed by {} ({}), under containment since {} (incident {}).\n",
        call.event_name,
        call.signer.key,
        defang(call.signer.name.as_deref().unwrap_or("-")),
        ts(under.applied.at),
        defang(&under.applied.incident_id),
    );
    body.push_str(&match &answer.outcome {
        Outcome::Reapplied { holds } => format!(
            "The containment recorded for {} was found UNDONE and written again (read back: {}). IAM applies a write to authorization seconds after reads show it: the follow-through reads it back after that window.\n",
            under.applied.plan.principal(),
            if *holds { "in place" } else { "NOT in place" }
        ),
        Outcome::Holds
        | Outcome::Restored { .. }
        | Outcome::DryRun { .. }
        | Outcome::NotUnderContainment { .. } => String::new(),
    });
    for p in &answer.pivots {
        if let Some(c) = &p.containment {
            body.push_str(&format!(
                "Minted with it, confirmed in IAM: {} {} -> {:?}: {}\n",
                p.pivot.via,
                p.pivot.access_key_id.as_deref().unwrap_or("-"),
                c.status,
                defang(&c.summary)
            ));
            if p.pivot.kind == PivotKind::RoleSession {
                body.push_str(&on_the_events_word(p, call));
            }
        }
    }
    if contained.is_empty() && answer.pivots.iter().any(|p| p.containment.is_none()) {
        body.push_str("A credential it minted is listed, not contained (KILLSWITCH_FOLLOW_PIVOTS is off): contain it with killswitch respond.\n");
    }
    (subject, body)
}

/// A session is denied on the event's word alone (IAM cannot date it, CloudTrail's record comes
/// minutes late): on-call learns how narrow the deny is and how to lift it.
fn on_the_events_word(p: &PivotReport, call: &ApiCallEvent) -> String {
    let role = p
        .pivot
        .principal
        .as_deref()
        .and_then(|arn| arn.rsplit('/').next())
        .unwrap_or("-");
    let session = confirm::assumed_role_id(call).unwrap_or("-");
    format!(
        "This session was denied on the CloudTrail event's word: IAM keeps nothing that dates a session and CloudTrail's Event history shows the call minutes late, so killswitch checked only that role {}'s ID in IAM is the prefix of {}. The deny is narrow (aws:userid {} on role {}: no other session of the role) and restorable: {}\n",
        defang(role),
        defang(session),
        defang(session),
        defang(role),
        lift_session_deny(&defang(role), &defang(session))
    )
}
