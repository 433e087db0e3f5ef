//! Configuration, from `KILLSWITCH_*` environment variables only. Bad values fail at start-up,
//! naming the variable.
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `KILLSWITCH_TOPIC_ARN` | required | SNS topic for summaries |
//! | `KILLSWITCH_PROTECTED_PRINCIPALS` | empty | comma-separated user/role names or ARNs never touched |
//! | `KILLSWITCH_DRY_RUN` | `false` | compute and report, make no IAM write |
//! | `KILLSWITCH_LOOKBACK_HOURS` | `24` | CloudTrail window, 1–2160 (90 days) |
//! | `KILLSWITCH_VERIFY_DELAY_SECONDS` | `10` | second read-back after IAM's propagation window, 0–600 |
//! | `KILLSWITCH_REGIONS` | empty = every enabled Region (`account:ListRegions`) | Regions to search instead of discovering them; us-east-1 and the key's hinted Regions are always added |
//! | `KILLSWITCH_FOLLOW_PIVOTS` | `false` | also contain the keys and role sessions the attacker minted |
//! | `KILLSWITCH_MAX_EVENTS_PER_REGION` | `1000` | CloudTrail events read per Region, 50–100000 |
//! | `KILLSWITCH_INVESTIGATION_SECONDS` | `60` | time budget for CloudTrail, 1–840 |

use std::time::Duration;

use crate::error::Error;

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub topic_arn: String,
    pub protected: Vec<String>,
    pub dry_run: bool,
    pub lookback: Duration,
    pub verify_delay: Duration,
    pub regions: Vec<String>,
    pub max_events_per_region: usize,
    pub investigation_budget: Duration,
    pub follow_pivots: bool,
}

impl Config {
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let topic_arn = var("KILLSWITCH_TOPIC_ARN").ok_or(Error::Config {
            name: "KILLSWITCH_TOPIC_ARN",
            reason: "required (the SNS topic ARN for incident summaries)".into(),
        })?;
        let parts: Vec<&str> = topic_arn.split(':').collect();
        if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" || parts[5].is_empty() {
            return Err(Error::Config {
                name: "KILLSWITCH_TOPIC_ARN",
                reason: format!(
                    "{topic_arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
                ),
            });
        }

        let protected = var("KILLSWITCH_PROTECTED_PRINCIPALS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();

        let flag = |name: &'static str| match var(name).as_deref() {
            None => Ok(false),
            Some(v) => parse_bool(v).ok_or(Error::Config {
                name,
                reason: format!("{v:?} is not true/false"),
            }),
        };
        let dry_run = flag("KILLSWITCH_DRY_RUN")?;
        let follow_pivots = flag("KILLSWITCH_FOLLOW_PIVOTS")?;

        let lookback_hours = number(&var, "KILLSWITCH_LOOKBACK_HOURS", 24, 1, 2160)?;
        let verify_delay = number(&var, "KILLSWITCH_VERIFY_DELAY_SECONDS", 10, 0, 600)?;
        let max_events = number(&var, "KILLSWITCH_MAX_EVENTS_PER_REGION", 1000, 50, 100_000)?;
        let budget = number(&var, "KILLSWITCH_INVESTIGATION_SECONDS", 60, 1, 840)?;

        let regions = var("KILLSWITCH_REGIONS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|r| {
                        if is_region_name(r) {
                            Ok(r.to_owned())
                        } else {
                            Err(Error::Config {
                                name: "KILLSWITCH_REGIONS",
                                reason: format!("{r:?} is not a Region name like eu-west-1"),
                            })
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();

        Ok(Self {
            topic_arn,
            protected,
            dry_run,
            lookback: Duration::from_secs(lookback_hours * 3600),
            verify_delay: Duration::from_secs(verify_delay),
            regions,
            max_events_per_region: max_events as usize,
            investigation_budget: Duration::from_secs(budget),
            follow_pivots,
        })
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

fn number(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, Error> {
    let Some(raw) = var(name) else {
        return Ok(default);
    };
    match raw.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Error::Config {
            name,
            reason: format!("{raw:?} is not a whole number from {min} to {max}"),
        }),
    }
}

/// `us-east-1`, `ap-southeast-2`, `us-gov-west-1`, `eu-central-2`.
pub fn is_region_name(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && r.len() <= 25
        && parts[0].len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, Error> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const TOPIC: (&str, &str) = (
        "KILLSWITCH_TOPIC_ARN",
        "arn:aws:sns:us-east-1:123456789012:killswitch",
    );

    #[test]
    fn defaults_apply_when_only_the_topic_is_set() {
        let c = config(&[TOPIC]).unwrap();
        assert!(!c.dry_run);
        assert_eq!(c.lookback, Duration::from_secs(24 * 3600));
        assert_eq!(c.verify_delay, Duration::from_secs(10));
        assert!(c.protected.is_empty() && c.regions.is_empty());
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (pairs, name) in [
            (vec![], "KILLSWITCH_TOPIC_ARN"),
            (
                vec![("KILLSWITCH_TOPIC_ARN", "arn:aws:sqs:us-east-1:1:q")],
                "KILLSWITCH_TOPIC_ARN",
            ),
            (
                vec![TOPIC, ("KILLSWITCH_DRY_RUN", "maybe")],
                "KILLSWITCH_DRY_RUN",
            ),
            (
                vec![TOPIC, ("KILLSWITCH_LOOKBACK_HOURS", "9999")],
                "KILLSWITCH_LOOKBACK_HOURS",
            ),
            (
                vec![TOPIC, ("KILLSWITCH_VERIFY_DELAY_SECONDS", "-1")],
                "KILLSWITCH_VERIFY_DELAY_SECONDS",
            ),
            (
                vec![TOPIC, ("KILLSWITCH_REGIONS", "us-east-1,mars")],
                "KILLSWITCH_REGIONS",
            ),
        ] {
            match config(&pairs) {
                Err(Error::Config { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{pairs:?}: expected a config error, got {other:?}"),
            }
        }
    }

    #[test]
    fn lists_and_flags_are_parsed() {
        let c = config(&[
            TOPIC,
            ("KILLSWITCH_DRY_RUN", "TRUE"),
            (
                "KILLSWITCH_PROTECTED_PRINCIPALS",
                " break-glass , arn:aws:iam::123456789012:role/deployer,",
            ),
            ("KILLSWITCH_REGIONS", "eu-west-1, us-gov-west-1"),
        ])
        .unwrap();
        assert!(c.dry_run);
        assert_eq!(
            c.protected,
            vec!["break-glass", "arn:aws:iam::123456789012:role/deployer"]
        );
        assert_eq!(c.regions, vec!["eu-west-1", "us-gov-west-1"]);
    }
}
