//! Running one scenario: plant, attack, trigger, check, clean up.

use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::Utc;

use crate::aws::AwsClients;
use crate::aws::sandbox::{
    AttackerAction, Creds, Sandbox, local_cloudtrail_fault, local_cloudtrail_lag,
    local_portal_credentials, local_portal_seed,
};
use crate::config::{Config, IdentityCenter, Quarantine};
use crate::error::Error;
use crate::handler::{self, App};
use crate::playbook::Responder;
use crate::playbook::portal;
use crate::playbook::quarantine::{self, Entry, Quarantined, Standing};
use crate::policy;
use crate::ports::Operator;
use crate::ports::{Identity, PolicyTarget};
use crate::report::Investigation;

use super::*;

/// Things created for a scenario, removed at the end whatever happened.
#[derive(Default)]
struct Planted {
    users: Vec<String>,
    roles: Vec<String>,
    inbox: Option<(String, String)>,
    fault_key: Option<String>,
    lag_key: Option<String>,
    /// The org quarantine to lift: the role, and the principal in the account's policy.
    quarantine: Option<(Quarantine, Quarantined)>,
    /// The Identity Center user to take out of the deny policy: (policy ARN, entries).
    portal: Option<(String, Vec<portal::Entry>)>,
}

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
            "org_quarantine needs a quarantine role: KILLSWITCH_QUARANTINE_ROLE_ARN and KILLSWITCH_QUARANTINE_EXTERNAL_ID (quarantine-role.yaml)".into(),
        )),
    }
}

pub struct Drill<'a> {
    pub sdk: &'a aws_config::SdkConfig,
    pub target: &'a Target,
    pub responder: &'a Responder,
}

