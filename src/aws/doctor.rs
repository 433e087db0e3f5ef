//! `doctor::Preflight` over the SDK: the reads `killswitch doctor` makes, as whoever runs it (or,
//! entered, as a member role). Read-only: no call here changes anything.

use aws_config::{Region, SdkConfig};
use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum, PolicyEvaluationDecisionType};

use super::{AwsClients, aws_err, sns_client};
use crate::doctor::{
    Decided, Decision, Detector, Function, Key, ManagementEvents, Preflight, Probe, Rule,
    Subscription, Topic, Trail,
};
use crate::error::Error;
use crate::ports::ActivityLog;

/// The clients `doctor` reads with, from the one `SdkConfig` the command line builds.
#[derive(Clone, Debug)]
pub struct DoctorClients {
    sdk: SdkConfig,
    /// STS, IAM, Account and CloudTrail, as the function's own adapters build them.
    clients: AwsClients,
    lambda: aws_sdk_lambda::Client,
    events: aws_sdk_eventbridge::Client,
}

impl DoctorClients {
    pub fn new(sdk: &SdkConfig) -> Self {
        DoctorClients {
            sdk: sdk.clone(),
            clients: AwsClients::from_sdk_config(sdk, ""),
            lambda: aws_sdk_lambda::Client::new(sdk),
            events: aws_sdk_eventbridge::Client::new(sdk),
        }
    }

    /// The configuration of one Region (GuardDuty, KMS and CloudTrail answer per Region).
    fn in_region(&self, region: &str) -> SdkConfig {
        self.sdk
            .to_builder()
            .region(Region::new(region.to_owned()))
            .build()
    }
}

fn missing(op: &'static str, what: &str) -> Error {
    Error::Aws {
        op,
        code: None,
        source: format!("response without {what}").into(),
    }
}

impl Preflight for DoctorClients {
    type Member = DoctorClients;

    async fn caller(&self) -> Result<String, Error> {
        Ok(self.clients.caller_identity().await?.1)
    }

