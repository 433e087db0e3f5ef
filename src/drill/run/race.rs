//! A racing holder in a drill: the victim user and the role it pivots to, the org guard (attached
//! on the local AWS, looked for on a real account), the incident table and the pivot events the
//! function answers while it races, and the checks of what it did and kept.

use std::time::Duration;

use crate::aws::sandbox::{Creds, Holder, RacePlan, RaceSummary, View, local_iam_lag};
use crate::report::{Report, Status};

use super::forward;
use super::guard::Acting;
use super::plant::Leak;
use super::*;

/// IAM's propagation window on a real account, as measured from outside (AWS-FACTS §6, §16).
const REAL_AWS_LAG_SECONDS: u64 = 4;
/// Slack on every time limit for a 2-core machine running the local AWS, the function and the
/// holder at once (issue 27's own allowance).
const TOLERANCE_MS: u64 = 1000;

/// A race ready to start: its plan, what the holder saw before the trigger, and the lag D.
pub(super) struct RaceSetup {
    pub plan: RacePlan,
    pub baseline: View,
    pub lag_seconds: u64,
    /// `Some` when the scenario wants the org guard: whether it is in force, and why not.
    pub guard: Option<Result<(), String>>,
    /// The incident table the response records in and pivot events read.
    pub incident_table: Option<String>,
    /// The responder role the guard exempts, which the handler runs as (local AWS, guard).
    pub responder_role: Option<String>,
    /// That role's session, once IAM's lag has run out.
    pub acting: Option<Acting>,
    /// On the local AWS: pivot events delivered after this sequence number are forwarded.
    pub events_after: Option<u64>,
}

/// A message the on-call inbox received: subject, and when SNS published it.
pub(super) struct Paged {
    pub subject: String,
    pub at: Option<DateTime<Utc>>,
}

impl Play<'_> {
    /// The race's scene, when the scenario has a racer: a victim user, a role the canary may
    /// assume, the org guard if asked for, and the holder's view before the trigger.
    pub(super) async fn plan_race(
        &self,
        leak: &Leak,
        planted: &mut Planted,
    ) -> Result<Option<RaceSetup>, Error> {
        let Some(racer) = &self.s.racer else {
            return Ok(None);
        };
        let holder = match (racer.session, self.s.canary.kind) {
            (false, CanaryKind::User) => Holder::User(leak.principal_name.clone()),
            (true, CanaryKind::Role) => Holder::Role(leak.principal_name.clone()),
            (session, kind) => {
                return Err(Error::BadEvent(format!(
                    "racer.session = {session} does not fit canary.kind = {kind:?} (a key races as a user, a session as a role)"
                )));
            }
        };
        let account = self.drill.responder.account.as_str();
        let victim = format!("drill-{}-victim", self.names.tag);
        planted.users.push(victim.clone());
        self.sandbox
            .create_user(&victim, &["iam:List*", "iam:Get*"])
            .await?;
        let pivot = &self.names.pivot_role;
        let pivot_role_arn = format!("arn:aws:iam::{account}:role/{pivot}");
        // The scripted attacker's assume_role made it already (trusting the canary user).
        if !planted.roles.contains(pivot) {
            planted.roles.push(pivot.clone());
            let kind = match holder {
                Holder::User(_) => "user",
                Holder::Role(_) => "role",
            };
            let trusted = format!("arn:aws:iam::{account}:{kind}/{}", leak.principal_name);
            self.sandbox
                .create_role(pivot, &trusted, &["iam:List*"])
                .await?;
        }
        let plan = RacePlan {
            leaked: leak.creds.clone(),
            holder,
            victim_user: victim,
            pivot_role_arn,
            backdoor_role_prefix: format!("drill-{}-backdoor", self.names.tag),
            outside_account: racer.outside_account.clone(),
            interval: Duration::from_millis(racer.interval_ms.max(1)),
            duration: Duration::from_secs(racer.duration_seconds),
        };
        let lag_seconds = match self.drill.target {
            Target::Local { endpoint } => local_iam_lag(endpoint),
            Target::Account { .. } => REAL_AWS_LAG_SECONDS,
        };
        let incident_table = self.incident_table(planted).await?;
        let responder_role = self.plant_responder_role(planted).await?;
        let guard = if self.s.settings.org_guard {
            Some(self.org_guard(planted, responder_role.as_deref()).await?)
        } else {
            None
        };
        progress(
            &self.s.name,
            "planted",
            &format!(
                "racing holder (every {} ms for {} s), victim {}, IAM lag {lag_seconds} s",
                racer.interval_ms, racer.duration_seconds, plan.victim_user
            ),
        );
        Ok(Some(RaceSetup {
            plan,
            baseline: View::default(),
            lag_seconds,
            guard,
            incident_table,
            responder_role,
            acting: None,
            events_after: None,
        }))
    }

    /// What the holder sees of its principal right before the trigger (the race undoes
    /// whatever appears on top of it), and on the local AWS the last event delivered so far
    /// (pivot events after it are forwarded).
    pub(super) async fn race_baseline(&self, race: &mut Option<RaceSetup>) -> Result<(), Error> {
        if let Some(r) = race {
            r.baseline = self.sandbox.holder_view(&r.plan).await.map_err(|code| {
                Error::BadEvent(format!("the holder cannot read its own principal: {code}"))
            })?;
            if let Target::Local { endpoint } = self.drill.target {
                r.events_after = Some(forward::cursor(endpoint).await?);
            }
        }
        Ok(())
    }

    /// Under IAM's propagation lag (the local AWS's D) what was just planted works only D
    /// seconds later: wait it out before anyone uses it.
    pub(super) async fn settle(&self) {
        if let Target::Local { endpoint } = self.drill.target {
            let lag = local_iam_lag(endpoint);
            if lag > 0 {
                progress(
                    &self.s.name,
                    "planted",
                    &format!("waiting {} s for IAM's propagation lag", lag + 1),
                );
                tokio::time::sleep(Duration::from_secs(lag + 1)).await;
            }
        }
    }

    /// The org guard in force before the incident. On the local AWS: the project's own SCP
    /// (`policy::guard`), exempting the drill's responder role, attached now from the
    /// organization's management account (it takes effect as IAM's lag runs out, see `settle`).
    /// On a real account: looked for, never attached.
    async fn org_guard(
        &self,
        planted: &mut Planted,
        responder_role: Option<&str>,
    ) -> Result<Result<(), String>, Error> {
        let account = self.drill.responder.account.as_str();
        let (Target::Local { .. }, Some(responder_role)) = (self.drill.target, responder_role)
        else {
            return Ok(match self.sandbox.guard_attached(account).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(format!(
                    "no SCP carrying the org guard applies to account {account}: deploy org-guard.yaml from the management account or the delegated policy administrator"
                )),
                Err(code) => Err(format!(
                    "the drill's credentials cannot read the organization's SCPs ({code}): the guard could not be checked, run the drill as the delegated policy administrator or check by hand"
                )),
            });
        };
        let var = |k: &str| {
            std::env::var(k).map_err(|_| {
                Error::Usage(format!(
                    "org_guard needs the local organization's management account: {k} (the local AWS's env file)"
                ))
            })
        };
        let management = Creds::new(
            var("KILLSWITCH_LOCAL_MEMBER_ACCESS_KEY_ID")?,
            var("KILLSWITCH_LOCAL_MEMBER_SECRET_ACCESS_KEY")?,
            None,
        );
        let name = format!("drill-{}-guard", self.names.tag);
        let document = self.guard_document(responder_role)?;
        let id = self
            .sandbox
            .attach_guard(&management, account, &name, &document)
            .await?;
        planted.guard = Some((management, account.to_owned(), id));
        progress(
            &self.s.name,
            "planted",
            &format!("org guard SCP {name} attached, exempting role {responder_role}"),
        );
        Ok(Ok(()))
    }
}

