//! The response under test: the function's settings for the scenario, the trigger through the
//! same handler as production, and the attacker's tampering while it runs.

use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::{Config, IdentityCenter};
use crate::handler::{self, App};
use crate::playbook::quarantine::Entry;
use crate::policy;
use crate::ports::{Identity, Operator, PolicyTarget};
use crate::report::Report;
use crate::vocab::Arn;

use super::forward::{self, PivotEvents};
use super::plant::Leak;
use super::race::RaceSetup;
use super::*;

/// The Identity Center role a drill uses: the deployment's, or on the local AWS the one it set up.
fn identity_center_role(
    target: &Target,
    remove_assignments: bool,
) -> Result<IdentityCenter, Error> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let prefix = match target {
        Target::Local { .. } => "KILLSWITCH_LOCAL_IDENTITY_CENTER",
        Target::Account { .. } => "KILLSWITCH_IDENTITY_CENTER",
    };
    match (
        var(&format!("{prefix}_ROLE_ARN")),
        var(&format!("{prefix}_EXTERNAL_ID")),
    ) {
        (Some(role_arn), Some(external_id)) => Ok(IdentityCenter {
            role_arn,
            external_id,
            region: var(&format!("{prefix}_REGION")),
            policy_name: "KillSwitchDeny".into(),
            remove_assignments,
            restore_role_arn: None,
        }),
        _ => Err(Error::Usage(
            "identity_center needs the Identity Center role: KILLSWITCH_IDENTITY_CENTER_ROLE_ARN and KILLSWITCH_IDENTITY_CENTER_EXTERNAL_ID (identity-center-role.yaml)".into(),
        )),
    }
}

/// The quarantine role a drill uses: the deployment's, or on the local AWS the one it set up.
fn quarantine_role(target: &Target) -> Result<Quarantine, Error> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (role, ext) = match target {
        Target::Local { .. } => (
            var("KILLSWITCH_LOCAL_QUARANTINE_ROLE_ARN"),
            var("KILLSWITCH_LOCAL_QUARANTINE_EXTERNAL_ID"),
        ),
        Target::Account { .. } => (
            var("KILLSWITCH_QUARANTINE_ROLE_ARN"),
            var("KILLSWITCH_QUARANTINE_EXTERNAL_ID"),
        ),
    };
    match (role, ext) {
        (Some(role_arn), Some(external_id)) => Ok(Quarantine {
            role_arn,
            external_id,
        }),
        _ => Err(Error::Usage(
            "org_quarantine and root_keys = \"delete\" need a quarantine role: KILLSWITCH_QUARANTINE_ROLE_ARN and KILLSWITCH_QUARANTINE_EXTERNAL_ID (quarantine-role.yaml; for root keys also root-access-role.yaml)".into(),
        )),
    }
}

/// What the trigger's delivery came to.
pub(super) struct Delivered {
    /// When the trigger was handed to the handler.
    pub at: DateTime<Utc>,
    pub elapsed: Duration,
    /// Whether the attacker's foothold removed the deny policy, when the scenario has it try.
    pub tampered: Option<bool>,
    pub returned_error: Option<String>,
    pub sweep_report: Option<Report>,
    pub report: Report,
    /// The racing holder's scene and what it did and kept.
    pub race: Option<(RaceSetup, RaceSummary)>,
    /// The pivot events forwarded while the handler ran (local AWS, racers).
    pub pivot_events: Option<PivotEvents>,
}

