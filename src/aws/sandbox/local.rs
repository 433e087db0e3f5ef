//! The local AWS's control API (`scripts/local_aws/control.py`): the faults, the Identity Center
//! portal and the root access keys a drill rehearses, which a real account cannot be told to play
//! (or, for a root key, only its root user could create), and the EventBridge
//! double's delivered events, which a drill forwards as the deployed function's rules would.

use std::io::{Read, Write};

use serde_json::json;

use super::{Creds, drill_err};
use crate::error::Error;

/// Turns CloudTrail lookups for one key into failures on the local LookupEvents double.
pub fn local_cloudtrail_fault(endpoint: &str, access_key_id: &str, on: bool) -> Result<(), Error> {
    local_control(
        endpoint,
        "/_killswitch/cloudtrail/faults",
        &json!({"key": access_key_id, "on": on}),
    )
}

/// Makes the local LookupEvents double deliver one key's events `seconds` late (0: on time).
pub fn local_cloudtrail_lag(
    endpoint: &str,
    access_key_id: &str,
    seconds: u64,
) -> Result<(), Error> {
    local_control(
        endpoint,
        "/_killswitch/cloudtrail/lag",
        &json!({"key": access_key_id, "seconds": seconds}),
    )
}

/// An Identity Center user assigned a permission set (which references the deny policy) and
/// provisioned to `account`, as the local AWS's Identity Center administrator sets it up:
/// `(permission set ARN, role name, identity store user ID)`.
pub fn local_portal_seed(
    endpoint: &str,
    account: &str,
    permission_set: &str,
    user_name: &str,
) -> Result<(String, String, String), Error> {
    let seeded = local_control_json(
        endpoint,
        "/_killswitch/identitycenter/seed",
        &json!({"account": account, "permission_set": permission_set,
                "user_name": user_name, "via_group": false}),
    )?;
    match (
        seeded["permission_set_arn"].as_str(),
        seeded["role_name"].as_str(),
        seeded["user_id"].as_str(),
    ) {
        (Some(ps), Some(role), Some(id)) => Ok((ps.to_owned(), role.to_owned(), id.to_owned())),
        _ => Err(drill_err("local Identity Center seed", &seeded.to_string())),
    }
}

/// The portal's credentials for the user (`aws configure export-credentials`) and the session's
/// principal ID; `None` when the portal refuses (no assignment).
pub fn local_portal_credentials(
    endpoint: &str,
    account: &str,
    permission_set_arn: &str,
    user_name: &str,
) -> Result<Option<(Creds, String)>, Error> {
    let c = local_control_json(
        endpoint,
        "/_killswitch/identitycenter/portal-credentials",
        &json!({"account": account, "permission_set_arn": permission_set_arn,
                "user_name": user_name}),
    )?;
    let text = |k: &str| c[k].as_str().map(str::to_owned);
    Ok(
        match (
            text("AccessKeyId"),
            text("SecretAccessKey"),
            text("PrincipalId"),
        ) {
            (Some(access_key_id), Some(secret), Some(principal)) => Some((
                Creds {
                    access_key_id,
                    secret,
                    token: text("SessionToken"),
                },
                principal,
            )),
            _ => None,
        },
    )
}

/// A root access key of `account`, planted as its root user would create it (the local AWS's
/// root access double, `scripts/local_aws/root_access.py`; at most two per account).
pub fn local_root_key_plant(endpoint: &str, account: &str) -> Result<Creds, Error> {
    let k = local_control_json(
        endpoint,
        "/_killswitch/root/keys",
        &json!({"account": account}),
    )?;
    match (k["AccessKeyId"].as_str(), k["SecretAccessKey"].as_str()) {
        (Some(id), Some(secret)) => Ok(Creds::new(id.to_owned(), secret.to_owned(), None)),
        _ => Err(drill_err("local root key", &k.to_string())),
    }
}

