//! Credentials the attacker minted with the leaked key (found by the investigation): a ready
//! containment for each, and with `KILLSWITCH_FOLLOW_PIVOTS` the containment itself, under the
//! same guards as the leaked key.

use tracing::info;

use super::{Context, Plan, contain, dry_run, guard, verify};
use crate::analysis::PivotKind;
use crate::incident::{AccessKeyId, Incident, Principal, Trigger};
use crate::investigation;
use crate::ports::Identity;
use crate::report::{Investigation, PivotContainment, Report, Status};

/// Guard, contain and verify one incident, without investigation or notification.
async fn contain_only<C: Identity + crate::ports::ActivityLog>(
    cloud: &C,
    incident: &Incident,
    ctx: &Context<'_>,
) -> PivotContainment {
    let dry_run = dry_run(incident, ctx);
    let mut report = Report::new(incident, dry_run, ctx.now);
    let reads = guard::read(cloud, incident, Some(&ctx.responder.account), ctx.config).await;
    let decided = guard::decide(incident, &reads, ctx, &mut report);
    let mut plan = None;
    if let Some(decided) = &decided {
        let in_force = contain::apply(
            cloud,
            incident,
            decided,
            Some(&reads),
            None,
            dry_run,
            &mut report,
        )
        .await;
        let plan = plan.insert(in_force);
        if !dry_run && report.status != Status::KeyNotFound {
            let mut v = verify::immediate(cloud, &incident.key, plan).await;
            if v.holds {
                tokio::time::sleep(ctx.config.verify_delay).await;
                let phase = format!(
                    "after {}s propagation delay",
                    ctx.config.verify_delay.as_secs()
                );
                verify::later(cloud, &incident.key, plan, &phase, &mut v, |_| async {
                    None
                })
                .await;
            }
            if !v.holds {
                report.status = Status::Failed;
            } else if v.contested && report.status != Status::Failed {
                report.status = Status::Contested;
            }
        }
    }
    super::notify::finish(&mut report, incident, plan.as_ref(), None);
    PivotContainment {
        status: report.status,
        summary: report.summary,
        steps: report.steps,
    }
}

/// Lists a ready containment for every pivot, and with `KILLSWITCH_FOLLOW_PIVOTS` contains them.
pub async fn follow_pivots<C: Identity + crate::ports::ActivityLog>(
    cloud: &C,
    incident: &Incident,
    ctx: &Context<'_>,
    report: &mut Report,
    plan: Option<&Plan>,
) {
    let Investigation::Ran(activity) = &mut report.investigation else {
        return;
    };
    let account = ctx.responder.account.as_str();
    let mut to_contain = Vec::new();
    for (i, p) in activity.pivots.iter_mut().enumerate() {
        p.contain_with = investigation::containment_request(&p.pivot, &incident.key, account);
        let principal = match p.pivot.kind {
            PivotKind::AccessKey => Principal::IamUser {
                // CreateAccessKey without UserName acts on the caller: the leaked key's owner.
                user_name: match p.pivot.principal.clone().or_else(|| match plan {
                    Some(Plan::User { user, .. }) => Some(user.clone()),
                    _ => None,
                }) {
                    Some(u) => u,
                    None => continue,
                },
            },
            PivotKind::RoleSession => match p.pivot.role_in(account) {
                Some(role) => Principal::AssumedRole {
                    role_name: role,
                    session_name: p.pivot.role_session_name.clone(),
                    role_id: None,
                },
                // A role in another account: listed for a human, not ours to change.
                None => continue,
            },
            PivotKind::UserSession => continue,
        };
        let Ok(key) = AccessKeyId::parse(&p.pivot.access_key_id) else {
            continue;
        };
        to_contain.push((
            i,
            Incident {
                id: format!("pivot:{}:{}", incident.key, key),
                trigger: Trigger::Pivot {
                    parent_key: incident.key.to_string(),
                    via: p.pivot.via.clone(),
                },
                key,
                principal,
                account: None,
                dry_run: incident.dry_run,
                first_seen: Some(p.pivot.time),
            },
        ));
    }
    if !ctx.config.follow_pivots || to_contain.is_empty() {
        return;
    }
    let results =
        futures::future::join_all(to_contain.iter().map(|(_, i)| contain_only(cloud, i, ctx)))
            .await;
    let mut failed = false;
    for ((index, pivot_incident), result) in to_contain.iter().zip(results) {
        info!(pivot = %pivot_incident.key, status = ?result.status, "pivot containment");
        failed |= result.status == Status::Failed;
        activity.pivots[*index].containment = Some(result);
    }
    if failed {
        report.status = Status::Failed;
        report.summary = format!(
            "{} A credential the attacker minted could NOT be contained.",
            report.summary
        );
    }
}
