//! Credentials the attacker minted with the leaked key (found by the investigation): a ready
//! containment for each, and with `KILLSWITCH_FOLLOW_PIVOTS` the containment itself, under the
//! same guards as the leaked key.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use tokio::time::Instant;
use tracing::info;

use super::contain::Home;
use super::{Context, Plan, Responder, contain, dry_run, guard, locate, verify};
use crate::analysis::{Pivot, PivotKind};
use crate::incident::{AccessKeyId, AccountId, Incident, Principal, Trigger};
use crate::investigation;
use crate::pacing::Budget;
use crate::ports::{ActivityLog, Identity};
use crate::report::{Investigation, PivotActivity, PivotContainment, Report, Status};

/// Guard, contain and verify one incident, without investigation or notification.
async fn contain_only<C: Identity + ActivityLog>(
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

/// More sessions of one role than this and the role-wide cutoff covers them all in one write.
const MAX_SESSIONS_PER_ROLE: usize = 3;
/// Principals whose pivots are contained at the same time.
const MAX_CONCURRENT_GROUPS: usize = 4;
/// A containment does not start with less time than this (plus the verification delay) left.
const PIVOT_MIN_TIME: Duration = Duration::from_secs(10);

fn out_of_time() -> PivotContainment {
    PivotContainment {
        status: Status::Failed,
        summary: "NOT contained: no time left in this invocation (it is retried); contain it with the request listed".into(),
        steps: Vec::new(),
    }
}

/// What following one pivot means.
enum Follow {
    /// Contain it here as an incident of its own (a key, or a role session in this account).
    Here(Incident),
    /// A role session in an allowed member account: entered, searched and contained there.
    Member(AccountId, Incident),
    /// A console password on another user of this account: `iam:DeleteLoginProfile`.
    Password(String),
}

impl Follow {
    /// The incident of its own, when following contains one (not for a password).
    fn incident(&self) -> Option<&Incident> {
        match self {
            Follow::Here(pi) | Follow::Member(_, pi) => Some(pi),
            Follow::Password(_) => None,
        }
    }

    /// The principal written on: followed one after another, never at once.
    fn target(&self) -> String {
        match self {
            Follow::Here(pi) | Follow::Member(_, pi) => match &pi.principal {
                Principal::IamUser { user_name } => format!("user:{}", user_name.to_lowercase()),
                Principal::AssumedRole { role_name, .. } => format!(
                    "role:{}:{}",
                    pi.account.as_ref().map(AccountId::as_str).unwrap_or(""),
                    role_name.to_lowercase()
                ),
                other @ (Principal::Root | Principal::Other { .. } | Principal::Unresolved) => {
                    format!("other:{other}")
                }
            },
            Follow::Password(user) => format!("user:{}", user.to_lowercase()),
        }
    }

    fn is_role_session(&self) -> bool {
        self.incident().is_some_and(|pi| match pi.principal {
            Principal::AssumedRole { .. } => true,
            Principal::IamUser { .. }
            | Principal::Root
            | Principal::Other { .. }
            | Principal::Unresolved => false,
        })
    }
}

/// The pivot as an incident of its own, with `key` its access key.
fn pivot_incident(
    pivot: &Pivot,
    parent: &Incident,
    key: &str,
    principal: Principal,
    in_account: Option<AccountId>,
) -> Option<Incident> {
    let key = AccessKeyId::parse(key).ok()?;
    Some(Incident {
        id: format!("pivot:{}:{}", parent.key, key),
        trigger: Trigger::Pivot {
            parent_key: parent.key.to_string(),
            via: pivot.via.clone(),
        },
        key,
        principal,
        account: in_account,
        dry_run: parent.dry_run,
        first_seen: Some(pivot.time),
        finding: None,
        source: None,
    })
}

/// What following this pivot means, or `None`: listed with its ready containment for a human.
/// `from_home`: the incident is in the responder's own account. `leaked_user`: the leaked key's
/// IAM user, when it has one.
fn follow_of(
    p: &Pivot,
    incident: &Incident,
    ctx: &Context<'_>,
    from_home: bool,
    leaked_user: Option<&str>,
) -> Option<Follow> {
    let key = p.access_key_id.as_deref().unwrap_or_default();
    match p.kind {
        PivotKind::AccessKey => {
            // CreateAccessKey without UserName acts on the caller: the leaked key's owner.
            let user = p
                .principal
                .clone()
                .or_else(|| leaked_user.map(str::to_owned))?;
            let principal = Principal::IamUser { user_name: user };
            pivot_incident(p, incident, key, principal, None).map(Follow::Here)
        }
        PivotKind::RoleSession => {
            let principal = |role| Principal::AssumedRole {
                role_name: role,
                session_name: p.role_session_name.clone(),
                role_id: None,
            };
            match (p.role_in(ctx.responder.account.as_str()), p.role_account()) {
                (Some(role), _) => {
                    pivot_incident(p, incident, key, principal(role), None).map(Follow::Here)
                }
                (None, Some(other)) if from_home => {
                    let other = AccountId::parse(other).ok();
                    // A role in an account we may not enter: listed for a human.
                    let member = other
                        .filter(|a| ctx.config.members.as_ref().is_some_and(|m| m.allows(a)))?;
                    // A root session (AssumeRoot) has no role to deny: listed for a human.
                    let role = p.role_in(member.as_str())?;
                    pivot_incident(p, incident, key, principal(role), Some(member.clone()))
                        .map(|i| Follow::Member(member, i))
                }
                (None, _) => None,
            }
        }
        PivotKind::LoginProfile => match p.principal.clone() {
            Some(user) if Some(user.as_str()) != leaked_user => Some(Follow::Password(user)),
            // The leaked key's own user: its console is covered by its deny.
            Some(_) | None => None,
        },
        PivotKind::UserSession | PivotKind::TrustPolicy | PivotKind::ServiceCredential => None,
    }
}

/// Pivots followed together: the indices in the report they stand for, and how.
type Group = Vec<(Vec<usize>, Follow, Pivot)>;

/// One group per principal written on, run one after another: two sessions of one role would
/// otherwise overwrite each other's session deny. A role with many sessions gets the role-wide
/// cutoff once instead.
fn group(to_follow: Vec<(usize, Follow, Pivot)>) -> BTreeMap<String, Group> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for (i, f, pivot) in to_follow {
        groups
            .entry(f.target())
            .or_default()
            .push((vec![i], f, pivot));
    }
    for group in groups.values_mut() {
        let sessions = group.iter().filter(|(_, f, _)| f.is_role_session()).count();
        if sessions > MAX_SESSIONS_PER_ROLE {
            let indices: Vec<usize> = group.iter().flat_map(|(i, _, _)| i.clone()).collect();
            let (_, mut first, pivot) = group.remove(0);
            if let Follow::Here(pi) | Follow::Member(_, pi) = &mut first
                && let Principal::AssumedRole { session_name, .. } = &mut pi.principal
            {
                *session_name = None;
            }
            *group = vec![(indices, first, pivot)];
        }
    }
    groups
}

