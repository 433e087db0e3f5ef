//! What carries findings to the function and its notices to people: the EventBridge rules, the
//! SNS topics with their subscriptions, and the KMS keys the function and topics need.

use std::collections::BTreeSet;

use super::{Check, Function, Place, Preflight, Rule, Topic, unreadable};
use crate::vocab::Arn;

/// Each rule that targets the function, and each named with `--rule`: enabled, targeting the
/// function. Then: at least one of them delivers GuardDuty findings.
pub(super) async fn rules<P: Preflight>(
    p: &P,
    f: &Function,
    named: &[String],
    who: &str,
    checks: &mut Vec<Check>,
) {
    let targeting = match p.rules_targeting(&f.arn).await {
        Ok(names) => names,
        Err(e) => {
            checks.push(unreadable("rule", &e, who));
            return;
        }
    };
    let names: BTreeSet<&str> = targeting.iter().chain(named).map(String::as_str).collect();
    let mut delivers_guardduty = false;
    for name in names {
        let check = match p.rule(name).await {
            Ok(Some(rule)) => {
                let check = rule_check(&rule, f);
                delivers_guardduty |= check.verdict == super::Verdict::Ok && is_guardduty(&rule);
                check
            }
            Ok(None) => Check::fail(
                "rule",
                "no such rule on the default event bus",
                "check the name (--rule), or redeploy the stack",
            ),
            Err(e) => unreadable("rule", &e, who),
        };
        checks.push(check.of(name));
    }
    checks.push(if delivers_guardduty {
        Check::ok(
            "guardduty_rule",
            "an enabled rule sends GuardDuty findings to the function",
        )
    } else {
        Check::fail(
            "guardduty_rule",
            "no enabled rule sends GuardDuty findings to the function: leaked keys GuardDuty finds are never contained",
            "redeploy the stack (template.yaml's GuardDutyAccessKeyFinding event), or name the rule with --rule to see what is wrong with it",
        )
    });
}

fn rule_check(rule: &Rule, f: &Function) -> Check {
    if !rule.enabled {
        return Check::fail(
            "rule",
            format!(
                "{}: events matching it no longer reach the function",
                rule.state
            ),
            format!(
                "aws events enable-rule --name {} (and find who disabled it: DisableRule in CloudTrail)",
                rule.name
            ),
        );
    }
    if !rule.targets.iter().any(|t| t == &f.arn) {
        return Check::fail(
            "rule",
            format!(
                "enabled, but its targets ({}) are not the function",
                if rule.targets.is_empty() {
                    "none".to_owned()
                } else {
                    rule.targets.join(", ")
                }
            ),
            format!(
                "aws events put-targets --rule {} --targets Id=killswitch,Arn={}, or redeploy the stack",
                rule.name, f.arn
            ),
        );
    }
    Check::ok("rule", "enabled, targets the function")
}

/// The rule's pattern matches GuardDuty's events (`source` lists `aws.guardduty`).
fn is_guardduty(rule: &Rule) -> bool {
    let pattern: Option<serde_json::Value> = rule
        .event_pattern
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok());
    pattern
        .as_ref()
        .and_then(|p| p.get("source"))
        .and_then(serde_json::Value::as_array)
        .is_some_and(|s| s.iter().any(|v| v == "aws.guardduty"))
}

/// The topics the live environment names (notices, chat), and the keys that encrypt them and
/// the function's environment.
pub(super) async fn notices<P: Preflight>(
    p: &P,
    f: &Function,
    at: Place<'_>,
    who: &str,
    checks: &mut Vec<Check>,
) {
    // (key reference, the Region it is looked up in, what it encrypts)
    let mut keys: Vec<(String, String, &'static str)> = f
        .kms_key_arn
        .iter()
        .map(|k| {
            (
                k.clone(),
                at.region.to_owned(),
                "the function's environment",
            )
        })
        .collect();
    for (name, setting) in [
        ("topic", "KILLSWITCH_TOPIC_ARN"),
        ("chat_topic", "KILLSWITCH_CHAT_TOPIC_ARN"),
    ] {
        let Some(arn) = f.environment.get(setting).filter(|a| !a.is_empty()) else {
            if name == "topic" {
                checks.push(Check::fail(
                    "topic",
                    "KILLSWITCH_TOPIC_ARN is not set: no notice can be sent",
                    "redeploy the stack (it sets the topic)",
                ));
            }
            continue;
        };
        let region = Arn::parse(arn).map_or(at.region, |a| a.region);
        match p.topic(arn).await {
            Ok(Some(topic)) => {
                if let Some(key) = &topic.kms_key {
                    keys.push((key.clone(), region.to_owned(), topic_role(name)));
                }
                checks.push(topic_check(name, &topic).of(arn.as_str()));
            }
            Ok(None) => checks.push(
                Check::fail(
                    name,
                    "no such topic: notices fail",
                    format!("create it or correct {setting} in the stack and redeploy"),
                )
                .of(arn.as_str()),
            ),
            Err(e) => checks.push(unreadable(name, &e, who).of(arn.as_str())),
        }
    }
    for (key, region, what) in keys {
        checks.push(key_check(p, &key, &region, what, who).await);
    }
}

fn topic_role(name: &str) -> &'static str {
    if name == "topic" {
        "the notice topic"
    } else {
        "the chat topic"
    }
}

fn topic_check(name: &'static str, topic: &Topic) -> Check {
    let confirmed: Vec<&str> = topic
        .subscriptions
        .iter()
        .filter(|s| s.confirmed)
        .map(|s| s.protocol.as_str())
        .collect();
    let pending = topic.subscriptions.len() - confirmed.len();
    if confirmed.is_empty() {
        return Check::fail(
            name,
            format!("no confirmed subscription ({pending} pending): nobody receives the notices"),
            "confirm the subscription email SNS sent (AlertEmail), or subscribe someone: aws sns subscribe --protocol email --notification-endpoint ADDRESS --topic-arn TOPIC",
        );
    }
    Check::ok(
        name,
        format!(
            "{} confirmed subscription(s) ({}){}",
            confirmed.len(),
            confirmed.join(", "),
            if pending > 0 {
                format!(", {pending} pending")
            } else {
                String::new()
            }
        ),
    )
}

async fn key_check<P: Preflight>(p: &P, key: &str, region: &str, what: &str, who: &str) -> Check {
    let check = match p.key(key, region).await {
        Ok(Some(k)) if k.state == "Enabled" => {
            Check::ok("kms_key", format!("Enabled, encrypts {what}"))
        }
        Ok(Some(k)) if k.state == "PendingDeletion" => Check::fail(
            "kms_key",
            format!("PendingDeletion: {what} becomes unreadable"),
            format!(
                "aws kms cancel-key-deletion --key-id {0}, then aws kms enable-key --key-id {0}",
                k.arn
            ),
        ),
        Ok(Some(k)) => Check::fail(
            "kms_key",
            format!("{}: {what} cannot be read or written with it", k.state),
            format!("aws kms enable-key --key-id {}", k.arn),
        ),
        Ok(None) => Check::fail(
            "kms_key",
            format!("no such key in {region}: {what} cannot be read or written"),
            "redeploy the stack (AlertTopicKey)",
        ),
        Err(e) => unreadable("kms_key", &e, who),
    };
    check.of(key)
}
