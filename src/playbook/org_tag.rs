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

pub use crate::policy::guard::{CONTAINED_TAG_KEY, GUARDED_TAG_KEY};

/// IAM's limit on a tag value.
const MAX_TAG_VALUE: usize = 256;

/// The principal a plan tags and the key it uses; `None` for an Identity Center role, which
/// IAM refuses to change.
pub fn target(plan: &Plan) -> Option<(PolicyTarget, &'static str)> {
    let key = crate::policy::guard::tag_key(plan)?;
    match plan {
        Plan::User { user, .. } => Some((PolicyTarget::User(user.clone()), key)),
        Plan::Role { role, .. } => Some((PolicyTarget::Role(role.clone()), key)),
        Plan::Portal { .. } => None,
    }
}

/// The value a role's guarded tag should hold: the sessions it already lists, and this plan's
/// (`/ROLE-ID:session/…/`, the guard's `DENIED_SESSION_PATTERN`). Past IAM's 256 characters the
/// oldest entries give way: their sessions keep `KillSwitchDenySessions`, which the guard
/// freezes, and lose only the guard's own deny.
fn role_value(existing: Option<&str>, session: Option<&str>) -> String {
    let mut listed: Vec<&str> = existing
        .unwrap_or("")
        .split('/')
        .filter(|e| is_session_id(e))
        .collect();
    if let Some(s) = session.filter(|s| is_session_id(s))
        && !listed.contains(&s)
    {
        listed.push(s);
    }
    while listed.iter().map(|e| e.len() + 1).sum::<usize>() + 1 > MAX_TAG_VALUE {
        listed.remove(0);
    }
    format!(
        "/{}",
        listed.iter().map(|e| format!("{e}/")).collect::<String>()
    )
}

/// `ROLE-ID:session-name` as IAM forms it: anything else in a tag value the holder could not
/// write anyway (the guard freezes the key) is dropped rather than carried on.
fn is_session_id(e: &str) -> bool {
    e.split_once(':').is_some_and(|(id, name)| {
        id.starts_with("AROA")
            && id.chars().all(|c| c.is_ascii_alphanumeric())
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    })
}

/// The value to write for `plan`: a user's incident ID, a role's list of denied sessions.
async fn value_for<I: Identity>(
    iam: &I,
    plan: &Plan,
    target: &PolicyTarget,
    key: &str,
    incident_id: &str,
) -> String {
    match plan {
        Plan::Role { session, .. } => {
            let existing = iam.tag_value(target, key).await.ok().flatten();
            role_value(existing.as_deref(), session.as_deref())
        }
        Plan::User { .. } | Plan::Portal { .. } => tag_value(incident_id),
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
    if dry_run {
        return Some((Outcome::WouldDo, format!("would tag {target} {key}")));
    }
    let value = value_for(iam, plan, &target, key, incident_id).await;
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

/// Whether the tag is still on the principal, listing the plan's session for a session plan
/// (`None`: the plan has none, or it cannot be read).
pub async fn in_place<I: Identity>(iam: &I, plan: &Plan) -> Option<bool> {
    let (target, key) = target(plan)?;
    let value = iam.tag_value(&target, key).await.ok()?;
    Some(match (plan, value) {
        (_, None) => false,
        (
            Plan::Role {
                session: Some(s), ..
            },
            Some(v),
        ) => v.contains(&format!("/{s}/")),
        (Plan::User { .. } | Plan::Role { .. } | Plan::Portal { .. }, Some(_)) => true,
    })
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

/// A role's guarded tag without `session` (restore of one session while other incidents keep
/// the role guarded).
pub async fn drop_session<I: Identity>(
    iam: &I,
    role: &str,
    session: &str,
) -> Result<(), crate::error::Error> {
    let target = PolicyTarget::Role(role.to_owned());
    let Some(existing) = iam.tag_value(&target, GUARDED_TAG_KEY).await? else {
        return Ok(());
    };
    let kept: String = role_value(Some(&existing), None)
        .split('/')
        .filter(|e| !e.is_empty() && *e != session)
        .map(|e| format!("{e}/"))
        .collect();
    iam.tag(&target, GUARDED_TAG_KEY, &format!("/{kept}")).await
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

#[cfg(test)]
mod session_tests {
    use super::*;

    const A: &str = "AROAAPPEXAMPLE:i-0abc";
    const B: &str = "AROAAPPEXAMPLE:ci-runner";

    #[test]
    fn a_roles_value_lists_its_denied_sessions_once_each() {
        assert_eq!(role_value(None, Some(A)), format!("/{A}/"));
        assert_eq!(
            role_value(Some(&format!("/{A}/")), Some(B)),
            format!("/{A}/{B}/")
        );
        assert_eq!(
            role_value(Some(&format!("/{A}/{B}/")), Some(A)),
            format!("/{A}/{B}/")
        );
        // A role-wide cutoff lists no session: the tag only freezes the role.
        assert_eq!(role_value(None, None), "/");
    }

    #[test]
    fn anything_but_a_session_id_is_dropped_and_the_oldest_give_way_at_256() {
        assert_eq!(role_value(Some("inc-1/*/x:y/"), Some(A)), format!("/{A}/"));
        assert_eq!(role_value(None, Some("AROAAPP:a*b")), "/");
        let many: Vec<String> = (0..20)
            .map(|i| format!("AROAAPPEXAMPLE:session-{i:02}"))
            .collect();
        let mut value = "/".to_string();
        for s in &many {
            value = role_value(Some(&value), Some(s));
        }
        assert!(value.len() <= MAX_TAG_VALUE, "{}", value.len());
        assert!(value.ends_with(&format!("/{}/", many[19])), "{value}");
        assert!(!value.contains(&format!("/{}/", many[0])), "{value}");
    }
}
