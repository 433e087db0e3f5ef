//! The scenario's expectations, checked against the report and against AWS afterwards.

use crate::aws::sandbox::{AttackerAction, Creds, local_portal_credentials};
use crate::handler::App;
use crate::playbook::quarantine::Standing;
use crate::report::{Activity, Investigation};

use super::plant::Leak;
use super::race::{Paged, check_race};
use super::respond::Delivered;
use super::*;

/// The checks made so far, in order.
#[derive(Default)]
struct Checks(Vec<CheckResult>);

impl Checks {
    fn check(&mut self, name: &str, passed: bool, detail: String) {
        self.0.push(CheckResult {
            check: name.into(),
            passed,
            detail,
        });
    }
}

impl Play<'_> {
    pub(super) async fn check(
        &self,
        app: &App<AwsClients>,
        leak: &Leak,
        queue_url: &str,
        minted: &[Creds],
        d: &Delivered,
        planted: &Planted,
    ) -> Result<Vec<CheckResult>, Error> {
        let mut c = Checks::default();
        self.check_response(&mut c, d);
        self.check_leak_refused(&mut c, &leak.creds).await;
        let paged = self.check_summary(&mut c, queue_url).await?;
        if let Some((setup, race)) = &d.race {
            c.0.extend(check_race(self.s, setup, race, &d.report, d.at, &paged));
        }
        let activity = match &d.report.investigation {
            Investigation::Ran(a) => Some(&**a),
            Investigation::NotRun { .. } => None,
        };
        self.check_attacker_actions(&mut c, activity);
        self.check_pivots(&mut c, activity, minted).await;
        self.check_notice(&mut c, d);
        self.check_sweep(&mut c, activity, d, minted).await;
        self.check_quarantine(&mut c, app, planted).await;
        self.check_portal(&mut c, leak)?;
        self.check_investigation_complete(&mut c, activity);
        Ok(c.0)
    }

    fn check_response(&self, c: &mut Checks, d: &Delivered) {
        let expect = &self.s.expect;
        if let Some(status) = expect.status {
            c.check(
                "status",
                d.report.status == status,
                format!("expected {status:?}, got {:?}", d.report.status),
            );
        }
        c.check(
            "error returned for Lambda",
            d.returned_error == expect.error,
            format!("expected {:?}, got {:?}", expect.error, d.returned_error),
        );
        if let Some(t) = d.tampered {
            c.check("attacker removed the deny policy", t, String::new());
        }
    }

    async fn check_leak_refused(&self, c: &mut Checks, leaked: &Creds) {
        let Some(want) = self.s.expect.key_refused else {
            return;
        };
        let (check, probe) = match self.s.canary.kind {
            CanaryKind::User | CanaryKind::Portal => {
                ("leaked key refused", AttackerAction::ListUsers)
            }
            CanaryKind::Role => ("leaked session revoked", AttackerAction::ListUsers),
            // The local AWS's root key signs nothing but sts:GetCallerIdentity, which no policy
            // denies: only a deleted key fails it.
            CanaryKind::Root => ("leaked root key refused", AttackerAction::GetCallerIdentity),
        };
        let refused = self.sandbox.attack(leaked, probe, "").await;
        let refusal = refused
            .as_ref()
            .err()
            .cloned()
            .unwrap_or_else(|| "accepted".into());
        c.check(
            check,
            refused.is_err() == want,
            format!("a call with the leaked credentials: {refusal}"),
        );
    }

    /// Every notice on-call received, checked for the first; returned for the racer's checks.
    async fn check_summary(&self, c: &mut Checks, queue_url: &str) -> Result<Vec<Paged>, Error> {
        let inbox = if self.s.faults.sns_unavailable {
            Vec::new()
        } else {
            self.sandbox.receive_all(queue_url, 5).await?
        };
        c.check(
            "summary received",
            inbox.is_empty() != self.s.expect.summary_received,
            inbox
                .first()
                .map(|(subject, _, _)| subject.clone())
                .unwrap_or_else(|| "nothing in the inbox".into()),
        );
        Ok(inbox
            .into_iter()
            .map(|(subject, _, at)| Paged {
                subject,
                at: DateTime::parse_from_rfc3339(&at)
                    .ok()
                    .map(|t| t.with_timezone(&Utc)),
            })
            .collect())
    }

    fn check_attacker_actions(&self, c: &mut Checks, activity: Option<&Activity>) {
        for action in &self.s.expect.attacker_actions {
            let found = activity
                .and_then(|a| a.by_event.get(action))
                .copied()
                .unwrap_or(0);
            c.check(
                &format!("attacker action {action} found"),
                found > 0,
                format!("{found} event(s)"),
            );
        }
    }

    async fn check_pivots(&self, c: &mut Checks, activity: Option<&Activity>, minted: &[Creds]) {
        let want = self.s.expect.pivots;
        if want == 0 {
            return;
        }
        let caught = activity.map(|a| a.pivots.len()).unwrap_or(0);
        c.check(
            "pivots caught",
            caught >= want,
            format!("{caught} of at least {want}"),
        );
        for m in minted {
            let r = self.sandbox.attack(m, AttackerAction::ListUsers, "").await;
            c.check(
                &format!("pivot {} refused", m.access_key_id),
                r.is_err(),
                r.err().unwrap_or_else(|| "accepted".into()),
            );
        }
    }

    fn check_notice(&self, c: &mut Checks, d: &Delivered) {
        if self.s.expect.notice_contains.is_empty() {
            return;
        }
        let notice = d.report.message();
        for phrase in &self.s.expect.notice_contains {
            c.check(
                &format!("notice says {phrase:?}"),
                notice.contains(phrase.as_str()),
                String::new(),
            );
        }
    }

    async fn check_sweep(
        &self,
        c: &mut Checks,
        activity: Option<&Activity>,
        d: &Delivered,
        minted: &[Creds],
    ) {
        let Some(want) = self.s.expect.sweep_new_pivots else {
            return;
        };
        let found = d
            .sweep_report
            .as_ref()
            .and_then(|r| r.sweep_result.as_ref())
            .map(|sw| sw.new_pivots);
        c.check(
            "sweep caught the late pivot",
            found.is_some_and(|n| n >= want),
            format!(
                "sweep found {found:?} new pivot(s), at least {want} expected (first report: {} pivot(s))",
                activity.map(|a| a.pivots.len()).unwrap_or(0)
            ),
        );
        for m in minted {
            let r = self.sandbox.attack(m, AttackerAction::ListUsers, "").await;
            c.check(
                &format!("late pivot {} refused after the sweep", m.access_key_id),
                r.is_err(),
                r.err().unwrap_or_else(|| "accepted".into()),
            );
        }
    }

    async fn check_quarantine(&self, c: &mut Checks, app: &App<AwsClients>, planted: &Planted) {
        if let (Some(want), Some((q, placed))) = (self.s.expect.quarantined, &planted.quarantine) {
            let standing = quarantine::read(&app.cloud, q, placed).await;
            c.check(
                "org quarantine SCP stands",
                matches!(standing, Ok(Standing::Stands)) == want,
                format!("{standing:?}"),
            );
        }
    }

    fn check_portal(&self, c: &mut Checks, leak: &Leak) -> Result<(), Error> {
        if let (Some(want), Some(user)) = (self.s.expect.portal_refused, &leak.portal)
            && let Target::Local { endpoint } = self.drill.target
        {
            let again = local_portal_credentials(
                endpoint,
                self.drill.responder.account.as_str(),
                &user.permission_set_arn,
                &user.name,
            )?;
            c.check(
                "portal refuses the user new credentials",
                again.is_none() == want,
                if again.is_none() {
                    "no assignment: the portal refused".into()
                } else {
                    "the portal handed out credentials".into()
                },
            );
        }
        Ok(())
    }

    fn check_investigation_complete(&self, c: &mut Checks, activity: Option<&Activity>) {
        if let Some(complete) = self.s.expect.investigation_complete {
            let got = activity.map(|a| a.complete()).unwrap_or(false);
            c.check(
                "investigation complete",
                got == complete,
                format!("complete: {got}"),
            );
        }
    }
}
