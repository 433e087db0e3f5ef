//! CloudTrail management events as EventBridge delivers them (`AWS API Call via CloudTrail`):
//! the IAM writes a key's holder uses to undo containment or to pivot, and the STS calls that
//! mint sessions. Such an event is a claim like any other payload (anyone allowed to invoke the
//! function can write one): it is parsed strictly here, and `playbook::tamper` decides what it
//! may cause. Shapes: ../shared/AWS-FACTS.md §16 and the CloudTrail record reference.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::Error;
use crate::incident::{AccessKeyId, AccountId, truncate};

use super::iam_name;

/// The detail-type of every CloudTrail management event on the default bus.
pub const CLOUDTRAIL_API_CALL: &str = "AWS API Call via CloudTrail";

/// IAM calls (`source` `aws.iam`, delivered in us-east-1) that undo containment or open a way
/// back in. The stack's rule `PivotIamRule` names exactly these (a test holds them equal).
pub const IAM_EVENT_NAMES: [&str; 22] = [
    "AddUserToGroup",
    "AttachRolePolicy",
    "AttachUserPolicy",
    "CreateAccessKey",
    "CreateLoginProfile",
    "CreateRole",
    "CreateUser",
    "DeleteRolePermissionsBoundary",
    "DeleteRolePolicy",
    "DeleteUserPermissionsBoundary",
    "DeleteUserPolicy",
    "DetachRolePolicy",
    "DetachUserPolicy",
    "PutRolePermissionsBoundary",
    "PutRolePolicy",
    "PutUserPermissionsBoundary",
    "PutUserPolicy",
    "UntagRole",
    "UntagUser",
    "UpdateAccessKey",
    "UpdateAssumeRolePolicy",
    "UpdateLoginProfile",
];

/// STS calls (`source` `aws.sts`) that mint credentials. They are read-only events: the rule
/// needs the state `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS` to receive them.
pub const STS_EVENT_NAMES: [&str; 3] = ["AssumeRole", "GetFederationToken", "GetSessionToken"];

/// Longest text kept from a field the caller chose (names, ARNs, IDs).
const FIELD_CHARS: usize = 256;

/// Who signed the call (`userIdentity`), as CloudTrail recorded it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Signer {
    /// `IAMUser`, `AssumedRole`, `Root`, `FederatedUser`…
    pub kind: String,
    pub key: AccessKeyId,
    /// The IAM user (`IAMUser`), or the role that issued the session (`AssumedRole`).
    pub name: Option<String>,
    /// `AROA…:session-name` for a role session.
    pub principal_id: Option<String>,
}

/// What the call wrote on or minted, as far as each event name needs it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Touched {
    /// An IAM user's policies, boundary, tags, groups or password; `None`: the caller's own
    /// user (the call named none).
    User { name: Option<String> },
    /// An IAM role's policies, boundary, tags or trust; or a role created.
    Role { name: String },
    /// A user created.
    NewUser { name: String },
    /// An access key's status changed (`UpdateAccessKey`).
    KeyStatus {
        user: Option<String>,
        key: AccessKeyId,
        status: String,
    },
    /// An access key created for `user`.
    NewKey { user: String, key: AccessKeyId },
    /// A session minted: an assumed role's (`role_arn`), or the caller's own.
    Session {
        key: AccessKeyId,
        role_arn: Option<String>,
    },
}

/// One successful call from a CloudTrail event, parsed strictly.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ApiCallEvent {
    pub event_id: String,
    pub event_name: String,
    pub event_time: DateTime<Utc>,
    /// The account the call was made in (`recipientAccountId`).
    pub account: AccountId,
    pub region: String,
    pub signer: Signer,
    pub touched: Touched,
    /// The CloudTrail record (`detail`): the investigation's own analysis reads the credentials
    /// it minted from it, so an event and a `LookupEvents` page name a pivot the same way.
    #[serde(skip)]
    pub record: Value,
}

