//! Running one scenario: plant, attack, trigger, check, clean up.

mod checks;
mod forward;
mod guard;
mod plant;
mod race;
mod respond;

pub use forward::{PivotEventAnswer, PivotEvents};

use std::path::Path;

use chrono::Utc;

use crate::aws::AwsClients;
use crate::aws::sandbox::{
    Creds, Sandbox, local_cloudtrail_fault, local_cloudtrail_lag, local_iam_lag,
    local_root_key_delete, local_root_keys,
};
use crate::config::Quarantine;
use crate::error::Error;
use crate::playbook::Responder;
use crate::playbook::portal;
use crate::playbook::quarantine::{self, Quarantined};

use super::*;
use plant::Names;

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
    /// The org guard the drill attached: (the management account's credentials, the account,
    /// the SCP's ID).
    guard: Option<(Creds, String, String)>,
    /// The incident table the drill created for the response and its pivot events.
    table: Option<String>,
    /// The root access key planted on the local AWS: (account, key ID).
    root_key: Option<(String, String)>,
}

/// One scenario being played, with the names its resources carry.
struct Play<'a> {
    drill: &'a Drill<'a>,
    sandbox: &'a Sandbox,
    s: &'a Scenario,
    names: Names,
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
                lag_seconds: None,
                racer: None,
                pivot_events: None,
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

    /// The scenario in the order it happens: set the scene, deliver the trigger, check.
    async fn play(
        &self,
        sandbox: &Sandbox,
        s: &Scenario,
        root: &Path,
        planted: &mut Planted,
    ) -> Result<ScenarioResult, Error> {
        let p = Play {
            drill: self,
            sandbox,
            s,
            names: Names::new(unique_tag()),
        };
        let (topic_arn, queue_url) = p.plant_inbox(planted).await?;
        let leak = p.plant_canary(planted).await?;
        let mut race = p.plan_race(&leak, planted).await?;
        p.settle().await;
        p.act_as_responder(&mut race).await?;
        let minted = p.play_attacker(&leak.creds, planted).await?;
        p.plant_faults(&leak.creds.access_key_id, planted)?;
        let app = p.app(topic_arn, &leak, race.as_ref())?;
        let payload = p.trigger_event(root, &leak, &app.config, planted)?;
        p.plant_decoy(&app).await?;
        p.plan_quarantine_lift(&app.config, planted);
        p.race_baseline(&mut race).await?;
        let delivered = p.deliver(&app, payload, race).await?;
        if let Some((_, summary)) = &delivered.race {
            planted.roles.extend(summary.backdoor_roles.iter().cloned());
        }
        let checks = p
            .check(&app, &leak, &queue_url, &minted, &delivered, planted)
            .await?;
        Ok(delivered.result(s, checks))
    }

    async fn clean(&self, sandbox: &Sandbox, planted: Planted) -> Vec<String> {
        let mut done = Vec::new();
        if let Some((management, account, id)) = &planted.guard {
            done.push(match sandbox.remove_guard(management, account, id).await {
                Ok(()) => format!("org guard SCP {id}"),
                Err(e) => format!("org guard SCP {id} NOT removed: {}", e.chain()),
            });
            // Until IAM's lag has run out the guard still refuses the drill's deletes of the
            // contained users and the guarded roles.
            if let Target::Local { endpoint } = self.target {
                let lag = local_iam_lag(endpoint);
                tokio::time::sleep(std::time::Duration::from_secs(lag + 1)).await;
            }
        }
        if let Some(table) = &planted.table {
            sandbox.delete_table(table).await;
            done.push(format!("incident table {table}"));
        }
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
        if let (Some((account, key)), Target::Local { endpoint }) = (&planted.root_key, self.target)
        {
            done.push(clean_root_key(endpoint, account, key));
        }
        done
    }
}

/// A planted root key must not outlive the drill, whatever the response did: a root key left
/// behind is a working credential no policy restricts.
fn clean_root_key(endpoint: &str, account: &str, key: &str) -> String {
    match local_root_keys(endpoint, account) {
        Ok(keys) if !keys.iter().any(|k| k == key) => {
            format!("root access key {key} of {account} (already deleted)")
        }
        Ok(_) => match local_root_key_delete(endpoint, account, key) {
            Ok(true) => format!("root access key {key} of {account} (deleted by the drill)"),
            Ok(false) => {
                format!("root access key {key} of {account} (gone before the drill's delete)")
            }
            Err(e) => format!(
                "root access key {key} of {account} NOT deleted: {}",
                e.chain()
            ),
        },
        Err(e) => format!(
            "root access key {key} of {account} NOT checked: {}",
            e.chain()
        ),
    }
}
