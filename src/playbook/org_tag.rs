//! The containment tag an org guard keys on (`org-guard.yaml`, docs/org-guard.md). Written in the
//! same wave as the deny: on its own it changes nothing, under the guard's SCP it denies the
//! tagged user everything, from every key and every session it minted, and no principal but the
//! responder and the operators' restore role may remove it. The SCP is in force before the
//! incident, so only the tag's own propagation is left of IAM's window.

use chrono::Utc;

use super::Plan;
use crate::ports::{Identity, Operator, PolicyTarget};
use crate::report::{Outcome, Report};
use crate::vocab::Step;

/// On a user under containment: the guard denies its principal everything.
pub const CONTAINED_TAG_KEY: &str = "killswitch-contained";
/// On a role one of whose sessions is denied (or cut off): the guard protects the role's
/// policies. Never the contained key on a role: a role's tags are principal tags of every
/// session of it, so the guard would deny them all (an outage, AWS-FACTS §12).
pub const GUARDED_TAG_KEY: &str = "killswitch-guarded";

/// The principal a plan tags and the key it uses; `None` for an Identity Center role, which
/// IAM refuses to change.
pub fn target(plan: &Plan) -> Option<(PolicyTarget, &'static str)> {
    match plan {
        Plan::User { user, .. } => Some((PolicyTarget::User(user.clone()), CONTAINED_TAG_KEY)),
        Plan::Role { role, .. } => Some((PolicyTarget::Role(role.clone()), GUARDED_TAG_KEY)),
        Plan::Portal { .. } => None,
    }
}

/// Tags the plan's principal with the incident's ID. Its failure is reported, never a failed
/// containment: without the guard the tag does nothing, and the deny stands either way.
pub async fn apply<I: Identity>(
    iam: &I,
    plan: &Plan,
    incident_id: &str,
    dry_run: bool,
) -> Option<(Outcome, String)> {
    let (target, key) = target(plan)?;
    let value = tag_value(incident_id);
    if dry_run {
        return Some((
            Outcome::WouldDo,
            format!("would tag {target} {key}"),
        ));
    }
    Some(match iam.tag(&target, key, &value).await {
        Ok(()) => (
            Outcome::Done,
            format!("tagged {target} {key} (an org guard denies on it)"),
        ),
        Err(e) => (
            Outcome::Failed,
            format!(
                "could not tag {target} {key}: {} (the deny stands; an org guard cannot key on this principal)",
                e.chain()
            ),
        ),
    })
}

/// Records the tag's write on the report.
pub fn record(report: &mut Report, written: Option<(Outcome, String)>) {
    if let Some((outcome, detail)) = written {
        report.record(Step::TagPrincipal, outcome, detail, Utc::now());
    }
}

/// Whether the tag is still on the principal (`None`: the plan has none, or it cannot be read).
pub async fn in_place<I: Identity>(iam: &I, plan: &Plan) -> Option<bool> {
    let (target, key) = target(plan)?;
    iam.tag_value(&target, key).await.ok().map(|v| v.is_some())
}

/// Takes the tag off at a restore.
pub async fn remove<O: Operator>(ops: &O, plan: &Plan) -> Option<Result<String, String>> {
    let (target, key) = target(plan)?;
    Some(match ops.untag(&target, key).await {
        Ok(()) => Ok(format!("removed tag {key} from {target}")),
        Err(e) => Err(format!(
            "could not remove tag {key} from {target}: {}",
            e.chain()
        )),
    })
}

/// IAM tag values allow letters, digits, spaces and `_ . : / = + - @`; an incident ID is made of
/// those, and anything else is replaced rather than refused.
fn tag_value(incident_id: &str) -> String {
    incident_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.:/=+-@ ".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(256)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_never_gets_the_contained_key() {
        let role = Plan::Role {
            role: "app".into(),
            cutoff: None,
            session: Some("AROAEXAMPLE:i-0abc".into()),
        };
        assert_eq!(target(&role).map(|t| t.1), Some(GUARDED_TAG_KEY));
        let user = Plan::User {
            user: "ci".into(),
            deactivate: true,
            deny: Default::default(),
            replaced_boundary: None,
        };
        assert_eq!(target(&user).map(|t| t.1), Some(CONTAINED_TAG_KEY));
    }

    #[test]
    fn a_tag_value_is_what_iam_accepts() {
        assert_eq!(
            tag_value("inc-2026-12-07T13:00:00Z/ab"),
            "inc-2026-12-07T13:00:00Z/ab"
        );
        assert_eq!(tag_value("a\"b<c>"), "a-b-c-");
    }
}
