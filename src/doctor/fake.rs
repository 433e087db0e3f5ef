//! A stack in memory for the doctor's unit tests: healthy as built, each part breakable.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use super::{
    Decided, Decision, Detector, Function, Key, Preflight, Probe, Rule, Subscription, Topic, Trail,
};
use crate::error::Error;

pub const ACCOUNT: &str = "111122223333";
pub const MEMBER: &str = "444455556666";
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:111122223333:function:killswitch-fn";
pub const ROLE_ARN: &str = "arn:aws:iam::111122223333:role/killswitch-responder";
pub const TOPIC_ARN: &str = "arn:aws:sns:us-east-1:111122223333:killswitch-alerts";
pub const KEY_ARN: &str =
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
pub const RULE: &str = "killswitch-GuardDutyAccessKeyFinding";
pub const OPERATOR: &str = "arn:aws:sts::111122223333:assumed-role/SecOps/alice";
pub const MEMBER_ROLE_ARN: &str = "arn:aws:iam::444455556666:role/KillSwitchMember";

#[derive(Clone, Debug)]
pub struct Fake {
    pub caller: String,
    pub function: Option<Function>,
    pub concurrency: Option<i32>,
    pub rules: BTreeMap<String, Rule>,
    pub keys: BTreeMap<String, Key>,
    pub topics: BTreeMap<String, Topic>,
    pub regions: Vec<String>,
    pub detectors: BTreeMap<String, Vec<Detector>>,
    pub trails: Vec<Trail>,
    /// Actions the simulation answers `implicitDeny` for.
    pub denied: BTreeSet<&'static str>,
    /// Operations refused with AccessDenied (`guardduty:ListDetectors`, …).
    pub refused: BTreeSet<&'static str>,
    /// Member roles that let this caller in: role ARN → that account's stack.
    pub members: BTreeMap<String, Fake>,
    pub simulated: RefCell<Vec<(String, Probe)>>,
}

fn detector(enabled: bool) -> Detector {
    Detector {
        id: "d1".into(),
        enabled,
    }
}