/// The CloudTrail event in this payload, `None` when the payload is not one (its detail-type is
/// not [`CLOUDTRAIL_API_CALL`]). A CloudTrail event that is not exactly a successful call this
/// function answers is refused, naming what is wrong.
pub fn api_call(payload: &Value) -> Result<Option<ApiCallEvent>, Error> {
    let Some(map) = payload.as_object() else {
        return Ok(None);
    };
    if map.get("detail-type").and_then(Value::as_str) != Some(CLOUDTRAIL_API_CALL) {
        return Ok(None);
    }
    let source = map.get("source").and_then(Value::as_str).unwrap_or("");
    let detail = map
        .get("detail")
        .filter(|d| d.is_object())
        .ok_or_else(|| bad("detail", "missing or not an object"))?;
    let event_name = text(detail, "/eventName")?;
    let expected_source = match source {
        "aws.iam" if IAM_EVENT_NAMES.contains(&event_name) => "iam.amazonaws.com",
        "aws.sts" if STS_EVENT_NAMES.contains(&event_name) => "sts.amazonaws.com",
        _ => {
            return Err(Error::BadEvent(format!(
                "CloudTrail event {:?} from source {:?} is not one this function answers (IAM writes and STS credential calls)",
                truncate(event_name, 64),
                truncate(source, 32)
            )));
        }
    };
    if text(detail, "/eventSource")? != expected_source {
        return Err(bad(
            "detail.eventSource",
            "does not match the event's source",
        ));
    }
    if let Some(code) = detail.get("errorCode").filter(|c| !c.is_null()) {
        return Err(Error::BadEvent(format!(
            "CloudTrail event {} was refused by AWS (errorCode {}): a refused call changed nothing",
            truncate(event_name, 64),
            truncate(&code.to_string(), 64)
        )));
    }
    let account = map
        .get("account")
        .and_then(Value::as_str)
        .or_else(|| {
            detail
                .pointer("/recipientAccountId")
                .and_then(Value::as_str)
        })
        .ok_or_else(|| bad("detail.recipientAccountId", "missing"))?;
    Ok(Some(ApiCallEvent {
        event_id: truncate(text(detail, "/eventID")?, 128),
        event_name: event_name.to_owned(),
        event_time: DateTime::parse_from_rfc3339(text(detail, "/eventTime")?)
            .map_err(|e| bad("detail.eventTime", &e.to_string()))?
            .with_timezone(&Utc),
        account: AccountId::parse(account)?,
        region: truncate(text(detail, "/awsRegion")?, 32),
        signer: signer(detail)?,
        touched: touched(event_name, detail)?,
        record: detail.clone(),
    }))
}

fn bad(field: &str, why: &str) -> Error {
    Error::BadEvent(format!("CloudTrail event: {field} {why}"))
}

/// The string at `pointer` of `v`, or an error naming the field.
fn text<'v>(v: &'v Value, pointer: &str) -> Result<&'v str, Error> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad(&field_name(pointer), "missing or not a string"))
}

fn field_name(pointer: &str) -> String {
    format!("detail{}", pointer.replace('/', "."))
}

fn key_at(v: &Value, pointer: &str) -> Result<AccessKeyId, Error> {
    AccessKeyId::parse(text(v, pointer)?)
        .map_err(|_| bad(&field_name(pointer), "is not an access key ID"))
}

fn name_at(v: &Value, pointer: &str, max: usize) -> Result<String, Error> {
    iam_name(text(v, pointer)?, max, &field_name(pointer))
}

fn optional_name(v: &Value, pointer: &str, max: usize) -> Result<Option<String>, Error> {
    match v.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => name_at(v, pointer, max).map(Some),
    }
}

fn signer(detail: &Value) -> Result<Signer, Error> {
    let kind = text(detail, "/userIdentity/type")?;
    let name = match kind {
        "IAMUser" => Some(name_at(detail, "/userIdentity/userName", 64)?),
        "AssumedRole" => Some(name_at(
            detail,
            "/userIdentity/sessionContext/sessionIssuer/userName",
            64,
        )?),
        _ => None,
    };
    Ok(Signer {
        kind: truncate(kind, 32),
        key: key_at(detail, "/userIdentity/accessKeyId")?,
        name,
        principal_id: detail
            .pointer("/userIdentity/principalId")
            .and_then(Value::as_str)
            .map(|p| truncate(p, FIELD_CHARS)),
    })
}

const REQ: &str = "/requestParameters";

/// The fields each event name needs, each checked.
fn touched(event_name: &str, d: &Value) -> Result<Touched, Error> {
    if let Some(t) = user_write(event_name, d)? {
        return Ok(t);
    }
    if let Some(t) = role_write(event_name, d)? {
        return Ok(t);
    }
    credential(event_name, d)?.ok_or_else(|| {
        Error::BadEvent(format!(
            "CloudTrail event {:?} is not one this function answers",
            truncate(event_name, 64)
        ))
    })
}

