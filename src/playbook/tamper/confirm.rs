//! Whether IAM's own data confirm a credential a pivot event claims was created. The event is a
//! claim (anyone allowed to invoke the function can write one), CloudTrail's own record of it
//! comes 5 to 15 minutes late (`LookupEvents`), and IAM answers at once: so a new containment
//! on an event waits for nothing but IAM, and only for what IAM keeps a creation date of.
//!
//! - An access key: `ListAccessKeys` of the user must hold it, created inside the incident (at
//!   or after its start) and within [`CONFIRM_TOLERANCE`] of the event's time. A key made by an
//!   administrator before the incident, or named in a made-up event, does not pass.
//! - A console password on a user: `GetLoginProfile`'s creation date, the same way (a password
//!   merely changed keeps its old date: it waits for CloudTrail's record).
//! - A role session (`AssumeRole`): IAM keeps nothing that dates a session, and CloudTrail's
//!   Event history shows the call minutes late, after the holder has used it. So it is contained
//!   on the event's word, as narrowly as IAM allows: when the role is in this account and IAM
//!   says the role's ID is the prefix of the event's `assumedRoleId` (`AROA…:session-name`),
//!   that one session name of that one role is denied (`aws:userid`), paged and restorable.
//!   Another ID, another account, a root session: nothing is denied.
//! - Trust policies, roles and users leave nothing IAM can date to the call that made them: the
//!   follow-through's CloudTrail search settles them.

use chrono::{DateTime, TimeDelta, Utc};

use crate::analysis::{Pivot, PivotKind};
use crate::ports::Identity;
use crate::report::defang;
use crate::trigger::{ApiCallEvent, is_role_id, is_session_name};

/// How far IAM's creation date may be from the event's time (IAM keeps whole seconds, and the
/// two clocks are AWS's own).
pub const CONFIRM_TOLERANCE: TimeDelta = TimeDelta::seconds(120);

/// What IAM says of the credential an event claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// IAM holds it, created inside the incident: the note says what was read.
    Yes(String),
    /// Not confirmed: why (it waits for CloudTrail's own record).
    No(String),
}

/// Whether `created` fits: inside the incident and near the event's time.
fn inside(created: DateTime<Utc>, start: DateTime<Utc>, event_time: DateTime<Utc>) -> bool {
    // IAM's dates are whole seconds: a call in the incident's first second reads as before it.
    created >= start - TimeDelta::seconds(1) && (created - event_time).abs() <= CONFIRM_TOLERANCE
}

/// Asks IAM about the credential `pivot` names, which `call` minted. `leaked_user` is the
/// contained user, whose own calls without a user name act on it.
pub async fn confirm<I: Identity>(
    iam: &I,
    pivot: &Pivot,
    leaked_user: Option<&str>,
    start: DateTime<Utc>,
    call: &ApiCallEvent,
) -> Confirmed {
    let no = |why: String| Confirmed::No(why);
    let event_time = call.event_time;
    let user = pivot.principal.as_deref().or(leaked_user);
    match pivot.kind {
        PivotKind::AccessKey => {
            let (Some(user), Some(key)) = (user, pivot.access_key_id.as_deref()) else {
                return no("the event names no user or key".into());
            };
            match iam.user_keys(user).await {
                Ok(keys) => match keys.iter().find(|k| k.id.as_str() == key) {
                    Some(k) if k.created.is_some_and(|c| inside(c, start, event_time)) => {
                        Confirmed::Yes(format!(
                            "iam:ListAccessKeys: {user} holds {key}, created inside the incident"
                        ))
                    }
                    Some(_) => no(format!(
                        "{key} of {} was not created inside the incident (IAM's creation date)",
                        defang(user)
                    )),
                    None => no(format!("IAM lists no key {key} for {}", defang(user))),
                },
                Err(e) => no(format!("iam:ListAccessKeys failed: {}", e.chain())),
            }
        }
        PivotKind::LoginProfile => {
            let Some(user) = pivot.principal.as_deref() else {
                return no("a password on the contained user itself: its deny covers it".into());
            };
            match iam.login_profile(user).await {
                Ok(Some(created)) if inside(created, start, event_time) => Confirmed::Yes(format!(
                    "iam:GetLoginProfile: {user}'s password was created inside the incident"
                )),
                Ok(Some(_)) => no(format!(
                    "{}'s console password predates the incident or the event (a changed password keeps its date): CloudTrail's record settles it",
                    defang(user)
                )),
                Ok(None) => no(format!("{} has no console password", defang(user))),
                Err(e) => no(format!("iam:GetLoginProfile failed: {}", e.chain())),
            }
        }
        PivotKind::RoleSession => session(iam, pivot, call).await,
        PivotKind::UserSession | PivotKind::TrustPolicy | PivotKind::ServiceCredential => {
            no(format!(
                "{} leaves nothing IAM dates to the call: the follow-through's CloudTrail search settles it",
                pivot.via
            ))
        }
    }
}

/// `AROA…:session-name`, as the `AssumeRole` call's response names the session it issued.
pub(super) fn assumed_role_id(call: &ApiCallEvent) -> Option<&str> {
    call.record
        .pointer("/responseElements/assumedRoleUser/assumedRoleId")
        .and_then(serde_json::Value::as_str)
}

/// A session of a role in this account, when IAM's ID of the role is the prefix of the
/// session's `aws:userid` the event names, and the event's session name is that suffix.
async fn session<I: Identity>(iam: &I, pivot: &Pivot, call: &ApiCallEvent) -> Confirmed {
    let no = |why: String| Confirmed::No(why);
    let account = call.account.as_str();
    let Some(role) = pivot.role_in(account).filter(|_| pivot.via == "AssumeRole") else {
        return no(format!(
            "{} of a role outside account {account}, or no role: nothing denied on the event's word",
            pivot.via
        ));
    };
    let Some(name) = pivot
        .role_session_name
        .as_deref()
        .filter(|s| is_session_name(s))
    else {
        return no("the event names no valid session name".into());
    };
    let claimed = assumed_role_id(call).and_then(|a| a.split_once(':'));
    let Some((id, _)) = claimed.filter(|(id, s)| *s == name && is_role_id(id)) else {
        return no(format!(
            "the event's assumedRoleId is not ROLE-ID:{}: nothing denied",
            defang(name)
        ));
    };
    match iam.role_id(&role).await {
        Ok(Some(known)) if known == id => Confirmed::Yes(format!(
            "iam:GetRole: role {role}'s ID is {id}, the prefix of the session's aws:userid; on the event's word (IAM cannot date a session), only session {name} of role {role} is denied"
        )),
        Ok(Some(known)) => no(format!(
            "the event's role ID {id} is not role {}'s ID {known} in IAM: nothing denied",
            defang(&role)
        )),
        Ok(None) => no(format!("IAM knows no role {}", defang(&role))),
        Err(e) => no(format!("iam:GetRole failed: {}", e.chain())),
    }
}