impl Fake {
    /// A stack as template.yaml deploys it, looked at by an operator.
    pub fn healthy() -> Self {
        let environment = [
            ("KILLSWITCH_TOPIC_ARN", TOPIC_ARN),
            ("KILLSWITCH_DRY_RUN", "false"),
            ("KILLSWITCH_PROTECTED_PRINCIPALS", ""),
            ("KILLSWITCH_FUNCTION_TIMEOUT_SECONDS", "120"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let regions = vec!["us-east-1".to_owned(), "eu-west-1".to_owned()];
        Fake {
            caller: OPERATOR.into(),
            function: Some(Function {
                arn: FUNCTION_ARN.into(),
                role_arn: ROLE_ARN.into(),
                state: Some("Active".into()),
                last_update: Some("Successful".into()),
                last_update_reason: None,
                kms_key_arn: Some(KEY_ARN.into()),
                environment,
                environment_error: None,
            }),
            concurrency: Some(25),
            rules: [(
                RULE.to_owned(),
                Rule {
                    name: RULE.into(),
                    enabled: true,
                    state: "ENABLED".into(),
                    event_pattern: Some(r#"{"source":["aws.guardduty"]}"#.into()),
                    targets: vec![FUNCTION_ARN.into()],
                },
            )]
            .into(),
            keys: [(
                KEY_ARN.to_owned(),
                Key {
                    arn: KEY_ARN.into(),
                    state: "Enabled".into(),
                },
            )]
            .into(),
            topics: [(
                TOPIC_ARN.to_owned(),
                Topic {
                    kms_key: Some(KEY_ARN.into()),
                    subscriptions: vec![Subscription {
                        protocol: "email".into(),
                        endpoint: "oncall@example.com".into(),
                        confirmed: true,
                    }],
                },
            )]
            .into(),
            detectors: regions
                .iter()
                .map(|r| (r.clone(), vec![detector(true)]))
                .collect(),
            regions,
            trails: vec![Trail {
                name: "org-trail".into(),
                home_region: "us-east-1".into(),
                multi_region: true,
                logging: true,
                management: Some(super::ManagementEvents {
                    writes: true,
                    reads: true,
                }),
            }],
            denied: BTreeSet::new(),
            refused: BTreeSet::new(),
            members: BTreeMap::new(),
            simulated: RefCell::new(Vec::new()),
        }
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        if let Some(f) = self.function.as_mut() {
            f.environment.insert(name.to_owned(), value.to_owned());
        }
        self
    }

    pub fn detector_off(mut self, region: &str) -> Self {
        self.detectors
            .insert(region.to_owned(), vec![detector(false)]);
        self
    }

    /// With a member account whose role lets `who` in.
    pub fn with_member(mut self, member: Fake) -> Self {
        self = self
            .env("KILLSWITCH_MEMBER_ROLE_NAME", "KillSwitchMember")
            .env("KILLSWITCH_MEMBER_EXTERNAL_ID", "ext-123")
            .env("KILLSWITCH_MEMBER_ACCOUNTS", MEMBER);
        self.members.insert(MEMBER_ROLE_ARN.to_owned(), member);
        self
    }

    fn gate(&self, op: &'static str) -> Result<(), Error> {
        if self.refused.contains(op) {
            return Err(Error::Aws {
                op,
                code: Some("AccessDenied".into()),
                source: format!("{} is not authorized to perform: {op}", self.caller).into(),
            });
        }
        Ok(())
    }
}

impl Preflight for Fake {
    type Member = Fake;

    async fn caller(&self) -> Result<String, Error> {
        Ok(self.caller.clone())
    }

    async fn function(&self, name: &str) -> Result<Option<Function>, Error> {
        self.gate("lambda:GetFunctionConfiguration")?;
        Ok(self
            .function
            .clone()
            .filter(|f| f.arn == name || f.arn.ends_with(&format!(":function:{name}"))))
    }

    async fn reserved_concurrency(&self, _name: &str) -> Result<Option<i32>, Error> {
        self.gate("lambda:GetFunctionConcurrency")?;
        Ok(self.concurrency)
    }

    async fn rules_targeting(&self, arn: &str) -> Result<Vec<String>, Error> {
        self.gate("events:ListRuleNamesByTarget")?;
        Ok(self
            .rules
            .values()
            .filter(|r| r.targets.iter().any(|t| t == arn))
            .map(|r| r.name.clone())
            .collect())
    }

    async fn rule(&self, name: &str) -> Result<Option<Rule>, Error> {
        self.gate("events:DescribeRule")?;
        Ok(self.rules.get(name).cloned())
    }

    async fn key(&self, key: &str, _region: &str) -> Result<Option<Key>, Error> {
        self.gate("kms:DescribeKey")?;
        Ok(self.keys.get(key).cloned())
    }

    async fn topic(&self, arn: &str) -> Result<Option<Topic>, Error> {
        self.gate("sns:GetTopicAttributes")?;
        Ok(self.topics.get(arn).cloned())
    }

    async fn enabled_regions(&self) -> Result<Vec<String>, Error> {
        self.gate("account:ListRegions")?;
        Ok(self.regions.clone())
    }

    async fn detectors(&self, region: &str) -> Result<Vec<Detector>, Error> {
        self.gate("guardduty:ListDetectors")?;
        Ok(self.detectors.get(region).cloned().unwrap_or_default())
    }

    async fn trails(&self) -> Result<Vec<Trail>, Error> {
        self.gate("cloudtrail:DescribeTrails")?;
        Ok(self.trails.clone())
    }

    async fn simulate(&self, principal_arn: &str, probe: &Probe) -> Result<Vec<Decision>, Error> {
        self.gate("iam:SimulatePrincipalPolicy")?;
        self.simulated
            .borrow_mut()
            .push((principal_arn.to_owned(), probe.clone()));
        Ok(probe
            .actions
            .iter()
            .map(|a| Decision {
                action: (*a).to_owned(),
                resource: probe.resource.clone(),
                decided: if self.denied.contains(a) {
                    Decided::ImplicitDeny
                } else {
                    Decided::Allowed
                },
                missing_context: Vec::new(),
            })
            .collect())
    }

    async fn enter(
        &self,
        role_arn: &str,
        external_id: &str,
    ) -> Result<(Self::Member, String), Error> {
        self.gate("sts:AssumeRole")?;
        match self.members.get(role_arn) {
            Some(member) if external_id == "ext-123" => {
                let name = role_arn.rsplit('/').next().unwrap_or_default();
                let account = role_arn.split(':').nth(4).unwrap_or_default();
                Ok((
                    member.clone(),
                    format!("arn:aws:sts::{account}:assumed-role/{name}/killswitch-doctor"),
                ))
            }
            _ => Err(Error::Aws {
                op: "sts:AssumeRole",
                code: Some("AccessDenied".into()),
                source: format!(
                    "{} is not authorized to perform: sts:AssumeRole",
                    self.caller
                )
                .into(),
            }),
        }
    }
}
