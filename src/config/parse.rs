//! Reading one setting: the environment as given, the declared default and range, and the
//! checks IAM and STS apply to names and external IDs.

use super::bad;
use super::settings::{Value, setting};
use crate::error::Error;
use crate::vocab::{AccountId, Arn};

/// The environment, trimmed; an empty value is unset.
pub struct Vars<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Vars<'a> {
    pub fn new(get: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { get }
    }

    pub fn text(&self, name: &str) -> Option<String> {
        (self.get)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A flag with its declared default.
    pub fn flag(&self, name: &'static str) -> Result<bool, Error> {
        let default = match setting(name).map(|s| s.value) {
            Some(Value::Flag { default }) => default,
            Some(Value::Number { .. } | Value::Text) | None => false,
        };
        match self.text(name).as_deref() {
            None => Ok(default),
            Some(v) => parse_bool(v).ok_or(Error::Config {
                name,
                reason: format!("{v:?} is not true/false"),
            }),
        }
    }

    /// A number in its declared range, or its declared default.
    pub fn number(&self, name: &'static str) -> Result<u64, Error> {
        let (default, _, _) = range(name);
        self.number_or(name, default)
    }

    /// As [`Vars::number`], with a default that depends on another setting.
    pub fn number_or(&self, name: &'static str, default: u64) -> Result<u64, Error> {
        let (_, min, max) = range(name);
        let Some(raw) = self.text(name) else {
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

    /// A comma-separated list, each entry trimmed, empty entries dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.text(name)
            .map(|v| items(&v).map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// A role and the external ID its trust policy demands: both or neither.
    pub fn role_access(&self, pair: Pair) -> Result<Option<RoleAccess>, Error> {
        let (role, external_id) = match (self.text(pair.role), self.text(pair.external_id)) {
            (None, None) => return Ok(None),
            (None, Some(_)) => {
                return Err(Error::Config {
                    name: pair.role,
                    reason: format!("required when {} is set", pair.external_id),
                });
            }
            (Some(_), None) => {
                return Err(Error::Config {
                    name: pair.external_id,
                    reason: format!(
                        "required with {}: {} trusts only callers that present it",
                        pair.role, pair.trusted_by
                    ),
                });
            }
            (Some(role), Some(id)) => (role, id),
        };
        if !(pair.role_ok)(&role) {
            return Err(Error::Config {
                name: pair.role,
                reason: format!("{role:?} is not {}", pair.role_shape),
            });
        }
        if !valid_external_id(&external_id) {
            return Err(Error::Config {
                name: pair.external_id,
                reason: "must be 2-1224 characters of letters, digits and +=,.@:/-_".into(),
            });
        }
        Ok(Some(RoleAccess { role, external_id }))
    }
}

fn range(name: &str) -> (u64, u64, u64) {
    match setting(name).map(|s| s.value) {
        Some(Value::Number { default, min, max }) => (default, min, max),
        Some(Value::Flag { .. } | Value::Text) | None => (0, 0, u64::MAX),
    }
}

/// Two settings that only work together: a role and the `sts:ExternalId` it demands.
pub struct Pair {
    pub role: &'static str,
    pub external_id: &'static str,
    /// Who demands the external ID, as the error says it ("the member role").
    pub trusted_by: &'static str,
    pub role_ok: fn(&str) -> bool,
    /// What a valid role value looks like, for the error.
    pub role_shape: &'static str,
}

/// A role to assume and its external ID, parsed together.
pub struct RoleAccess {
    pub role: String,
    pub external_id: String,
}

/// The entries of a comma-separated value, trimmed, empty ones dropped.
pub fn items(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// `sts:AssumeRole`'s own limits for `ExternalId`.
pub fn valid_external_id(id: &str) -> bool {
    (2..=1224).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c))
}

/// IAM's rule for role names: 1-64 of letters, digits and `+=,.@_-`.
pub fn is_role_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`.
pub fn is_role_arn(arn: &str) -> bool {
    Arn::parse(arn).is_some_and(|a| {
        a.service == "iam"
            && AccountId::parse(a.account).is_ok()
            && a.of_type("role").is_some()
            && is_role_name(a.name())
    })
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

pub(super) fn incident_table(vars: &Vars<'_>) -> Result<Option<String>, Error> {
    let table = vars.text("KILLSWITCH_INCIDENT_TABLE");
    match &table {
        Some(t) if !(3..=255).contains(&t.len()) => bad(
            "KILLSWITCH_INCIDENT_TABLE",
            format!("{t:?} is not a DynamoDB table name"),
        ),
        Some(_) | None => Ok(table),
    }
}

pub(super) fn record_key(vars: &Vars<'_>) -> Result<Option<String>, Error> {
    const NAME: &str = "KILLSWITCH_RECORD_KEY_ARN";
    let key = vars.text(NAME);
    match &key {
        Some(k) if crate::vocab::Arn::parse(k).is_none_or(|a| a.service != "kms") => {
            bad(NAME, format!("{k:?} is not a KMS key ARN"))
        }
        Some(_) | None => Ok(key),
    }
}