impl Drill<'_> {
    pub async fn run(&self, scenario: &Scenario, root: &Path) -> ScenarioResult {
        let sandbox = Sandbox::new(self.sdk);
        let mut planted = Planted::default();
        let started_at = Utc::now();
        progress(&scenario.name, "start", &scenario.description);
        let outcome = self.play(&sandbox, scenario, root, &mut planted).await;
        let cleanup = self.clean(&sandbox, planted).await;
        progress(
            &scenario.name,
            "cleanup",
            &format!("{} item(s) removed", cleanup.len()),
        );
        let mut result = match outcome {
            Ok(r) => r,
            Err(e) => ScenarioResult {
                scenario: scenario.name.clone(),
                description: scenario.description.clone(),
                passed: false,
                started_at,
                time_to_containment_ms: None,
                time_to_report_ms: 0,
                status: None,
                checks: vec![CheckResult {
                    check: "scenario ran".into(),
                    passed: false,
                    detail: e.chain(),
                }],
                cleanup: Vec::new(),
                report: None,
            },
        };
        result.started_at = started_at;
        result.cleanup = cleanup;
        progress(
            &scenario.name,
            if result.passed { "PASS" } else { "FAIL" },
            "",
        );
        result
    }

    async fn play(
        &self,
        sandbox: &Sandbox,
        s: &Scenario,
        root: &Path,
        planted: &mut Planted,
    ) -> Result<ScenarioResult, Error> {
        let tag = unique_tag();
        let user = format!("drill-{tag}-canary");
        let role = format!("drill-{tag}-role");
        let pivot_role = format!("drill-{tag}-pivot");

        // The on-call inbox (or a topic that does not exist, to rehearse SNS being down).
        let (inbox_topic, queue_url) = sandbox.create_inbox(&format!("drill-{tag}")).await?;
        planted.inbox = Some((inbox_topic.clone(), queue_url.clone()));
        let topic_arn = if s.faults.sns_unavailable {
            format!("{}-missing", inbox_topic)
        } else {
            inbox_topic
        };

        // The canary and its leaked credentials.
        planted.users.push(user.clone());
        let user_creds = sandbox.create_user(&user, &CANARY_ACTIONS).await?;
        // A portal canary: (permission set ARN, user name, principal ID).
        let mut portal_user: Option<(String, String, String)> = None;
        let mut portal_user_id: Option<String> = None;
        let (leaked, principal_name) = match s.canary.kind {
            CanaryKind::User => (user_creds.clone(), user.clone()),
            CanaryKind::Portal => {
                let Target::Local { endpoint } = self.target else {
                    return Err(Error::BadEvent(
                        "a portal canary can only be rehearsed on the local AWS (it plays Identity Center's administrator and portal); on a real account, rehearse with a test Identity Center user by hand (README)".into(),
                    ));
                };
                let name = format!("drill-{tag}@example.com");
                let (ps, role_name, user_id) = local_portal_seed(
                    endpoint,
                    self.responder.account.as_str(),
                    &format!("Drill{}", &tag[..tag.len().min(20)]),
                    &name,
                )?;
                let (creds, principal) = local_portal_credentials(
                    endpoint,
                    self.responder.account.as_str(),
                    &ps,
                    &name,
                )?
                .ok_or_else(|| Error::BadEvent("the local portal refused the canary".into()))?;
                portal_user = Some((ps, name, principal));
                portal_user_id = Some(user_id);
                (creds, role_name)
            }
            CanaryKind::Role => {
                planted.roles.push(role.clone());
                let arn = sandbox
                    .create_role(
                        &role,
                        &self.responder.arn,
                        &["iam:List*", "sts:GetCallerIdentity"],
                    )
                    .await?;
                (sandbox.assume_role(&arn).await?, role.clone())
            }
        };
        progress(
            &s.name,
            "planted",
            &format!(
                "{:?} {principal_name}, leaked key {}",
                s.canary.kind, leaked.access_key_id
            ),
        );

        // The attacker plays its script with the leaked credentials.
        let mut minted: Vec<Creds> = Vec::new();
        for action in &s.attacker {
            let target = match action {
                AttackerAction::CreateUser => format!("drill-{tag}-backdoor"),
                AttackerAction::CreateAccessKey => user.clone(),
                AttackerAction::AssumeRole => {
                    if !planted.roles.contains(&pivot_role) {
                        planted.roles.push(pivot_role.clone());
                        let canary_arn =
                            format!("arn:aws:iam::{}:user/{user}", self.responder.account);
                        sandbox
                            .create_role(&pivot_role, &canary_arn, &["iam:List*"])
                            .await?;
                    }
                    format!("arn:aws:iam::{}:role/{pivot_role}", self.responder.account)
                }
                _ => String::new(),
            };
            if *action == AttackerAction::CreateUser {
                planted.users.push(target.clone());
            }
            let result = sandbox.attack(&leaked, *action, &target).await;
            progress(
                &s.name,
                "attacker",
                &format!(
                    "{action:?} -> {}",
                    result
                        .as_ref()
                        .map(|_| "ok".to_string())
                        .unwrap_or_else(|c| c.clone())
                ),
            );
            if let Ok(Some(c)) = result {
                minted.push(c);
            }
        }

        if s.faults.cloudtrail_unavailable {
            let Target::Local { endpoint } = self.target else {
                return Err(Error::BadEvent(
                    "cloudtrail_unavailable can only be rehearsed on the local AWS".into(),
                ));
            };
            local_cloudtrail_fault(endpoint, &leaked.access_key_id, true)?;
            planted.fault_key = Some(leaked.access_key_id.clone());
        }
        if s.faults.cloudtrail_lag_seconds > 0 {
            let Target::Local { endpoint } = self.target else {
                return Err(Error::BadEvent(
                    "cloudtrail_lag_seconds can only be rehearsed on the local AWS".into(),
                ));
            };
            local_cloudtrail_lag(
                endpoint,
                &leaked.access_key_id,
                s.faults.cloudtrail_lag_seconds,
            )?;
            planted.lag_key = Some(leaked.access_key_id.clone());
        }
        let quarantine_config = if s.settings.org_quarantine {
            Some(quarantine_role(self.target)?)
        } else {
            None
        };

        let identity_center = if s.settings.identity_center {
            Some(identity_center_role(
                self.target,
                s.settings.remove_assignments,
            )?)
        } else {
            None
        };

        // The trigger, through the same handler as production.
        let mut payload = event_for(
            root,
            &s.trigger.event,
            &leaked.access_key_id,
            &principal_name,
            self.responder.account.as_str(),
        )?;
        if let Some((_, name, principal)) = &portal_user {
            if let Some(details) = payload.pointer_mut("/detail/resource/accessKeyDetails") {
                details["principalId"] = serde_json::json!(principal);
                details["userName"] = serde_json::json!(principal_name);
            }
            if identity_center.is_some() {
                let partition = self.responder.arn.split(':').nth(1).unwrap_or("aws");
                planted.portal = Some((
                    portal::policy_arn(
                        partition,
                        self.responder.account.as_str(),
                        "KillSwitchDeny",
                    ),
                    portal::entries(principal, portal_user_id.as_deref()),
                ));
            }
            progress(&s.name, "planted", &format!("Identity Center user {name}"));
        }
        let mut protected = Vec::new();
        if s.canary.protected {
            protected.push(principal_name.clone());
        }
        let config = Config {
            topic_arn,
            protected,
            dry_run: false,
            lookback: Duration::from_secs(3600),
            verify_delay: Duration::from_secs(s.settings.verify_delay_seconds),
            regions: vec!["us-east-1".into()],
            max_events_per_region: 1000,
            investigation_budget: Duration::from_secs(30),
            follow_pivots: s.settings.follow_pivots,
            members: None,
            identity_center: identity_center.clone(),
            follow_up_queue_url: None,
            incident_table: None,
            role_wide: Vec::new(),
            sweep_after: Duration::from_secs(s.settings.sweep_seconds),
            cloudtrail_lag: Duration::from_secs(900),
            sweep_inline: s.settings.sweep_seconds > 0,
            page_key_not_found: true,
            chat_topic_arn: None,
            security_hub_updates: false,
            quarantine: quarantine_config.clone(),
        };
        let app = App {
            cloud: AwsClients::from_sdk_config(self.sdk, config.topic_arn.clone()),
            config,
            responder: Some(self.responder.clone()),
        };
        if s.tamper.plant_decoy_deny_policy {
            // IAM ANDs conditions: this "deny all" denies nothing, while looking like ours.
            let decoy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"KillSwitchDenyAll","Effect":"Deny","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"192.0.2.1/32"}}}]}"#;
            app.cloud
                .put_policy(
                    &PolicyTarget::User(user.clone()),
                    policy::USER_POLICY_NAME,
                    decoy,
                )
                .await?;
            progress(&s.name, "attacker", "planted a decoy KillSwitchDenyAll");
        }
        if let (Some(q), CanaryKind::User) = (&quarantine_config, s.canary.kind) {
            planted.quarantine = Some((
                q.clone(),
                Quarantined {
                    policy_id: String::new(),
                    policy_name: quarantine::policy_name(self.responder.account.as_str()),
                    account: self.responder.account.to_string(),
                    entry: Entry::User { name: user.clone() },
                    at: Utc::now(),
                },
            ));
        }
        let delivered = Utc::now();
        let clock = std::time::Instant::now();
        progress(&s.name, "trigger", &s.trigger.event);
        let deadline = SystemTime::now() + Duration::from_secs(120);
        let tamper = async {
            if !s.tamper.delete_deny_policy_after_containment {
                return None;
            }
            // The attacker's foothold watches for the deny and removes it at once.
            let target = PolicyTarget::User(user.clone());
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
        };
        let (response, tampered) = tokio::join!(
            handler::handle(&app, payload, deadline, false, handler::Phases::Both),
            tamper
        );
        let elapsed = clock.elapsed();
        let mut response = response?;
        if s.settings.sweep_seconds > 0 {
            progress(
                &s.name,
                "sweep",
                &format!("in {} s", s.settings.sweep_seconds),
            );
            handler::run_pending_sweeps(&app, &mut response).await;
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

        // Checks.
        let mut checks = Vec::new();
        let mut check = |name: &str, passed: bool, detail: String| {
            checks.push(CheckResult {
                check: name.into(),
                passed,
                detail,
            });
        };
        check(
            "status",
            report.status == s.expect.status,
            format!("expected {:?}, got {:?}", s.expect.status, report.status),
        );
        check(
            "error returned for Lambda",
            returned_error == s.expect.error,
            format!("expected {:?}, got {returned_error:?}", s.expect.error),
        );
        if let Some(t) = tampered {
            check("attacker removed the deny policy", t, String::new());
        }
        let refused = sandbox.attack(&leaked, AttackerAction::ListUsers, "").await;
        let refusal = refused
            .as_ref()
            .err()
            .cloned()
            .unwrap_or_else(|| "accepted".into());
        check(
            if s.canary.kind == CanaryKind::Role {
                "leaked session revoked"
            } else {
                "leaked key refused"
            },
            refused.is_err() == s.expect.key_refused,
            format!("a call with the leaked credentials: {refusal}"),
        );
        let summary = if s.faults.sns_unavailable {
            None
        } else {
            sandbox.receive(&queue_url, 5).await?
        };
        check(
            "summary received",
            summary.is_some() == s.expect.summary_received,
            summary
                .as_ref()
                .map(|(subject, _)| subject.clone())
                .unwrap_or_else(|| "nothing in the inbox".into()),
        );
        let activity = match &report.investigation {
            Investigation::Ran(a) => Some(a),
            Investigation::NotRun { .. } => None,
        };
        for action in &s.expect.attacker_actions {
            let found = activity
                .and_then(|a| a.by_event.get(action))
                .copied()
                .unwrap_or(0);
            check(
                &format!("attacker action {action} found"),
                found > 0,
                format!("{found} event(s)"),
            );
        }
        if s.expect.pivots > 0 {
            let caught = activity.map(|a| a.pivots.len()).unwrap_or(0);
            check(
                "pivots caught",
                caught >= s.expect.pivots,
                format!("{caught} of at least {}", s.expect.pivots),
            );
            for c in &minted {
                let r = sandbox.attack(c, AttackerAction::ListUsers, "").await;
                check(
                    &format!("pivot {} refused", c.access_key_id),
                    r.is_err(),
                    r.err().unwrap_or_else(|| "accepted".into()),
                );
            }
        }
        if !s.expect.notice_contains.is_empty() {
            let notice = report.message();
            for phrase in &s.expect.notice_contains {
                check(
                    &format!("notice says {phrase:?}"),
                    notice.contains(phrase.as_str()),
                    String::new(),
                );
            }
        }
        if let Some(want) = s.expect.sweep_new_pivots {
            let found = sweep_report
                .as_ref()
                .and_then(|r| r.sweep_result.as_ref())
                .map(|sw| sw.new_pivots);
            check(
                "sweep caught the late pivot",
                found.is_some_and(|n| n >= want),
                format!(
                    "sweep found {found:?} new pivot(s), at least {want} expected (first report: {} pivot(s))",
                    activity.map(|a| a.pivots.len()).unwrap_or(0)
                ),
            );
            for c in &minted {
                let r = sandbox.attack(c, AttackerAction::ListUsers, "").await;
                check(
                    &format!("late pivot {} refused after the sweep", c.access_key_id),
                    r.is_err(),
                    r.err().unwrap_or_else(|| "accepted".into()),
                );
            }
        }
        if let (Some(want), Some((q, placed))) = (s.expect.quarantined, &planted.quarantine) {
            let standing = quarantine::read(&app.cloud, q, placed).await;
            check(
                "org quarantine SCP stands",
                matches!(standing, Ok(Standing::Stands)) == want,
                format!("{standing:?}"),
            );
        }
        if let (Some(want), Some((ps, name, _))) = (s.expect.portal_refused, &portal_user)
            && let Target::Local { endpoint } = self.target
        {
            let again =
                local_portal_credentials(endpoint, self.responder.account.as_str(), ps, name)?;
            check(
                "portal refuses the user new credentials",
                again.is_none() == want,
                if again.is_none() {
                    "no assignment: the portal refused".into()
                } else {
                    "the portal handed out credentials".into()
                },
            );
        }
        if let Some(complete) = s.expect.investigation_complete {
            let got = activity.map(|a| a.complete()).unwrap_or(false);
            check(
                "investigation complete",
                got == complete,
                format!("complete: {got}"),
            );
        }

        let containment_ms = report
            .steps
            .iter()
            .filter(|st| {
                matches!(
                    st.step,
                    crate::playbook::Step::DeactivateKey
                        | crate::playbook::Step::DenyUser
                        | crate::playbook::Step::RevokeRoleSessions
                        | crate::playbook::Step::DenyPortalUser
                )
            })
            .map(|st| st.at)
            .max()
            .map(|at| u64::try_from((at - delivered).num_milliseconds().max(0)).unwrap_or(0));
        let passed = checks.iter().all(|c| c.passed);
        Ok(ScenarioResult {
            scenario: s.name.clone(),
            description: s.description.clone(),
            passed,
            started_at: delivered,
            time_to_containment_ms: containment_ms,
            time_to_report_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            status: Some(report.status),
            checks,
            cleanup: Vec::new(),
            report: Some(report),
        })
    }

    async fn clean(&self, sandbox: &Sandbox, planted: Planted) -> Vec<String> {
        let mut done = Vec::new();
        if let (Some(key), Target::Local { endpoint }) = (&planted.fault_key, self.target) {
            let _ = local_cloudtrail_fault(endpoint, key, false);
            done.push(format!("CloudTrail fault for {key}"));
        }
        if let (Some(key), Target::Local { endpoint }) = (&planted.lag_key, self.target) {
            let _ = local_cloudtrail_lag(endpoint, key, 0);
            done.push(format!("CloudTrail lag for {key}"));
        }
        if let Some((q, placed)) = &planted.quarantine {
            let cloud = AwsClients::from_sdk_config(self.sdk, String::new());
            match quarantine::lift(&cloud, None::<&AwsClients>, q, placed).await {
                Ok(_) => done.push(format!("org quarantine of {}", placed.entry)),
                Err(e) => done.push(format!(
                    "org quarantine of {} NOT lifted: {}",
                    placed.entry,
                    e.chain()
                )),
            }
        }
        if let Some((policy_arn, entries)) = &planted.portal {
            let cloud = AwsClients::from_sdk_config(self.sdk, String::new());
            match portal::lift(&cloud, policy_arn, entries).await {
                Ok(lifted) => done.push(lifted),
                Err(e) => done.push(format!(
                    "deny of the portal canary NOT lifted: {}",
                    e.chain()
                )),
            }
        }
        for role in &planted.roles {
            sandbox.delete_role(role).await;
            done.push(format!("role {role}"));
        }
        for user in &planted.users {
            sandbox.delete_user(user).await;
            done.push(format!("user {user}"));
        }
        if let Some((topic, queue)) = &planted.inbox {
            sandbox.delete_inbox(topic, queue).await;
            done.push(format!("inbox {topic}"));
        }
        done
    }
}
