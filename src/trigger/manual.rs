//! A manual request from on-call (`aws lambda invoke` or `killswitch respond`).

use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;
use crate::incident::{AccessKeyId, Incident, Principal, Received, Trigger, truncate};

use super::{iam_name, optional_account};

/// The manual request, for the Lambda payload and `killswitch respond` alike.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualRequest {
    access_key_id: String,
    user_name: Option<String>,
    role_name: Option<String>,
    /// The role session to deny exactly (with `role_name`); without it the role's sessions
    /// are revoked role-wide.
    session_name: Option<String>,
    account_id: Option<String>,
    reason: String,
    requested_by: String,
    dry_run: Option<bool>,
    request_id: Option<String>,
}

const FIELDS: [&str; 9] = [
    "access_key_id",
    "reason",
    "requested_by",
    "user_name",
    "role_name",
    "session_name",
    "account_id",
    "dry_run",
    "request_id",
];

/// `did you mean "user_name"?` for a field name one slip away from a real one.
fn suggestion(value: &Value) -> String {
    let Some(map) = value.as_object() else {
        return String::new();
    };
    map.keys()
        .filter(|k| !FIELDS.contains(&k.as_str()))
        .filter_map(|k| {
            let lower = k.to_ascii_lowercase().replace('-', "_");
            FIELDS
                .iter()
                .map(|f| (strsim::jaro_winkler(&lower, f), *f))
                .filter(|(score, _)| *score >= 0.85)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, f)| format!("; did you mean {f:?} for {:?}?", truncate(k, 40)))
        })
        .next()
        .unwrap_or_default()
}

pub(super) fn manual(value: Value) -> Result<Received, Error> {
    let hint = suggestion(&value);
    let req: ManualRequest = serde_json::from_value(value).map_err(|e| {
        Error::BadEvent(format!(
            "manual request: {e}{hint} (fields: access_key_id, reason, requested_by, optional user_name, role_name, session_name, account_id, dry_run, request_id)"
        ))
    })?;
    let key = AccessKeyId::parse(req.access_key_id.trim())?;
    let requested_by = req.requested_by.trim();
    let reason = req.reason.trim();
    if requested_by.is_empty() || reason.is_empty() {
        return Err(Error::BadEvent(
            "manual request: requested_by and reason must not be empty".into(),
        ));
    }
    if req.session_name.is_some() && req.role_name.is_none() {
        return Err(Error::BadEvent(
            "manual request: session_name needs role_name".into(),
        ));
    }
    let principal = match (req.user_name.as_deref(), req.role_name.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(Error::BadEvent(
                "manual request: give user_name or role_name, not both".into(),
            ));
        }
        (Some(user), None) => Principal::IamUser {
            user_name: iam_name(user, 128, "user_name")?,
        },
        (None, Some(role)) => Principal::AssumedRole {
            role_name: iam_name(role, 64, "role_name")?,
            session_name: match req.session_name.as_deref() {
                Some(s) if super::is_session_name(s) => Some(s.to_owned()),
                Some(s) => {
                    return Err(Error::BadEvent(format!(
                        "manual request: session_name {:?} is not a valid role session name ([\\w+=,.@-]{{2,64}})",
                        truncate(s, 64)
                    )));
                }
                None => None,
            },
            role_id: None,
        },
        (None, None) => Principal::Unresolved,
    };
    let account = optional_account(req.account_id.as_deref())?;
    let request_id = req
        .request_id
        .map(|r| truncate(&r, 128))
        .unwrap_or_else(|| format!("{key}:{}", truncate(requested_by, 64)));
    Ok(Received::Incidents(vec![Incident {
        id: format!("manual:{request_id}"),
        trigger: Trigger::Manual {
            request_id,
            requested_by: truncate(requested_by, 128),
            reason: truncate(reason, 512),
        },
        key,
        principal,
        account,
        dry_run: req.dry_run.unwrap_or(false),
        first_seen: None,
        finding: None,
        source: None,
    }]))
}