impl Play<'_> {
    /// The function as the scenario configures it; a racing scenario's with its incident table
    /// (and, under the local guard, as the responder role the guard exempts).
    pub(super) fn app(
        &self,
        topic_arn: String,
        leak: &Leak,
        race: Option<&RaceSetup>,
    ) -> Result<App<AwsClients>, Error> {
        let s = self.s;
        let root_keys = match s.settings.root_keys {
            RootKeysSetting::Notify => crate::config::RootKeys::Notify,
            RootKeysSetting::Delete => crate::config::RootKeys::Delete,
        };
        // A root session starts from the quarantine role (root-access-role.yaml).
        let quarantine =
            if s.settings.org_quarantine || root_keys == crate::config::RootKeys::Delete {
                Some(quarantine_role(self.drill.target)?)
            } else {
                None
            };
        let identity_center = if s.settings.identity_center {
            Some(identity_center_role(
                self.drill.target,
                s.settings.remove_assignments,
            )?)
        } else {
            None
        };
        let mut protected = Vec::new();
        if s.canary.protected {
            protected.push(leak.principal_name.clone());
        }
        let config = Config {
            topic_arn,
            protected,
            dry_run: false,
            lookback: Duration::from_secs(3600),
            verify_delay: Duration::from_secs(s.settings.verify_delay_seconds),
            watch: Duration::from_secs(s.settings.watch_seconds),
            regions: vec!["us-east-1".into()],
            max_events_per_region: 1000,
            investigation_budget: Duration::from_secs(30),
            follow_pivots: s.settings.follow_pivots,
            members: None,
            identity_center,
            follow_up_queue_url: None,
            incident_table: race.and_then(|r| r.incident_table.clone()),
            record_key_arn: None,
            jobs: Default::default(),
            role_wide: Vec::new(),
            sweep_after: Duration::from_secs(s.settings.sweep_seconds),
            cloudtrail_lag: Duration::from_secs(900),
            sweep_inline: s.settings.sweep_seconds > 0,
            page_key_not_found: true,
            accepts: crate::config::accepts::Accepts::All,
            chat_topic_arn: None,
            security_hub_updates: false,
            act_on_custom_findings: false,
            quarantine,
            root_keys,
        };
        let (sdk, responder) = match race.and_then(|r| r.acting.as_ref()) {
            Some(acting) => (&acting.sdk, &acting.responder),
            None => (self.drill.sdk, self.drill.responder),
        };
        Ok(App {
            cloud: AwsClients::for_config(sdk, &config),
            config,
            responder: Some(responder.clone()),
        })
    }

    /// The trigger from `events/`, pointed at the canary (and at the portal user's principal).
    pub(super) fn trigger_event(
        &self,
        root: &Path,
        leak: &Leak,
        config: &Config,
        planted: &mut Planted,
    ) -> Result<Value, Error> {
        let responder = self.drill.responder;
        let mut payload = event_for(
            root,
            &self.s.trigger.event,
            &leak.creds.access_key_id,
            &leak.principal_name,
            responder.account.as_str(),
        )?;
        if let Some(uid) = &leak.session_userid
            && let Some(details) = payload.pointer_mut("/detail/resource/accessKeyDetails")
        {
            details["principalId"] = serde_json::json!(uid);
        }
        if let Some(user) = &leak.portal {
            if let Some(details) = payload.pointer_mut("/detail/resource/accessKeyDetails") {
                details["principalId"] = serde_json::json!(user.principal_id);
                details["userName"] = serde_json::json!(leak.principal_name);
            }
            if config.identity_center.is_some() {
                let partition = Arn::parse(&responder.arn).map_or("aws", |a| a.partition);
                planted.portal = Some((
                    portal::policy_arn(partition, responder.account.as_str(), "KillSwitchDeny"),
                    portal::entries(&user.principal_id, Some(user.user_id.as_str())),
                ));
            }
            progress(
                &self.s.name,
                "planted",
                &format!("Identity Center user {}", user.name),
            );
        }
        Ok(payload)
    }

    /// A decoy under the deny policy's name, when the scenario has the attacker plant one.
    pub(super) async fn plant_decoy(&self, app: &App<AwsClients>) -> Result<(), Error> {
        if !self.s.tamper.plant_decoy_deny_policy {
            return Ok(());
        }
        // IAM ANDs conditions: this "deny all" denies nothing, while looking like ours.
        let decoy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"KillSwitchDenyAll","Effect":"Deny","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"192.0.2.1/32"}}}]}"#;
        app.cloud
            .put_policy(
                &PolicyTarget::User(self.names.user.clone()),
                policy::USER_POLICY_NAME,
                decoy,
            )
            .await?;
        progress(
            &self.s.name,
            "attacker",
            "planted a decoy KillSwitchDenyAll",
        );
        Ok(())
    }

    /// The org quarantine a user canary will get, so that cleanup lifts it whatever happens.
    pub(super) fn plan_quarantine_lift(&self, config: &Config, planted: &mut Planted) {
        if let (Some(q), CanaryKind::User) = (&config.quarantine, self.s.canary.kind) {
            let account = &self.drill.responder.account;
            planted.quarantine = Some((
                q.clone(),
                Quarantined {
                    policy_id: String::new(),
                    policy_name: quarantine::policy_name(account.as_str()),
                    account: account.to_string(),
                    entry: Entry::User {
                        name: self.names.user.clone(),
                    },
                    at: Utc::now(),
                },
            ));
        }
    }

    /// The trigger through the same handler as production, timed, with the scenario's sweep;
    /// the racing holder starts with the delivery and tries its credentials once the handler
    /// has returned (the full report has gone out). Meanwhile, on the local AWS, the pivot
    /// events of a race are forwarded to the function as its EventBridge rules would.
    pub(super) async fn deliver(
        &self,
        app: &App<AwsClients>,
        payload: Value,
        race: Option<RaceSetup>,
    ) -> Result<Delivered, Error> {
        let s = self.s;
        // GuardDuty cannot be made to raise a real finding on demand: the drill holds its own
        // where the function reads findings back (the drill build only).
        app.cloud.staged.stage(&payload);
        let deadline = SystemTime::now() + Duration::from_secs(120);
        let (report_sent, report_heard) = tokio::sync::oneshot::channel();
        let (forwarding_ends, forwarding_end) = tokio::sync::oneshot::channel();
        progress(&s.name, "trigger", &s.trigger.event);
        let at = Utc::now();
        let clock = Instant::now();
        let handled = async {
            let response =
                handler::handle(app, payload, deadline, false, handler::Phases::Both).await;
            let elapsed = clock.elapsed();
            let _ = report_sent.send(());
            let _ = forwarding_ends.send(());
            (response, elapsed)
        };
        let forwarded = async {
            match (
                race.as_ref().and_then(|r| r.events_after),
                self.drill.target,
            ) {
                (Some(after), Target::Local { endpoint }) => {
                    Some(forward::forward(app, endpoint, after, clock, forwarding_end).await)
                }
                _ => None,
            }
        };
        let raced = async {
            match &race {
                Some(r) => Some(
                    self.sandbox
                        .race(&r.plan, &r.baseline, clock, report_heard)
                        .await,
                ),
                None => None,
            }
        };
        let ((response, elapsed), tampered, raced, pivot_events) = tokio::join!(
            handled,
            self.remove_deny_once_written(app),
            raced,
            forwarded
        );
        self.say_forwarded(pivot_events.as_ref());
        let race = race.zip(raced);
        let mut response = response?;
        if s.settings.sweep_seconds > 0 {
            progress(
                &s.name,
                "sweep",
                &format!("in {} s", s.settings.sweep_seconds),
            );
            handler::run_pending_sweeps(app, &mut response).await;
        }
        let sweep_report = response.sweeps.first().cloned();
        let returned_error = response.error().map(|e| e.kind().to_owned());
        let report = response
            .reports
            .into_iter()
            .next()
            .ok_or_else(|| Error::BadEvent("no report".into()))?;
        progress(
            &s.name,
            "report",
            &format!("{:?}: {}", report.status, report.summary),
        );
        Ok(Delivered {
            at,
            elapsed,
            tampered,
            returned_error,
            sweep_report,
            report,
            race,
            pivot_events,
        })
    }

    fn say_forwarded(&self, events: Option<&PivotEvents>) {
        if let Some(p) = events {
            progress(
                &self.s.name,
                "events",
                &format!(
                    "{} pivot event(s) forwarded, {} under containment",
                    p.forwarded,
                    p.answered.len()
                ),
            );
        }
    }

    /// The attacker's foothold watches for the deny and removes it at once, when the scenario
    /// has it try. `None`: it did not try.
    async fn remove_deny_once_written(&self, app: &App<AwsClients>) -> Option<bool> {
        if !self.s.tamper.delete_deny_policy_after_containment {
            return None;
        }
        let target = PolicyTarget::User(self.names.user.clone());
        for _ in 0..200 {
            if let Ok(Some(_)) = app
                .cloud
                .read_policy(&target, policy::USER_POLICY_NAME)
                .await
            {
                let r = app
                    .cloud
                    .delete_policy(&target, policy::USER_POLICY_NAME)
                    .await;
                return Some(r.is_ok());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(false)
    }
}

impl Delivered {
    /// The scenario's result: its checks, and the times from the trigger's delivery.
    pub(super) fn result(self, s: &Scenario, checks: Vec<CheckResult>) -> ScenarioResult {
        let delivered = self.at;
        let containment_ms = self
            .report
            .steps
            .iter()
            .filter(|st| st.step.is_containment_write())
            .map(|st| st.at)
            .max()
            .map(|at| u64::try_from((at - delivered).num_milliseconds().max(0)).unwrap_or(0));
        let passed = checks.iter().all(|c| c.passed);
        let (lag_seconds, racer) = match self.race {
            Some((setup, summary)) => (Some(setup.lag_seconds), Some(summary)),
            None => (None, None),
        };
        ScenarioResult {
            scenario: s.name.clone(),
            description: s.description.clone(),
            passed,
            started_at: delivered,
            time_to_containment_ms: containment_ms,
            time_to_report_ms: u64::try_from(self.elapsed.as_millis()).unwrap_or(u64::MAX),
            status: Some(self.report.status),
            checks,
            cleanup: Vec::new(),
            report: Some(self.report),
            lag_seconds,
            racer,
            pivot_events: self.pivot_events,
        }
    }
}