    async fn function(&self, name: &str) -> Result<Option<Function>, Error> {
        let out = match self
            .lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(aws_err("lambda:GetFunctionConfiguration")(e)),
        };
        let op = "lambda:GetFunctionConfiguration";
        let environment = out.environment();
        Ok(Some(Function {
            arn: out
                .function_arn()
                .ok_or_else(|| missing(op, "FunctionArn"))?
                .to_owned(),
            role_arn: out.role().ok_or_else(|| missing(op, "Role"))?.to_owned(),
            state: out.state().map(|s| s.as_str().to_owned()),
            last_update: out.last_update_status().map(|s| s.as_str().to_owned()),
            last_update_reason: out.last_update_status_reason().map(str::to_owned),
            kms_key_arn: out.kms_key_arn().map(str::to_owned),
            environment: environment
                .and_then(|e| e.variables())
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            environment_error: environment.and_then(|e| e.error()).map(|e| {
                format!(
                    "{}: {}",
                    e.error_code().unwrap_or("error"),
                    e.message().unwrap_or_default()
                )
            }),
        }))
    }

    async fn reserved_concurrency(&self, name: &str) -> Result<Option<i32>, Error> {
        let out = self
            .lambda
            .get_function_concurrency()
            .function_name(name)
            .send()
            .await
            .map_err(aws_err("lambda:GetFunctionConcurrency"))?;
        Ok(out.reserved_concurrent_executions())
    }

    async fn rules_targeting(&self, arn: &str) -> Result<Vec<String>, Error> {
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .events
                .list_rule_names_by_target()
                .target_arn(arn)
                .set_next_token(token)
                .send()
                .await
                .map_err(aws_err("events:ListRuleNamesByTarget"))?;
            names.extend(out.rule_names().iter().cloned());
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(names);
            }
        }
    }

    async fn rule(&self, name: &str) -> Result<Option<Rule>, Error> {
        let rule = match self.events.describe_rule().name(name).send().await {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(aws_err("events:DescribeRule")(e)),
        };
        let mut targets = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .events
                .list_targets_by_rule()
                .rule(name)
                .set_next_token(token)
                .send()
                .await
                .map_err(aws_err("events:ListTargetsByRule"))?;
            targets.extend(out.targets().iter().map(|t| t.arn().to_owned()));
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let state = rule
            .state()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        Ok(Some(Rule {
            name: name.to_owned(),
            enabled: state == "ENABLED",
            state,
            event_pattern: rule.event_pattern().map(str::to_owned),
            targets,
        }))
    }

    async fn key(&self, key: &str, region: &str) -> Result<Option<Key>, Error> {
        let kms = aws_sdk_kms::Client::new(&self.in_region(region));
        let out = match kms.describe_key().key_id(key).send().await {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(aws_err("kms:DescribeKey")(e)),
        };
        let meta = out
            .key_metadata()
            .ok_or_else(|| missing("kms:DescribeKey", "KeyMetadata"))?;
        Ok(Some(Key {
            arn: meta.arn().unwrap_or(key).to_owned(),
            state: meta
                .key_state()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
        }))
    }

    async fn topic(&self, arn: &str) -> Result<Option<Topic>, Error> {
        let sns = sns_client(&self.sdk, arn);
        let attributes = match sns.get_topic_attributes().topic_arn(arn).send().await {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(aws_err("sns:GetTopicAttributes")(e)),
        };
        let mut subscriptions = Vec::new();
        let mut token = None;
        loop {
            let out = sns
                .list_subscriptions_by_topic()
                .topic_arn(arn)
                .set_next_token(token)
                .send()
                .await
                .map_err(aws_err("sns:ListSubscriptionsByTopic"))?;
            subscriptions.extend(out.subscriptions().iter().map(|s| Subscription {
                protocol: s.protocol().unwrap_or_default().to_owned(),
                endpoint: s.endpoint().unwrap_or_default().to_owned(),
                // SNS gives an unconfirmed subscription no ARN, only this word.
                confirmed: s.subscription_arn().is_some_and(|a| a.starts_with("arn:")),
            }));
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(Some(Topic {
            kms_key: attributes
                .attributes()
                .and_then(|a| a.get("KmsMasterKeyId"))
                .filter(|k| !k.is_empty())
                .cloned(),
            subscriptions,
        }))
    }

    async fn enabled_regions(&self) -> Result<Vec<String>, Error> {
        self.clients.enabled_regions().await
    }

    async fn detectors(&self, region: &str) -> Result<Vec<Detector>, Error> {
        let guardduty = aws_sdk_guardduty::Client::new(&self.in_region(region));
        let ids = guardduty
            .list_detectors()
            .send()
            .await
            .map_err(aws_err("guardduty:ListDetectors"))?;
        let mut detectors = Vec::new();
        for id in ids.detector_ids() {
            let out = guardduty
                .get_detector()
                .detector_id(id)
                .send()
                .await
                .map_err(aws_err("guardduty:GetDetector"))?;
            detectors.push(Detector {
                id: id.clone(),
                enabled: out
                    .status()
                    .is_some_and(|s| s == &aws_sdk_guardduty::types::DetectorStatus::Enabled),
            });
        }
        Ok(detectors)
    }

    async fn trails(&self) -> Result<Vec<Trail>, Error> {
        let out = self
            .clients
            .cloudtrail
            .describe_trails()
            .include_shadow_trails(true)
            .send()
            .await
            .map_err(aws_err("cloudtrail:DescribeTrails"))?;
        let mut trails = Vec::new();
        for t in out.trail_list() {
            let (Some(arn), Some(home)) = (t.trail_arn(), t.home_region()) else {
                continue;
            };
            // A trail's status and selectors are answered in its home Region.
            let in_home = aws_sdk_cloudtrail::Client::new(&self.in_region(home));
            let (status, selectors) = tokio::join!(
                in_home.get_trail_status().name(arn).send(),
                in_home.get_event_selectors().trail_name(arn).send()
            );
            let status = status.map_err(aws_err("cloudtrail:GetTrailStatus"))?;
            trails.push(Trail {
                name: t.name().unwrap_or(arn).to_owned(),
                home_region: home.to_owned(),
                multi_region: t.is_multi_region_trail().unwrap_or(false),
                logging: status.is_logging().unwrap_or(false),
                management: selectors.ok().map(|out| management_events(&out)),
            });
        }
        Ok(trails)
    }

    async fn simulate(&self, principal_arn: &str, probe: &Probe) -> Result<Vec<Decision>, Error> {
        let context: Vec<ContextEntry> = probe
            .context
            .iter()
            .map(|(key, value)| {
                ContextEntry::builder()
                    .context_key_name(*key)
                    .context_key_values(value)
                    .context_key_type(ContextKeyTypeEnum::String)
                    .build()
            })
            .collect();
        let mut decisions = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .clients
                .iam
                .simulate_principal_policy()
                .policy_source_arn(principal_arn)
                .set_action_names(Some(
                    probe.actions.iter().map(|a| (*a).to_owned()).collect(),
                ))
                .resource_arns(&probe.resource)
                .set_context_entries(Some(context.clone()))
                .set_marker(marker)
                .send()
                .await
                .map_err(aws_err("iam:SimulatePrincipalPolicy"))?;
            decisions.extend(
                out.evaluation_results()
                    .iter()
                    .flat_map(|r| decided(r, &probe.resource)),
            );
            marker = out
                .marker()
                .filter(|_| out.is_truncated())
                .map(str::to_owned);
            if marker.is_none() {
                return Ok(decisions);
            }
        }
    }

    async fn enter(
        &self,
        role_arn: &str,
        external_id: &str,
    ) -> Result<(Self::Member, String), Error> {
        let (sdk, session) = self
            .clients
            .assume(role_arn, external_id, "killswitch-doctor")
            .await?;
        Ok((DoctorClients::new(&sdk), session))
    }
}