/// The racer's checks, against what it did, the report and the pages on-call received.
pub(super) fn check_race(
    s: &Scenario,
    setup: &RaceSetup,
    race: &RaceSummary,
    report: &Report,
    delivered: DateTime<Utc>,
    paged: &[Paged],
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let mut check = |name: &str, passed: bool, detail: String| {
        out.push(CheckResult {
            check: name.into(),
            passed,
            detail,
        });
    };
    if let Some(guard) = &setup.guard {
        check(
            "org guard in force",
            guard.is_ok(),
            guard.clone().err().unwrap_or_else(|| "attached".into()),
        );
    }
    if s.expect.status.is_none() {
        let raced = race.first_revert_ms.is_some();
        let want = if raced {
            Status::Contested
        } else {
            Status::Contained
        };
        check(
            "status fits the race",
            report.status == want,
            format!(
                "the holder {} containment: expected {want:?}, got {:?}",
                if raced { "undid" } else { "never undid" },
                report.status
            ),
        );
    }
    let still = race.still_working();
    let kept: Vec<String> = still.iter().map(|h| h.credential.clone()).collect();
    check(
        "report does not say contained while the holder's credentials work",
        still.is_empty() || report.status != Status::Contained,
        format!("{:?}; still working: {kept:?}", report.status),
    );
    if let Some(want) = s.expect.holder_keeps_nothing {
        check(
            "holder keeps nothing at the full report",
            still.is_empty() == want,
            format!(
                "{} of {} still working: {kept:?}",
                still.len(),
                race.held.len()
            ),
        );
    }
    out.extend(check_times(s, setup, race, delivered, paged));
    out
}

/// The race's time limits: the holder's last accepted call, the CONTESTED page.
fn check_times(
    s: &Scenario,
    setup: &RaceSetup,
    race: &RaceSummary,
    delivered: DateTime<Utc>,
    paged: &[Paged],
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    if let Some(n) = s.expect.holder_stops_within_seconds_after_lag {
        let limit = (setup.lag_seconds + n) * 1000 + TOLERANCE_MS;
        out.push(CheckResult {
            check: "holder's last accepted call".into(),
            passed: race.last_ok_ms.is_none_or(|t| t <= limit),
            detail: format!(
                "{} after delivery; limit D {} s + {n} s (+{} tolerance)",
                race.last_ok_ms.map_or("none".into(), secs),
                setup.lag_seconds,
                secs(TOLERANCE_MS)
            ),
        });
    }
    if let (Some(n), Some(revert)) = (
        s.expect.contested_paged_within_seconds,
        race.first_revert_ms,
    ) {
        let page = first_contested_ms(paged, delivered);
        let limit = revert + n * 1000 + TOLERANCE_MS;
        out.push(CheckResult {
            check: "CONTESTED paged after the first undo".into(),
            passed: page.is_some_and(|p| p <= limit),
            detail: format!(
                "first undo at {}, CONTESTED page at {}; limit {n} s (+{} tolerance)",
                secs(revert),
                page.map_or("none".into(), secs),
                secs(TOLERANCE_MS)
            ),
        });
    }
    out
}

/// Milliseconds as seconds, for a reader.
pub(super) fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// When on-call was first paged CONTESTED, from the trigger's delivery.
pub(super) fn first_contested_ms(paged: &[Paged], delivered: DateTime<Utc>) -> Option<u64> {
    paged
        .iter()
        .filter(|p| p.subject.contains("CONTESTED"))
        .filter_map(|p| p.at)
        .map(|at| u64::try_from((at - delivered).num_milliseconds().max(0)).unwrap_or(0))
        .min()
}