/// The IDs of `account`'s root access keys on the local AWS.
pub fn local_root_keys(endpoint: &str, account: &str) -> Result<Vec<String>, Error> {
    let listed = local_control_json(
        endpoint,
        "/_killswitch/root/keys/list",
        &json!({"account": account}),
    )?;
    let keys = listed["keys"]
        .as_array()
        .ok_or_else(|| drill_err("local root keys", &listed.to_string()))?;
    Ok(keys
        .iter()
        .filter_map(|k| k["id"].as_str().map(str::to_owned))
        .collect())
}

/// Deletes one of `account`'s root access keys on the local AWS, as its root user would;
/// `false`: there was no such key.
pub fn local_root_key_delete(endpoint: &str, account: &str, id: &str) -> Result<bool, Error> {
    let answer = local_control_json(
        endpoint,
        "/_killswitch/root/keys/delete",
        &json!({"account": account, "id": id}),
    )?;
    answer["deleted"]
        .as_bool()
        .ok_or_else(|| drill_err("local root key delete", &answer.to_string()))
}

/// The local AWS's IAM propagation lag D (`GET /_killswitch/iam/lag`): authorization follows
/// IAM writes D seconds late. The env file's `KILLSWITCH_LOCAL_IAM_LAG_SECONDS` when the control
/// API does not answer it, 0 when neither says.
pub fn local_iam_lag(endpoint: &str) -> u64 {
    let asked = local_get(endpoint, "/_killswitch/iam/lag")
        .ok()
        .and_then(|r| {
            let body = r.split("\r\n\r\n").nth(1)?;
            serde_json::from_str::<serde_json::Value>(body).ok()?["seconds"].as_u64()
        });
    asked
        .or_else(|| {
            std::env::var("KILLSWITCH_LOCAL_IAM_LAG_SECONDS")
                .ok()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// The `AWS API Call via CloudTrail` events the local AWS's EventBridge double has delivered
/// with a sequence number above `after` (`GET /_killswitch/eventbridge/events?after=SEQ`):
/// `(seq, envelope)`, in order. Blocking: call it off the runtime's thread.
pub fn local_eventbridge_events(
    endpoint: &str,
    after: u64,
) -> Result<Vec<(u64, serde_json::Value)>, Error> {
    let response = local_get(
        endpoint,
        &format!("/_killswitch/eventbridge/events?after={after}"),
    )?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let page: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| drill_err("local EventBridge double", &e.to_string()))?;
    let events = page["events"].as_array().map_or(&[][..], Vec::as_slice);
    Ok(events
        .iter()
        .filter_map(|e| Some((e["seq"].as_u64()?, e["event"].clone())))
        .collect())
}

fn local_get(endpoint: &str, path: &str) -> Result<String, Error> {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let fail = |e: std::io::Error| drill_err("local control API", &e.to_string());
    let mut stream = std::net::TcpStream::connect(host).map_err(fail)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(fail)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(fail)?;
    if response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200") {
        Ok(response)
    } else {
        Err(drill_err("local control API", "not answered"))
    }
}

/// One POST to the local AWS's control API whose JSON answer matters (any status).
fn local_control_json(
    endpoint: &str,
    path: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, Error> {
    let response = local_post(endpoint, path, body)?;
    let answer = response.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(answer).map_err(|e| drill_err("local control API", &e.to_string()))
}

/// The raw HTTP response to one POST to the local AWS's control API (`scripts/local_aws/control.py`).
fn local_post(endpoint: &str, path: &str, body: &serde_json::Value) -> Result<String, Error> {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let body = body.to_string();
    let mut stream = std::net::TcpStream::connect(host)
        .map_err(|e| drill_err("local control API", &e.to_string()))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| drill_err("local control API", &e.to_string()))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| drill_err("local control API", &e.to_string()))?;
    Ok(response)
}

/// One POST to the local AWS's control API that must answer 200.
fn local_control(endpoint: &str, path: &str, body: &serde_json::Value) -> Result<(), Error> {
    let response = local_post(endpoint, path, body)?;
    if response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(drill_err(
            "local control API",
            response.lines().next().unwrap_or("no answer"),
        ))
    }
}
