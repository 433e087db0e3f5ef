//! Tabletop drills: plant a canary key, play the attacker, deliver the trigger through the same
//! handler as production, then check and time what happened, and clean up whatever happens.
//!
//! Scenarios are TOML files under `drills/`; see `drills/README.md` for the format.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::AwsClients;
use crate::aws::sandbox::{AttackerAction, Creds, Sandbox, local_cloudtrail_fault};
use crate::config::Config;
use crate::error::Error;
use crate::handler::{self, App};
use crate::playbook::Responder;
use crate::policy;
use crate::ports::Operator;
use crate::ports::{Identity, PolicyTarget};
use crate::report::{Investigation, Report, Status};

/// Permissions of a canary user: what a typical CI user holds, enough for the scripted attacker.
const CANARY_ACTIONS: [&str; 5] = [
    "iam:List*",
    "iam:Get*",
    "sts:GetCallerIdentity",
    "iam:CreateAccessKey",
    "sts:AssumeRole",
];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub canary: Canary,
    /// Calls the attacker makes with the leaked credentials before the trigger.
    #[serde(default)]
    pub attacker: Vec<AttackerAction>,
    pub trigger: TriggerSpec,
    #[serde(default)]
    pub settings: Settings,
    #[serde(default)]
    pub faults: Faults,
    #[serde(default)]
    pub tamper: Tamper,
    pub expect: Expect,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    /// `user` (an IAM user's access key leaks) or `role` (a role session leaks).
    #[serde(default)]
    pub kind: CanaryKind,
    /// List the canary in KILLSWITCH_PROTECTED_PRINCIPALS.
    #[serde(default)]
    pub protected: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryKind {
    #[default]
    User,
    Role,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// A payload from `events/`; its example key, user and role names are replaced by the canary's.
    pub event: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub follow_pivots: bool,
    #[serde(default = "default_verify_delay")]
    pub verify_delay_seconds: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            follow_pivots: false,
            verify_delay_seconds: default_verify_delay(),
        }
    }
}

fn default_verify_delay() -> u64 {
    2
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// CloudTrail lookups for the canary key fail (local AWS only).
    #[serde(default)]
    pub cloudtrail_unavailable: bool,
    /// The function publishes to a topic that does not exist.
    #[serde(default)]
    pub sns_unavailable: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tamper {
    /// The attacker's foothold deletes the deny policy right after containment writes it.
    #[serde(default)]
    pub delete_deny_policy_after_containment: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The report status: contained, contested, refused, sample, ...
    pub status: Status,
    /// A call with the leaked credentials is refused afterwards.
    pub key_refused: bool,
    /// The summary reaches the on-call inbox.
    pub summary_received: bool,
    /// Events (`service:EventName`) the investigation must have found.
    #[serde(default)]
    pub attacker_actions: Vec<String>,
    /// At least this many minted credentials found, and all of them refused afterwards.
    #[serde(default)]
    pub pivots: usize,
    /// The CloudTrail search was complete (`false`: it must say it was not).
    #[serde(default)]
    pub investigation_complete: Option<bool>,
    /// The error the handler returns for Lambda to retry (`KillSwitch.NotifyFailed`, ...);
    /// none expected when absent.
    #[serde(default)]
    pub error: Option<String>,
}

pub fn load(path: &Path) -> Result<Scenario, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::BadEvent(format!("cannot read scenario {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| Error::BadEvent(format!("scenario {}: {e}", path.display())))
}

/// One expectation, checked.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub check: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub scenario: String,
    pub description: String,
    pub passed: bool,
    pub started_at: DateTime<Utc>,
    /// From trigger delivery to the last containment write.
    pub time_to_containment_ms: Option<u64>,
    /// From trigger delivery to the handler's return (verification, search, notification).
    pub time_to_report_ms: u64,
    pub status: Option<Status>,
    pub checks: Vec<CheckResult>,
    pub cleanup: Vec<String>,
    pub report: Option<Report>,
}

/// Where the drill runs.
pub enum Target {
    /// The embedded local AWS (`AWS_ENDPOINT_URL` on 127.0.0.1).
    Local { endpoint: String },
    /// A real sandbox account, chosen explicitly.
    Account { id: String },
}

/// Things created for a scenario, removed at the end whatever happened.
#[derive(Default)]
struct Planted {
    users: Vec<String>,
    roles: Vec<String>,
    inbox: Option<(String, String)>,
    fault_key: Option<String>,
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
        let (leaked, principal_name) = match s.canary.kind {
            CanaryKind::User => (user_creds.clone(), user.clone()),
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

        // The trigger, through the same handler as production.
        let payload = event_for(
            root,
            &s.trigger.event,
            &leaked.access_key_id,
            &principal_name,
            self.responder.account.as_str(),
        )?;
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
            follow_up_queue_url: None,
            incident_table: None,
        };
        let app = App {
            cloud: AwsClients::from_sdk_config(self.sdk, config.topic_arn.clone()),
            config,
            responder: Some(self.responder.clone()),
        };
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
        let response = response?;
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

/// Reads a payload from `events/` and points it at the canary.
fn event_for(
    root: &Path,
    file: &str,
    key: &str,
    principal: &str,
    account: &str,
) -> Result<Value, Error> {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::BadEvent(format!("trigger event {}: {e}", path.display())))?;
    let text = text
        .replace("AKIAIOSFODNN7EXAMPLE", key)
        .replace("ASIAIOSFODNN7EXAMPLE", key)
        .replace("\"alice\"", &format!("\"{principal}\""))
        .replace("\"ci-deployer\"", &format!("\"{principal}\""))
        .replace("123456789012", account);
    serde_json::from_str(&text)
        .map_err(|e| Error::BadEvent(format!("trigger event {}: {e}", path.display())))
}

fn unique_tag() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", nanos, N.fetch_add(1, Ordering::SeqCst))
}