/// Follows one pivot (contains it with `KILLSWITCH_FOLLOW_PIVOTS`; a member session is also
/// searched), unless time is short.
async fn follow_one<C: Identity + ActivityLog, H: Home>(
    cloud: &C,
    home: Option<&H>,
    f: &Follow,
    pivot: &Pivot,
    incident: &Incident,
    ctx: &Context<'_>,
) -> (Option<PivotContainment>, Option<PivotActivity>)
where
    H::Member: ActivityLog,
{
    let contains = ctx.config.follow_pivots;
    let short =
        Instant::now() + ctx.config.verify_delay + PIVOT_MIN_TIME > ctx.investigation_deadline;
    if short && contains {
        return (Some(out_of_time()), None);
    }
    match f {
        Follow::Here(pi) if contains => (Some(contain_only(cloud, pi, ctx).await), None),
        Follow::Member(member, pi) => match home {
            Some(home) if !short => follow_in_member(home, member, pi, pivot, ctx).await,
            Some(_) | None => (None, None),
        },
        Follow::Password(user) if contains => (
            Some(remove_password(cloud, user, incident, ctx).await),
            None,
        ),
        Follow::Here(_) | Follow::Password(_) => (None, None),
    }
}

/// Lists a ready containment for every pivot, and with `KILLSWITCH_FOLLOW_PIVOTS` contains them.
/// `home` is the responder's own account when the incident is in it: only then are sessions
/// in member accounts followed there (a member is never a stepping stone to another member).
pub async fn follow_pivots<C: Identity + ActivityLog, H: Home>(
    cloud: &C,
    home: Option<&H>,
    incident: &Incident,
    ctx: &Context<'_>,
    report: &mut Report,
    plan: Option<&Plan>,
) where
    H::Member: ActivityLog,
{
    let Investigation::Ran(activity) = &mut report.investigation else {
        return;
    };
    let account = ctx.responder.account.as_str();
    let leaked_user = plan.and_then(Plan::user);
    let mut to_follow = Vec::new();
    for (i, p) in activity.pivots.iter_mut().enumerate() {
        p.contain_with = investigation::containment_request(&p.pivot, &incident.key, account);
        if let Some(f) = follow_of(&p.pivot, incident, ctx, home.is_some(), leaked_user) {
            to_follow.push((i, f, p.pivot.clone()));
        }
    }
    if to_follow.is_empty() {
        return;
    }
    // Groups run a few at a time, and none starts when time is short.
    let results: Vec<_> = stream::iter(group(to_follow).into_values())
        .map(|group| async move {
            let mut out = Vec::new();
            for (indices, f, pivot) in group {
                let result = follow_one(cloud, home, &f, &pivot, incident, ctx).await;
                out.push((indices, result));
            }
            out
        })
        .buffer_unordered(MAX_CONCURRENT_GROUPS)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect();
    let mut failed = false;
    for (indices, (containment, searched)) in results {
        for index in indices {
            if let Some(result) = &containment {
                info!(pivot = ?activity.pivots[index].pivot.identity(), status = ?result.status, "pivot containment");
                failed |= result.status == Status::Failed;
                activity.pivots[index].containment = Some(result.clone());
            }
            if let Some(a) = &searched {
                activity.pivots[index].activity = Some(a.clone());
            }
        }
    }
    if failed {
        report.status = Status::Failed;
        report.summary = format!(
            "{} A credential the attacker minted could NOT be contained.",
            report.summary
        );
    }
}