/// One action's decisions: per resource when the answer has them, else the aggregate.
fn decided(r: &aws_sdk_iam::types::EvaluationResult, resource: &str) -> Vec<Decision> {
    let per_resource: Vec<Decision> = r
        .resource_specific_results()
        .iter()
        .map(|s| Decision {
            action: r.eval_action_name().to_owned(),
            resource: s.eval_resource_name().to_owned(),
            decided: decision(s.eval_resource_decision()),
            missing_context: s.missing_context_values().to_vec(),
        })
        .collect();
    if !per_resource.is_empty() {
        return per_resource;
    }
    vec![Decision {
        action: r.eval_action_name().to_owned(),
        resource: r.eval_resource_name().unwrap_or(resource).to_owned(),
        decided: decision(r.eval_decision()),
        missing_context: r.missing_context_values().to_vec(),
    }]
}

/// A decision IAM may add later is not an allow.
fn decision(d: &PolicyEvaluationDecisionType) -> Decided {
    if d == &PolicyEvaluationDecisionType::Allowed {
        Decided::Allowed
    } else if d == &PolicyEvaluationDecisionType::ExplicitDeny {
        Decided::ExplicitDeny
    } else {
        Decided::ImplicitDeny
    }
}

/// The management events a trail's selectors include. A trail whose selectors were never set
/// logs every management event (CloudTrail's default), which some emulators answer as no
/// selectors at all.
fn management_events(
    out: &aws_sdk_cloudtrail::operation::get_event_selectors::GetEventSelectorsOutput,
) -> ManagementEvents {
    use aws_sdk_cloudtrail::types::ReadWriteType;
    let (basic, advanced) = (out.event_selectors(), out.advanced_event_selectors());
    if basic.is_empty() && advanced.is_empty() {
        return ManagementEvents {
            writes: true,
            reads: true,
        };
    }
    let mut found = ManagementEvents::default();
    for s in basic
        .iter()
        .filter(|s| s.include_management_events() != Some(false))
    {
        let rw = s.read_write_type().cloned().unwrap_or(ReadWriteType::All);
        found.writes |= rw != ReadWriteType::ReadOnly;
        found.reads |= rw != ReadWriteType::WriteOnly;
    }
    for a in advanced {
        let field = |name: &str| a.field_selectors().iter().find(|f| f.field() == name);
        if !field("eventCategory").is_some_and(|f| f.equals().iter().any(|v| v == "Management")) {
            continue;
        }
        let read_only = field("readOnly").map(|f| f.equals().to_vec());
        found.writes |= read_only
            .as_ref()
            .is_none_or(|v| v.iter().any(|x| x == "false"));
        found.reads |= read_only
            .as_ref()
            .is_none_or(|v| v.iter().any(|x| x == "true"));
    }
    found
}
