//! The principals killswitch never acts on, whatever the trigger says.

use crate::playbook::{Context, Plan, portal};
use crate::vocab::{AccountId, Arn};

/// Why a plan must not be carried out in `account`, if it must not. Also checked again before
/// the follow-through re-applies anything.
pub fn protected_reason(plan: &Plan, account: &AccountId, ctx: &Context<'_>) -> Option<String> {
    // IAM names are unique regardless of case: `Admin` and `admin` are one principal.
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let starts =
        |name: &str, prefix: &str| name.get(..prefix.len()).is_some_and(|h| same(h, prefix));
    let listed = |kind: &str, name: &str| {
        ctx.config.protected.iter().any(|p| {
            if p.starts_with("arn:") {
                // An ARN names one principal of one account: the same name elsewhere (a member
                // account where the key's holder took it) is not protected by it.
                Arn::parse(p).is_some_and(|arn| {
                    arn.account == account.as_str()
                        && arn.of_type(kind).is_some()
                        && same(arn.name(), name)
                })
            } else {
                same(p, name)
            }
        })
    };
    match plan {
        Plan::Portal { role, user, .. } => {
            if listed("role", role) {
                Some(format!(
                    "role {role} is listed in KILLSWITCH_PROTECTED_PRINCIPALS"
                ))
            } else if listed("user", user) {
                Some(format!(
                    "Identity Center user {user} is listed in KILLSWITCH_PROTECTED_PRINCIPALS"
                ))
            } else {
                None
            }
        }
        Plan::User { user, .. } => {
            if ctx
                .responder
                .user_name
                .as_deref()
                .is_some_and(|me| same(me, user))
            {
                Some(format!("user {user} is killswitch's own identity"))
            } else if listed("user", user) {
                Some(format!(
                    "user {user} is listed in KILLSWITCH_PROTECTED_PRINCIPALS"
                ))
            } else {
                None
            }
        }
        Plan::Role { role, .. } => {
            if ctx
                .responder
                .role_name
                .as_deref()
                .is_some_and(|me| same(me, role))
            {
                Some(format!("role {role} is killswitch's own role"))
            } else if starts(role, "AWSServiceRoleFor") {
                Some(format!(
                    "role {role} is a service-linked role: AWS does not allow its policies to be changed"
                ))
            } else if starts(role, portal::ROLE_PREFIX) {
                // Identity Center sessions are contained through the deny policy (Plan::Portal).
                Some(format!(
                    "role {role} belongs to IAM Identity Center: killswitch never edits it through IAM"
                ))
            } else if listed("role", role) {
                Some(format!(
                    "role {role} is listed in KILLSWITCH_PROTECTED_PRINCIPALS"
                ))
            } else {
                None
            }
        }
    }
}
