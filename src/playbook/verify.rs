//! Containment read back: once right after the writes, again after IAM's propagation window.
//! Undone containment is re-applied once and flagged, unless an operator's recorded restore
//! explains it.

use chrono::Utc;
use tracing::{error, info, warn};

use super::{Plan, deactivate_key, deny_user, revoke_role};
use crate::incident::AccessKeyId;
use crate::ports::Identity;
use crate::report::{Check, Outcome, Verification};
use crate::vocab::Arn;

/// Reads every action of the plan back, concurrently.
pub async fn check<C: Identity>(cloud: &C, key: &AccessKeyId, plan: &Plan, phase: &str) -> Check {
    let at = Utc::now();
    let (key_inactive, policy_in_place, notes) = match plan {
        Plan::User {
            user,
            deactivate,
            deny,
            ..
        } => {
            let (key_state, policy) = tokio::join!(
                async {
                    if *deactivate {
                        Some(deactivate_key::read_back(cloud, user, key).await)
                    } else {
                        None
                    }
                },
                deny_user::read_back(cloud, user, *deny)
            );
            let mut notes: Vec<String> = Vec::new();
            let key_ok = key_state.map(|(ok, note)| {
                notes.push(note);
                ok
            });
            notes.push(policy.1);
            (key_ok, Some(policy.0), notes)
        }
        Plan::Role {
            role,
            session: Some(session),
            ..
        } => {
            let (ok, note) = revoke_role::read_back_session(cloud, role, session).await;
            (None, Some(ok), vec![note])
        }
        Plan::Portal {
            role,
            session,
            user_id,
            policy_arn,
            ..
        } => {
            let wanted = super::portal::entries(session, user_id.as_deref());
            let (ok, note) = super::portal::read_back(cloud, role, policy_arn, &wanted).await;
            (None, Some(ok), vec![note])
        }
        Plan::Role { role, cutoff, .. } => {
            let (ok, note) = match cutoff {
                Some(c) => revoke_role::read_back(cloud, role, *c).await,
                None => (false, "no revocation planned".into()),
            };
            (None, Some(ok), vec![note])
        }
    };
    let holds = key_inactive.unwrap_or(true) && policy_in_place.unwrap_or(true);
    info!(step = "verify", phase, holds, "read back containment");
    Check {
        phase: phase.to_owned(),
        at,
        key_inactive,
        policy_in_place,
        holds,
        detail: notes.join(", "),
        settled: false,
    }
}

/// Writes the plan again, without trusting any earlier read (a newer role cutoff written
/// meanwhile is re-read, so it is never replaced by ours).
pub async fn reapply<C: Identity>(cloud: &C, key: &AccessKeyId, plan: &Plan) {
    let failures: Vec<String> = match plan {
        Plan::User {
            user, deactivate, ..
        } => {
            let (k, p) = tokio::join!(
                async {
                    if *deactivate {
                        Some(deactivate_key::apply(cloud, user, key, None, false).await)
                    } else {
                        None
                    }
                },
                deny_user::apply(cloud, user, None, false)
            );
            k.into_iter()
                .chain([(p.0, p.1)])
                .filter(|(o, _)| *o == Outcome::Failed)
                .map(|(_, d)| d)
                .collect()
        }
        Plan::Role {
            role,
            session: Some(session),
            ..
        } => {
            let existing = revoke_role::read_sessions(cloud, role).await;
            let (o, d) = revoke_role::apply_session(cloud, role, session, &existing, false).await;
            if o == Outcome::Failed {
                vec![d]
            } else {
                Vec::new()
            }
        }
        Plan::Portal {
            role,
            session,
            user_id,
            policy_arn,
            ..
        } => {
            let wanted = super::portal::entries(session, user_id.as_deref());
            let account = Arn::parse(policy_arn).map_or("", |a| a.account);
            let (o, d) =
                super::portal::apply(cloud, account, role, policy_arn, &wanted, false).await;
            if o == Outcome::Failed {
                vec![d]
            } else {
                Vec::new()
            }
        }
        Plan::Role { role, cutoff, .. } => {
            let existing = revoke_role::read_policy(cloud, role).await;
            let wanted = cutoff.unwrap_or_else(|| crate::policy::cutoff_for(Utc::now()));
            let (o, d, _) =
                revoke_role::apply(cloud, role, wanted, &existing, None, None, false).await;
            if o == Outcome::Failed {
                vec![d]
            } else {
                Vec::new()
            }
        }
    };
    for f in failures {
        error!(error = %f, "re-applying containment failed");
    }
}

