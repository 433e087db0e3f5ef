//! `FindingSource` over GuardDuty: a finding read back where it was raised, rebuilt in the shape
//! its EventBridge event carries (only the fields the trigger's parser reads), so the payload
//! and the re-read go through one parser.

use serde_json::{Map, Value, json};

use super::{AwsClients, aws_err};
use crate::error::Error;
use crate::ports::FindingSource;

impl AwsClients {
    fn guardduty_in(&self, region: &str) -> aws_sdk_guardduty::Client {
        aws_sdk_guardduty::Client::from_conf(
            self.guardduty
                .config()
                .to_builder()
                .region(aws_config::Region::new(region.to_owned()))
                .build(),
        )
    }
}

/// The drill's stand-in for GuardDuty and Security Hub (see `AwsClients::staged`): the
/// findings it staged, in their event shapes.
#[cfg(feature = "drill")]
#[derive(Clone, Debug, Default)]
pub struct Staged(std::sync::Arc<std::sync::Mutex<Vec<Value>>>);

#[cfg(feature = "drill")]
impl Staged {
    /// The detector ID a drill's read-back names, so its report says where the copy came from.
    pub const DETECTOR: &'static str = "staged-by-the-drill";

    /// Holds the payload's finding(s) as their source would.
    pub fn stage(&self, payload: &Value) {
        let mut held = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = payload
            .pointer("/detail/findings")
            .and_then(Value::as_array)
        {
            held.extend(found.iter().cloned());
        } else if let Some(detail) = payload.get("detail") {
            held.push(detail.clone());
        }
    }

    fn find(&self, key: &str, id: &str) -> Option<Value> {
        let held = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.iter()
            .rev()
            .find(|f| f.get(key).and_then(Value::as_str) == Some(id))
            .cloned()
    }

    fn active(&self) -> bool {
        !self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty()
    }
}

impl FindingSource for AwsClients {
    async fn detector(&self, region: &str) -> Result<Option<String>, Error> {
        #[cfg(feature = "drill")]
        if self.staged.active() {
            return Ok(Some(Staged::DETECTOR.to_owned()));
        }
        let out = self
            .guardduty_in(region)
            .list_detectors()
            .send()
            .await
            .map_err(aws_err("guardduty:ListDetectors"))?;
        // An account has at most one detector per Region.
        Ok(out.detector_ids().first().cloned())
    }

    async fn guardduty_finding(
        &self,
        region: &str,
        detector: &str,
        finding_id: &str,
    ) -> Result<Option<Value>, Error> {
        #[cfg(feature = "drill")]
        if detector == Staged::DETECTOR {
            return Ok(self.staged.find("id", finding_id));
        }
        let out = self
            .guardduty_in(region)
            .get_findings()
            .detector_id(detector)
            .finding_ids(finding_id)
            .send()
            .await
            .map_err(aws_err("guardduty:GetFindings"))?;
        // Unknown IDs are simply absent from the answer.
        Ok(out
            .findings()
            .iter()
            .find(|f| f.id() == Some(finding_id))
            .map(guardduty_detail))
    }
}

/// Drops absent fields, so the parser sees what the service said and nothing else.
fn object(pairs: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect::<Map<_, _>>(),
    )
}

fn text(s: Option<&str>) -> Option<Value> {
    s.map(|s| Value::String(s.to_owned()))
}

/// A GuardDuty finding as EventBridge's `detail` carries it (camelCase).
fn guardduty_detail(f: &aws_sdk_guardduty::types::Finding) -> Value {
    let resource = f.resource();
    let details = resource.and_then(|r| r.access_key_details()).map(|d| {
        object(vec![
            ("accessKeyId", text(d.access_key_id())),
            ("principalId", text(d.principal_id())),
            ("userName", text(d.user_name())),
            ("userType", text(d.user_type())),
        ])
    });
    let service = f.service();
    let additional = service
        .and_then(|s| s.additional_info())
        .map(|a| object(vec![("value", text(a.value())), ("type", text(a.r#type()))]));
    let remote_ip = service
        .and_then(|s| s.action())
        .and_then(|a| a.aws_api_call_action())
        .and_then(|a| a.remote_ip_details())
        .and_then(|r| r.ip_address_v4());
    object(vec![
        ("id", text(f.id())),
        ("arn", text(f.arn())),
        ("type", text(f.r#type())),
        ("accountId", text(f.account_id())),
        ("region", text(f.region())),
        ("severity", f.severity().map(Value::from)),
        ("updatedAt", text(f.updated_at())),
        (
            "customDetectionRuleName",
            text(f.custom_detection_rule_name()),
        ),
        (
            "resource",
            Some(object(vec![
                (
                    "resourceType",
                    text(resource.and_then(|r| r.resource_type())),
                ),
                ("accessKeyDetails", details),
            ])),
        ),
        (
            "service",
            Some(object(vec![
                ("additionalInfo", additional),
                ("count", service.and_then(|s| s.count()).map(Value::from)),
                (
                    "archived",
                    service.and_then(|s| s.archived()).map(Value::from),
                ),
                (
                    "eventFirstSeen",
                    text(service.and_then(|s| s.event_first_seen())),
                ),
                ("detection", detection(service)),
                (
                    "action",
                    remote_ip.map(
                        |ip| json!({"awsApiCallAction": {"remoteIpDetails": {"ipAddressV4": ip}}}),
                    ),
                ),
            ])),
        ),
    ])
}

/// Extended Threat Detection's attack sequence as EventBridge carries it, with the members the
/// trigger's parser reads (`trigger::guardduty`'s `attack_sequence`): the sequence's ID, each
/// actor's user and credential, each resource's ID, type and access-key holder, the signals.
fn detection(service: Option<&aws_sdk_guardduty::types::Service>) -> Option<Value> {
    let sequence = service?.detection()?.sequence()?;
    let actors = sequence.actors().iter().map(|a| {
        let user = a.user().map(|u| {
            object(vec![
                ("name", text(u.name())),
                ("uid", text(u.uid())),
                ("type", text(u.r#type())),
                ("credentialUid", text(u.credential_uid())),
            ])
        });
        object(vec![("id", text(a.id())), ("user", user)])
    });
    let resources = sequence.resources().iter().map(|r| {
        let holder = r.data().and_then(|d| d.access_key()).map(|k| {
            json!({"accessKey": object(vec![
                ("principalId", text(k.principal_id())),
                ("userName", text(k.user_name())),
                ("userType", text(k.user_type())),
            ])})
        });
        object(vec![
            ("uid", text(r.uid())),
            ("resourceType", text(r.resource_type().map(|t| t.as_str()))),
            ("data", holder),
        ])
    });
    let signals = sequence.signals().iter().map(|s| {
        object(vec![
            ("uid", text(s.uid())),
            ("type", text(s.r#type().map(|t| t.as_str()))),
            ("name", text(s.name())),
        ])
    });
    Some(json!({"sequence": object(vec![
        ("uid", text(sequence.uid())),
        ("actors", Some(Value::Array(actors.collect()))),
        ("resources", Some(Value::Array(resources.collect()))),
        ("signals", Some(Value::Array(signals.collect()))),
    ])}))
}