fn present(d: &Value, field: &str) -> Result<(), Error> {
    text(d, &format!("{REQ}/{field}")).map(|_| ())
}

/// A write on an IAM user: the user it names (`None`: the caller's own).
fn user_write(event_name: &str, d: &Value) -> Result<Option<Touched>, Error> {
    let user = |d: &Value| name_at(d, &format!("{REQ}/userName"), 64);
    let named = |d: &Value| user(d).map(|n| Some(Touched::User { name: Some(n) }));
    match event_name {
        "DeleteUserPolicy" | "PutUserPolicy" => present(d, "policyName").and_then(|()| named(d)),
        "AttachUserPolicy" | "DetachUserPolicy" | "PutUserPermissionsBoundary" => {
            present(d, policy_field(event_name)).and_then(|()| named(d))
        }
        "DeleteUserPermissionsBoundary" => named(d),
        "UntagUser" => tag_keys(d).and_then(|()| named(d)),
        "AddUserToGroup" => present(d, "groupName").and_then(|()| named(d)),
        "CreateUser" => Ok(Some(Touched::NewUser { name: user(d)? })),
        "CreateLoginProfile" | "UpdateLoginProfile" => Ok(Some(Touched::User {
            name: optional_name(d, &format!("{REQ}/userName"), 64)?,
        })),
        _ => Ok(None),
    }
}

/// A write on an IAM role: the role it names.
fn role_write(event_name: &str, d: &Value) -> Result<Option<Touched>, Error> {
    let field = match event_name {
        "DeleteRolePolicy" | "PutRolePolicy" => Some("policyName"),
        "AttachRolePolicy" | "DetachRolePolicy" | "PutRolePermissionsBoundary" => {
            Some(policy_field(event_name))
        }
        "DeleteRolePermissionsBoundary" => None,
        "UntagRole" => {
            tag_keys(d)?;
            None
        }
        "CreateRole" => Some("assumeRolePolicyDocument"),
        "UpdateAssumeRolePolicy" => Some("policyDocument"),
        _ => return Ok(None),
    };
    if let Some(field) = field {
        present(d, field)?;
    }
    Ok(Some(Touched::Role {
        name: name_at(d, &format!("{REQ}/roleName"), 64)?,
    }))
}

/// A key's status changed, a key created, a session minted.
fn credential(event_name: &str, d: &Value) -> Result<Option<Touched>, Error> {
    let session = |d: &Value, role_arn| -> Result<Option<Touched>, Error> {
        Ok(Some(Touched::Session {
            key: key_at(d, "/responseElements/credentials/accessKeyId")?,
            role_arn,
        }))
    };
    match event_name {
        "UpdateAccessKey" => Ok(Some(Touched::KeyStatus {
            user: optional_name(d, &format!("{REQ}/userName"), 64)?,
            key: key_at(d, &format!("{REQ}/accessKeyId"))?,
            status: truncate(text(d, &format!("{REQ}/status"))?, 16),
        })),
        "CreateAccessKey" => Ok(Some(Touched::NewKey {
            user: name_at(d, "/responseElements/accessKey/userName", 64)?,
            key: key_at(d, "/responseElements/accessKey/accessKeyId")?,
        })),
        "AssumeRole" => {
            present(d, "roleSessionName")?;
            let arn = truncate(text(d, &format!("{REQ}/roleArn"))?, 2048);
            session(d, Some(arn))
        }
        "GetFederationToken" => present(d, "name").and_then(|()| session(d, None)),
        "GetSessionToken" => session(d, None),
        _ => Ok(None),
    }
}

fn policy_field(event_name: &str) -> &'static str {
    if event_name.ends_with("PermissionsBoundary") {
        "permissionsBoundary"
    } else {
        "policyArn"
    }
}

fn tag_keys(d: &Value) -> Result<(), Error> {
    match d.pointer("/requestParameters/tagKeys") {
        Some(Value::Array(keys)) if keys.iter().all(Value::is_string) => Ok(()),
        _ => Err(bad(
            "detail.requestParameters.tagKeys",
            "missing or not a list of strings",
        )),
    }
}