/// Right after the writes: an attacker racing IAM's propagation window may already have undone
/// them.
pub async fn immediate<C: Identity>(cloud: &C, key: &AccessKeyId, plan: &Plan) -> Verification {
    let mut v = Verification::default();
    let first = check(cloud, key, plan, "immediately after containment").await;
    v.holds = first.holds;
    v.checks.push(first);
    if !v.holds {
        warn!("containment undone right after it was applied: re-applying once");
        reapply_and_check(cloud, key, plan, &mut v).await;
    }
    v
}

/// Tampering found: write the plan again, once, and read it back.
async fn reapply_and_check<C: Identity>(
    cloud: &C,
    key: &AccessKeyId,
    plan: &Plan,
    v: &mut Verification,
) {
    v.contested = true;
    v.reapplied = true;
    reapply(cloud, key, plan).await;
    let again = check(cloud, key, plan, "after re-applying").await;
    v.holds = again.holds;
    v.checks.push(again);
}

/// Which parts of the containment the delayed read-back found gone: a recorded restore explains
/// only what it undid (a restore that reactivated the key does not explain a deleted deny).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Undone {
    pub key: bool,
    pub deny: bool,
}

impl Undone {
    /// Whether a restore with these actions (`RestoreAction` texts) undid all of it.
    pub fn explained_by(self, actions: &[String]) -> bool {
        let did = |prefixes: &[&str]| {
            actions
                .iter()
                .any(|a| prefixes.iter().any(|p| a.starts_with(p)))
        };
        (!self.key || did(&["reactivate key"]))
            && (!self.deny
                || did(&[
                    "delete inline policy",
                    "detach ",
                    "stop denying session",
                    "stop denying Identity Center user",
                ]))
    }
}

/// What the delayed read-back found.
pub enum Later {
    Holds,
    /// Gone, and an operator's restore recorded since containment explains it: left alone.
    Restored {
        by: String,
        reason: String,
    },
    /// Gone without a recorded restore: tampering. Written again; `holds` is the read right
    /// after, inside IAM's propagation window: the write is in place, not yet proof it bites.
    Reapplied {
        holds: bool,
    },
}

/// After the propagation window. `restored` tells whether an operator's restore was recorded
/// since containment (read from the incident store only when the check fails).
pub async fn later<C: Identity, F, Fut>(
    cloud: &C,
    key: &AccessKeyId,
    plan: &Plan,
    phase: &str,
    v: &mut Verification,
    restored: F,
) -> Later
where
    F: FnOnce(Undone) -> Fut,
    Fut: std::future::Future<Output = Option<(String, String)>>,
{
    let mut c = check(cloud, key, plan, phase).await;
    c.settled = true;
    let holds = c.holds;
    let undone = Undone {
        key: c.key_inactive == Some(false),
        deny: c.policy_in_place == Some(false),
    };
    v.checks.push(c);
    if holds {
        v.holds = true;
        v.settled = true;
        return Later::Holds;
    }
    if let Some((by, reason)) = restored(undone).await {
        info!(by = %by, "containment lifted by a recorded restore: not re-applied");
        v.holds = false;
        return Later::Restored { by, reason };
    }
    warn!("containment undone past IAM's propagation window: writing it again");
    reapply_and_check(cloud, key, plan, v).await;
    let in_place = v.holds;
    v.holds = false;
    v.settled = false;
    Later::Reapplied { holds: in_place }
}