/// A role session in a member account: enter it, search what the session did there, and with
/// `KILLSWITCH_FOLLOW_PIVOTS` contain it there under the same guards.
async fn follow_in_member<H: Home>(
    home: &H,
    member: &AccountId,
    pivot_incident: &Incident,
    pivot: &Pivot,
    ctx: &Context<'_>,
) -> (Option<PivotContainment>, Option<PivotActivity>)
where
    H::Member: ActivityLog,
{
    let Some(members) = ctx.config.members.as_ref() else {
        return (None, None);
    };
    let role_arn = locate::member_role_arn(member, members, ctx);
    let session = locate::session_name(pivot_incident);
    let entered = match home.enter(&role_arn, &members.external_id, &session).await {
        Ok(e) => e,
        Err(e) => {
            let failed = PivotContainment {
                status: Status::Failed,
                summary: format!(
                    "could not assume {role_arn} to follow the session into account {member}: {}",
                    e.chain()
                ),
                steps: Vec::new(),
            };
            return (ctx.config.follow_pivots.then_some(failed), None);
        }
    };
    let responder = Responder::from_arn(member.clone(), &entered.arn);
    let member_ctx = Context {
        responder: &responder,
        ..*ctx
    };
    let mut here = pivot_incident.clone();
    here.account = None;
    let contain = async {
        if ctx.config.follow_pivots {
            Some(contain_only(&entered.clients, &here, &member_ctx).await)
        } else {
            None
        }
    };
    let search = async {
        let Ok(key) = AccessKeyId::parse(pivot.access_key_id.as_deref()?) else {
            return None;
        };
        let mut regions = vec![investigation::HOME_REGION.to_owned()];
        if pivot.region != investigation::HOME_REGION {
            regions.push(pivot.region.clone());
        }
        let window = investigation::Window::new(ctx.config, ctx.now, ctx.investigation_deadline);
        let budget = Budget {
            pacer: ctx.pacer,
            store: ctx.config.incident_table.is_some().then_some(home),
            account: member.as_str(),
        };
        let found = investigation::investigate(
            &entered.clients,
            &key,
            &regions,
            format!("account {member}, where the session lives"),
            window,
            budget,
        )
        .await;
        match found {
            Investigation::Ran(a) => Some(PivotActivity {
                regions: a.regions.clone(),
                events: a.total_events,
                notable: a.notable_names(),
            }),
            Investigation::NotRun { .. } => None,
        }
    };
    let (containment, searched) = tokio::join!(contain, search);
    (containment, searched)
}

/// A console password the attacker set on another user: removed, under the same guards.
async fn remove_password<C: Identity>(
    cloud: &C,
    user: &str,
    incident: &Incident,
    ctx: &Context<'_>,
) -> PivotContainment {
    let plan = Plan::User {
        user: user.to_owned(),
        deactivate: false,
        deny: Default::default(),
        replaced_boundary: None,
    };
    let done = |status, summary: String| PivotContainment {
        status,
        summary,
        steps: Vec::new(),
    };
    if let Some(reason) = guard::protected_reason(&plan, &ctx.responder.account, ctx) {
        return done(Status::Refused, format!("not touched: {reason}"));
    }
    if dry_run(incident, ctx) {
        return done(
            Status::DryRun,
            format!("would delete the console password of {user}"),
        );
    }
    match cloud.remove_login_profile(user).await {
        Ok(true) => done(
            Status::Contained,
            format!(
                "console password of {user} deleted (iam:DeleteLoginProfile); console sessions it already opened last until they expire: revoke them if the user is not otherwise contained"
            ),
        ),
        Ok(false) => done(
            Status::AlreadyContained,
            format!("{user} has no console password any more"),
        ),
        Err(e) => done(
            Status::Failed,
            format!(
                "could not delete the console password of {user}: {}",
                e.chain()
            ),
        ),
    }
}