fn progress(scenario: &str, phase: &str, detail: &str) {
    eprintln!("[drill] {scenario:<32} {phase:<9} {detail}");
}

/// The scorecard printed at the end of a drill.
pub fn scorecard(results: &[ScenarioResult]) -> String {
    let mut out = String::new();
    out.push_str("| scenario | result | status | containment | report | checks |\n|---|---|---|---|---|---|\n");
    for r in results {
        let failed: Vec<_> = r
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{} ({})", c.check, c.detail))
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} ms | {}/{}{} |\n",
            r.scenario,
            if r.passed { "PASS" } else { "FAIL" },
            r.status
                .map(|s| format!("{s:?}"))
                .unwrap_or_else(|| "-".into()),
            r.time_to_containment_ms
                .map(|t| format!("{t} ms"))
                .unwrap_or_else(|| "-".into()),
            r.time_to_report_ms,
            r.checks.iter().filter(|c| c.passed).count(),
            r.checks.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!(" FAILED: {}", failed.join("; "))
            },
        ));
    }
    let passed = results.iter().filter(|r| r.passed).count();
    out.push_str(&format!(
        "\n{passed} passed, {} failed\n",
        results.len() - passed
    ));
    out
}

/// The Markdown drill record: scorecard plus every check.
pub fn markdown(results: &[ScenarioResult]) -> String {
    let mut out = format!(
        "# killswitch drill, {}\n\n",
        Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    out.push_str(&scorecard(results));
    for r in results {
        out.push_str(&format!(
            "\n## {} — {}\n\n{}\n\n",
            r.scenario,
            if r.passed { "PASS" } else { "FAIL" },
            r.description
        ));
        for c in &r.checks {
            out.push_str(&format!(
                "- [{}] {}: {}\n",
                if c.passed { "x" } else { " " },
                c.check,
                c.detail
            ));
        }
        out.push_str(&format!("- cleaned up: {}\n", r.cleanup.join(", ")));
    }
    out
}

/// Scenario files named on the command line, or every `drills/*.toml`.
pub fn scenario_files(given: &[PathBuf], root: &Path) -> Result<Vec<PathBuf>, Error> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let dir = root.join("drills");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::BadEvent(format!("cannot list {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}
